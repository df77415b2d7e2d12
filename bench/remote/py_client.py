#!/usr/bin/env python3
"""A vLLM-style streaming benchmark client (aiohttp), for side-by-side runs
with `podium bench` against the same server.

The request loop is vLLM's `async_request_openai_completions`
(benchmarks/backend_request_func.py): `async for chunk_bytes in
response.content` (line by line), strip, drop `data: `, `json.loads`, stamp
`time.perf_counter()` for each chunk with choices, usage from the final chunk.
Concurrency is bounded by a semaphore over `asyncio.gather` of all requests,
as vLLM's `benchmark_serving.py --max-concurrency` does; one shared
`ClientSession` (newer vLLM; the older one opened a session per request,
which is slower still).

Prints one JSON object: counts, TTFT / TPOT percentiles (same definitions as
docs/METRICS.md: TPOT = (E2E - TTFT) / (N_out - 1), linear-interpolated
percentiles), and the events it parsed.
"""

import argparse
import asyncio
import json
import time

import aiohttp


def percentile(values, q):
    v = sorted(values)
    if not v:
        return None
    pos = (len(v) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def pcts(values):
    return {f"p{q}": percentile(values, q) for q in (50, 90, 99)} if values else None


async def one(session, url, payload, out, index):
    t0_ns = time.monotonic_ns()  # same clock as fake_server.py's stamps, for --stamps
    first_ns = None
    ttft, most_recent, st = 0.0, 0.0, time.perf_counter()
    itl, generated, n_out, events = [], "", None, 0
    async with session.post(url=url, json=payload) as response:
        if response.status != 200:
            out.append({"ok": False, "error": response.status})
            return
        first = False
        async for chunk_bytes in response.content:
            chunk_bytes = chunk_bytes.strip()
            if not chunk_bytes:
                continue
            events += 1
            chunk = chunk_bytes.decode("utf-8").removeprefix("data: ")
            if chunk != "[DONE]":
                data = json.loads(chunk)
                if choices := data.get("choices"):
                    text = choices[0].get("text")
                    timestamp = time.perf_counter()
                    if not first:
                        first = True
                        ttft = timestamp - st
                        first_ns = time.monotonic_ns()
                    else:
                        itl.append(timestamp - most_recent)
                    most_recent = timestamp
                    generated += text or ""
                elif usage := data.get("usage"):
                    n_out = usage.get("completion_tokens")
        latency = most_recent - st
    out.append({"ok": True, "ttft": ttft, "e2e": latency, "n_out": n_out, "events": events,
                "index": index, "t0_ns": t0_ns, "first_ns": first_ns})


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", default="http://127.0.0.1:8765/v1")
    ap.add_argument("--model", default="fake")
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--input-tokens", type=int, default=16)
    ap.add_argument("--output-tokens", type=int, default=100)
    ap.add_argument("--stamps", help="write per-request monotonic stamps (JSON) here")
    args = ap.parse_args()
    url = args.base_url.rstrip("/") + "/completions"
    sem = asyncio.Semaphore(args.concurrency)
    out = []
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=6 * 60 * 60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def limited(i):
            prompt = f"Request {i}-0:" + " word" * max(0, args.input_tokens - 4)
            payload = {"model": args.model, "prompt": prompt, "max_tokens": args.output_tokens,
                       "temperature": 0.0, "stream": True,
                       "stream_options": {"include_usage": True}}
            async with sem:
                await one(session, url, payload, out, i)

        t0 = time.perf_counter()
        await asyncio.gather(*(limited(i) for i in range(args.requests)))
        wall = time.perf_counter() - t0
    ok = [r for r in out if r["ok"]]
    if args.stamps:
        with open(args.stamps, "w") as f:
            json.dump([{k: r[k] for k in ("index", "t0_ns", "first_ns", "ttft")} for r in ok], f)
    tpot = [(r["e2e"] - r["ttft"]) / (r["n_out"] - 1) for r in ok if r["n_out"] and r["n_out"] > 1]
    print(json.dumps({
        "n_ok": len(ok), "n_failed": len(out) - len(ok), "wall_s": wall,
        "events": sum(r["events"] for r in ok),
        "mean_output_tokens": sum(r["n_out"] or 0 for r in ok) / max(1, len(ok)),
        "ttft_s": pcts([r["ttft"] for r in ok]), "tpot_s": pcts(tpot),
    }))


if __name__ == "__main__":
    asyncio.run(main())
