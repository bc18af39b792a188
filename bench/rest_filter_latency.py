#!/usr/bin/env python3
"""What a metadata filter costs per request in vdb-serve: median and p95 latency of
filtered HNSW searches over HTTP (one connection, k=10) on pypi-dev with synthetic
metadata, for the same rows ingested twice — once with the synthetic fields declared in a
schema (answered from the segment's postings and sorted columns) and once without
(`--schema '{}'`: every clause evaluated on each row's stored JSON).

    bench/.venv/bin/python bench/rest_filter_latency.py [--queries 200]
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, ROOT, build_tools, load, sh  # noqa: E402

FILTERS = [
    ("none", None),
    ("bucket<500 (50%)", {"bucket": {"$lt": 500}}),
    ("bucket<100 (10%)", {"bucket": {"$lt": 100}}),
    ("bucket<10 (1%)", {"bucket": {"$lt": 10}}),
    ("bucket<1 (0.1%)", {"bucket": {"$lt": 1}}),
    ("category c3 and year>=2010", {"category": "c3", "year": {"$gte": 2010}}),
    ("tags t2 or not c0", {"$or": [{"tags": {"$contains": "t2"}}, {"$not": {"category": "c0"}}]}),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    bin_dir = build_tools(("vdb-build", "vdb-serve"))
    data = os.path.join(OUT, "rest-filter-data")
    shutil.rmtree(data, ignore_errors=True)
    source = os.path.join(ROOT, "..", "shared", "datasets", "pypi-summaries-dev.hdf5")
    for library, extra in (("declared", []), ("undeclared", ["--schema", "{}"])):
        sh(f"{bin_dir}/vdb-build", "ingest", source, "--library", library, "--synthetic-metadata", "7", "--data-dir", data, *extra)
        sh(f"{bin_dir}/vdb-build", "index", "--library", library, "--type", "hnsw", "--data-dir", data)
    _, _, test, _, _ = load(source)
    port_file = tempfile.mktemp()
    server = subprocess.Popen([f"{bin_dir}/vdb-serve", "--data-dir", data, "--port", "0", "--port-file", port_file, "--log-level", "error"])
    try:
        for _ in range(600):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        connection = http.client.HTTPConnection("127.0.0.1", int(open(port_file).read()))
        rows = []
        for name, filter in FILTERS:
            row = {"filter": name}
            for library in ("declared", "undeclared"):
                times = []
                for i in range(args.queries + 10):
                    body = {"vector": test[i % len(test)].tolist(), "k": 10}
                    if filter is not None:
                        body["filter"] = filter
                    payload = json.dumps(body)
                    start = time.perf_counter()
                    connection.request("POST", f"/v1/libraries/{library}/search", payload, {"Content-Type": "application/json"})
                    response = connection.getresponse()
                    reply = json.loads(response.read())
                    elapsed = time.perf_counter() - start
                    assert response.status == 200, reply
                    if i >= 10:  # the first requests warm the page cache and the metadata caches
                        times.append(elapsed * 1000)
                times.sort()
                row[library] = {"p50_ms": times[len(times) // 2], "p95_ms": times[int(len(times) * 0.95)]}
                if filter is not None:
                    row["plans"] = [p["strategy"] for p in reply.get("plans", [])]
            rows.append(row)
            print(f"{name:32s} declared p50 {row['declared']['p50_ms']:7.2f} ms p95 {row['declared']['p95_ms']:7.2f} ms"
                  f"   undeclared p50 {row['undeclared']['p50_ms']:7.2f} ms p95 {row['undeclared']['p95_ms']:7.2f} ms"
                  f"   plans {row.get('plans', '-')}", flush=True)
        commit = sh("git", "rev-parse", "--short", "HEAD", cwd=ROOT).strip()
        out = os.path.join(ROOT, "bench", "results", f"rest-filter-{time.strftime('%Y-%m-%d')}.json")
        with open(out, "w") as f:
            json.dump({"commit": commit, "dataset": "pypi-dev", "queries": args.queries, "rows": rows}, f, indent=2)
        print(f"wrote {out}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
