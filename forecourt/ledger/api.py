"""HTTP routes of a ledger (mounted by the cloud or the edge app): checkpoint, entries, proofs,
and, on the cloud, edge checkpoint submission."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from forecourt.ledger.errors import (
    ConsistencyError,
    ExportFormatError,
    NoteError,
    ProofError,
    UnknownKeyError,
)
from forecourt.ledger.log import TransparencyLog
from forecourt.ledger.logoflogs import CloudLogOfLogs
from forecourt.ledger.wire import (
    b64e,
    consistency_from_json,
    consistency_to_json,
    inclusion_to_json,
)

MAX_ENTRIES_PER_PAGE = 1000


def create_ledger_router(
    log: TransparencyLog, log_of_logs: CloudLogOfLogs | None = None
) -> APIRouter:
    """Routes under whatever prefix the app mounts them (e.g. ``/v1/ledger``)."""
    router = APIRouter(tags=["ledger"])

    @router.get("/checkpoint", response_class=PlainTextResponse)
    async def checkpoint() -> str:
        note = await run_in_threadpool(log.store.latest_checkpoint_note)
        if note is None:
            note = (await run_in_threadpool(log.issue_checkpoint)).render()
        return note

    @router.get("/entries")
    async def entries(
        start: Annotated[int, Query(ge=0)], end: Annotated[int, Query(ge=0)]
    ) -> list[dict[str, Any]]:
        if end <= start or end - start > MAX_ENTRIES_PER_PAGE:
            raise HTTPException(422, f"need start < end and at most {MAX_ENTRIES_PER_PAGE} entries")
        rows = await run_in_threadpool(log.store.entries, start, end)
        return [
            {"index": e.index, "payload": b64e(e.payload), "leaf_hash": b64e(e.leaf_hash)}
            for e in rows
        ]

    @router.get("/proof/inclusion")
    async def inclusion(
        tree_size: Annotated[int, Query(ge=1)],
        index: Annotated[int | None, Query(ge=0)] = None,
        leaf_hash: str | None = None,
    ) -> dict[str, Any]:
        try:
            if index is None:
                if leaf_hash is None:
                    raise HTTPException(422, "give index or leaf_hash")
                try:
                    wanted = base64.urlsafe_b64decode(leaf_hash)
                except (binascii.Error, ValueError) as exc:
                    raise HTTPException(422, "leaf_hash is not base64url") from exc
                index = await run_in_threadpool(log.store.index_of, wanted)
            proof = await run_in_threadpool(log.store.inclusion_proof, index, tree_size)
        except ProofError as exc:
            raise HTTPException(404, str(exc)) from exc
        return inclusion_to_json(proof)

    @router.get("/proof/consistency")
    async def consistency(
        first: Annotated[int, Query(ge=1)], second: Annotated[int, Query(ge=1)]
    ) -> dict[str, Any]:
        try:
            proof = await run_in_threadpool(log.store.consistency_proof, first, second)
        except ProofError as exc:
            raise HTTPException(404, str(exc)) from exc
        return consistency_to_json(proof)

    if log_of_logs is not None:
        lol = log_of_logs

        @router.post("/checkpoints")
        async def submit(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
            note = body.get("checkpoint")
            if not isinstance(note, str):
                raise HTTPException(422, "'checkpoint' must be a signed note")
            try:
                raw = body.get("consistency")
                proof = consistency_from_json(raw) if raw is not None else None
                receipt = await run_in_threadpool(lol.submit, note, proof)
            except UnknownKeyError as exc:
                raise HTTPException(403, str(exc)) from exc
            except ConsistencyError as exc:
                raise HTTPException(409, str(exc)) from exc
            except (NoteError, ProofError, ExportFormatError) as exc:
                raise HTTPException(422, str(exc)) from exc
            return receipt.to_json()

    return router
