"""Factory provisioning with the OEM's real anchors: what ``forecourt vehicle provision`` runs.

The OEM PKI directory (``forecourt pki init``) issues each ECU's identity certificate from the
issuing CA and gives the root and issuing CA certificates (and CRL) the car pins for UDS 0x29.
The director and image repositories' root metadata, exported by the cloud as files, are pinned
for the bundle verifier. A car provisioned without repository roots refuses every bundle; one
without the OEM root refuses every dealer certificate. Nothing here is trusted on first use.

The CRL is deliberately not pinned here: a CRL lives for days (``CRL_LIFETIME``) and the trust
layer refuses a stale one, so a factory CRL would lock every dealer out of a car that spent a
week on a lorry. A car checks revocation once it holds a current CRL (``CarState.crl_pem``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from forecourt.trust.oem_pki import OemPki
from forecourt.vehicle.provision import AlreadyProvisioned, CarSpec, EcuKeys, provision
from forecourt.vehicle.storage import CarStore
from forecourt.vehicle.trust_adapter import OemPkiIssuer, factory_trust_state


class AnchorFileError(Exception):
    """A root metadata file given to provisioning is missing or unreadable."""


@dataclass(frozen=True)
class RepositoryRoots:
    """Director and image repository root metadata (canonical JSON bytes), pinned in every car."""

    director: bytes
    image: bytes

    @classmethod
    def from_files(cls, director: Path, image: Path) -> RepositoryRoots:
        try:
            return cls(director.read_bytes(), image.read_bytes())
        except OSError as exc:
            raise AnchorFileError(f"root metadata unreadable: {exc}") from exc


@dataclass(frozen=True)
class Provisioned:
    vin: str
    store: CarStore | None  # None: it was provisioned before and left untouched
    certified: bool
    roots_pinned: bool


def provision_cars(
    cars_dir: Path,
    specs: Iterable[CarSpec],
    *,
    oem_secret: bytes,
    pki: OemPki | None = None,
    roots: RepositoryRoots | None = None,
    ecu_keys: Mapping[str, Mapping[int, EcuKeys]] | None = None,
    now: datetime | None = None,
) -> list[Provisioned]:
    """Provision each car under ``cars_dir/<VIN>``; cars already there are left as they are."""
    issuer = OemPkiIssuer(pki, now) if pki is not None else None
    done = []
    for spec in specs:
        trust_state = (
            factory_trust_state(
                roots.director, roots.image, {e.serial_number: e.name for e in spec.ecus}
            )
            if roots is not None
            else None
        )
        try:
            store = provision(
                cars_dir / spec.vin,
                spec,
                oem_secret=oem_secret,
                oem_root_pem=issuer.root_pem if issuer else "",
                oem_chain_pem=issuer.chain_pem if issuer else "",
                ecu_keys=(ecu_keys or {}).get(spec.vin),
                issuer=issuer,
                trust_state=trust_state,
            )
        except AlreadyProvisioned:
            done.append(Provisioned(spec.vin, None, False, False))
            continue
        done.append(Provisioned(spec.vin, store, issuer is not None, roots is not None))
    return done
