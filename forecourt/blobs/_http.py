"""Package endpoints: GET, HEAD, PUT (and an admin DELETE) on ``/v1/packages/{sha256}``.

Downloads follow the resumable pattern of Eclipse hawkBit's DDI API: ``Accept-Ranges: bytes``, a
strong ``ETag`` (the quoted SHA-256), ``If-Range``, ``206`` with ``Content-Range``, ``416`` with
``Content-Range: bytes */<size>``. Range rules are in :mod:`forecourt.blobs._ranges` (a multi-range
request is answered ``200`` with the whole blob). Bodies stream from the store in bounded chunks.
Each response also carries ``Repr-Digest`` (RFC 9530) so any HTTP client can check integrity.

Authorisation is injected: ``authorize`` is a FastAPI dependency run before every route (the cloud
plugs the mTLS dealer identity into it; it may inspect ``request.method``). ``DELETE`` exists
only when an ``authorize_delete`` dependency is given, so no deployment exposes it by accident.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from forecourt.blobs._digest import BlobRef, validate_sha256
from forecourt.blobs._errors import (
    BlobNotFound,
    BlobRejected,
    BlobTooLarge,
    InvalidDigest,
)
from forecourt.blobs._ranges import RangeNotSatisfiable, if_range_matches, parse_range
from forecourt.blobs._store import DEFAULT_CHUNK_SIZE, BlobStore
from forecourt.http.problems import problem_json
from forecourt.logging import get_logger

_log = get_logger("blobs.http")
_OCTET_STREAM = "application/octet-stream"
_CACHE_CONTROL = "private, max-age=31536000, immutable"


def representation_headers(ref: BlobRef) -> dict[str, str]:
    """Headers that describe the blob itself, identical on 200, 206, 304 and HEAD."""
    digest = base64.b64encode(bytes.fromhex(ref.sha256)).decode("ascii")
    return {
        "accept-ranges": "bytes",
        "etag": ref.etag,
        "cache-control": _CACHE_CONTROL,
        "repr-digest": f"sha-256=:{digest}:",
    }


def blob_router(
    store: BlobStore,
    authorize: Callable[..., Any],
    *,
    authorize_delete: Callable[..., Any] | None = None,
    prefix: str = "/v1/packages",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> APIRouter:
    """Build the package router over ``store``, guarded by the ``authorize`` dependency."""
    router = APIRouter(prefix=prefix, dependencies=[Depends(authorize)], tags=["packages"])

    @router.api_route("/{sha256}", methods=["GET", "HEAD"], response_model=None)
    def read_blob(sha256: str, request: Request) -> Response:
        try:
            ref = store.stat(validate_sha256(sha256))
        except InvalidDigest as exc:
            return _invalid_digest(exc)
        except BlobNotFound:
            return problem_json(404, BlobNotFound.code, "Package not found", f"no package {sha256}")
        return _read_response(store, ref, request, chunk_size)

    @router.put("/{sha256}", response_model=None, status_code=201)
    async def upload_blob(sha256: str, request: Request) -> Response:
        try:
            validate_sha256(sha256)
        except InvalidDigest as exc:
            return _invalid_digest(exc)
        declared = _declared_length(request)
        if declared is not None and declared > store.max_blob_size:
            too_large = BlobTooLarge(store.max_blob_size, declared)
            _log.warning(
                "blob_upload_refused", sha256=sha256, code=too_large.code, reason=str(too_large)
            )
            return problem_json(
                413, too_large.code, "Package too large", str(too_large), limit=too_large.limit
            )
        existed = await anyio.to_thread.run_sync(store.exists, sha256)
        chunks = _BlockingChunks(request.stream())
        try:
            ref = await anyio.to_thread.run_sync(
                lambda: store.put(chunks, expected_sha256=sha256, expected_size=declared)
            )
        except BlobTooLarge as exc:
            _log.warning("blob_upload_refused", sha256=sha256, code=exc.code, reason=str(exc))
            return problem_json(413, exc.code, "Package too large", str(exc), limit=exc.limit)
        except BlobRejected as exc:
            _log.warning("blob_upload_refused", sha256=sha256, code=exc.code, reason=str(exc))
            return problem_json(422, exc.code, "Package does not match its digest", str(exc))
        _log.info("blob_uploaded", sha256=ref.sha256, size=ref.size, created=not existed)
        return JSONResponse(
            {"sha256": ref.sha256, "size": ref.size},
            status_code=200 if existed else 201,
            headers={"location": f"{prefix}/{ref.sha256}", "etag": ref.etag},
        )

    if authorize_delete is not None:

        @router.delete(
            "/{sha256}",
            dependencies=[Depends(authorize_delete)],
            status_code=204,
            response_model=None,
        )
        def delete_blob(sha256: str) -> Response:
            try:
                store.delete(validate_sha256(sha256))
            except InvalidDigest as exc:
                return _invalid_digest(exc)
            except BlobNotFound:
                return problem_json(
                    404, BlobNotFound.code, "Package not found", f"no package {sha256}"
                )
            return Response(status_code=204)

    return router


def _read_response(store: BlobStore, ref: BlobRef, request: Request, chunk_size: int) -> Response:
    headers = representation_headers(ref)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and {"*", ref.etag} & {
        t.strip() for t in if_none_match.split(",")
    }:
        return Response(status_code=304, headers=headers)
    status, start, end = 200, 0, ref.size
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header is not None and (if_range is None or if_range_matches(if_range, ref.etag)):
        try:
            byte_range = parse_range(range_header, ref.size)
        except RangeNotSatisfiable as exc:
            return problem_json(
                416,
                exc.code,
                "Range not satisfiable",
                str(exc),
                headers={**headers, "content-range": f"bytes */{ref.size}"},
                size=ref.size,
            )
        if byte_range is not None:
            status, start, end = 206, byte_range.first, byte_range.last + 1
            headers["content-range"] = byte_range.content_range(ref.size)
    headers["content-length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=_OCTET_STREAM)
    body = store.open(ref.sha256, start, end, chunk_size=chunk_size)
    return StreamingResponse(body, status_code=status, headers=headers, media_type=_OCTET_STREAM)


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _invalid_digest(exc: InvalidDigest) -> Response:
    return problem_json(400, exc.code, "Invalid package digest", str(exc))


class _BlockingChunks(Iterator[bytes]):
    """The request body as a blocking iterator, for a store ``put`` running in a worker thread.

    Each ``next`` hops back to the event loop to await the next chunk, so the upload streams to
    disk chunk by chunk and is never buffered whole.
    """

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self._stream = stream

    def __next__(self) -> bytes:
        while True:
            try:
                chunk: bytes = anyio.from_thread.run(self._next_chunk)
            except StopAsyncIteration:
                raise StopIteration from None
            if chunk:
                return chunk

    async def _next_chunk(self) -> bytes:
        return await anext(self._stream)
