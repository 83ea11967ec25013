"""Fixtures for the blob tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.blobs.package_server import PackageServer, running_package_server


@pytest.fixture
def package_server(tmp_path: Path) -> Iterator[PackageServer]:
    with running_package_server(tmp_path / "cloud") as server:
        yield server
