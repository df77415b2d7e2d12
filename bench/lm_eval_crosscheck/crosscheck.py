#!/usr/bin/env python3
"""Side-by-side cross-check of Podium's task engine against lm-evaluation-harness.

Both sides evaluate the same task YAMLs (Podium's bundled tasks/) with the same deterministic fake model:
Podium runs `podium eval -m mock:a`, lm-eval runs `simple_evaluate` with `PodiumMock('a')`, a Python
re-implementation of crates/podium-backends/src/mock.rs. Because the mock's scores are a pure function of
(model name, request strings), any difference in prompts shows up as a request-string diff, and any
difference in scoring/aggregation shows up as a metric diff on identical model outputs.

Usage (from anywhere; needs lm-eval installed in the running Python, offline is fine):

    HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 /work/venv-lmeval/bin/python \
        bench/lm_eval_crosscheck/crosscheck.py [--limit 20] [--workdir /tmp/podium_crosscheck] \
        [--podium target/debug/podium] [--tasks arc_easy,...] [--report report.md]

Exit status 0 when every request string and every metric/stderr agrees (|diff| <= 1e-9), 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PODIUM_TASKS = REPO / "tasks"
OVERRIDES = HERE / "overrides"
FIXTURES = HERE / "fixtures"

DEFAULT_TASKS = [
    "arc_easy",
    "arc_challenge",
    "mmlu",  # group: 57 subjects, 4 category groups (pooled stderr checked)
    "gsm8k",
    "truthfulqa_mc1",
    "truthfulqa_mc2",
    "hellaswag",
    "hellaswag_raw_fixture",  # process_docs: hellaswag on raw-schema docs (see fixtures/)
]
TOL = 1e-9


# --------------------------------------------------------------------------------------------------
# The mock model: an exact re-implementation of crates/podium-backends/src/mock.rs
# --------------------------------------------------------------------------------------------------

# Rust's char::is_whitespace (Unicode White_Space). Python's str.split() also splits on \x1c-\x1f,
# which Rust does not, so the set is spelled out.
_RUST_WS = set(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


def mock_token_count(text: str) -> int:
    """`text.split_whitespace().count().max(1)`."""
    n, in_word = 0, False
    for ch in text:
        if ch in _RUST_WS:
            in_word = False
        elif not in_word:
            n += 1
            in_word = True
    return max(1, n)


def mock_hash(name: str, *parts: str) -> int:
    """sha256(name, 0x00, part1, 0x00, part2, ...); first 8 bytes as little-endian u64."""
    h = hashlib.sha256(name.encode("utf-8"))
    for part in parts:
        h.update(b"\x00")
        h.update(part.encode("utf-8"))
    return int.from_bytes(h.digest()[:8], "little")


def mock_score(name: str, context: str, continuation: str) -> tuple[float, bool]:
    h = mock_hash(name, context, continuation)
    n_tokens = mock_token_count(continuation)
    return -float(h % 1000) / 100.0 - 0.5 * n_tokens, h % 5 == 0


def mock_generate(
    name: str, context: str, until: list[str], max_tokens: int, do_sample: bool = False, seed: int = 1234
) -> str:
    h = mock_hash(name, context, str(seed) if do_sample else "")
    full = (
        f" Let me think step by step. {h % 7} plus {h % 13} is {h % 7 + h % 13}. "
        f"The answer is {h % 20}.\n\nQ: next"
    )
    words = full.split(" ")
    text = " ".join(words[: min(len(words), max_tokens + 1)])
    cuts = [text.find(s) for s in until if s and text.find(s) >= 0]
    if cuts:
        text = text[: min(cuts)]
    return text


def mock_rolling(name: str, text: str) -> float:
    h = mock_hash(name, text)
    return -0.7 * len(text.encode("utf-8")) - float(h % 100) / 10.0


def make_lm_class():
    from lm_eval.api.model import LM

    class PodiumMock(LM):
        """lm-eval model whose outputs equal Podium's `mock:NAME` backend on the same request strings."""

        def __init__(self, name: str = "a"):
            super().__init__()
            self.name = name

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return [mock_score(self.name, *req.args) for req in requests]

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            return [mock_rolling(self.name, req.args[0]) for req in requests]

        def generate_until(self, requests, disable_tqdm: bool = False):
            out = []
            for req in requests:
                context, gen_kwargs = req.args
                gen_kwargs = dict(gen_kwargs)
                until = gen_kwargs.get("until", [])
                if isinstance(until, str):
                    until = [until]
                out.append(
                    mock_generate(
                        self.name,
                        context,
                        until,
                        int(gen_kwargs.get("max_gen_toks", 256)),
                        bool(gen_kwargs.get("do_sample", False)),
                    )
                )
            return out

    return PodiumMock


