"""The car's verifier: pure, all-or-nothing, one typed refusal per reason.

``verify_bundle(bundle_bytes, car, now)`` is what the gateway (Uptane primary, 0x1000) runs before
anything is written. It reads nothing but its arguments and changes nothing: on success it returns
a :class:`VerifiedActivation` (what to apply, and ``next_state()`` — the state the car persists
after applying); on refusal it raises exactly one :class:`~forecourt.trust.errors.BundleError`.

Order of checks (the first failure is the one reported):

1. size bound on the raw bytes, before parsing (``EndlessData``); canonical JSON, known format,
   no unknown envelope fields, bounded counts (``BundleFormatError``/``EndlessData``);
2. per repository (director, image): root chain from the pinned root, each N→N+1 signed by the
   old and the new root's thresholds (``RootRotationInvalid``); final root not expired;
3. timestamp → snapshot → targets: thresholds (``SignatureThresholdNotMet``), none below the
   version the car last accepted for that role of that repository (``RollbackAttempt``; equal is
   accepted, the image repository's metadata serves many activations), versions consistent,
   none expired at the car's trusted ``now`` (``MetadataExpired``); an offline director bundle
   instead needs the threshold of the root's offline role, and its targets version is floored
   apart from the online targets' (role ``offline``);
4. the director's ``activation``: VIN (``ForeignVin``); freshness — the issued nonce
   (``ReplayedNonce``) and an activation counter above the last one (``RollbackAttempt``), or an
   offline counter above the stored one (``OfflineCounterReused``) inside a window that has
   started, not ended and is no longer than the root allows (``OfflineWindowInvalid``);
5. per ECU: the serial exists (``ForeignEcu``), hardware number matches (``HardwareIdMismatch``);
   each director target is in the image repository (``PartialBundle``) with the same length,
   hashes, hardware id and release counter (``MixAndMatch``); release counter not below the
   installed one (``RollbackAttempt``); features bound to VIN/ECU with fitted hardware
   (``FeatureWithoutHardware``), not already past their validity at ``now``
   (``FeatureValidityExpired``; a grant whose start lies ahead is accepted and applied dormant).

Images are checked as they stream, separately: :func:`verify_image` stops reading at the signed
length.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from forecourt.logging import get_logger
from forecourt.trust._sslib import (
    Metadata,
    Root,
    Signed,
    Snapshot,
    Targets,
    Timestamp,
    UnverifiedSignatureError,
    VerificationError,
)
from forecourt.trust.canonical import canonical_bytes, parse_bounded
from forecourt.trust.errors import (
    BundleError,
    BundleFormatError,
    EndlessData,
    FeatureValidityExpired,
    FeatureWithoutHardware,
    ForeignEcu,
    ForeignVin,
    HardwareIdMismatch,
    ImageHashMismatch,
    ImageLengthMismatch,
    MetadataExpired,
    MixAndMatch,
    OfflineCounterReused,
    OfflineWindowInvalid,
    PartialBundle,
    ReplayedNonce,
    RollbackAttempt,
    RootRotationInvalid,
    SealedSecretError,
    SignatureThresholdNotMet,
)
from forecourt.trust.model import (
    ACTIVATION_FIELD,
    BUNDLE_FORMAT,
    MAX_BUNDLE_BYTES,
    MAX_ECUS,
    MAX_FEATURES_PER_ECU,
    MAX_ROOT_CHAIN,
    MAX_SECRET_BYTES,
    MAX_SECRETS_PER_ECU,
    MAX_TARGETS,
    OFFLINE_ROLE_FIELD,
    FeatureGrant,
    Freshness,
    ImageTarget,
    NonceFreshness,
    OfflineFreshness,
)

_log = get_logger("trust.verifier")
_S = TypeVar("_S", Root, Timestamp, Snapshot, Targets)

__all__ = [
    "CarTrustState",
    "EcuTrustState",
    "MetadataVersions",
    "VerifiedActivation",
    "VerifiedEcu",
    "open_secrets",
    "verify_bundle",
    "verify_image",
]


@dataclass(frozen=True)
class EcuTrustState:
    """What the car knows about one of its ECUs (factory provisioning + last apply)."""

    serial: str
    hardware_id: str
    role: str
    installed_image: str = ""
    installed_version: str = ""
    release_counter: int = 0


@dataclass(frozen=True)
class MetadataVersions:
    """The highest version the car accepted, per role, of one repository (0: none yet).

    TUF's rollback floor (specification §5.4-5.6): a role's metadata older than what the car
    already accepted is refused even while its signatures and expiry still hold, so a captured
    older bundle set cannot be replayed once a newer one was applied. ``offline`` is the director
    root's offline role, whose targets are numbered apart from the online role's.
    """

    timestamp: int = 0
    snapshot: int = 0
    targets: int = 0
    offline: int = 0

    def raised_to(self, seen: MetadataVersions) -> MetadataVersions:
        """Each role's floor raised to what a verified bundle carried (never lowered)."""
        return MetadataVersions(
            max(self.timestamp, seen.timestamp),
            max(self.snapshot, seen.snapshot),
            max(self.targets, seen.targets),
            max(self.offline, seen.offline),
        )

    def reset(self, roles: Iterable[str]) -> MetadataVersions:
        """Floors of ``roles`` back to 0: their keys were rotated (TUF §5.3.11, fast-forward
        recovery: metadata a compromised key signed far ahead must not block the new key)."""
        return replace(self, **dict.fromkeys(roles, 0))


