"""Remembered dealer chain verifications never outlive what they were checked against."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from forecourt.cloud.verified import VerifiedDealerCache
from forecourt.trust.errors import CertificateExpired, CertificateRevoked, CrlInvalid
from forecourt.trust.oem_pki import IssuedCertificate, OemPki
from tests.cloud.world import NOW


@pytest.fixture(scope="module")
def pki() -> OemPki:
    return OemPki.ephemeral(now=NOW)


def _pems(issued: IssuedCertificate) -> list[str]:
    return [issued.cert.public_bytes(Encoding.PEM).decode()]


def _cache(pki: OemPki) -> VerifiedDealerCache:
    return VerifiedDealerCache(pki.root, [pki.ca])


def test_a_verified_chain_is_refused_once_its_certificate_has_expired(pki: OemPki) -> None:
    issued = pki.issue_dealer("DE-MUC-01", "edge-short", now=NOW, lifetime=timedelta(days=2))
    cache = _cache(pki)
    crl = pki.publish_crl(NOW, lifetime=timedelta(days=30))
    assert cache.verify(_pems(issued), crl, NOW).dealer_id == "DE-MUC-01"
    with pytest.raises(CertificateExpired):
        cache.verify(_pems(issued), crl, NOW + timedelta(days=3))


def test_a_verified_chain_is_refused_once_the_crl_is_no_longer_current(pki: OemPki) -> None:
    issued = pki.issue_dealer("DE-MUC-01", "edge-crl", now=NOW)
    cache = _cache(pki)
    crl = pki.publish_crl(NOW, lifetime=timedelta(hours=1))
    assert cache.verify(_pems(issued), crl, NOW).edge_id == "edge-crl"
    with pytest.raises(CrlInvalid):
        cache.verify(_pems(issued), crl, NOW + timedelta(hours=2))


def test_a_newly_published_crl_revokes_a_chain_verified_before(pki: OemPki) -> None:
    issued = pki.issue_dealer("FR-PAR-01", "edge-lost", now=NOW)
    cache = _cache(pki)
    assert cache.verify(_pems(issued), pki.publish_crl(NOW), NOW).dealer_id == "FR-PAR-01"
    pki.revoke(issued.cert.serial_number, NOW)
    with pytest.raises(CertificateRevoked):
        cache.verify(_pems(issued), pki.publish_crl(NOW), NOW)


def test_the_cache_keeps_at_most_its_capacity(pki: OemPki) -> None:
    cache = VerifiedDealerCache(pki.root, [pki.ca], capacity=2)
    crl = pki.publish_crl(NOW)
    edges = [pki.issue_dealer("DE-MUC-01", f"edge-{n}", now=NOW) for n in range(3)]
    for edge in edges:
        cache.verify(_pems(edge), crl, NOW)
    assert len(cache) == 2
