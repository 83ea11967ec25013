"""TUF rollback floors: once the car applied metadata of some version, an older one is refused.

Every bundle here is still signed and unexpired, and its nonce and counter would pass: only the
floor of the role's version stands between the replayed metadata and the car.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from forecourt.trust import errors
from forecourt.trust.issuer import Repository
from forecourt.trust.model import NonceFreshness, OfflineFreshness
from forecourt.trust.verifier import CarTrustState, MetadataVersions, verify_bundle

from .world import NOW, assert_refused, keys, make_world


def _two_nonces(car: CarTrustState) -> CarTrustState:
    return replace(car, issued_nonces=frozenset({"n-1", "n-2"}))


def test_a_car_without_floors_starts_at_version_zero_for_every_role() -> None:
    world = make_world()
    assert world.car.director_versions == MetadataVersions()
    assert world.car.image_versions == MetadataVersions(0, 0, 0, 0)


def test_applying_a_bundle_raises_every_roles_floor_to_its_versions() -> None:
    world = make_world()
    after = verify_bundle(world.bundle(), world.car, NOW).next_state(world.car)
    assert after.director_versions == MetadataVersions(1, 1, 1, 0)
    assert after.image_versions == MetadataVersions(1, 1, 1, 0)


def test_replay_of_an_older_director_set_after_a_newer_one_was_applied_is_refused() -> None:
    world = make_world()
    car = _two_nonces(world.car)
    images = world.images.publish_images(NOW + timedelta(days=30))
    expires = NOW + timedelta(days=1)
    older = world.builder(NonceFreshness("n-1"), counter=10).build(world.director, images, expires)
    newer = world.builder(NonceFreshness("n-2"), counter=9).build(world.director, images, expires)
    applied = verify_bundle(newer, car, NOW).next_state(car)
    refusal = assert_refused(older, applied, errors.RollbackAttempt)
    assert refusal.nrc == 0x70
    assert "director timestamp" in str(refusal)


def test_replay_of_an_older_image_repository_set_after_a_newer_one_was_applied_is_refused() -> None:
    world = make_world()
    car = _two_nonces(world.car)
    old_images = world.images.publish_images(NOW + timedelta(days=30))
    new_images = world.images.publish_images(NOW + timedelta(days=30))
    expires = NOW + timedelta(days=1)
    first = world.builder(NonceFreshness("n-1"), counter=8).build(
        world.director, new_images, expires
    )
    applied = verify_bundle(first, car, NOW).next_state(car)
    replayed = world.builder(NonceFreshness("n-2"), counter=9).build(
        world.director, old_images, expires
    )
    refusal = assert_refused(replayed, applied, errors.RollbackAttempt)
    assert "image timestamp" in str(refusal)


def test_the_same_image_repository_set_serves_the_next_activation() -> None:
    world = make_world()
    car = _two_nonces(world.car)
    images = world.images.publish_images(NOW + timedelta(days=30))
    expires = NOW + timedelta(days=1)
    first = world.builder(NonceFreshness("n-1"), counter=8).build(world.director, images, expires)
    applied = verify_bundle(first, car, NOW).next_state(car)
    second = world.builder(NonceFreshness("n-2"), counter=9).build(world.director, images, expires)
    assert verify_bundle(second, applied, NOW).activation_counter == 9


def test_an_offline_package_is_floored_apart_from_online_director_targets() -> None:
    world = make_world()
    images = world.images.publish_images(NOW + timedelta(days=30))
    week = NOW + timedelta(days=8)
    window = OfflineFreshness(4, NOW - timedelta(hours=1), NOW + timedelta(days=7))
    offline = world.builder(window).build(world.director, images, week)  # director v1
    online = world.builder().build(world.director, images, NOW + timedelta(days=1))  # v2
    after_online = verify_bundle(online, world.car, NOW).next_state(world.car)
    after_offline = verify_bundle(offline, after_online, NOW).next_state(after_online)
    assert after_offline.director_versions == MetadataVersions(2, 2, 2, 1)
    later_window = OfflineFreshness(5, NOW - timedelta(hours=1), NOW + timedelta(days=7))
    stale = world.builder(later_window).build(world.director, images, week)  # director v3
    floored = replace(after_offline, director_versions=MetadataVersions(2, 2, 2, 4))
    refusal = assert_refused(stale, floored, errors.RollbackAttempt)
    assert "offline targets" in str(refusal)


def test_a_rotated_timestamp_key_resets_its_floor_so_a_fast_forward_cannot_freeze_the_car() -> None:
    world = make_world()
    fast_forwarded = replace(
        world.car, image_versions=MetadataVersions(timestamp=10**6, snapshot=10**6)
    )
    assert_refused(world.bundle(), fast_forwarded, errors.RollbackAttempt)
    world.images.rotate_root(keys(), NOW + timedelta(days=365))  # new timestamp/snapshot keys
    after = verify_bundle(world.bundle(), fast_forwarded, NOW).next_state(fast_forwarded)
    assert after.image_versions.timestamp < 10**6


def test_a_restarted_director_with_a_version_clock_still_serves_a_car_it_served_before() -> None:
    """Cars keep version floors, so a cloud process must not count from 1 again after a restart."""
    world = make_world()
    car = _two_nonces(world.car)
    ticks = iter([1_000, 1_000, 2_000])  # two publishes in one millisecond, then a restart

    def clock() -> int:
        return next(ticks)

    def process(version_clock: Callable[[], int] | None) -> Repository:
        return Repository(
            world.director.keys,
            NOW + timedelta(days=365),
            root=world.director.root,
            version_clock=version_clock,
        )

    images = world.images.publish_images(NOW + timedelta(days=30))
    expires = NOW + timedelta(days=1)
    first_process = process(clock)
    served = world.builder(NonceFreshness("n-1"), counter=8).build(first_process, images, expires)
    applied = verify_bundle(served, car, NOW).next_state(car)
    assert applied.director_versions.targets == 1_000

    same_tick = world.builder(NonceFreshness("n-2"), counter=9).build(
        first_process, images, expires
    )
    assert verify_bundle(same_tick, applied, NOW).director_versions.targets == 1_001

    after_restart = world.builder(NonceFreshness("n-2"), counter=9).build(
        process(clock), images, expires
    )
    assert verify_bundle(after_restart, applied, NOW).director_versions.targets == 2_000

    counting_from_one = world.builder(NonceFreshness("n-2"), counter=9).build(
        process(None), images, expires
    )
    assert_refused(counting_from_one, applied, errors.RollbackAttempt)
