"""Replicated writes, failover and catch-up (issue 15), in one run on loopback.

- Write latency and throughput: 1-chunk 384-d inserts through wrk (16 connections) against one
  node alone, then against a 3-node cluster (3 replicas, write quorum 2) through the shard's
  leader and through a follower (which forwards to the leader).
- Failover: the leader is SIGKILLed while a client writes once every 10 ms through another
  node; the time until a write is accepted again. Five times (the killed node restarts between).
- Catch-up: a follower is stopped, 100,000 rows are written (1,000 documents of 100 chunks; the
  leader flushes every 10,000 rows, so the follower needs the shipped segments and the WAL
  tail), the follower restarts; the time until it holds the leader's position and segments.

Needs etcd (Debian's etcd-server) and wrk; builds vdb-serve in release mode.
Usage: bench/.venv/bin/python bench/cluster.py [--lease 3]
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, ROOT, Client, Server, build_tools, lua_bodies, wrk  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    def __init__(self, directory):
        self.port, peer = free_port(), free_port()
        self.process = subprocess.Popen(
            ["etcd", "--data-dir", os.path.join(directory, "etcd"), "--name", "bench",
             "--listen-client-urls", f"http://127.0.0.1:{self.port}", "--advertise-client-urls", f"http://127.0.0.1:{self.port}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Node:
    def __init__(self, bin_dir, directory, etcd_port, node_id, lease, fsync):
        self.bin_dir, self.id, self.lease, self.fsync = bin_dir, node_id, lease, fsync
        self.data = os.path.join(directory, node_id)
        self.port = free_port()
        self.etcd_port = etcd_port
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [f"{self.bin_dir}/vdb-serve", "--data-dir", self.data, "--port", str(self.port), "--fsync", self.fsync,
             "--cluster", f"etcd://127.0.0.1:{self.etcd_port}", "--node-id", self.id, "--advertise", f"http://127.0.0.1:{self.port}",
             "--lease-seconds", str(self.lease), "--log-level", "warning"])
        for _ in range(600):
            try:
                Client(self.port).call("GET", "/healthz")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"node {self.id} did not start")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()

    def status(self):
        return Client(self.port).call("GET", "/v1/cluster")[1]


def shard(status, library="w"):
    for lib in status["libraries"]:
        if lib["name"] == library:
            return lib["shards"][0]
    return None


def leader_of(nodes, library="w", excluding=()):
    for _ in range(400):
        for node in nodes:
            if node.id in excluding or node.process.poll() is not None:
                continue
            try:
                s = shard(node.status(), library)
            except OSError:
                continue
            if s and s.get("leader") and s["leader"] not in excluding:
                return next(n for n in nodes if n.id == s["leader"])
        time.sleep(0.05)
    raise RuntimeError("no leader")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lease", type=int, default=3)
    parser.add_argument("--fsync", default="always")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    bin_dir = build_tools(("vdb-serve",))
    rng = random.Random(1)
    inserts = os.path.join(OUT, "cluster-insert.lua")
    lua_bodies(inserts, "POST", [{"chunks": [{"text": "t", "vector": [rng.uniform(-1, 1) for _ in range(384)]}]} for _ in range(200)])
    results = {"fsync": args.fsync, "lease_seconds": args.lease, "writes": {}}
    work = tempfile.mkdtemp(prefix="vdb-cluster-bench-")
    try:
        # One node alone.
        with Server(bin_dir, os.path.join(work, "single"), "--fsync", args.fsync) as single:
            single.client().call("POST", "/v1/libraries", {"name": "w", "dimension": 384, "metric": "cosine"})
            results["writes"]["single node"] = wrk(f"http://127.0.0.1:{single.port}/v1/libraries/w/documents", inserts, seconds=args.seconds)

        etcd = Etcd(work)
        nodes = [Node(bin_dir, work, etcd.port, f"n{i}", args.lease, args.fsync) for i in (1, 2, 3)]
        try:
            status, body = Client(nodes[0].port).call(
                "POST", "/v1/libraries", {"name": "w", "dimension": 384, "metric": "cosine", "replicas": 3})
            assert status == 201, body
            leader = leader_of(nodes)
            follower = next(n for n in nodes if n is not leader)
            results["writes"]["3 replicas, quorum 2, at the leader"] = wrk(
                f"http://127.0.0.1:{leader.port}/v1/libraries/w/documents", inserts, seconds=args.seconds)
            results["writes"]["3 replicas, quorum 2, at a follower (forwarded)"] = wrk(
                f"http://127.0.0.1:{follower.port}/v1/libraries/w/documents", inserts, seconds=args.seconds)

            # Failover: leader killed -> a write accepted again.
            failovers = []
            vector = [0.5] * 384
            for _ in range(5):
                leader = leader_of(nodes)
                entry = next(n for n in nodes if n is not leader)
                client = Client(entry.port)
                leader.kill()
                killed = time.monotonic()
                while True:
                    try:
                        status, _ = client.call("POST", "/v1/libraries/w/documents", {"chunks": [{"vector": vector}]})
                    except OSError:
                        client = Client(entry.port)
                        status = 0
                    if status == 201:
                        break
                    time.sleep(0.01)
                failovers.append(time.monotonic() - killed)
                leader.start()
                time.sleep(args.lease + 1)
            results["failover_seconds"] = {"runs": failovers, "median": sorted(failovers)[2], "max": max(failovers)}

            # Catch-up: a follower 100,000 rows behind.
            leader = leader_of(nodes)
            behind = next(n for n in nodes if n is not leader)
            behind.kill()
            client = Client(leader.port)
            written = time.monotonic()
            for d in range(1000):
                chunks = [{"vector": [rng.uniform(-1, 1) for _ in range(384)]} for _ in range(100)]
                status, body = client.call("POST", "/v1/libraries/w/documents", {"chunks": chunks})
                assert status == 201, body
            results["catch_up_write_seconds"] = time.monotonic() - written
            target = shard(leader.status())
            behind.start()
            restarted = time.monotonic()
            while True:
                mine = shard(behind.status())
                now = shard(leader.status())
                if mine and mine["position"] == now["position"] and mine.get("segments") == now.get("segments"):
                    break
                time.sleep(0.05)
            results["catch_up"] = {
                "rows_behind": 100_000, "leader_position": target["position"], "leader_segments": len(target["segments"]),
                "seconds": time.monotonic() - restarted}
        finally:
            for node in nodes:
                node.stop()
            etcd.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'writes (1-chunk 384-d, fsync ' + args.fsync + ')':<52} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in results["writes"].items():
        print(f"{name:<52} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>7}")
    f = results["failover_seconds"]
    print(f"failover (leader SIGKILLed -> write accepted): median {f['median']:.2f} s, max {f['max']:.2f} s over {len(f['runs'])}")
    c = results["catch_up"]
    print(f"catch-up of a follower {c['rows_behind']:,} rows behind: {c['seconds']:.2f} s ({c['leader_segments']} segments + WAL tail)")
    path = os.path.join(ROOT, "bench", "results", f"cluster-{time.strftime('%Y-%m-%d')}.json")
    with open(path, "w") as out:
        json.dump(results, out, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
