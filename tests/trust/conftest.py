"""A fresh SoftHSM2 token per test, in a tmp dir: tests never touch the system token store."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class SoftHsmToken:
    label: str
    pin_env: str

    def uri(self, object_label: str) -> str:
        return (
            f"pkcs11:token={self.label};object={object_label}"
            f"?module-path={SOFTHSM_MODULE}&pin-source=env:{self.pin_env}"
        )


@pytest.fixture
def softhsm_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsmToken]:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    monkeypatch.setenv("FORECOURT_TEST_HSM_PIN", "4321")
    label = f"fc-{tmp_path.name[-20:]}"
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            "4321",
            "--so-pin",
            "87654321",
        ],
        check=True,
        capture_output=True,
    )
    yield SoftHsmToken(label, "FORECOURT_TEST_HSM_PIN")
