#!/usr/bin/env python3
"""A soak of vdb-serve: inserts, updates, deletes and searches at a fixed rate on a 100k x 384
cosine library (HNSW), while the server flushes and compacts on its own. Every window it
records segments per shard, disk bytes against the live rows' share of a freshly ingested
library, recall@10 of searches against exact search over the live rows (numpy, the script
keeps the model), and search latency (p50/p99); idle latency is measured first.

    bench/.venv/bin/python bench/soak.py [--minutes 30] [--rate 100] [--flush-rows 10000]

Results: bench/results/soak-<date>-flush<N>.json. The machine has 2 cores shared by the
server and this client, so absolute latencies are upper bounds; compare within a run.
"""
import argparse
import json
import os
import random
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, ROOT, Server, build_tools, datasets, load, percentile, sh  # noqa: E402

K = 10


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except FileNotFoundError:
                pass
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=int, default=100, help="operations per second (all kinds)")
    parser.add_argument("--flush-rows", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=30, help="seconds per sample")
    parser.add_argument("--ef", type=int, default=64)
    parser.add_argument("--ef-construction", type=int, default=200, help="the library's HNSW build width (flushes and compactions use it too)")
    parser.add_argument("--recall-queries", type=int, default=50, help="searches per window checked against exact search")
    parser.add_argument("--tag", default="", help="appended to the result file's name")
    parser.add_argument("server_args", nargs="*", help="more vdb-serve options, after --")
    args = parser.parse_args()
    rng = random.Random(7)
    bin_dir = build_tools(("vdb-build", "vdb-serve"))
    (_, path), = datasets(bin_dir, ["synth-100k-384"])
    _, train, _, _, _ = load(path)
    data = os.path.join(OUT, "soak-data")
    shutil.rmtree(data, ignore_errors=True)
    sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", "soak", "--data-dir", data, "--shards", "2")
    sh(f"{bin_dir}/vdb-build", "index", "--library", "soak", "--data-dir", data, "--type", "hnsw", "--m", "16", "--ef-construction", str(args.ef_construction))

    library_dir = os.path.join(data, "libraries", "soak")
    # Live data: what the live version's segments take per row (graph included), not the
    # older version kept beside it.
    current = open(os.path.join(library_dir, "CURRENT")).read().strip()
    manifest = json.load(open(os.path.join(library_dir, current)))
    bytes_per_row = sum(seg["bytes"] for shard in manifest["shards"] for seg in shard["segments"]) / len(train)
    # The model: live chunk id -> unit vector (chunk id = document id = row).
    live = {i: train[i] for i in range(len(train))}
    next_id = 10_000_000
    with Server(bin_dir, data, "--fsync", "group:5", "--flush-rows", str(args.flush_rows), *args.server_args) as server:
        client = server.client()

        def search(vector):
            start = time.perf_counter()
            status, reply = client.call("POST", "/v1/libraries/soak/search", {"vector": vector.tolist(), "k": K, "ef": args.ef})
            assert status == 200, reply
            return time.perf_counter() - start, [h["chunk"] for h in reply["hits"]]

        def unit(v):
            return (v / np.linalg.norm(v)).astype(np.float32)

        idle = [search(unit(train[rng.randrange(len(train))] + np.random.normal(0, 0.05, train.shape[1])))[0] * 1000 for _ in range(200)]
        print(f"idle search p50 {percentile(idle, 0.5):.2f} ms p99 {percentile(idle, 0.99):.2f} ms", flush=True)
        # One write and a flush: the served library's first version of its own, so the flat
        # version vdb-build's ingest left as the index build's rollback target leaves (it is
        # setup, not maintenance: 0.7x of the data, kept until any next publish).
        first = unit(train[0] + np.random.normal(0, 0.1, train.shape[1]))
        status, reply = client.call("POST", "/v1/libraries/soak/documents", {"id": next_id, "chunks": [{"id": next_id, "vector": first.tolist()}]})
        assert status == 201, reply
        live[next_id] = first
        next_id += 1
        status, reply = client.call("POST", "/v1/libraries/soak/flush")
        assert status in (200, 202), reply
        windows = []
        started = time.time()
        deadline = started + args.minutes * 60
        while time.time() < deadline:
            window_start = time.time()
            latencies, counts = [], {"insert": 0, "update": 0, "delete": 0, "search": 0, "rejected": 0}
            while time.time() < window_start + args.window:
                tick = time.time()
                for _ in range(args.rate):
                    roll = rng.random()
                    ids = list(live.keys()) if roll >= 0.4 and roll < 0.7 else None
                    if roll < 0.4:
                        base = train[rng.randrange(len(train))]
                        vector = unit(base + np.random.normal(0, 0.1, base.shape))
                        status, _ = client.call("POST", "/v1/libraries/soak/documents",
                                                {"id": next_id, "chunks": [{"id": next_id, "vector": vector.tolist()}]})
                        if status == 201:
                            live[next_id] = vector
                            counts["insert"] += 1
                        else:
                            counts["rejected"] += 1
                        next_id += 1
                    elif roll < 0.6:
                        victim = rng.choice(ids)
                        vector = unit(live[victim] + np.random.normal(0, 0.05, live[victim].shape))
                        status, _ = client.call("PATCH", f"/v1/libraries/soak/documents/{victim}/chunks/{victim}", {"vector": vector.tolist()})
                        if status == 200:
                            live[victim] = vector
                            counts["update"] += 1
                        else:
                            counts["rejected"] += 1
                    elif roll < 0.7:
                        victim = rng.choice(ids)
                        status, _ = client.call("DELETE", f"/v1/libraries/soak/documents/{victim}")
                        if status == 204:
                            del live[victim]
                            counts["delete"] += 1
                        else:
                            counts["rejected"] += 1
                    else:
                        seconds, _ = search(unit(train[rng.randrange(len(train))] + np.random.normal(0, 0.05, train.shape[1])))
                        latencies.append(seconds * 1000)
                        counts["search"] += 1
                # Pace to the rate: the rest of the second is idle.
                time.sleep(max(0.0, 1.0 - (time.time() - tick)))
            # The window's sample: recall against exact search over the live rows, shape, disk.
            ids = np.fromiter(live.keys(), dtype=np.int64)
            matrix = np.stack([live[i] for i in ids])
            recalls = []
            for _ in range(args.recall_queries):
                query = unit(train[rng.randrange(len(train))] + np.random.normal(0, 0.05, train.shape[1]))
                seconds, found = search(query)
                latencies.append(seconds * 1000)
                exact = set(ids[np.argsort(-(matrix @ query))[:K]].tolist())
                recalls.append(len(exact & set(found)) / K)
            status, info = client.call("GET", "/v1/libraries/soak")
            status_jobs, jobs = client.call("GET", "/v1/jobs")
            disk = du(library_dir)
            window = {
                "elapsedSeconds": round(time.time() - started), "liveRows": len(live), "counts": counts,
                "segmentsPerShard": info["segments"] / info["shards"], "deletedChunks": info["deletedChunks"],
                "unflushedChunks": info["unflushedChunks"], "version": info["version"],
                "diskBytes": disk, "diskOverLive": disk / (len(live) * bytes_per_row),
                "recallAt10": float(np.mean(recalls)), "searchP50ms": percentile(latencies, 0.5), "searchP99ms": percentile(latencies, 0.99),
                "compactions": sum(1 for j in jobs["items"] if j["kind"] == "compact"),
            }
            windows.append(window)
            print(json.dumps(window), flush=True)
        summary = {
            "flushRows": args.flush_rows, "recallQueries": args.recall_queries, "efConstruction": args.ef_construction, "serverOptions": args.server_args, "rate": args.rate, "minutes": args.minutes, "ef": args.ef,
            "idleP50ms": percentile(idle, 0.5), "idleP99ms": percentile(idle, 0.99),
            "maxSegmentsPerShard": max(w["segmentsPerShard"] for w in windows),
            "maxDiskOverLive": max(w["diskOverLive"] for w in windows),
            "minRecallAt10": min(w["recallAt10"] for w in windows),
            "maxWindowP99ms": max(w["searchP99ms"] for w in windows),
        }
        print(json.dumps(summary), flush=True)
        commit = sh("git", "rev-parse", "--short", "HEAD", cwd=ROOT).strip()
        out = os.path.join(ROOT, "bench", "results", f"soak-{time.strftime('%Y-%m-%d')}-flush{args.flush_rows}{args.tag}.json")
        with open(out, "w") as f:
            json.dump({"commit": commit, "summary": summary, "windows": windows}, f, indent=1)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
