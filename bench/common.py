"""What the bench scripts share: paths, running commands, building the tools, the datasets
(generated synthetic sets and the shared real one), loading ann-benchmarks HDF5 files, recall
with ann-benchmarks' tie rule, and QPS at a recall target."""
import os
import subprocess

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
K = 10


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw).stdout


def build_tools(products=("vdb-build", "vdb-query")):
    """Builds the products in release mode; returns the directory holding them."""
    for product in products:
        sh("swift", "build", "-c", "release", "--product", product, cwd=ROOT)
    return sh("swift", "build", "-c", "release", "--show-bin-path", cwd=ROOT).strip()


# Generated sets by name: rows, dimension, metric, clusters. The million-row sets are the
# scale runs (issue 17): 1,000 clusters, as the measurement used.
SYNTHETIC = {
    "synth-100k-128": (100_000, 128, "l2", 64),
    "synth-100k-384": (100_000, 384, "cosine", 64),
    "synth-1m-128": (1_000_000, 128, "l2", 1000),
    "synth-1m-384": (1_000_000, 384, "cosine", 1000),
}


def datasets(bin_dir, names):
    out = []
    for name in names:
        if name == "pypi-dev":
            path = os.path.join(ROOT, "..", "shared", "datasets", "pypi-summaries-dev.hdf5")
        else:
            rows, dim, metric, clusters = SYNTHETIC[name]
            path = os.path.join(OUT, f"{name}.hdf5")
            if not os.path.exists(path):
                os.makedirs(OUT, exist_ok=True)
                sh(f"{bin_dir}/vdb-build", "generate", "--output", path, "--rows", str(rows), "--queries", "1000",
                   "--dimension", str(dim), "--metric", metric, "--clusters", str(clusters), "--seed", "42")
        out.append((name, os.path.abspath(path)))
    return out


def load(path):
    """An ann-benchmarks HDF5 file as (angular, train, test, neighbors, distances), with
    angular vectors scaled to unit length so every engine sees the same bytes."""
    with h5py.File(path, "r") as f:
        angular = f.attrs["distance"] in ("angular", b"angular")
        train = np.ascontiguousarray(f["train"][:], dtype=np.float32)
        test = np.ascontiguousarray(f["test"][:], dtype=np.float32)
        truth, truth_dist = f["neighbors"][:], f["distances"][:]
    if angular:
        train /= np.linalg.norm(train, axis=1, keepdims=True)
        test /= np.linalg.norm(test, axis=1, keepdims=True)
    return angular, train, test, truth, truth_dist


def recall(found, truth, truth_dist, found_dist):
    total = 0.0
    for i in range(len(found)):
        kth = truth_dist[i][K - 1]
        tol = kth + 1e-4 * max(1.0, abs(kth))
        ids = set(truth[i][:K].tolist())
        total += min(K, sum(1 for j, d in zip(found[i][:K], found_dist[i][:K]) if j in ids or d <= tol)) / K
    return total / len(found)


def best_at(points, target):
    """The best QPS among measured settings whose recall reaches `target`."""
    ok = [qps for _, r, qps in points if r >= target]
    return max(ok) if ok else None


def warm(paths):
    """Reads each file through once, so its pages are in the page cache before a sweep: vdb
    maps its segments, the other engines read their index into memory, and neither should pay
    for disk reads inside a timed loop."""
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(1 << 24):
                pass


def live_segments(data, library):
    """Paths of the segment files the library's live version (the manifest CURRENT names) lists."""
    import json
    root = os.path.join(data, "libraries", library)
    with open(os.path.join(root, "CURRENT")) as f:
        name = f.read().strip()
    with open(os.path.join(root, name)) as f:
        manifest = json.load(f)
    return [os.path.join(root, segment["file"]) for shard in manifest["shards"] for segment in shard["segments"]]


