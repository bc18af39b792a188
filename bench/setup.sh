#!/usr/bin/env bash
# Creates bench/.venv with the comparison engines (FAISS, hnswlib, numpy) from PyPI.
set -euo pipefail
cd "$(dirname "$0")"
# GNU time measures each process's peak memory in bench/million.py.
if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q time; else sudo apt-get install -y -q time; fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
