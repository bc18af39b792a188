#!/usr/bin/env python3
"""What HTTP costs on top of a search: vdb-serve at one connection (wrk -c1) against
vdb-query in process, on the same HNSW library (pypi-dev, 59k x 384, M 16, efC 200), at the
same ef, in one run.

- single queries: p50 over REST with the vector as a JSON array, as base64
  (`vectorBase64`), and as base64 with `"include": []` (ids and distances only), against
  vdb-query's one-query-per-call p50;
- both server paths: plain searches are answered below the router by default (the direct
  path); the same forms are timed again on a server started with `--no-direct-search`,
  where every request goes through Hummingbird's router;
- the HTTP floor: p50 of `GET /healthz`, which does no work, on the same server;
- server CPU per request: the server process's user + system CPU over each timed wrk run,
  divided by the requests wrk completed (what the server spends, apart from waiting);
- batches: queries/s of `/search/batch` (100 queries per request, base64) against vdb-query's
  batched single-thread QPS (--batch 100).

    apt-get install wrk && bench/.venv/bin/python bench/rest_path.py [--ef 64] [--server-args "..."] [--json PATH]

Results: bench/results/rest-path-<date>.json. wrk, the server and vdb-query share 2 cores.
"""
import argparse
import base64
import json
import os
import shutil
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, ROOT, Server, build_tools, datasets, load, lua_bodies, sh, wrk  # noqa: E402

BATCH = 100


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far, all its threads (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(server, url, script, seconds):
    """wrk at one connection, with the server's CPU microseconds per request beside."""
    before = cpu_seconds(server.process.pid)
    r = wrk(url, script, seconds=seconds, connections=1, threads=1)
    spent = cpu_seconds(server.process.pid) - before
    return {**r, "serverCPUMicrosecondsPerRequest": spent / r["requests"] * 1e6}


def packed(vectors):
    return base64.b64encode(b"".join(struct.pack(f"<{len(v)}f", *v) for v in vectors)).decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ef", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--server-args", default="", help="extra vdb-serve arguments, e.g. \"--max-searches 8\"")
    parser.add_argument("--json", help="where to write the results (default bench/results/rest-path-<date>.json)")
    args = parser.parse_args()
    bin_dir = build_tools(("vdb-build", "vdb-serve", "vdb-query"))
    (_, path), = datasets(bin_dir, ["pypi-dev"])
    _, _, test, _, _ = load(path)
    data = os.path.join(OUT, "rest-path-data")
    if not os.path.exists(os.path.join(data, "libraries", "p", "CURRENT")):
        shutil.rmtree(data, ignore_errors=True)
        sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", "p", "--data-dir", data)
        sh(f"{bin_dir}/vdb-build", "index", "--library", "p", "--data-dir", data, "--type", "hnsw", "--m", "16", "--ef-construction", "200")
    report = json.loads(sh(f"{bin_dir}/vdb-query", "--library", "p", "--data-dir", data, "--queries", path, "-k", "10",
                           "--ef", str(args.ef), "--batch", str(BATCH), "--threads", "1", "--json"))
    in_process = {
        "p50ms": report["latency"]["p50Microseconds"] / 1000,
        "singleQPS": report["singleThread"]["queriesPerSecond"],
        "batchedQPS": report["batched"]["queriesPerSecond"],
        "recallAt10": report["recall"],
    }
    print("in process", json.dumps(in_process), flush=True)
    queries = [[float(x) for x in q] for q in test[:500]]
    forms = {
        "array": [{"vector": q, "k": 10, "ef": args.ef} for q in queries],
        "base64": [{"vectorBase64": packed([q]), "k": 10, "ef": args.ef} for q in queries],
        "base64, include []": [{"vectorBase64": packed([q]), "k": 10, "ef": args.ef, "include": []} for q in queries],
    }
    batches = [queries[i:i + BATCH] for i in range(0, len(queries), BATCH)]
    batch_forms = {
        "batch of 100, base64": [{"vectorsBase64": packed(b), "k": 10, "ef": args.ef} for b in batches],
        "batch of 100, base64, include []": [{"vectorsBase64": packed(b), "k": 10, "ef": args.ef, "include": []} for b in batches],
    }
    rest, router_only = {}, {}
    script = os.path.join(OUT, "rest-path.lua")

    def singles(server, into):
        url = f"http://127.0.0.1:{server.port}/v1/libraries/p/search"
        # The HTTP floor: a request that does no work.
        with open(script, "w") as f:
            f.write('wrk.method = "GET"\n')
        health = f"http://127.0.0.1:{server.port}/healthz"
        wrk(health, script, seconds=2, connections=1, threads=1)
        into["GET /healthz"] = timed(server, health, script, args.seconds)
        print("GET /healthz", json.dumps(into["GET /healthz"]), flush=True)
        for name, bodies in forms.items():
            lua_bodies(script, "POST", bodies)
            wrk(url, script, seconds=2, connections=1, threads=1)  # warm up
            r = timed(server, url, script, args.seconds)
            into[name] = {**r, "p50OverInProcess": r["p50"] / in_process["p50ms"]}
            print(name, json.dumps(into[name]), flush=True)

    with Server(bin_dir, data, "--log-level", "error", *args.server_args.split()) as server:
        print("-- direct path (the default)", flush=True)
        singles(server, rest)
        url = f"http://127.0.0.1:{server.port}/v1/libraries/p/search"
        for name, bodies in batch_forms.items():
            lua_bodies(script, "POST", bodies)
            r = timed(server, url + "/batch", script, args.seconds)
            qps = r["rps"] * BATCH
            rest[name] = {**r, "queriesPerSecond": qps, "overInProcessBatched": qps / in_process["batchedQPS"]}
            print(name, json.dumps(rest[name]), flush=True)
    with Server(bin_dir, data, "--log-level", "error", "--no-direct-search", *args.server_args.split()) as server:
        print("-- through the router (--no-direct-search)", flush=True)
        singles(server, router_only)
    commit = sh("git", "rev-parse", "--short", "HEAD", cwd=ROOT).strip()
    out = args.json or os.path.join(ROOT, "bench", "results", f"rest-path-{time.strftime('%Y-%m-%d')}.json")
    with open(out, "w") as f:
        json.dump({"commit": commit, "ef": args.ef, "serverArgs": args.server_args, "inProcess": in_process, "rest": rest,
                   "routerOnly": router_only}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