def median_of(items, key=lambda x: x):
    """The middle item by `key` (the upper one of an even count): a measured run, not an
    average of runs, so its other fields stay those of one run."""
    return sorted(items, key=key)[len(items) // 2]


def median_points(sweeps):
    """Sweeps of the same settings, each a list of (setting, recall, QPS): per setting, the
    first sweep's recall (it does not change between runs) and the median QPS. One sweep on
    this shared 2-core machine moves 20-30% from run to run."""
    return [(setting, found, float(np.median([sweep[i][2] for sweep in sweeps])))
            for i, (setting, found, _) in enumerate(sweeps[0])]


def hnswlib_sweep(index, test, angular, truth, truth_dist, efs):
    """One pass of an hnswlib index over `efs` with the whole query matrix per call:
    (ef, recall@K, queries per second) per ef."""
    import time
    points = []
    for ef in efs:
        index.set_ef(max(ef, K))
        t0 = time.perf_counter()
        labels, dists = index.knn_query(test, k=K)
        seconds = time.perf_counter() - t0
        found = dists if angular else np.sqrt(np.maximum(dists, 0))  # hnswlib's ip distance is 1 - dot
        points.append((ef, recall(labels, truth, truth_dist, found), len(test) / seconds))
    return points


def interpolated_at(points, target):
    """QPS at exactly `target` recall, log-linear between the two settings that bracket it."""
    pts = sorted(points, key=lambda p: p[1])
    for (_, r0, q0), (_, r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1 and r1 > r0:
            t = (target - r0) / (r1 - r0)
            return float(np.exp(np.log(q0) + t * (np.log(q1) - np.log(q0))))
    return None


class Server:
    """A vdb-serve on a free loopback port over `data`, for the REST benchmarks; a context
    manager that terminates it (SIGTERM: it flushes and exits) on the way out."""

    def __init__(self, bin_dir, data, *args):
        import tempfile
        import time
        self.port_file = tempfile.mktemp()
        self.process = subprocess.Popen([f"{bin_dir}/vdb-serve", "--data-dir", data, "--port", "0", "--port-file", self.port_file,
                                         "--log-level", "warning", *args])
        for _ in range(1200):
            if os.path.exists(self.port_file) and open(self.port_file).read().strip():
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"vdb-serve exited with {self.process.returncode}")
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())

    def client(self):
        return Client(self.port)

    def stop(self):
        self.process.terminate()
        self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


class Client:
    """One keep-alive HTTP connection; `call` returns (status, decoded JSON body or None)."""

    def __init__(self, port):
        import http.client
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, path, body=None):
        import json
        payload = None if body is None else json.dumps(body)
        self.connection.request(method, path, payload, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def wrk(url, script, seconds=10, connections=16, threads=2):
    """wrk's requests/s, requests completed, p50/p99 (ms) and non-2xx count for `script` against `url`."""
    import re
    out = sh("wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return dict(rps=rps, requests=requests, p50=ms("50"), p99=ms("99"), errors=int(errors.group(1)) if errors else 0)


def lua_bodies(path, method, bodies):
    """A wrk script sending `bodies` (JSON-encoded) in turn."""
    import json
    with open(path, "w") as f:
        f.write("local bodies = {\n")
        for b in bodies:
            f.write("  [[" + json.dumps(b) + "]],\n")
        f.write("}\nlocal i = 0\n")
        f.write(f'wrk.method = "{method}"\nwrk.headers["Content-Type"] = "application/json"\n')
        # Each request is formatted once, when a thread starts (after wrk has set its Host
        # header), so that wrk's own work per request is a table lookup: wrk shares the
        # machine's two cores with the server it measures.
        f.write("local requests = {}\n")
        f.write("init = function(args)\n  for n, body in ipairs(bodies) do requests[n] = wrk.format(nil, nil, nil, body) end\nend\n")
        f.write("request = function()\n  i = i % #requests + 1\n  return requests[i]\nend\n")