# --------------------------------------------------------------------------------------------------
# lm-eval task tree: thin wrappers that `include` Podium's YAMLs (or our overrides) and only re-point
# dataset_kwargs.data_files at absolute paths (lm-eval resolves data_files against the CWD).
# --------------------------------------------------------------------------------------------------


def _read_yaml_merged(path: Path) -> dict:
    """Podium YAML with includes merged (top-level keys; local wins), without resolving !function."""

    class _L(yaml.SafeLoader):
        pass

    _L.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    cfg = yaml.load(path.read_text(), Loader=_L) or {}
    inc = cfg.pop("include", None)
    if inc is None:
        return cfg
    merged = {}
    for i in inc if isinstance(inc, list) else [inc]:
        merged.update(_read_yaml_merged((path.parent / i).resolve()))
    merged.update(cfg)
    return merged


def _abs_dataset_kwargs(podium_yaml: Path) -> dict:
    cfg = _read_yaml_merged(podium_yaml)
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    files = kwargs.get("data_files") or {}
    kwargs["data_files"] = {
        split: (
            [str((podium_yaml.parent / f).resolve()) for f in v]
            if isinstance(v, list)
            else str((podium_yaml.parent / v).resolve())
        )
        for split, v in files.items()
    }
    return kwargs


def _write_wrapper(out: Path, include: Path, extra: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {"include": str(include)}
    body.update(extra)
    out.write_text(
        "# generated by bench/lm_eval_crosscheck/crosscheck.py\n"
        + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    )


def convert_hellaswag(n: int, out: Path) -> int:
    """First n tasks of llama.cpp's hellaswag text file -> JSONL {query, label, endings}."""
    lines = (PODIUM_TASKS / "hellaswag/data/hellaswag_val_full.txt").read_text(encoding="utf-8").splitlines()
    rows = []
    for i in range(0, min(len(lines), 6 * n), 6):
        chunk = lines[i : i + 6]
        rows.append({"query": chunk[0], "label": int(chunk[1].strip()), "endings": chunk[2:6]})
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def build_lm_eval_tasks(root: Path, limit: int) -> dict[str, Path]:
    """Writes the lm-eval task tree under root; returns {task name: Podium YAML path} for Podium's side."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    podium_yaml = {}

    def plain(name: str, rel: str):
        src = PODIUM_TASKS / rel
        _write_wrapper(root / f"{name}.yaml", src, {"dataset_kwargs": _abs_dataset_kwargs(src)})
        podium_yaml[name] = src

    plain("arc_easy", "arc/arc_easy.yaml")
    plain("arc_challenge", "arc/arc_challenge.yaml")
    # gsm8k: Podium's YAML keeps the 8 CoT exemplars as a second data split (`cot`, columns question/target)
    # next to `test` (question/answer). HF `datasets` (hence lm-eval) cannot load two JSON splits with
    # different columns in one load_dataset call (CastError), so on the lm-eval side the exemplars are
    # passed inline as `fewshot_config.samples` -- exactly how lm-eval's own gsm8k-cot.yaml stores them --
    # read from Podium's cot_exemplars.jsonl so both sides use the same strings.
    src = PODIUM_TASKS / "gsm8k/gsm8k_cot.yaml"
    kw = _abs_dataset_kwargs(src)
    exemplars = [json.loads(x) for x in Path(kw["data_files"]["cot"]).read_text().splitlines() if x.strip()]
    kw["data_files"] = {"test": kw["data_files"]["test"]}
    _write_wrapper(
        root / "gsm8k.yaml",
        src,
        {"dataset_kwargs": kw, "fewshot_split": None, "fewshot_config": {"sampler": "first_n", "samples": exemplars}},
    )
    podium_yaml["gsm8k"] = src
    plain("truthfulqa_mc1", "truthfulqa/truthfulqa_mc1.yaml")
    src = PODIUM_TASKS / "truthfulqa/truthfulqa_mc2.yaml"
    _write_wrapper(
        root / "truthfulqa_mc2.yaml", OVERRIDES / "truthfulqa_mc2.yaml", {"dataset_kwargs": _abs_dataset_kwargs(src)}
    )
    podium_yaml["truthfulqa_mc2"] = src

    # hellaswag: converted text file (at least `limit` tasks, plus a margin)
    jsonl = root / "data" / "hellaswag_val_head.jsonl"
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    convert_hellaswag(max(limit, 1) + 10, jsonl)
    _write_wrapper(
        root / "hellaswag.yaml",
        OVERRIDES / "hellaswag.yaml",
        {"dataset_kwargs": {"data_files": {"validation": str(jsonl)}}},
    )
    podium_yaml["hellaswag"] = PODIUM_TASKS / "hellaswag/hellaswag.yaml"

    # hellaswag_raw_fixture: Podium's `process_docs: hellaswag` vs lm-eval's own hellaswag utils.process_docs
    import lm_eval

    lm_hs_utils = Path(lm_eval.__file__).parent / "tasks/hellaswag/utils.py"
    fixture = FIXTURES / "hellaswag_raw.jsonl"
    common = {
        "task": "hellaswag_raw_fixture",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"validation": str(fixture)}},
        "output_type": "multiple_choice",
        "validation_split": "validation",
        "doc_to_text": "{{query}}",
        "doc_to_target": "{{label}}",
        "doc_to_choice": "choices",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }
    (root / "hellaswag_utils.py").write_text(lm_hs_utils.read_text())
    (root / "hellaswag_raw_fixture.yaml").write_text(
        "# generated by crosscheck.py: lm-eval's own hellaswag process_docs on a raw-schema fixture\n"
        + yaml.safe_dump(common, sort_keys=False).replace(
            "doc_to_text:", "process_docs: !function hellaswag_utils.process_docs\ndoc_to_text:", 1
        )
    )
    podium_fixture_yaml = root.parent / "podium_tasks" / "hellaswag_raw_fixture.yaml"
    podium_fixture_yaml.parent.mkdir(parents=True, exist_ok=True)
    podium_fixture_yaml.write_text(
        "# generated by crosscheck.py: Podium's built-in `process_docs: hellaswag` on a raw-schema fixture\n"
        + yaml.safe_dump({**common, "process_docs": "hellaswag"}, sort_keys=False)
    )
    podium_yaml["hellaswag_raw_fixture"] = podium_fixture_yaml

    # mmlu: every subject + the 5 group files
    for f in sorted((PODIUM_TASKS / "mmlu").glob("mmlu_*.yaml")):
        cfg = _read_yaml_merged(f)
        _write_wrapper(root / "mmlu" / f.name, f, {"dataset_kwargs": _abs_dataset_kwargs(f)})
        podium_yaml[cfg["task"]] = f
    for f in sorted((PODIUM_TASKS / "mmlu").glob("_mmlu*.yaml")):
        shutil.copy(f, root / "mmlu" / f.name)
    return podium_yaml


# --------------------------------------------------------------------------------------------------
# Running both sides
# --------------------------------------------------------------------------------------------------


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):
        try:
            return x.item()
        except Exception:  # noqa: BLE001
            return str(x)
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def run_lm_eval(tasks: list[str], limit: int, task_root: Path, out: Path) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(task_root), include_defaults=False)
    results = lm_eval.simple_evaluate(
        model=make_lm_class()("a"),
        tasks=tasks,
        limit=limit,
        log_samples=True,
        task_manager=tm,
        bootstrap_iters=1000,
    )
    out.mkdir(parents=True, exist_ok=True)
    samples = results.pop("samples")
    (out / "results.json").write_text(json.dumps(_jsonable(results), indent=1, default=str))
    for task, rows in samples.items():
        with (out / f"samples_{task}.jsonl").open("w") as fh:
            for r in rows:
                fh.write(json.dumps(_jsonable(r), ensure_ascii=False, default=str) + "\n")
    results["samples"] = samples
    return results


def run_podium(binary: Path, tasks: list[str], limit: int, out: Path, podium_yaml: dict[str, Path]) -> dict:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    db = out / "podium.db"
    # Fixture tasks live outside tasks/: pass them as YAML paths.
    specs = [str(podium_yaml[t]) if t in podium_yaml and not podium_yaml[t].is_relative_to(PODIUM_TASKS) else t for t in tasks]
    cmd = [str(binary), "eval", "-m", "mock:a", "-t", ",".join(specs), "--limit", str(limit), "--db", str(db),
           "--output", str(out), "--bootstrap-iters", "1000"]
    env = dict(os.environ, PODIUM_TASKS_DIR=str(PODIUM_TASKS))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    (out / "podium.log").write_text(" ".join(cmd) + "\n\n" + proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"podium failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    results = json.loads((out / "results.json").read_text())
    results["samples"] = {}
    for f in out.glob("samples_*.jsonl"):
        rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        results["samples"][f.name[len("samples_") : -len(".jsonl")]] = rows
    return results


# --------------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------------


def _short_diff(a: str, b: str, width: int = 70) -> str:
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    lo = max(0, i - 30)
    return (
        f"first difference at char {i} (len lm-eval {len(a)}, Podium {len(b)}):\n"
        f"      lm-eval: {a[lo:i + width]!r}\n"
        f"      Podium : {b[lo:i + width]!r}"
    )


def compare_requests(lm: dict, po: dict, tasks_run: list[str]) -> tuple[list[dict], list[str]]:
    rows, diffs = [], []
    for task in tasks_run:
        lm_rows = {r["doc_id"]: r for r in lm["samples"].get(task, [])}
        po_rows = {r["doc_id"]: r for r in po["samples"].get(task, [])}
        # lm-eval logs one row per (doc, filter); requests are the same across filters
        n_docs = n_ctx = n_cont = n_req = 0
        for doc_id in sorted(set(lm_rows) | set(po_rows)):
            a, b = lm_rows.get(doc_id), po_rows.get(doc_id)
            n_docs += 1
            if a is None or b is None:
                diffs.append(f"{task} doc {doc_id}: only in {'Podium' if a is None else 'lm-eval'}")
                continue
            args = [tuple(x) for x in a["arguments"]]
            req = b["arguments"]["request"]
            if req["type"] == "loglikelihood":
                lm_ctx = {x[0] for x in args}
                lm_conts = [x[1] for x in args]
                po_ctx, po_conts = req["context"], req["continuations"]
                ctx_ok = lm_ctx == {po_ctx}
                cont_ok = lm_conts == po_conts
                if not ctx_ok:
                    diffs.append(f"{task} doc {doc_id} context: " + _short_diff(sorted(lm_ctx)[0], po_ctx))
                if not cont_ok:
                    diffs.append(f"{task} doc {doc_id} continuations:\n      lm-eval: {lm_conts!r}\n      Podium : {po_conts!r}")
            elif req["type"] == "generate":
                po_req = req["requests"]
                ctx_ok = [x[0] for x in args] == [r["context"] for r in po_req]
                lm_kw = [dict(x[1]) for x in args]
                cont_ok = all(
                    list(k.get("until", [])) == r["until"] and int(k.get("max_gen_toks", 256)) == r["max_tokens"]
                    and bool(k.get("do_sample", False)) == r["do_sample"]
                    for k, r in zip(lm_kw, po_req)
                ) and len(lm_kw) == len(po_req)
                if not ctx_ok:
                    diffs.append(f"{task} doc {doc_id} context: " + _short_diff(args[0][0], po_req[0]["context"]))
                if not cont_ok:
                    diffs.append(f"{task} doc {doc_id} generation kwargs: lm-eval {lm_kw} vs Podium {po_req}")
            elif req["type"] == "rolling":
                ctx_ok = [x[0] for x in args] == [req["text"]]
                cont_ok = True
                if not ctx_ok:
                    diffs.append(f"{task} doc {doc_id} rolling text: " + _short_diff(args[0][0], req["text"]))
            else:
                raise ValueError(req["type"])
            n_ctx += ctx_ok
            n_cont += cont_ok
            n_req += ctx_ok and cont_ok
        rows.append({"task": task, "docs": n_docs, "context": n_ctx, "continuations": n_cont, "all": n_req})
    return rows, diffs


def _metric_pairs(section_lm: dict, section_po: dict):
    for key, val in section_po.items():
        if key == "alias" or "_stderr," in key or "," not in key:
            continue
        metric, filt = key.split(",", 1)
        se_key = f"{metric}_stderr,{filt}"
        yield key, section_lm.get(key), val
        yield se_key, section_lm.get(se_key), section_po.get(se_key)
    for key in section_lm:
        if "," in key and key not in section_po and key.split(",")[0] not in ("acc_norm_tokens",):
            yield key, section_lm.get(key), None


def _num(x):
    if x is None or x == "N/A":
        return None
    return float(x)


def compare_metrics(lm: dict, po: dict, names: list[str]) -> tuple[list[dict], list[str]]:
    rows, diffs = [], []
    lm_res = dict(lm.get("results", {}))
    lm_res.update(lm.get("groups", {}) or {})
    po_res = dict(po.get("results", {}))
    po_res.update(po.get("groups", {}) or {})
    for name in names:
        a, b = lm_res.get(name), po_res.get(name)
        if a is None or b is None:
            diffs.append(f"{name}: results only in {'Podium' if a is None else 'lm-eval'}")
            continue
        for key, x, y in _metric_pairs(a, b):
            if key.startswith("acc_norm_tokens"):
                continue  # Podium-only metric (llama.cpp's), not in lm-eval
            x, y = _num(x), _num(y)
            if x is None and y is None:
                continue
            d = None if x is None or y is None else abs(x - y)
            ok = d is not None and (d <= TOL or (math.isnan(x) and math.isnan(y)))
            rows.append({"name": name, "key": key, "lm_eval": x, "podium": y, "absdiff": d, "ok": ok})
            if not ok:
                diffs.append(f"{name} {key}: lm-eval {x!r} vs Podium {y!r}")
    return rows, diffs


def compare_sample_scores(lm: dict, po: dict, tasks_run: list[str]) -> tuple[int, int, list[str]]:
    """Per-doc model outputs (mock responses) and per-doc metric values."""
    n = ok = 0
    diffs = []
    for task in tasks_run:
        po_rows = {r["doc_id"]: r for r in po["samples"].get(task, [])}
        for a in lm["samples"].get(task, []):
            b = po_rows.get(a["doc_id"])
            if b is None:
                continue
            filt = a["filter"]
            if filt != "none":  # generation: the answer each filter extracted
                x = a["filtered_resps"][0]
                y = (b["metrics"].get("filtered", {}).get(filt) or [None])[0]
                n += 1
                if x == y:
                    ok += 1
                else:
                    diffs.append(f"{task} doc {a['doc_id']} filter {filt}: lm-eval {x!r} vs Podium {y!r}")
            for metric in a["metrics"]:
                key = f"{metric},{filt}"
                x, y = a.get(metric), b["metrics"]["metrics"].get(key)
                n += 1
                if y is not None and abs(float(x) - float(y)) <= TOL:
                    ok += 1
                else:
                    diffs.append(f"{task} doc {a['doc_id']} {key}: lm-eval {x!r} vs Podium {y!r}")
    return n, ok, diffs


def _fmt(x):
    return "—" if x is None else f"{x:.10g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/podium_crosscheck"))
    ap.add_argument("--podium", type=Path, default=REPO / "target/debug/podium")
    ap.add_argument("--report", type=Path, default=None, help="write the markdown report here too")
    args = ap.parse_args()

    import lm_eval

    tasks = [t for t in args.tasks.split(",") if t]
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    podium_yaml = build_lm_eval_tasks(work / "lm_eval_tasks", args.limit)

    print(f"lm-eval {lm_eval.__version__}: running {tasks} with PodiumMock('a'), limit {args.limit}", flush=True)
    lm = run_lm_eval(tasks, args.limit, work / "lm_eval_tasks", work / "lm_eval_out")
    print(f"podium {args.podium}: running the same tasks with mock:a", flush=True)
    po = run_podium(args.podium, tasks, args.limit, work / "podium_out", podium_yaml)

    leaf_tasks = sorted(set(lm["samples"]) | set(po["samples"]), key=lambda t: (t.startswith("mmlu_"), t))
    req_rows, req_diffs = compare_requests(lm, po, leaf_tasks)
    groups = sorted(set((lm.get("groups") or {}).keys()) | set((po.get("groups") or {}).keys()))
    met_rows, met_diffs = compare_metrics(lm, po, leaf_tasks + groups)
    n_samp, ok_samp, samp_diffs = compare_sample_scores(lm, po, leaf_tasks)

    out = []
    out.append(f"# Podium vs lm-evaluation-harness {lm_eval.__version__} cross-check (mock:a, limit {args.limit})\n")
    out.append("## Requests (context and continuation strings, doc by doc)\n")
    out.append("| task | docs | context equal | continuations / gen kwargs equal | fully equal |")
    out.append("| --- | ---: | ---: | ---: | ---: |")
    mm = [r for r in req_rows if r["task"].startswith("mmlu_")]
    for r in [r for r in req_rows if not r["task"].startswith("mmlu_")]:
        out.append(f"| {r['task']} | {r['docs']} | {r['context']} | {r['continuations']} | {r['all']} |")
    if mm:
        s = {k: sum(r[k] for r in mm) for k in ("docs", "context", "continuations", "all")}
        out.append(f"| mmlu_* ({len(mm)} subjects) | {s['docs']} | {s['context']} | {s['continuations']} | {s['all']} |")
    tot = {k: sum(r[k] for r in req_rows) for k in ("docs", "context", "continuations", "all")}
    out.append(f"| **total** | **{tot['docs']}** | **{tot['context']}** | **{tot['continuations']}** | **{tot['all']}** |\n")

    out.append(f"Per-doc metric values and filtered answers (every doc × metric × filter): {ok_samp}/{n_samp} equal within {TOL}.\n")

    out.append("## Aggregated metrics and standard errors\n")
    out.append("| task / group | metric | lm-eval | Podium | abs diff |")
    out.append("| --- | --- | ---: | ---: | ---: |")
    shown_mm = 0
    for r in met_rows:
        if r["name"].startswith("mmlu_") and r["name"] not in groups:
            shown_mm += 1
            if r["ok"] and r["name"] not in ("mmlu_anatomy", "mmlu_abstract_algebra"):
                continue
        out.append(
            f"| {r['name']} | {r['key']} | {_fmt(r['lm_eval'])} | {_fmt(r['podium'])} | "
            f"{_fmt(r['absdiff'])}{'' if r['ok'] else ' **MISMATCH**'} |"
        )
    n_ok = sum(r["ok"] for r in met_rows)
    max_d = max((r["absdiff"] for r in met_rows if r["absdiff"] is not None), default=0.0)
    out.append(
        f"\nAll values (incl. {shown_mm} per-subject mmlu values/stderrs not listed when equal): "
        f"{n_ok}/{len(met_rows)} equal within {TOL}; max abs diff {max_d:.3g}.\n"
    )

    all_diffs = req_diffs + samp_diffs + met_diffs
    out.append("## Differences\n")
    if not all_diffs:
        out.append("None.\n")
    else:
        out.append("```")
        out.extend(all_diffs[:200])
        if len(all_diffs) > 200:
            out.append(f"... {len(all_diffs) - 200} more")
        out.append("```\n")
    report = "\n".join(out)
    print(report)
    (work / "report.md").write_text(report)
    if args.report:
        args.report.write_text(report)
    return 0 if not all_diffs else 1


if __name__ == "__main__":
    sys.exit(main())
