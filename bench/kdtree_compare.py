#!/usr/bin/env python3
"""k-d tree against flat search on low-dimensional data, in one run: 100k seeded clustered
vectors in 2, 4, 8, 16 and 32 dimensions (l2), 500 queries, k=10, single thread. Shows where the
tree wins (low dimension) and where it stops winning.

    bench/.venv/bin/python bench/kdtree_compare.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, build_tools, sh  # noqa: E402

DATA = os.path.join(OUT, "kd-data")


def main():
    bin_dir = build_tools()
    os.makedirs(OUT, exist_ok=True)
    rows = []
    for dim in (2, 4, 8, 16, 32):
        path = os.path.join(OUT, f"kd-{dim}.hdf5")
        if not os.path.exists(path):
            sh(f"{bin_dir}/vdb-build", "generate", "--output", path, "--rows", "100000", "--queries", "500",
               "--dimension", str(dim), "--metric", "l2", "--clusters", "64", "--seed", "7")
        lib = f"kd{dim}"
        sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", lib, "--data-dir", DATA, "--replace")
        sh(f"{bin_dir}/vdb-build", "index", "--library", lib, "--data-dir", DATA, "--type", "flat")
        flat = json.loads(sh(f"{bin_dir}/vdb-query", "--library", lib, "--data-dir", DATA, "--json", "--threads", "1"))
        sh(f"{bin_dir}/vdb-build", "index", "--library", lib, "--data-dir", DATA, "--type", "kdtree", "--leaf-size", "32")
        exact = json.loads(sh(f"{bin_dir}/vdb-query", "--library", lib, "--data-dir", DATA, "--json", "--threads", "1"))
        sweep = json.loads(sh(f"{bin_dir}/vdb-query", "--library", lib, "--data-dir", DATA, "--json", "--threads", "1",
                              "--sweep", "leaves=1,4,16"))
        base = flat["singleThread"]["queriesPerSecond"]
        rows.append((dim, "flat", flat["recall"], base, 1.0))
        rows.append((dim, "kd tree, exact", exact["recall"], exact["singleThread"]["queriesPerSecond"],
                     exact["singleThread"]["queriesPerSecond"] / base))
        for r in sweep:
            q = r["singleThread"]["queriesPerSecond"]
            rows.append((dim, f"kd tree, {r['parameters']['leafBudget']} leaves", r["recall"], q, q / base))
    print(f"{'dim':>4} {'index':<22} {'recall@10':>9} {'QPS (1 thread)':>15} {'x flat':>7}")
    for dim, name, recall, qps, ratio in rows:
        print(f"{dim:>4} {name:<22} {recall:>9.4f} {qps:>15.0f} {ratio:>7.2f}")


if __name__ == "__main__":
    sys.exit(main())
