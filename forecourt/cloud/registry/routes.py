"""``/v1/vehicles`` and ``/v1/dealers``: OEM staff manage, each edge syncs its operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from forecourt.cloud.audit import staff_actor
from forecourt.cloud.auth import DealerDep, Scope, StaffCaller, require_scope
from forecourt.cloud.context import get_context
from forecourt.cloud.lifecycle.service import LifecycleService
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.dealers import (
    OperatorClaim,
    RegistryLedger,
    confirm_role,
    dealer_from_row,
    get_dealer,
    merge_edge_operators,
    upsert_dealer,
)
from forecourt.cloud.registry.edge_logs import register_edge_log
from forecourt.cloud.registry.feed import import_rows, parse_feed
from forecourt.cloud.registry.vehicles import load_vehicle, vehicle_row
from forecourt.core import CoreError, Dealer, LifecycleState, from_dict, to_json
from forecourt.store.registry import ActivationRow, DealerRow, VehicleRow


class AssignmentIn(BaseModel):
    dealer_id: str


class OwnerIn(BaseModel):
    owner_ref: str | None = Field(default=None, max_length=64)


class StateIn(BaseModel):
    state: LifecycleState


class LedgerKeyIn(BaseModel):
    vkey: str = Field(min_length=10, max_length=512)


class RoleConfirmationIn(BaseModel):
    role: str = Field(min_length=1, max_length=32)


class OperatorsIn(BaseModel):
    operators: list[dict[str, str]] = Field(max_length=10_000)


def registry_router(lifecycle: LifecycleService) -> APIRouter:
    """Registry routes; owner and state changes go through ``lifecycle`` (so they are traced)."""
    router = APIRouter(prefix="/v1", tags=["registry"])

    @router.post("/vehicles/import", dependencies=[require_scope(Scope.REGISTRY_WRITE)])
    async def import_feed(request: Request) -> dict[str, Any]:
        context = get_context(request)
        rows = parse_feed(await request.body(), request.headers.get("content-type", ""))
        report = await run_in_threadpool(import_rows, context.db.sessions, rows)
        return report.to_json()

    @router.get("/vehicles/{vin}", dependencies=[require_scope(Scope.READ)])
    def get_vehicle(vin: str, request: Request) -> Any:
        with get_context(request).db.sessions() as session:
            return to_json(load_vehicle(session, vin.upper()))

    @router.get("/vehicles/{vin}/assignment")
    def assignment(vin: str, dealer: DealerDep, request: Request) -> dict[str, Any]:
        """For a dealer's edge: the car is assigned to this dealer, and how often it was
        activated before (decides the re-activation review). A car that is not this dealer's
        answers 404 exactly as an unknown VIN does."""
        with get_context(request).db.sessions() as session:
            row = session.get(VehicleRow, vin.upper())
            if row is None or row.dealer_id != dealer.dealer_id:
                # Unknown and another dealer's car answer alike: a dealer learns nothing of
                # cars that are not its own (whether the VIN exists, how often it activated).
                raise CloudProblem(
                    404,
                    ProblemCode.VEHICLE_UNKNOWN,
                    "Vehicle unknown",
                    f"no vehicle {vin.upper()} assigned to {dealer.dealer_id}",
                )
            applied = session.scalar(
                select(func.count())
                .select_from(ActivationRow)
                .where(ActivationRow.vin == row.vin, ActivationRow.status == "applied")
            )
        return {
            "vin": row.vin,
            "dealer_id": row.dealer_id,
            "assigned_to_caller": True,
            "activations": int(applied or 0),
        }

    @router.put("/vehicles/{vin}/dealer", dependencies=[require_scope(Scope.REGISTRY_WRITE)])
    def assign(vin: str, body: AssignmentIn, request: Request) -> dict[str, str]:
        with get_context(request).db.transaction() as session:
            get_dealer(session, body.dealer_id)
            vehicle_row(session, vin.upper()).dealer_id = body.dealer_id
        return {"vin": vin.upper(), "dealer_id": body.dealer_id}

    @router.put("/vehicles/{vin}/owner")
    def set_owner(
        vin: str,
        body: OwnerIn,
        request: Request,
        staff: StaffCaller = require_scope(Scope.REGISTRY_WRITE),
    ) -> dict[str, Any]:
        """Register the owner outside a transition (before delivery, or of a transferred car);
        recorded in the cloud's ledger like every lifecycle change."""
        with get_context(request).db.transaction() as session:
            result = lifecycle.set_owner(
                session, vin.upper(), body.owner_ref, actor=staff_actor(staff.subject)
            )
        return result.to_json()

    @router.put("/vehicles/{vin}/state")
    def set_state(
        vin: str,
        body: StateIn,
        request: Request,
        staff: StaffCaller = require_scope(Scope.REGISTRY_WRITE),
    ) -> dict[str, Any]:
        """One lifecycle edge, as ``POST .../lifecycle`` without an owner or a dealer."""
        with get_context(request).db.transaction() as session:
            result = lifecycle.transition(
                session, vin.upper(), body.state, actor=staff_actor(staff.subject)
            )
        return result.to_json()

    @router.put("/dealers/{dealer_id}", dependencies=[require_scope(Scope.DEALERS_ADMIN)])
    def put_dealer(dealer_id: str, body: dict[str, Any], request: Request) -> Any:
        try:
            dealer = from_dict(Dealer, {**body, "dealer_id": dealer_id})
        except (CoreError, TypeError, ValueError) as exc:
            raise CloudProblem(
                422, ProblemCode.VALIDATION_FAILED, "Dealer invalid", str(exc)
            ) from exc
        with get_context(request).db.transaction() as session:
            upsert_dealer(session, dealer)
        return to_json(dealer)

    @router.get("/dealers", dependencies=[require_scope(Scope.READ)])
    def list_dealers(request: Request) -> Any:
        with get_context(request).db.sessions() as session:
            return [to_json(dealer_from_row(r)) for r in session.query(DealerRow).all()]

    # Operator changes go to the cloud log through the lifecycle's store: one store per log.
    ledger = RegistryLedger(lifecycle.store, lifecycle.origin)
    _ledger_key_route(router)
    _role_confirmation_route(router, ledger)

    @router.put("/dealer/operators")
    def sync_operators(body: OperatorsIn, dealer: DealerDep, request: Request) -> dict[str, object]:
        """The calling edge replaces *its own* operator list (ids and roles, no secrets).

        The dealer and edge come from the client certificate; other edges' lists stay. Elevated
        roles are listed as ``unconfirmed`` until OEM staff confirm them. Each change is a leaf
        of the cloud's log (``ledger_indices``), committed with the list."""
        try:
            claims = [OperatorClaim(o["operator_id"], o["role"]) for o in body.operators]
        except KeyError as exc:
            raise CloudProblem(
                422, ProblemCode.VALIDATION_FAILED, "Operator invalid", f"missing {exc}"
            ) from exc
        context = get_context(request)
        with context.db.transaction() as session:
            changes = merge_edge_operators(
                session,
                dealer.dealer_id,
                dealer.edge_id,
                certificate_serial=dealer.certificate_serial,
                operators=claims,
                now=context.config.clock(),
                ledger=ledger,
            )
        return {"operators": len(claims), **changes.to_json()}

    return router


