"""The client against a real vdb-serve: VDB_URL names it (the Swift end-to-end test starts one
and runs this file with python -m unittest)."""

import asyncio
import os
import unittest
import uuid

from vdb_client import AsyncClient, Client, Conflict, InvalidRequest, NotFound, Unauthorized

URL = os.environ.get("VDB_URL", "http://127.0.0.1:8080")
KEY = os.environ.get("VDB_API_KEY")


class SyncClientTests(unittest.TestCase):
    def setUp(self) -> None:
        self.vdb = Client(URL, api_key=KEY)
        self.name = "py-" + uuid.uuid4().hex[:8]
        self.vdb.create_library(self.name, dimension=2, metric="l2", shards=2, schema={"kind": "keyword"})

    def tearDown(self) -> None:
        self.vdb.delete_library(self.name)
        self.vdb.close()

    def test_round_trip(self) -> None:
        self.assertEqual(self.vdb.health()["status"], "ok")
        created = self.vdb.add_document(self.name, [{"id": 10, "text": "ten", "vector": [1, 0], "metadata": {"kind": "a"}}],
                                        id=1, metadata={"title": "one"})
        self.assertEqual(created["id"], 1)
        self.vdb.add_document(self.name, [{"id": 20, "vector": [0, 1], "metadata": {"kind": "b"}}], id=2)
        self.assertEqual(self.vdb.get_document(self.name, 1)["metadata"], {"title": "one"})
        self.assertEqual(self.vdb.get_chunk(self.name, 1, 10)["text"], "ten")
        hits = self.vdb.search(self.name, [0.9, 0.1], k=2)["hits"]
        self.assertEqual([h["chunk"] for h in hits], [10, 20])
        filtered = self.vdb.search(self.name, [0.9, 0.1], k=2, filter={"kind": "b"}, include=[])
        self.assertEqual([h["chunk"] for h in filtered["hits"]], [20])
        self.assertNotIn("text", filtered["hits"][0])
        batch = self.vdb.search_batch(self.name, [[1, 0], [0, 1]], k=1)
        self.assertEqual([r["hits"][0]["chunk"] for r in batch["results"]], [10, 20])
        self.vdb.update_chunk(self.name, 1, 10, text="TEN")
        self.assertEqual(self.vdb.get_chunk(self.name, 1, 10)["text"], "TEN")
        self.vdb.add_chunk(self.name, 1, {"id": 11, "vector": [1, 1]})
        self.assertEqual(len(self.vdb.get_document(self.name, 1)["chunks"]), 2)
        self.vdb.delete_chunk(self.name, 1, 11)
        self.assertEqual(sorted(d["id"] for d in self.vdb.documents(self.name, page_size=1)), [1, 2])
        self.assertEqual(self.vdb.delete_documents(self.name, {"kind": "b"}), 1)
        self.vdb.delete_document(self.name, 1)
        self.assertEqual(self.vdb.get_library(self.name)["documents"], 0)
        self.assertIn(self.name, [library["name"] for library in self.vdb.libraries(page_size=1)])

    def test_errors_carry_the_problem_code(self) -> None:
        with self.assertRaises(NotFound) as missing:
            self.vdb.get_document(self.name, 404)
        self.assertEqual(missing.exception.code, "not-found")
        self.assertIsNotNone(missing.exception.request_id)
        with self.assertRaises(InvalidRequest) as wrong:
            self.vdb.search(self.name, [1, 2, 3])
        self.assertEqual(wrong.exception.code, "dimension-mismatch")
        self.vdb.add_document(self.name, [{"vector": [1, 1]}], id=7)
        with self.assertRaises(Conflict) as twice:
            self.vdb.add_document(self.name, [{"vector": [1, 1]}], id=7)
        self.assertEqual(twice.exception.code, "conflict")
        with self.assertRaises(InvalidRequest) as bad_filter:
            self.vdb.search(self.name, [1, 1], filter={"kind": {"$gt": 3}})
        self.assertEqual(bad_filter.exception.pointer, "/filter/kind/$gt")

    def test_jobs(self) -> None:
        self.vdb.add_document(self.name, [{"vector": [float(i), 1.0]} for i in range(50)], id=3)
        self.vdb.flush(self.name)
        job = self.vdb.wait_for_job(self.vdb.start_index(self.name, "hnsw", m=8)["id"])
        self.assertEqual(job["state"], "succeeded")
        self.assertIn("vdb_http_requests_total", self.vdb.metrics())


class AsyncClientTests(unittest.TestCase):
    def test_round_trip(self) -> None:
        async def run() -> None:
            async with AsyncClient(URL, api_key=KEY) as vdb:
                name = "pya-" + uuid.uuid4().hex[:8]
                await vdb.create_library(name, dimension=2, metric="cosine")
                await asyncio.gather(*(vdb.add_document(name, [{"vector": [1.0, float(i)]}], id=i) for i in range(1, 21)))
                hits = (await vdb.search(name, [1, 0], k=3))["hits"]
                self.assertEqual(hits[0]["document"], 1)
                ids = [d["id"] async for d in vdb.documents(name, page_size=7)]
                self.assertEqual(sorted(ids), list(range(1, 21)))
                with self.assertRaises(NotFound):
                    await vdb.get_library(name + "-nope")
                await vdb.delete_library(name)

        asyncio.run(run())


class AuthTests(unittest.TestCase):
    @unittest.skipUnless(KEY, "the server checks no keys")
    def test_a_missing_key_is_unauthorized(self) -> None:
        with Client(URL) as anonymous, self.assertRaises(Unauthorized) as denied:
            anonymous.get_library("anything")
        self.assertEqual(denied.exception.code, "unauthorized")


if __name__ == "__main__":
    unittest.main()
