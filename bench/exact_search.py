#!/usr/bin/env python3
"""Exact single-query search, side by side on the same files, in one run:
vdb's flat index (vdb-build + vdb-query, release build) vs numpy brute force vs FAISS IndexFlat.

Everything is single-threaded so the numbers compare kernels, not core counts: vdb-query's
single-thread run, FAISS with omp_set_num_threads(1), numpy with one BLAS thread.

    bench/setup.sh && bench/.venv/bin/python bench/exact_search.py
"""
import argparse
import json
import os
import sys
import time

# One BLAS thread for numpy; must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, build_tools as build, recall, sh  # noqa: E402


def dataset(bin_dir, name, rows, dim, metric):
    path = os.path.join(OUT, f"{name}.hdf5")
    if not os.path.exists(path):
        sh(f"{bin_dir}/vdb-build", "generate", "--output", path, "--rows", str(rows), "--queries", "1000",
           "--dimension", str(dim), "--metric", metric, "--seed", "42")
    return path


def run_vdb(bin_dir, path, library, queries):
    data = os.path.join(OUT, "data")
    sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", library, "--data-dir", data, "--replace")
    report = json.loads(sh(f"{bin_dir}/vdb-query", "--library", library, "--data-dir", data, "--json",
                           "--threads", "1", "--limit", str(queries)))
    return report["singleThread"]["queriesPerSecond"], report["recall"]


def run_numpy(train, test, angular, k=10):
    norms = (train * train).sum(1)
    ids, dists = [], []
    start = time.perf_counter()
    for q in test:
        dots = train @ q
        d = -dots if angular else norms - 2 * dots
        top = np.argpartition(d, k)[:k]
        top = top[np.argsort(d[top])]
        ids.append(top)
        dists.append(d[top])
    seconds = time.perf_counter() - start
    dists = [1 + d if angular else np.sqrt(np.maximum(d + (q * q).sum(), 0)) for d, q in zip(dists, test)]
    return len(test) / seconds, ids, dists


def run_faiss(train, test, angular, k=10):
    import faiss
    faiss.omp_set_num_threads(1)
    index = faiss.IndexFlatIP(train.shape[1]) if angular else faiss.IndexFlatL2(train.shape[1])
    index.add(train)
    ids, dists = [], []
    start = time.perf_counter()
    for q in test:
        d, i = index.search(q[None, :], k)
        ids.append(i[0])
        dists.append(d[0])
    seconds = time.perf_counter() - start
    dists = [1 - d if angular else np.sqrt(np.maximum(d, 0)) for d in dists]
    return len(test) / seconds, ids, dists


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300, help="queries per engine and dataset")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    bin_dir = build()
    rows = []
    for name, dim, metric in (("synth-100k-128", 128, "l2"), ("synth-100k-384", 384, "cosine")):
        path = dataset(bin_dir, name, 100_000, dim, metric)
        with h5py.File(path, "r") as f:
            train = np.ascontiguousarray(f["train"][:], dtype=np.float32)
            test = np.ascontiguousarray(f["test"][: args.queries], dtype=np.float32)
            truth = f["neighbors"][: args.queries]
            truth_dist = f["distances"][: args.queries]
        angular = metric == "cosine"
        if angular:  # the generator already wrote unit vectors; keep numpy and FAISS on the same bytes
            train /= np.linalg.norm(train, axis=1, keepdims=True)
            test /= np.linalg.norm(test, axis=1, keepdims=True)
        scanned = train.nbytes
        ours_qps, ours_recall = run_vdb(bin_dir, path, name, args.queries)
        np_qps, np_ids, np_d = run_numpy(train, test, angular)
        fa_qps, fa_ids, fa_d = run_faiss(train, test, angular)
        for engine, qps, rec in (("vdb flat", ours_qps, ours_recall),
                                 ("numpy", np_qps, recall(np_ids, truth, truth_dist, np_d)),
                                 ("faiss IndexFlat", fa_qps, recall(fa_ids, truth, truth_dist, fa_d))):
            rows.append(dict(dataset=name, engine=engine, qps=qps, gbps=qps * scanned / 1e9, recall=rec,
                             vs_numpy=qps / np_qps, vs_faiss=qps / fa_qps))
    header = f"{'dataset':<16} {'engine':<16} {'QPS (1 thread)':>14} {'GB/s scanned':>12} {'recall@10':>9} {'x numpy':>8} {'x faiss':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['dataset']:<16} {r['engine']:<16} {r['qps']:>14.1f} {r['gbps']:>12.2f} {r['recall']:>9.4f} "
              f"{r['vs_numpy']:>8.2f} {r['vs_faiss']:>8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
