"""The authorisation service: decide an activation, sign it, and never twice for one car at once.

Steps, each refusal collected rather than returned at the first:

1. The request id is claimed (primary key). A retry with the same body gets the first answer; a
   different body under the same id is ``idempotency_key_reused``.
2. The car is claimed: the row's ``open_vin`` is unique, so while one activation of a car is open
   (being decided, or issued and not yet reported, until its validity ends) any other request is
   ``activation_in_progress``. This holds on SQLite and PostgreSQL, across replicas.
3. The decision: ECU inventory read vs the factory record, dealer assignment and sales region,
   the operator re-checked against the operators the calling edge registered, then
   :func:`plan_activation` with the catalog, entitlements, consent and the compliance profile
   of the dealer's location.
4. A plan is signed with the next activation counter of the car (row locked for the increment).

All four steps run in one transaction whose first statement is the claim (the INSERT), so a
decision costs one round trip per query and nothing is held after a failure: a request that
errors (unknown car, a bug) rolls back and leaves no trace, a refusal commits its reasons and
releases the car. A second request for a car whose claim is not yet committed waits on the unique
index and then sees the first one's outcome; on SQLite the claim takes the write lock at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forecourt.cloud.activations.checks import (
    CloudReason,
    ReadEcu,
    assignment_reasons,
    image_reasons,
    inventory_reasons,
    operator_reason,
)
from forecourt.cloud.catalog.service import entitlements_of
from forecourt.cloud.compliance.service import market_of_location
from forecourt.cloud.context import CloudContext
from forecourt.cloud.grants import grant_terms
from forecourt.cloud.integrations.outbox import EventType, activation_applied, enqueue_event
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.dealers import OperatorClaim, dealer_and_operator
from forecourt.cloud.registry.vehicles import load_vehicle_with_row
from forecourt.cloud.signing import ImageState
from forecourt.core import (
    ActivationPlan,
    ConsentRecord,
    LifecycleState,
    PlanRefusal,
    Vehicle,
    plan_activation,
    to_json,
)
from forecourt.logging import get_logger
from forecourt.store.registry import ActivationRow, VehicleRow
from forecourt.trust.model import NonceFreshness

_log = get_logger("cloud.activations")


@dataclass(frozen=True, slots=True)
class ActivationRequest:
    request_id: str
    vin: str
    operator: OperatorClaim
    features: tuple[str, ...]
    inventory: tuple[ReadEcu, ...]
    nonce: str
    consent: ConsentRecord | None

    def consent_json(self) -> Any:
        """The consent record as plain JSON (what the digest covers and the bundle carries)."""
        return to_json(self.consent)

    def digest(self, consent_json: Any = None) -> str:
        """SHA-256 of everything but the request id: what "the same request" means.

        ``consent_json``: :meth:`consent_json`, when the caller already has it."""
        body = {
            "vin": self.vin,
            "operator": [self.operator.operator_id, self.operator.role],
            "features": sorted(self.features),
            "inventory": sorted(
                [e.role, e.serial, e.hardware_number, e.software_version] for e in self.inventory
            ),
            "nonce": self.nonce,
            "consent": self.consent_json() if consent_json is None else consent_json,
        }
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedActivation:
    request_id: str
    vin: str
    activation_counter: int
    expires_at: datetime
    bundle: bytes
    features: tuple[str, ...]
    withheld: list[dict[str, Any]]
    profile_version: int
    replayed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "vin": self.vin,
            "activation_counter": self.activation_counter,
            "expires_at": self.expires_at.isoformat(),
            "features": list(self.features),
            "withheld": self.withheld,
            "compliance_profile_version": self.profile_version,
            "bundle": base64.b64encode(self.bundle).decode("ascii"),
        }


def refusal_problem(vin: str, reasons: Sequence[dict[str, Any]]) -> CloudProblem:
    codes = ", ".join(sorted({str(r["code"]) for r in reasons}))
    return CloudProblem(
        422,
        ProblemCode.ACTIVATION_REFUSED,
        "Activation refused",
        f"{len(reasons)} reason(s): {codes}",
        vin=vin,
        reasons=list(reasons),
    )


def _in_progress(vin: str) -> CloudProblem:
    return CloudProblem(
        409,
        ProblemCode.ACTIVATION_IN_PROGRESS,
        "Activation in progress",
        f"an activation of {vin} is already open; report its result or wait for it to expire",
        vin=vin,
    )


class ActivationService:
    def __init__(self, context: CloudContext) -> None:
        self._context = context
        self._db = context.db

    def authorise(self, request: ActivationRequest, dealer_id: str, edge: str) -> IssuedActivation:
        """Decide and sign ``request`` of ``edge`` (the certificate's edge) of ``dealer_id``."""
        now = self._context.config.clock()
        consent = request.consent_json()  # once: the digest and the bundle both carry it
        digest = request.digest(consent)
        for _attempt in range(3):
            try:
                with self._db.transaction() as session:
                    outcome = self._claim_and_decide(
                        session, request, dealer_id, edge=edge, digest=digest, now=now,
                        consent=consent,
                    )  # fmt: skip
            except IntegrityError:
                replay = self._after_conflict(request, dealer_id, digest, now)
                if replay is not None:
                    return replay
                continue
            if isinstance(outcome, IssuedActivation):
                _log.info(
                    "activation_issued",
                    vin=request.vin,
                    request_id=request.request_id,
                    counter=outcome.activation_counter,
                    features=list(outcome.features),
                )
                return outcome
            _log.warning(
                "activation_refused",
                vin=request.vin,
                request_id=request.request_id,
                codes=sorted({r["code"] for r in outcome}),
                at=now.isoformat(),
            )
            raise refusal_problem(request.vin, outcome)
        raise _in_progress(request.vin)

    def _claim_and_decide(
        self,
        session: Session,
        request: ActivationRequest,
        dealer_id: str,
        *,
        edge: str,
        digest: str,
        now: datetime,
        consent: Any,
    ) -> IssuedActivation | list[dict[str, Any]]:
        """Claim, decide and sign inside ``session``'s transaction; refusals are recorded.

        ``consent`` is the request's consent record as plain JSON (None without one)."""
        claim = ActivationRow(
            request_id=request.request_id,
            request_digest=digest,
            vin=request.vin,
            open_vin=request.vin,
            dealer_id=dealer_id,
            operator_id=request.operator.operator_id,
            status="pending",
            created_at=now,
            expires_at=now + self._context.config.activation_validity,
        )
        session.add(claim)
        session.flush()  # the claim: IntegrityError when the request id or the car is held
        car, vehicle = load_vehicle_with_row(session, request.vin, for_update=True)
        images = self._context.signer.image_state(session)
        decision = self._decide(
            session, request, dealer_id, edge=edge, vehicle=vehicle, now=now, images=images
        )
        if isinstance(decision, list):
            claim.status, claim.open_vin, claim.outcome = "refused", None, {"reasons": decision}
            return decision
        plan, profile_version, feature_until, requires = decision
        expires = now + self._context.config.activation_validity
        counter = car.activation_counter + 1
        car.activation_counter = counter
        bundle = self._context.signer.sign(
            plan,
            vehicle,
            freshness=NonceFreshness(request.nonce),
            activation_counter=counter,
            feature_until=feature_until,
            feature_requires=requires,
            consent=consent if request.consent else {},
            now=now,
            expires=expires,
            images=images,
        )
        withheld = [
            {"feature": w.feature, "reasons": [r.to_dict() for r in w.reasons]}
            for w in plan.withheld
        ]
        claim.status, claim.bundle, claim.activation_counter = "issued", bundle, counter
        claim.expires_at = expires
        claim.outcome = {
            "features": list(plan.features),
            "withheld": withheld,
            "profile_version": profile_version,
        }
        return IssuedActivation(
            request.request_id,
            request.vin,
            counter,
            expires,
            bundle,
            plan.features,
            withheld,
            profile_version,
        )

    def _after_conflict(
        self, request: ActivationRequest, dealer_id: str, digest: str, now: datetime
    ) -> IssuedActivation | None:
        """The claim failed: answer a replay, refuse while the car is held, or ask to retry.

        An open activation past its validity is closed as ``expired`` so the retry can claim.
        """
        with self._db.transaction() as session:
            existing = session.get(ActivationRow, request.request_id)
            if existing is not None:
                return self._replay(existing, digest, dealer_id)
            holder = session.scalars(
                select(ActivationRow).where(ActivationRow.open_vin == request.vin)
            ).one_or_none()
            if holder is None:
                return None  # closed meanwhile: try again
            if holder.expires_at > now:
                _log.warning(
                    "activation_refused",
                    vin=request.vin,
                    dealer_id=dealer_id,
                    code=ProblemCode.ACTIVATION_IN_PROGRESS.value,
                )
                raise _in_progress(request.vin)
            holder.open_vin, holder.status = None, "expired"
        return None

    def _replay(self, row: ActivationRow, digest: str, dealer_id: str) -> IssuedActivation:
        if row.request_digest != digest or row.dealer_id != dealer_id:
            raise CloudProblem(
                409,
                ProblemCode.IDEMPOTENCY_KEY_REUSED,
                "Request id reused",
                f"request {row.request_id} was used for a different request",
            )
        if row.status == "pending":
            raise _in_progress(row.vin)
        if row.status == "refused":
            reasons = (row.outcome or {}).get("reasons", [])
            raise refusal_problem(row.vin, reasons)
        assert row.bundle is not None and row.activation_counter is not None
        outcome = row.outcome or {}
        return IssuedActivation(
            row.request_id,
            row.vin,
            row.activation_counter,
            row.expires_at,
            row.bundle,
            tuple(outcome.get("features", ())),
            list(outcome.get("withheld", ())),
            int(outcome.get("profile_version", 0)),
            replayed=True,
        )

    # -- decision ---------------------------------------------------------------------------

    def _decide(
        self,
        session: Session,
        request: ActivationRequest,
        dealer_id: str,
        *,
        edge: str,
        vehicle: Vehicle,
        now: datetime,
        images: ImageState,
    ) -> (
        list[dict[str, Any]]
        | tuple[ActivationPlan, int, dict[str, datetime | None], dict[str, frozenset[str]]]
    ):
        dealer, operator = dealer_and_operator(session, dealer_id, edge, request.operator)
        reasons: list[CloudReason] = []
        reasons += inventory_reasons(vehicle, request.inventory)
        reasons += assignment_reasons(vehicle, dealer, market_of_location(dealer))
        reasons += operator_reason(operator, request.operator.operator_id, dealer_id)
        profile_version, profile = self._context.profiles.for_dealer(session, dealer)
        catalog = self._context.catalog.get(session)
        entitlements = [e for _id, e in entitlements_of(session, request.vin)]
        result = plan_activation(
            vehicle,
            catalog=catalog,
            entitlements=entitlements,
            profile=profile,
            requested=request.features,
            consent=request.consent,
            now=now,
        )
        if isinstance(result, ActivationPlan):  # a car refuses an image not published
            reasons += image_reasons(self._context.signer.missing_images(result, images, now))
        domain = list(result.reasons) if isinstance(result, PlanRefusal) else []
        if reasons or domain:
            listed = [r.to_dict() for r in reasons] + [r.to_dict() for r in domain]
            return sorted(listed, key=lambda r: (r["feature"] or "", r["code"], r["message"]))
        assert isinstance(result, ActivationPlan)
        terms = grant_terms(result, catalog, entitlements, now)
        return result, profile_version, terms.until, terms.requires

    # -- results ----------------------------------------------------------------------------

    def report(self, request_id: str, dealer_id: str, applied: bool) -> str:
        """The edge reports the car's answer: the car is released for the next activation.

        The common case is two statements: close the issued activation (returning its car) and,
        if applied, move the car from ``at_dealer`` to ``activated``.
        """
        status = "applied" if applied else "failed"
        with self._db.transaction() as session:
            closed = session.execute(
                update(ActivationRow)
                .where(
                    ActivationRow.request_id == request_id,
                    ActivationRow.dealer_id == dealer_id,
                    ActivationRow.status == "issued",
                )
                .values(status=status, open_vin=None)
                .returning(ActivationRow.vin, ActivationRow.outcome)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if closed is None:
                return self._not_reportable(session, request_id, dealer_id)
            vin = closed.vin
            if applied:
                # Partners (owner app, digital key, CRM) hear of it from the outbox, in this
                # transaction: one INSERT at commit, no query.
                now = self._context.config.clock()
                enqueue_event(
                    session,
                    EventType.ACTIVATION_APPLIED,
                    activation_applied(
                        request_id=request_id,
                        vin=vin,
                        dealer_id=dealer_id,
                        features=(closed.outcome or {}).get("features", ()),
                        at=now,
                    ),
                    at=now,
                )
                session.execute(
                    update(VehicleRow)
                    .where(
                        VehicleRow.vin == vin,
                        VehicleRow.state == LifecycleState.AT_DEALER.value,
                    )
                    .values(state=LifecycleState.ACTIVATED.value)
                    .execution_options(synchronize_session=False)
                )
            return status

    @staticmethod
    def _not_reportable(session: Session, request_id: str, dealer_id: str) -> str:
        """Why a report closed nothing: unknown, already reported (its status), or not issued."""
        row = session.get(ActivationRow, request_id)
        if row is None or row.dealer_id != dealer_id:
            raise CloudProblem(
                404,
                ProblemCode.ACTIVATION_UNKNOWN,
                "Activation unknown",
                f"no activation {request_id} of this dealer",
            )
        if row.status in ("applied", "failed"):
            return row.status
        raise CloudProblem(
            409,
            ProblemCode.ACTIVATION_UNKNOWN,
            "Activation not issued",
            f"activation {request_id} is {row.status}",
        )
