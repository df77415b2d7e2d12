#!/usr/bin/env python3
"""Drive `podium bench` and the vLLM-style Python client against fake_server.py
and compare what they measure with the truth (injected delays and the server's
own send stamps). Called by run.sh; prints markdown tables and writes the raw
numbers to --out (JSON).

Truth per request, from the server's stamps (CLOCK_MONOTONIC, nanoseconds):
  TTFT_server = t_first_send - t_request_read
  TPOT_server = (t_last_send - t_first_send) / (N - 1)
and from the schedule: TTFT_injected = D, TPOT_injected = (chunks - 1) * G / (N - 1).
`podium bench --format json` gives percentiles only, so per-percentile errors are
compared: measured_pXX - truth_pXX. With a constant injected delay that *is* the
pXX of the per-request error against the injection.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
WARMUP_INDEX = 1 << 40  # podium's warm-up prompts use indexes from usize::MAX / 2


def percentile(values, q):
    v = sorted(values)
    if not v:
        return float("nan")
    pos = (len(v) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


class Server:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=60) as r:
            return json.loads(r.read())

    def config(self, **kw):
        return self.get("/config?" + "&".join(f"{k}={v}" for k, v in kw.items()))

    def reset(self):
        self.get("/reset")

    def stats(self):
        return self.get("/stats")


def timed(cmd):
    """Run cmd under /usr/bin/time; return (stdout, wall_s, cpu_user_s, cpu_sys_s, max_rss_kb)."""
    full = ["/usr/bin/time", "-f", "TIME %e %U %S %M"] + cmd
    p = subprocess.run(full, capture_output=True, text=True)
    m = re.search(r"TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    return p.stdout, float(m[1]), float(m[2]), float(m[3]), int(m[4])


def podium_cmd(args, spec_opts, requests, conc, inp, out, warmup):
    spec = f"openai-compatible:{args.base}#fake{spec_opts}"
    return [args.podium, "bench", "-m", spec, "--requests", str(requests),
            "--concurrency", str(conc), "--input-tokens", str(inp),
            "--output-tokens", str(out), "--warmup", str(warmup), "--format", "json"]


def py_cmd(args, requests, conc, inp, out):
    return [args.python, os.path.join(HERE, "py_client.py"), "--base-url", args.base,
            "--requests", str(requests), "--concurrency", str(conc),
            "--input-tokens", str(inp), "--output-tokens", str(out)]


def server_truth(stats):
    reqs = [r for r in stats["requests"] if r.get("index") is not None and r["index"] < WARMUP_INDEX]
    ttft = [(r["t_first"] - r["t_recv"]) / 1e9 for r in reqs]
    tpot = [(r["t_last"] - r["t_first"]) / 1e9 / (r["n_tokens"] - 1) for r in reqs if r["n_tokens"] > 1]
    inj_tpot = [(r["n_chunks"] - 1) * r["gap_ms"] / 1e3 / (r["n_tokens"] - 1) for r in reqs if r["n_tokens"] > 1]
    fresh = [r for r in reqs if r["nth_on_conn"] == 1]
    return {"n": len(reqs), "ttft": ttft, "tpot": tpot, "inj_tpot": inj_tpot,
            "tokens": [r["n_tokens"] for r in reqs], "fresh_connections": len(fresh),
            "max_inflight": stats["max_inflight"], "events": stats["events"]}


def ms(x):
    return f"{x * 1e3:+.3f}"


def accuracy(args, srv, rows, raw):
    D, every, multi = args.ttft_ms, args.multi_every, args.multi_n
    # (label, concurrency, requests, gap ms, tokens, also run the Python client)
    levels = [("c1", 1, args.acc_requests_c1, args.gap_ms, args.acc_tokens, args.py_accuracy),
              ("c64", 64, args.acc_requests_c64, args.gap_ms, args.acc_tokens, args.py_accuracy),
              ("c256", 256, args.acc_requests_c256, args.gap_ms, args.acc_tokens, True),
              ("c256-light", 256, args.acc_requests_c256, args.gap_ms_light, args.tokens_light, True)]
    for rep in range(args.repeats):
        for label, conc, n, G, tokens, with_py in levels:
            srv.config(ttft_ms=D, gap_ms=G, multi_every=every, multi_n=multi)
            stamps = f"/tmp/podium-remote-py-stamps-{os.getpid()}.json"
            records = f"/tmp/podium-remote-records-{os.getpid()}.jsonl"
            clients = [("podium", podium_cmd(args, "?concurrency=256", n, conc, 32, tokens, 2)
                        + ["--records", records])]
            if with_py:
                clients.append(("python", py_cmd(args, n, conc, 32, tokens) + ["--stamps", stamps]))
            for name, cmd in clients:
                srv.reset()
                out, wall, usr, sy, rss = timed(cmd)
                stats = srv.stats()
                truth = server_truth(stats)
                if name == "podium":
                    s = json.loads(out)["levels"][0]["summary"]
                else:
                    s = json.loads(out)
                ttft, tpot, n_ok, tok = s["ttft_s"], s["tpot_s"], s["n_ok"], s["mean_output_tokens"]
                row = {"client": name, "level": label, "concurrency": conc, "gap_ms": G, "tokens": tokens,
                       "repeat": rep, "requests": n_ok, "client_cpu_s": usr + sy,
                       "server_requests": truth["n"], "max_inflight": truth["max_inflight"],
                       "fresh_connections": truth["fresh_connections"],
                       "tokens_measured": tok, "tokens_true": sum(truth["tokens"]) / max(1, truth["n"])}
                for q in (50, 99):
                    k = f"p{q}"
                    row[f"ttft_{k}_ms"] = ttft[k] * 1e3
                    row[f"ttft_{k}_err_injected_ms"] = (ttft[k] - D / 1e3) * 1e3
                    row[f"ttft_{k}_err_server_ms"] = (ttft[k] - percentile(truth["ttft"], q)) * 1e3
                    row[f"server_ttft_{k}_ms"] = percentile(truth["ttft"], q) * 1e3
                    row[f"tpot_{k}_ms"] = tpot[k] * 1e3
                    row[f"tpot_{k}_err_injected_ms"] = (tpot[k] - percentile(truth["inj_tpot"], q)) * 1e3
                    row[f"tpot_{k}_err_server_ms"] = (tpot[k] - percentile(truth["tpot"], q)) * 1e3
                # Per-request truth: the client's own t0 and first-token stamps joined
                # with the server's stamps (same CLOCK_MONOTONIC, same host). Podium
                # writes them with --records, the Python client with --stamps.
                by_index = {r["index"]: r for r in stats["requests"]}
                if name == "python":
                    client_stamps = [(c["index"], c["t0_ns"], c["first_ns"], c["ttft"])
                                     for c in json.load(open(stamps))]
                    os.unlink(stamps)
                else:
                    with open(records) as f:
                        recs = [json.loads(line) for line in f]
                    os.unlink(records)
                    client_stamps = [(c["index"], c["t0_monotonic_ns"], c["first_token_monotonic_ns"], c["ttft_s"])
                                     for c in recs if c.get("ok")]
                per = []
                for index, t0_ns, first_ns, ttft_s in client_stamps:
                    r = by_index.get(index)
                    if r and first_ns and t0_ns and r.get("t_first"):
                        per.append({"err": ttft_s - (r["t_first"] - t0_ns) / 1e9,
                                    "request_path": (r["t_recv"] - t0_ns) / 1e9,
                                    "response_path": (first_ns - r["t_first"]) / 1e9})
                if per:
                    for key in ("err", "request_path", "response_path"):
                        for q in (50, 99):
                            row[f"per_request_{key}_p{q}_ms"] = percentile([p[key] for p in per], q) * 1e3
                rows.append(row)
                print(f"  accuracy {name} {label} rep={rep}: TTFT p50 {row['ttft_p50_ms']:.2f} p99 {row['ttft_p99_ms']:.2f} ms "
                      f"(server p50 {row['server_ttft_p50_ms']:.2f} p99 {row['server_ttft_p99_ms']:.2f}), "
                      f"max in flight {truth['max_inflight']}, client cpu {usr + sy:.2f} s", file=sys.stderr, flush=True)


def default_concurrency_check(args, srv, raw):
    """`podium bench --concurrency 64` with a spec that does not say concurrency=64."""
    srv.config(ttft_ms=args.ttft_ms, gap_ms=args.gap_ms, multi_every=0, multi_n=1)
    srv.reset()
    out, *_ = timed(podium_cmd(args, "", 64, 64, 32, 16, 0))
    raw["default_spec_concurrency64_max_inflight"] = srv.stats()["max_inflight"]
    s = json.loads(out)["levels"][0]["summary"]
    raw["default_spec_concurrency64_queue_p50_ms"] = s["queue_s"]["p50"] * 1e3


def overhead(args, srv, rows):
    """CPU per event against a zero-delay server, in two modes: `paced`, one write per
    event (the Python server sets the pace, so a quick client is woken for a few events
    at a time), and `burst`, each stream written at once (the client sets the pace)."""
    c, tokens = args.ovh_concurrency, args.ovh_tokens
    # Burst runs are ~8x quicker: 4x the requests keeps their CPU times well above
    # /usr/bin/time's 10 ms resolution.
    for mode, burst, n in [("paced", 0, args.ovh_requests), ("burst", 1, 4 * args.ovh_requests)]:
        srv.config(ttft_ms=0, gap_ms=0, multi_every=0, multi_n=1, burst=burst)
        # Fixed cost of each process (start-up, imports, runtime, output): one 1-token request.
        for rep in range(args.repeats):
            # podium-reqwest: the same binary through reqwest/hyper (`http_client=reqwest`,
            # what https:// endpoints use), for an A/B of Podium's own HTTP/1.1 client.
            for name, big, small in [
                ("podium", podium_cmd(args, f"?concurrency={c}", n, c, 16, tokens, 0),
                 podium_cmd(args, "?concurrency=1", 1, 1, 16, 1, 0)),
                ("podium-reqwest", podium_cmd(args, f"?concurrency={c}&http_client=reqwest", n, c, 16, tokens, 0),
                 podium_cmd(args, "?concurrency=1&http_client=reqwest", 1, 1, 16, 1, 0)),
                ("python", py_cmd(args, n, c, 16, tokens), py_cmd(args, 1, 1, 16, 1)),
            ]:
                srv.reset()
                _, w0, u0, s0, _ = timed(small)
                srv.reset()
                _, wall, usr, sy, rss = timed(big)
                events = srv.stats()["events"]
                cpu = usr + sy
                rows.append({"mode": mode, "client": name, "repeat": rep, "requests": n, "concurrency": c,
                             "events": events, "wall_s": wall, "cpu_s": cpu, "user_s": usr, "sys_s": sy,
                             "max_rss_kb": rss, "startup_cpu_s": u0 + s0,
                             "events_per_cpu_s": events / cpu,
                             "events_per_cpu_s_net": events / max(1e-9, cpu - (u0 + s0))})
                print(f"  overhead {mode} {name} rep={rep}: {events} events, cpu {cpu:.2f} s "
                      f"(user {usr:.2f}, sys {sy:.2f}, startup {u0 + s0:.2f}), wall {wall:.2f} s, "
                      f"{events / cpu:,.0f} events/cpu-s", file=sys.stderr, flush=True)
    srv.config(burst=0)


def spread(values, fmt="{:+.2f}"):
    values = [v for v in values if v == v]
    if not values:
        return "n/a"
    med = sorted(values)[len(values) // 2]
    return f"{fmt.format(med)} [{fmt.format(min(values))} .. {fmt.format(max(values))}]"


def report(args, acc, ovh, raw):
    print(f"\n### Timing accuracy (injected TTFT {args.ttft_ms} ms, gap {args.gap_ms} ms, "
          f"every {args.multi_every}th chunk {args.multi_n} tokens, {args.acc_tokens} tokens/request; "
          f"c256-light: gap {args.gap_ms_light} ms, {args.tokens_light} tokens; "
          f"{args.repeats} runs: median [min .. max], ms)\n")
    print("| client | level | requests | TTFT p50 err vs injected | TTFT p99 err vs injected | TTFT p50 err vs server stamps | TTFT p99 err vs server stamps | TPOT p50 err vs server | TPOT p99 err vs server | TPOT p50 err vs injected | tokens measured / true | max in flight |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    order = ["c1", "c64", "c256", "c256-light"]
    keys = sorted({(r["client"], r["level"]) for r in acc}, key=lambda k: (order.index(k[1]), k[0] != "podium"))
    for client, conc in keys:
        rs = [r for r in acc if r["client"] == client and r["level"] == conc]
        col = lambda k, f="{:+.2f}": spread([r[k] for r in rs], f)
        tok = f"{rs[0]['tokens_measured']:.1f} / {rs[0]['tokens_true']:.1f}"
        if any(abs(r["tokens_measured"] - r["tokens_true"]) > 1e-9 for r in rs):
            tok += " (MISMATCH)"
        print(f"| {client} | {conc} | {rs[0]['requests']} | {col('ttft_p50_err_injected_ms')} | {col('ttft_p99_err_injected_ms')} | "
              f"{col('ttft_p50_err_server_ms')} | {col('ttft_p99_err_server_ms')} | {col('tpot_p50_err_server_ms', '{:+.3f}')} | "
              f"{col('tpot_p99_err_server_ms', '{:+.3f}')} | {col('tpot_p50_err_injected_ms', '{:+.3f}')} | {tok} | "
              f"{max(r['max_inflight'] for r in rs)} |")
    print("\nServer-stamped TTFT (its own sleep overshoot on this machine), ms, median of runs:")
    for client, conc in keys:
        rs = [r for r in acc if r["client"] == client and r["level"] == conc]
        print(f"- {client} {conc}: server p50 {spread([r['server_ttft_p50_ms'] for r in rs], '{:.2f}')}, "
              f"p99 {spread([r['server_ttft_p99_ms'] for r in rs], '{:.2f}')}; measured p50 "
              f"{spread([r['ttft_p50_ms'] for r in rs], '{:.2f}')}, p99 {spread([r['ttft_p99_ms'] for r in rs], '{:.2f}')}")
    for client in ("podium", "python"):
        cl = [r for r in acc if r["client"] == client and "per_request_err_p50_ms" in r]
        if not cl:
            continue
        print(f"\n{client} client, per request (its own t0 / first-token stamps joined with the server's send stamps), ms:")
        for level in order:
            rs = [r for r in cl if r["level"] == level]
            if rs:
                f = lambda k: spread([r[k] for r in rs], "{:.2f}")
                print(f"- {level}: TTFT error vs the server's first send stamp (= response path, send -> client stamp) "
                      f"p50 {f('per_request_err_p50_ms')}, p99 {f('per_request_err_p99_ms')}; "
                      f"request path (client t0 -> server has read the request) p50 {f('per_request_request_path_p50_ms')}, "
                      f"p99 {f('per_request_request_path_p99_ms')}")
    if "default_spec_concurrency64_max_inflight" in raw:
        print(f"\n`--concurrency 64` with a spec lacking `?concurrency=`: the server saw at most "
              f"{raw['default_spec_concurrency64_max_inflight']} requests in flight "
              f"(queue p50 {raw['default_spec_concurrency64_queue_p50_ms']:.1f} ms).")
    for mode in ("paced", "burst"):
        rows = [r for r in ovh if r["mode"] == mode]
        if not rows:
            continue
        print(f"\n### Client overhead, {mode} (zero-delay server, "
              f"{'one write per event' if mode == 'paced' else 'each stream in one write'}, "
              f"{args.ovh_tokens} tokens one per event, {rows[0]['requests']} requests, "
              f"concurrency {args.ovh_concurrency}; {args.repeats} runs: median [min .. max])\n")
        print("| client | SSE events | client CPU s | user s | sys s | start-up CPU s | wall s | events per CPU-s | events per CPU-s, start-up excluded | max RSS MiB |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        by = lambda client: [r for r in rows if r["client"] == client]
        for client in ("podium", "podium-reqwest", "python"):
            rs = by(client)
            col = lambda k, f: spread([r[k] for r in rs], f)
            print(f"| {client} | {rs[0]['events']} | {col('cpu_s', '{:.2f}')} | {col('user_s', '{:.2f}')} | "
                  f"{col('sys_s', '{:.2f}')} | {col('startup_cpu_s', '{:.2f}')} | {col('wall_s', '{:.2f}')} | "
                  f"{col('events_per_cpu_s', '{:,.0f}')} | {col('events_per_cpu_s_net', '{:,.0f}')} | "
                  f"{max(r['max_rss_kb'] for r in rs) / 1024:.0f} |")
        print()
        for a, b in [("podium", "python"), ("podium-reqwest", "python"), ("podium", "podium-reqwest")]:
            ratios = [p["events_per_cpu_s"] / q["events_per_cpu_s"] for p, q in zip(by(a), by(b))]
            print(f"- {a} / {b} events per CPU-second, pairwise by run: {spread(ratios, '{:.1f}x')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8765/v1")
    ap.add_argument("--podium", default="target/release/podium")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ttft-ms", type=float, default=50.0)
    ap.add_argument("--gap-ms", type=float, default=5.0)
    ap.add_argument("--multi-every", type=int, default=4)
    ap.add_argument("--multi-n", type=int, default=3)
    ap.add_argument("--acc-tokens", type=int, default=32)
    ap.add_argument("--acc-requests-c1", type=int, default=40)
    ap.add_argument("--acc-requests-c64", type=int, default=256)
    ap.add_argument("--acc-requests-c256", type=int, default=512)
    ap.add_argument("--gap-ms-light", type=float, default=50.0, help="gap of the light c=256 level")
    ap.add_argument("--tokens-light", type=int, default=12, help="tokens of the light c=256 level")
    ap.add_argument("--py-accuracy", action="store_true", help="also run the Python client at c=1 and 64")
    ap.add_argument("--ovh-requests", type=int, default=128)
    ap.add_argument("--ovh-concurrency", type=int, default=64)
    ap.add_argument("--ovh-tokens", type=int, default=1000)
    ap.add_argument("--skip", default="", help="comma list: accuracy,overhead,default")
    ap.add_argument("--out", default="/tmp/podium-remote-bench.json")
    args = ap.parse_args()
    srv = Server(args.base.rsplit("/v1", 1)[0])
    skip = set(filter(None, args.skip.split(",")))
    acc, ovh, raw = [], [], {}
    if "accuracy" not in skip:
        accuracy(args, srv, acc, raw)
    if "default" not in skip:
        default_concurrency_check(args, srv, raw)
    if "overhead" not in skip:
        overhead(args, srv, ovh)
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "accuracy": acc, "overhead": ovh, "checks": raw,
                   "nproc": os.cpu_count(), "loadavg": os.getloadavg(), "time": time.time()}, f, indent=1)
    report(args, acc, ovh, raw)


if __name__ == "__main__":
    main()
