"""Filtered k-NN search: vdb (every index family: flat, HNSW, IVF-PQ and k-d tree, its planner
choosing exact scoring or a widened, filtered index walk per segment) next to FAISS
(IndexHNSWFlat and IVF-PQ with an IDSelectorBitmap in the search parameters), hnswlib (a
Python filter function) and post-filtering (hnswlib asked for k·x neighbours, then filtered),
on the same vectors, the same metadata and the same filters, in one run.

Metadata is vdb's SyntheticMetadata (`vdb-build ingest --synthetic-metadata SEED`): its
`bucket` is uniform in 0..999, recomputed here from the row number, so `bucket < N` matches
N/10 % of the rows in every engine. Recall@10 is against exact filtered search (numpy); QPS is
single-threaded, one query per call for vdb and hnswlib, the whole query matrix per call for
FAISS (its own batching). Usage:

    bench/.venv/bin/python bench/filter_compare.py [--queries 300] [--json bench/out/filter.json]
"""
import argparse
import json
import os
import subprocess
import time

import numpy as np

from common import OUT, ROOT, build_tools, load, sh

K = 10
SEED = 1
SELECTIVITIES = {"50%": 500, "10%": 100, "1%": 10, "0.1%": 1}
EFS = [16, 32, 64, 128, 256]
NPROBES = [4, 16, 64, 256]
LEAVES = [64, 256, 1024, 4096]
# Post-filtering asks for k·x neighbours and keeps the first k that pass.
OVERFETCH = [2, 5, 10, 20, 50, 100, 200, 500, 1000]
MASK = (1 << 64) - 1


def splitmix(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def buckets(rows, seed=SEED):
    """SyntheticMetadata's bucket of each row (its first SplitMix64 output, mod 1000)."""
    out = np.empty(rows, dtype=np.int64)
    for r in range(rows):
        _, h = splitmix(seed ^ ((r * 0x9E3779B97F4A7C15) & MASK))
        out[r] = h % 1000
    return out


def exact(train, test, allowed, angular):
    ids = np.nonzero(allowed)[0]
    base = train[ids]
    if angular:
        scores = -(test @ base.T)
    else:
        scores = (test * test).sum(1)[:, None] - 2 * test @ base.T + (base * base).sum(1)[None, :]
    order = np.argsort(scores, axis=1)[:, :K]
    return ids[order]


def recall(found, truth):
    return float(np.mean([len(set(f[:K]) & set(t[:K])) / K for f, t in zip(found, truth)]))


def run_vdb(bin_dir, path, limit):
    data = os.path.join(OUT, "filter-data")
    subprocess.run(["rm", "-rf", data], check=True)
    results = {}
    families = (
        ("vdb flat", None, None),
        ("vdb hnsw", ["--type", "hnsw", "--m", "16", "--ef-construction", "200"], "ef=" + ",".join(map(str, EFS))),
        ("vdb ivfpq", ["--type", "ivfpq"], "nprobe=" + ",".join(map(str, NPROBES))),
        ("vdb kdtree", ["--type", "kdtree"], "leaves=" + ",".join(map(str, LEAVES))),
    )
    for i, (label, index, sweep) in enumerate(families):
        library = f"l{i}"
        sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", library, "--data-dir", data, "--synthetic-metadata", str(SEED))
        if index:
            sh(f"{bin_dir}/vdb-build", "index", "--library", library, "--data-dir", data, *index)
        for name, n in SELECTIVITIES.items():
            out = sh(f"{bin_dir}/vdb-query", "--library", library, "--data-dir", data, "--limit", str(limit), "--threads", "1",
                     *(["--sweep", sweep] if sweep else []), "--filter", json.dumps({"bucket": {"$lt": n}}), "--json")
            reports = json.loads(out)
            points = []
            for r in reports if isinstance(reports, list) else [reports]:
                plans = sorted({p["strategy"] for p in r["plans"]})
                p = r["parameters"]
                points.append(dict(parameter=p.get("ef") or p.get("nprobe") or p.get("leafBudget") or "-", recall=r["recall"],
                                   qps=r["singleThread"]["queriesPerSecond"], plan="+".join(plans)))
            results[(label, name)] = points
    return results


def run_postfilter(index, test, truths, allowed):
    """Post-filtering on hnswlib's graph: k·x unfiltered neighbours, the first k allowed kept."""
    results = {}
    for name, truth in truths.items():
        mask = allowed[name]
        points = []
        for x in OVERFETCH:
            k = min(K * x, index.get_current_count())
            index.set_ef(k)
            t0 = time.perf_counter()
            found = []
            for q in test:
                labels = index.knn_query(q[None, :], k=k)[0][0]
                found.append([l for l in labels if mask[l]][:K])
            seconds = time.perf_counter() - t0
            points.append(dict(parameter=f"k*{x}", recall=recall(found, truth), qps=len(test) / seconds, plan="post-filter"))
        results[("post-filter", name)] = points
    return results


def run_hnswlib(train, test, angular, truths, allowed):
    import hnswlib
    index = hnswlib.Index(space="ip" if angular else "l2", dim=train.shape[1])
    index.init_index(max_elements=len(train), M=16, ef_construction=200, random_seed=100)
    index.set_num_threads(2)
    index.add_items(train, np.arange(len(train)))
    index.set_num_threads(1)
    results = {}
    for name, truth in truths.items():
        mask = allowed[name]
        keep = lambda label: bool(mask[label])
        points = []
        for ef in EFS:
            index.set_ef(max(ef, K))
            t0 = time.perf_counter()
            labels = [index.knn_query(q[None, :], k=K, filter=keep)[0][0] for q in test]
            seconds = time.perf_counter() - t0
            points.append(dict(parameter=ef, recall=recall(labels, truth), qps=len(test) / seconds, plan="filter function"))
        results[("hnswlib", name)] = points
    results.update(run_postfilter(index, test, truths, allowed))
    return results


def run_faiss(train, test, angular, truths, allowed):
    import faiss
    faiss.omp_set_num_threads(2)
    metric = faiss.METRIC_INNER_PRODUCT if angular else faiss.METRIC_L2
    hnsw = faiss.IndexHNSWFlat(train.shape[1], 16, metric)
    hnsw.hnsw.efConstruction = 200
    hnsw.add(train)
    lists = 1024
    quantizer = faiss.IndexFlat(train.shape[1], metric)
    ivfpq = faiss.IndexIVFPQ(quantizer, train.shape[1], lists, train.shape[1] // 4, 8, metric)
    ivfpq.train(train)
    ivfpq.add(train)
    faiss.omp_set_num_threads(1)
    results = {}
    for name, truth in truths.items():
        bitmap = np.packbits(allowed[name].astype(np.uint8), bitorder="little")
        selector = faiss.IDSelectorBitmap(len(train), faiss.swig_ptr(bitmap))
        for label, index, values in (("faiss hnsw", hnsw, EFS), ("faiss ivfpq", ivfpq, NPROBES)):
            points = []
            for v in values:
                params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(v, K)) if label == "faiss hnsw"
                          else faiss.SearchParametersIVF(sel=selector, nprobe=v))
                t0 = time.perf_counter()
                _, labels = index.search(test, K, params=params)
                seconds = time.perf_counter() - t0
                points.append(dict(parameter=v, recall=recall(labels, truth), qps=len(test) / seconds, plan="IDSelectorBitmap"))
            results[(label, name)] = points
    return results


