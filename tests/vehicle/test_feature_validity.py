"""FD02 reports a grant active only between its valid_from and valid_until, at the car's time."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from forecourt.vehicle.car import Car, CarServices
from forecourt.vehicle.storage import CarStore, FeatureState

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _car_with(store: CarStore, *grants: FeatureState) -> Car:
    state = copy.deepcopy(store.load())
    state.features = list(grants)
    store.commit(state)
    return Car(store, CarServices(now=lambda: NOW))


def _grant(feature: str, start: datetime | None, end: datetime | None) -> FeatureState:
    return FeatureState(
        feature_id=feature,
        ecu_address=0x1002,
        valid_until=end.isoformat() if end else None,
        activation_counter=1,
        valid_from=start.isoformat() if start else None,
    )


def test_a_grant_whose_start_lies_ahead_is_not_yet_active(
    make_store: Callable[[str], CarStore],
) -> None:
    car = _car_with(
        make_store("car"),
        _grant("future", NOW + timedelta(days=1), None),
        _grant("current", NOW - timedelta(days=1), NOW + timedelta(days=1)),
        _grant("starts-now", NOW, None),
        _grant("expired", NOW - timedelta(days=2), NOW),
        _grant("legacy", None, None),
    )
    active = {s["feature"]: s["active"] for s in car.feature_status(None)}
    assert active == {
        "future": False,
        "current": True,
        "starts-now": True,
        "expired": False,
        "legacy": True,
    }
