#!/usr/bin/env python3
"""What a compaction costs the searches that run beside it: search latency in vdb-serve before
and while a compaction job rewrites a 100k x 384 cosine HNSW library (2 shards) whose rows
are a quarter deleted, at a steady search rate. Run once with the server's background limits
(one build thread at nice +10, writes paced to 64 MiB/s) and once without them (every core
at normal priority, unpaced), on the same data.

    bench/.venv/bin/python bench/compaction_latency.py [--rate 50] [--ef 100]

Results: bench/results/compaction-latency-<date>.json. The machine has 2 cores shared by the
server and this client; compare the phases of one run, not absolute figures.
"""
import argparse
import json
import os
import shutil
import sys
import threading
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, ROOT, Server, build_tools, datasets, load, percentile, sh  # noqa: E402

CONFIGURATIONS = {
    "limited (defaults)": [],
    "unlimited": ["--background-threads", "2", "--background-nice", "0", "--background-write-mibps", "0"],
}


class Searcher(threading.Thread):
    """Searches at a fixed rate on its own connection, recording (start time, latency ms)."""

    def __init__(self, server, queries, rate, ef):
        super().__init__(daemon=True)
        self.client, self.queries, self.rate, self.ef = server.client(), queries, rate, ef
        self.samples, self.stopped = [], threading.Event()

    def run(self):
        i = 0
        next_at = time.perf_counter()
        while not self.stopped.is_set():
            query = self.queries[i % len(self.queries)]
            i += 1
            start = time.perf_counter()
            status, reply = self.client.call("POST", "/v1/libraries/c/search", {"vector": query, "k": 10, "ef": self.ef})
            assert status == 200, reply
            self.samples.append((time.time(), (time.perf_counter() - start) * 1000))
            next_at += 1 / self.rate
            time.sleep(max(0.0, next_at - time.perf_counter()))

    def between(self, start, end):
        return [ms for at, ms in self.samples if start <= at < end]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50, help="searches a second")
    parser.add_argument("--ef", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--delete-share", type=float, default=0.25)
    args = parser.parse_args()
    bin_dir = build_tools(("vdb-build", "vdb-serve"))
    (_, path), = datasets(bin_dir, ["synth-100k-384"])
    _, train, test, _, _ = load(path)
    template = os.path.join(OUT, "compaction-template")
    if not os.path.exists(os.path.join(template, "libraries", "c", "CURRENT")):
        shutil.rmtree(template, ignore_errors=True)
        sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", "c", "--data-dir", template, "--shards", "2")
        sh(f"{bin_dir}/vdb-build", "index", "--library", "c", "--data-dir", template, "--type", "hnsw", "--m", "16", "--ef-construction", "100")
    queries = [q.tolist() for q in test[:500]]
    doomed = [i for i in range(len(train)) if (i * 2654435761) % 1000 < args.delete_share * 1000]
    results = {}
    for label, extra in CONFIGURATIONS.items():
        data = os.path.join(OUT, "compaction-data")
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(template, data)
        with Server(bin_dir, data, "--flush-rows", "1000000", *extra) as server:
            admin = server.client()
            for start in range(0, len(doomed), 1024):
                status, reply = admin.call("POST", "/v1/libraries/c/documents/delete",
                                           {"filter": {"documentId": {"$in": doomed[start:start + 1024]}}})
                assert status == 200, reply
            status, reply = admin.call("POST", "/v1/libraries/c/flush")
            assert status in (200, 202), reply
            searcher = Searcher(server, queries, args.rate, args.ef)
            searcher.start()
            time.sleep(2)  # warm the connection and the page cache
            idle_start = time.time()
            time.sleep(args.idle_seconds)
            idle_end = time.time()
            status, job = admin.call("POST", "/v1/libraries/c/compact")
            assert status == 202, job
            while job["state"] in ("queued", "running"):
                time.sleep(0.5)
                _, job = admin.call("GET", f"/v1/jobs/{job['id']}")
            compact_end = time.time()
            searcher.stopped.set()
            searcher.join()
            assert job["state"] == "succeeded", job
            _, info = admin.call("GET", "/v1/libraries/c")
            idle, during = searcher.between(idle_start, idle_end), searcher.between(idle_end, compact_end)
            result = {
                "serverOptions": extra, "compactionSeconds": round(compact_end - idle_end, 1),
                "idle": {"searches": len(idle), "p50ms": percentile(idle, 0.5), "p99ms": percentile(idle, 0.99)},
                "during": {"searches": len(during), "p50ms": percentile(during, 0.5), "p99ms": percentile(during, 0.99)},
                "segmentsAfter": info["segments"], "deletedChunksAfter": info["deletedChunks"],
            }
            result["p99Ratio"] = result["during"]["p99ms"] / result["idle"]["p99ms"]
            results[label] = result
            print(label, json.dumps(result), flush=True)
    commit = sh("git", "rev-parse", "--short", "HEAD", cwd=ROOT).strip()
    out = os.path.join(ROOT, "bench", "results", f"compaction-latency-{time.strftime('%Y-%m-%d')}.json")
    with open(out, "w") as f:
        json.dump({"commit": commit, "rate": args.rate, "ef": args.ef, "deleted": len(doomed), "results": results}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
