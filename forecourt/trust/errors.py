"""Typed refusals of the trust layer.

Every refusal the car (or an offline checker) can give is one class here, with a stable ``code``
string that logs, DTCs and the console show, and the ISO 14229-1 negative response code (NRC) the
car answers RoutineControl FF00 / Authentication 0x29 with. The tree::

    TrustError
    ├── KeyLoadError (WrongKeyPassword, KeyUriError)
    ├── BundleError                       ← refusals of an activation bundle
    │   ├── BundleFormatError      0x13   malformed, unknown format/version, unknown field
    │   ├── EndlessData            0x13   object larger than its bound (checked before parsing)
    │   ├── SignatureThresholdNotMet 0x35 bad, missing or below-threshold signatures
    │   ├── RootRotationInvalid    0x35   root N→N+1 not signed by old and new thresholds
    │   ├── MetadataExpired        0x22   freeze attack: metadata past its expiry
    │   ├── ReplayedNonce          0x24   nonce not issued by this car or already used
    │   ├── OfflineCounterReused   0x24   offline counter not above the stored one
    │   ├── OfflineWindowInvalid   0x22   offline window not started, over, or too long
    │   ├── RollbackAttempt        0x70   lower version / release counter / activation counter
    │   ├── MixAndMatch            0x70   director's choice differs from the image repository
    │   ├── PartialBundle          0x70   a declared ECU's part is missing (all-or-nothing)
    │   ├── ForeignVin             0x31   bound to another vehicle
    │   ├── ForeignEcu             0x31   names an ECU serial this car does not have
    │   ├── HardwareIdMismatch     0x31   ECU hardware number differs
    │   ├── FeatureWithoutHardware 0x31   feature whose hardware is not fitted
    │   ├── FeatureValidityExpired 0x22   feature grant already past its not_after at trusted now
    │   ├── ImageLengthMismatch    0x72   streamed image shorter than signed length
    │   ├── ImageHashMismatch      0x72   streamed image digest differs
    │   └── SealedSecretError      0x72   secret cannot be opened with the ECU's key
    ├── ManifestError              ← refusals of a vehicle version manifest (cloud/edge side)
    │   ├── ManifestFormatError           malformed, unknown format, above its size bound
    │   ├── ManifestSignatureInvalid      primary's or an ECU's signature does not verify
    │   ├── ManifestInventoryMismatch     an ECU of the inventory missing, or one not in it
    │   ├── ManifestCounterReused         an ECU's report counter not above the previous one
    │   └── ManifestAttackReported        an ECU set its attack indicator
    ├── PkiError                   ← the issuing side refuses a request (bad name, wrong key type)
    └── CertificateError           ← OEM PKI, mTLS and UDS 0x29 (NRCs from ISO 14229-1:2020 §10.6)
        ├── CertificateFormatError 0x54   not a DER/PEM X.509 certificate or CRL
        ├── CertificateExpired     0x50   outside notBefore..notAfter (any certificate of the path)
        ├── CertificateSignatureInvalid 0x51  a signature of the path does not verify
        ├── UntrustedCertificate   0x52   chain does not lead to the pinned root (wrong issuer)
        ├── CertificateConstraintViolated 0x52  basicConstraints/pathLen or name constraints
        ├── CrlInvalid             0x52   CRL not signed by the issuing CA, or out of date
        ├── CertificatePurposeError 0x56  key usage / extended key usage / key type for the purpose
        ├── CertificateRevoked     0x57   serial on the intermediate's CRL
        └── ProofOfPossessionFailed 0x58  challenge signature does not verify

The classes carry what went wrong as attributes (for logs and the console) but a message free of
secrets.
"""

from __future__ import annotations

from typing import ClassVar


class TrustError(Exception):
    """Root of every refusal in ``forecourt.trust``."""

    code: ClassVar[str] = "trust_error"
    nrc: ClassVar[int] = 0x22

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.detail: dict[str, object] = detail


class KeyLoadError(TrustError):
    """A signing key could not be loaded (missing file, bad PEM, token absent)."""

    code = "key_load_failed"


