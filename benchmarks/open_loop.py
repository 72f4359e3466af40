"""Open-loop load at a fixed rate: `python open_loop.py URL RATE SECONDS` with
{"bodies": [...], "headers": {...}} on stdin; prints latency percentiles as JSON, with each
request's send time (seconds since the epoch) and latency, so a caller can tell the seconds after
an event (a champion swap) from the rest.

Request i is sent at start + i / RATE whether or not earlier requests have returned, so a slow
server shows up as latency (queueing included) rather than as a lower request rate. A request
waits for one of the client's connections in a semaphore, not in httpcore's pool: as far as the
symptoms showed (not profiled), the pool scans its queue on every completion, and with thousands
of requests waiting (a server stalled for a few seconds at 100 requests/s) that scan took most of
a core from a 2-core machine the server shares, so a short stall grew until the server stopped
being sent anything. The wait is timed as latency all the same.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
import numpy as np


async def run(url: str, rate: float, seconds: float, bodies: list[str], headers: dict[str, str]) -> dict:
    latencies: list[float] = []
    sent: list[float] = []
    errors = 0
    connections = 200
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    free = asyncio.Semaphore(connections)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def one(body: str) -> None:
            nonlocal errors
            started = time.perf_counter()
            at = time.time()
            async with free:
                try:
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code >= 300:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
            latencies.append((time.perf_counter() - started) * 1000)
            sent.append(at)

        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(bodies[i % len(bodies)])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    values = np.array(latencies)
    return {
        "requests": total,
        "achieved_rps": total / elapsed,
        "errors": errors,
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "p99_ms": float(np.percentile(values, 99)),
        "sent_at": sent,
        "latency_ms": latencies,
    }


if __name__ == "__main__":
    payload = json.load(sys.stdin)
    url, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(run(url, rate, seconds, payload["bodies"], payload["headers"]))))
