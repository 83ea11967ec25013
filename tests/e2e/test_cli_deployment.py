"""The production path, as separate processes started by the documented commands only.

What docs/operations.md tells a platform engineer to run, in that order: the OEM PKI, the
cloud's keys and roots, the registry loaded into PostgreSQL, the cloud over mutual TLS, the
dealer's certificate and ledger key, cars provisioned at the factory and run as a fleet, the edge
on SQLite, its operators, the customer's consent, one activation through ``forecourt activate``,
the edge's self-check, and the edge ledger exported and verified offline. Every process binds a
random 127.x.y.z address; readiness is polled (health endpoints, the fleet's ready line) with a
deadline, and every process is terminated and reaped even when a step fails.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pyotp
import pytest

DEALER = "DE-MUC-01"
EDGE_ID = "edge-muc-test"
SEED, VEHICLES = "7", "24"
DEADLINE_S = 20.0
COMMAND_TIMEOUT_S = 60.0
PASSWORDS = {
    "FORECOURT_PKI_ROOT_PASSWORD": "root-offline-passphrase-1",
    "FORECOURT_PKI_CA_PASSWORD": "issuing-ca-passphrase-2",
    "FORECOURT_CLOUD_KEY_PASSWORD": "role-keys-passphrase-3",
}
ADMIN_PASSWORD = "store-owner-passphrase-4"
TECH_PASSWORD = "workshop-passphrase-5"
AUDIT_PASSWORD = "reader-passphrase-6"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployment:
    """The working directory, the environment every command gets, and the running processes."""

    root: Path
    env: dict[str, str]
    processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)

    def run(self, *args: str, extra: dict[str, str] | None = None) -> str:
        """``forecourt ARGS`` to completion; its standard output, or the test fails showing both."""
        return self.run_together((args, extra or {}))[0]

    def run_together(self, *commands: tuple[tuple[str, ...], dict[str, str]]) -> list[str]:
        """Independent commands at once (each pays the interpreter's start-up); their outputs."""
        started = [
            (
                args,
                subprocess.Popen(
                    [sys.executable, "-m", "forecourt.cli", *args],
                    cwd=self.root,
                    env={**self.env, **extra},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                ),
            )
            for args, extra in commands
        ]
        outputs = []
        for args, process in started:
            try:
                out_b, err_b = process.communicate(timeout=COMMAND_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                out_b, err_b = process.communicate()
            out, err = out_b.decode(), err_b.decode()
            code = process.returncode
            assert code == 0, f"forecourt {' '.join(args)} -> {code}\n{out}{err}"
            outputs.append(out)
        return outputs

    def start(self, name: str, *args: str) -> Path:
        """``forecourt ARGS`` in the background; stdout and stderr go to ``<name>.log``."""
        log_path = self.root / f"{name}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "forecourt.cli", *args],
            cwd=self.root,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append((name, process, log))
        return log_path

    def stop(self) -> None:
        for _name, process, log in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            log.close()

    def alive(self) -> None:
        for name, process, log in self.processes:
            if process.poll() is not None:
                text = Path(log.name).read_text(errors="replace")[-3000:]
                pytest.fail(f"{name} exited with {process.returncode}:\n{text}")


def _until(what: str, deployment: Deployment, probe: Callable[[], bool]) -> None:
    """Poll ``probe`` until it holds; fail naming ``what`` at the deadline or if a process died."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        deployment.alive()
        if probe():
            return
        time.sleep(0.05)  # a polling period, not a synchronisation guess
    pytest.fail(f"not ready within {DEADLINE_S} s: {what}")


def _answers(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        return httpx.get(url, verify=context or True, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORECOURT_")}
    env |= PASSWORDS | {"FORECOURT_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    running = Deployment(tmp_path, env)
    try:
        yield running
    finally:
        running.stop()


def _secret(output: str) -> str:
    found = re.search(r"TOTP secret ([A-Z2-7]+)", output)
    assert found, output
    return found.group(1)


def _password(password: str) -> dict[str, str]:
    """The operator's password goes in the environment, never on the command line."""
    return {"FORECOURT_OPERATOR_PASSWORD": password}


class Phone:
    """An operator's authenticator. The edge accepts each 30 s step once (replay protection) and
    ±1 step of drift, so a second use shows the code of the step after the last one used: valid
    now (as the next step's, within drift) or later (as the current one) — no waiting."""

    def __init__(self, secret: str) -> None:
        self._totp = pyotp.TOTP(secret)
        self._last: float | None = None

    def code(self) -> str:
        at = time.time() if self._last is None else max(time.time(), self._last + 30)
        self._last = at
        return self._totp.at(at)


def _login(username: str, password: str, phone: Phone) -> tuple[list[str], dict[str, str]]:
    """Options naming the operator and a fresh code; the password in the environment."""
    return ["--username", username, "--totp", phone.code()], _password(password)


def _enrolment_code(output: str, username: str) -> str:
    found = re.search(rf"operator {username} .*\nenrolment code ([A-Z2-7-]+) ", output)
    assert found, output
    return found.group(1)


def _enrol(
    deployment: Deployment, edge_dir: list[str], username: str, code: str, password: str
) -> Phone:
    """The new operator's first sign-in: scan the secret, then choose the password."""
    env = {"FORECOURT_ENROLMENT_CODE": code}
    shown = deployment.run(
        "edge", "operator", "enrol", *edge_dir, "--username", username, extra=env
    )
    phone = Phone(_secret(shown))
    deployment.run(
        "edge", "operator", "enrol", *edge_dir, "--username", username, "--totp", phone.code(),
        extra=env | _password(password),
    )  # fmt: skip
    return phone


def test_documented_commands_deploy_separate_processes_and_activate_a_car(
    deployment: Deployment, pg_url: str
) -> None:
    rng = random.Random()
    net = f"127.{rng.randint(100, 250)}.{rng.randint(1, 250)}"
    cloud_host, edge_host, car_base = f"{net}.1", f"{net}.2", f"{net}.10"
    cloud_port, edge_port = _free_port(cloud_host), _free_port(edge_host)
    cloud_url, edge_url = f"https://{cloud_host}:{cloud_port}", f"http://{edge_host}:{edge_port}"
    db = ["--database-url", pg_url]
    blobs = ["--blob-dir", "cloud-blobs"]
    run = deployment.run

    # OEM: PKI ceremony, repository and ledger keys, the registry, the cloud over mutual TLS
    # (two worker processes on one port, as production runs it).
    none: dict[str, str] = {}
    _, _, seeded = deployment.run_together(
        (("pki", "init", "pki"), none),
        (("cloud", "init-keys", "keys"), none),
        (("cloud", "seed-demo", "--vehicles", VEHICLES, "--seed", SEED, *db, *blobs), none),
    )
    waiting = re.search(rf"^at {DEALER}: (\S+) (\S+)$", seeded, re.MULTILINE)
    assert waiting, seeded
    vin, features = waiting.group(1), waiting.group(2)
    run("pki", "issue-cloud", "pki", "--host", "localhost", "--host", cloud_host, "--out", "tls")
    run("pki", "root-crl", "pki")  # the root's CRL of issuing CAs (none revoked), served below
    deployment.start(
        "cloud", "cloud", "serve", "--pki", "pki", "--keys", "keys/keys.json",
        "--tls-dir", "tls", "--host", cloud_host, "--port", str(cloud_port), *db, *blobs,
        "--workers", "2",
    )  # fmt: skip
    oem_root = ssl.create_default_context(cafile=str(deployment.root / "pki" / "root.pem"))
    _until("cloud /v1/health", deployment, lambda: _answers(f"{cloud_url}/v1/health", oem_root))
    assert _answers(f"{cloud_url}/v1/trust/root-crl", oem_root)  # edges fetch it for their cars

    # The store's edge is enrolled: certificate, ledger key registered in the log of logs.
    # Factory (at the same time): the car gets its ECU certificates and pins the roots.
    edge_dir = ["--dealer-id", DEALER, "--data-dir", "edge"]
    anchors = [
        "--oem-pki", "pki", "--director-root", "keys/director-root.json",
        "--image-root", "keys/image-root.json",
    ]  # fmt: skip
    world = ["--vehicles", VEHICLES, "--seed", SEED, "--dir", "cars"]
    deployment.run_together(
        (("cloud", "dealer-cert", DEALER, EDGE_ID, "--out", "edge/tls", "--pki", "pki", *db), none),
        (("edge", "ledger-key", *edge_dir, "--edge-id", EDGE_ID, "--out", "edge.vkey"), none),
        (("vehicle", "provision", "--vin", vin, *world, *anchors), none),
    )
    run(
        "cloud", "register-edge-log", "--dealer", DEALER, "--edge", EDGE_ID,
        "--vkey", "edge.vkey", *db,
    )  # fmt: skip

    # The fleet runs the dealer's cars, each on its own address.
    fleet_log = deployment.start(
        "fleet", "vehicle", "fleet", "--dealer", DEALER, *world, "--base", car_base
    )
    _until("fleet ready", deployment, lambda: "fleet ready" in fleet_log.read_text())
    address = re.search(rf"^{vin} (\S+)$", fleet_log.read_text(), re.MULTILINE)
    assert address, fleet_log.read_text()

    # The edge on SQLite, its operators (each TOTP secret printed once), the customer's consent.
    deployment.start(
        "edge", "edge", "serve", *edge_dir, "--edge-id", EDGE_ID, "--car", address.group(1),
        "--cloud-ledger-vkey", "keys/ledger.vkey", "--cloud-url", cloud_url,
        "--host", edge_host, "--port", str(edge_port),
        "--sync-interval", "0.5", "--checkpoint-interval", "0.5",
    )  # fmt: skip
    _until("edge /healthz", deployment, lambda: _answers(f"{edge_url}/healthz"))
    admin = Phone(
        _secret(
            run(
                "edge", "operator", "bootstrap", *edge_dir,
                extra={"FORECOURT_OPERATOR_PASSWORD": ADMIN_PASSWORD},
            )
        )
    )  # fmt: skip
    # The admin signs in once (password and code) and adds both; each gets a one-time code only.
    added = run(
        "edge", "operator", "add", *edge_dir, "--by", "admin", "--totp", admin.code(),
        "--username", "tina", "--role", "technician", "--username", "audrey", "--role", "auditor",
        extra=_password(ADMIN_PASSWORD),
    )  # fmt: skip
    assert "TOTP secret" not in added and "password" not in added
    options, secret_env = _login("admin", ADMIN_PASSWORD, admin)
    consent = ("edge", "consent", vin, "--agree-all", "--subject-ref", "crm:customer-0001")
    run(*consent, "--edge", edge_url, *options, extra=secret_env)
    # Each new operator enrols their own authenticator and chooses their own password.
    phones = {
        "tina": _enrol(deployment, edge_dir, "tina", _enrolment_code(added, "tina"), TECH_PASSWORD),
        "audrey": _enrol(
            deployment, edge_dir, "audrey", _enrolment_code(added, "audrey"), AUDIT_PASSWORD
        ),
    }

    # The technician activates the car from the command line; the car is done.
    options, secret_env = _login("tina", TECH_PASSWORD, phones["tina"])
    activated = run(
        "activate", vin, "--features", features, "--edge", edge_url, *options, extra=secret_env
    )
    assert f"{vin} activated" in activated

    # The auditor reads the self-check: this edge, this dealer, the cloud reachable.
    options, secret_env = _login("audrey", AUDIT_PASSWORD, phones["audrey"])
    status = json.loads(
        run("edge", "status", "--edge", edge_url, "--json", *options, extra=secret_env).split(
            "\n", 1
        )[1]
    )
    assert (status["edge_id"], status["dealer_id"]) == (EDGE_ID, DEALER)
    assert status["status"] != "error", status

    # The edge's ledger, exported, verifies offline up to a checkpoint covering the activation.
    ledger = ["--db", f"sqlite:///{deployment.root / 'edge' / 'edge.sqlite3'}"]
    origin = f"{EDGE_ID}.{DEALER}.forecourt.edge".lower()
    verified: list[str] = []

    def covered() -> bool:
        exported = run("ledger", "export", *ledger, "--origin", origin, "--out", "edge.jsonl")
        size = int(exported.split()[1])
        verified[:] = [run("ledger", "verify", "log", "edge.jsonl", "--key", "edge.vkey")]
        return size > 0 and f"verified up to size {size}\n" in verified[0]

    _until("a checkpoint over the whole edge log", deployment, covered)
    assert verified[0].startswith("OK: ")
