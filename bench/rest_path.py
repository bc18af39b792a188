#!/usr/bin/env python3
"""What HTTP costs on top of a search: vdb-serve at one connection (wrk -c1) against
vdb-query in process, on the same HNSW library (pypi-dev, 59k x 384, M 16, efC 200), at the
same ef, in one run.

- single queries: p50 over REST with the vector as a JSON array, as base64
  (`vectorBase64`), and as base64 with `"include": []` (ids and distances only), against
  vdb-query's one-query-per-call p50 over the same 500 queries (`--limit 500`);
- both server paths: plain searches are answered below the router by default (the direct
  path); the same forms are timed on a second server started with `--no-direct-search`,
  where every request goes through Hummingbird's router. Both run at once, and each form is
  timed on them in alternating rounds (--rounds, default 3);
- the HTTP floor: p50 of `GET /healthz`, which does no work, on the same server;
- server CPU per request: the server process's user + system CPU over each timed wrk run,
  divided by the requests wrk completed (what the server spends, apart from waiting);
- batches: queries/s of `/search/batch` (100 queries per request, base64) against vdb-query's
  batched single-thread QPS (--batch 100).

The machine's speed drifts, so the runs go in rounds: vdb-query in process, then every form on
both servers, then every batch form on the direct server; each p50 is divided by its own
round's in-process p50, each batch's queries/s by its own round's in-process batched QPS, and
the median ratio over the rounds is reported (with every round).

    apt-get install wrk && bench/.venv/bin/python bench/rest_path.py [--ef 64] [--rounds 3] [--seconds 5] [--server-args "..."] [--json PATH]

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
from common import OUT, ROOT, Server, build_tools, datasets, load, lua_bodies, median_of, sh, wrk  # noqa: E402

BATCH = 100
QUERIES = 500  # sent over REST, and searched in process for the reference


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
    parser.add_argument("--seconds", type=int, default=5, help="seconds per timed wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per form and server; the median is kept")
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

    def in_process_run():
        # The same queries as the REST forms send (the first QUERIES of the test set).
        report = json.loads(sh(f"{bin_dir}/vdb-query", "--library", "p", "--data-dir", data, "--queries", path, "-k", "10",
                               "--ef", str(args.ef), "--batch", str(BATCH), "--threads", "1", "--limit", str(QUERIES), "--json"))
        return {
            "p50ms": report["latency"]["p50Microseconds"] / 1000,
            "singleQPS": report["singleThread"]["queriesPerSecond"],
            "batchedQPS": report["batched"]["queriesPerSecond"],
            "recallAt10": report["recall"],
        }

    queries = [[float(x) for x in q] for q in test[:QUERIES]]
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
    # The router-only server reads a copy, so that neither server's files are the other's.
    router_data = data + "-router"
    shutil.rmtree(router_data, ignore_errors=True)
    shutil.copytree(data, router_data)

    def script_for(bodies):
        """wrk's script for a form, and the path it requests (None: `GET /healthz`)."""
        if bodies is None:
            with open(script, "w") as f:
                f.write('wrk.method = "GET"\n')
            return "/healthz"
        lua_bodies(script, "POST", bodies)
        return "/v1/libraries/p/search"

    singles = [("GET /healthz", None), *forms.items()]
    in_process_runs = []
    with Server(bin_dir, data, "--log-level", "error", *args.server_args.split()) as direct, \
         Server(bin_dir, router_data, "--log-level", "error", "--no-direct-search", *args.server_args.split()) as router:
        servers = [("direct", direct, rest), ("router", router, router_only)]
        runs = {(name, label): [] for name, _ in singles for label, _, _ in servers}
        for name, bodies in singles:
            path_of_form = script_for(bodies)
            for _, server, _ in servers:
                wrk(f"http://127.0.0.1:{server.port}{path_of_form}", script, seconds=2, connections=1, threads=1)  # warm up
        url = f"http://127.0.0.1:{direct.port}/v1/libraries/p/search"
        for bodies in batch_forms.values():
            lua_bodies(script, "POST", bodies)
            wrk(url + "/batch", script, seconds=2, connections=1, threads=1)  # warm up
        # Rounds of: the in-process search, then each form on both servers, then the batches.
        # The machine's speed drifts (20-35% within an hour here, 3x at worst), so each REST
        # figure is divided by its own round's in-process one, and each ratio's median over the
        # rounds is kept.
        batch_runs = {name: [] for name in batch_forms}
        for round in range(args.rounds):
            in_process_runs.append(in_process_run())
            print(f"round {round + 1}: in process", json.dumps(in_process_runs[-1]), flush=True)
            for name, bodies in singles:
                path_of_form = script_for(bodies)
                for label, server, _ in servers:
                    r = timed(server, f"http://127.0.0.1:{server.port}{path_of_form}", script, args.seconds)
                    if bodies is not None:
                        r["p50OverInProcess"] = r["p50"] / in_process_runs[-1]["p50ms"]
                    runs[(name, label)].append(r)
                    print(f"  {label} {name}", json.dumps(r), flush=True)
            for name, bodies in batch_forms.items():
                lua_bodies(script, "POST", bodies)
                r = timed(direct, url + "/batch", script, args.seconds)
                qps = r["rps"] * BATCH
                batch_runs[name].append({**r, "queriesPerSecond": qps, "overInProcessBatched": qps / in_process_runs[-1]["batchedQPS"]})
                print(f"  direct {name}", json.dumps(batch_runs[name][-1]), flush=True)
        for name, _ in singles:
            for label, _, into in servers:
                rounds = runs[(name, label)]
                into[name] = {**median_of(rounds, key=lambda r: r.get("p50OverInProcess", r["p50"])), "rounds": rounds}
        for name, rounds in batch_runs.items():
            rest[name] = {**median_of(rounds, key=lambda r: r["overInProcessBatched"]), "rounds": rounds}
    shutil.rmtree(router_data, ignore_errors=True)
    in_process = {"p50ms": median_of([r["p50ms"] for r in in_process_runs]), "batchedQPS": median_of([r["batchedQPS"] for r in in_process_runs]),
                  "recallAt10": in_process_runs[0]["recallAt10"]}
    commit = sh("git", "rev-parse", "--short", "HEAD", cwd=ROOT).strip()
    out = args.json or os.path.join(ROOT, "bench", "results", f"rest-path-{time.strftime('%Y-%m-%d')}.json")
    with open(out, "w") as f:
        json.dump({"commit": commit, "ef": args.ef, "serverArgs": args.server_args, "inProcess": in_process,
                   "inProcessRuns": in_process_runs, "rest": rest,
                   "routerOnly": router_only}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
