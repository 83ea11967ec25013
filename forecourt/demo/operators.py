"""The demo's seeded operators: ready-made, enrolled accounts whose secrets the demo prints.

A real edge never does this: an account is created with a one-time enrolment code, its owner sets
their own password and TOTP, and reviewer-capable roles wait for a second operator's approval.
The demo has nobody to type those in, so it writes enrolled, approved rows directly. Nothing in
the console or the CLI reaches this module; every seeded account is logged as such.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from secrets import token_urlsafe

from sqlalchemy.orm import Session, sessionmaker

from forecourt.edge.operators import PasswordHashing, Role
from forecourt.edge.operators.repository import OperatorRepository
from forecourt.edge.operators.sealing import TotpKey
from forecourt.edge.operators.totp import new_secret
from forecourt.logging import get_logger
from forecourt.store.edge import EdgeOperator

_log = get_logger("demo.operators")


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    """A seeded operator's secrets, printed and stored by the demo only; ``repr`` hides them."""

    username: str
    password: str
    totp_secret: str
    role: Role

    def __repr__(self) -> str:
        return f"DemoCredentials(username={self.username}, role={self.role.value}, [redacted])"


def seed_demo_operator(
    sessions: sessionmaker[Session],
    passwords: PasswordHashing,
    *,
    dealer_id: str,
    username: str,
    display_name: str,
    role: Role,
    now: datetime,
) -> DemoCredentials | None:
    """Write an enrolled demo account (None when the username exists); demo use only."""
    password, secret, row_id = token_urlsafe(12), new_secret(), str(uuid.uuid4())
    sealed = TotpKey.for_sessions(sessions).seal(row_id, secret)
    with sessions.begin() as s:
        repo = OperatorRepository(s)
        if repo.exists(dealer_id, username):
            return None
        repo.add(
            EdgeOperator(
                id=row_id, dealer_id=dealer_id, username=username,
                display_name=display_name, role=role.value,
                password_hash=passwords.hash(password), totp_secret=sealed,
                totp_pending_secret=None, totp_last_step=None, failed_attempts=0,
                locked_until=None, active=True, created_at=now, password_changed_at=now,
                last_login_at=None, enrolment_code_sha256=None, enrolment_expires_at=None,
                pending_role=None, awaiting_approval=False,
            )
        )  # fmt: skip
    _log.warning("demo_operator_seeded", dealer_id=dealer_id, username=username, role=role.value)
    return DemoCredentials(username, password, secret, role)
