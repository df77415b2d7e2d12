#!/usr/bin/env python3
"""The comparison table of bench/arena/run.sh (stdlib only).

Reads, from DIR, for each tool T and repeat i: `T.i.json` (its ratings), `T.i.time` (GNU
`/usr/bin/time -v`), `T.i.err` (its stderr; the Python scripts print their phases there), and
the true ratings (`--truth`). Prints a Markdown table:

- wall: median over the repeats of `/usr/bin/time`'s elapsed time (the whole process:
  interpreter start and imports included), with min..max;
- the tool's own in-process total (Python scripts only; they exclude interpreter start-up);
- peak RSS: the largest "Maximum resident set size" over the repeats (for FastChat's process
  pool, the largest single process, as the kernel reports it for waited children: not the sum);
- ratio: wall ÷ Podium's wall (or ÷ the first tool's when Podium was not run);
- max |Δ rating| against the FastChat script's ratings, and against the exact maximum of the
  same likelihood (`rating_exact_mle` in the FastChat script's output), every side centred at
  mean 1000 first;
- RMSE against the true ratings (centred the same way);
- max |Δ Elo| against the FastChat script's online Elo (not centred: the same updates in the
  same order should give the same numbers);
- mean width of the 95% interval (bootstrap: it differs between tools by resampling noise).

Ratings files may be `{model: {rating, lower, upper, elo}}`, a list of such objects with a
`model` key, or an object with such a list under `models` (Podium's `--format json`).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from pathlib import Path


def load_ratings(path: Path) -> dict[str, dict[str, float]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(doc, dict) and isinstance(doc.get("models"), list):
        doc = doc["models"]
    if isinstance(doc, list):
        return {row["model"]: row for row in doc}
    return doc


def parse_time(path: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS kB, exit status) from `/usr/bin/time -v` output."""
    text = path.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    wall = math.nan
    if m:
        parts = [float(p) for p in m.group(1).split(":")]
        wall = sum(p * 60**k for k, p in enumerate(reversed(parts)))
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    rss = int(m.group(1)) if m else -1
    m = re.search(r"Exit status: (\d+)", text)
    status = int(m.group(1)) if m else -1
    return wall, rss, status


