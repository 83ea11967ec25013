"""Bundles assembled from once-encoded parts are the bytes securesystemslib would write.

The issuer encodes each signed object once (for its signatures and its envelope) and keeps a
published repository's bytes; the car re-derives every signed payload with securesystemslib's
canonical JSON, so these tests compare against that encoder, not against our own.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from forecourt.trust import olpc
from forecourt.trust._sslib import CryptoSigner
from forecourt.trust.issuer import TopLevelMetadata, bundle_bytes
from forecourt.trust.model import BUNDLE_FORMAT, OfflineFreshness
from forecourt.trust.verifier import verify_bundle
from tests.trust.world import NOW, keys, make_world


def _reference(director: TopLevelMetadata, image: TopLevelMetadata) -> bytes:
    return olpc.reference_encode(
        {"format": BUNDLE_FORMAT, "director": director.to_dict(), "image": image.to_dict()}
    )


def test_bundle_equals_securesystemslib_encoding_of_its_parts_after_rotations() -> None:
    world = make_world()
    world.director.rotate_root(keys(), NOW + timedelta(days=365))
    world.images.rotate_root(keys(), NOW + timedelta(days=365))
    image = world.images.publish_images(NOW + timedelta(days=30))
    director = world.director.publish(world.builder().director_targets(), NOW + timedelta(days=1))
    assert bundle_bytes(director, image) == _reference(director, image)
    root = world.director.root.signed
    for role, md in (
        ("targets", director.targets),
        ("snapshot", director.snapshot),
        ("timestamp", director.timestamp),
    ):
        assert md is not None
        # tuf re-serialises ``signed`` with securesystemslib: the signatures cover those bytes.
        root.verify_delegate(role, md.signed_bytes, md.signatures)


def test_offline_bundle_equals_securesystemslib_encoding_and_verifies() -> None:
    world = make_world()
    offline = OfflineFreshness(4, NOW - timedelta(hours=1), NOW + timedelta(days=1))
    builder = world.builder(offline)
    image = world.images.publish_images(NOW + timedelta(days=30))
    director = world.director.publish_offline(builder.director_targets(), NOW + timedelta(days=1))
    assert bundle_bytes(director, image) == _reference(director, image)
    bundle = builder.build(world.director, image, NOW + timedelta(days=1))
    verify_bundle(bundle, world.car, NOW)


def test_built_bundle_is_canonical_and_verifies_on_the_car() -> None:
    world = make_world()
    bundle = world.bundle()
    assert olpc.reference_encode(json.loads(bundle.decode("utf-8"))) == bundle
    verified = verify_bundle(bundle, world.car, NOW)
    assert verified.next_state(world.car).last_activation_counter == 8


def test_bundles_from_one_publish_carry_the_same_image_bytes() -> None:
    world = make_world()
    image = world.images.publish_images(NOW + timedelta(days=30))
    first = json.loads(world.builder().build(world.director, image, NOW + timedelta(days=1)))
    second = json.loads(world.builder().build(world.director, image, NOW + timedelta(days=1)))
    assert first["image"] == second["image"] == image.to_dict()
    assert first["director"]["targets"]["signed"]["version"] == 1
    assert second["director"]["targets"]["signed"]["version"] == 2


def test_a_new_publish_carries_newly_added_images_and_rotated_roots() -> None:
    world = make_world()
    before = world.images.publish_images(NOW + timedelta(days=30))
    world.images.add_image("adas-2.0.bin", b"adas", "ADS-H1", 1, "2.0.0")
    world.images.rotate_root(keys(), NOW + timedelta(days=365))
    after = world.images.publish_images(NOW + timedelta(days=30))
    assert b"adas-2.0.bin" in after.canonical()
    assert after.canonical() == olpc.reference_encode(after.to_dict())
    assert len(json.loads(after.canonical())["root"]) == 1
    assert json.loads(before.canonical())["root"] == []


def test_a_replaced_top_level_encodes_its_own_content() -> None:
    world = make_world()
    director = world.director.publish(world.builder().director_targets(), NOW + timedelta(days=1))
    forged = dataclasses.replace(director, timestamp=None, snapshot=None)
    assert forged.canonical() == olpc.reference_encode(forged.to_dict())
    assert b'"timestamp":null' in forged.canonical()


def test_a_root_signed_again_after_publishing_is_encoded_with_its_new_signatures() -> None:
    world = make_world()
    world.director.rotate_root(keys(), NOW + timedelta(days=365))
    world.director.root.sign(CryptoSigner.generate_ed25519(), append=True)
    director = world.director.publish(world.builder().director_targets(), NOW + timedelta(days=1))
    assert len(director.roots[0].signatures) == 3
    assert director.canonical() == olpc.reference_encode(director.to_dict())
