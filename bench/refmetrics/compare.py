#!/usr/bin/env python3
"""Largest differences between the Python values (python_values.py's fixture) and
Podium's (`cargo run -p podium-tasks --example refmetrics -- FIXTURE`).

    compare.py FIXTURE.jsonl PODIUM.jsonl [--tolerance 1e-9]

Prints a Markdown table (metric, pairs, max |difference|, the pair it is at) and exits 1
when any difference exceeds the tolerance.
"""
import argparse
import json
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("fixture")
    parser.add_argument("podium")
    parser.add_argument("--tolerance", type=float, default=1e-9)
    args = parser.parse_args()
    python = [json.loads(line) for line in open(args.fixture, encoding="utf-8")]
    podium = [json.loads(line) for line in open(args.podium, encoding="utf-8")]
    if len(python) != len(podium):
        sys.exit(f"{len(python)} fixture lines, {len(podium)} Podium lines")
    worst = {}
    for i, (p, r) in enumerate(zip(python[:-1], podium[:-1])):
        for metric, expected in p["python"].items():
            got = r["podium"][metric]
            if isinstance(expected, list):
                diff = max((abs(a - b) for a, b in zip(expected, got)), default=0.0)
                if len(expected) != len(got):
                    diff = float("inf")
            else:
                diff = abs(expected - got)
            n, best, at = worst.get(metric, (0, -1.0, None))
            worst[metric] = (n + 1, max(best, diff), i if diff > best else at)
    for metric, expected in python[-1]["corpus"].items():
        diff = abs(expected - podium[-1]["corpus"][metric])
        worst["corpus " + metric] = (1, diff, "all")
    print("| metric | pairs | max abs difference | at pair |")
    print("|---|---|---|---|")
    failed = False
    for metric, (n, diff, at) in worst.items():
        print(f"| `{metric}` | {n} | {diff:.3g} | {at} |")
        failed |= diff > args.tolerance
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
