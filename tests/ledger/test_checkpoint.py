"""C2SP signed-note checkpoints: exact format, signatures, witness cosignatures, refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from forecourt.ledger.checkpoint import (
    SIG_COSIGNATURE_V1,
    Checkpoint,
    NoteVerifier,
    SignedCheckpoint,
    SoftwareNoteSigner,
    verifier_for,
)
from forecourt.ledger.errors import NoteError, UnknownKeyError

ORIGIN = "example.com/log"
ROOT = hashlib.sha256(b"root").digest()


def test_checkpoint_note_has_the_c2sp_layout_and_key_hash() -> None:
    signer = SoftwareNoteSigner.generate()
    text = SignedCheckpoint.issue(Checkpoint(ORIGIN, 42, ROOT), signer).render()
    body, sig_line = text.split("\n\n")
    assert body == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}"
    dash, name, blob_b64 = sig_line.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", ORIGIN)
    raw = signer.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    blob = base64.b64decode(blob_b64)
    assert blob[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
    signer.public_key.verify(blob[4:], (body + "\n").encode())


def test_signed_checkpoint_round_trips_through_its_text_and_vkey() -> None:
    signer = SoftwareNoteSigner.generate()
    signed = SignedCheckpoint.issue(Checkpoint(ORIGIN, 7, ROOT, ("ext line",)), signer)
    vkey = verifier_for(ORIGIN, signer).to_vkey()
    opened = SignedCheckpoint.open(signed.render(), NoteVerifier.from_vkey(vkey))
    assert opened.checkpoint == signed.checkpoint
    assert opened.render() == signed.render()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace("\n7\n", "\n8\n"),
        lambda t: t.replace(ORIGIN + "\n", "other.example/log\n", 1),
        lambda t: t[:-6] + "AAAAA\n",
        lambda t: t.replace("\n\n", "\n"),
    ],
    ids=["size", "origin", "signature", "no-blank-line"],
)
def test_altered_checkpoint_is_refused(mutate: object) -> None:
    signer = SoftwareNoteSigner.generate()
    text = SignedCheckpoint.issue(Checkpoint(ORIGIN, 7, ROOT), signer).render()
    with pytest.raises(NoteError):
        SignedCheckpoint.open(mutate(text), verifier_for(ORIGIN, signer))  # type: ignore[operator]


def test_checkpoint_signed_by_another_key_is_refused() -> None:
    text = SignedCheckpoint.issue(
        Checkpoint(ORIGIN, 7, ROOT), SoftwareNoteSigner.generate()
    ).render()
    with pytest.raises(NoteError):
        SignedCheckpoint.open(text, verifier_for(ORIGIN, SoftwareNoteSigner.generate()))
    with pytest.raises(UnknownKeyError):
        SignedCheckpoint.open(text, verifier_for("x.example/log", SoftwareNoteSigner.generate()))


def test_witness_cosignature_counts_towards_the_quorum() -> None:
    log_key, witness_key = SoftwareNoteSigner.generate(), SoftwareNoteSigner.generate()
    signed = SignedCheckpoint.issue(Checkpoint(ORIGIN, 9, ROOT), log_key)
    witness = verifier_for("witness.example", witness_key, SIG_COSIGNATURE_V1)
    with pytest.raises(NoteError, match="witness"):
        SignedCheckpoint.open(signed.render(), verifier_for(ORIGIN, log_key), [witness], 1)
    cosigned = signed.cosigned("witness.example", witness_key, 1_700_000_000)
    opened = SignedCheckpoint.open(cosigned.render(), verifier_for(ORIGIN, log_key), [witness], 1)
    assert opened.checkpoint.size == 9
    assert NoteVerifier.from_vkey(witness.to_vkey()) == witness
