"""Issue offline packages ahead of time and record their use; a second use is reported.

A package is issued per car assigned to the asking dealer and in an activatable state, for the
features the car is entitled to (and its standard ones), signed by the director's offline role
with the car's next offline counter and a short validity window: the car accepts it once. The
cloud cannot stop a copied package being shown to a car twice, but the edge reports every use
when the link returns, and a package reported used twice is flagged (logged and listed).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forecourt.cloud.catalog.service import entitlements_of
from forecourt.cloud.compliance.service import profile_for_dealer
from forecourt.cloud.context import CloudContext
from forecourt.cloud.grants import grant_terms
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.cloud.registry.dealers import get_dealer
from forecourt.cloud.registry.vehicles import load_vehicle, vehicle_row
from forecourt.core import (
    ACTIVATABLE_STATES,
    ActivationPlan,
    LifecycleState,
    PlanRefusal,
    plan_activation,
)
from forecourt.logging import get_logger
from forecourt.store.registry import OfflinePackageRow, VehicleRow
from forecourt.trust.model import OfflineFreshness

_log = get_logger("cloud.offline")


@dataclass(frozen=True, slots=True)
class UseReport:
    use_id: str
    used_at: datetime
    operator_id: str


class OfflineService:
    def __init__(self, context: CloudContext) -> None:
        self._context = context
        self._db = context.db

    def issue(self, dealer_id: str, vins: list[str] | None) -> dict[str, Any]:
        """Issue one package per requested (or every assigned) car; skipped cars say why."""
        now = self._context.config.clock()
        with self._db.sessions() as session:
            query = select(VehicleRow.vin).where(VehicleRow.dealer_id == dealer_id)
            assigned = set(session.scalars(query))
        wanted = sorted(assigned if vins is None else {v.upper() for v in vins})
        issued: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        for vin in wanted:
            if vin not in assigned:
                skipped.append({"vin": vin, "code": ProblemCode.OFFLINE_NOT_ASSIGNED.value})
                continue
            result = self._issue_one(dealer_id, vin, now)
            (issued if "package_id" in result else skipped).append(result)
        return {"issued": issued, "skipped": skipped}

    def _issue_one(self, dealer_id: str, vin: str, now: datetime) -> dict[str, Any]:
        with self._db.sessions() as session:
            vehicle = load_vehicle(session, vin)
            if vehicle.state is LifecycleState.ACTIVATED:
                # Offline packages are for a car's first activation at the dealer: a car the
                # cloud knows activated (online, or offline once the use was reconciled) needs
                # the online path, which sees its current state.
                return {"vin": vin, "code": "already_activated"}
            if vehicle.state not in ACTIVATABLE_STATES:
                return {"vin": vin, "code": "wrong_lifecycle_state"}
            _version, profile = profile_for_dealer(session, get_dealer(session, dealer_id))
            catalog = self._context.catalog.get(session)
            entitlements = [e for _i, e in entitlements_of(session, vin)]
        wanted = {e.feature_code for e in entitlements if e.is_active_at(now)}
        result = plan_activation(
            vehicle,
            catalog=catalog,
            entitlements=entitlements,
            profile=profile,
            requested=wanted,
            consent=None,
            now=now,
        )
        if isinstance(result, PlanRefusal):  # leave out what needs a consent or cannot go
            refused = {r.feature for r in result.reasons if r.feature}
            result = plan_activation(
                vehicle,
                catalog=catalog,
                entitlements=entitlements,
                profile=profile,
                requested=wanted - refused,
                consent=None,
                now=now,
            )
        if isinstance(result, PlanRefusal):
            return {"vin": vin, "code": result.reasons[0].code.value}
        assert isinstance(result, ActivationPlan)
        not_after = now + self._context.config.offline_validity
        terms = grant_terms(result, catalog, entitlements, now)
        with self._db.transaction() as session:
            car = vehicle_row(session, vin, for_update=True)
            car.offline_counter += 1
            counter = car.offline_counter
            bundle = self._context.signer.sign(
                result,
                vehicle,
                freshness=OfflineFreshness(counter, now, not_after),
                activation_counter=car.activation_counter + 1,
                feature_until=terms.until,
                feature_requires=terms.requires,
                consent={},
                now=now,
                expires=not_after,
            )
            package_id = uuid.uuid4().hex
            session.add(
                OfflinePackageRow(
                    package_id=package_id,
                    vin=vin,
                    dealer_id=dealer_id,
                    counter=counter,
                    issued_at=now,
                    not_after=not_after,
                    bundle=bundle,
                    used_at=None,
                    use_count=0,
                    uses=[],
                )
            )
        _log.info("offline_package_issued", vin=vin, dealer_id=dealer_id, counter=counter)
        return {
            "package_id": package_id,
            "vin": vin,
            "counter": counter,
            "not_after": not_after.isoformat(),
            "features": list(result.features),
            "bundle": base64.b64encode(bundle).decode("ascii"),
        }

    def record_use(self, dealer_id: str, package_id: str, use: UseReport) -> dict[str, Any]:
        """Record a use; the same ``use_id`` again is a sync retry, a new one a double use."""
        with self._db.transaction() as session:
            return record_use_in(session, dealer_id, package_id, use)

    def double_uses(self) -> list[dict[str, Any]]:
        with self._db.sessions() as session:
            rows = session.scalars(
                select(OfflinePackageRow).where(OfflinePackageRow.use_count > 1)
            ).all()
            return [
                {"package_id": r.package_id, "vin": r.vin, "dealer_id": r.dealer_id, "uses": r.uses}
                for r in rows
            ]


def record_use_in(
    session: Session, dealer_id: str, package_id: str, use: UseReport
) -> dict[str, Any]:
    """Record a use of ``package_id`` in the caller's transaction (row locked).

    The same ``use_id`` again is a retry and changes nothing; another one is a double use,
    logged and answered ``double_use``."""
    row = session.get(OfflinePackageRow, package_id, with_for_update=True)
    if row is None or row.dealer_id != dealer_id:
        raise CloudProblem(
            404,
            ProblemCode.OFFLINE_PACKAGE_UNKNOWN,
            "Offline package unknown",
            f"no offline package {package_id} of this dealer",
        )
    if all(u["use_id"] != use.use_id for u in row.uses):
        row.uses = [
            *row.uses,
            {
                "use_id": use.use_id,
                "used_at": use.used_at.isoformat(),
                "operator_id": use.operator_id,
            },
        ]
        row.use_count = len(row.uses)
        row.used_at = row.used_at or use.used_at
    double = row.use_count > 1
    if double:
        _log.warning(
            "offline_package_used_twice",
            package_id=package_id,
            vin=row.vin,
            dealer_id=dealer_id,
            uses=row.use_count,
        )
    return {"package_id": package_id, "uses": row.use_count, "double_use": double}
