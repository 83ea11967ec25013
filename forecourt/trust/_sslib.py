"""The securesystemslib and python-tuf names the trust layer uses, imported in one place.

Both libraries re-export their public classes without ``__all__``, which mypy --strict reads as
"not exported"; this shim keeps those two ignores out of every other module.
"""

from __future__ import annotations

from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
from securesystemslib.signer import (  # type: ignore[attr-defined]
    CryptoSigner,
    Key,
    Signature,
    Signer,
    SSlibKey,
)
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    MetaFile,
    Role,
    Root,
    Signed,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import SerializationError, SignedSerializer

__all__ = [
    "CryptoSigner",
    "Key",
    "MetaFile",
    "Metadata",
    "Role",
    "Root",
    "SSlibKey",
    "SerializationError",
    "Signature",
    "Signed",
    "SignedSerializer",
    "Signer",
    "Snapshot",
    "TargetFile",
    "Targets",
    "Timestamp",
    "UnverifiedSignatureError",
    "VerificationError",
]
