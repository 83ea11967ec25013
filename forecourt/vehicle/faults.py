"""Fault injection: how a real car fails during a dealer activation, on demand.

One :class:`FaultPlan` per car, set from the command line (``forecourt vehicle run
--drop-after-blocks 3 ...``) or from tests. The DoIP entity consults the link faults, the apply
consults the ECU and power faults. Power loss in tests is the :class:`PowerLoss` exception raised
from the apply hook (the car is then rebuilt from its store, as after a restart); from the CLI it
is a process exit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from forecourt.logging import get_logger

_log = get_logger("vehicle.faults")

POWER_LOSS_EXIT_CODE = 137


class PowerLoss(BaseException):
    """Power cut mid-apply: a BaseException so no ``except Exception`` cleanup runs."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


@dataclass
class FaultPlan:
    drop_after_bytes: int | None = None  # close the TCP connection after this many bytes in
    drop_after_blocks: int | None = None  # ... or after this many TransferData requests
    fail_flash_ecu: int | None = None  # staging an image on this ECU fails (NRC 0x72)
    power_loss_at_step: str | None = None  # exit the process when the apply reaches this step
    link_bytes_per_second: int | None = None  # receive rate cap (slow link)
    refuse_routing_activation: bool = False
    one_shot: bool = True  # link drops fire once, so the resumed transfer can finish

    def link_drop_fired(self) -> None:
        if self.one_shot:
            self.drop_after_bytes = None
            self.drop_after_blocks = None


ApplyHook = Callable[[str], None]


def no_hook(step: str) -> None:
    """Default apply hook: nothing happens between steps."""


def process_exit_hook(plan: FaultPlan) -> ApplyHook:
    """From the CLI: simulate power loss by leaving the process at once, without cleanup."""

    def hook(step: str) -> None:
        if plan.power_loss_at_step == step:
            _log.warning("power_loss_injected", step=step)
            os._exit(POWER_LOSS_EXIT_CODE)

    return hook
