"""Turning an :class:`ActivationPlan` into a signed bundle with the trust layer's repositories.

The image repository lists every package version per hardware number (Uptane: the image's
``hardwareId`` must equal the director's choice for the ECU), re-signed only when a new image
appears or its metadata passes half its validity, so an activation costs one director signing
(targets, snapshot, timestamp), not four. Signing is serialised by a lock: the repositories keep
version counters that two threads must not interleave.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from forecourt.cloud.config import SigningKeys
from forecourt.core import ActivationPlan, SoftwarePackage, Vehicle, to_json
from forecourt.trust._sslib import Metadata, Root, TargetFile
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.issuer import BundleBuilder, ImageRepository, Repository, TopLevelMetadata
from forecourt.trust.model import FeatureGrant, Freshness


def release_counter(package: SoftwarePackage) -> int:
    """A monotonic Uptane release counter from the SemVer precedence of releases."""
    v = package.version
    return v.major * 1_000_000 + v.minor * 1_000 + v.patch


#: How far a perpetual grant (an entitlement without an end, a standard feature) reaches: the car
#: needs a ``not_after``; only an explicit ``None`` in ``feature_until`` asks for it.
PERPETUAL_GRANT = timedelta(days=36500)


class GrantValidityMissing(ValueError):
    """A feature would be granted without the validity its entitlement gives it.

    Signing refuses rather than guess: a forgotten validity once became a 100-year grant."""

    def __init__(self, vin: str, features: frozenset[str]) -> None:
        self.vin, self.features = vin, features
        super().__init__(f"no validity given for feature(s) {', '.join(sorted(features))} of {vin}")


def image_name(package: SoftwarePackage, hardware_number: str) -> str:
    return f"{package.name}-{package.version}.{hardware_number}"


def metadata_version_clock() -> int:
    """Milliseconds since the epoch: metadata versions that keep rising after a restart and
    across replicas (cars refuse a lower timestamp/snapshot/targets version than they hold)."""
    return time.time_ns() // 1_000_000


class BundleSigner:
    """Director (online, and its offline role) and image repository of one cloud process."""

    def __init__(self, keys: SigningKeys) -> None:
        self._keys = keys
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

    def roots(self) -> dict[str, Metadata[Root]]:
        """The newest root of each repository: what the factory pins in a new car.

        A car pinned at an older root (v1 from ``init-keys``) still verifies every bundle: each
        one carries the root chain from v2 on (see :class:`SigningKeys`)."""
        return {"director": self.director.root, "image": self.images.root}

    def root_bytes(self) -> dict[str, bytes]:
        return {name: canonical_bytes(md.to_dict()) for name, md in self.roots().items()}

    def _image_target(self, package: SoftwarePackage, hardware_number: str) -> TargetFile:
        name = image_name(package, hardware_number)
        found = self.images.targets.targets.get(name)
        if found is not None:
            return found
        target = TargetFile(
            package.size,
            {"sha256": package.sha256},
            name,
            {
                "custom": {
                    "hardwareId": hardware_number,
                    "releaseCounter": release_counter(package),
                    "version": str(package.version),
                    "package": package.name,
                }
            },
        )
        self.images.targets.targets[name] = target
        self._dirty = True
        return target

    def _image_metadata(self, now: datetime) -> TopLevelMetadata:
        validity = self._keys.metadata_validity
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
    ) -> bytes:
        """The canonical bundle bytes for ``plan`` (every ECU target, image and feature grant).

        ``feature_until`` bounds each grant by its entitlement and must name every granted
        feature (``None``: perpetual, as :func:`forecourt.cloud.grants.grant_terms` decides);
        a feature it leaves out raises :class:`GrantValidityMissing` before anything is signed.
        ``feature_requires`` names the option codes the car re-checks before unlocking.
        """
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
                        target.serial, self._image_target(package, target.hardware_number)
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
            return builder.build(self.director, self._image_metadata(now), expires)
