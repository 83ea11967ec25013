"""Decoders resolved once per class behave as on the first call, every time after it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from forecourt.core import (
    ActivationPlan,
    ConsentRecord,
    DataCategory,
    DomainValueError,
    PlanRefusal,
    Vehicle,
    from_dict,
    plan_activation,
    to_dict,
)
from tests.core.factories import CATALOG, NOW, consent, entitled, profile, vehicle


@dataclass(frozen=True)
class _Node:
    label: str
    children: tuple[_Node, ...] = ()


@dataclass(frozen=True)
class _WithMapping:
    name: str
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Shapes:
    pair: tuple[int, str]
    maybe: bytes | None
    tags: frozenset[str]


def _json(data: object) -> dict[str, object]:
    loaded = json.loads(json.dumps(data))
    assert isinstance(loaded, dict)
    return loaded


def test_decoding_the_same_data_twice_gives_equal_objects() -> None:
    ok = plan_activation(
        vehicle(), catalog=CATALOG, entitlements=entitled("NAV"), profile=profile(),
        requested=["NAV"], consent=consent(*DataCategory), now=NOW,
    )  # fmt: skip
    no = plan_activation(
        vehicle(), catalog=CATALOG, entitlements=(), profile=profile(), requested=["NAV", "KEY"],
        consent=None, now=NOW,
    )  # fmt: skip
    assert isinstance(ok, ActivationPlan)
    assert isinstance(no, PlanRefusal)
    for cls, value in (
        (Vehicle, vehicle()),
        (ConsentRecord, consent(*DataCategory)),
        (ActivationPlan, ok),
        (PlanRefusal, no),
    ):
        data = _json(to_dict(value))
        first = from_dict(cls, data)
        second = from_dict(cls, data)
        assert first == second == value


def test_bad_data_after_good_data_is_still_refused_with_its_field() -> None:
    good = _json(to_dict(consent(DataCategory.LOCATION)))
    from_dict(ConsentRecord, good)
    bad = {**good, "captured_at": "yesterday"}
    with pytest.raises(DomainValueError) as caught:
        from_dict(ConsentRecord, bad)
    assert caught.value.field == "captured_at"
    bad_choice = {**good, "choices": [{"category": "telepathy", "granted": True}]}
    with pytest.raises(DomainValueError) as choice:
        from_dict(ConsentRecord, bad_choice)
    assert choice.value.field == "category"
    assert from_dict(ConsentRecord, good) == consent(DataCategory.LOCATION)


def test_a_field_of_an_unsupported_type_fails_only_when_present() -> None:
    assert from_dict(_WithMapping, {"name": "a"}) == _WithMapping("a")
    for _ in range(2):
        with pytest.raises(TypeError, match="extra: unsupported type"):
            from_dict(_WithMapping, {"name": "a", "extra": {}})


def test_recursive_types_decode_at_every_depth() -> None:
    tree = _Node("root", (_Node("a", (_Node("a1"),)), _Node("b")))
    assert from_dict(_Node, _json(to_dict(tree))) == tree
    with pytest.raises(DomainValueError) as caught:
        from_dict(_Node, {"label": "root", "children": [{"label": 7}]})
    assert caught.value.field == "label"


def test_tuples_optionals_and_sets_keep_their_checks() -> None:
    value = _Shapes((1, "x"), b"\x00\xff", frozenset({"b", "a"}))
    assert from_dict(_Shapes, _json(to_dict(value))) == value
    assert from_dict(_Shapes, {"pair": [1, "x"], "maybe": None, "tags": []}).maybe is None
    refusals: dict[str, dict[str, Any]] = {
        "pair": {"pair": [1], "maybe": None, "tags": []},
        "maybe": {"pair": [1, "x"], "maybe": "zz", "tags": []},
        "tags": {"pair": [1, "x"], "maybe": None, "tags": "a"},
    }
    for name, data in refusals.items():
        with pytest.raises(DomainValueError) as caught:
            from_dict(_Shapes, data)
        assert caught.value.field == name
    with pytest.raises(DomainValueError) as wrong:
        from_dict(_Shapes, {"pair": ["1", "x"], "maybe": None, "tags": []})
    assert wrong.value.reason == "expected int, got str"
