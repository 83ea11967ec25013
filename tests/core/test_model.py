"""Invariants of the domain values: lifecycle, ECU, package, version, entitlement, consent."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecourt.core import (
    ALLOWED_TRANSITIONS,
    Catalog,
    CategoryRule,
    ConsentChoice,
    ConsentMode,
    ConsentRecord,
    DataCategory,
    Dealer,
    DomainValueError,
    Ecu,
    EcuRole,
    Entitlement,
    EntitlementSource,
    EntitlementState,
    IllegalTransition,
    LicenceKind,
    LicenceTerms,
    LifecycleState,
    Market,
    PackageNeed,
    PackageType,
    PlanRefusal,
    SemVer,
    VersionError,
)
from tests.core.factories import NOW, VIN, feature, package, vehicle

S = LifecycleState


def test_the_happy_lifecycle_path_is_allowed_and_returns_new_vehicles() -> None:
    car = vehicle(state=S.BUILT)
    path = [S.SHIPPED, S.AT_DEALER, S.ACTIVATED, S.ACTIVATED, S.DELIVERED, S.IN_SERVICE,
            S.TRANSFERRED, S.IN_SERVICE, S.SCRAPPED]  # fmt: skip
    current = car
    for state in path:
        current = current.transition(state)
        assert current.state is state
    assert car.state is S.BUILT  # the original is untouched


@pytest.mark.parametrize(
    ("start", "target"),
    [(S.BUILT, S.ACTIVATED), (S.SHIPPED, S.DELIVERED), (S.DELIVERED, S.ACTIVATED),
     (S.IN_SERVICE, S.IN_SERVICE), (S.SCRAPPED, S.IN_SERVICE), (S.TRANSFERRED, S.DELIVERED)],
)  # fmt: skip
def test_an_illegal_transition_names_both_states(start: S, target: S) -> None:
    with pytest.raises(IllegalTransition) as caught:
        vehicle(state=start).transition(target)
    assert (caught.value.from_state, caught.value.to_state) == (start, target)
    assert f"{start.value} → {target.value}" in str(caught.value)


def test_scrapped_is_terminal_and_reachable_from_every_other_state() -> None:
    assert ALLOWED_TRANSITIONS[S.SCRAPPED] == frozenset()
    assert all(S.SCRAPPED in ALLOWED_TRANSITIONS[s] for s in S if s is not S.SCRAPPED)


def test_only_activated_may_repeat_itself() -> None:
    assert [s for s in S if s in ALLOWED_TRANSITIONS[s]] == [S.ACTIVATED]


def test_a_vehicle_refuses_two_ecus_with_one_role_and_a_disagreeing_model_year() -> None:
    car = vehicle()
    with pytest.raises(DomainValueError) as twice:
        dataclasses.replace(car, ecus=car.ecus + car.ecus[:1])
    assert (twice.value.field, twice.value.reason) == ("ecus", "an ECU role is fitted twice")
    with pytest.raises(DomainValueError) as year:
        dataclasses.replace(car, model_year=2019)
    assert year.value.field == "model_year"
    assert year.value.reason == "2019 disagrees with the VIN's model year 2025"


def test_ecu_roles_have_the_protocol_addresses() -> None:
    assert [r.logical_address for r in EcuRole] == [0x1000, 0x1001, 0x1002, 0x1003]


@pytest.mark.parametrize(
    ("address", "reason"),
    [(0x0000, "0x0000 is outside 0x0001–0xDFFF"), (0xE000, "0xE000 is outside 0x0001–0xDFFF"),
     (0x0E80, "0x0E80 is a tester address")],
)  # fmt: skip
def test_ecu_refuses_addresses_iso_13400_reserves(address: int, reason: str) -> None:
    with pytest.raises(DomainValueError) as caught:
        Ecu(EcuRole.CGW, address, "S", "H", "1.0.0", b"", b"")
    assert (caught.value.field, caught.value.reason) == ("logical_address", reason)


def test_semver_precedence_follows_the_specification_example() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "2.0.0"]  # fmt: skip
    versions = [SemVer.parse(v) for v in ordered]
    assert sorted(reversed(versions)) == versions
    assert SemVer.parse("1.0.0+build.1") == SemVer.parse("1.0.0+build.2")


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0-01", ""])
def test_semver_refuses_malformed_text_naming_it(text: str) -> None:
    with pytest.raises(VersionError) as caught:
        SemVer.parse(text)
    assert caught.value.text == text
    assert caught.value.reason == "not MAJOR.MINOR.PATCH[-pre][+build] (SemVer 2.0.0)"


@given(
    st.tuples(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999)),
    st.lists(st.from_regex(r"[1-9][0-9]{0,3}|[a-z][a-z0-9-]{0,5}", fullmatch=True), max_size=3),
)
def test_semver_text_round_trips(core: tuple[int, int, int], pre: list[str]) -> None:
    version = SemVer(*core, prerelease=tuple(pre))
    again = SemVer.parse(str(version))
    assert again == version and str(again) == str(version)


def test_package_refuses_a_bad_digest_and_language_mismatch() -> None:
    good = package("lang-de", "1.0.0", PackageType.LANGUAGE, EcuRole.HEAD_UNIT, language="de")
    with pytest.raises(DomainValueError) as digest:
        dataclasses.replace(good, sha256="ABC")
    assert (digest.value.field, digest.value.reason) == (
        "sha256",
        "must be 64 lower-case hex digits",
    )
    with pytest.raises(DomainValueError) as language:
        dataclasses.replace(good, language=None)
    assert (language.value.field, language.value.reason) == (
        "language", "set exactly for language packs"
    )  # fmt: skip


def test_entitlement_is_active_in_its_half_open_window_only() -> None:
    start, end = NOW, NOW + timedelta(days=30)
    right = Entitlement(VIN, "NAV", EntitlementSource.TRIAL, start, end)
    assert not right.is_active_at(start - timedelta(microseconds=1))
    assert right.is_active_at(start)
    assert right.is_active_at(end - timedelta(microseconds=1))
    assert not right.is_active_at(end)
    assert not dataclasses.replace(right, state=EntitlementState.SUSPENDED).is_active_at(start)


def test_entitlement_refuses_naive_times_and_an_empty_window() -> None:
    with pytest.raises(DomainValueError) as naive:
        Entitlement(VIN, "NAV", EntitlementSource.PURCHASE, datetime(2025, 1, 1), None)
    assert (naive.value.field, naive.value.reason) == ("valid_from", "must be timezone-aware")
    with pytest.raises(DomainValueError) as empty:
        Entitlement(VIN, "NAV", EntitlementSource.PURCHASE, NOW, NOW)
    assert (empty.value.field, empty.value.reason) == ("valid_until", "must be after valid_from")


@pytest.mark.parametrize(
    ("terms", "reason"),
    [((LicenceKind.PERPETUAL, 30), "a perpetual licence has no duration"),
     ((LicenceKind.TRIAL, None), "a trial needs a positive duration"),
     ((LicenceKind.SUBSCRIPTION, 0), "a subscription needs a positive duration")],
)  # fmt: skip
def test_licence_terms_match_their_kind(terms: tuple[LicenceKind, int | None], reason: str) -> None:
    with pytest.raises(DomainValueError) as caught:
        LicenceTerms(*terms)
    assert (caught.value.field, caught.value.reason) == ("duration_days", reason)


def test_feature_refuses_self_dependency_and_package_need_off_target() -> None:
    with pytest.raises(DomainValueError) as itself:
        feature("NAV", {EcuRole.HEAD_UNIT}, deps={"NAV"})
    assert itself.value.reason == "NAV depends on itself"
    with pytest.raises(DomainValueError) as off:
        feature("NAV", {EcuRole.HEAD_UNIT}, needs=(PackageNeed(EcuRole.ADAS, PackageType.OS),))
    assert off.value.reason == "NAV needs a package on adas, not a target"


def test_opt_in_and_forbidden_rules_cannot_default_on() -> None:
    with pytest.raises(DomainValueError) as caught:
        CategoryRule(DataCategory.BIOMETRICS, ConsentMode.OPT_IN, default_on=True)
    assert caught.value.reason == "biometrics: opt-in cannot default on"


def test_consent_refuses_a_category_answered_twice() -> None:
    twice = (
        ConsentChoice(DataCategory.LOCATION, True),
        ConsentChoice(DataCategory.LOCATION, False),
    )
    with pytest.raises(DomainValueError) as caught:
        ConsentRecord("eu-1", NOW, twice)
    assert (caught.value.field, caught.value.reason) == (
        "choices",
        "a data category is answered twice",
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("dealer_id", "munich", "'munich' is not like 'DE-MUC-01'"),
     ("country", "DEU", "'DEU' is not ISO 3166-1 alpha-2"),
     ("latitude", 91.0, "91.0 is outside −90…90")],
)  # fmt: skip
def test_dealer_fields_are_checked(field: str, value: Any, reason: str) -> None:
    good = Dealer("DE-MUC-01", "Forecourt", "Munich", "DE", Market.EU, 48.1, 11.6)
    with pytest.raises(DomainValueError) as caught:
        dataclasses.replace(good, **{field: value})
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_catalog_refuses_duplicate_feature_codes_and_package_versions() -> None:
    from tests.core.factories import CATALOG

    with pytest.raises(DomainValueError) as codes:
        Catalog(CATALOG.features + CATALOG.features[:1], ())
    assert (codes.value.field, codes.value.reason) == ("features", "a feature code appears twice")
    with pytest.raises(DomainValueError) as versions:
        Catalog((), CATALOG.packages + CATALOG.packages[:1])
    assert versions.value.reason == "a package version appears twice"


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [({"retention_days": 0}, "retention_days", "must be positive"),
     ({"notice_version": ""}, "notice_version", "must not be empty"),
     ({"languages": ()}, "languages", "at least one notice language is needed")],
)  # fmt: skip
def test_compliance_profile_invariants(changes: dict[str, Any], field: str, reason: str) -> None:
    from tests.core.factories import profile

    with pytest.raises(DomainValueError) as caught:
        dataclasses.replace(profile(), **changes)
    assert (caught.value.field, caught.value.reason) == (field, reason)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [({"size": 0}, "size", "must be positive"),
     ({"markets": frozenset()}, "markets", "os-x is offered in no market"),
     ({"compatible_hardware": frozenset()}, "compatible_hardware", "os-x fits no hardware")],
)  # fmt: skip
def test_package_invariants(changes: dict[str, Any], field: str, reason: str) -> None:
    good = package("os-x", "1.0.0", PackageType.OS, EcuRole.CGW)
    with pytest.raises(DomainValueError) as caught:
        dataclasses.replace(good, **changes)
    assert (caught.value.field, caught.value.reason) == (field, reason)


def test_feature_code_roles_and_offers_are_checked() -> None:
    with pytest.raises(DomainValueError) as code:
        feature("nav", {EcuRole.HEAD_UNIT})
    assert code.value.reason == "'nav' is not an upper-case feature code"
    with pytest.raises(DomainValueError) as roles:
        feature("NAV", set())
    assert roles.value.reason == "NAV must run on some ECU"
    with pytest.raises(DomainValueError) as offers:
        feature("NAV", {EcuRole.HEAD_UNIT}, markets=(Market.EU, Market.EU))
    assert offers.value.reason == "NAV is offered twice in one market"


def test_a_refusal_without_reasons_cannot_exist() -> None:
    with pytest.raises(DomainValueError) as caught:
        PlanRefusal(VIN, ())
    assert caught.value.reason == "a refusal needs at least one reason"
