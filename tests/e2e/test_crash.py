"""The edge killed with SIGKILL mid-transfer, restarted: one activation, a whole ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from forecourt.edge.link.doip import LinkConfig
from forecourt.edge.wiring import start_edge
from forecourt.edge.workflow import WorkflowState
from forecourt.vehicle.faults import FaultPlan
from tests.e2e.checks import cloud_activation, ledger_is_whole, steps
from tests.e2e.edge_process import consent_to_json, settings_to_json
from tests.e2e.world import CloudStack, hire

ROOT = Path(__file__).resolve().parents[2]


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for an observable condition (checked every 20 ms), not for a guessed duration."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        pause.wait(0.02)


def test_edge_killed_mid_transfer_resumes_and_the_car_is_activated_once(
    stack: CloudStack, tmp_path: Path
) -> None:
    vehicle = stack.activatable(exclude={c.vin for c in stack.cars})
    car = stack.start_car(vehicle, FaultPlan(link_bytes_per_second=1_500_000))
    assert vehicle.dealer_id is not None
    settings = stack.edge_settings(
        vehicle.dealer_id, tmp_path / "edge", link=LinkConfig(max_block_data=32 * 1024)
    )
    stack.register_edge_log(settings)
    with start_edge(settings, background=False) as edge:  # operators, hired before the run
        people = hire(edge)
        edge.sync_operators()
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "settings": settings_to_json(settings),
                "operator_id": people.technician.operator.id,
                "vin": car.vin,
                "features": list(stack.bought(vehicle)),
                "consent": consent_to_json(stack.consent(vehicle)),
            }
        )
    )
    receiver = car.car.ecus[0x1000].receiver.directory
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.edge_process", str(job)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        started = Path(str(job) + ".started")
        _until(started.exists, "the workflow to start")

        def package_bytes_confirmed() -> bool:
            return any(
                p.stat().st_size > 0
                for p in receiver.glob("*.part")
                if not p.name.startswith("activation.bundle")
            )

        _until(package_bytes_confirmed, "the car to confirm bytes of a package")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    workflow_id = started.read_text()

    with start_edge(settings) as edge:  # the restart: resume_all() picks the workflow up
        record = edge.activations.wait(workflow_id, timeout=60)
        assert record.state is WorkflowState.DONE, (record.error_code, record.error_detail)
        edge.sync_now()
        ledger_is_whole(edge)
        done = steps(edge, workflow_id)
        assert [s.to_state for s in done].count(WorkflowState.DONE) == 1
        applying = next(s for s in done if s.to_state is WorkflowState.APPLYING)
        files = applying.evidence["step"]["files"]
        # the package being sent at the kill continued from the car's confirmed position
        assert any(0 < f["resumed_from"] < f["size"] for f in files)
    assert car.car.state.activation_counter == 1  # applied once
    assert cloud_activation(stack, car.vin) == [("applied", vehicle.dealer_id)]
