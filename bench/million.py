#!/usr/bin/env python3
"""The million-vector run: vdb's HNSW and IVF-PQ against hnswlib and FAISS IVF-PQ on generated
1M x 128 (l2) and 1M x 384 (cosine; vdb stores the vectors as float16) clustered sets, in one
run, and the same engines on the first 100k rows of each set, for the growth from 100k to 1M.

Every build and every query sweep runs in a child process of its own, so each has its own peak
resident memory (the kernel's ru_maxrss for that process). Per engine and dataset:
  - ingest seconds (vdb only: HDF5 to segments);
  - build seconds on 2 threads, and the build process's peak RSS;
  - bytes on disk: vdb's segment files of the live version, the others' saved index files;
  - resident bytes: the query process's peak RSS (index, plus its queries and ground truth);
  - QPS on 1 thread at recall@10 0.95 and 0.99 (interpolated between the settings that
    bracket it), and the best recall measured with its QPS. HNSW engines answer one query
    per call; IVF-PQ engines get batches (FAISS the whole matrix, vdb-query 64 per call, both
    sharing the coarse pass), and vdb's one-query-per-call figures are kept too.
Every query sweep runs --repeats times (default 3), each in a fresh process, and each
setting's QPS is the median of its runs (recall does not change between runs): one sweep on
this shared 2-core machine moves 20-30% from run to run. Before each sweep the files the
query process reads are read through once (vdb's live segment files, the others' saved
index), so vdb, which maps its segments, starts from the page cache as the others, which
read their index into memory, do, and no engine pays for disk reads inside a timed loop.
HNSW everywhere: M 16, ef_construction 200. IVF-PQ: 4*sqrt(n) lists, d/4 sub-quantizers of
8 bits, re-ranked exactly (vdb --rerank 10, FAISS IndexRefineFlat k_factor 10).

    bench/setup.sh && bench/.venv/bin/python bench/million.py --json bench/results/million-DATE.json
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import K, OUT, build_tools, datasets, hnswlib_sweep, interpolated_at, live_segments, load, median_points, recall, warm  # noqa: E402

EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
NPROBES = [1, 2, 4, 8, 16, 32, 64, 128]
M, EF_CONSTRUCTION, THREADS = 16, 200, 2


def child(args):
    """Runs `args`; returns (stdout, wall seconds, peak RSS bytes) of that process alone.

    Through GNU time: a child forked from this Python process would inherit its peak RSS
    (Linux keeps ru_maxrss across exec), a child of `time` starts from that small process."""
    import tempfile
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.perf_counter()
        out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *args], check=True, text=True,
                             stdout=subprocess.PIPE).stdout
        seconds = time.perf_counter() - start
        return out, seconds, int(rss.read().split()[-1]) * 1024


def summary(points):
    best = max(points, key=lambda p: (p[1], p[2]))
    return {"qps95": interpolated_at(points, 0.95), "qps99": interpolated_at(points, 0.99),
            "bestRecall": best[1], "bestQPS": best[2], "points": points}


def prefix(path, rows):
    """The first `rows` rows of an HDF5 set with exact ground truth recomputed, cached."""
    target = path.replace(".hdf5", f"-first{rows // 1000}k.hdf5")
    if os.path.exists(target):
        return target
    import faiss
    angular, train, test, _, _ = load(path)
    train = train[:rows]
    index = faiss.IndexFlatIP(train.shape[1]) if angular else faiss.IndexFlatL2(train.shape[1])
    index.add(train)
    dists, labels = index.search(test, 100)
    with h5py.File(target, "w") as f:
        f.attrs["distance"] = "angular" if angular else "euclidean"
        f["train"], f["test"], f["neighbors"] = train, test, labels
        f["distances"] = (1 - dists) if angular else np.sqrt(np.maximum(dists, 0))
    return target


def run_vdb(bin_dir, name, path, kind, float16, lists, m, repeats):
    data = os.path.join(OUT, "million-data")
    lib = f"{kind}-{name}"
    ingest = [f"{bin_dir}/vdb-build", "ingest", path, "--library", lib, "--data-dir", data, "--replace"]
    if float16:
        ingest += ["--vectors", "float16"]
    _, ingest_seconds, _ = child(ingest)
    index = [f"{bin_dir}/vdb-build", "index", "--library", lib, "--data-dir", data, "--type", kind, "--threads", str(THREADS), "--json"]
    if kind == "hnsw":
        index += ["--m", str(M), "--ef-construction", str(EF_CONSTRUCTION)]
        sweep = "ef=" + ",".join(map(str, EFS))
    else:
        index += ["--lists", str(lists), "--subquantizers", str(m), "--rerank", "10"]
        sweep = "nprobe=" + ",".join(map(str, NPROBES))
    out, _, build_rss = child(index)
    report = json.loads(out)
    query = [f"{bin_dir}/vdb-query", "--library", lib, "--data-dir", data, "--json", "--threads", "1", "--sweep", sweep]
    if kind != "hnsw":
        # FAISS IVF gets the whole query matrix per call and shares the coarse pass across
        # it; vdb-query's batches of 64 do the same. One query per call is kept beside.
        query += ["--batch", "64"]
    key = "ef" if kind == "hnsw" else "nprobe"
    mode = "singleThread" if kind == "hnsw" else "batched"
    segments = live_segments(data, lib)
    sweeps, singles, query_rss = [], [], 0
    for _ in range(repeats):
        warm(segments)
        out, _, rss = child(query)
        rows = json.loads(out)
        sweeps.append([(r["parameters"][key], r["recall"], r[mode]["queriesPerSecond"]) for r in rows])
        singles.append([(r["parameters"][key], r["recall"], r["singleThread"]["queriesPerSecond"]) for r in rows])
        query_rss = max(query_rss, rss)
    points, single = median_points(sweeps), median_points(singles)
    return dict(ingest=ingest_seconds, build=report["buildSeconds"], buildRSS=build_rss, disk=sum(map(os.path.getsize, segments)),
                resident=query_rss, repeats=repeats, onePerCall=summary(single), **summary(points))


def engine_main(engine, path, lists, m, index_path, phase):
    """One competitor phase in this (child) process: build and save, or load and sweep."""
    angular, train, test, truth, truth_dist = load(path)
    d = train.shape[1]
    if engine == "hnswlib":
        import hnswlib
        index = hnswlib.Index(space="ip" if angular else "l2", dim=d)
        if phase == "build":
            t0 = time.perf_counter()
            index.init_index(max_elements=len(train), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
            index.set_num_threads(THREADS)
            index.add_items(train, np.arange(len(train)))
            print(json.dumps({"build": time.perf_counter() - t0}))
            index.save_index(index_path)
            return
        del train
        index.load_index(index_path)
        index.set_num_threads(1)
        print(json.dumps(hnswlib_sweep(index, test, angular, truth, truth_dist, EFS)))
        return
    import faiss
    if phase == "build":
        faiss.omp_set_num_threads(THREADS)
        metric = faiss.METRIC_INNER_PRODUCT if angular else faiss.METRIC_L2
        index = faiss.IndexRefineFlat(faiss.index_factory(d, f"IVF{lists},PQ{m}x8np", metric))
        index.k_factor = 10
        t0 = time.perf_counter()
        index.train(train)
        index.add(train)
        print(json.dumps({"build": time.perf_counter() - t0}))
        faiss.write_index(index, index_path)
        return
    del train
    index = faiss.read_index(index_path)
    faiss.omp_set_num_threads(1)
    ivf = faiss.extract_index_ivf(index.base_index)
    points = []
    for nprobe in NPROBES:
        ivf.nprobe = nprobe
        t0 = time.perf_counter()
        dists, labels = index.search(test, K)
        seconds = time.perf_counter() - t0
        found = (1 - dists) if angular else np.sqrt(np.maximum(dists, 0))
        points.append((nprobe, recall(labels, truth, truth_dist, found), len(test) / seconds))
    print(json.dumps(points))


def run_engine(engine, name, path, lists, m, repeats):
    index_path = os.path.join(OUT, f"million-{engine.replace(' ', '-')}-{name}.index")
    common = [sys.executable, os.path.abspath(__file__), "--engine", engine, "--path", path, "--lists", str(lists), "--m", str(m),
              "--index-path", index_path]
    out, _, build_rss = child(common + ["--phase", "build"])
    build = json.loads(out)["build"]

    sweeps, query_rss = [], 0
    for _ in range(repeats):
        warm([index_path])
        out, _, rss = child(common + ["--phase", "query"])
        sweeps.append([tuple(p) for p in json.loads(out)])
        query_rss = max(query_rss, rss)
    points = median_points(sweeps)
    disk = os.path.getsize(index_path)
    os.remove(index_path)
    return dict(build=build, buildRSS=build_rss, disk=disk, resident=query_rss, repeats=repeats, **summary(points))


def measure(bin_dir, name, path, rows, dim, cosine, repeats):
    lists, m = int(4 * math.sqrt(rows)), dim // 4
    return {
        "vdb HNSW": run_vdb(bin_dir, name, path, "hnsw", cosine, lists, m, repeats),
        "hnswlib": run_engine("hnswlib", name, path, lists, m, repeats),
        "vdb IVF-PQ": run_vdb(bin_dir, name, path, "ivfpq", cosine, lists, m, repeats),
        "faiss IVF-PQ": run_engine("faiss", name, path, lists, m, repeats),
    }


def report(results):
    mib = 2 ** 20
    print(f"HNSW M {M} efC {EF_CONSTRUCTION}; IVF-PQ 4*sqrt(n) lists, d/4 x 8 bits, re-ranked 10k; builds on {THREADS} threads, queries on 1")
    print("RSS: peak resident of the build process / of the query process (which holds the queries and truth too)\n")
    for name, engines in results.items():
        print(f"== {name}")
        print(f"{'engine':<14} {'ingest s':>8} {'build s':>8} {'build RSS':>10} {'disk MiB':>9} {'query RSS':>10} "
              f"{'QPS@0.95':>9} {'QPS@0.99':>9} {'best recall/QPS':>16}")
        for engine, e in engines.items():
            q95 = f"{e['qps95']:.0f}" if e["qps95"] else "-"
            q99 = f"{e['qps99']:.0f}" if e["qps99"] else "-"
            ingest = f"{e['ingest']:.1f}" if "ingest" in e else "-"
            print(f"{engine:<14} {ingest:>8} {e['build']:>8.1f} {e['buildRSS'] / mib:>9.0f}M {e['disk'] / mib:>9.0f} "
                  f"{e['resident'] / mib:>9.0f}M {q95:>9} {q99:>9} {e['bestRecall']:>8.4f}/{e['bestQPS']:<7.0f}")
            if "onePerCall" in e and e["onePerCall"]["qps95"]:
                one = e["onePerCall"]
                print(f"{'  one per call':<14} {'':>8} {'':>8} {'':>10} {'':>9} {'':>10} {one['qps95']:>9.0f} "
                      f"{(one['qps99'] or 0):>9.0f}")
        for ours, theirs in (("vdb HNSW", "hnswlib"), ("vdb IVF-PQ", "faiss IVF-PQ")):
            a, b = engines[ours], engines[theirs]
            cells = [f"build {a['build'] / b['build']:.2f}x"]
            for key, label in (("qps95", "0.95"), ("qps99", "0.99")):
                cells.append(f"QPS@{label} {a[key] / b[key]:.2f}x" if a[key] and b[key] else f"QPS@{label} -")
            print(f"  {ours} / {theirs}: " + ", ".join(cells))
        print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="synth-1m-128,synth-1m-384")
    parser.add_argument("--growth-rows", type=int, default=100_000, help="rows of the smaller run (0: none)")
    parser.add_argument("--repeats", type=int, default=3, help="query sweeps per engine; QPS is the median (default 3)")
    parser.add_argument("--json", help="also write the measurements here (rewritten after every dataset)")
    parser.add_argument("--report", help="print the report of a JSON file written by --json, and exit")
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--lists", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--m", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index-path", help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        return engine_main(args.engine, args.path, args.lists, args.m, args.index_path, args.phase)
    if args.report:
        with open(args.report) as f:
            report(json.load(f))
        return
    os.makedirs(OUT, exist_ok=True)
    bin_dir = build_tools()
    results = {}
    for name, path in datasets(bin_dir, args.datasets.split(",")):
        with h5py.File(path, "r") as f:
            rows, dim = f["train"].shape
            cosine = f.attrs["distance"] in ("angular", b"angular")
        runs = [(name, path, rows)]
        if args.growth_rows and args.growth_rows < rows:
            runs.insert(0, (f"{name}-first{args.growth_rows // 1000}k", prefix(path, args.growth_rows), args.growth_rows))
        for label, file, n in runs:
            results[label] = measure(bin_dir, label, file, n, dim, cosine, args.repeats)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=2)
    report(results)


if __name__ == "__main__":
    sys.exit(main())
