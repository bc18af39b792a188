#!/usr/bin/env python3
"""vdb-serve past saturation: does it shed the excess at once, keep accepted requests fast, and
hold its memory flat? Exact searches (k=10) on a 50k x 384 flat library, first at a load the
server carries (2 connections), then far past it (64 connections) for --minutes, with the
server's --max-searches at 4. Per request the client records status and latency; every 10 s
the server's resident memory is read from /proc.

The load generator is a small asyncio HTTP/1.1 client on keep-alive connections, so it can
tell accepted requests' latency from shed ones' (wrk reports them together). It shares the
2-core machine with the server: figures are lower bounds, compare within a run.

    bench/.venv/bin/python bench/overload.py [--minutes 10]
"""
import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, ROOT, Server, build_tools, percentile, sh  # noqa: E402

DATA = os.path.join(OUT, "overload-data")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


async def connection(port, bodies, stop_at, samples):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rng = random.Random()
    try:
        while time.monotonic() < stop_at:
            body = rng.choice(bodies)
            started = time.perf_counter()
            writer.write(b"POST /v1/libraries/flat/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            samples.append((status, (time.perf_counter() - started) * 1000))
    finally:
        writer.close()


async def phase(port, bodies, connections, seconds, pid=None, memory=None):
    samples = []
    stop_at = time.monotonic() + seconds

    async def watch():
        while time.monotonic() < stop_at:
            memory.append((round(seconds - (stop_at - time.monotonic())), rss_mib(pid)))
            await asyncio.sleep(10)

    tasks = [connection(port, bodies, stop_at, samples) for _ in range(connections)]
    if memory is not None:
        tasks.append(watch())
    await asyncio.gather(*tasks)
    accepted = [ms for status, ms in samples if status == 200]
    shed = [ms for status, ms in samples if status == 503]
    other = len(samples) - len(accepted) - len(shed)
    return dict(connections=connections, seconds=seconds, requests=len(samples), accepted_per_s=len(accepted) / seconds,
                shed_share=len(shed) / max(1, len(samples)), other_statuses=other,
                accepted_p50_ms=percentile(accepted, 0.50), accepted_p99_ms=percentile(accepted, 0.99),
                shed_p99_ms=percentile(shed, 0.99))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--max-searches", type=int, default=4)
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    bin_dir = build_tools(("vdb-build", "vdb-serve"))
    source = os.path.join(OUT, "synth-50k-384.hdf5")
    if not os.path.exists(source):
        sh(f"{bin_dir}/vdb-build", "generate", "--output", source, "--rows", "50000", "--queries", "200",
           "--dimension", "384", "--metric", "cosine", "--seed", "7")
    subprocess.run(["rm", "-rf", DATA])
    sh(f"{bin_dir}/vdb-build", "ingest", source, "--library", "flat", "--data-dir", DATA)
    rng = random.Random(3)
    bodies = [json.dumps({"vector": [rng.uniform(-1, 1) for _ in range(384)], "k": 10, "include": []}).encode() for _ in range(64)]
    with Server(bin_dir, DATA, "--log-level", "error", "--max-searches", str(args.max_searches), "--request-timeout", "5") as server:
        pid = server.process.pid
        asyncio.run(phase(server.port, bodies, 2, 5))  # warm the page cache and the allocator
        carried = asyncio.run(phase(server.port, bodies, 2, 30))
        memory = []
        before = rss_mib(pid)
        overload = asyncio.run(phase(server.port, bodies, 64, int(args.minutes * 60), pid=pid, memory=memory))
        after = rss_mib(pid)
    result = dict(library="50k x 384 cosine, flat (exact)", max_searches=args.max_searches, carried=carried, overload=overload,
                  rss_mib=dict(before=before, after=after, max=max(m for _, m in memory), samples=memory))
    print(json.dumps(result, indent=2))
    path = os.path.join(ROOT, "bench", "results", f"overload-{time.strftime('%Y-%m-%d')}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"written to {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
