"""The trust layer: activation bundles (Uptane), the OEM PKI, UDS 0x29 and version manifests.

Import from here; the submodules are implementation detail that may be split or merged.
"""

from __future__ import annotations

from forecourt.trust.canonical import canonical_bytes, parse_bounded
from forecourt.trust.certificates import (
    CertificatePurpose,
    DealerIdentity,
    EcuIdentity,
    NameConstraintsPolicy,
    dealer_identity,
    ecu_identity,
    load_certificate,
    load_crl,
)
from forecourt.trust.chain import verify_chain
from forecourt.trust.errors import (
    BundleError,
    CertificateError,
    KeyLoadError,
    ManifestError,
    PkiError,
    TrustError,
)
from forecourt.trust.issuer import (
    BundleBuilder,
    ImageRepository,
    Repository,
    RepositoryKeys,
    RoleSigners,
)
from forecourt.trust.keys import generate_file_key, generate_pkcs11_key, load_signer
from forecourt.trust.manifest import (
    ActiveFeature,
    EcuVersionReport,
    InstalledImage,
    VerifiedManifest,
    build_ecu_report,
    build_manifest,
    verify_manifest,
)
from forecourt.trust.model import (
    BUNDLE_FORMAT,
    FeatureGrant,
    ImageTarget,
    NonceFreshness,
    OfflineFreshness,
)
from forecourt.trust.oem_pki import IssuedCertificate, OemPki
from forecourt.trust.tls import (
    PemBundlePaths,
    client_ssl_context,
    server_ssl_context,
    write_pem_bundle,
)
from forecourt.trust.uds_auth import (
    EcuContext,
    make_challenge,
    prove_possession,
    verify_dealer_certificate,
    verify_possession,
)
from forecourt.trust.verifier import (
    CarTrustState,
    EcuTrustState,
    VerifiedActivation,
    VerifiedEcu,
    open_secrets,
    verify_bundle,
    verify_image,
)

__all__ = [
    "BUNDLE_FORMAT",
    "ActiveFeature",
    "BundleBuilder",
    "BundleError",
    "CarTrustState",
    "CertificateError",
    "CertificatePurpose",
    "DealerIdentity",
    "EcuContext",
    "EcuIdentity",
    "EcuTrustState",
    "EcuVersionReport",
    "FeatureGrant",
    "ImageRepository",
    "ImageTarget",
    "InstalledImage",
    "IssuedCertificate",
    "KeyLoadError",
    "ManifestError",
    "NameConstraintsPolicy",
    "NonceFreshness",
    "OemPki",
    "OfflineFreshness",
    "PemBundlePaths",
    "PkiError",
    "Repository",
    "RepositoryKeys",
    "RoleSigners",
    "TrustError",
    "VerifiedActivation",
    "VerifiedEcu",
    "VerifiedManifest",
    "build_ecu_report",
    "build_manifest",
    "canonical_bytes",
    "client_ssl_context",
    "dealer_identity",
    "ecu_identity",
    "generate_file_key",
    "generate_pkcs11_key",
    "load_certificate",
    "load_crl",
    "load_signer",
    "make_challenge",
    "open_secrets",
    "parse_bounded",
    "prove_possession",
    "server_ssl_context",
    "verify_bundle",
    "verify_chain",
    "verify_dealer_certificate",
    "verify_image",
    "verify_manifest",
    "verify_possession",
    "write_pem_bundle",
]
