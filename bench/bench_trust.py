"""Bundles signed/s and verified/s beside raw Ed25519 sign/verify/s measured in the same run.

Usage: .venv/bin/python bench/bench_trust.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from forecourt.logging import configure_logging
from forecourt.trust.testing import NOW, make_world
from forecourt.trust.verifier import verify_bundle


def rate(fn, seconds: float) -> float:  # type: ignore[no-untyped-def]
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


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
    bundle = builder.build(world.director, image_md, NOW + timedelta(days=1))
    signed = rate(lambda: builder.build(world.director, image_md, NOW + timedelta(days=1)), seconds)
    verified = rate(lambda: verify_bundle(bundle, world.car, NOW), seconds)

    print(f"bundle size                 {len(bundle):>10} bytes (2 ECUs, 1 feature, 1 secret)")
    print(f"raw Ed25519 sign/s          {raw_sign:>10.0f}")
    print(f"raw Ed25519 verify/s        {raw_verify:>10.0f}")
    print(
        f"bundles signed/s            {signed:>10.0f}   ratio to raw sign   {signed / raw_sign:.4f}"
    )
    ratio = verified / raw_verify
    print(f"bundles verified/s          {verified:>10.0f}   ratio to raw verify {ratio:.4f}")
    print(
        "(a bundle signs 3 director objects; verifying checks 7 signatures over both repositories)"
    )


if __name__ == "__main__":
    main()
