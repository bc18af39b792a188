"""The shapes of requests and answers, as the OpenAPI document (`/openapi.json`) gives them."""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Union

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # pragma: no cover
    from typing_extensions import NotRequired, TypedDict

Id = Union[int, str]
"""A document or chunk id: a non-negative integer or a UUID string."""

Metadata = Dict[str, Any]


class ChunkInput(TypedDict):
    vector: List[float]
    id: NotRequired[Id]
    text: NotRequired[str]
    metadata: NotRequired[Metadata]


class Chunk(TypedDict):
    id: Id
    document: Id
    vector: List[float]
    text: NotRequired[str]
    metadata: NotRequired[Metadata]


class Document(TypedDict):
    id: Id
    chunks: List[Chunk]
    metadata: NotRequired[Metadata]


class Contract(TypedDict):
    dimension: int
    metric: str
    normalized: bool
    model: str


class Library(TypedDict):
    name: str
    contract: Contract
    shards: int
    version: int
    documents: int
    chunks: int
    unflushedChunks: int
    segments: int
    deletedChunks: int
    keptVersions: List[int]
    mappedBytes: int
    index: Dict[str, Any]
    metadata: Metadata
    storage: Dict[str, str]
    schema: NotRequired[Dict[str, str]]
    sections: NotRequired[List[Dict[str, Any]]]


class Hit(TypedDict):
    chunk: Id
    document: Id
    distance: float
    text: NotRequired[str]
    metadata: NotRequired[Metadata]


class SearchResult(TypedDict):
    hits: List[Hit]
    index: str
    version: int
    plans: NotRequired[List[Dict[str, Any]]]


class BatchSearchResult(TypedDict):
    results: List[Dict[str, List[Hit]]]
    index: str
    version: int


class Job(TypedDict):
    id: str
    kind: str
    library: str
    state: str
    progress: float
    automatic: bool
    createdAt: str
    error: NotRequired[str]
    version: NotRequired[int]
    finishedAt: NotRequired[str]
