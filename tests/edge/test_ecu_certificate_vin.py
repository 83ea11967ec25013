"""The edge's ECU certificate check binds each ECU certificate to the car being activated."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from forecourt.edge.wiring import ecu_certificate_check
from forecourt.edge.workflow.manifest import CertificateCheck, inventory_of
from forecourt.trust.errors import ManifestInventoryMismatch
from forecourt.trust.oem_pki import OemPki
from forecourt.trust.testing import NOW, VIN

OTHER_VIN = "WF0XXXGCDX7654321"


def _ecus(tmp_path: Path, issued_for: str) -> tuple[list[dict[str, str]], CertificateCheck]:
    pki = OemPki.ephemeral(NOW)
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    sealing = x25519.X25519PrivateKey.generate().public_key()
    cert = pki.issue_ecu(issued_for, "TBX0001", key, sealing, now=NOW)
    (tmp_path / "root.pem").write_bytes(pki.root.public_bytes(Encoding.PEM))
    ca = pki.ca.public_bytes(Encoding.PEM)
    (tmp_path / "chain.pem").write_bytes(ca + ca)  # leaf position, then the issuing CA
    ecu = {
        "serial": "TBX0001",
        "address": "1001",
        "signing_key": key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
        "certificate_pem": cert.public_bytes(Encoding.PEM).decode(),
    }
    check = ecu_certificate_check(tmp_path / "root.pem", tmp_path / "chain.pem", lambda: NOW)
    return [ecu], check


def test_an_ecu_certificate_of_this_car_is_accepted(tmp_path: Path) -> None:
    ecus, check = _ecus(tmp_path, VIN)
    assert set(inventory_of(ecus, check, vin=VIN)) == {"TBX0001"}


def test_an_ecu_certificate_issued_for_another_car_is_refused(tmp_path: Path) -> None:
    ecus, check = _ecus(tmp_path, OTHER_VIN)
    with pytest.raises(ManifestInventoryMismatch, match=OTHER_VIN):
        inventory_of(ecus, check, vin=VIN)
