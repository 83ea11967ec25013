"""Bundles signed/s and verified/s beside raw Ed25519 sign/verify/s measured in the same run.

"Before" is the previous signing path, kept here as the baseline: every signature re-encodes
its payload with securesystemslib's pure-Python canonical JSON and the bundle encodes all of
both repositories' metadata again. "After" is ``BundleBuilder.build``: payloads encoded once
by the C-backed encoder in ``forecourt.trust.olpc``, envelopes spliced around them, the image
repository's bytes reused from its publish.

Usage: .venv/bin/python bench/bench_trust.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from forecourt.logging import configure_logging
from forecourt.trust import olpc, verifier
from forecourt.trust._sslib import Metadata, MetaFile, Snapshot, Timestamp
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.issuer import BundleBuilder, Repository, TopLevelMetadata
from forecourt.trust.model import BUNDLE_FORMAT
from forecourt.trust.testing import NOW, make_world
from forecourt.trust.verifier import verify_bundle


def rate(fn, seconds: float) -> float:  # type: ignore[no-untyped-def]
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


class LegacyBuild:
    """The signing path as it was before payloads were encoded once (the baseline)."""

    def __init__(self, director: Repository) -> None:
        self.director = director
        self.version = 10_000  # apart from the repository's own versions; only timing matters

    def __call__(self, builder: BundleBuilder, image: TopLevelMetadata, expires: datetime) -> bytes:
        keys = self.director.keys
        self.version += 1
        targets = builder.director_targets()
        targets.version, targets.expires = self.version, expires
        targets_md = Metadata(targets)
        for signer in keys.targets.signers:
            targets_md.sign(signer, append=True)  # tuf's default: securesystemslib encoding
        snapshot_md = Metadata(
            Snapshot(self.version, expires=expires, meta={"targets.json": MetaFile(self.version)})
        )
        for signer in keys.snapshot.signers:
            snapshot_md.sign(signer, append=True)
        timestamp_md = Metadata(
            Timestamp(self.version, expires=expires, snapshot_meta=MetaFile(self.version))
        )
        for signer in keys.timestamp.signers:
            timestamp_md.sign(signer, append=True)
        director = TopLevelMetadata(
            list(self.director.roots[1:]), timestamp_md, snapshot_md, targets_md
        )
        return olpc.reference_encode(
            {"format": BUNDLE_FORMAT, "director": director.to_dict(), "image": image.to_dict()}
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    seconds = 0.5 if parser.parse_args().quick else 3.0
    configure_logging("WARNING")

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = b"x" * 2048
    signature = key.sign(message)
    raw_sign = rate(lambda: key.sign(message), seconds)
    raw_verify = rate(lambda: public.verify(signature, message), seconds)

    world = make_world()
    image_md = world.images.publish_images(NOW + timedelta(days=30))
    builder = world.builder()
    expires = NOW + timedelta(days=1)
    legacy = LegacyBuild(world.director)
    legacy_bundle = legacy(builder, image_md, expires)
    bundle = builder.build(world.director, image_md, expires)
    verify_bundle(legacy_bundle, world.car, NOW)  # both paths give bundles the car accepts
    verify_bundle(bundle, world.car, NOW)
    assert olpc.reference_encode(json.loads(bundle)) == bundle  # and canonical bytes
    signed_before = rate(lambda: legacy(builder, image_md, expires), seconds)
    signed = rate(lambda: builder.build(world.director, image_md, expires), seconds)
    verified = rate(lambda: verify_bundle(bundle, world.car, NOW), seconds)
    car_side: Any = verifier  # the roots a verified bundle hands on, encoded as before
    car_side.canonical_bytes = olpc.reference_encode
    try:
        verified_before = rate(lambda: verify_bundle(bundle, world.car, NOW), seconds)
    finally:
        car_side.canonical_bytes = canonical_bytes

    print(f"bundle size                 {len(bundle):>10} bytes (2 ECUs, 1 feature, 1 secret)")
    print(f"raw Ed25519 sign/s          {raw_sign:>10.0f}")
    print(f"raw Ed25519 verify/s        {raw_verify:>10.0f}")
    print(
        f"bundles signed/s before     {signed_before:>10.0f}   ratio to raw sign   "
        f"{signed_before / raw_sign:.4f}   (securesystemslib encoding, everything re-encoded)"
    )
    print(
        f"bundles signed/s            {signed:>10.0f}   ratio to raw sign   {signed / raw_sign:.4f}"
        f"   {signed / signed_before:.2f}x before   ({1e3 / signed:.3f} ms per bundle)"
    )
    print(
        f"bundles verified/s before   {verified_before:>10.0f}   ratio to raw verify "
        f"{verified_before / raw_verify:.4f}"
    )
    print(
        f"bundles verified/s          {verified:>10.0f}   ratio to raw verify "
        f"{verified / raw_verify:.4f}   {verified / verified_before:.2f}x before"
        "   (signed payloads: tuf's securesystemslib serializer, unchanged)"
    )
    print(
        "(a bundle signs 3 director objects; verifying checks 7 signatures over both repositories)"
    )
    _pki_figures(seconds)


def _pki_figures(seconds: float) -> None:
    """verify_chain, UDS 0x29 proof and manifest checks beside raw ECDSA P-256 verify."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from forecourt.trust.manifest import (
        EcuVersionReport,
        build_ecu_report,
        build_manifest,
        verify_manifest,
    )
    from forecourt.trust.pki import CertificatePurpose, OemPki, verify_chain
    from forecourt.trust.uds_auth import (
        EcuContext,
        make_challenge,
        prove_possession,
        verify_possession,
    )

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    signature = key.sign(b"m" * 64, ec.ECDSA(hashes.SHA256()))
    raw_p256 = rate(lambda: public.verify(signature, b"m" * 64, ec.ECDSA(hashes.SHA256())), seconds)
    pki = OemPki.ephemeral(NOW)
    dealer = pki.issue_dealer("D001", "EDGE-1", now=NOW)
    chains = rate(
        lambda: verify_chain(
            dealer.cert, [pki.ca], pki.root, CertificatePurpose.DEALER, NOW, pki.crl
        ),
        seconds,
    )
    ctx, challenge = EcuContext("WF0XXXGCDX1234567", "TBX0001"), make_challenge()
    assert dealer.key is not None
    proof = prove_possession(dealer.key, challenge, ctx)
    proofs = rate(lambda: verify_possession(dealer.cert, challenge, proof, ctx), seconds)
    serials = [f"ECU{i:04d}" for i in range(10)]
    ecu_keys = {s: Ed25519PrivateKey.generate() for s in serials}
    reports = [build_ecu_report(ecu_keys[s], EcuVersionReport(s, 5, "n", NOW)) for s in serials]
    manifest = build_manifest(ecu_keys[serials[0]], "WF0XXXGCDX1234567", serials[0], reports)
    inventory = {s: k.public_key() for s, k in ecu_keys.items()}
    manifests = rate(lambda: verify_manifest(manifest, inventory, {}), seconds)
    print(f"raw ECDSA P-256 verify/s    {raw_p256:>10.0f}")
    print(
        f"verify_chain dealer/s       {chains:>10.0f}   ratio to raw P-256  {chains / raw_p256:.4f}"
        "  (2 signatures + CRL signature)"
    )
    print(
        f"0x29 proof verified/s       {proofs:>10.0f}   ratio to raw P-256  {proofs / raw_p256:.4f}"
    )
    print(
        f"manifests (10 ECUs) /s      {manifests:>10.0f}   ratio to raw Ed25519 "
        f"verify/11 {manifests * 11 / raw_verify_ed25519(seconds):.4f}   {len(manifest)} bytes"
    )


def raw_verify_ed25519(seconds: float) -> float:
    public = Ed25519PrivateKey.generate()
    signature = public.sign(b"x" * 2048)
    verifier = public.public_key()
    return rate(lambda: verifier.verify(signature, b"x" * 2048), seconds)


if __name__ == "__main__":
    main()