@dataclass(frozen=True)
class CarTrustState:
    """The car's persisted trust state; immutable, replaced as a whole after a successful apply.

    ``director_root``/``image_root`` are the canonical bytes of the pinned root metadata.
    """

    vin: str
    director_root: bytes
    image_root: bytes
    ecus: tuple[EcuTrustState, ...]
    factory_options: frozenset[str] = frozenset()
    issued_nonces: frozenset[str] = frozenset()
    last_offline_counter: int = 0
    last_activation_counter: int = 0
    director_versions: MetadataVersions = MetadataVersions()
    image_versions: MetadataVersions = MetadataVersions()

    def ecu(self, serial: str) -> EcuTrustState | None:
        return next((e for e in self.ecus if e.serial == serial), None)


@dataclass(frozen=True)
class VerifiedEcu:
    serial: str
    hardware_id: str
    images: tuple[ImageTarget, ...]
    features: tuple[FeatureGrant, ...]
    sealed_secrets: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifiedActivation:
    """What a verified bundle tells the car to apply, all ECUs together."""

    vin: str
    freshness: Freshness
    activation_counter: int
    ecus: tuple[VerifiedEcu, ...]
    compliance: Mapping[str, Any]
    consent: Mapping[str, Any]
    director_root: bytes
    image_root: bytes
    director_versions: MetadataVersions = MetadataVersions()
    """The car's director floors after this bundle (rotations applied, raised to its versions)."""
    image_versions: MetadataVersions = MetadataVersions()

    def ecu(self, serial: str) -> VerifiedEcu:
        for ecu in self.ecus:
            if ecu.serial == serial:
                return ecu
        raise KeyError(serial)

    def next_state(self, car: CarTrustState) -> CarTrustState:
        """The state to persist once every ECU has applied (nonce spent, counters raised)."""
        ecus = []
        for ecu in car.ecus:
            verified = next((v for v in self.ecus if v.serial == ecu.serial), None)
            if verified and verified.images:
                image = verified.images[-1]
                ecus.append(
                    replace(
                        ecu,
                        installed_image=image.image,
                        installed_version=image.version,
                        release_counter=image.release_counter,
                    )
                )
            else:
                ecus.append(ecu)
        nonces = car.issued_nonces
        offline = car.last_offline_counter
        counter = car.last_activation_counter
        if isinstance(self.freshness, NonceFreshness):
            nonces = nonces - {self.freshness.nonce}
            counter = self.activation_counter
        else:
            offline = self.freshness.counter
        return replace(
            car,
            director_root=self.director_root,
            image_root=self.image_root,
            ecus=tuple(ecus),
            issued_nonces=nonces,
            last_offline_counter=offline,
            last_activation_counter=counter,
            director_versions=self.director_versions,
            image_versions=self.image_versions,
        )


