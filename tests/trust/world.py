"""Test-only helpers over the public test world in :mod:`forecourt.trust.testing`."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import pytest

from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.errors import BundleError
from forecourt.trust.testing import (
    IVI_IMAGE,
    NOW,
    TBOX_IMAGE,
    VIN,
    World,
    ed,
    keys,
    make_world,
)
from forecourt.trust.verifier import CarTrustState, verify_bundle

__all__ = [
    "IVI_IMAGE",
    "NOW",
    "TBOX_IMAGE",
    "VIN",
    "World",
    "assert_refused",
    "ed",
    "keys",
    "make_world",
    "tamper",
]


def assert_refused(
    bundle: bytes, car: CarTrustState, error: type[BundleError], now: datetime = NOW
) -> BundleError:
    """The bundle is refused with exactly ``error`` and the car's state is unchanged."""
    before = copy.deepcopy(car)
    with pytest.raises(BundleError) as caught:
        verify_bundle(bundle, car, now)
    assert type(caught.value) is error, caught.value
    assert caught.value.code == error.code
    assert car == before
    return caught.value


def tamper(bundle: bytes, edit: Any) -> bytes:
    """Edit the parsed bundle (after signing) and re-encode it canonically."""
    obj = json.loads(bundle)
    edit(obj)
    return canonical_bytes(obj)
