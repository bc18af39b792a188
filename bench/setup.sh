#!/usr/bin/env bash
# Creates bench/.venv with the comparison engines (FAISS, hnswlib, numpy) from PyPI.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
