"""The activation bundle's vocabulary, shared by the issuer and the car's verifier.

A bundle (``format: forecourt.bundle/1``) is one canonical JSON object the edge carries to a car::

    {"format": "forecourt.bundle/1",
     "director": {"root": [root v2.., signed], "timestamp": …|null, "snapshot": …|null,
                  "targets": …},
     "image":    {"root": […], "timestamp": …, "snapshot": …, "targets": …}}

Everything the car acts on is inside signed TUF metadata. The director's targets carry, per
target, the Uptane custom fields (``ecuIdentifier``, ``hardwareId``, ``releaseCounter``,
``image``) and, as an extra signed field ``activation``, what this one activation does: VIN,
freshness (the car's nonce, or an offline counter with a validity window), per ECU the feature
unlock tokens and the secrets sealed to that ECU's X25519 key, the compliance configuration and
the consent settings. See docs/adr/0001-activation-bundle-format.md for why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

BUNDLE_FORMAT = "forecourt.bundle/1"
ACTIVATION_FIELD = "activation"
OFFLINE_ROLE_FIELD = "forecourt_offline_role"

MAX_BUNDLE_BYTES = 1_048_576
"""Upper bound of a whole bundle, checked before parsing (10 ECUs of real data is ~30 KB)."""
MAX_ROOT_CHAIN = 16
MAX_ECUS = 64
MAX_TARGETS = 256
MAX_FEATURES_PER_ECU = 64
MAX_SECRETS_PER_ECU = 32
MAX_SECRET_BYTES = 4096
MAX_IMAGE_BYTES = 8 * 1024**3

__all__ = [
    "ACTIVATION_FIELD",
    "BUNDLE_FORMAT",
    "MAX_BUNDLE_BYTES",
    "FeatureGrant",
    "Freshness",
    "ImageTarget",
    "NonceFreshness",
    "OfflineFreshness",
]


@dataclass(frozen=True)
class ImageTarget:
    """One image an ECU must install: what ``verify_image`` checks the streamed bytes against."""

    ecu_serial: str
    image: str
    length: int
    hashes: Mapping[str, str]
    hardware_id: str
    release_counter: int
    version: str


@dataclass(frozen=True)
class FeatureGrant:
    """A feature unlock token: bound to VIN, ECU serial, feature and validity."""

    feature: str
    vin: str
    ecu_serial: str
    not_before: datetime
    not_after: datetime
    requires: frozenset[str] = field(default_factory=frozenset)

    def to_dict(self) -> dict[str, object]:
        return {
            "feature": self.feature,
            "vin": self.vin,
            "ecu_serial": self.ecu_serial,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "requires": sorted(self.requires),
        }


@dataclass(frozen=True)
class NonceFreshness:
    """Online activation: the bundle carries the nonce the car issued (DID FD00)."""

    nonce: str
    kind: Literal["nonce"] = "nonce"

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "nonce": self.nonce}


@dataclass(frozen=True)
class OfflineFreshness:
    """Offline package: single-use counter above the car's stored one, short validity window."""

    counter: int
    not_before: datetime
    not_after: datetime
    kind: Literal["offline"] = "offline"

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "counter": self.counter,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
        }


Freshness = NonceFreshness | OfflineFreshness


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
