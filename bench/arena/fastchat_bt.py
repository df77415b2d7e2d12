#!/usr/bin/env python3
"""FastChat's arena ratings, written from the description of its method (lm-sys/FastChat,
`fastchat/serve/monitor/elo_analysis.py` and `rating_systems.py`), for the side-by-side benchmark.

The method, step by step (each step is a timed phase):

1. read: the battle JSONL into a pandas DataFrame (`pd.read_json(lines=True)`, as FastChat reads
   its battle files with pandas), sorted by `tstamp` (stable) for the online Elo.
2. unique: models numbered by first appearance (a's column, then b's); each battle becomes
   `(a, b, outcome)` with outcome 2 (a won), 1 (tie or tie (bothbad)) or 0 (b won); the unique
   rows and their counts (`np.unique(axis=0, return_counts=True)`). Labels are outcome / 2, so a
   tie is the label 1/2: half a win for each side. (FastChat's older scikit-learn fit instead
   wrote every tie twice, once as a win for each side, each with half the weight; the
   likelihood is the same.)
3. fit: ratings in natural units r, `P(a beats b) = sigmoid(ln(10) * (r_a - r_b))`; minimize the
   count-weighted log-loss with its analytic gradient by scipy's L-BFGS-B from r = 0 (everyone at
   1000), `gtol` 1e-6, at most 100 iterations. Rating = 400 r + 1000 (the gradient sums to zero,
   so the mean stays 1000). FastChat then pins `mixtral-8x7b-instruct-v0.1` at 1114 when that
   model is present; so does this script.
4. bootstrap: `--bootstrap N` multinomial resamples of the battles over the unique rows
   (`numpy.random.default_rng(seed).multinomial(n, counts / n, size=N)`, weights divided by n),
   each refitted as in 3 from zero, in a `multiprocessing.Pool` of `os.cpu_count()` workers as
   FastChat does; interval = the 2.5% and 97.5% quantiles of each model's bootstrap ratings.
   The point rating is the full-data fit of step 3, as on FastChat's leaderboard.
5. elo: online Elo over the battles in time order, K = 4, scale 400, base 10, start 1000
   (a tie scores 1/2).

Output (`--out`, else stdout): `{model: {"rating", "lower", "upper", "elo", "rating_exact_mle"}}`,
best first. `rating_exact_mle` is not FastChat's: it is the same likelihood maximized to the end
(Newton steps from step 3's answer until a step is below 1e-12, mean 1000), because L-BFGS-B with
FastChat's settings stops early (its default `ftol` ends the run while the ratings are still
0.2–0.3 points from the maximum on 100k–1M battles); `fit_vs_exact_mle_max_points` on stderr says
how far. It takes a few milliseconds and is outside the timed phases.
On stderr: one JSON line `{"tool": "fastchat_bt", "phases": {name: seconds}, ...}`.

Usage: fastchat_bt.py BATTLES.jsonl [--bootstrap 100] [--seed 0] [--out ratings.json]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from functools import partial

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

BASE, SCALE, INIT = 10.0, 400.0, 1000.0
ANCHOR_MODEL, ANCHOR_RATING = "mixtral-8x7b-instruct-v0.1", 1114.0


def unique_rows(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(pairs (k, 2) int, labels (k,) in {0, 1/2, 1}, counts (k,), model names)."""
    n = len(df)
    codes, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]], ignore_index=True))
    rows = np.empty((n, 3), dtype=np.int32)
    rows[:, 0] = codes[:n]
    rows[:, 1] = codes[n:]
    winner = df["winner"].to_numpy()
    rows[:, 2] = 1  # tie, tie (bothbad)
    rows[winner == "model_a", 2] = 2
    rows[winner == "model_b", 2] = 0
    known = np.isin(winner, ["model_a", "model_b", "tie", "tie (bothbad)"])
    if not known.all():
        bad = int(np.flatnonzero(~known)[0])
        raise SystemExit(f"battle {bad + 1}: unexpected winner {winner[bad]!r}")
    uniq, counts = np.unique(rows, axis=0, return_counts=True)
    return uniq[:, :2], uniq[:, 2].astype(np.float64) / 2.0, counts.astype(np.float64), list(models)


def loss_and_grad(r: np.ndarray, pairs: np.ndarray, labels: np.ndarray, w: np.ndarray, alpha: float):
    """Weighted negative log-likelihood of the labels and its gradient in r."""
    logit = alpha * (r[pairs[:, 0]] - r[pairs[:, 1]])
    p = expit(logit)
    loss = -(w * (labels * np.log(p) + (1.0 - labels) * np.log1p(-p))).sum()
    g_row = -alpha * w * (labels - p)  # d loss / d r_a; d loss / d r_b is its negative
    grad = np.bincount(pairs[:, 0], weights=g_row, minlength=len(r)) - np.bincount(
        pairs[:, 1], weights=g_row, minlength=len(r)
    )
    return loss, grad


