"""Hypothesis settings shared by the fuzz suite: deterministic in CI, deeper on request.

Every property runs with ``derandomize=True`` and no example database, so a CI run explores the
same inputs each time and a failure reproduces from the test name alone. The example count is
modest by default (the whole suite stays well under 40 s on two cores); set
``FORECOURT_FUZZ_EXAMPLES`` to multiply it for a long local run, e.g.
``FORECOURT_FUZZ_EXAMPLES=50 .venv/bin/pytest tests/fuzz``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

_F = TypeVar("_F", bound=Callable[..., Any])


def _multiplier() -> int:
    raw = os.environ.get("FORECOURT_FUZZ_EXAMPLES", "")
    try:
        return max(1, int(raw)) if raw else 1
    except ValueError:
        return 1


def fuzz(examples: int, *, fixtures: bool = False) -> Callable[[_F], _F]:
    """``@settings`` for one property: ``examples`` inputs, times ``FORECOURT_FUZZ_EXAMPLES``."""
    suppressed = [HealthCheck.too_slow, HealthCheck.data_too_large]
    if fixtures:  # the fixture is the system under test and must survive every example
        suppressed.append(HealthCheck.function_scoped_fixture)
    return settings(
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=examples * _multiplier(),
        suppress_health_check=suppressed,
        print_blob=True,
    )
