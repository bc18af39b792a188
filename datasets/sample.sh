#!/usr/bin/env bash
# The README's main job: build the tools in release mode, generate the seeded sample dataset
# (20,000 x 128 clustered Gaussian, 1,000 queries, exact top-100 ground truth, ann-benchmarks
# HDF5 layout), ingest it into a library under ./.vdb-data, and measure it with vdb-query.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-system-libraries.sh

swift build -c release --product vdb-build
swift build -c release --product vdb-query
bin=$(swift build -c release --show-bin-path)

[ -f datasets/sample.hdf5 ] || "$bin/vdb-build" generate --output datasets/sample.hdf5 \
    --rows 20000 --queries 1000 --dimension 128 --clusters 64 --metric l2 --seed 42
"$bin/vdb-build" ingest datasets/sample.hdf5 --library sample --data-dir .vdb-data --replace
"$bin/vdb-query" --library sample --data-dir .vdb-data --min-recall 1.0
