"""`Client` (blocking) and `AsyncClient` (asyncio) for vdb-serve, on httpx.

Both take the server's base URL and, when the server checks keys (`vdb-serve --api-keys`), an
API key sent as `Authorization: Bearer KEY`. Every non-2xx answer raises a `VDBError`
subclass carrying the problem's `code`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Sequence, TypeVar

import httpx

from . import _calls
from ._calls import Call
from .errors import VDBError, error_from
from .types import BatchSearchResult, Chunk, ChunkInput, Document, Id, Job, Library, Metadata, SearchResult

T = TypeVar("T")

_FINISHED = ("succeeded", "failed")


def _headers(api_key: Optional[str]) -> Dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _result(call: Call[T], response: httpx.Response) -> T:
    body: Any = None
    if response.content:
        if response.headers.get("content-type", "").startswith(("application/json", "application/problem+json")):
            body = response.json()
        else:
            body = response.text
    if response.status_code >= 300:
        raise error_from(response.status_code, body, {k.lower(): v for k, v in response.headers.items()})
    return call.parse(body)


def _search_parameters(ef: Optional[int], nprobe: Optional[int], rerank: Optional[int], leaves: Optional[int]) -> Dict[str, Optional[int]]:
    return {"ef": ef, "nprobe": nprobe, "rerank": rerank, "leaves": leaves}


class Client:
    """A blocking client. Use as a context manager, or call `close()`."""

    def __init__(self, base_url: str = "http://127.0.0.1:8080", *, api_key: Optional[str] = None, timeout: float = 30.0,
                 http: Optional[httpx.Client] = None) -> None:
        self._http = http or httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: Call[T]) -> T:
        response = self._http.request(call.method, call.path, json=call.json, params=call.params or None)
        return _result(call, response)

    # Libraries

    def health(self) -> Dict[str, Any]:
        return self._run(_calls.health())

    def create_library(self, name: str, dimension: int, metric: str = "cosine", *, shards: Optional[int] = None,
                       index: Optional[Dict[str, Any]] = None, schema: Optional[Dict[str, str]] = None,
                       storage: Optional[Dict[str, str]] = None, metadata: Optional[Metadata] = None,
                       replicas: Optional[int] = None) -> Library:
        return self._run(_calls.create_library(name, dimension, metric, shards=shards, index=index, schema=schema, storage=storage,
                                               metadata=metadata, replicas=replicas))

    def get_library(self, name: str) -> Library:
        return self._run(_calls.get_library(name))

    def libraries(self, *, page_size: int = 100) -> Iterator[Library]:
        """Every library, page by page."""
        cursor: Optional[str] = None
        while True:
            page = self._run(_calls.list_libraries(cursor, page_size))
            yield from page["items"]
            cursor = page.get("nextCursor")
            if cursor is None:
                return

    def delete_library(self, name: str) -> None:
        self._run(_calls.delete_library(name))

    # Documents and chunks

    def add_document(self, library: str, chunks: Sequence[ChunkInput], *, id: Optional[Id] = None,
                     metadata: Optional[Metadata] = None) -> Document:
        return self._run(_calls.create_document(library, chunks, id, metadata))

    def get_document(self, library: str, id: Id) -> Document:
        return self._run(_calls.get_document(library, id))

    def documents(self, library: str, *, page_size: int = 100) -> Iterator[Document]:
        """Every document of a library, page by page."""
        cursor: Optional[str] = None
        while True:
            page = self._run(_calls.list_documents(library, cursor, page_size))
            yield from page["items"]
            cursor = page.get("nextCursor")
            if cursor is None:
                return

    def update_document(self, library: str, id: Id, metadata: Metadata) -> Document:
        return self._run(_calls.update_document(library, id, metadata))

    def delete_document(self, library: str, id: Id) -> None:
        self._run(_calls.delete_document(library, id))

    def delete_documents(self, library: str, filter: Dict[str, Any]) -> int:
        """Deletes every document with a chunk the filter matches; returns how many."""
        return self._run(_calls.delete_documents(library, filter))

    def add_chunk(self, library: str, document: Id, chunk: ChunkInput) -> Chunk:
        return self._run(_calls.create_chunk(library, document, chunk))

    def get_chunk(self, library: str, document: Id, chunk: Id) -> Chunk:
        return self._run(_calls.get_chunk(library, document, chunk))

    def update_chunk(self, library: str, document: Id, chunk: Id, *, text: Optional[str] = None,
                     vector: Optional[List[float]] = None, metadata: Optional[Metadata] = None) -> Chunk:
        return self._run(_calls.update_chunk(library, document, chunk, text=text, vector=vector, metadata=metadata))

    def delete_chunk(self, library: str, document: Id, chunk: Id) -> None:
        self._run(_calls.delete_chunk(library, document, chunk))

    # Search

    def search(self, library: str, vector: Sequence[float], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
               include: Optional[List[str]] = None, consistency: Optional[str] = None, ef: Optional[int] = None,
               nprobe: Optional[int] = None, rerank: Optional[int] = None, leaves: Optional[int] = None) -> SearchResult:
        return self._run(_calls.search(library, vector, k, filter, include, consistency, _search_parameters(ef, nprobe, rerank, leaves)))

    def search_batch(self, library: str, vectors: Sequence[Sequence[float]], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
                     include: Optional[List[str]] = None, ef: Optional[int] = None, nprobe: Optional[int] = None,
                     rerank: Optional[int] = None, leaves: Optional[int] = None) -> BatchSearchResult:
        return self._run(_calls.search_batch(library, vectors, k, filter, include, _search_parameters(ef, nprobe, rerank, leaves)))

    # Jobs and operations

    def start_index(self, library: str, type: str = "hnsw", **parameters: Any) -> Job:
        return self._run(_calls.start_index(library, type, parameters))

    def flush(self, library: str) -> Library:
        return self._run(_calls.flush(library))

    def get_job(self, id: str) -> Job:
        return self._run(_calls.get_job(id))

    def wait_for_job(self, id: str, *, timeout: float = 600.0, poll: float = 0.2) -> Job:
        """The job once it succeeded; raises `VDBError` (code `job-failed`) if it failed."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(id)
            if job["state"] in _FINISHED:
                return _finished(job)
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {id} still {job['state']} after {timeout} s")
            time.sleep(poll)

    def metrics(self) -> str:
        """The Prometheus text of `GET /metrics`."""
        return self._run(_calls.metrics())


