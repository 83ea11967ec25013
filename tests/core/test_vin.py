"""VIN decoding, check digit (49 CFR 565) and every way a VIN can be refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecourt.core import Vin, VinError, VinRegion, build_vin, compute_check_digit
from forecourt.core.vin import ALPHABET, TRANSLITERATION, WEIGHTS

VIN_CHARS = "".join(sorted(ALPHABET))
# A published example (NHTSA): check digit X, model year 1989.
NHTSA_EXAMPLE = "1M8GDM9AXKP042788"


def _part(length: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=VIN_CHARS, min_size=length, max_size=length)


def test_sections_and_fields_of_a_north_american_vin() -> None:
    vin = Vin.parse(NHTSA_EXAMPLE)
    assert (vin.wmi, vin.vds, vin.vis) == ("1M8", "GDM9AX", "KP042788")
    assert vin.check_digit == vin.computed_check_digit == "X"
    assert vin.check_digit_valid and vin.check_digit_mandatory
    assert vin.model_year == 1989  # K, and position 7 ('9') is a digit: 1980–2009 cycle
    assert (vin.plant_code, vin.serial) == ("P", "042788")
    assert (vin.region, vin.country) == (VinRegion.NORTH_AMERICA, "United States")


def test_input_is_normalised_to_upper_case_without_surrounding_space() -> None:
    assert Vin.parse(f"  {NHTSA_EXAMPLE.lower()}\n").value == NHTSA_EXAMPLE


@pytest.mark.parametrize("text", ["", "1M8GDM9AXKP04278", "1M8GDM9AXKP0427880"])
def test_wrong_length_is_refused_without_a_position(text: str) -> None:
    with pytest.raises(VinError) as caught:
        Vin.parse(text)
    assert caught.value.position is None
    assert caught.value.reason == f"must be 17 characters, got {len(text)}"
    assert "length" in str(caught.value) and caught.value.reason in str(caught.value)


@pytest.mark.parametrize(("position", "letter"), [(1, "I"), (5, "O"), (17, "Q"), (10, "o")])
def test_letters_i_o_q_are_refused_at_their_position(position: int, letter: str) -> None:
    text = NHTSA_EXAMPLE[: position - 1] + letter + NHTSA_EXAMPLE[position:]
    with pytest.raises(VinError) as caught:
        Vin.parse(text)
    assert caught.value.position == position
    assert caught.value.reason == f"letter {letter.upper()!r} is not allowed (reads as 1 or 0)"
    assert f"position {position}" in str(caught.value)


@pytest.mark.parametrize("char", ["-", " ", "é", "*"])
def test_a_character_outside_the_alphabet_is_refused_at_its_position(char: str) -> None:
    with pytest.raises(VinError) as caught:
        Vin.parse(NHTSA_EXAMPLE[:3] + char + NHTSA_EXAMPLE[4:])
    assert caught.value.position == 4
    # Input is upper-cased first, so the reason names the character as it was checked.
    assert caught.value.reason == f"character {char.upper()!r} is not a digit or capital letter"


def test_wrong_check_digit_is_refused_for_north_america_naming_position_9() -> None:
    with pytest.raises(VinError) as caught:
        Vin.parse("1M8GDM9A1KP042788")
    assert caught.value.position == 9
    assert caught.value.reason == "check digit is '1', expected 'X'"
    assert caught.value.vin == "1M8GDM9A1KP042788"


def test_wrong_check_digit_can_be_read_and_reported_when_verification_is_off() -> None:
    vin = Vin.parse("1M8GDM9A1KP042788", verify_check_digit=False)
    assert not vin.check_digit_valid and vin.check_digit_mandatory


def test_check_digit_outside_north_america_is_reported_but_not_enforced() -> None:
    vin = Vin.parse("WVWZZZ1JZ3W386752")
    assert not vin.check_digit_mandatory
    assert not vin.check_digit_valid
    assert vin.computed_check_digit == "9"
    assert (vin.region, vin.country) == (VinRegion.EUROPE, "Germany")


def test_model_year_cycle_is_chosen_by_position_7() -> None:
    digit_at_7 = build_vin("1FK", "ABC1D", "SD000001")
    letter_at_7 = build_vin("1FK", "AB1CD", "SD000001")
    assert (digit_at_7.value[6], digit_at_7.model_year) == ("1", 1995)
    assert (letter_at_7.value[6], letter_at_7.model_year) == ("C", 2025)
    assert build_vin("1FK", "AB1CD", "9D000001").model_year == 2039
    assert build_vin("1FK", "ABC1D", "AD000001").model_year == 1980


@pytest.mark.parametrize("code", ["U", "Z", "0"])
def test_position_10_that_is_no_year_code_gives_no_model_year(code: str) -> None:
    assert build_vin("WFK", "AB1CD", f"{code}M000001").model_year is None


@pytest.mark.parametrize(
    ("wmi", "region", "country"),
    [
        ("LFV", VinRegion.ASIA, "China"),
        ("JHM", VinRegion.ASIA, "Japan"),
        ("KMH", VinRegion.ASIA, "South Korea"),
        ("VF1", VinRegion.EUROPE, "France"),
        ("ZFA", VinRegion.EUROPE, "Italy"),
        ("YV1", VinRegion.EUROPE, "Sweden"),
        ("2T1", VinRegion.NORTH_AMERICA, "Canada"),
        ("3VW", VinRegion.NORTH_AMERICA, "Mexico"),
        ("9BW", VinRegion.SOUTH_AMERICA, "Brazil"),
        ("6FP", VinRegion.OCEANIA, "Australia"),
        ("AAV", VinRegion.AFRICA, "South Africa"),
        ("UU1", VinRegion.EUROPE, None),
    ],
)
def test_region_and_country_come_from_the_wmi(
    wmi: str, region: VinRegion, country: str | None
) -> None:
    vin = build_vin(wmi, "AB1CD", "SM000001")
    assert (vin.region, vin.country) == (region, country)


@pytest.mark.parametrize(
    ("wmi", "vds", "vis", "part"),
    [("1F", "AB1CD", "SM000001", "wmi"), ("1FK", "AB1C", "SM000001", "vds"),
     ("1FK", "AB1CD", "SM00001", "vis")],
)  # fmt: skip
def test_build_vin_refuses_parts_of_the_wrong_length(
    wmi: str, vds: str, vis: str, part: str
) -> None:
    with pytest.raises(VinError) as caught:
        build_vin(wmi, vds, vis)
    assert caught.value.position is None
    assert caught.value.reason.startswith(f"{part} must be")


def test_constructor_accepts_only_canonical_text() -> None:
    with pytest.raises(VinError) as caught:
        Vin(NHTSA_EXAMPLE.lower())
    assert caught.value.position == 2  # '1' is fine; 'm' is the first non-canonical character


@given(wmi=_part(3), vds=_part(5), vis=_part(8))
def test_any_vin_built_by_the_helper_verifies(wmi: str, vds: str, vis: str) -> None:
    vin = build_vin(wmi, vds, vis)
    assert vin.check_digit_valid
    assert Vin.parse(vin.value) == vin
    assert (vin.wmi, vin.vds[:5], vin.vis) == (wmi, vds, vis)


@given(
    wmi_rest=_part(2),
    vds=_part(5),
    vis=_part(8),
    position=st.integers(1, 17),
    replacement=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
    first=st.sampled_from("12345"),
)
def test_a_single_changed_character_is_detected_unless_it_transliterates_the_same(
    *, wmi_rest: str, vds: str, vis: str, position: int, replacement: str, first: str
) -> None:
    original = build_vin(first + wmi_rest, vds, vis).value
    if position == 1:
        replacement = replacement if replacement in "12345" else first  # stay North-American
    index = position - 1
    changed = original[:index] + replacement + original[index + 1 :]
    if changed == original:
        return
    if replacement in "IOQ":
        with pytest.raises(VinError) as syntax:
            Vin.parse(changed)
        assert syntax.value.position == position
        return
    # Weights are 1..10 (never 0 mod 11) except position 9, which *is* the check digit: a change
    # goes unnoticed exactly when the new character has the same transliteration value.
    undetected = position != 9 and (
        TRANSLITERATION[replacement] == TRANSLITERATION[original[index]]
    )
    if undetected:
        assert Vin.parse(changed).check_digit_valid
    else:
        with pytest.raises(VinError) as caught:
            Vin.parse(changed)
        assert caught.value.position == 9
        assert Vin.parse(changed, verify_check_digit=False).check_digit_valid is False


def test_weights_and_transliteration_match_49_cfr_565() -> None:
    assert WEIGHTS == (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
    assert [TRANSLITERATION[c] for c in "AJSHRZP"] == [1, 1, 2, 8, 9, 9, 7]
    assert compute_check_digit("11111111111111111") == "1"
