#!/usr/bin/env python3
"""Seeded synthetic arena battles with known true ratings (stdlib only).

Writes FastChat battle JSONL, one battle a line:

    {"model_a": "model-07", "model_b": "model-31", "winner": "model_b", "tstamp": 1735689600.1234}

`winner` is one of `model_a`, `model_b`, `tie`, `tie (bothbad)`. Beside it, a sidecar JSON
(`--truth`, default `OUT.truth.json`) with the true ratings and the generator's settings.

The model (what the benchmark's recovery check relies on):

- True ratings: `--models` models, ratings drawn uniformly in 1000 ± `--spread` (default 400),
  then shifted so their mean is exactly 1000.
- Pairs are not uniform: each model gets a popularity `exp(N(0, 0.8))` (a few models fight much
  more often than others, as on a real arena); an ordered pair (a, b), a != b, is drawn with
  probability proportional to `pop_a * pop_b`. Every pair has a chance, so the comparison graph
  is connected.
- Outcomes: `p = 1 / (1 + 10^((R_b - R_a) / 400))` is Bradley–Terry's P(a beats b). A tie happens
  with probability `t = 4 * tie * p * (1 - p)` (`--tie`, default 0.3: 30% ties between equals, fewer
  between unequal models), and a decided battle goes to a with `P(a) = p - t/2`, to b with
  `P(b) = 1 - p - t/2`. So the *expected score* of a (win 1, tie 1/2, loss 0) is exactly `p`,
  and Bradley–Terry with ties as half a win each (FastChat's, evalica's and Podium's convention)
  is a consistent estimator of the true ratings. (Davidson's tie model would not be: it makes
  the half-win fit shrink ratings towards the mean, so an RMSE against the truth would measure
  the model mismatch, not the estimator.) `--bothbad` (default 0.4) of the ties are written as
  `tie (bothbad)`.
- Timestamps increase from 2025-01-01 by exponential gaps (mean 0.5 s), 4 decimals.

Usage: generate.py --n 1000000 --models 50 --seed 1 --out battles.jsonl [--truth T.json]
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of battles")
    ap.add_argument("--models", type=int, default=50, help="number of models")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--spread", type=float, default=400.0, help="true ratings in 1000 ± SPREAD")
    ap.add_argument("--tie", type=float, default=0.3, help="tie probability between equal models (≤ 0.5)")
    ap.add_argument("--bothbad", type=float, default=0.4, help="share of ties written 'tie (bothbad)'")
    ap.add_argument("--out", required=True, help="JSONL file to write")
    ap.add_argument("--truth", help="sidecar JSON of the true ratings (default OUT.truth.json)")
    args = ap.parse_args()
    if args.models < 2 or args.n < 1:
        ap.error("need at least 2 models and 1 battle")
    if not 0.0 <= args.tie <= 0.5:
        ap.error("--tie must be in [0, 0.5] (so that both win probabilities stay ≥ 0)")
    truth_path = args.truth or args.out + ".truth.json"

    t_start = time.perf_counter()
    rng = random.Random(args.seed)
    m = args.models
    width = max(2, len(str(m - 1)))
    names = [f"model-{i:0{width}d}" for i in range(m)]
    raw = [rng.uniform(-args.spread, args.spread) for _ in range(m)]
    mean = sum(raw) / m
    ratings = [1000.0 + r - mean for r in raw]
    popularity = [math.exp(rng.gauss(0.0, 0.8)) for _ in range(m)]

    # Ordered pairs, their cumulative weights, and per pair the outcome thresholds.
    pairs = []  # (prefix string up to the winner field, P(a), P(a) + P(tie))
    cum = []
    total = 0.0
    for a in range(m):
        for b in range(m):
            if a == b:
                continue
            p = 1.0 / (1.0 + 10.0 ** ((ratings[b] - ratings[a]) / 400.0))
            t = 4.0 * args.tie * p * (1.0 - p)
            pa = p - t / 2.0
            prefix = f'{{"model_a": "{names[a]}", "model_b": "{names[b]}", "winner": "'
            pairs.append((prefix, pa, pa + t))
            total += popularity[a] * popularity[b]
            cum.append(total)

    tstamp = 1735689600.0  # 2025-01-01T00:00:00Z
    bothbad = args.bothbad
    counts = {"model_a": 0, "model_b": 0, "tie": 0, "tie (bothbad)": 0}
    tmp = args.out + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    chunk = 100_000
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        left = args.n
        while left > 0:
            k = min(chunk, left)
            left -= k
            lines = []
            rnd = rng.random
            for _ in range(k):
                prefix, pa, pat = pairs[bisect.bisect_right(cum, rnd() * total)]
                u = rnd()
                if u < pa:
                    w = "model_a"
                elif u < pat:
                    w = "tie (bothbad)" if rnd() < bothbad else "tie"
                else:
                    w = "model_b"
                counts[w] += 1
                tstamp += rng.expovariate(2.0)
                lines.append(f'{prefix}{w}", "tstamp": {tstamp:.4f}}}\n')
            f.write("".join(lines))
    os.replace(tmp, args.out)

    truth = {
        "generator": "bench/arena/generate.py",
        "n": args.n,
        "models": m,
        "seed": args.seed,
        "spread": args.spread,
        "tie": args.tie,
        "bothbad": args.bothbad,
        "outcomes": counts,
        "popularity": {names[i]: popularity[i] for i in range(m)},
        "ratings": {names[i]: ratings[i] for i in range(m)},
    }
    with open(truth_path, "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    dt = time.perf_counter() - t_start
    print(
        f"wrote {args.n} battles among {m} models to {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB, "
        f"{dt:.1f} s); outcomes {counts}; truth in {truth_path}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