def _refuse(error: BundleError) -> BundleError:
    _log.warning("bundle_refused", code=error.code, nrc=hex(error.nrc), reason=str(error))
    return error


def _metadata(obj: Any, cls: type[_S], what: str) -> Metadata[_S]:
    if not isinstance(obj, dict):
        raise BundleFormatError(f"{what} missing or not an object")
    try:
        md = Metadata[_S].from_dict(dict(obj))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleFormatError(f"{what} is not valid TUF metadata: {exc}") from exc
    if not isinstance(md.signed, cls):
        raise BundleFormatError(f"{what} has type {md.signed.type}, expected {cls.type}")
    return md


def _check_delegate(
    delegator: Root, role: str, md: Metadata[Any], what: str, error: type[BundleError]
) -> None:
    result = delegator.get_verification_result(role, md.signed_bytes, md.signatures)
    if not result:
        raise error(
            f"{what}: {len(result.signed)} of {result.threshold} required signatures valid",
            signed=len(result.signed),
            threshold=result.threshold,
        )


def _not_expired(signed: Signed, what: str, now: datetime) -> None:
    if signed.is_expired(now):
        raise MetadataExpired(f"{what} expired at {signed.expires.isoformat()}", role=what)


def _role_keys(root: Root, role: str) -> frozenset[str]:
    if role == "offline":
        offline = root.unrecognized_fields.get(OFFLINE_ROLE_FIELD)
        keyids = offline.get("keyids", []) if isinstance(offline, dict) else []
        return frozenset(k for k in keyids if isinstance(k, str))
    found = root.roles.get(role)
    return frozenset(found.keyids) if found is not None else frozenset()


def _rotated_roles(pinned: Root, final: Root) -> list[str]:
    """Roles whose keys differ between the pinned root and the root the chain ends at."""
    roles = ("timestamp", "snapshot", "targets", "offline")
    return [r for r in roles if _role_keys(pinned, r) != _role_keys(final, r)]


def _root_chain(pinned: bytes, chain: Any, repo: str, now: datetime) -> tuple[Root, Metadata[Root]]:
    """The root the chain ends at (each step N→N+1 checked), with the pinned one it began at."""
    trusted = _metadata(parse_bounded(pinned, MAX_BUNDLE_BYTES, "pinned root"), Root, "root")
    first = trusted.signed
    if not isinstance(chain, list):
        raise BundleFormatError(f"{repo} root chain must be a list")
    if len(chain) > MAX_ROOT_CHAIN:
        raise EndlessData(f"{repo} root chain longer than {MAX_ROOT_CHAIN}")
    for index, obj in enumerate(chain):
        new = _metadata(obj, Root, f"{repo} root[{index}]")
        if new.signed.version <= trusted.signed.version:
            continue  # already pinned: the chain starts at v2, the car may be further on
        if new.signed.version != trusted.signed.version + 1:
            raise RootRotationInvalid(
                f"{repo} root v{new.signed.version} does not follow v{trusted.signed.version}"
            )
        what = f"{repo} root v{new.signed.version}"
        _check_delegate(trusted.signed, "root", new, f"{what} (old keys)", RootRotationInvalid)
        _check_delegate(new.signed, "root", new, f"{what} (new keys)", RootRotationInvalid)
        trusted = new
    _not_expired(trusted.signed, f"{repo} root", now)
    return first, trusted


@dataclass(frozen=True)
class _Repo:
    root: Metadata[Root]
    targets: Targets
    versions: MetadataVersions


def _floors(pinned: Root, root: Root, stored: MetadataVersions) -> MetadataVersions:
    """The floors that apply under ``root``: the stored ones, reset for rotated roles."""
    if root.version == pinned.version:
        return stored
    return stored.reset(_rotated_roles(pinned, root))


