"""The dealer's stock of offline activation packages: pulled ahead, used once, reconciled.

The cloud pre-issues, per car assigned to this dealer, a single-use package (VIN-bound, counter
bound, short validity; see ADR 0003). :meth:`OfflineStock.refill` pulls them while the link is up.
With the cloud unreachable, a workflow claims one (:meth:`OfflineStock.claim_in`) inside the
transaction that commits its ``authorised`` step, after an ``offline_use`` dual review:

* a package is claimed at most once: the claim is a conditional update ``available → used``
  that a second claimer (thread or process) finds already done;
* an expired or not-yet-valid package is never handed out, and one whose counter is not above the
  car's stored counter is refused before any byte reaches the car (the car would refuse it too);
* the claim queues an ``offline_package.used`` event in the same transaction; when the cloud
  reports the package used elsewhere too, :meth:`OfflineStock.mark_double_use` marks it
  ``double_used`` and the console lists it (:meth:`OfflineStock.double_uses`): surfaced, never
  hidden.

States: ``available → used → double_used``; ``available → expired``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.cloud_client import CloudClient, DoubleUse, PackageRef
from forecourt.edge.operators.clock import Clock, system_clock
from forecourt.edge.outbox import OFFLINE_PACKAGE_USED, enqueue
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOfflinePackage
from forecourt.trust.model import ACTIVATION_FIELD

_log = get_logger("edge.offline")


class PackageState(StrEnum):
    AVAILABLE = "available"
    USED = "used"
    DOUBLE_USED = "double_used"
    EXPIRED = "expired"


class OfflineError(Exception):
    """Root of offline-stock refusals."""


class NoOfflinePackage(OfflineError):
    def __init__(self, vin: str) -> None:
        super().__init__(f"no valid offline package in stock for {vin}")
        self.vin = vin


class OfflinePackageStale(OfflineError):
    """The package's counter is not above the car's: the car would refuse it as a replay."""

    def __init__(self, package_id: str, counter: int, car_counter: int) -> None:
        super().__init__(
            f"offline package {package_id} has counter {counter}, the car is at {car_counter}"
        )
        self.package_id = package_id
        self.counter = counter
        self.car_counter = car_counter


@dataclass(frozen=True, slots=True)
class ClaimedPackage:
    package_id: str
    vin: str
    counter: int
    bundle: bytes
    bundle_sha256: str
    packages: tuple[PackageRef, ...]
    not_after: datetime


@dataclass(frozen=True, slots=True)
class StockedPackage:
    package_id: str
    vin: str
    counter: int
    state: PackageState
    not_before: datetime
    not_after: datetime
    used_at: datetime | None


class OfflineStock:
    """The offline package stock of one dealer's edge."""

    def __init__(
        self, sessions: sessionmaker[Session], dealer_id: str, *, clock: Clock = system_clock
    ) -> None:
        self._sessions = sessions
        self.dealer_id = dealer_id
        self._clock = clock

    def refill(self, cloud: CloudClient) -> int:
        """Pull every package the cloud offers this dealer; returns how many were new.

        Idempotent: a package already held (same id or same bundle hash) is skipped.
        """
        added = 0
        cursor: str | None = None
        now = self._clock()
        while True:
            offers, cursor = cloud.offline_packages(self.dealer_id, cursor)
            with self._sessions.begin() as s:
                for offer in offers:
                    if s.get(EdgeOfflinePackage, offer.package_id) is not None:
                        continue
                    clash = s.execute(
                        select(EdgeOfflinePackage.id).where(
                            EdgeOfflinePackage.bundle_sha256 == offer.bundle_sha256
                        )
                    ).first()
                    if clash is not None:
                        continue
                    s.add(
                        EdgeOfflinePackage(
                            id=offer.package_id,
                            dealer_id=self.dealer_id,
                            vin=offer.vin,
                            counter=offer.counter,
                            bundle=offer.bundle,
                            packages=[p.to_dict() for p in offer.packages],
                            bundle_sha256=offer.bundle_sha256,
                            not_before=offer.not_before,
                            not_after=offer.not_after,
                            state=PackageState.AVAILABLE.value,
                            received_at=now,
                            used_at=None,
                            used_by_operator_id=None,
                            review_request_id=None,
                        )
                    )
                    added += 1
            if cursor is None:
                break
        _log.info("offline_stock_refilled", dealer_id=self.dealer_id, added=added)
        return added

    def has_valid(self, vin: str) -> bool:
        now = self._clock()
        with self._sessions() as s:
            return self._candidate(s, vin, now) is not None

    def claim_in(
        self,
        session: Session,
        *,
        vin: str,
        car_counter: int,
        workflow_id: str,
        operator_id: str,
        review_request_id: str | None,
    ) -> ClaimedPackage:
        """Take one valid package for ``vin`` in the caller's transaction, or raise.

        Queues the ``offline_package.used`` event in the same transaction.
        """
        now = self._clock()
        row = self._candidate(session, vin, now)
        if row is None:
            raise NoOfflinePackage(vin)
        bundle_counter = activation_counter_of(row.bundle, default=row.counter)
        if bundle_counter <= car_counter:
            raise OfflinePackageStale(row.id, bundle_counter, car_counter)
        moved = session.execute(
            update(EdgeOfflinePackage)
            .where(
                EdgeOfflinePackage.id == row.id,
                EdgeOfflinePackage.state == PackageState.AVAILABLE.value,
            )
            .values(
                state=PackageState.USED.value,
                used_at=now,
                used_by_operator_id=operator_id,
                review_request_id=review_request_id,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if moved != 1:
            raise NoOfflinePackage(vin)
        enqueue(
            session,
            OFFLINE_PACKAGE_USED,
            {
                "package_id": row.id,
                "vin": vin,
                "counter": row.counter,
                "bundle_sha256": row.bundle_sha256,
                "workflow_id": workflow_id,
                "dealer_id": self.dealer_id,
                "operator_id": operator_id,
                "used_at": now.isoformat(),
            },
            now=now,
            subject=vin,
        )
        refs = tuple(PackageRef.from_dict(p) for p in row.packages)
        _log.info("offline_package_claimed", package_id=row.id, vin=vin, workflow_id=workflow_id)
        return ClaimedPackage(
            row.id, vin, row.counter, row.bundle, row.bundle_sha256, refs, row.not_after
        )

    def mark_double_use(self, report: DoubleUse) -> None:
        """Record the cloud's report that ``report.package_id`` was used twice."""
        with self._sessions.begin() as s:
            s.execute(
                update(EdgeOfflinePackage)
                .where(EdgeOfflinePackage.id == report.package_id)
                .values(state=PackageState.DOUBLE_USED.value)
            )
        _log.error(
            "offline_package_double_use_recorded",
            package_id=report.package_id,
            vin=report.vin,
            detail=report.detail,
        )

    def expire_due(self) -> int:
        now = self._clock()
        with self._sessions.begin() as s:
            return int(
                s.execute(
                    update(EdgeOfflinePackage)
                    .where(
                        EdgeOfflinePackage.state == PackageState.AVAILABLE.value,
                        EdgeOfflinePackage.not_after <= now,
                    )
                    .values(state=PackageState.EXPIRED.value)
                ).rowcount  # type: ignore[attr-defined]
            )

    def stock(self, state: PackageState | None = None) -> list[StockedPackage]:
        with self._sessions() as s:
            q = select(EdgeOfflinePackage).where(EdgeOfflinePackage.dealer_id == self.dealer_id)
            if state is not None:
                q = q.where(EdgeOfflinePackage.state == state.value)
            return [
                StockedPackage(
                    r.id,
                    r.vin,
                    r.counter,
                    PackageState(r.state),
                    r.not_before,
                    r.not_after,
                    r.used_at,
                )
                for r in s.execute(q.order_by(EdgeOfflinePackage.received_at)).scalars()
            ]

    def double_uses(self) -> list[StockedPackage]:
        return self.stock(PackageState.DOUBLE_USED)

    def _candidate(self, session: Session, vin: str, now: datetime) -> EdgeOfflinePackage | None:
        return session.execute(
            select(EdgeOfflinePackage)
            .where(
                EdgeOfflinePackage.dealer_id == self.dealer_id,
                EdgeOfflinePackage.vin == vin,
                EdgeOfflinePackage.state == PackageState.AVAILABLE.value,
                EdgeOfflinePackage.not_before <= now,
                EdgeOfflinePackage.not_after > now,
            )
            .order_by(EdgeOfflinePackage.counter)
            .limit(1)
        ).scalar_one_or_none()


def activation_counter_of(bundle: bytes, *, default: int) -> int:
    """The activation counter a signed bundle carries (what the car compares with FD01).

    The package's own counter is the car's *offline* counter, a different sequence; a car
    activated online since the package was issued has moved its activation counter, not its
    offline one. Unsigned test bundles carry no activation block: ``default`` is used then.
    """
    try:
        signed = json.loads(bundle)["director"]["targets"]["signed"]
        return int(signed[ACTIVATION_FIELD]["activation_counter"])
    except (ValueError, KeyError, TypeError):
        return default
