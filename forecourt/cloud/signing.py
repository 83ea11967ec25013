"""Turning an :class:`ActivationPlan` into a signed bundle with the trust layer's repositories.

The image repository lists every package version per hardware number (Uptane: the image's
``hardwareId`` must equal the director's choice for the ECU). Its targets are, once published,
the ones signed offline (``cloud sign-images``, ``cloud publish-image-targets``): every process
reads the newest published version from the database (loaded and checked against the image root
once per version) and signs only the image snapshot and timestamp online; a plan needing an image
those targets do not list is refused (``image_not_published``). With nothing published, the
image targets are signed here from the catalog, as before (the demo, tests). Either way the
image metadata is re-signed only when it changes or passes half its validity, so an activation
costs one director signing (targets, snapshot, timestamp), not four. Signing is serialised by a
lock: the repositories keep version counters that two threads must not interleave.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from forecourt.cloud.config import SigningKeys
from forecourt.cloud.packages.image_targets import (
    ImageTargetsRefused,
    PublishedImageTargets,
    check_image_targets,
    image_name,
    image_target,
    load_version,
    newest_version,
    release_counter,
)
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.core import ActivationPlan, SoftwarePackage, Vehicle, to_json
from forecourt.logging import get_logger
from forecourt.trust._sslib import Metadata, Root, TargetFile
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.issuer import BundleBuilder, ImageRepository, Repository, TopLevelMetadata
from forecourt.trust.model import FeatureGrant, Freshness

if TYPE_CHECKING:
    from forecourt.cloud.db import Database

__all__ = [
    "PERPETUAL_GRANT",
    "BundleSigner",
    "GrantValidityMissing",
    "ImageNotPublished",
    "ImageState",
    "image_name",
    "metadata_version_clock",
    "release_counter",
]

_log = get_logger("cloud.signing")


#: How far a perpetual grant (an entitlement without an end, a standard feature) reaches: the car
#: needs a ``not_after``; only an explicit ``None`` in ``feature_until`` asks for it.
PERPETUAL_GRANT = timedelta(days=36500)


class GrantValidityMissing(ValueError):
    """A feature would be granted without the validity its entitlement gives it.

    Signing refuses rather than guess: a forgotten validity once became a 100-year grant."""

    def __init__(self, vin: str, features: frozenset[str]) -> None:
        self.vin, self.features = vin, features
        super().__init__(f"no validity given for feature(s) {', '.join(sorted(features))} of {vin}")


class ImageNotPublished(CloudProblem):
    """The image targets this process serves lack what a plan needs (409 ``image_not_published``).

    The authorisation checks first and refuses with reasons (:meth:`BundleSigner.missing_images`);
    this is raised only when signing would otherwise hand a car metadata it must refuse."""

    def __init__(self, vin: str, missing: list[str]) -> None:
        super().__init__(
            409,
            ProblemCode.IMAGE_NOT_PUBLISHED,
            "Image not published",
            f"{vin}: {'; '.join(missing)}",
        )
        self.missing = missing


@dataclass(frozen=True)
class ImageState:
    """What the image repository serves now: published targets (signed offline), the reason
    the newest published version cannot be served, or neither (targets signed here, online)."""

    published: PublishedImageTargets | None = None
    unusable: str | None = None


ONLINE = ImageState()


def metadata_version_clock() -> int:
    """Milliseconds since the epoch: metadata versions that keep rising after a restart and
    across replicas (cars refuse a lower timestamp/snapshot/targets version than they hold)."""
    return time.time_ns() // 1_000_000


class BundleSigner:
    """Director (online, and its offline role) and image repository of one cloud process."""

    def __init__(self, keys: SigningKeys, db: Database | None = None) -> None:
        """``db``: where published image targets are read (``None``: never, tests sign online)."""
        self._keys = keys
        self._db = db
        self.director = Repository(
            keys.director,
            keys.root_expires,
            root=keys.director_root,
            history=keys.director_root_history,
            version_clock=metadata_version_clock,
        )
        self.images = ImageRepository(
            keys.images,
            keys.root_expires,
            root=keys.image_root,
            history=keys.image_root_history,
            version_clock=metadata_version_clock,
        )
        self._lock = threading.Lock()
        self._image_md: TopLevelMetadata | None = None
        self._image_md_expires: datetime | None = None
        self._dirty = True
        self._state_lock = threading.Lock()
        self._state: ImageState = ONLINE
        self._state_version: int | None = None
        self._served: tuple[int, TopLevelMetadata, datetime] | None = None

    @property
    def holds_image_targets_key(self) -> bool:
        """Whether this process could sign image targets itself (not when held offline)."""
        return bool(self._keys.images.targets.signers)

    def image_state(self, reader: Session | Connection | None = None) -> ImageState:
        """The newest published image targets (one indexed query through ``reader``, else a
        connection of its own), loaded and checked against the image root once per version.

        A version that does not verify (signed by keys the current image root does not list,
        e.g. before this process was restarted after a rotation) is reported as unusable, never
        replaced by targets signed here: once targets are published, serving them is the rule.
        """
        if reader is None:
            if self._db is None:
                return ONLINE
            with self._db.read() as connection:
                return self._load_state(connection)
        return self._load_state(reader)

    def _load_state(self, reader: Session | Connection) -> ImageState:
        version = newest_version(reader)
        if version is None:
            return ONLINE
        with self._state_lock:
            if version == self._state_version:
                return self._state
        root = self.images.root.signed
        try:
            state = ImageState(published=check_image_targets(load_version(reader, version), root))
            _log.info("image_targets_loaded", version=version)
        except ImageTargetsRefused as exc:
            state = ImageState(unusable=f"the published {exc}")
            _log.error("image_targets_unusable", version=version, reason=str(exc))
        with self._state_lock:
            if self._state_version is None or version >= self._state_version:
                self._state, self._state_version = state, version
        return state

    def _unservable(self, state: ImageState) -> list[str]:
        """Why ``state`` gives no image metadata to serve at all (empty: it does)."""
        if state.unusable is not None:
            return [state.unusable]
        if state.published is None and not self.holds_image_targets_key:
            return [
                "no image targets are published and this cloud holds no image targets key: "
                "sign them offline (cloud sign-images) and publish them "
                "(cloud publish-image-targets)"
            ]
        return []

    def missing_images(self, plan: ActivationPlan, state: ImageState, now: datetime) -> list[str]:
        """Why a car would find no image repository entry for what ``plan`` installs (empty:
        none missing). With published targets each package on its hardware number must be
        listed, with the catalog's length and hash; they must not have expired."""
        unservable = self._unservable(state)
        if unservable:
            return unservable
        published = state.published
        if published is None:
            return []
        signed = published.metadata.signed
        if signed.is_expired(now):
            return [
                f"the published image targets v{published.version} expired at "
                f"{signed.expires.isoformat()}: sign and publish a new version"
            ]
        missing = []
        for target in plan.targets:
            for package in target.packages:
                name = image_name(package, target.hardware_number)
                entry = signed.targets.get(name)
                if entry is None:
                    missing.append(
                        f"{package.name} {package.version} for hardware "
                        f"{target.hardware_number} ({name}) is not in the published image "
                        f"targets v{published.version}"
                    )
                elif entry.length != package.size or entry.hashes.get("sha256") != package.sha256:
                    missing.append(
                        f"{name} differs between the catalog and the published image targets "
                        f"v{published.version} (length or SHA-256)"
                    )
        return missing

    def roots(self) -> dict[str, Metadata[Root]]:
        """The newest root of each repository: what the factory pins in a new car.

        A car pinned at an older root (v1 from ``init-keys``) still verifies every bundle: each
        one carries the root chain from v2 on (see :class:`SigningKeys`)."""
        return {"director": self.director.root, "image": self.images.root}

    def root_bytes(self) -> dict[str, bytes]:
        return {name: canonical_bytes(md.to_dict()) for name, md in self.roots().items()}

    def _image_target(
        self, package: SoftwarePackage, hardware_number: str, state: ImageState
    ) -> TargetFile:
        name = image_name(package, hardware_number)
        if state.published is not None:
            return state.published.metadata.signed.targets[name]  # checked: missing_images
        found = self.images.targets.targets.get(name)
        if found is not None:
            return found
        target = image_target(package, hardware_number)
        self.images.targets.targets[name] = target
        self._dirty = True
        return target

    def image_metadata(self, now: datetime, state: ImageState | None = None) -> TopLevelMetadata:
        """The image repository's metadata as bundles carry it now (``state``: read if omitted).

        Raises :class:`ImageNotPublished` when there is none to serve (the newest published
        version does not verify, or nothing is published and no image targets key is held)."""
        state = state if state is not None else self.image_state()
        unservable = self._unservable(state)
        if unservable:
            raise ImageNotPublished("image repository", unservable)
        with self._lock:
            return self._image_metadata(now, state)

    def _image_metadata(self, now: datetime, state: ImageState) -> TopLevelMetadata:
        validity = self._keys.metadata_validity
        if state.published is not None:
            return self._published_metadata(now, state.published)
        stale = (
            self._image_md is None
            or self._image_md_expires is None
            or self._image_md_expires - now < validity / 2
        )
        if self._dirty or stale:
            expires = now + validity
            self._image_md = self.images.publish_images(expires)
            self._image_md_expires = expires
            self._dirty = False
        assert self._image_md is not None
        return self._image_md

    def _published_metadata(
        self, now: datetime, published: PublishedImageTargets
    ) -> TopLevelMetadata:
        """Snapshot and timestamp signed here over the published targets, re-signed when a new
        version is published or they pass half their validity."""
        validity = self._keys.metadata_validity
        served = self._served
        if served is None or served[0] != published.version or served[2] - now < validity / 2:
            expires = now + validity
            md = self.images.publish_signed_targets(published.metadata, published.envelope, expires)
            self._served = served = (published.version, md, expires)
        return served[1]

    def sign(
        self,
        plan: ActivationPlan,
        vehicle: Vehicle,
        *,
        freshness: Freshness,
        activation_counter: int,
        feature_until: Mapping[str, datetime | None],
        feature_requires: Mapping[str, frozenset[str]],
        consent: Mapping[str, Any],
        now: datetime,
        expires: datetime,
        images: ImageState | None = None,
    ) -> bytes:
        """The canonical bundle bytes for ``plan`` (every ECU target, image and feature grant).

        ``feature_until`` bounds each grant by its entitlement and must name every granted
        feature (``None``: perpetual, as :func:`forecourt.cloud.grants.grant_terms` decides);
        a feature it leaves out raises :class:`GrantValidityMissing` before anything is signed.
        ``feature_requires`` names the option codes the car re-checks before unlocking.
        ``images`` is what :meth:`image_state` returned when the plan was checked (read now if
        omitted); an image it lacks raises :class:`ImageNotPublished` before anything is signed.
        """
        state = images if images is not None else self.image_state()
        missing_images = self.missing_images(plan, state, now)
        if missing_images:
            _log.warning("image_not_published", vin=str(plan.vin), reasons=missing_images)
            raise ImageNotPublished(str(plan.vin), missing_images)
        granted = {code for target in plan.targets for code in target.features}
        missing = frozenset(granted - set(feature_until))
        if missing:
            raise GrantValidityMissing(str(plan.vin), missing)
        compliance = to_json(plan.targets[0].compliance) if plan.targets else {}
        builder = BundleBuilder(
            str(plan.vin),
            freshness,
            activation_counter,
            compliance=compliance if isinstance(compliance, dict) else {},
            consent=consent,
        )
        horizon = now + PERPETUAL_GRANT
        with self._lock:
            for target in plan.targets:
                ecu = vehicle.ecu(target.role)
                assert ecu is not None  # the plan only targets fitted ECUs
                builder.add_ecu(target.serial, target.hardware_number, ecu.sealing_public_key)
                for package in target.packages:
                    builder.add_image(
                        target.serial,
                        self._image_target(package, target.hardware_number, state),
                    )
                for code in target.features:
                    until = feature_until[code] or horizon
                    builder.add_feature(
                        FeatureGrant(
                            code,
                            str(plan.vin),
                            target.serial,
                            now,
                            until,
                            feature_requires.get(code, frozenset()),
                        )
                    )
            return builder.build(self.director, self._image_metadata(now, state), expires)