def _ledger_key_route(router: APIRouter) -> None:
    @router.put("/dealers/{dealer_id}/edges/{edge_id}/ledger-key")
    def put_ledger_key(
        dealer_id: str,
        edge_id: str,
        body: LedgerKeyIn,
        request: Request,
        staff: StaffCaller = require_scope(Scope.DEALERS_ADMIN),
    ) -> dict[str, object]:
        """Register an edge's ledger verifier key for the log of logs (idempotent)."""
        context = get_context(request)
        with context.db.transaction() as session:
            registered = register_edge_log(
                session, dealer_id, edge_id, body.vkey, by=staff.subject, now=context.config.clock()
            )
        return registered.to_json()


def _role_confirmation_route(router: APIRouter, ledger: RegistryLedger) -> None:
    @router.put("/dealers/{dealer_id}/edges/{edge_id}/operators/{operator_id}/confirmation")
    def confirm_operator_role(
        dealer_id: str,
        edge_id: str,
        operator_id: str,
        body: RoleConfirmationIn,
        request: Request,
        *,
        staff: StaffCaller = require_scope(Scope.DEALERS_ADMIN),
    ) -> dict[str, object]:
        """OEM staff confirm the elevated role an edge claims for one of its operators; the
        confirmation is a leaf of the cloud's log (``ledger_index``), committed with it."""
        context = get_context(request)
        with context.db.transaction() as session:
            index = confirm_role(
                session,
                dealer_id,
                edge_id,
                operator_id,
                role=body.role,
                by=staff_actor(staff.subject),
                now=context.config.clock(),
                ledger=ledger,
            )
        return {"operator_id": operator_id, "confirmed_role": body.role, "ledger_index": index}
