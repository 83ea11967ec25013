"""VIN text and the JSON codec: any input is a value or a DomainValueError naming what is wrong."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from forecourt.core import (
    ActivationPlan,
    DataCategory,
    Vehicle,
    Vin,
    from_dict,
    plan_activation,
    to_dict,
)
from forecourt.core.errors import DomainValueError, VinError
from forecourt.core.vin import ALPHABET, CHECK_DIGIT_POSITION, VIN_LENGTH
from tests.core.factories import CATALOG, FEATURES, NOW, consent, entitled, profile, vehicle
from tests.fuzz.mutations import mutated_tree
from tests.fuzz.settings import fuzz

VALID_VIN = "1M8GDM9AXKP042788"  # 49 CFR 565 worked example: check digit X is correct

vin_like = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=sorted(ALPHABET | set("IOQioq -\t\n\x00é")), min_size=15, max_size=19),
    st.builds(
        lambda at, char: VALID_VIN[:at] + char + VALID_VIN[at + 1 :],
        st.integers(min_value=0, max_value=16),
        st.characters(),
    ),
)


def _assert_precise(error: VinError, text: str) -> None:
    assert error.reason and error.field == "vin"
    assert str(error).startswith("invalid VIN")
    if error.position is None:
        assert "characters" in error.reason  # the length is what is wrong
    else:
        assert 1 <= error.position <= VIN_LENGTH


@fuzz(400)
@given(vin_like)
def test_any_text_is_a_vin_or_a_vin_error_naming_the_position(text: str) -> None:
    try:
        vin = Vin.parse(text)
    except VinError as error:
        _assert_precise(error, text)
        canonical = text.strip().upper()
        if error.position is None:
            assert len(canonical) != VIN_LENGTH
        elif error.position != CHECK_DIGIT_POSITION or canonical[8] not in ALPHABET:
            assert canonical[error.position - 1] not in ALPHABET
    else:
        assert len(vin.value) == VIN_LENGTH and set(vin.value) <= ALPHABET


@fuzz(50)
@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.lists(st.text())))
def test_a_vin_that_is_not_text_is_a_vin_error(value: Any) -> None:
    try:
        Vin.parse(value)
    except VinError as error:
        assert error.position is None and "text" in error.reason
    else:  # pragma: no cover - reached only if a non-text VIN were accepted
        raise AssertionError(f"{value!r} accepted as a VIN")


def _valid_documents() -> list[tuple[type, dict[str, Any]]]:
    plan = plan_activation(
        vehicle(), catalog=CATALOG, entitlements=entitled("NAV"), profile=profile(),
        requested=["NAV"], consent=consent(*DataCategory), now=NOW,
    )  # fmt: skip
    assert isinstance(plan, ActivationPlan)
    values: list[object] = [vehicle(), plan, profile(), FEATURES[0]]
    return [(type(v), json.loads(json.dumps(to_dict(v)))) for v in values]


DOCUMENTS = _valid_documents()


@st.composite
def mutated_document(draw: st.DrawFn) -> tuple[type, Any]:
    cls, doc = draw(st.sampled_from(DOCUMENTS))
    return cls, draw(mutated_tree(doc))


@fuzz(400)
@given(mutated_document())
def test_mutated_codec_documents_decode_or_raise_a_domain_value_error(
    case: tuple[type, Any],
) -> None:
    cls, doc = case
    if not isinstance(doc, dict):
        return  # from_dict takes a mapping; the callers check the top-level type first
    try:
        value: object = from_dict(cls, doc)
    except DomainValueError as error:
        assert error.field and error.reason
    else:
        assert isinstance(value, cls)


def test_vehicle_document_with_a_number_for_a_vin_names_the_field() -> None:
    doc = to_dict(vehicle())
    doc["vin"] = 42
    try:
        from_dict(Vehicle, doc)
    except DomainValueError as error:
        assert error.field == "vin"
    else:  # pragma: no cover
        raise AssertionError("a numeric VIN was accepted")
