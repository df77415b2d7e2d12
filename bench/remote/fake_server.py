#!/usr/bin/env python3
"""A programmable fake OpenAI-compatible streaming server (stdlib only).

It answers POST /v1/completions and /v1/chat/completions with a streamed
(text/event-stream, chunked) response:

  * waits `ttft_ms` after the request is read, then sends the first content chunk;
  * sends later content chunks on an absolute schedule `t_recv + ttft + k * gap`
    (no drift: a late chunk does not push the next one back);
  * every `multi_every`-th chunk carries `multi_n` tokens instead of one;
  * sends `usage` (prompt_tokens, completion_tokens) in a final chunk with empty
    `choices`, then `data: [DONE]` (what vLLM does with include_usage).
  * `gap_ms=0 ttft_ms=0` is a zero-delay firehose: one write per event;
    with `burst=1` as well, the whole stream goes out in one write (so the
    server is never the bottleneck and a client gets large reads: what its
    CPU per event costs when it, not the server, sets the pace).

Every content chunk is stamped with time.monotonic_ns() right before its write,
so the truth a client should measure is known twice: the injected delays, and
the server's own send times (which include the event loop's sleep overshoot).

Control (plain HTTP on the same port):
  GET  /config?ttft_ms=50&gap_ms=10&multi_every=5&multi_n=3   set the schedule
  GET  /stats        per-request stamps (JSON) and counters
  GET  /reset        forget stamps and counters
"""

import argparse
import asyncio
import json
import os
import re
import socket
import sys
import time
from urllib.parse import parse_qs, urlsplit

CONFIG = {"ttft_ms": 0.0, "gap_ms": 0.0, "multi_every": 0, "multi_n": 1, "burst": 0}
STATE = {"requests": [], "inflight": 0, "max_inflight": 0, "events": 0, "conns": 0}
INDEX_RE = re.compile(r"Request (\d+)-")
WORD = "tok"


def chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def event(obj) -> bytes:
    return chunked(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


def plain(writer, status: str, body: bytes, ctype="application/json"):
    writer.write(
        b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
        % (status.encode(), ctype.encode(), len(body), body)
    )


async def sleep_until(deadline_ns: int):
    delay = (deadline_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def stream(writer, body: dict, t_recv: int, rec: dict):
    chat = rec["path"].endswith("/chat/completions")
    n_tokens = int(body.get("max_tokens") or 16)
    model = body.get("model", "fake")
    prompt = body.get("prompt")
    if prompt is None:
        prompt = " ".join(m.get("content", "") for m in body.get("messages", []))
    n_prompt = len(str(prompt).split())
    m = INDEX_RE.search(str(prompt))
    rec["index"] = int(m.group(1)) if m else None
    ttft_ns = int(CONFIG["ttft_ms"] * 1e6)
    gap_ns = int(CONFIG["gap_ms"] * 1e6)
    every, multi = int(CONFIG["multi_every"]), int(CONFIG["multi_n"])
    zero = ttft_ns == 0 and gap_ns == 0

    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    base = {"id": "cmpl-fake", "created": int(time.time()), "model": model}
    if chat:
        base["object"] = "chat.completion.chunk"
        # A role-only first chunk, as vLLM sends: it carries no token.
        writer.write(event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}))
    else:
        base["object"] = "text_completion"

    # Pre-render the two chunk shapes (1 token, `multi` tokens) once.
    def render(k, last):
        text = (" " + WORD) * k
        if chat:
            choice = {"index": 0, "delta": {"content": text}, "finish_reason": "length" if last else None}
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length" if last else None}
        return event({**base, "choices": [choice]})

    cache = {}
    sent = 0
    k = 0
    stamps = []
    transport = writer.transport
    burst = [] if zero and CONFIG["burst"] else None
    while sent < n_tokens:
        take = multi if (every > 0 and (k + 1) % every == 0) else 1
        take = min(take, n_tokens - sent)
        last = sent + take == n_tokens
        key = (take, last)
        if key not in cache:
            cache[key] = render(take, last)
        if not zero:
            await sleep_until(t_recv + ttft_ns + k * gap_ns)
        now = time.monotonic_ns()
        if burst is None:
            writer.write(cache[key])
        else:
            burst.append(cache[key])
        stamps.append(now)
        sent += take
        k += 1
        if zero and transport.get_write_buffer_size() > 65536:
            await writer.drain()
    if burst is not None:
        writer.write(b"".join(burst))
    usage = {"prompt_tokens": n_prompt, "completion_tokens": n_tokens, "total_tokens": n_prompt + n_tokens}
    writer.write(event({**base, "choices": [], "usage": usage}))
    writer.write(chunked(b"data: [DONE]\n\n"))
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    rec.update(
        t_first=stamps[0] if stamps else None,
        t_last=stamps[-1] if stamps else None,
        t_end=time.monotonic_ns(),
        n_tokens=n_tokens,
        n_chunks=k,
        ttft_ms=CONFIG["ttft_ms"],
        gap_ms=CONFIG["gap_ms"],
    )
    STATE["events"] += k + 2 + (1 if chat else 0)


async def handle(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    STATE["conns"] += 1
    conn = STATE["conns"]
    t_accept = time.monotonic_ns()
    n_on_conn = 0
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            t_head = time.monotonic_ns()
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0"))
            raw = await reader.readexactly(length) if length else b""
            t_recv = time.monotonic_ns()
            path = urlsplit(target).path
            if method == "POST" and path.endswith(("/completions", "/chat/completions")):
                n_on_conn += 1
                body = json.loads(raw or b"{}")
                rec = {"path": path, "conn": conn, "nth_on_conn": n_on_conn,
                       "t_accept": t_accept, "t_head": t_head, "t_recv": t_recv}
                STATE["inflight"] += 1
                STATE["max_inflight"] = max(STATE["max_inflight"], STATE["inflight"])
                try:
                    await stream(writer, body, t_recv, rec)
                finally:
                    STATE["inflight"] -= 1
                STATE["requests"].append(rec)
            elif path == "/config":
                for key, values in parse_qs(urlsplit(target).query).items():
                    if key in CONFIG:
                        CONFIG[key] = type(CONFIG[key])(float(values[-1]))
                plain(writer, "200 OK", json.dumps(CONFIG).encode())
            elif path == "/stats":
                plain(writer, "200 OK", json.dumps({**STATE, "config": CONFIG}).encode())
            elif path == "/reset":
                STATE.update(requests=[], max_inflight=STATE["inflight"], events=0)
                plain(writer, "200 OK", b"{}")
            elif path.endswith("/models"):
                plain(writer, "200 OK", b'{"object":"list","data":[{"id":"fake","object":"model"}]}')
            else:
                plain(writer, "404 Not Found", b'{"error":{"message":"not found"}}')
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.CancelledError):
        return
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    for key, value in CONFIG.items():
        ap.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    args = ap.parse_args()
    for key in CONFIG:
        CONFIG[key] = getattr(args, key)
    server = await asyncio.start_server(handle, args.host, args.port, backlog=1024)
    print(f"fake server on http://{args.host}:{args.port}/v1 pid {os.getpid()}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
