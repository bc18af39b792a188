#!/usr/bin/env python3
"""HNSW side by side, on the same HDF5 files, in one run: vdb (vdb-build index + vdb-query,
release build) vs hnswlib vs FAISS IndexHNSWFlat, all with M=16 and ef_construction=200.

Reports, per dataset and engine: build time with 2 threads, index memory, and per ef the
recall@10 and single-thread queries per second. Queries run single-threaded in every engine;
hnswlib and FAISS get the whole query matrix in one call (no Python overhead per query), vdb
runs its single-thread pass over the same queries. Also derives, per engine, QPS at recall 0.95
and 0.99: interpolated log-linearly between the measured settings that bracket the target, and
the best measured setting at or above it. Every engine sweeps --repeats times (default 3; vdb
each time in a fresh vdb-query after its segment files are read through once) and each ef's
QPS is the median. vdb and hnswlib build --build-rounds times (default 3) in alternating
rounds, so the machine's drift falls on both; the build time is each one's median and vdb's
ratio the median of the rounds' ratios. Writes an SVG plot per dataset to
bench/out/hnsw-<dataset>.svg.

    bench/setup.sh && bench/.venv/bin/python bench/hnsw_compare.py
"""
import argparse
import json
import os
import sys
import time

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import K, OUT, best_at, build_tools, datasets, hnswlib_sweep, interpolated_at, live_segments, load, median_of, median_points, recall, sh, warm  # noqa: E402

EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
M, EF_CONSTRUCTION, BUILD_THREADS = 16, 200, 2


def build_vdb(bin_dir, name, path):
    """Ingests afresh and builds the graph; vdb-build's report (its build time excludes ingest)."""
    data = os.path.join(OUT, "data")
    lib = f"hnsw-{name}"
    sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", lib, "--data-dir", data, "--replace")
    return json.loads(sh(f"{bin_dir}/vdb-build", "index", "--library", lib, "--data-dir", data, "--type", "hnsw",
                         "--m", str(M), "--ef-construction", str(EF_CONSTRUCTION), "--threads", str(BUILD_THREADS), "--json"))


def sweep_vdb(bin_dir, name, path, report, repeats):
    data = os.path.join(OUT, "data")
    lib = f"hnsw-{name}"
    with h5py.File(path, "r") as f:
        vector_bytes = f["train"].shape[0] * f["train"].shape[1] * 4
    segments, sweeps = live_segments(data, lib), []
    for _ in range(repeats):
        warm(segments)
        sweep = json.loads(sh(f"{bin_dir}/vdb-query", "--library", lib, "--data-dir", data, "--json", "--threads", "1",
                              "--sweep", "ef=" + ",".join(map(str, EFS))))
        sweeps.append([(r["parameters"]["ef"], r["recall"], r["singleThread"]["queriesPerSecond"]) for r in sweep])
    return dict(memory=report["graphBytes"] + vector_bytes, points=median_points(sweeps))


def build_hnswlib(train, angular):
    import hnswlib
    index = hnswlib.Index(space="ip" if angular else "l2", dim=train.shape[1])
    t0 = time.perf_counter()
    index.init_index(max_elements=len(train), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    index.set_num_threads(BUILD_THREADS)
    index.add_items(train, np.arange(len(train)))
    return index, time.perf_counter() - t0


def sweep_hnswlib(index, train, test, angular, truth, truth_dist, repeats):
    index.set_num_threads(1)
    points = median_points([hnswlib_sweep(index, test, angular, truth, truth_dist, EFS) for _ in range(repeats)])
    # hnswlib's level-0 block: links + vector + label per element, plus upper levels (approx.)
    memory = len(train) * (4 + 2 * M * 4 + train.shape[1] * 4 + 8)
    return dict(memory=memory, points=points)


def run_vdb_and_hnswlib(bin_dir, name, path, train, test, angular, truth, truth_dist, repeats, build_rounds):
    """Builds vdb and hnswlib in alternating rounds, so a drift of the machine's speed falls on
    both; each engine's build time is its median, and vdb's ratio is the median of the rounds'
    ratios. The last round's indexes are swept."""
    rounds = []
    for _ in range(build_rounds):
        report = build_vdb(bin_dir, name, path)
        index, hnswlib_seconds = build_hnswlib(train, angular)
        rounds.append({"vdb": report["buildSeconds"], "hnswlib": hnswlib_seconds})
        print(f"{name}: build round: vdb {report['buildSeconds']:.2f} s, hnswlib {hnswlib_seconds:.2f} s", flush=True)
    vdb = dict(build=median_of([r["vdb"] for r in rounds]), buildRounds=rounds,
               buildRatio=median_of([r["vdb"] / r["hnswlib"] for r in rounds]), **sweep_vdb(bin_dir, name, path, report, repeats))
    hnsw = dict(build=median_of([r["hnswlib"] for r in rounds]), **sweep_hnswlib(index, train, test, angular, truth, truth_dist, repeats))
    return vdb, hnsw


def run_faiss(train, test, angular, truth, truth_dist, repeats):
    import faiss
    faiss.omp_set_num_threads(BUILD_THREADS)
    index = faiss.IndexHNSWFlat(train.shape[1], M, faiss.METRIC_INNER_PRODUCT if angular else faiss.METRIC_L2)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    t0 = time.perf_counter()
    index.add(train)
    build = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)

    def sweep():
        points = []
        for ef in EFS:
            index.hnsw.efSearch = max(ef, K)
            t0 = time.perf_counter()
            dists, labels = index.search(test, K)
            seconds = time.perf_counter() - t0
            found_d = (1 - dists) if angular else np.sqrt(np.maximum(dists, 0))
            points.append((ef, recall(labels, truth, truth_dist, found_d), len(test) / seconds))
        return points

    points = median_points([sweep() for _ in range(repeats)])
    memory = len(train) * (2 * M * 4 + train.shape[1] * 4)
    return dict(build=build, memory=memory, points=points)


