"""Errors: every non-2xx answer of vdb-serve is an RFC 9457 problem with a stable ``code``."""

from __future__ import annotations

from typing import Any, Dict, Optional


class VDBError(Exception):
    """A problem the server answered with.

    ``code`` is what to match on (``not-found``, ``conflict``, ``invalid-field``,
    ``dimension-mismatch``, ``overloaded``, ...); ``pointer`` names the offending part of the
    request body when the server knows it; ``retry_after`` is set on 503s.
    """

    def __init__(self, status: int, code: str, detail: str, *, pointer: Optional[str] = None,
                 retry_after: Optional[float] = None, request_id: Optional[str] = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.pointer = pointer
        self.retry_after = retry_after
        self.request_id = request_id


class BadRequest(VDBError):
    """400: the body is not JSON."""


class Unauthorized(VDBError):
    """401: no API key, or one the server does not know."""


class Forbidden(VDBError):
    """403: the key's role does not cover the operation."""


class NotFound(VDBError):
    """404: no such library, document, chunk or job."""


class Conflict(VDBError):
    """409: the id exists already, or a concurrent change won."""


class PayloadTooLarge(VDBError):
    """413: the body is larger than the server accepts."""


class InvalidRequest(VDBError):
    """422: a field is out of range, of the wrong type, or unknown (``pointer`` says which)."""


class Unavailable(VDBError):
    """503: shed load, a deadline, or (cluster mode) no leader right now; retry after ``retry_after``."""


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
              413: PayloadTooLarge, 422: InvalidRequest, 503: Unavailable}


def error_from(status: int, body: Any, headers: Dict[str, str]) -> VDBError:
    """The exception for a problem answer (or any other non-2xx one)."""
    problem = body if isinstance(body, dict) else {}
    retry = headers.get("retry-after")
    kind = _BY_STATUS.get(status, VDBError)
    return kind(
        status,
        str(problem.get("code", f"http-{status}")),
        str(problem.get("detail", "the server answered without a problem body")),
        pointer=problem.get("pointer"),
        retry_after=float(retry) if retry and retry.replace(".", "", 1).isdigit() else None,
        request_id=headers.get("x-request-id"),
    )
