#!/usr/bin/env python3
"""Texts and metadata stored plain vs zstd blocks, on real prose.

Builds a JSON Lines file of documents from this machine's /usr/share/doc/*/copyright files (one
document per package, one chunk per paragraph: its text, a seeded random 64-d vector and a small
metadata object), ingests it twice (--compression none and zstd), and prints each section's
bytes on disk from vdb-query's report, and the ingest times.

    bench/.venv/bin/python bench/compression.py
"""
import glob
import json
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, build_tools, sh  # noqa: E402


def write_documents(path):
    rng = random.Random(7)
    chunks = 0
    with open(path, "w") as out:
        for d, name in enumerate(sorted(glob.glob("/usr/share/doc/*/copyright"))):
            try:
                text = open(name, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue
            paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
            if not paragraphs:
                continue
            package = name.split("/")[-2]
            doc = {"id": d, "metadata": {"package": package, "source": name}, "chunks": []}
            for i, p in enumerate(paragraphs):
                doc["chunks"].append({"id": d * 10_000 + i, "text": p, "vector": [rng.uniform(-1, 1) for _ in range(64)],
                                      "metadata": {"package": package, "paragraph": i, "license": "GPL" in p}})
                chunks += 1
            out.write(json.dumps(doc) + "\n")
    return chunks


def main():
    bin_dir = build_tools()
    data = os.path.join(OUT, "data")
    path = os.path.join(OUT, "copyright-docs.jsonl")
    chunks = write_documents(path)
    queries = os.path.join(OUT, "compression-queries.fvecs")
    rng = random.Random(9)
    with open(queries, "wb") as f:
        for _ in range(10):
            f.write(struct.pack("<i", 64) + struct.pack("<64f", *[rng.uniform(-1, 1) for _ in range(64)]))
    print(f"{chunks} chunks from /usr/share/doc/*/copyright ({os.path.getsize(path) / 1e6:.1f} MB of JSON Lines)\n")
    print(f"{'compression':<12} {'ingest s':>8} {'texts':>12} {'chunk metadata':>15} {'document metadata':>18} {'file total':>12}")
    for compression in ("none", "zstd"):
        lib = f"compression-{compression}"
        t0 = time.perf_counter()
        sh(f"{bin_dir}/vdb-build", "ingest", path, "--library", lib, "--data-dir", data, "--replace", "--metric", "cosine",
           "--compression", compression)
        seconds = time.perf_counter() - t0
        sections = json.loads(sh(f"{bin_dir}/vdb-query", "--library", lib, "--data-dir", data, "--json", "--threads", "1",
                                 "--queries", queries))["memory"]["sections"]
        size = {s["section"]: s["bytesOnDisk"] for s in sections}
        print(f"{compression:<12} {seconds:>8.2f} {size['texts']:>12,} {size['chunk metadata']:>15,} {size['document metadata']:>18,} "
              f"{sum(size.values()):>12,}")


if __name__ == "__main__":
    sys.exit(main())
