"""``forecourt demo``: start the local deployment, print how to use it, optionally activate every
car once, then wait for Ctrl-C (or exit at once with ``--exit-after``)."""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from forecourt.demo.deployment import DeploymentOptions, LocalDeployment, start_deployment
from forecourt.edge.operators.totp import code_at
from forecourt.edge.workflow import WorkflowState
from forecourt.logging import configure_logging
from forecourt.settings import load_settings

#: Libraries that log every expected negative response (the link's resume probe) at INFO/ERROR.
QUIET_LOGGERS = (
    "UdsClient", "udsoncan", "doipclient", "uvicorn", "uvicorn.error", "httpx", "alembic",
)  # fmt: skip


@dataclass(frozen=True)
class ActivationResult:
    vin: str
    state: str
    seconds: float
    detail: str


def quiet_libraries() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def write_fleet(deployment: LocalDeployment) -> Path:
    """``fleet.json``: the cars and what each customer bought (``forecourt activate`` reads it)."""
    path = deployment.options.data_dir / "fleet.json"
    cars = [
        {"vin": c.vin, "model": c.model, "address": c.address, "features": list(c.features)}
        for c in deployment.fleet
    ]
    path.write_text(json.dumps({"cars": cars}, indent=2) + "\n", encoding="utf-8")
    return path


def activate_all(deployment: LocalDeployment, timeout: float = 120.0) -> list[ActivationResult]:
    """Every car not yet activated, at once, as the technician (the edge bounds concurrency)."""
    started: dict[str, tuple[str, float]] = {}
    results: list[ActivationResult] = []
    for car in deployment.fleet:
        if car.state == "activated":
            results.append(ActivationResult(car.vin, "already activated", 0.0, ""))
            continue
        started[car.vin] = (deployment.start_activation(car.vin), time.perf_counter())
    for vin, (workflow_id, began) in started.items():
        record = deployment.edge.activations.wait(workflow_id, timeout=timeout)
        seconds = time.perf_counter() - began
        detail = f"{record.error_code}: {record.error_detail}" if record.error_code else ""
        state = "activated" if record.state is WorkflowState.DONE else record.state.value
        results.append(ActivationResult(vin, state, seconds, detail))
    return results


def print_ready(console: Console, deployment: LocalDeployment) -> None:
    """What a newcomer needs on one screen: where to log in, as whom, which cars, what to type."""
    now = datetime.now(UTC)
    data_dir = deployment.options.data_dir
    console.rule("[bold]Forecourt demo ready")
    console.print(
        f"ready in [bold]{deployment.timings['total']:.1f} s[/bold] "
        f"({'reused' if deployment.reused else 'created'} {data_dir})"
    )
    console.print(f"cloud    {deployment.cloud.url}  (mutual TLS, OEM PKI in {data_dir}/pki)")
    console.print(
        f"console  [bold]{deployment.console_url}[/bold]  dealer {deployment.options.dealer_id}"
    )
    console.print("[bold]Operators[/bold] (sign in with password + authenticator code):")
    for login in deployment.operators.values():
        secret = login.totp_secret or ""
        code = code_at(secret, now) if secret else "-"
        console.print(
            f"  {login.username:<7} {login.role:<18} password [bold]{login.password}[/bold]  "
            f"TOTP secret {secret}  code now {code}",
            soft_wrap=True,
        )
    console.print(
        "Add a TOTP secret to an authenticator app, or print a fresh code with:\n"
        "  python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\""
    )
    cars = Table(title="Cars on the dealer network (DoIP, port 13400)", title_justify="left")
    for column in ("VIN", "model", "address", "state", "bought features"):
        cars.add_column(column)
    for car in deployment.fleet:
        cars.add_row(car.vin, car.model, car.address, car.state, ", ".join(car.features))
    console.print(cars)
    first = deployment.fleet[0] if deployment.fleet else None
    local = shlex.quote(str(data_dir))
    console.print("Try:")
    if first is not None:
        console.print(f"  forecourt activate {first.vin} --local {local}")
    console.print(f"  forecourt edge status --local {local}")
    if len(deployment.fleet) >= 3:
        console.print(
            f"  printf '%s\\n' {' '.join(c.vin for c in deployment.fleet[1:3])} > batch.csv && "
            f"forecourt activate --batch batch.csv --features {deployment.fleet[1].features[0]} "
            f"--local {local}   (then approve as another operator on the console)"
        )
    console.print(
        f"or sign in at {deployment.console_url} as tech and press Activate beside a car."
    )


def run_demo(
    options: DeploymentOptions,
    *,
    activate: bool,
    exit_after: bool,
    console: Console | None = None,
    stop: threading.Event | None = None,
) -> int:
    console = console or Console(highlight=False)
    log_file = options.data_dir.with_name(options.data_dir.name + ".log")
    configure_logging(load_settings().log_level, file=log_file)
    quiet_libraries()
    deployment = start_deployment(options)
    console.print(f"[dim]logs: {log_file} (JSON lines)[/dim]")
    try:
        write_fleet(deployment)
        print_ready(console, deployment)
        failed = 0
        if activate:
            began = time.perf_counter()
            results = activate_all(deployment)
            for r in results:
                line = f"{r.vin}  {r.state}  {r.seconds:.2f} s"
                console.print(line + (f"  {r.detail}" if r.detail else ""))
            failed = sum(1 for r in results if r.state not in ("activated", "already activated"))
            console.print(
                f"{len(results) - failed}/{len(results)} cars activated in "
                f"{time.perf_counter() - began:.2f} s"
            )
        if exit_after:
            return 1 if failed else 0
        console.print("[dim]Ctrl-C stops everything.[/dim]")
        try:
            (stop or threading.Event()).wait()
        except KeyboardInterrupt:
            console.print("stopping…")
        return 0
    finally:
        deployment.close()
