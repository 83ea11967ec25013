"""Activation planning: every refusal reason, complete reporting, package choice, determinism."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecourt.core import (
    ActivationPlan,
    Catalog,
    ConsentForbidden,
    ConsentMissing,
    ConsentMode,
    DataCategory,
    DependencyMissing,
    DomainValueError,
    EcuRole,
    EntitlementState,
    HardwareMissing,
    LifecycleState,
    Market,
    NoCompatiblePackage,
    NotEntitled,
    NotOfferedInMarket,
    PackageType,
    PlanRefusal,
    PlanResult,
    ProfileMarketMismatch,
    RefusalCode,
    UnknownFeature,
    WrongLifecycleState,
    plan_activation,
)
from forecourt.core.compliance import ComplianceProfile, ConsentRecord
from forecourt.core.entitlement import Entitlement
from forecourt.core.vehicle import Vehicle
from tests.core.factories import (
    CATALOG,
    NOW,
    VIN,
    consent,
    ecu,
    entitled,
    feature,
    profile,
    vehicle,
)

D = DataCategory
R = EcuRole
ALL_CONSENT = consent(*DataCategory, cross_border=True)


def plan(
    requested: tuple[str, ...] = (),
    *,
    car: Vehicle | None = None,
    rights: tuple[Entitlement, ...] = (),
    rules: ComplianceProfile | None = None,
    given_consent: ConsentRecord | None = ALL_CONSENT,
    catalog: Catalog = CATALOG,
    now: datetime = NOW,
) -> PlanResult:
    return plan_activation(
        car or vehicle(),
        catalog=catalog,
        entitlements=rights,
        profile=rules or profile(),
        requested=requested,
        consent=given_consent,
        now=now,
    )


def refused(result: PlanResult) -> PlanRefusal:
    assert isinstance(result, PlanRefusal), result
    return result


def planned(result: PlanResult) -> ActivationPlan:
    assert isinstance(result, ActivationPlan), result
    return result


def _odd_adas_hardware() -> Vehicle:
    car = vehicle()
    ecus = tuple(ecu(e.role, "HW-unknown") if e.role is R.ADAS else e for e in car.ecus)
    return dataclasses.replace(car, ecus=ecus)


# One scenario per refusal code: how to provoke it and the exact reason expected.
SCENARIOS: dict[RefusalCode, tuple[Callable[[], PlanResult], object]] = {
    RefusalCode.WRONG_LIFECYCLE_STATE: (
        lambda: plan(car=vehicle(state=LifecycleState.SHIPPED)),
        WrongLifecycleState(None, LifecycleState.SHIPPED),
    ),
    RefusalCode.PROFILE_MARKET_MISMATCH: (
        lambda: plan(rules=profile(Market.US)),
        ProfileMarketMismatch(None, Market.EU, Market.US),
    ),
    RefusalCode.UNKNOWN_FEATURE: (lambda: plan(("WARP",)), UnknownFeature("WARP")),
    RefusalCode.NOT_OFFERED_IN_MARKET: (
        lambda: plan(("BOOST",), rights=entitled("BOOST")),
        NotOfferedInMarket("BOOST", Market.EU),
    ),
    RefusalCode.HARDWARE_MISSING: (
        lambda: plan(("KEY",), rights=entitled("KEY")),
        HardwareMissing("KEY", ("DKB",), ()),
    ),
    RefusalCode.NOT_ENTITLED: (lambda: plan(("VOICE",)), NotEntitled("VOICE", "no entitlement")),
    RefusalCode.DEPENDENCY_MISSING: (
        lambda: plan(("TRAFFIC",), rights=entitled("TRAFFIC")),
        DependencyMissing("TRAFFIC", "NAV"),
    ),
    RefusalCode.CONSENT_MISSING: (
        lambda: plan(("NAV",), rights=entitled("NAV"), given_consent=consent()),
        ConsentMissing("NAV", D.LOCATION, "opt-in consent not granted"),
    ),
    RefusalCode.CONSENT_FORBIDDEN: (
        lambda: plan(("FACE_ID",), rights=entitled("FACE_ID")),
        ConsentForbidden("FACE_ID", D.BIOMETRICS),
    ),
    RefusalCode.NO_COMPATIBLE_PACKAGE: (
        lambda: plan(("ADAS_L2P",), car=_odd_adas_hardware(), rights=entitled("ADAS_L2P")),
        NoCompatiblePackage("ADAS_L2P", R.ADAS, PackageType.OS, "HW-unknown"),
    ),
}


def test_every_refusal_code_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(RefusalCode)


@pytest.mark.parametrize("code", list(RefusalCode))
def test_each_refusal_reason_is_reachable_with_its_exact_content(code: RefusalCode) -> None:
    provoke, expected = SCENARIOS[code]
    result = refused(provoke())
    assert expected in result.reasons
    assert code in result.codes
    reason = next(r for r in result.reasons if r.code is code)
    assert reason.to_dict()["code"] == code.value and reason.message


def test_all_reasons_are_reported_at_once_sorted() -> None:
    car = vehicle(options=frozenset({"T5G"}), state=LifecycleState.BUILT)
    result = refused(plan(("KEY", "VOICE", "WARP", "FACE_ID"), car=car, rights=entitled("KEY")))
    assert result.reasons == (
        WrongLifecycleState(None, LifecycleState.BUILT),
        ConsentForbidden("FACE_ID", D.BIOMETRICS),
        NotEntitled("FACE_ID", "no entitlement"),
        HardwareMissing("KEY", ("DKB",), ()),
        HardwareMissing("VOICE", ("HUP",), ()),
        NotEntitled("VOICE", "no entitlement"),
        UnknownFeature("WARP"),
    )


def test_missing_ecu_and_option_are_named_together() -> None:
    car = vehicle(options=frozenset({"T5G"}), roles=(R.CGW, R.TBOX, R.HEAD_UNIT))
    result = refused(plan(("ADAS_L2P",), car=car, rights=entitled("ADAS_L2P")))
    assert result.reasons == (HardwareMissing("ADAS_L2P", ("ADS",), (R.ADAS,)),)


def test_dependency_failure_reports_the_dependency_own_reasons_too() -> None:
    result = refused(plan(("TRAFFIC",), rights=entitled("TRAFFIC")))
    assert set(result.reasons) == {
        DependencyMissing("TRAFFIC", "NAV"),
        NotEntitled("NAV", "no entitlement"),
    }


@pytest.mark.parametrize(
    ("rights", "detail"),
    [
        (entitled("NAV", state=EntitlementState.SUSPENDED), "entitlement is suspended"),
        (entitled("NAV", state=EntitlementState.REVOKED), "entitlement is revoked"),
        (
            entitled("NAV", valid_until=NOW - timedelta(seconds=1)),
            f"entitlement ended {(NOW - timedelta(seconds=1)).isoformat()}",
        ),
        (
            entitled("NAV", valid_from=NOW + timedelta(days=1), valid_until=None),
            f"entitlement starts {(NOW + timedelta(days=1)).isoformat()}",
        ),
    ],
)
def test_inactive_entitlement_says_why(rights: tuple[Entitlement, ...], detail: str) -> None:
    assert refused(plan(("NAV",), rights=rights)).reasons == (NotEntitled("NAV", detail),)


def test_another_cars_entitlement_does_not_count() -> None:
    other = dataclasses.replace(
        entitled("VOICE")[0], vin=dataclasses.replace(VIN, value="1M8GDM9AXKP042788")
    )
    assert refused(plan(("VOICE",), rights=(other,))).reasons == (
        NotEntitled("VOICE", "no entitlement"),
    )


def test_consent_for_an_old_notice_does_not_count() -> None:
    old = consent(*DataCategory, notice="eu-0")
    result = refused(plan(("NAV",), rights=entitled("NAV"), given_consent=old))
    detail = "consent was given for notice 'eu-0', current notice is 'eu-1'"
    assert ConsentMissing("NAV", D.LOCATION, detail) in result.reasons


def test_cross_border_feature_needs_its_own_grant_or_is_forbidden() -> None:
    no_grant = consent(*DataCategory, cross_border=False)
    missing = refused(plan(("SYNC",), rights=entitled("SYNC"), given_consent=no_grant))
    assert missing.reasons == (ConsentMissing("SYNC", None, "opt-in consent not granted"),)
    forbidden = refused(
        plan(("SYNC",), rights=entitled("SYNC"), rules=profile(cross_border=ConsentMode.FORBIDDEN))
    )
    assert forbidden.reasons == (ConsentForbidden("SYNC", None),)
    assert planned(plan(("SYNC",), rights=entitled("SYNC"))).features == ("CONNECT", "SYNC")


def test_plan_targets_each_ecu_with_newest_compatible_packages() -> None:
    result = planned(plan(("NAV", "ADAS_L2P"), rights=entitled("NAV", "ADAS_L2P")))
    assert result.features == ("ADAS_L2P", "CONNECT", "NAV")
    assert result.type_approval_features == ("ADAS_L2P",)
    assert result.withheld == ()
    assert [t.logical_address for t in result.targets] == [0x1000, 0x1001, 0x1002, 0x1003]
    by_role = {t.role: t for t in result.targets}
    assert by_role[R.CGW].features == ("ADAS_L2P", "CONNECT")
    assert by_role[R.TBOX].features == ("CONNECT",)
    assert by_role[R.HEAD_UNIT].features == ("NAV",)
    packages = {role: [(p.name, str(p.version)) for p in t.packages] for role, t in by_role.items()}
    # 1.10.0 beats 1.2.0 (numeric, not text); the 2.0.0 pre-release is never chosen; other
    # hardware and other models' packages are left out; only the market's language packs.
    assert packages[R.CGW] == [("compliance-eu", "3.0.0"), ("os-cgw", "1.10.0")]
    assert packages[R.HEAD_UNIT] == [("lang-de", "1.0.0"), ("map-eu", "25.1.0")]
    assert packages[R.ADAS] == [("os-adas", "3.1.0")]
    assert packages[R.TBOX] == []


def test_map_packs_go_only_to_a_head_unit_that_gets_navigation() -> None:
    result = planned(plan())
    head_unit = next(t for t in result.targets if t.role is R.HEAD_UNIT)
    assert [p.name for p in head_unit.packages] == ["lang-de"]


def test_requesting_a_feature_pulls_in_its_dependencies() -> None:
    result = planned(plan(("TRAFFIC",), rights=entitled("TRAFFIC", "NAV")))
    assert result.features == ("CONNECT", "NAV", "TRAFFIC")


def test_standard_feature_without_consent_is_withheld_not_refused() -> None:
    result = planned(plan(given_consent=None))
    assert result.features == ()
    assert [w.feature for w in result.withheld] == ["CONNECT"]
    assert result.withheld[0].reasons == (
        ConsentMissing("CONNECT", D.VEHICLE_DIAGNOSTICS, "no notice shown and no consent recorded"),
    )


def test_requested_feature_needing_a_withheld_standard_feature_is_refused() -> None:
    result = refused(plan(("NAV",), rights=entitled("NAV"), given_consent=None))
    assert DependencyMissing("NAV", "CONNECT") in result.reasons
    assert (
        ConsentMissing("CONNECT", D.VEHICLE_DIAGNOSTICS, "no notice shown and no consent recorded")
        in result.reasons
    )


def test_standard_features_need_no_entitlement() -> None:
    assert planned(plan(rights=())).features == ("CONNECT",)


def test_compliance_settings_follow_profile_and_consent() -> None:
    result = planned(plan(given_consent=consent(D.LOCATION)))
    settings_ = result.targets[0].compliance
    states = dict(settings_.categories)
    assert states[D.LOCATION] is True  # opt-in, granted
    assert states[D.AUDIO_VOICE] is False  # opt-in, not granted
    assert states[D.BIOMETRICS] is False  # forbidden
    assert states[D.VEHICLE_DIAGNOSTICS] is True  # notice only, default on
    assert states[D.USAGE] is True  # opt-out, not objected
    assert settings_.cross_border_enabled is False
    assert all(t.compliance == settings_ for t in result.targets)


def test_a_naive_planning_time_is_refused() -> None:
    with pytest.raises(DomainValueError) as caught:
        plan(now=NOW.replace(tzinfo=None))
    assert (caught.value.field, caught.value.reason) == ("now", "must be timezone-aware")


def test_dependency_cycle_terminates_and_plans_both() -> None:
    cyclic = Catalog(
        (feature("AA", {R.CGW}, deps={"BB"}), feature("BB", {R.CGW}, deps={"AA"})), CATALOG.packages
    )
    assert planned(plan(("AA",), catalog=cyclic, rights=entitled("AA", "BB"))).features == (
        "AA",
        "BB",
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_plan_does_not_depend_on_input_order(seed: int) -> None:
    rng = random.Random(seed)
    requested = ["NAV", "ADAS_L2P", "SYNC", "VOICE"]
    rights = list(entitled(*requested))
    features, packages = list(CATALOG.features), list(CATALOG.packages)
    for items in (requested, rights, features, packages):
        rng.shuffle(items)
    shuffled = Catalog(tuple(features), tuple(packages))
    first = plan(tuple(requested), rights=tuple(rights), catalog=shuffled)
    again = plan(("ADAS_L2P", "NAV", "SYNC", "VOICE"), rights=entitled(*sorted(requested)))
    assert first == again


OPTION_CODES = ("T5G", "HUP", "ADS", "DKB")
CODES = tuple(f.code for f in CATALOG.features)


@settings(max_examples=150, deadline=None)
@given(
    options=st.frozensets(st.sampled_from(OPTION_CODES)),
    extra_roles=st.frozensets(st.sampled_from((R.TBOX, R.HEAD_UNIT, R.ADAS))),
    requested=st.frozensets(st.sampled_from((*CODES, "WARP")), max_size=5),
    rights=st.frozensets(st.sampled_from(CODES)),
    grants=st.frozensets(st.sampled_from(tuple(DataCategory))),
    cross_border=st.sampled_from((None, False, True)),
    state=st.sampled_from(tuple(LifecycleState)),
)
def test_plan_never_contains_a_feature_lacking_hardware(
    *,
    options: frozenset[str],
    extra_roles: frozenset[EcuRole],
    requested: frozenset[str],
    rights: frozenset[str],
    grants: frozenset[DataCategory],
    cross_border: bool | None,
    state: LifecycleState,
) -> None:
    roles = tuple(sorted({R.CGW} | extra_roles, key=lambda r: r.logical_address))
    car = vehicle(options=options, roles=roles, state=state)
    result = plan(
        tuple(sorted(requested)),
        car=car,
        rights=entitled(*sorted(rights)),
        given_consent=consent(*grants, cross_border=cross_border),
    )
    if isinstance(result, PlanRefusal):
        assert list(result.reasons) == sorted(set(result.reasons), key=lambda r: r.sort_key())
        for code in requested & set(CODES):
            f = CATALOG.feature(code)
            assert f is not None
            if not (f.required_option_codes <= options and f.required_roles <= car.roles):
                assert any(
                    isinstance(r, HardwareMissing) and r.feature == code for r in result.reasons
                )
        return
    assert requested <= set(result.features)
    for code in result.features:
        f = CATALOG.feature(code)
        assert f is not None
        assert f.required_option_codes <= options
        assert f.required_roles <= car.roles
        assert f.depends_on <= set(result.features)
    for target in result.targets:
        for code in target.features:
            f = CATALOG.feature(code)
            assert f is not None and target.role in f.required_roles
