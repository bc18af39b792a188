"""Each operation as a request description, shared by the sync and the async client: they
differ only in how a request is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, TypeVar
from urllib.parse import quote

from .types import ChunkInput, Id, Metadata

T = TypeVar("T")


def _path(*parts: Any) -> str:
    return "/" + "/".join(quote(str(p), safe="") for p in parts)


def _identity(body: Any) -> Any:
    return body


@dataclass
class Call(Generic[T]):
    method: str
    path: str
    json: Any = None
    params: Dict[str, Any] = field(default_factory=dict)
    parse: Callable[[Any], T] = _identity  # type: ignore[assignment]


def _options(**given: Any) -> Dict[str, Any]:
    """Keyword options with the ones left at None dropped (the server refuses nulls)."""
    return {k: v for k, v in given.items() if v is not None}


def health() -> Call[Dict[str, Any]]:
    return Call("GET", "/healthz")


def create_library(name: str, dimension: int, metric: str, *, shards: Optional[int], index: Optional[Dict[str, Any]],
                   schema: Optional[Dict[str, str]], storage: Optional[Dict[str, str]], metadata: Optional[Metadata],
                   replicas: Optional[int]) -> Call[Any]:
    body = _options(name=name, dimension=dimension, metric=metric, shards=shards, index=index, schema=schema, storage=storage,
                    metadata=metadata, replicas=replicas)
    return Call("POST", "/v1/libraries", json=body)


def get_library(name: str) -> Call[Any]:
    return Call("GET", _path("v1", "libraries", name))


def list_libraries(cursor: Optional[str], limit: int) -> Call[Any]:
    return Call("GET", "/v1/libraries", params=_options(cursor=cursor, limit=limit))


def delete_library(name: str) -> Call[None]:
    return Call("DELETE", _path("v1", "libraries", name), parse=lambda _: None)


def create_document(library: str, chunks: Sequence[ChunkInput], id: Optional[Id], metadata: Optional[Metadata]) -> Call[Any]:
    return Call("POST", _path("v1", "libraries", library, "documents"), json=_options(id=id, metadata=metadata, chunks=list(chunks)))


def get_document(library: str, id: Id) -> Call[Any]:
    return Call("GET", _path("v1", "libraries", library, "documents", id))


def list_documents(library: str, cursor: Optional[str], limit: int) -> Call[Any]:
    return Call("GET", _path("v1", "libraries", library, "documents"), params=_options(cursor=cursor, limit=limit))


def update_document(library: str, id: Id, metadata: Metadata) -> Call[Any]:
    return Call("PATCH", _path("v1", "libraries", library, "documents", id), json={"metadata": metadata})


def delete_document(library: str, id: Id) -> Call[None]:
    return Call("DELETE", _path("v1", "libraries", library, "documents", id), parse=lambda _: None)


def delete_documents(library: str, filter: Dict[str, Any]) -> Call[int]:
    return Call("POST", _path("v1", "libraries", library, "documents", "delete"), json={"filter": filter},
                parse=lambda body: int(body["deleted"]))


def create_chunk(library: str, document: Id, chunk: ChunkInput) -> Call[Any]:
    return Call("POST", _path("v1", "libraries", library, "documents", document, "chunks"), json=dict(chunk))


def get_chunk(library: str, document: Id, chunk: Id) -> Call[Any]:
    return Call("GET", _path("v1", "libraries", library, "documents", document, "chunks", chunk))


def update_chunk(library: str, document: Id, chunk: Id, *, text: Optional[str], vector: Optional[List[float]],
                 metadata: Optional[Metadata]) -> Call[Any]:
    return Call("PATCH", _path("v1", "libraries", library, "documents", document, "chunks", chunk),
                json=_options(text=text, vector=vector, metadata=metadata))


def delete_chunk(library: str, document: Id, chunk: Id) -> Call[None]:
    return Call("DELETE", _path("v1", "libraries", library, "documents", document, "chunks", chunk), parse=lambda _: None)


def search(library: str, vector: Sequence[float], k: int, filter: Optional[Dict[str, Any]], include: Optional[List[str]],
           consistency: Optional[str], parameters: Dict[str, Optional[int]]) -> Call[Any]:
    body = _options(vector=list(vector), k=k, filter=filter, include=include, consistency=consistency, **parameters)
    return Call("POST", _path("v1", "libraries", library, "search"), json=body)


def search_batch(library: str, vectors: Sequence[Sequence[float]], k: int, filter: Optional[Dict[str, Any]],
                 include: Optional[List[str]], parameters: Dict[str, Optional[int]]) -> Call[Any]:
    body = _options(vectors=[list(v) for v in vectors], k=k, filter=filter, include=include, **parameters)
    return Call("POST", _path("v1", "libraries", library, "search", "batch"), json=body)


def start_index(library: str, type: str, parameters: Dict[str, Any]) -> Call[Any]:
    return Call("POST", _path("v1", "libraries", library, "index"), json=_options(type=type, **parameters))


def flush(library: str) -> Call[Any]:
    return Call("POST", _path("v1", "libraries", library, "flush"))


def get_job(id: str) -> Call[Any]:
    return Call("GET", _path("v1", "jobs", id))


def metrics() -> Call[str]:
    return Call("GET", "/metrics")
