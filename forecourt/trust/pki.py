"""The OEM PKI's public face: what the cloud, the edge and the vehicle simulator import.

Profiles and identities live in :mod:`forecourt.trust.certificates`, path validation in
:mod:`forecourt.trust.chain`, TLS contexts in :mod:`forecourt.trust.tls`, the operator's PKI
directory in :mod:`forecourt.trust.oem_pki`; this module re-exports them so callers have one
import path that stays put while those modules change.
"""

from __future__ import annotations

from forecourt.trust.certificates import (
    ECU_IDENTITY_EKU,
    SEALING_KEY_OID,
    CertificatePurpose,
    DealerIdentity,
    EcuIdentity,
    NameConstraintsPolicy,
    build_issuing_ca,
    build_root_ca,
    dealer_identity,
    dealer_subject,
    ecu_identity,
    ecu_subject,
    issue_leaf,
    load_certificate,
    load_crl,
    server_subject,
)
from forecourt.trust.chain import check_revocation, verify_chain
from forecourt.trust.oem_pki import IssuedCertificate, OemPki
from forecourt.trust.tls import (
    PemBundlePaths,
    client_ssl_context,
    server_ssl_context,
    write_pem_bundle,
)

__all__ = [
    "ECU_IDENTITY_EKU",
    "SEALING_KEY_OID",
    "CertificatePurpose",
    "DealerIdentity",
    "EcuIdentity",
    "IssuedCertificate",
    "NameConstraintsPolicy",
    "OemPki",
    "PemBundlePaths",
    "build_issuing_ca",
    "build_root_ca",
    "check_revocation",
    "client_ssl_context",
    "dealer_identity",
    "dealer_subject",
    "ecu_identity",
    "ecu_subject",
    "issue_leaf",
    "load_certificate",
    "load_crl",
    "server_ssl_context",
    "server_subject",
    "verify_chain",
    "write_pem_bundle",
]