class WrongKeyPassword(KeyLoadError):
    """The encrypted PEM file did not decrypt with the given password."""

    code = "key_wrong_password"


class KeyUriError(KeyLoadError):
    """The key URI is malformed or names an unsupported scheme."""

    code = "key_uri_invalid"


class BundleError(TrustError):
    """The activation bundle is refused; nothing is applied."""

    code = "bundle_refused"


class BundleFormatError(BundleError):
    code = "bundle_format"
    nrc = 0x13


class EndlessData(BundleError):
    code = "endless_data"
    nrc = 0x13


class SignatureThresholdNotMet(BundleError):
    code = "signature_threshold_not_met"
    nrc = 0x35


class RootRotationInvalid(BundleError):
    code = "root_rotation_invalid"
    nrc = 0x35


class MetadataExpired(BundleError):
    code = "metadata_expired"
    nrc = 0x22


class ReplayedNonce(BundleError):
    code = "replayed_nonce"
    nrc = 0x24


class OfflineCounterReused(BundleError):
    code = "offline_counter_reused"
    nrc = 0x24


class OfflineWindowInvalid(BundleError):
    code = "offline_window_invalid"
    nrc = 0x22


class RollbackAttempt(BundleError):
    code = "rollback"
    nrc = 0x70


class MixAndMatch(BundleError):
    code = "mix_and_match"
    nrc = 0x70


class PartialBundle(BundleError):
    code = "partial_bundle"
    nrc = 0x70


class ForeignVin(BundleError):
    code = "foreign_vin"
    nrc = 0x31


class ForeignEcu(BundleError):
    code = "foreign_ecu"
    nrc = 0x31


class HardwareIdMismatch(BundleError):
    code = "hardware_id_mismatch"
    nrc = 0x31


class FeatureWithoutHardware(BundleError):
    code = "feature_without_hardware"
    nrc = 0x31


class FeatureValidityExpired(BundleError):
    code = "feature_validity_expired"
    nrc = 0x22


class ImageLengthMismatch(BundleError):
    code = "image_length_mismatch"
    nrc = 0x72


class ImageHashMismatch(BundleError):
    code = "image_hash_mismatch"
    nrc = 0x72


class SealedSecretError(BundleError):
    code = "sealed_secret"
    nrc = 0x72


class ManifestError(TrustError):
    """A vehicle version manifest is refused by the cloud or edge."""

    code = "manifest_refused"


class ManifestFormatError(ManifestError):
    code = "manifest_format"
    nrc = 0x13


class ManifestSignatureInvalid(ManifestError):
    code = "manifest_signature_invalid"


class ManifestInventoryMismatch(ManifestError):
    code = "manifest_inventory_mismatch"


class ManifestCounterReused(ManifestError):
    code = "manifest_counter_reused"


class ManifestAttackReported(ManifestError):
    code = "manifest_attack_reported"


class PkiError(TrustError):
    """The OEM PKI refuses to issue or load (bad name, wrong key type, missing CA files)."""

    code = "pki_error"


class CertificateError(TrustError):
    """A certificate is refused (OEM PKI, mTLS, UDS 0x29)."""

    code = "certificate_refused"
    nrc = 0x52


class CertificateFormatError(CertificateError):
    code = "certificate_format"
    nrc = 0x54


class CertificateSignatureInvalid(CertificateError):
    code = "certificate_signature_invalid"
    nrc = 0x51


class CertificateConstraintViolated(CertificateError):
    code = "certificate_constraint_violated"
    nrc = 0x52


class CrlInvalid(CertificateError):
    code = "crl_invalid"
    nrc = 0x52


class UntrustedCertificate(CertificateError):
    code = "certificate_untrusted"
    nrc = 0x52


class CertificateExpired(CertificateError):
    code = "certificate_expired"
    nrc = 0x50


class CertificateRevoked(CertificateError):
    code = "certificate_revoked"
    nrc = 0x57


class CertificatePurposeError(CertificateError):
    code = "certificate_purpose"
    nrc = 0x56


class ProofOfPossessionFailed(CertificateError):
    code = "proof_of_possession_failed"
    nrc = 0x58
