"""A typed client for vdb-serve: `Client` (blocking) and `AsyncClient` (asyncio), on httpx."""

from .client import AsyncClient, Client
from .errors import (BadRequest, Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge, Unauthorized, Unavailable,
                     VDBError)
from .types import BatchSearchResult, Chunk, ChunkInput, Document, Hit, Id, Job, Library, SearchResult

__all__ = [
    "AsyncClient", "Client", "VDBError", "BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict", "PayloadTooLarge",
    "InvalidRequest", "Unavailable", "BatchSearchResult", "Chunk", "ChunkInput", "Document", "Hit", "Id", "Job", "Library",
    "SearchResult",
]
