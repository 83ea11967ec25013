"""The issuing side (the cloud): director and image repositories and the bundle builder.

The image repository is signed with offline keys and publishes what exists (image name, length,
hashes, hardware id, release counter). The director signs, on demand and with online keys, what
one car gets in one activation. Offline packages are signed by the director's narrowly scoped
offline role (listed in the director root under ``forecourt_offline_role``, own keys, single VIN,
single use, bounded window) and carry no timestamp/snapshot, so a car waiting on a lot for weeks
is not frozen out by a one-day online expiry.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nacl.public import PublicKey, SealedBox

from forecourt.trust import olpc
from forecourt.trust._sslib import (
    Metadata,
    MetaFile,
    Role,
    Root,
    SerializationError,
    Signed,
    SignedSerializer,
    Signer,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from forecourt.trust.keys import public_key_of
from forecourt.trust.model import (
    ACTIVATION_FIELD,
    BUNDLE_FORMAT,
    OFFLINE_ROLE_FIELD,
    FeatureGrant,
    Freshness,
    OfflineFreshness,
)

__all__ = [
    "BundleBuilder",
    "ImageRepository",
    "Repository",
    "RepositoryKeys",
    "RoleSigners",
    "RootChainInvalid",
    "RootKeysMismatch",
    "TopLevelMetadata",
    "bundle_bytes",
    "check_root_chain",
]


@dataclass(frozen=True)
class RoleSigners:
    """The signers of one role and how many of them must sign."""

    signers: Sequence[Signer]
    threshold: int = 1


@dataclass(frozen=True)
class RepositoryKeys:
    root: RoleSigners
    timestamp: RoleSigners
    snapshot: RoleSigners
    targets: RoleSigners
    offline: RoleSigners | None = None


@dataclass(frozen=True)
class TopLevelMetadata:
    """One repository's signed metadata as carried in a bundle.

    A published value: :meth:`Repository.publish` records the canonical bytes as they were
    signed, so a bundle carries them without encoding them again (the image repository's
    metadata goes unchanged into every bundle until the next publish). An instance built
    directly (or by :func:`dataclasses.replace`) encodes itself once, on first use.
    """

    roots: Sequence[Metadata[Root]]
    timestamp: Metadata[Timestamp] | None
    snapshot: Metadata[Snapshot] | None
    targets: Metadata[Targets]
    _canonical: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": [r.to_dict() for r in self.roots],
            "timestamp": self.timestamp.to_dict() if self.timestamp else None,
            "snapshot": self.snapshot.to_dict() if self.snapshot else None,
            "targets": self.targets.to_dict(),
        }

    def canonical(self) -> bytes:
        """Canonical JSON of :meth:`to_dict`, computed at most once per instance."""
        if self._canonical is None:
            object.__setattr__(self, "_canonical", olpc.encode(self.to_dict()))
        assert self._canonical is not None
        return self._canonical

    @classmethod
    def _published(
        cls,
        roots: Sequence[tuple[Metadata[Root], bytes]],
        timestamp: tuple[Metadata[Timestamp], bytes] | None,
        snapshot: tuple[Metadata[Snapshot], bytes] | None,
        targets: tuple[Metadata[Targets], bytes],
    ) -> TopLevelMetadata:
        """An instance whose canonical bytes are assembled from the envelopes just signed."""
        out = cls(
            [md for md, _ in roots],
            timestamp[0] if timestamp else None,
            snapshot[0] if snapshot else None,
            targets[0],
        )
        encoded = olpc.join_object(
            {
                "root": olpc.join_array(env for _, env in roots),
                "timestamp": timestamp[1] if timestamp else b"null",
                "snapshot": snapshot[1] if snapshot else b"null",
                "targets": targets[1],
            }
        )
        object.__setattr__(out, "_canonical", encoded)
        return out


class _EncodedOnce(SignedSerializer):
    """Canonical bytes of one ``Signed`` object, encoded on first use and reused.

    Every signer of a role signs the same bytes, and the envelope carries them, so encoding
    happens once per signed object instead of once per signature plus once for the bundle.
    """

    def __init__(self, signed: Signed) -> None:
        self._signed = signed
        self._payload: bytes | None = None

    def serialize(self, signed_obj: Signed) -> bytes:
        if signed_obj is not self._signed:
            raise SerializationError("serializer bound to another signed object")
        if self._payload is None:
            try:
                self._payload = olpc.encode(signed_obj.to_dict())
            except Exception as exc:  # same wrapping as tuf's CanonicalJSONSerializer
                raise SerializationError from exc
        return self._payload


_Signatures = tuple[tuple[str, str], ...]


def _signatures(md: Metadata[Any]) -> _Signatures:
    return tuple((keyid, sig.signature) for keyid, sig in md.signatures.items())


def _sign(md: Metadata[Any], signers: Sequence[Signer]) -> bytes:
    """Add every signer's signature to ``md``; return the canonical envelope bytes.

    The envelope is assembled around the very bytes that were signed; it equals the canonical
    encoding of ``md.to_dict()`` (tested against securesystemslib).
    """
    payload = _EncodedOnce(md.signed)
    for signer in signers:
        md.sign(signer, append=True, signed_serializer=payload)
    return _envelope(md, payload.serialize(md.signed))


def _envelope(md: Metadata[Any], signed: bytes) -> bytes:
    """Canonical JSON of ``md.to_dict()`` with the already encoded ``signed`` spliced in."""
    members = {
        "signatures": olpc.encode([sig.to_dict() for sig in md.signatures.values()]),
        "signed": signed,
    }
    # to_dict() spreads unrecognized fields last, so they win over the two above, as here.
    members.update({key: olpc.encode(value) for key, value in md.unrecognized_fields.items()})
    return olpc.join_object(members)


class RootKeysMismatch(ValueError):
    """Root metadata does not list a signer the repository would sign a role with."""

    def __init__(self, role: str, keyid: str) -> None:
        super().__init__(f"root metadata does not list key {keyid} for role {role}")
        self.role = role
        self.keyid = keyid


class RootChainInvalid(ValueError):
    """A root history that a car pinned at its first root would refuse (or could not follow)."""

    def __init__(self, message: str, version: int | None = None) -> None:
        super().__init__(message)
        self.version = version


def _root_signed_by(signer: Root, md: Metadata[Root], whose: str) -> None:
    result = signer.get_verification_result("root", md.signed_bytes, md.signatures)
    if not result:
        raise RootChainInvalid(
            f"root v{md.signed.version}: {len(result.signed)} of {result.threshold} "
            f"signatures of {whose} root keys valid",
            md.signed.version,
        )


def check_root_chain(roots: Sequence[Metadata[Root]]) -> None:
    """Check a root history, oldest first, the way a car pinned at its first root walks it.

    Each root must carry its own root role's threshold of signatures, and each root N+1 also
    the threshold of root N's keys (TUF §5.3.4), with versions rising by one: a history that
    breaks any of these would be refused by every car, so the cloud refuses to serve or extend
    it instead (:class:`RootChainInvalid`). Expiry is not checked: a car only needs the last
    root unexpired, and rotating is how an expiring root is renewed.
    """
    if not roots:
        raise RootChainInvalid("no root metadata")
    previous: Metadata[Root] | None = None
    for md in roots:
        if previous is not None:
            expected = previous.signed.version + 1
            if md.signed.version != expected:
                raise RootChainInvalid(
                    f"root v{md.signed.version} follows v{previous.signed.version}, "
                    f"expected v{expected}",
                    md.signed.version,
                )
            _root_signed_by(previous.signed, md, f"v{previous.signed.version}'s")
        _root_signed_by(md.signed, md, "its own")
        previous = md


def _check_online_keys(root: Metadata[Root], keys: RepositoryKeys) -> None:
    for name in ("timestamp", "snapshot", "targets"):
        role: RoleSigners = getattr(keys, name)
        listed = set(root.signed.roles[name].keyids)
        for signer in role.signers:
            keyid = public_key_of(signer).keyid
            if keyid not in listed:
                raise RootKeysMismatch(name, keyid)
    if keys.offline is not None:
        field_value = root.signed.unrecognized_fields.get(OFFLINE_ROLE_FIELD) or {}
        offline_ids = set(field_value.get("keyids", ()))
        for signer in keys.offline.signers:
            keyid = public_key_of(signer).keyid
            if keyid not in offline_ids:
                raise RootKeysMismatch("offline", keyid)


class Repository:
    """A TUF repository (director or image) that keeps its root history for rotation."""

    def __init__(
        self,
        keys: RepositoryKeys,
        root_expires: datetime,
        offline_max_window: timedelta = timedelta(days=30),
        *,
        root: Metadata[Root] | None = None,
        history: Sequence[Metadata[Root]] = (),
        version_clock: Callable[[], int] | None = None,
    ) -> None:
        """Sign root v1 with ``keys.root``, or take ``root``: metadata the offline root keys
        signed earlier (``cloud init-keys``, ``cloud rotate-keys``), so the serving process never
        holds a root key.

        ``history`` are the roots before ``root``, oldest first (v1 .. vN-1, as exported): every
        published bundle carries v2 .. vN, so a car that pinned v1 at the factory walks the chain
        to the root that lists today's keys. The whole chain is checked first
        (:func:`check_root_chain`, else :class:`RootChainInvalid`).

        ``version_clock`` (e.g. milliseconds since the epoch) makes the timestamp, snapshot and
        targets versions rise across process restarts and replicas, not only within this object:
        cars keep the last version they accepted and refuse a lower one (rollback), so a cloud that
        counted from 1 again after a restart would lock out every car it had already served.

        A given root must list each online signer of ``keys`` under its role, else
        :class:`RootKeysMismatch`: metadata signed by keys the root does not name would be
        refused by every car anyway.
        """
        self.keys = keys
        self._offline_max_window = offline_max_window
        self.roots: list[Metadata[Root]] = []
        self._root_envelopes: dict[int, tuple[Metadata[Root], _Signatures, bytes]] = {}
        self._version = 0
        self._version_clock = version_clock
        if root is not None:
            check_root_chain([*history, root])
            _check_online_keys(root, keys)
            for md in (*history, root):
                self._add_root(md, olpc.encode(md.to_dict()))
            return
        if history:
            raise ValueError("a root history needs the root it leads to (root=)")
        md = Metadata(self._root_payload(keys, 1, root_expires))
        self._add_root(md, _sign(md, keys.root.signers))

    def _add_root(self, md: Metadata[Root], envelope: bytes) -> None:
        self.roots.append(md)
        self._root_envelopes[id(md)] = (md, _signatures(md), envelope)

    def _root_envelope(self, md: Metadata[Root]) -> tuple[Metadata[Root], bytes]:
        """A root's envelope as signed; encoded again only if its signatures were changed."""
        cached = self._root_envelopes.get(id(md))
        if cached is not None and cached[0] is md and cached[1] == _signatures(md):
            return md, cached[2]
        return md, olpc.encode(md.to_dict())

    def _published_roots(self) -> list[tuple[Metadata[Root], bytes]]:
        """Every root after the first (the car pins v1 at the factory), oldest first."""
        return [self._root_envelope(md) for md in self.roots[1:]]

    def _root_payload(self, keys: RepositoryKeys, version: int, expires: datetime) -> Root:
        root = Root(version=version, expires=expires, consistent_snapshot=True)
        for name in ("root", "timestamp", "snapshot", "targets"):
            role: RoleSigners = getattr(keys, name)
            root.roles[name] = Role([], role.threshold)
            for signer in role.signers:
                root.add_key(public_key_of(signer), name)
        if keys.offline is not None:
            ids = []
            for signer in keys.offline.signers:
                key = public_key_of(signer)
                root.keys[key.keyid] = key
                ids.append(key.keyid)
            root.unrecognized_fields[OFFLINE_ROLE_FIELD] = {
                "keyids": ids,
                "threshold": keys.offline.threshold,
                "max_window_seconds": int(self._offline_max_window.total_seconds()),
            }
        return root

    @property
    def root(self) -> Metadata[Root]:
        return self.roots[-1]

    def _next_version(self) -> int:
        """One more than the last version issued here, and never below the version clock."""
        floor = self._version + 1
        self._version = floor if self._version_clock is None else max(floor, self._version_clock())
        return self._version

    def rotate_root(
        self, new_keys: RepositoryKeys, expires: datetime, version_step: int = 1
    ) -> Metadata[Root]:
        """Publish root N+1, signed by the old root's and the new root's signers (TUF §5.3.4)."""
        version = self.root.signed.version + version_step
        md = Metadata(self._root_payload(new_keys, version, expires))
        self._add_root(md, _sign(md, [*self.keys.root.signers, *new_keys.root.signers]))
        self.keys = new_keys
        return md

    def publish(self, targets: Targets, expires: datetime) -> TopLevelMetadata:
        """Sign targets, snapshot and timestamp (all online roles) over ``targets``."""
        self._next_version()
        targets.version = self._version
        targets.expires = expires
        targets_md = Metadata(targets)
        targets_env = _sign(targets_md, self.keys.targets.signers)
        snapshot = Snapshot(
            version=self._version, expires=expires, meta={"targets.json": MetaFile(self._version)}
        )
        snapshot_md = Metadata(snapshot)
        snapshot_env = _sign(snapshot_md, self.keys.snapshot.signers)
        timestamp = Timestamp(
            version=self._version, expires=expires, snapshot_meta=MetaFile(self._version)
        )
        timestamp_md = Metadata(timestamp)
        timestamp_env = _sign(timestamp_md, self.keys.timestamp.signers)
        return TopLevelMetadata._published(
            self._published_roots(),
            (timestamp_md, timestamp_env),
            (snapshot_md, snapshot_env),
            (targets_md, targets_env),
        )

    def publish_signed_targets(
        self, targets_md: Metadata[Targets], targets_envelope: bytes, expires: datetime
    ) -> TopLevelMetadata:
        """Sign snapshot and timestamp over targets signed elsewhere (the image repository's
        targets, signed offline): the online keys never sign the targets themselves.

        ``targets_envelope`` is the canonical encoding of ``targets_md`` as published."""
        self._next_version()
        snapshot = Snapshot(
            version=self._version,
            expires=expires,
            meta={"targets.json": MetaFile(targets_md.signed.version)},
        )
        snapshot_md = Metadata(snapshot)
        snapshot_env = _sign(snapshot_md, self.keys.snapshot.signers)
        timestamp = Timestamp(
            version=self._version, expires=expires, snapshot_meta=MetaFile(self._version)
        )
        timestamp_md = Metadata(timestamp)
        timestamp_env = _sign(timestamp_md, self.keys.timestamp.signers)
        return TopLevelMetadata._published(
            self._published_roots(),
            (timestamp_md, timestamp_env),
            (snapshot_md, snapshot_env),
            (targets_md, targets_envelope),
        )

    def publish_offline(self, targets: Targets, expires: datetime) -> TopLevelMetadata:
        """Sign targets with the offline role only (no timestamp/snapshot)."""
        if self.keys.offline is None:
            raise ValueError("this repository has no offline role")
        self._next_version()
        targets.version = self._version
        targets.expires = expires
        md = Metadata(targets)
        envelope = _sign(md, self.keys.offline.signers)
        return TopLevelMetadata._published(self._published_roots(), None, None, (md, envelope))


