"""One cloud (SQLite, uvicorn, mutual TLS) shared by the module's tests; cars and edges per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.world import CloudStack, cloud_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStack]:
    directory = tmp_path_factory.mktemp("cloud")
    with cloud_stack(f"sqlite:///{(directory / 'cloud.sqlite3').as_posix()}", directory) as built:
        yield built
