"""Checkpoints in the C2SP ``tlog-checkpoint`` format, carried in C2SP ``signed-note`` envelopes.

A checkpoint body is three lines (plus optional extension lines)::

    <origin>
    <decimal tree size>
    <base64 root hash>

A signed note is the body, a blank line, then one line per signature::

    — <key name> <base64(key hash (4 bytes) || signature)>

For Ed25519 (signature type 0x01) the key hash is the first four bytes of
``SHA-256(name || 0x0A || 0x01 || public key)`` and the signature covers the body exactly.
Witness cosignatures (C2SP ``tlog-cosignature``, type 0x04) sign
``"cosignature/v1\\ntime <t>\\n" || body`` and carry the 8-byte big-endian timestamp before the
signature. Signing goes through :class:`NoteSigner`, so a file key or an HSM plugs in unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from forecourt.ledger.errors import NoteError, UnknownKeyError
from forecourt.ledger.merkle import HASH_SIZE

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
_DASH = "\u2014"
_MAX_SIGNATURES = 100
_MAX_SIZE_DIGITS = 20  # a tree size is an unsigned 64-bit number (C2SP tlog-checkpoint)


class NoteSigner(Protocol):
    """The one thing the ledger needs from a key store: Ed25519 signatures over bytes."""

    @property
    def public_key(self) -> Ed25519PublicKey: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SoftwareNoteSigner:
    """An in-process Ed25519 key (tests, demo, development); production plugs in an HSM signer."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SoftwareNoteSigner:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_hash(name: str, public_key: Ed25519PublicKey, sig_type: int = SIG_ED25519) -> bytes:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` (C2SP signed-note)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + _raw(public_key)).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError(f"key name {name!r} is empty or has a space or '+'")


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted (name, Ed25519 public key) and the kind of signature it checks."""

    name: str
    public_key: Ed25519PublicKey
    sig_type: int = SIG_ED25519

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key, self.sig_type)

    def to_vkey(self) -> str:
        """The verifier key string ``name+hexhash+base64(type || key)`` used by Go tooling."""
        blob = bytes([self.sig_type]) + _raw(self.public_key)
        return f"{self.name}+{self.key_hash.hex()}+{base64.b64encode(blob).decode()}"

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        try:
            name, hash_hex, blob_b64 = vkey.strip().split("+", 2)
            blob = base64.b64decode(blob_b64, validate=True)
            key = Ed25519PublicKey.from_public_bytes(blob[1:])
        except (ValueError, binascii.Error) as exc:
            raise NoteError(f"malformed verifier key: {exc}") from exc
        verifier = cls(name, key, blob[0])
        if blob[0] not in (SIG_ED25519, SIG_COSIGNATURE_V1):
            raise NoteError(f"verifier key type {blob[0]:#04x} is not Ed25519 or cosignature/v1")
        if verifier.key_hash.hex() != hash_hex:
            raise NoteError("verifier key hash does not match its name and key")
        return verifier


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_hash: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_hash + self.signature).decode()
        return f"{_DASH} {self.name} {blob}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """``(origin, size, root hash)``: the state of one log that a signer vouches for."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin is empty or spans lines")
        if self.size < 0:
            raise NoteError(f"checkpoint size {self.size} is negative")
        if len(self.root_hash) != HASH_SIZE:
            raise NoteError(f"checkpoint root hash is {len(self.root_hash)} bytes")

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "".join(line + "\n" for line in [*lines, *self.extensions])

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        if not body.endswith("\n"):
            raise NoteError("checkpoint body does not end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise NoteError("checkpoint needs origin, size and root hash lines, none empty")
        origin, size_text, root_text, *ext = lines
        if (
            not (size_text.isascii() and size_text.isdigit())  # "²".isdigit() is true
            or len(size_text) > _MAX_SIZE_DIGITS
            or (size_text != "0" and size_text.startswith("0"))
        ):
            raise NoteError(f"checkpoint size {size_text!r} is not a decimal number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except ValueError as exc:  # binascii.Error, or a non-ASCII character
            raise NoteError(f"checkpoint root hash is not base64: {exc}") from exc
        return cls(origin, int(size_text), root, tuple(ext))


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note text with its signature lines; the text is what every signature covers."""

    text: str
    signatures: tuple[NoteSignature, ...] = field(default=())

    def render(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    @classmethod
    def parse(cls, data: str) -> SignedNote:
        sep = data.rfind("\n\n")
        if sep < 0:
            raise NoteError("signed note has no blank line before its signatures")
        text, sig_block = data[: sep + 1], data[sep + 2 :]
        if not sig_block.endswith("\n"):
            raise NoteError("signed note does not end with a newline")
        sigs: list[NoteSignature] = []
        for line in sig_block[:-1].split("\n"):
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != _DASH:
                raise NoteError(f"malformed signature line {line[:60]!r}")
            _check_name(parts[1])
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except ValueError as exc:  # binascii.Error, or a non-ASCII character
                raise NoteError(f"signature of {parts[1]!r} is not base64") from exc
            if len(blob) < 5:
                raise NoteError(f"signature of {parts[1]!r} is too short")
            sigs.append(NoteSignature(parts[1], blob[:4], blob[4:]))
        if not sigs or len(sigs) > _MAX_SIGNATURES:
            raise NoteError(f"signed note carries {len(sigs)} signatures")
        return cls(text, tuple(sigs))

    def add(self, signature: NoteSignature) -> SignedNote:
        return SignedNote(self.text, (*self.signatures, signature))

    def verified_by(self, verifier: NoteVerifier) -> bool:
        """True when a signature line of ``verifier`` checks out (cosignatures included)."""
        for sig in self.signatures:
            if sig.name != verifier.name or sig.key_hash != verifier.key_hash:
                continue
            message = self.text.encode()
            signature = sig.signature
            if verifier.sig_type == SIG_COSIGNATURE_V1:
                if len(signature) != 8 + 64:
                    return False
                (timestamp,) = struct.unpack(">Q", signature[:8])
                message = cosignature_message(self.text, timestamp)
                signature = signature[8:]
            try:
                verifier.public_key.verify(signature, message)
            except InvalidSignature:
                return False
            return True
        return False


def cosignature_message(body: str, timestamp: int) -> bytes:
    """What a C2SP tlog-cosignature/v1 witness signs for a checkpoint body at ``timestamp``."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def sign_note(text: str, name: str, signer: NoteSigner) -> NoteSignature:
    _check_name(name)
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    return NoteSignature(name, key_hash(name, signer.public_key), signer.sign(text.encode()))


def cosign(body: str, name: str, signer: NoteSigner, timestamp: int) -> NoteSignature:
    """A witness cosignature line over a checkpoint body (C2SP tlog-cosignature/v1)."""
    _check_name(name)
    sig = signer.sign(cosignature_message(body, timestamp))
    return NoteSignature(
        name,
        key_hash(name, signer.public_key, SIG_COSIGNATURE_V1),
        struct.pack(">Q", timestamp) + sig,
    )


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with its signed note; ``note.render()`` is the wire and file form."""

    checkpoint: Checkpoint
    note: SignedNote

    def render(self) -> str:
        return self.note.render()

    @classmethod
    def issue(cls, checkpoint: Checkpoint, signer: NoteSigner) -> SignedCheckpoint:
        """Sign a checkpoint with the log's key; the key name is the origin."""
        body = checkpoint.body()
        return cls(checkpoint, SignedNote(body, (sign_note(body, checkpoint.origin, signer),)))

    @classmethod
    def open(
        cls,
        data: str,
        log_verifier: NoteVerifier,
        witnesses: Sequence[NoteVerifier] = (),
        witness_quorum: int = 0,
    ) -> SignedCheckpoint:
        """Parse and verify: the log's signature, then at least ``witness_quorum`` witnesses."""
        note = SignedNote.parse(data)
        checkpoint = Checkpoint.parse(note.text)
        if checkpoint.origin != log_verifier.name:
            raise UnknownKeyError(
                f"checkpoint origin {checkpoint.origin!r} is not log {log_verifier.name!r}"
            )
        if not note.verified_by(log_verifier):
            raise NoteError(f"no valid signature by {log_verifier.name!r} on the checkpoint")
        cosigned = sum(1 for w in witnesses if note.verified_by(w))
        if cosigned < witness_quorum:
            raise NoteError(f"{cosigned} witness cosignatures, {witness_quorum} required")
        return cls(checkpoint, note)

    def cosigned(self, name: str, signer: NoteSigner, timestamp: int) -> SignedCheckpoint:
        return SignedCheckpoint(
            self.checkpoint, self.note.add(cosign(self.note.text, name, signer, timestamp))
        )


def verifier_for(name: str, signer: NoteSigner, sig_type: int = SIG_ED25519) -> NoteVerifier:
    return NoteVerifier(name, signer.public_key, sig_type)


def find_verifier(verifiers: Iterable[NoteVerifier], origin: str) -> NoteVerifier:
    for v in verifiers:
        if v.name == origin and v.sig_type == SIG_ED25519:
            return v
    raise UnknownKeyError(f"no trusted key for log {origin!r}")
