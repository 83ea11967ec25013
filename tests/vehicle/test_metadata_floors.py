"""The car persists the last accepted timestamp/snapshot/targets versions with the apply and
refuses an older, still-valid metadata set afterwards (NRC 0x70, a DTC, nothing changed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from forecourt.trust.model import NonceFreshness
from forecourt.trust.verifier import MetadataVersions
from forecourt.vehicle.car import Car
from forecourt.vehicle.trust_adapter import trust_state_of
from tests.trust.world import NOW
from tests.vehicle.test_trust_wiring import TrustedCar, trusted

__all__ = ["trusted"]  # the fixture, used by name


def test_an_older_bundle_set_replayed_after_a_newer_apply_is_refused_and_changes_nothing(
    trusted: TrustedCar,
) -> None:
    w = trusted.world
    images = w.images.publish_images(NOW + timedelta(days=30))
    expires = NOW + timedelta(days=1)
    first, second = trusted.nonce(), trusted.nonce()
    older = w.builder(NonceFreshness(first), counter=10).build(w.director, images, expires)
    newer = w.builder(NonceFreshness(second), counter=9).build(w.director, images, expires)
    assert trusted.activate(newer) is None
    floors = trusted.car.state.trust_state["metadata_versions"]
    assert floors["director"] == {"timestamp": 2, "snapshot": 2, "targets": 2, "offline": 0}
    after = trusted.fingerprint()
    assert trusted.activate(older) == 0x70
    assert trusted.fingerprint() == after
    assert trusted.car.state.dtcs[-1].code == 0xD10070


def test_the_floors_survive_a_restart_and_a_car_provisioned_without_them_starts_at_zero(
    trusted: TrustedCar,
) -> None:
    w = trusted.world
    stored = trusted.car.state.trust_state
    legacy = {k: v for k, v in stored.items() if k != "metadata_versions"}  # an older car
    view = replace(trusted.car.view(), trust_state=legacy)
    assert trust_state_of(view).director_versions == MetadataVersions()
    assert trusted.activate(w.bundle(w.builder(NonceFreshness(trusted.nonce())))) is None
    restarted = Car(trusted.car.store, trusted.car.services)
    assert trust_state_of(restarted.view()).image_versions == MetadataVersions(1, 1, 1, 0)
