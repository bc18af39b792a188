#!/usr/bin/env python3
"""Bytes per vector of each vdb index, on disk and in memory, from vdb-query's per-section report.

For each dataset: ingest once, then for each index (flat, HNSW, IVF-PQ; IVF-PQ again with float16
vectors) build it, evict the library's files from the page cache (posix_fadvise DONTNEED), run
the stored queries (single thread, k = 10, default search settings), and read the sections:
bytes on disk, and bytes resident afterwards, i.e. what the queries pulled in (plus readahead).
Divided by the row count. Also prints recall and QPS of the run, so the memory is tied to a
working point.

    bench/.venv/bin/python bench/memory_per_vector.py [--datasets synth-100k-128,pypi-dev]
"""
import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, build_tools, datasets, sh  # noqa: E402

INDEXES = [
    ("flat", ["--type", "flat", "--vectors", "float32"]),
    ("hnsw M16", ["--type", "hnsw", "--m", "16", "--ef-construction", "200", "--vectors", "float32"]),
    ("ivf-pq, float32 vectors", ["--type", "ivfpq", "--lists", "1024", "--rerank", "10", "--nprobe", "16", "--vectors", "float32"]),
    ("ivf-pq, float16 vectors", ["--type", "ivfpq", "--lists", "1024", "--rerank", "10", "--nprobe", "16", "--vectors", "float16"]),
]


def evict(library_dir):
    for path in glob.glob(os.path.join(library_dir, "**", "*.vdbseg"), recursive=True):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="synth-100k-128,pypi-dev")
    parser.add_argument("--json")
    args = parser.parse_args()
    bin_dir = build_tools()
    data = os.path.join(OUT, "data")
    results = {}
    for name, path in datasets(bin_dir, args.datasets.split(",")):
        lib = f"memory-{name}"
        sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", lib, "--data-dir", data, "--replace", "--vectors", "float32")
        results[name] = {}
        for label, flags in INDEXES:
            sh(f"{bin_dir}/vdb-build", "index", "--library", lib, "--data-dir", data, *flags)
            evict(os.path.join(data, "libraries", lib))
            report = json.loads(sh(f"{bin_dir}/vdb-query", "--library", lib, "--data-dir", data, "--json", "--threads", "1", "--batch", "1"))
            rows = report["rows"]
            sections = {s["section"]: s for s in report["memory"]["sections"]}
            disk = sum(s["bytesOnDisk"] for s in sections.values())
            resident = sum(s["residentBytes"] for s in sections.values())
            results[name][label] = dict(
                recall=report["recall"], qps=report["singleThread"]["queriesPerSecond"], disk=disk / rows, resident=resident / rows,
                sections={k: (v["bytesOnDisk"] / rows, v["residentBytes"] / rows) for k, v in sections.items()})
    for name, indexes in results.items():
        print(f"== {name}: bytes per vector (disk / resident after the queries)")
        print(f"{'index':<26} {'recall@10':>9} {'QPS':>8} {'disk':>8} {'resident':>9}  biggest sections (disk/resident)")
        for label, r in indexes.items():
            top = sorted(r["sections"].items(), key=lambda kv: -kv[1][0])[:3]
            parts = ", ".join(f"{k} {d:.0f}/{m:.0f}" for k, (d, m) in top)
            print(f"{label:<26} {r['recall']:>9.3f} {r['qps']:>8.0f} {r['disk']:>8.0f} {r['resident']:>9.0f}  {parts}")
        print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
