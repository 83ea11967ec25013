"""JSON form of core values: a round trip gives an equal value; bad data is named precisely."""

from __future__ import annotations

import json

import pytest

from forecourt.core import (
    ActivationPlan,
    DataCategory,
    DomainValueError,
    PlanRefusal,
    Vehicle,
    from_dict,
    plan_activation,
    to_dict,
)
from tests.core.factories import CATALOG, NOW, consent, entitled, profile, vehicle


def _through_json(data: object) -> dict[str, object]:
    loaded = json.loads(json.dumps(data, sort_keys=True))
    assert isinstance(loaded, dict)
    return loaded


def test_vehicle_round_trips_through_json() -> None:
    car = vehicle()
    data = to_dict(car)
    assert data["vin"] == car.vin.value
    assert from_dict(Vehicle, _through_json(data)) == car


def test_plan_and_refusal_round_trip_with_their_reason_types() -> None:
    ok = plan_activation(
        vehicle(), catalog=CATALOG, entitlements=entitled("NAV"), profile=profile(),
        requested=["NAV"], consent=consent(*DataCategory), now=NOW,
    )  # fmt: skip
    assert isinstance(ok, ActivationPlan)
    assert from_dict(ActivationPlan, _through_json(to_dict(ok))) == ok
    no = plan_activation(
        vehicle(), catalog=CATALOG, entitlements=(), profile=profile(), requested=["NAV", "KEY"],
        consent=None, now=NOW,
    )  # fmt: skip
    assert isinstance(no, PlanRefusal)
    data = _through_json(to_dict(no))
    assert [r["code"] for r in data["reasons"]] == [r.code.value for r in no.reasons]  # type: ignore[attr-defined]
    assert from_dict(PlanRefusal, data) == no


def test_bad_data_names_the_field_and_the_problem() -> None:
    data = _through_json(to_dict(vehicle()))
    data["vin"] = "SHORT"
    with pytest.raises(DomainValueError) as vin:
        from_dict(Vehicle, data)
    assert vin.value.field == "vin"
    del data["vin"]
    with pytest.raises(DomainValueError) as missing:
        from_dict(Vehicle, data)
    assert (missing.value.field, missing.value.reason) == ("vin", "missing from Vehicle data")
