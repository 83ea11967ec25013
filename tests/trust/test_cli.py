"""``forecourt bundle inspect`` prints the bundle and VERIFIED / REFUSED with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from forecourt.cli import app
from forecourt.trust.canonical import canonical_bytes

from .world import NOW, make_world

AT = ["--at", NOW.strftime("%Y-%m-%dT%H:%M:%S")]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The CLI configures structlog on the runner's captured stderr; undo it after each test."""
    yield
    structlog.reset_defaults()


def _write(tmp_path: Path) -> tuple[Path, Path, Path]:
    world = make_world()
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(world.bundle())
    director = tmp_path / "director-root.json"
    director.write_bytes(canonical_bytes(world.director.root.to_dict()))
    image = tmp_path / "image-root.json"
    image.write_bytes(canonical_bytes(world.images.root.to_dict()))
    return bundle, director, image


def test_inspect_prints_bundle_and_verified(tmp_path: Path) -> None:
    bundle, director, image = _write(tmp_path)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app,
        [
            "bundle",
            "inspect",
            str(bundle),
            "--root",
            str(director),
            "--image-root",
            str(image),
            *AT,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "TBX0001" in result.output and "connected_services" in result.output
    assert "VERIFIED" in result.output


def test_inspect_against_wrong_root_says_refused_with_reason(tmp_path: Path) -> None:
    bundle, _director, image = _write(tmp_path)
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app,
        ["bundle", "inspect", str(bundle), "--root", str(image), "--image-root", str(image), *AT],
    )
    assert result.exit_code == 1
    assert "REFUSED" in result.output and "signature_threshold_not_met" in result.output