def best_at(points, target):
    ok = [p for p in points if p["recall"] >= target]
    return max(ok, key=lambda p: p["qps"]) if ok else None


def report(results):
    engines = sorted({e for e, _ in results})
    print(f"QPS at recall@{K} >= 0.95 (best parameter; '-' when no setting reaches it), 1 thread:")
    print("| filter | " + " | ".join(engines) + " |")
    print("|---|" + "---:|" * len(engines))
    for name in SELECTIVITIES:
        cells = []
        for e in engines:
            b = best_at(results.get((e, name), []), 0.95)
            cells.append(f"{b['qps']:,.0f} ({b['recall']:.3f}, {b['parameter']})" if b else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for (e, name), points in sorted(results.items()):
        print(e, name, "; ".join(f"{p['parameter']}: {p['recall']:.4f} @ {p['qps']:,.0f} [{p['plan']}]" for p in points))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json")
    parser.add_argument("--report")
    args = parser.parse_args()
    if args.report:
        with open(args.report) as f:
            report({tuple(k.split("|")): v for k, v in json.load(f).items()})
        return
    os.makedirs(OUT, exist_ok=True)
    bin_dir = build_tools()
    path = os.path.abspath(os.path.join(ROOT, "..", "shared", "datasets", "pypi-summaries-dev.hdf5"))
    angular, train, test, _, _ = load(path)
    test = test[: args.queries]
    bucket = buckets(len(train))
    allowed = {name: bucket < n for name, n in SELECTIVITIES.items()}
    truths = {name: exact(train, test, allowed[name], angular) for name in SELECTIVITIES}
    results = {}
    results.update(run_vdb(bin_dir, path, args.queries))
    results.update(run_faiss(train, test, angular, truths, allowed))
    results.update(run_hnswlib(train, test, angular, truths, allowed))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{e}|{n}": v for (e, n), v in results.items()}, f, indent=1)
    report(results)


if __name__ == "__main__":
    main()
