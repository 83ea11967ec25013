"""Edge operators benchmark: login (argon2id + TOTP + session) and session checks per second.

Baseline, measured in the same run: one bare argon2id verification at the same cost, the floor
that any login must pay. Prints figures and the ratio of each operation to that baseline.

    .venv/bin/python bench/bench_operators.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

from forecourt.edge.operators import OperatorService, bootstrap_first_admin
from forecourt.edge.operators.totp import code_at
from forecourt.logging import configure_logging
from forecourt.store.engine import alembic_config, create_engine_for, session_factory


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _per_second(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING")
    logins = 5 if args.quick else 30
    checks = 200 if args.quick else 2000

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine_for(f"sqlite:///{Path(tmp) / 'edge.sqlite3'}")
        cfg = alembic_config(engine)
        cfg.set_main_option("path_separator", "os")
        command.upgrade(cfg, "edge@head")
        clock = Clock()
        service = OperatorService(session_factory(engine), clock=clock)
        creds = bootstrap_first_admin(service, "dealer-bench")

        hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
        stored = hasher.hash(creds.password)
        t0 = time.perf_counter()
        for _ in range(logins):
            hasher.verify(stored, creds.password)
        baseline = time.perf_counter() - t0

        t0 = time.perf_counter()
        token = ""
        for _ in range(logins):
            clock.now += timedelta(seconds=30)
            code = code_at(creds.totp_secret, clock.now)
            token = service.login(
                "dealer-bench", creds.username, creds.password, code
            ).session_token
        login_time = time.perf_counter() - t0

        t0 = time.perf_counter()
        for _ in range(checks):
            service.authenticate(token)
        check_time = time.perf_counter() - t0
        engine.dispose()

    base_rate = _per_second(logins, baseline)
    login_rate = _per_second(logins, login_time)
    check_rate = _per_second(checks, check_time)
    print(f"argon2id verify (baseline, RFC 9106 low-memory): {base_rate:8.1f}/s")
    print(
        f"login (argon2id + TOTP + session, SQLite):      {login_rate:8.1f}/s  "
        f"ratio to baseline {login_rate / base_rate:.2f}"
    )
    print(
        f"session check (SHA-256 lookup + touch, SQLite): {check_rate:8.1f}/s  "
        f"ratio to baseline {check_rate / base_rate:.1f}"
    )


if __name__ == "__main__":
    main()