def _not_rolled_back(signed: Signed, floor: int, what: str) -> None:
    if signed.version < floor:
        raise RollbackAttempt(
            f"{what} version {signed.version} below the accepted {floor}",
            role=what,
            version=signed.version,
            stored=floor,
        )


def _online_repo(
    section: Mapping[str, Any],
    root: Metadata[Root],
    repo: str,
    now: datetime,
    floors: MetadataVersions,
) -> _Repo:
    timestamp = _metadata(section.get("timestamp"), Timestamp, f"{repo} timestamp")
    snapshot = _metadata(section.get("snapshot"), Snapshot, f"{repo} snapshot")
    targets = _metadata(section.get("targets"), Targets, f"{repo} targets")
    for name, md in (("timestamp", timestamp), ("snapshot", snapshot), ("targets", targets)):
        _check_delegate(root.signed, name, md, f"{repo} {name}", SignatureThresholdNotMet)
    _not_rolled_back(timestamp.signed, floors.timestamp, f"{repo} timestamp")
    _not_rolled_back(snapshot.signed, floors.snapshot, f"{repo} snapshot")
    _not_rolled_back(targets.signed, floors.targets, f"{repo} targets")
    if snapshot.signed.version != timestamp.signed.snapshot_meta.version:
        raise MixAndMatch(f"{repo} snapshot version differs from the timestamp's")
    meta = snapshot.signed.meta.get("targets.json")
    if meta is None or meta.version != targets.signed.version:
        raise MixAndMatch(f"{repo} targets version differs from the snapshot's")
    for name, md in (("timestamp", timestamp), ("snapshot", snapshot), ("targets", targets)):
        _not_expired(md.signed, f"{repo} {name}", now)
    if targets.signed.delegations is not None:
        raise BundleFormatError(f"{repo} targets must not delegate")
    seen = MetadataVersions(
        timestamp.signed.version, snapshot.signed.version, targets.signed.version
    )
    return _Repo(root, targets.signed, floors.raised_to(seen))


def _offline_director(
    section: Mapping[str, Any], root: Metadata[Root], now: datetime, floors: MetadataVersions
) -> _Repo:
    targets = _metadata(section.get("targets"), Targets, "director targets")
    role = root.signed.unrecognized_fields.get(OFFLINE_ROLE_FIELD)
    if not isinstance(role, dict):
        raise SignatureThresholdNotMet("director root has no offline role")
    keyids = [k for k in role.get("keyids", []) if isinstance(k, str)]
    threshold = role.get("threshold")
    if not isinstance(threshold, int) or threshold < 1:
        raise SignatureThresholdNotMet("offline role threshold invalid")
    valid = set()
    for keyid in set(keyids):
        key = root.signed.keys.get(keyid)
        sig = targets.signatures.get(keyid)
        if key is None or sig is None:
            continue
        try:
            key.verify_signature(sig, targets.signed_bytes)
        except (UnverifiedSignatureError, VerificationError):
            continue
        valid.add(keyid)
    if len(valid) < threshold:
        raise SignatureThresholdNotMet(
            f"offline director targets: {len(valid)} of {threshold} required signatures valid",
            signed=len(valid),
            threshold=threshold,
        )
    _not_rolled_back(targets.signed, floors.offline, "director offline targets")
    _not_expired(targets.signed, "director targets", now)
    if targets.signed.delegations is not None:
        raise BundleFormatError("director targets must not delegate")
    return _Repo(
        root, targets.signed, floors.raised_to(MetadataVersions(offline=targets.signed.version))
    )


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise BundleFormatError(f"{what} must be a time string")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise BundleFormatError(f"{what} is not an RFC 3339 UTC time") from exc


def _freshness(obj: Any) -> Freshness:
    if not isinstance(obj, dict):
        raise BundleFormatError("activation freshness missing")
    if obj.get("kind") == "nonce" and isinstance(obj.get("nonce"), str):
        return NonceFreshness(obj["nonce"])
    if obj.get("kind") == "offline" and isinstance(obj.get("counter"), int):
        return OfflineFreshness(
            obj["counter"],
            _time(obj.get("not_before"), "offline not_before"),
            _time(obj.get("not_after"), "offline not_after"),
        )
    raise BundleFormatError("activation freshness is neither a nonce nor an offline counter")


