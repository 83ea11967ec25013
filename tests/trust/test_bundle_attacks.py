"""One test per Uptane threat-model attack: the exact refusal, and the car's state unchanged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from forecourt.trust import errors
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.issuer import RepositoryKeys, RoleSigners
from forecourt.trust.model import MAX_BUNDLE_BYTES, FeatureGrant, NonceFreshness, OfflineFreshness
from forecourt.trust.pki import CertificatePurpose, ecu_identity
from forecourt.trust.verifier import open_secrets, verify_bundle, verify_image

from .world import IVI_IMAGE, NOW, TBOX_IMAGE, VIN, assert_refused, ed, keys, make_world, tamper


def test_valid_bundle_verifies_and_yields_images_features_secrets_and_next_state() -> None:
    world = make_world()
    verified = verify_bundle(world.bundle(), world.car, NOW)
    tbox = verified.ecu("TBX0001")
    assert [i.image for i in tbox.images] == ["tbox-fw-2.0.bin"]
    assert [f.feature for f in tbox.features] == ["connected_services"]
    assert open_secrets(verified, "TBX0001", bytes(world.sealing["TBX0001"])) == {
        "subscription_key": b"sk-connected-0001"
    }
    verify_image(tbox.images[0], [TBOX_IMAGE[:1000], TBOX_IMAGE[1000:]])
    verify_image(verified.ecu("IVI0001").images[0], [IVI_IMAGE])
    after = verified.next_state(world.car)
    assert after.issued_nonces == frozenset()
    assert after.last_activation_counter == 8
    assert after.ecu("TBX0001") is not None and after.ecu("TBX0001").release_counter == 5  # type: ignore[union-attr]
    assert verified.compliance["region"] == "EU" and verified.consent["telemetry"] is False


def test_arbitrary_software_with_bad_signature_is_refused_by_signature_check() -> None:
    world = make_world()

    def swap_hash(obj: dict) -> None:  # type: ignore[type-arg]
        target = obj["director"]["targets"]["signed"]["targets"]["TBX0001/tbox-fw-2.0.bin"]
        target["hashes"]["sha256"] = "00" * 32

    assert_refused(tamper(world.bundle(), swap_hash), world.car, errors.SignatureThresholdNotMet)


def test_arbitrary_software_with_missing_signature_is_refused_by_signature_check() -> None:
    world = make_world()

    def strip(obj: dict) -> None:  # type: ignore[type-arg]
        obj["director"]["targets"]["signatures"] = []

    assert_refused(tamper(world.bundle(), strip), world.car, errors.SignatureThresholdNotMet)


def test_rollback_to_lower_release_counter_is_refused_by_release_counter_check() -> None:
    world = make_world()
    builder = world.builder()
    builder._ecus["TBX0001"].images = [world.images.targets.targets["tbox-fw-1.0.bin"]]
    assert_refused(world.bundle(builder), world.car, errors.RollbackAttempt)


def test_rollback_of_activation_counter_is_refused() -> None:
    world = make_world()
    assert_refused(world.bundle(world.builder(counter=7)), world.car, errors.RollbackAttempt)


def test_replay_of_old_nonce_is_refused_by_nonce_check() -> None:
    world = make_world()
    bundle = world.bundle()
    spent = verify_bundle(bundle, world.car, NOW).next_state(world.car)
    assert_refused(bundle, spent, errors.ReplayedNonce)


def test_replay_of_used_offline_counter_is_refused_by_offline_counter_check() -> None:
    world = make_world()
    offline = OfflineFreshness(4, NOW - timedelta(hours=1), NOW + timedelta(days=7))
    bundle = world.bundle(world.builder(offline), expires=NOW + timedelta(days=8))
    state = verify_bundle(bundle, world.car, NOW).next_state(world.car)
    assert state.last_offline_counter == 4
    assert_refused(bundle, state, errors.OfflineCounterReused)


def test_offline_package_outside_its_window_is_refused() -> None:
    world = make_world()
    offline = OfflineFreshness(4, NOW - timedelta(days=2), NOW - timedelta(days=1))
    bundle = world.bundle(world.builder(offline), expires=NOW + timedelta(days=8))
    assert_refused(bundle, world.car, errors.OfflineWindowInvalid)


def test_offline_package_signed_by_online_targets_key_is_refused() -> None:
    world = make_world()
    offline = OfflineFreshness(4, NOW - timedelta(hours=1), NOW + timedelta(days=1))
    builder = world.builder(offline)
    image_md = world.images.publish_images(NOW + timedelta(days=30))
    md = world.director.publish(builder.director_targets(), NOW + timedelta(days=1))
    from dataclasses import replace

    forged = replace(md, timestamp=None, snapshot=None)
    bundle = canonical_bytes(
        {"format": "forecourt.bundle/1", "director": forged.to_dict(), "image": image_md.to_dict()}
    )
    assert_refused(bundle, world.car, errors.SignatureThresholdNotMet)


def test_freeze_with_expired_metadata_is_refused_by_expiry_check() -> None:
    world = make_world()
    bundle = world.bundle(expires=NOW + timedelta(hours=1))
    assert_refused(bundle, world.car, errors.MetadataExpired, now=NOW + timedelta(hours=2))


def test_mix_and_match_director_choice_differing_from_image_repository_is_refused() -> None:
    world = make_world()
    from tuf.api.metadata import TargetFile

    real = world.images.targets.targets["tbox-fw-2.0.bin"]
    evil = TargetFile.from_data("tbox-fw-2.0.bin", b"evil firmware", ["sha256"])
    evil.unrecognized_fields = dict(real.unrecognized_fields)
    builder = world.builder()
    builder._ecus["TBX0001"].images = [evil]
    assert_refused(world.bundle(builder), world.car, errors.MixAndMatch)


def test_foreign_vin_is_refused_by_vin_binding() -> None:
    world = make_world()
    assert_refused(
        world.bundle(world.builder(vin="1HGCM82633A004352")), world.car, errors.ForeignVin
    )


def test_foreign_ecu_serial_is_refused_by_ecu_binding() -> None:
    world = make_world()
    builder = world.builder()
    builder.add_ecu("TBX9999", "TBX-H1", bytes(world.sealing["TBX0001"].public_key))
    assert_refused(world.bundle(builder), world.car, errors.ForeignEcu)


def test_feature_without_fitted_hardware_is_refused_by_factory_configuration() -> None:
    world = make_world()
    builder = world.builder()
    builder.add_ecu("ADS0001", "ADS-H1", bytes(world.sealing["ADS0001"].public_key))
    builder.add_feature(
        FeatureGrant(
            "adas_l2plus",
            VIN,
            "ADS0001",
            NOW,
            NOW + timedelta(days=30),
            frozenset({"ADAS_SENSORS"}),
        )
    )
    assert_refused(world.bundle(builder), world.car, errors.FeatureWithoutHardware)


def test_compromised_targets_key_below_threshold_is_refused_by_threshold() -> None:
    attacker = ed()
    honest = ed()
    director_keys = RepositoryKeys(
        root=RoleSigners([ed()]),
        timestamp=RoleSigners([ed()]),
        snapshot=RoleSigners([ed()]),
        targets=RoleSigners([attacker, honest], threshold=2),
        offline=RoleSigners([ed()]),
    )
    world = make_world(director_keys)
    world.director.keys = RepositoryKeys(
        root=director_keys.root,
        timestamp=director_keys.timestamp,
        snapshot=director_keys.snapshot,
        targets=RoleSigners([attacker], threshold=2),
        offline=director_keys.offline,
    )
    assert_refused(world.bundle(), world.car, errors.SignatureThresholdNotMet)


def test_endless_data_bundle_is_refused_before_parsing() -> None:
    world = make_world()
    huge = b"{" + b" " * MAX_BUNDLE_BYTES + b"}"
    error = assert_refused(huge, world.car, errors.EndlessData)
    assert error.detail["bound"] == MAX_BUNDLE_BYTES


def test_endless_data_image_stream_is_cut_off_at_signed_length() -> None:
    world = make_world()
    target = verify_bundle(world.bundle(), world.car, NOW).ecu("TBX0001").images[0]
    consumed = []

    def endless():  # type: ignore[no-untyped-def]
        yield TBOX_IMAGE
        while True:
            consumed.append(1)
            yield b"x" * 4096

    with pytest.raises(errors.EndlessData):
        verify_image(target, endless())
    assert len(consumed) == 1


def test_truncated_and_altered_images_are_refused() -> None:
    world = make_world()
    target = verify_bundle(world.bundle(), world.car, NOW).ecu("TBX0001").images[0]
    with pytest.raises(errors.ImageLengthMismatch):
        verify_image(target, [TBOX_IMAGE[:-1]])
    with pytest.raises(errors.ImageHashMismatch):
        verify_image(target, [b"X" + TBOX_IMAGE[1:]])


def test_partial_bundle_missing_one_ecus_image_metadata_refuses_all_ecus() -> None:
    world = make_world()
    bundle = world.bundle()

    def drop(obj: dict) -> None:  # type: ignore[type-arg]
        del obj["image"]["targets"]["signed"]["targets"]["ivi-os-3.1.img"]

    # Re-sign the image repository without the IVI image: a valid but incomplete set.
    builder = world.builder()
    del world.images.targets.targets["ivi-os-3.1.img"]
    incomplete = world.bundle(builder)
    assert_refused(incomplete, world.car, errors.PartialBundle)
    assert_refused(tamper(bundle, drop), world.car, errors.SignatureThresholdNotMet)


def test_root_rotation_is_followed_and_pinned_after_apply() -> None:
    world = make_world()
    world.director.rotate_root(keys(), NOW + timedelta(days=365))
    verified = verify_bundle(world.bundle(), world.car, NOW)
    after = verified.next_state(world.car)
    assert b'"version":2' in after.director_root


def test_root_rotation_signed_only_by_revoked_old_key_is_refused() -> None:
    world = make_world()
    revoked = world.director.keys
    world.director.rotate_root(keys(), NOW + timedelta(days=365))  # v2 revokes the old root key
    current = world.director.keys
    # An attacker holding only the revoked key publishes a v3 that hands root to itself.
    world.director.keys = revoked
    world.director.rotate_root(revoked, NOW + timedelta(days=365))
    world.director.keys = current
    assert_refused(world.bundle(), world.car, errors.RootRotationInvalid)


def test_root_rotation_skipping_a_version_is_refused() -> None:
    world = make_world()
    world.director.rotate_root(keys(), NOW + timedelta(days=365), version_step=2)
    assert_refused(world.bundle(), world.car, errors.RootRotationInvalid)


def test_unknown_envelope_field_and_unknown_format_are_refused() -> None:
    world = make_world()
    bundle = world.bundle()
    assert_refused(tamper(bundle, lambda o: o.update(extra=1)), world.car, errors.BundleFormatError)
    assert_refused(
        tamper(bundle, lambda o: o.update(format="forecourt.bundle/9")),
        world.car,
        errors.BundleFormatError,
    )


def test_secret_cannot_be_opened_with_another_ecus_key() -> None:
    world = make_world()
    verified = verify_bundle(world.bundle(), world.car, NOW)
    with pytest.raises(errors.SealedSecretError):
        open_secrets(verified, "TBX0001", bytes(world.sealing["IVI0001"]))


def test_every_refusal_has_a_stable_code_and_a_uds_nrc() -> None:
    codes = set()
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, errors.TrustError):
            assert 0x10 <= cls.nrc <= 0xFF
            codes.add(cls.code)
    assert len(codes) == len(
        [
            c
            for c in vars(errors).values()
            if isinstance(c, type) and issubclass(c, errors.TrustError)
        ]
    )
    assert NonceFreshness("x").to_dict() == {"kind": "nonce", "nonce": "x"}


def test_feature_grant_already_past_its_validity_is_refused() -> None:
    world = make_world()
    builder = world.builder()
    builder._ecus["TBX0001"].features = [
        FeatureGrant(
            "connected_services",
            VIN,
            "TBX0001",
            NOW - timedelta(days=30),
            NOW - timedelta(minutes=1),
            frozenset({"TBOX"}),
        )
    ]
    error = assert_refused(world.bundle(builder), world.car, errors.FeatureValidityExpired)
    assert error.detail["feature"] == "connected_services"


def test_test_world_ecu_identity_certificates_verify_and_carry_the_sealing_key() -> None:
    world = make_world()
    cert = world.identity_certs["TBX0001"]
    world.pki.verify(cert, CertificatePurpose.ECU_IDENTITY, NOW)
    assert ecu_identity(cert).sealing_key == bytes(world.sealing["TBX0001"].public_key)