class AsyncClient:
    """The same operations for asyncio. Use `async with`, or `await close()`."""

    def __init__(self, base_url: str = "http://127.0.0.1:8080", *, api_key: Optional[str] = None, timeout: float = 30.0,
                 http: Optional[httpx.AsyncClient] = None) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _run(self, call: Call[T]) -> T:
        response = await self._http.request(call.method, call.path, json=call.json, params=call.params or None)
        return _result(call, response)

    async def health(self) -> Dict[str, Any]:
        return await self._run(_calls.health())

    async def create_library(self, name: str, dimension: int, metric: str = "cosine", *, shards: Optional[int] = None,
                             index: Optional[Dict[str, Any]] = None, schema: Optional[Dict[str, str]] = None,
                             storage: Optional[Dict[str, str]] = None, metadata: Optional[Metadata] = None,
                             replicas: Optional[int] = None) -> Library:
        return await self._run(_calls.create_library(name, dimension, metric, shards=shards, index=index, schema=schema,
                                                     storage=storage, metadata=metadata, replicas=replicas))

    async def get_library(self, name: str) -> Library:
        return await self._run(_calls.get_library(name))

    async def libraries(self, *, page_size: int = 100) -> AsyncIterator[Library]:
        cursor: Optional[str] = None
        while True:
            page = await self._run(_calls.list_libraries(cursor, page_size))
            for item in page["items"]:
                yield item
            cursor = page.get("nextCursor")
            if cursor is None:
                return

    async def delete_library(self, name: str) -> None:
        await self._run(_calls.delete_library(name))

    async def add_document(self, library: str, chunks: Sequence[ChunkInput], *, id: Optional[Id] = None,
                           metadata: Optional[Metadata] = None) -> Document:
        return await self._run(_calls.create_document(library, chunks, id, metadata))

    async def get_document(self, library: str, id: Id) -> Document:
        return await self._run(_calls.get_document(library, id))

    async def documents(self, library: str, *, page_size: int = 100) -> AsyncIterator[Document]:
        cursor: Optional[str] = None
        while True:
            page = await self._run(_calls.list_documents(library, cursor, page_size))
            for item in page["items"]:
                yield item
            cursor = page.get("nextCursor")
            if cursor is None:
                return

    async def update_document(self, library: str, id: Id, metadata: Metadata) -> Document:
        return await self._run(_calls.update_document(library, id, metadata))

    async def delete_document(self, library: str, id: Id) -> None:
        await self._run(_calls.delete_document(library, id))

    async def delete_documents(self, library: str, filter: Dict[str, Any]) -> int:
        return await self._run(_calls.delete_documents(library, filter))

    async def add_chunk(self, library: str, document: Id, chunk: ChunkInput) -> Chunk:
        return await self._run(_calls.create_chunk(library, document, chunk))

    async def get_chunk(self, library: str, document: Id, chunk: Id) -> Chunk:
        return await self._run(_calls.get_chunk(library, document, chunk))

    async def update_chunk(self, library: str, document: Id, chunk: Id, *, text: Optional[str] = None,
                           vector: Optional[List[float]] = None, metadata: Optional[Metadata] = None) -> Chunk:
        return await self._run(_calls.update_chunk(library, document, chunk, text=text, vector=vector, metadata=metadata))

    async def delete_chunk(self, library: str, document: Id, chunk: Id) -> None:
        await self._run(_calls.delete_chunk(library, document, chunk))

    async def search(self, library: str, vector: Sequence[float], k: int = 10, *, filter: Optional[Dict[str, Any]] = None,
                     include: Optional[List[str]] = None, consistency: Optional[str] = None, ef: Optional[int] = None,
                     nprobe: Optional[int] = None, rerank: Optional[int] = None, leaves: Optional[int] = None) -> SearchResult:
        return await self._run(_calls.search(library, vector, k, filter, include, consistency,
                                             _search_parameters(ef, nprobe, rerank, leaves)))

    async def search_batch(self, library: str, vectors: Sequence[Sequence[float]], k: int = 10, *,
                           filter: Optional[Dict[str, Any]] = None, include: Optional[List[str]] = None, ef: Optional[int] = None,
                           nprobe: Optional[int] = None, rerank: Optional[int] = None, leaves: Optional[int] = None) -> BatchSearchResult:
        return await self._run(_calls.search_batch(library, vectors, k, filter, include, _search_parameters(ef, nprobe, rerank, leaves)))

    async def start_index(self, library: str, type: str = "hnsw", **parameters: Any) -> Job:
        return await self._run(_calls.start_index(library, type, parameters))

    async def flush(self, library: str) -> Library:
        return await self._run(_calls.flush(library))

    async def get_job(self, id: str) -> Job:
        return await self._run(_calls.get_job(id))

    async def wait_for_job(self, id: str, *, timeout: float = 600.0, poll: float = 0.2) -> Job:
        deadline = time.monotonic() + timeout
        while True:
            job = await self.get_job(id)
            if job["state"] in _FINISHED:
                return _finished(job)
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {id} still {job['state']} after {timeout} s")
            await asyncio.sleep(poll)

    async def metrics(self) -> str:
        return await self._run(_calls.metrics())


def _finished(job: Job) -> Job:
    if job["state"] == "failed":
        raise VDBError(200, "job-failed", f"job {job['id']} failed: {job.get('error', 'unknown')}")
    return job