def _check_freshness(
    freshness: Freshness, counter: int, car: CarTrustState, root: Root, now: datetime
) -> None:
    if isinstance(freshness, NonceFreshness):
        if freshness.nonce not in car.issued_nonces:
            raise ReplayedNonce("nonce was not issued by this car or was already used")
        if counter <= car.last_activation_counter:
            raise RollbackAttempt(
                f"activation counter {counter} not above {car.last_activation_counter}",
                counter=counter,
                stored=car.last_activation_counter,
            )
        return
    if freshness.counter <= car.last_offline_counter:
        raise OfflineCounterReused(
            f"offline counter {freshness.counter} not above {car.last_offline_counter}",
            counter=freshness.counter,
            stored=car.last_offline_counter,
        )
    role = root.unrecognized_fields.get(OFFLINE_ROLE_FIELD, {})
    max_window = timedelta(seconds=int(role.get("max_window_seconds", 0)))
    if freshness.not_after - freshness.not_before > max_window:
        raise OfflineWindowInvalid(f"offline window longer than {max_window}")
    if not freshness.not_before <= now <= freshness.not_after:
        raise OfflineWindowInvalid(
            f"offline window {freshness.not_before:%Y-%m-%dT%H:%MZ}.."
            f"{freshness.not_after:%Y-%m-%dT%H:%MZ} does not contain now"
        )


def _feature(obj: Any, vin: str, serial: str, car: CarTrustState, now: datetime) -> FeatureGrant:
    if not isinstance(obj, dict) or not isinstance(obj.get("feature"), str):
        raise BundleFormatError(f"feature token for ECU {serial} malformed")
    requires = obj.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise BundleFormatError("feature requires must be a list of option codes")
    grant = FeatureGrant(
        feature=obj["feature"],
        vin=str(obj.get("vin")),
        ecu_serial=str(obj.get("ecu_serial")),
        not_before=_time(obj.get("not_before"), "feature not_before"),
        not_after=_time(obj.get("not_after"), "feature not_after"),
        requires=frozenset(requires),
    )
    if grant.vin != vin:
        raise ForeignVin(f"feature {grant.feature} is bound to another VIN")
    if grant.ecu_serial != serial:
        raise ForeignEcu(f"feature {grant.feature} is bound to another ECU serial")
    missing = grant.requires - car.factory_options
    if missing:
        raise FeatureWithoutHardware(
            f"feature {grant.feature} needs hardware {sorted(missing)} not fitted",
            feature=grant.feature,
            missing=sorted(missing),
        )
    if grant.not_after <= grant.not_before:
        raise BundleFormatError(f"feature {grant.feature} validity is empty")
    if now >= grant.not_after:
        raise FeatureValidityExpired(
            f"feature {grant.feature} was valid until {grant.not_after:%Y-%m-%dT%H:%MZ}",
            feature=grant.feature,
        )
    return grant


def _custom(target: Any) -> dict[str, Any]:
    custom = target.unrecognized_fields.get("custom")
    return custom if isinstance(custom, dict) else {}