def fit(pairs: np.ndarray, labels: np.ndarray, n_models: int, weights: np.ndarray, tol: float = 1e-6):
    res = minimize(
        loss_and_grad,
        np.zeros(n_models),
        args=(pairs, labels, weights, math.log(BASE)),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 100, "gtol": tol},
    )
    return res.x, int(res.nit), float(np.abs(res.jac).max())


def to_scale(r: np.ndarray, models: list[str]) -> np.ndarray:
    out = SCALE * r + INIT
    if ANCHOR_MODEL in models:
        i = models.index(ANCHOR_MODEL)
        out = out + (ANCHOR_RATING - out[..., [i]])
    return out


def _fit_x(pairs, labels, n_models, weights):
    return fit(pairs, labels, n_models, weights)[0]


def newton_mle(pairs, labels, weights, n_models, x0, iters=50):
    """The exact maximum-likelihood ratings (Newton to 1e-12, mean 0), to see how close step 3 is."""
    alpha = math.log(BASE)
    x = x0 - x0.mean()
    for _ in range(iters):
        _, g = loss_and_grad(x, pairs, labels, weights, alpha)
        p = expit(alpha * (x[pairs[:, 0]] - x[pairs[:, 1]]))
        h_row = alpha * alpha * weights * p * (1.0 - p)
        h = np.zeros((n_models, n_models))
        np.add.at(h, (pairs[:, 0], pairs[:, 1]), -h_row)
        h = h + h.T
        h[np.diag_indices(n_models)] = -h.sum(axis=1)
        h += 1.0 / n_models  # fixes the free shift (mean 0) without changing the other directions
        step = np.linalg.solve(h, g)
        x = x - step
        x -= x.mean()
        if np.abs(step).max() < 1e-12:
            break
    return x


def online_elo(a: np.ndarray, b: np.ndarray, score_a: np.ndarray, n_models: int, k: float = 4.0) -> np.ndarray:
    alpha = math.log(BASE) / SCALE
    r = [INIT] * n_models
    exp = math.exp
    for i, j, s in zip(a.tolist(), b.tolist(), score_a.tolist()):
        e = 1.0 / (1.0 + exp(alpha * (r[j] - r[i])))
        d = k * (s - e)
        r[i] += d
        r[j] -= d
    return np.array(r)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("battles", help="FastChat battle JSONL")
    ap.add_argument("--bootstrap", type=int, default=100, help="bootstrap rounds (0: none)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed (FastChat: 0)")
    ap.add_argument("--procs", type=int, default=os.cpu_count(), help="bootstrap worker processes")
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

    pairs, labels, counts, models = unique_rows(df)
    m = len(models)
    lap("unique")

    x, nit, gmax = fit(pairs, labels, m, counts)
    rating = to_scale(x, models)
    lap("fit")

    lower = upper = np.full(m, np.nan)
    if args.bootstrap > 0:
        n = int(counts.sum())
        rng = np.random.default_rng(args.seed)
        boot_w = rng.multinomial(n, counts / counts.sum(), size=args.bootstrap).astype(np.float64) / n
        fit_one = partial(_fit_x, pairs, labels, m)
        with mp.Pool(args.procs) as pool:
            xs = np.array(pool.map(fit_one, list(boot_w)))
        boot = to_scale(xs, models)
        lower = np.quantile(boot, 0.025, axis=0)
        upper = np.quantile(boot, 0.975, axis=0)
    lap("bootstrap")

    n = len(df)
    codes = {name: i for i, name in enumerate(models)}
    a = df["model_a"].map(codes).to_numpy()
    b = df["model_b"].map(codes).to_numpy()
    w = df["winner"].to_numpy()
    score = np.where(w == "model_a", 1.0, np.where(w == "model_b", 0.0, 0.5))
    elo = online_elo(a, b, score, m)
    lap("elo")

    # Not FastChat's: the exact maximum of the same likelihood, for the comparison only; its time
    # (a few ms) is left out of the total.
    exact = newton_mle(pairs, labels, counts, m, x)
    off = float(np.abs((x - x.mean()) - exact).max() * SCALE)
    exact = exact * SCALE + INIT
    lap("exact_check")

    order = np.argsort(-rating, kind="stable")
    result = {
        models[i]: {
            "rating": float(rating[i]),
            "lower": float(lower[i]),
            "upper": float(upper[i]),
            "elo": float(elo[i]),
            "rating_exact_mle": float(exact[i]),
        }
        for i in order
    }
    text = json.dumps(result, indent=1) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    lap("write")
    phases["total"] = round(time.perf_counter() - t0 - phases["exact_check"], 4)
    info = {
        "tool": "fastchat_bt",
        "battles": n,
        "models": m,
        "unique_rows": int(len(counts)),
        "bootstrap": args.bootstrap,
        "procs": args.procs,
        "fit_iterations": nit,
        "fit_max_abs_grad": gmax,
        "fit_vs_exact_mle_max_points": off,
        "phases": phases,
    }
    print(json.dumps(info), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
