#!/usr/bin/env python3
"""vdb-serve throughput on loopback with wrk: searches/s and latency for k=10 on a
100k x 384 library (flat and HNSW), and document inserts/s under each fsync policy.

wrk and the server share this 2-core machine, so figures are lower bounds; compare within a run.

    apt-get install wrk && bench/.venv/bin/python bench/serve_load.py
"""
import json
import os
import random
import subprocess
import sys

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, Server, build_tools, lua_bodies, sh, wrk  # noqa: E402

DATA = os.path.join(OUT, "serve-data")


def main():
    os.makedirs(OUT, exist_ok=True)
    bin_dir = build_tools(("vdb-build", "vdb-serve"))
    source = os.path.join(OUT, "synth-100k-384.hdf5")
    if not os.path.exists(source):
        sh(f"{bin_dir}/vdb-build", "generate", "--output", source, "--rows", "100000", "--queries", "1000",
           "--dimension", "384", "--metric", "cosine", "--seed", "42")
    subprocess.run(["rm", "-rf", DATA])
    sh(f"{bin_dir}/vdb-build", "ingest", source, "--library", "flat384", "--data-dir", DATA)
    sh(f"{bin_dir}/vdb-build", "ingest", source, "--library", "hnsw384", "--data-dir", DATA)
    sh(f"{bin_dir}/vdb-build", "index", "--library", "hnsw384", "--data-dir", DATA, "--type", "hnsw")
    with h5py.File(source) as f:
        queries = f["test"][:200].tolist()
    rows = []
    script = os.path.join(OUT, "search.lua")
    lua_bodies(script, "POST", [{"vector": q, "k": 10} for q in queries])
    server = Server(bin_dir, DATA, "--fsync", "group:5", "--log-level", "error")
    try:
        for lib in ("flat384", "hnsw384"):
            r = wrk(f"http://127.0.0.1:{server.port}/v1/libraries/{lib}/search", script)
            rows.append((f"search k=10, {lib.replace('384', '')}, 100k x 384", r))
        sh("curl", "-sf", "-X", "POST", f"http://127.0.0.1:{server.port}/v1/libraries",
           "-d", json.dumps({"name": "updates", "dimension": 384, "metric": "cosine", "shards": 2}))
    finally:
        server.stop()
    rng = random.Random(1)
    inserts = os.path.join(OUT, "insert.lua")
    lua_bodies(inserts, "POST", [{"chunks": [{"text": "t", "vector": [rng.uniform(-1, 1) for _ in range(384)]}]} for _ in range(200)])
    for policy in ("always", "group:5", "never"):
        server = Server(bin_dir, DATA, "--fsync", policy, "--log-level", "error")
        try:
            r = wrk(f"http://127.0.0.1:{server.port}/v1/libraries/updates/documents", inserts, seconds=8)
            rows.append((f"insert 1-chunk document, fsync {policy}", r))
        finally:
            server.stop()
    print(f"{'workload':<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in rows:
        print(f"{name:<44} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>7}")


if __name__ == "__main__":
    sys.exit(main())