def _images_for(
    serial: str, director: Targets, image: Targets, ecu: Any
) -> tuple[ImageTarget, ...]:
    out = []
    for path, target in sorted(director.targets.items()):
        custom = _custom(target)
        if custom.get("ecuIdentifier") != serial:
            continue
        if custom.get("hardwareId") != ecu.hardware_id:
            raise HardwareIdMismatch(
                f"director target {path} is for hardware {custom.get('hardwareId')!r}, "
                f"ECU {serial} is {ecu.hardware_id!r}"
            )
        name = custom.get("image")
        if not isinstance(name, str) or name not in image.targets:
            raise PartialBundle(
                f"image repository metadata for {path} (ECU {serial}) is missing",
                ecu_serial=serial,
            )
        entry = image.targets[name]
        ecustom = _custom(entry)
        counter = custom.get("releaseCounter")
        if (
            entry.length != target.length
            or entry.hashes != target.hashes
            or ecustom.get("hardwareId") != custom.get("hardwareId")
            or ecustom.get("releaseCounter") != counter
        ):
            raise MixAndMatch(
                f"director's choice for {path} differs from the image repository",
                ecu_serial=serial,
            )
        if not isinstance(counter, int) or counter < ecu.release_counter:
            raise RollbackAttempt(
                f"ECU {serial}: release counter {counter} below installed {ecu.release_counter}",
                ecu_serial=serial,
            )
        out.append(
            ImageTarget(
                ecu_serial=serial,
                image=name,
                length=target.length,
                hashes=dict(target.hashes),
                hardware_id=ecu.hardware_id,
                release_counter=counter,
                version=str(custom.get("version", "")),
            )
        )
    return tuple(out)


def _ecus(
    activation: Mapping[str, Any],
    director: Targets,
    image: Targets,
    car: CarTrustState,
    now: datetime,
) -> tuple[VerifiedEcu, ...]:
    declared = activation.get("ecus")
    if not isinstance(declared, dict):
        raise BundleFormatError("activation ecus must be an object")
    if len(declared) > MAX_ECUS or len(director.targets) > MAX_TARGETS:
        raise EndlessData("too many ECUs or targets in one activation")
    for path, target in director.targets.items():
        if _custom(target).get("ecuIdentifier") not in declared:
            raise PartialBundle(f"director target {path} names an ECU outside the activation")
    vin = car.vin
    result = []
    for serial, part in sorted(declared.items()):
        ecu = car.ecu(serial)
        if ecu is None:
            raise ForeignEcu(f"ECU serial {serial} is not in this vehicle", ecu_serial=serial)
        if not isinstance(part, dict):
            raise BundleFormatError(f"activation part for ECU {serial} malformed")
        if part.get("hardware_id") != ecu.hardware_id:
            raise HardwareIdMismatch(f"ECU {serial} hardware number differs")
        features_raw = part.get("features", [])
        secrets_raw = part.get("secrets", {})
        if not isinstance(features_raw, list) or not isinstance(secrets_raw, dict):
            raise BundleFormatError(f"activation part for ECU {serial} malformed")
        if len(features_raw) > MAX_FEATURES_PER_ECU or len(secrets_raw) > MAX_SECRETS_PER_ECU:
            raise EndlessData(f"too many features or secrets for ECU {serial}")
        sealed: dict[str, bytes] = {}
        for name, value in secrets_raw.items():
            if not isinstance(value, str) or len(value) > MAX_SECRET_BYTES:
                raise BundleFormatError(f"sealed secret {name} for ECU {serial} malformed")
            try:
                sealed[name] = base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise BundleFormatError(f"sealed secret {name} is not base64") from exc
        result.append(
            VerifiedEcu(
                serial=serial,
                hardware_id=ecu.hardware_id,
                images=_images_for(serial, director, image, ecu),
                features=tuple(_feature(f, vin, serial, car, now) for f in features_raw),
                sealed_secrets=sealed,
            )
        )
    return tuple(result)


_ENVELOPE_FIELDS = {"format", "director", "image"}


