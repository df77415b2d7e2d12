#!/usr/bin/env python3
"""Arena ratings through PyPI `evalica` (its core is Rust, `evalica._brzo`), for the side-by-side
benchmark: the same battle file and the same JSON output as fastchat_bt.py.

Phases (each timed):

1. read: the battle JSONL with `pd.read_json(lines=True)`, sorted by `tstamp` (stable); the same
   reader as fastchat_bt.py, so the two Python columns differ only in the rating code.
2. fit: `evalica.bradley_terry(model_a, model_b, winners)` on every battle (winner `model_a` →
   `Winner.X`, `model_b` → `Winner.Y`, either tie → `Winner.Draw`), evalica's defaults: a tie is
   half a win each side (`win_weight` 1, `tie_weight` 0.5), Newman's (2023) iteration,
   tolerance 1e-6 on the change of the strength vector, at most 100 iterations. Strengths `s`
   (geometric mean 1) become ratings `400 log10(s) + 1000`, so the mean rating is 1000.
3. bootstrap, `--bootstrap-mode`:
   - `api` (default): `evalica.bootstrap(evalica.bradley_terry, ..., n_resamples=N,
     bootstrap_method="percentile", random_state=seed)`, evalica's own API: scipy.stats.bootstrap
     over the battles (paired rows). Percentile, because evalica's default BCa needs a jackknife
     (one refit per battle: a million refits here).
   - `multinomial`: N refits of `evalica.bradley_terry` on the unique (a, b, outcome) rows
     with weights drawn as in fastchat_bt.py (`default_rng(seed).multinomial(n, counts / n)`),
     one process. The same resampling as FastChat and Podium, on evalica's solver.
   Interval = the 2.5% and 97.5% percentiles (in rating points).
4. elo: `evalica.elo(...)` on the battles in time order (K = 4, base 10, scale 400, start 1000,
   evalica's defaults, the same as FastChat's).

Output (`--out`, else stdout): `{model: {"rating", "lower", "upper", "elo"}}`, best first.
On stderr: one JSON line `{"tool": "evalica_bt", "phases": {name: seconds}, ...}`.

Usage: evalica_bt.py BATTLES.jsonl [--bootstrap 100] [--bootstrap-mode api|multinomial]
       [--seed 0] [--out ratings.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import evalica
import numpy as np
import pandas as pd

WINNER = {"model_a": evalica.Winner.X, "model_b": evalica.Winner.Y, "tie": evalica.Winner.Draw,
          "tie (bothbad)": evalica.Winner.Draw}


def to_points(scores: np.ndarray) -> np.ndarray:
    return 400.0 * np.log10(scores) + 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("battles", help="FastChat battle JSONL")
    ap.add_argument("--bootstrap", type=int, default=100, help="bootstrap rounds (0: none)")
    ap.add_argument("--bootstrap-mode", choices=["api", "multinomial"], default="api")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="ratings JSON (default: stdout)")
    args = ap.parse_args()

    phases: dict[str, float] = {}
    t0 = t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        phases[name] = round(now - t, 4)
        t = now

    df = pd.read_json(args.battles, lines=True, dtype={"model_a": str, "model_b": str, "winner": str})
    df = df.sort_values("tstamp", kind="stable", ignore_index=True)
    lap("read")

    xs = df["model_a"].tolist()
    ys = df["model_b"].tolist()
    unknown = set(df["winner"].unique()) - set(WINNER)
    if unknown:
        raise SystemExit(f"unexpected winner values {sorted(unknown)}")
    winners = df["winner"].map(WINNER).tolist()
    lap("prepare")

    bt = evalica.bradley_terry(xs, ys, winners)
    index = bt.index
    rating = to_points(bt.scores.reindex(index).to_numpy())
    lap("fit")

    m = len(index)
    lower = upper = np.full(m, np.nan)
    if args.bootstrap > 0 and args.bootstrap_mode == "api":
        res = evalica.bootstrap(
            evalica.bradley_terry, xs, ys, winners, index=index, n_resamples=args.bootstrap,
            bootstrap_method="percentile", random_state=args.seed,
        )
        lower = to_points(res.low.reindex(index).to_numpy())
        upper = to_points(res.high.reindex(index).to_numpy())
    elif args.bootstrap > 0:
        codes = pd.DataFrame({
            "a": index.get_indexer(df["model_a"]),
            "b": index.get_indexer(df["model_b"]),
            "w": df["winner"].map({"model_a": 1, "model_b": 2}).fillna(0).astype(np.int64),
        })
        uniq = codes.value_counts(sort=False).reset_index(name="n")
        ua = index[uniq["a"].to_numpy()].tolist()
        ub = index[uniq["b"].to_numpy()].tolist()
        uw = [evalica.Winner(int(v)) for v in uniq["w"]]
        counts = uniq["n"].to_numpy(dtype=np.float64)
        n = int(counts.sum())
        rng = np.random.default_rng(args.seed)
        boot_w = rng.multinomial(n, counts / n, size=args.bootstrap).astype(np.float64)
        boot = np.empty((args.bootstrap, m))
        for r in range(args.bootstrap):
            s = evalica.bradley_terry(ua, ub, uw, index=index, weights=boot_w[r]).scores
            boot[r] = to_points(s.reindex(index).to_numpy())
        lower = np.percentile(boot, 2.5, axis=0)
        upper = np.percentile(boot, 97.5, axis=0)
    lap("bootstrap")

    elo = evalica.elo(xs, ys, winners, index=index).scores.reindex(index).to_numpy()
    lap("elo")

    order = np.argsort(-rating, kind="stable")
    result = {
        str(index[i]): {"rating": float(rating[i]), "lower": float(lower[i]), "upper": float(upper[i]),
                        "elo": float(elo[i])}
        for i in order
    }
    text = json.dumps(result, indent=1) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    lap("write")
    phases["total"] = round(time.perf_counter() - t0, 4)
    info = {
        "tool": "evalica_bt",
        "evalica": evalica.__version__,
        "battles": len(df),
        "models": m,
        "bootstrap": args.bootstrap,
        "bootstrap_mode": args.bootstrap_mode,
        "fit_iterations": int(bt.iterations),
        "fit_limit": int(bt.limit),
        "phases": phases,
    }
    print(json.dumps(info), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
