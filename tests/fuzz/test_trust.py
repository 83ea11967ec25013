"""The trust layer: mutated bundles, manifests, certificates and CRLs are refused with a typed
:class:`~forecourt.trust.errors.TrustError`, logged, and the car's trust state is left as it was.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs
from tuf.api.metadata import Metadata
from tuf.api.serialization import SerializationError

from forecourt.trust import errors
from forecourt.trust.canonical import MAX_DEPTH, canonical_bytes, parse_bounded
from forecourt.trust.certificates import (
    CertificatePurpose,
    ecu_identity,
    load_certificate,
    load_crl,
)
from forecourt.trust.chain import verify_chain
from forecourt.trust.manifest import (
    EcuVersionReport,
    build_ecu_report,
    build_manifest,
    verify_manifest,
)
from forecourt.trust.model import ACTIVATION_FIELD
from forecourt.trust.testing import NOW, VIN, make_world
from forecourt.trust.verifier import verify_bundle
from tests.fuzz.mutations import mutated_bytes, mutated_json, mutated_tree
from tests.fuzz.settings import fuzz

WORLD = make_world()
BUNDLE = WORLD.bundle()
BUNDLE_DOC = json.loads(BUNDLE)
SERIAL = "TBX0001"
CERT_DER = WORLD.identity_certs[SERIAL].public_bytes(Encoding.DER)
CERT_PEM = WORLD.identity_certs[SERIAL].public_bytes(Encoding.PEM)
CRL_DER = WORLD.pki.crl.public_bytes(Encoding.DER)


def _refused_bundle(bundle: bytes) -> errors.BundleError | None:
    """Verify ``bundle``; return its refusal after checking the invariants every refusal keeps."""
    before = copy.deepcopy(WORLD.car)
    with capture_logs() as logs:
        try:
            verify_bundle(bundle, WORLD.car, NOW)
        except errors.BundleError as error:
            assert WORLD.car == before
            assert error.code != errors.TrustError.code and str(error)
            assert [e for e in logs if e["event"] == "bundle_refused"], "refusal not logged"
            return error
    assert WORLD.car == before
    return None


@fuzz(300)
@given(mutated_json(BUNDLE_DOC))
def test_structurally_mutated_bundles_are_refused_with_a_bundle_error(bundle: bytes) -> None:
    _refused_bundle(bundle)


@fuzz(150)
@given(mutated_bytes(BUNDLE))
def test_byte_mutated_bundles_are_refused_with_a_bundle_error(bundle: bytes) -> None:
    _refused_bundle(bundle)


def _resigned(doc: dict[str, Any]) -> bytes:
    """The bundle with ``doc`` as its director targets, signed again with the director's keys.

    Signatures then hold, so the verifier's checks *after* the signature check are what the
    mutation reaches (activation, features, sealed secrets, images).
    """
    obj = copy.deepcopy(BUNDLE_DOC)
    targets = obj["director"]["targets"]
    md = Metadata.from_dict(copy.deepcopy({"signatures": [], "signed": doc}))
    for signer in WORLD.director.keys.targets.signers:
        md.sign(signer, append=True)
    targets["signatures"] = md.to_dict()["signatures"]
    targets["signed"] = doc
    return canonical_bytes(obj)


@st.composite
def resigned_activations(draw: st.DrawFn) -> bytes:
    signed = BUNDLE_DOC["director"]["targets"]["signed"]
    activation = draw(mutated_tree(signed[ACTIVATION_FIELD]))
    doc = {**copy.deepcopy(signed), ACTIVATION_FIELD: activation}
    try:
        return _resigned(doc)
    except (ValueError, TypeError, SerializationError):  # not canonical JSON: cannot be signed
        return canonical_bytes(BUNDLE_DOC)


@fuzz(150)
@given(resigned_activations())
def test_signed_but_malformed_activations_are_refused_with_a_bundle_error(bundle: bytes) -> None:
    _refused_bundle(bundle)


# manifests ------------------------------------------------------------------------------------
def _manifest() -> tuple[bytes, dict[str, Any]]:
    reports = []
    for serial in ("TBX0001", "IVI0001"):
        report = EcuVersionReport(
            ecu_serial=serial, counter=5, nonce=f"n-{serial}", latest_verified_time=NOW,
            images=(), features=(), activation_counter=8, attack_detected="",
        )  # fmt: skip
        reports.append(build_ecu_report(WORLD.signing[serial], report))
    raw = build_manifest(WORLD.signing["TBX0001"], VIN, "TBX0001", reports)
    inventory = {s: WORLD.signing[s].public_key() for s in ("TBX0001", "IVI0001")}
    return raw, inventory


MANIFEST, INVENTORY = _manifest()


@fuzz(300)
@given(st.one_of(mutated_json(json.loads(MANIFEST)), mutated_bytes(MANIFEST)))
def test_mutated_manifests_are_refused_with_a_manifest_error_and_logged(raw: bytes) -> None:
    with capture_logs() as logs:
        try:
            verify_manifest(raw, INVENTORY, {"TBX0001": 4, "IVI0001": 4}, vin=VIN)
        except errors.ManifestError as error:
            assert str(error)
            assert [e for e in logs if e["event"] == "manifest_refused"], "refusal not logged"


def test_the_unmutated_manifest_verifies() -> None:
    assert verify_manifest(MANIFEST, INVENTORY, {"TBX0001": 4, "IVI0001": 4}, vin=VIN)


# certificates and CRLs ------------------------------------------------------------------------
@fuzz(300)
@given(st.one_of(mutated_bytes(CERT_DER), mutated_bytes(CERT_PEM), st.binary(max_size=64)))
def test_mutated_certificates_are_refused_with_a_certificate_error(raw: bytes) -> None:
    try:
        load_certificate(raw)
        ecu_identity(raw)
        verify_chain(
            raw, [WORLD.pki.ca], WORLD.pki.root, CertificatePurpose.ECU_IDENTITY, NOW,
            WORLD.pki.crl,
        )  # fmt: skip
    except errors.CertificateError as error:
        assert error.nrc in range(0x50, 0x59)


@fuzz(200)
@given(st.one_of(mutated_bytes(CRL_DER), st.binary(max_size=64)))
def test_mutated_crls_are_refused_with_a_certificate_format_error(raw: bytes) -> None:
    try:
        crl = load_crl(raw)
    except errors.CertificateFormatError:
        return
    try:
        verify_chain(CERT_DER, [WORLD.pki.ca], WORLD.pki.root, CertificatePurpose.ECU_IDENTITY,
                     NOW, crl)  # fmt: skip
    except errors.CertificateError as error:
        assert error.nrc in range(0x50, 0x59)


# canonical JSON bounds ------------------------------------------------------------------------
json_texts = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
    st.integers(0, 3000).map(lambda depth: b'{"a":' + b"[" * depth + b"]" * depth + b"}"),
    st.integers(0, 50).map(lambda n: b"{" + b",".join(b'"k":%d' % i for i in range(n)) + b"}"),
    st.sampled_from([b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1.0}', b'{"a": 1e5}', b"\xff{}"]),
)


@fuzz(400)
@given(json_texts, st.integers(0, 4096))
def test_parse_bounded_returns_an_object_or_refuses_with_a_bundle_error(
    raw: bytes, bound: int
) -> None:
    try:
        obj = parse_bounded(raw, bound, "object")
    except errors.EndlessData as error:
        assert len(raw) > bound and error.detail == {"size": len(raw), "bound": bound}
    except errors.BundleFormatError as error:
        assert len(raw) <= bound and str(error)
    else:
        assert len(raw) <= bound and isinstance(obj, dict)
        assert _depth(obj) <= MAX_DEPTH + 1


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def test_a_certificate_with_a_malformed_subject_is_refused_when_loaded() -> None:
    """cryptography decodes the subject lazily; the refusal must come at load, typed."""
    broken = CERT_DER.replace(b"\x55\x04\x0a\x0c", b"\x55\x04\x0a\x0d")  # O: UTF8String -> tag 13
    try:
        load_certificate(broken)
    except errors.CertificateFormatError as error:
        assert error.nrc == 0x54
    else:  # pragma: no cover
        raise AssertionError("a certificate with a malformed subject loaded")