def svg(title, series, path):
    width, height, left, right, top, bottom = 720, 480, 70, 700, 40, 430
    recalls = [r for _, pts in series for _, r, _ in pts]
    qps = [q for _, pts in series for _, _, q in pts]
    lo_r = max(0.0, min(min(recalls), 0.9) - 0.02)
    lo_e, hi_e = np.floor(np.log10(min(qps))), np.ceil(np.log10(max(qps)))
    x = lambda r: left + (r - lo_r) / (1 - lo_r) * (right - left)
    y = lambda q: bottom - (np.log10(q) - lo_e) / max(1, hi_e - lo_e) * (bottom - top)
    colors = ["#1f77b4", "#d62728", "#2ca02c"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width // 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
             f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>',
             f'<text x="{(left + right) // 2}" y="{height - 12}" text-anchor="middle">recall@10</text>',
             f'<text x="16" y="{(top + bottom) // 2}" text-anchor="middle" transform="rotate(-90 16 {(top + bottom) // 2})">queries/s, 1 thread (log)</text>']
    for t in np.linspace(lo_r, 1, 6):
        parts.append(f'<text x="{x(t):.1f}" y="{bottom + 18}" text-anchor="middle">{t:.2f}</text>')
    for e in range(int(lo_e), int(hi_e) + 1):
        parts.append(f'<line x1="{left}" y1="{y(10 ** e):.1f}" x2="{right}" y2="{y(10 ** e):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y(10 ** e) + 4:.1f}" text-anchor="end">{10 ** e}</text>')
    for i, (name, pts) in enumerate(series):
        c = colors[i % len(colors)]
        p = " ".join(f"{x(r):.1f},{y(q):.1f}" for _, r, q in sorted(pts, key=lambda t: t[1]))
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{p}"/>')
        parts += [f'<circle cx="{x(r):.1f}" cy="{y(q):.1f}" r="3" fill="{c}"><title>{name} ef {ef}: {r:.4f}, {q:.0f} QPS</title></circle>' for ef, r, q in pts]
        parts.append(f'<rect x="{right - 150}" y="{top + 8 + 18 * i}" width="12" height="12" fill="{c}"/>'
                     f'<text x="{right - 132}" y="{top + 18 + 18 * i}">{name}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="synth-100k-128,synth-100k-384,pypi-dev")
    parser.add_argument("--repeats", type=int, default=3, help="sweeps per engine; QPS per ef is the median (default 3)")
    parser.add_argument("--build-rounds", type=int, default=3,
                        help="vdb and hnswlib builds, alternating; build time is the median (default 3)")
    parser.add_argument("--json", help="also write all measurements to this file")
    parser.add_argument("--report", help="print the report of a JSON file written by --json, and exit")
    args = parser.parse_args()
    if args.report:
        with open(args.report) as f:
            report(json.load(f))
        return
    os.makedirs(OUT, exist_ok=True)
    bin_dir = build_tools()
    results = {}
    for name, path in datasets(bin_dir, args.datasets.split(",")):
        angular, train, test, truth, truth_dist = load(path)
        vdb, hnsw = run_vdb_and_hnswlib(bin_dir, name, path, train, test, angular, truth, truth_dist, args.repeats, args.build_rounds)
        engines = {"vdb": vdb, "hnswlib": hnsw, "faiss HNSWFlat": run_faiss(train, test, angular, truth, truth_dist, args.repeats)}
        results[name] = engines
        svg(f"{name}: recall@10 vs QPS (M={M}, efC={EF_CONSTRUCTION})", list((n, e["points"]) for n, e in engines.items()),
            os.path.join(OUT, f"hnsw-{name}.svg"))

    report(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def report(results):
    print(f"HNSW, M={M}, ef_construction={EF_CONSTRUCTION}, build on {BUILD_THREADS} threads, queries on 1 thread, k={K}")
    print("cells: recall@10/QPS per ef; 'index MiB' = vectors + graph (+ vdb's 8-bit codes)\n")
    for name, engines in results.items():
        print(f"== {name}")
        header = f"{'engine':<16} {'build s':>8} {'index MiB':>10} " + " ".join(f"{'ef' + str(ef):>13}" for ef in EFS)
        print(header)
        for engine, e in engines.items():
            cells = " ".join(f"{r:.3f}/{q:>7.0f}" for _, r, q in e["points"])
            print(f"{engine:<16} {e['build']:>8.2f} {e['memory'] / 2**20:>10.1f} {cells}")
        hl = engines["hnswlib"]
        for engine, e in engines.items():
            ratio = e.get("buildRatio", e["build"] / hl["build"])
            summary = [f"build {ratio:.2f}x hnswlib" + (f" (median of {len(e['buildRounds'])} alternating rounds)" if "buildRounds" in e else "")]
            for target in (0.95, 0.99):
                ours, theirs = interpolated_at(e["points"], target), interpolated_at(hl["points"], target)
                best = best_at(e["points"], target)
                cell = f"QPS@{target}: {ours:.0f}" if ours else f"QPS@{target}: n/a"
                if ours and theirs:
                    cell += f" ({ours / theirs:.2f}x hnswlib)"
                if best:
                    cell += f" [best measured >= {target}: {best:.0f}]"
                summary.append(cell)
            print(f"  {engine:<16} " + "; ".join(summary))
        print()


if __name__ == "__main__":
    sys.exit(main())
