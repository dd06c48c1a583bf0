"""`charrnn serve` under load: 1, 8, 64 and 256 concurrent clients on loopback, streaming and
not, against the same requests sent one at a time, in the same run.

A default-size LSTM (128 units, 2 layers; trained one step: speed does not depend on the
weights, and BENCH_SERVE_RUN names a trained run to use instead) is served on a free loopback
port. Each level sends max(32, clients) completions of 300 characters (seed i, temperature 1)
from that many concurrent clients, on a light asyncio HTTP/1.1 client, and reports the total
characters a second, the time to the first character (p50/p99; for a whole completion, its
arrival) and the speed-up over the same completions one after another. Bounded: at most
BENCH_SERVE_SECONDS (180) in all; levels left out past that are said to be.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time

from benchmarks.common import charrnn, corpus, emit, scratch_home

LEVELS = (1, 8, 64, 256)
CHARS = 300


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _one(port: int, seed: int, stream: bool) -> tuple[float, float, int]:
    """One completion: (seconds to its first character, seconds in all, characters)."""
    body = json.dumps({"prompt": "ROMEO:", "max_tokens": CHARS, "temperature": 1.0,
                       "seed": seed, "stream": stream}).encode()  # fmt: skip
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: b\r\nConnection: close\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body))  # fmt: skip
    first, data = None, b""
    while chunk := await reader.read(65536):
        data += chunk
        if first is None and (not stream or b'"text": "' in data.split(b"\r\n\r\n", 1)[-1]):
            first = time.perf_counter() - start
    writer.close()
    total = time.perf_counter() - start
    payload = data.split(b"\r\n\r\n", 1)[1].decode()
    if stream:
        texts = re.findall(r'"text": ("(?:[^"\\]|\\.)*")', payload)
        made = sum(len(json.loads(t)) for t in texts)
    else:
        made = len(json.loads(payload[payload.index("{") : payload.rindex("}") + 1])
                   ["choices"][0]["text"])  # fmt: skip
    return first or total, total, made


async def _level(port: int, clients: int, count: int, stream: bool) -> dict:
    """`count` completions from `clients` concurrent clients; then the same one at a time."""
    queue = list(range(count))
    results: list[tuple[float, float, int]] = []

    async def client() -> None:
        while queue:
            results.append(await _one(port, queue.pop(), stream))

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    together = time.perf_counter() - start
    start = time.perf_counter()
    for seed in range(count):
        await _one(port, seed, stream)
    alone = time.perf_counter() - start
    made = sum(r[2] for r in results)
    firsts = [r[0] * 1000 for r in results]
    return {
        "clients": clients, "stream": stream, "completions": count,
        "chars_per_s": round(made / together), "sequential_chars_per_s": round(made / alone),
        "speedup": round(alone / together, 2),
        "first_char_ms_p50": round(statistics.median(firsts), 1),
        "first_char_ms_p99": round(_percentile(firsts, 0.99), 1),
    }  # fmt: skip


def _model() -> str:
    given = os.environ.get("BENCH_SERVE_RUN")
    if given:
        return given
    scratch_home()
    subprocess.run([*charrnn(), "train", "--corpus", str(corpus()), "--run", "b",
                    "--max-steps", "1", "--quiet"], check=True, capture_output=True)  # fmt: skip
    return "b"


def run() -> None:
    budget = float(os.environ.get("BENCH_SERVE_SECONDS", 180))
    run_name = _model()
    server = subprocess.Popen(
        [*charrnn(), "serve", "--run", run_name, "--port", "0", "--max-streams", "256"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = server.stderr.readline() if server.stderr else ""
        found = re.search(r"127\.0\.0\.1:(\d+)/", line)
        if not found:
            sys.exit(f"charrnn serve did not start: {line}")
        port, ends = int(found.group(1)), time.monotonic() + budget
        for clients in LEVELS:
            for stream in (False, True):
                if time.monotonic() > ends:
                    emit(bench="serve", clients=clients, stream=stream, skipped="time budget")
                    continue
                figures = asyncio.run(_level(port, clients, max(32, clients), stream))
                emit(bench="serve", **figures)
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    run()
