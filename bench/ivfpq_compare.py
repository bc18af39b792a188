#!/usr/bin/env python3
"""IVF-PQ side by side, on the same HDF5 files, in one run: vdb vs FAISS IVF1024,PQ(d/4)x8, each
without refinement and with exact re-ranking of 10·k candidates (FAISS: IndexRefineFlat,
k_factor 10). Recall@10 and single-thread QPS per nprobe, build time, and index bytes per vector.
Both engines get the queries in batches (FAISS the whole matrix per search call, vdb-query 64
per call, which lets IVF-PQ share the coarse pass); vdb's one-query-per-call QPS is kept too.

    bench/.venv/bin/python bench/ivfpq_compare.py [--datasets synth-100k-128,synth-100k-384,pypi-dev]
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import K, OUT, build_tools, datasets, interpolated_at, load, recall, sh  # noqa: E402

NPROBES = [1, 2, 4, 8, 16, 32, 64]


def run_vdb(bin_dir, name, path, dim, rerank):
    data = os.path.join(OUT, "data")
    lib = f"ivfpq-{rerank}-{name}"
    sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", lib, "--data-dir", data, "--replace")
    report = json.loads(sh(f"{bin_dir}/vdb-build", "index", "--library", lib, "--data-dir", data, "--type", "ivfpq",
                           "--lists", "1024", "--subquantizers", str(dim // 4), "--rerank", str(rerank), "--json"))
    sweep = json.loads(sh(f"{bin_dir}/vdb-query", "--library", lib, "--data-dir", data, "--json", "--threads", "1",
                          "--batch", "64", "--sweep", "nprobe=" + ",".join(map(str, NPROBES))))
    rows = sweep[0]["rows"]
    return dict(build=report["buildSeconds"], bytes_per_vector=report["graphBytes"] / rows,
                points=[(r["parameters"]["nprobe"], r["recall"], r["batched"]["queriesPerSecond"]) for r in sweep],
                one_at_a_time=[r["singleThread"]["queriesPerSecond"] for r in sweep])


def run_faiss(train, test, angular, truth, truth_dist, refine):
    import faiss
    d = train.shape[1]
    metric = faiss.METRIC_INNER_PRODUCT if angular else faiss.METRIC_L2
    # "np": no polysemous training. It only serves polysemous (Hamming-filtered) search, which
    # is not used here, and it was most of FAISS's build time (pypi-dev, 1,379 lists, m 96:
    # 184 s with it, 19.5 s without).
    base = faiss.index_factory(d, f"IVF1024,PQ{d // 4}x8np", metric)
    index = faiss.IndexRefineFlat(base) if refine else base
    if refine:
        index.k_factor = 10
    faiss.omp_set_num_threads(2)
    t0 = time.perf_counter()
    index.train(train)
    index.add(train)
    build = time.perf_counter() - t0
    # Index bytes per vector as FAISS stores them (refine adds the float vectors it keeps).
    bytes_per_vector = len(faiss.serialize_index(index)) / train.shape[0]
    faiss.omp_set_num_threads(1)
    points = []
    ivf = faiss.extract_index_ivf(base)
    for nprobe in NPROBES:
        ivf.nprobe = nprobe
        t0 = time.perf_counter()
        dists, labels = index.search(test, K)
        seconds = time.perf_counter() - t0
        # Without refinement FAISS reports PQ distances, which would game the tie rule: count ids only.
        found = ((1 - dists) if angular else np.sqrt(np.maximum(dists, 0))) if refine else np.full(dists.shape, np.inf)
        points.append((nprobe, recall(labels, truth, truth_dist, found), len(test) / seconds))
    return dict(build=build, bytes_per_vector=bytes_per_vector, points=points)


def qps_at_recall(points, target):
    """vdb's single-thread QPS at `target` recall: interpolated between bracketing settings, or
    its lowest-recall setting's QPS when that already reaches the target; None if it never does."""
    lowest = min(points, key=lambda p: p[1])
    if lowest[1] >= target:
        return lowest[2]
    return interpolated_at(points, target)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="synth-100k-128,synth-100k-384,pypi-dev")
    parser.add_argument("--json")
    args = parser.parse_args()
    bin_dir = build_tools()
    results = {}
    for name, path in datasets(bin_dir, args.datasets.split(",")):
        angular, train, test, truth, truth_dist = load(path)
        d = train.shape[1]
        results[name] = {
            "vdb IVF-PQ": run_vdb(bin_dir, name, path, d, 0),
            "faiss IVF-PQ": run_faiss(train, test, angular, truth, truth_dist, False),
            "vdb IVF-PQ + rerank": run_vdb(bin_dir, name, path, d, 10),
            "faiss IVF-PQ + refine": run_faiss(train, test, angular, truth, truth_dist, True),
        }
    print(f"IVF1024, PQ d/4 x 8 bits; build on 2 threads, queries on 1; k={K}; cells recall@10/QPS per nprobe\n")
    for name, engines in results.items():
        print(f"== {name}")
        print(f"{'engine':<24} {'build s':>8} {'B/vec':>6} " + " ".join(f"{'np' + str(n):>14}" for n in NPROBES))
        for engine, e in engines.items():
            print(f"{engine:<24} {e['build']:>8.2f} {e['bytes_per_vector']:>6.0f} " + " ".join(f"{r:.3f}/{q:>7.0f}" for _, r, q in e["points"]))
            if "one_at_a_time" in e:
                print(f"{'  one query per call':<24} {'':>8} {'':>6} " + " ".join(f"{'':>6}{q:>8.0f}" for q in e["one_at_a_time"]))
        for a, b in (("vdb IVF-PQ", "faiss IVF-PQ"), ("vdb IVF-PQ + rerank", "faiss IVF-PQ + refine")):
            # At each of FAISS's operating points: vdb's QPS at that recall (log-linear between
            # the bracketing nprobe settings; below vdb's lowest recall, its lowest setting).
            cells = []
            for nprobe, r, q in engines[b]["points"]:
                ours = qps_at_recall(engines[a]["points"], r)
                cells.append(f"np{nprobe} {ours / q:.2f}x" if ours else f"np{nprobe} -")
            print(f"  {a} QPS / {b} QPS at FAISS's recall per nprobe: " + ", ".join(cells))
        print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
