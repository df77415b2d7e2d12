#!/usr/bin/env python3
"""Evaluation throughput, side by side: `podium eval` against `podium serve-model`, then
lm-evaluation-harness's `local-completions` against the same server, on the same task
and limit (lm-eval reads Podium's bundled task YAML through the cross-check's wrappers,
so both see the same docs and prompts). Reports samples/s and accuracy for both.

lm-eval tokenizes through the server's vLLM-style /tokenize endpoint
(`tokenizer_backend=remote`) and sends token ids with `echo` + `logprobs`; Podium sends
text to /v1/completions (`api=completions`). `--concurrency N` requests in flight on
both sides (the server batches queued scoring requests into shared forward passes).

usage: HF_DATASETS_OFFLINE=1 /work/venv-lmeval/bin/python bench/remote/eval_throughput.py \
           --model MODEL.gguf [--task arc_easy] [--limit 100] [--threads 2] [--concurrency 1]
           [--podium target/release/podium]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "bench" / "lm_eval_crosscheck"))
import crosscheck  # noqa: E402


def wait_for(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not answer at {url}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--task", default="arc_easy")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--concurrency", type=int, default=1,
                    help="requests in flight, for both clients (Podium's concurrency=, lm-eval's num_concurrent=)")
    ap.add_argument("--podium", default=str(REPO / "target" / "release" / "podium"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="podium-eval-throughput-"))
    base = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen(
        [args.podium, "serve-model", f"gguf:{args.model}?threads={args.threads}",
         "--addr", f"127.0.0.1:{args.port}"],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"{base}/v1/models")
        rows = []

        # Podium
        start = time.monotonic()
        out = work / "podium_out"
        subprocess.run(
            [args.podium, "eval", "-m",
             f"openai-compatible:{base}/v1#model?api=completions&concurrency={args.concurrency}",
             "-t", args.task, "--limit", str(args.limit), "--db", str(work / "podium.db"),
             "--output", str(out)],
            check=True, stdout=subprocess.DEVNULL,
        )
        podium_s = time.monotonic() - start
        podium = json.loads((out / "results.json").read_text())["results"][args.task]
        rows.append(("podium eval", podium_s, podium))

        # lm-evaluation-harness
        import lm_eval
        from lm_eval.tasks import TaskManager

        task_root = work / "lm_eval_tasks"
        crosscheck.build_lm_eval_tasks(task_root, args.limit)
        tm = TaskManager(include_path=str(task_root), include_defaults=False)
        start = time.monotonic()
        results = lm_eval.simple_evaluate(
            model="local-completions",
            model_args=(
                f"model=model,base_url={base}/v1/completions,tokenizer_backend=remote,"
                f"num_concurrent={args.concurrency},max_retries=1,max_length=2048"
            ),
            tasks=[args.task],
            limit=args.limit,
            task_manager=tm,
            bootstrap_iters=0,
        )
        lm_s = time.monotonic() - start
        rows.append(("lm-eval local-completions", lm_s, results["results"][args.task]))
    finally:
        server.terminate()
        server.wait()

    print(f"task {args.task}, {args.limit} docs, {args.concurrency} request(s) in flight, model {Path(args.model).name}, "
          f"server threads {args.threads}, {os.cpu_count()} cores")
    print(f"{'client':<28}{'wall s':>9}{'samples/s':>11}{'acc':>9}{'acc_norm':>10}")
    for name, secs, res in rows:
        print(f"{name:<28}{secs:>9.1f}{args.limit / secs:>11.2f}"
              f"{res.get('acc,none', float('nan')):>9.4f}{res.get('acc_norm,none', float('nan')):>10.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
