"""The image repository's targets: built from the catalog, signed offline, published, served.

Uptane keeps the image repository's keys offline: what exists (name, length, hashes, hardware
number, release counter of every package per hardware number) is signed away from the cloud, so
a compromised cloud can pick among real images for a car but cannot invent one. The steps:

1. ``cloud sign-images`` (offline, with the image targets key(s) of ``offline-keys.json``):
   :func:`catalog_targets` lists every package of the catalog per compatible hardware number,
   entry for entry what the cloud signed online before (:func:`image_target`), and
   :func:`sign_image_targets` signs it with a version above the published one.
2. ``cloud publish-image-targets`` (:func:`publish_image_targets`): the file is checked against
   the CURRENT image root (signature threshold of its targets role, expiry, version above the
   newest published one) and stored in ``registry_image_targets``; a refusal stores nothing.
3. Serving (:class:`forecourt.cloud.signing.BundleSigner`): every process reads the newest
   published version (:func:`newest_version`, one indexed query) and loads and re-checks a
   version it has not seen (:func:`check_image_targets`); it then signs only the image
   snapshot and timestamp online.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from forecourt.core import Catalog, SoftwarePackage
from forecourt.logging import get_logger
from forecourt.store.registry import ImageTargetsRow
from forecourt.trust._sslib import Metadata, Root, Signer, TargetFile, Targets
from forecourt.trust.canonical import canonical_bytes, metadata_from_bytes
from forecourt.trust.errors import TrustError

_log = get_logger("cloud.image_targets")


class ImageTargetsRefused(ValueError):
    """Image targets metadata that cannot be signed or published as asked; nothing was stored."""


def release_counter(package: SoftwarePackage) -> int:
    """A monotonic Uptane release counter from the SemVer precedence of releases."""
    v = package.version
    return v.major * 1_000_000 + v.minor * 1_000 + v.patch


def image_name(package: SoftwarePackage, hardware_number: str) -> str:
    return f"{package.name}-{package.version}.{hardware_number}"


def image_target(package: SoftwarePackage, hardware_number: str) -> TargetFile:
    """The image repository's entry for ``package`` on ``hardware_number`` (Uptane custom
    fields: the car compares the director's choice with these)."""
    return TargetFile(
        package.size,
        {"sha256": package.sha256},
        image_name(package, hardware_number),
        {
            "custom": {
                "hardwareId": hardware_number,
                "releaseCounter": release_counter(package),
                "version": str(package.version),
                "package": package.name,
            }
        },
    )


def catalog_targets(catalog: Catalog) -> dict[str, TargetFile]:
    """Every package of ``catalog`` on every hardware number it is compatible with."""
    targets: dict[str, TargetFile] = {}
    for package in catalog.packages:
        for hardware_number in sorted(package.compatible_hardware):
            target = image_target(package, hardware_number)
            targets[target.path] = target
    return targets


def sign_image_targets(
    targets: dict[str, TargetFile],
    signers: Sequence[Signer],
    *,
    version: int,
    expires: datetime,
) -> bytes:
    """The canonical envelope of image targets ``version``, signed by every one of ``signers``."""
    md = Metadata(Targets(version=version, expires=expires, targets=dict(targets)))
    for signer in signers:
        md.sign(signer, append=True)
    return canonical_bytes(md.to_dict())


@dataclass(frozen=True)
class PublishedImageTargets:
    """One published version of the image targets, checked against the image root."""

    version: int
    metadata: Metadata[Targets]
    envelope: bytes
    """The signed envelope as published (canonical JSON), carried into bundles unchanged."""

    @property
    def expires(self) -> datetime:
        return self.metadata.signed.expires

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.envelope).hexdigest()


def check_image_targets(
    data: bytes, root: Root, now: datetime | None = None
) -> PublishedImageTargets:
    """``data`` as image targets metadata that ``root`` trusts: else :class:`ImageTargetsRefused`.

    Checked as a car checks it: a targets document, the threshold of the root's targets role
    met by distinct keys the root lists, no delegations, and, when ``now`` is given, not
    expired. The envelope kept is the canonical encoding, as bundles carry it.
    """
    try:
        md = metadata_from_bytes(data, "image targets")
    except (TrustError, ValueError, TypeError, KeyError) as exc:
        raise ImageTargetsRefused(f"not image targets metadata: {exc}") from exc
    if md.signed.delegations is not None:
        raise ImageTargetsRefused("image targets with delegations are not served")
    result = root.get_verification_result("targets", md.signed_bytes, md.signatures)
    if not result:
        raise ImageTargetsRefused(
            f"image targets v{md.signed.version}: {len(result.signed)} valid signature(s) of "
            f"keys image root v{root.version} lists for targets, {result.threshold} needed"
        )
    if now is not None and md.signed.is_expired(now):
        raise ImageTargetsRefused(
            f"image targets v{md.signed.version} expired at {md.signed.expires.isoformat()}"
        )
    return PublishedImageTargets(md.signed.version, md, canonical_bytes(md.to_dict()))


def newest_version(reader: Session | Connection) -> int | None:
    """The newest published image targets version, ``None`` when nothing was published."""
    value = reader.execute(select(func.max(ImageTargetsRow.version))).scalar()
    return None if value is None else int(value)


def load_version(reader: Session | Connection, version: int) -> bytes:
    """The signed envelope of published ``version`` (it exists: :func:`newest_version`)."""
    data = reader.execute(
        select(ImageTargetsRow.metadata_json).where(ImageTargetsRow.version == version)
    ).scalar_one()
    return bytes(data)


def publish_image_targets(
    session: Session, data: bytes, root: Root, *, now: datetime, by: str
) -> PublishedImageTargets:
    """Check ``data`` (:func:`check_image_targets`, and a version above the newest published
    one: a rollback would hand cars an older list) and store it in ``session``.

    The caller commits; on :class:`ImageTargetsRefused` nothing was added to the session.
    """
    published = check_image_targets(data, root, now)
    newest = newest_version(session)
    if newest is not None and published.version <= newest:
        raise ImageTargetsRefused(
            f"image targets v{published.version} is not above the published v{newest} "
            "(rollback): sign a new version"
        )
    session.add(
        ImageTargetsRow(
            version=published.version,
            metadata_json=published.envelope,
            sha256=published.sha256,
            target_count=len(published.metadata.signed.targets),
            expires_at=published.expires,
            published_by=by,
            published_at=now,
        )
    )
    session.flush()
    _log.info(
        "image_targets_published",
        version=published.version,
        targets=len(published.metadata.signed.targets),
        expires=published.expires.isoformat(),
        sha256=published.sha256,
        by=by,
    )
    return published