def _verify(bundle: bytes, car: CarTrustState, now: datetime) -> VerifiedActivation:
    obj = parse_bounded(bundle, MAX_BUNDLE_BYTES, "bundle")
    if obj.get("format") != BUNDLE_FORMAT:
        raise BundleFormatError(f"unknown bundle format {obj.get('format')!r}")
    unknown = set(obj) - _ENVELOPE_FIELDS
    if unknown:
        raise BundleFormatError(f"unknown bundle fields {sorted(unknown)}")
    director_section, image_section = obj.get("director"), obj.get("image")
    if not isinstance(director_section, dict) or not isinstance(image_section, dict):
        raise BundleFormatError("bundle needs director and image sections")

    director_pinned, director_root = _root_chain(
        car.director_root, director_section.get("root"), "director", now
    )
    image_pinned, image_root = _root_chain(car.image_root, image_section.get("root"), "image", now)
    image_floors = _floors(image_pinned, image_root.signed, car.image_versions)
    director_floors = _floors(director_pinned, director_root.signed, car.director_versions)
    image = _online_repo(image_section, image_root, "image", now, image_floors)
    offline = director_section.get("timestamp") is None
    if offline:
        director = _offline_director(director_section, director_root, now, director_floors)
    else:
        director = _online_repo(director_section, director_root, "director", now, director_floors)

    activation = director.targets.unrecognized_fields.get(ACTIVATION_FIELD)
    if not isinstance(activation, dict):
        raise BundleFormatError("director targets carry no activation")
    if activation.get("vin") != car.vin:
        raise ForeignVin("bundle is bound to another VIN")
    freshness = _freshness(activation.get("freshness"))
    if offline != isinstance(freshness, OfflineFreshness):
        raise SignatureThresholdNotMet("freshness kind does not match the signing role")
    counter = activation.get("activation_counter")
    if not isinstance(counter, int):
        raise BundleFormatError("activation counter missing")
    _check_freshness(freshness, counter, car, director_root.signed, now)
    ecus = _ecus(activation, director.targets, image.targets, car, now)
    compliance, consent = activation.get("compliance", {}), activation.get("consent", {})
    if not isinstance(compliance, dict) or not isinstance(consent, dict):
        raise BundleFormatError("compliance and consent must be objects")
    return VerifiedActivation(
        vin=car.vin,
        freshness=freshness,
        activation_counter=counter,
        ecus=ecus,
        compliance=compliance,
        consent=consent,
        director_root=canonical_bytes(director_root.to_dict()),
        image_root=canonical_bytes(image_root.to_dict()),
        director_versions=director.versions,
        image_versions=image.versions,
    )


def verify_bundle(bundle: bytes, car: CarTrustState, now: datetime) -> VerifiedActivation:
    """Verify a whole bundle for ``car`` at the car's trusted time ``now``.

    Raises exactly one :class:`BundleError`; returns what to apply across all ECUs.
    """
    try:
        verified = _verify(bundle, car, now)
    except BundleError as error:
        raise _refuse(error) from error.__cause__
    _log.info("bundle_verified", vin=car.vin, ecus=[e.serial for e in verified.ecus])
    return verified


def verify_image(target: ImageTarget, chunks: Iterable[bytes]) -> None:
    """Check a streamed image against its signed length and SHA-256, reading no further.

    Stops consuming ``chunks`` as soon as more than ``target.length`` bytes arrived (endless
    data), so a hostile sender cannot make the ECU read or buffer without bound.
    """
    expected = target.hashes.get("sha256")
    if expected is None:
        raise _refuse(ImageHashMismatch(f"{target.image}: no sha256 in signed metadata"))
    digest = hashlib.sha256()
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > target.length:
            raise _refuse(
                EndlessData(
                    f"{target.image}: more than the signed {target.length} bytes",
                    image=target.image,
                )
            )
        digest.update(chunk)
    if seen != target.length:
        raise _refuse(
            ImageLengthMismatch(f"{target.image}: {seen} of {target.length} bytes", seen=seen)
        )
    if digest.hexdigest() != expected:
        raise _refuse(ImageHashMismatch(f"{target.image}: SHA-256 differs", image=target.image))


def open_secrets(
    verified: VerifiedActivation, ecu_serial: str, sealing_private_key: bytes
) -> dict[str, bytes]:
    """Open the secrets sealed to ``ecu_serial`` with that ECU's X25519 private key."""
    box = SealedBox(PrivateKey(sealing_private_key))
    out = {}
    for name, sealed in verified.ecu(ecu_serial).sealed_secrets.items():
        try:
            out[name] = box.decrypt(sealed)
        except CryptoError as exc:
            raise _refuse(
                SealedSecretError(f"secret {name} is not sealed to ECU {ecu_serial}")
            ) from exc
    return out