class ImageRepository(Repository):
    """The image repository: what images exist, with Uptane custom fields."""

    def __init__(
        self,
        keys: RepositoryKeys,
        root_expires: datetime,
        *,
        root: Metadata[Root] | None = None,
        history: Sequence[Metadata[Root]] = (),
        version_clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(
            keys, root_expires, root=root, history=history, version_clock=version_clock
        )
        self.targets = Targets()

    def add_image(
        self, name: str, data: bytes, hardware_id: str, release_counter: int, version: str
    ) -> TargetFile:
        target = TargetFile.from_data(name, data, ["sha256"])
        target.unrecognized_fields["custom"] = {
            "hardwareId": hardware_id,
            "releaseCounter": release_counter,
            "version": version,
        }
        self.targets.targets[name] = target
        return target

    def publish_images(self, expires: datetime) -> TopLevelMetadata:
        return self.publish(self.targets, expires)


def bundle_bytes(director: TopLevelMetadata, image: TopLevelMetadata) -> bytes:
    """The canonical bundle carrying both repositories' metadata.

    Equal to ``canonical_bytes({"format": BUNDLE_FORMAT, "director": director.to_dict(),
    "image": image.to_dict()})``, assembled from each part's recorded canonical bytes.
    """
    return olpc.join_object(
        {
            "format": olpc.encode(BUNDLE_FORMAT),
            "director": director.canonical(),
            "image": image.canonical(),
        }
    )


@dataclass
class _EcuOrder:
    hardware_id: str
    sealing_key: bytes
    images: list[TargetFile] = field(default_factory=list)
    features: list[FeatureGrant] = field(default_factory=list)
    secrets: dict[str, bytes] = field(default_factory=dict)


class BundleBuilder:
    """Collects what one activation of one car does, then signs it into a bundle.

    The builder trusts its caller (the cloud's authorisation has already decided); the car's
    verifier re-checks everything, so a wrong call here produces a bundle the car refuses.
    """

    def __init__(
        self,
        vin: str,
        freshness: Freshness,
        activation_counter: int,
        compliance: Mapping[str, Any] | None = None,
        consent: Mapping[str, Any] | None = None,
    ) -> None:
        self.vin = vin
        self.freshness = freshness
        self.activation_counter = activation_counter
        self.compliance = dict(compliance or {})
        self.consent = dict(consent or {})
        self._ecus: dict[str, _EcuOrder] = {}

    def add_ecu(self, serial: str, hardware_id: str, sealing_public_key: bytes) -> None:
        self._ecus[serial] = _EcuOrder(hardware_id, sealing_public_key)

    def add_image(self, serial: str, image: TargetFile) -> None:
        """Install ``image`` (the image repository's entry) on ECU ``serial``."""
        self._ecus[serial].images.append(image)

    def add_feature(self, grant: FeatureGrant) -> None:
        self._ecus[grant.ecu_serial].features.append(grant)

    def add_secret(self, serial: str, name: str, value: bytes) -> None:
        """Seal ``value`` to the ECU's X25519 key now: the bundle never holds it in clear."""
        self._ecus[serial].secrets[name] = value

    def director_targets(self) -> Targets:
        targets = Targets()
        ecus: dict[str, Any] = {}
        for serial, order in sorted(self._ecus.items()):
            for image in order.images:
                custom = dict(image.custom or {})
                target = TargetFile(
                    image.length,
                    dict(image.hashes),
                    f"{serial}/{image.path}",
                    {
                        "custom": {
                            "ecuIdentifier": serial,
                            "hardwareId": order.hardware_id,
                            "releaseCounter": custom.get("releaseCounter", 0),
                            "version": custom.get("version", ""),
                            "image": image.path,
                        }
                    },
                )
                targets.targets[target.path] = target
            box = SealedBox(PublicKey(order.sealing_key))
            ecus[serial] = {
                "hardware_id": order.hardware_id,
                "features": [g.to_dict() for g in order.features],
                "secrets": {
                    name: base64.b64encode(box.encrypt(value)).decode()
                    for name, value in sorted(order.secrets.items())
                },
            }
        targets.unrecognized_fields[ACTIVATION_FIELD] = {
            "vin": self.vin,
            "activation_counter": self.activation_counter,
            "freshness": self.freshness.to_dict(),
            "ecus": ecus,
            "compliance": self.compliance,
            "consent": self.consent,
        }
        return targets

    def build(
        self,
        director: Repository,
        image_metadata: TopLevelMetadata,
        expires: datetime,
    ) -> bytes:
        """Sign the director's part and return the canonical bundle bytes."""
        targets = self.director_targets()
        if isinstance(self.freshness, OfflineFreshness):
            director_md = director.publish_offline(targets, expires)
        else:
            director_md = director.publish(targets, expires)
        return bundle_bytes(director_md, image_metadata)