def own_phases(path: Path) -> dict[str, float] | None:
    """The `phases` of the JSON line a Python script prints on stderr."""
    if not path.exists():
        return None
    for line in reversed(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{") and '"phases"' in line:
            try:
                return {k: float(v) for k, v in json.loads(line)["phases"].items()}
            except (ValueError, KeyError, AttributeError):
                return None
    return None


def centred(values: dict[str, float]) -> dict[str, float]:
    mean = sum(values.values()) / len(values)
    return {k: v - mean + 1000.0 for k, v in values.items()}


def field(r: dict[str, dict[str, float]], key: str) -> dict[str, float]:
    return {m: float(row[key]) for m, row in r.items() if row.get(key) is not None}


def max_abs_diff(x: dict[str, float], y: dict[str, float]) -> float:
    if set(x) != set(y):
        return math.nan
    return max(abs(x[k] - y[k]) for k in x)


def fmt(x: float | None, spec: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return format(x, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--tools", required=True, help="comma-separated tool names, in table order")
    ap.add_argument("--labels", help="semicolon-separated labels for the table (default: the names)")
    ap.add_argument("--truth", type=Path, required=True)
    ap.add_argument("--reference", default="fastchat", help="the tool whose ratings are the reference")
    ap.add_argument("--base", default="podium", help="the tool the time ratios divide by")
    args = ap.parse_args()

    tools = args.tools.split(",")
    labels = dict(zip(tools, args.labels.split(";"))) if args.labels else {t: t for t in tools}
    truth = centred(json.loads(args.truth.read_text(encoding="utf-8"))["ratings"])

    rows = {}
    for tool in tools:
        runs = sorted(args.dir.glob(f"{tool}.*.time"), key=lambda p: int(p.name.split(".")[-2]))
        if not runs:
            continue
        walls, rsss, statuses, phases = [], [], [], []
        for t in runs:
            wall, rss, status = parse_time(t)
            walls.append(wall)
            rsss.append(rss)
            statuses.append(status)
            ph = own_phases(t.with_suffix(".err"))
            if ph:
                phases.append(ph)
        last = runs[-1].with_suffix(".json")
        ratings = None
        if all(s == 0 for s in statuses) and last.exists() and last.stat().st_size > 0:
            ratings = load_ratings(last)
        rows[tool] = dict(walls=walls, rss=max(rsss), statuses=statuses,
                          totals=[p["total"] for p in phases if "total" in p], phases=phases,
                          ratings=ratings)

    ref = rows.get(args.reference, {}).get("ratings")
    ref_rating = centred(field(ref, "rating")) if ref else None
    ref_exact = centred(field(ref, "rating_exact_mle")) if ref and "rating_exact_mle" in next(iter(ref.values())) else None
    ref_elo = field(ref, "elo") if ref else None
    base = args.base if args.base in rows else (tools[0] if tools[0] in rows else None)
    base_wall = statistics.median(rows[base]["walls"]) if base else math.nan

    print(f"| tool | wall s, median [min..max] | in-process s | peak RSS MB | wall ÷ {labels.get(base, base)} "
          f"| max abs Δ rating vs FastChat script | vs exact MLE | RMSE vs truth | max abs Δ Elo vs FastChat "
          f"| mean 95% interval width |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tool in tools:
        if tool not in rows:
            continue
        r = rows[tool]
        wall = statistics.median(r["walls"])
        spread = f"[{min(r['walls']):.2f}..{max(r['walls']):.2f}]" if len(r["walls"]) > 1 else ""
        total = statistics.median(r["totals"]) if r["totals"] else None
        if any(s != 0 for s in r["statuses"]):
            print(f"| {labels[tool]} | failed (exit {r['statuses']}) | | | | | | | | |")
            continue
        rt = r["ratings"]
        d_ref = d_exact = rmse = d_elo = width = None
        if rt:
            rating = centred(field(rt, "rating"))
            if ref_rating:
                d_ref = max_abs_diff(rating, ref_rating)
            if ref_exact:
                d_exact = max_abs_diff(rating, ref_exact)
            if set(rating) == set(truth):
                rmse = math.sqrt(sum((rating[k] - truth[k]) ** 2 for k in truth) / len(truth))
            elo = field(rt, "elo")
            if ref_elo and elo:
                d_elo = max_abs_diff(elo, ref_elo)
            lo, hi = field(rt, "lower"), field(rt, "upper")
            ws = [hi[k] - lo[k] for k in lo if k in hi and not math.isnan(hi[k] - lo[k])]
            width = sum(ws) / len(ws) if ws else None
        print(
            f"| {labels[tool]} | {wall:.2f} {spread} | {fmt(total, '.2f')} | {r['rss'] / 1024:.0f} "
            f"| {fmt(wall / base_wall, '.2f')} | {fmt(d_ref, '.3g')} | {fmt(d_exact, '.3g')} | {fmt(rmse, '.3f')} "
            f"| {fmt(d_elo, '.2e')} | {fmt(width, '.2f')} |"
        )

    timed = [t for t in tools if t in rows and rows[t]["phases"]]
    if timed:
        names = []
        for t in timed:
            for p in rows[t]["phases"]:
                names += [k for k in p if k not in names and k not in ("exact_check", "write", "total")]
        print()
        print("In-process phases, median seconds over the repeats:")
        print()
        print("| tool | " + " | ".join(names) + " | total |")
        print("|---|" + "---|" * (len(names) + 1))
        for t in timed:
            cells = []
            for k in names + ["total"]:
                vals = [p[k] for p in rows[t]["phases"] if k in p]
                cells.append(f"{statistics.median(vals):.2f}" if vals else "–")
            print(f"| {labels[t]} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
