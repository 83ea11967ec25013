"""Creating a dealer's first administrator, for a fresh edge box and for the demo."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from forecourt.edge.operators.service import OperatorService
from forecourt.edge.operators.totp import TotpEnrolment


@dataclass(frozen=True, slots=True)
class BootstrapCredentials:
    """What the installer prints once: the admin's username, password and TOTP enrolment.

    ``repr`` hides the secrets so that passing this to a logger by mistake leaks nothing.
    """

    operator_id: str
    dealer_id: str
    username: str
    password: str
    totp_secret: str
    enrolment: TotpEnrolment

    def __repr__(self) -> str:
        return (
            f"BootstrapCredentials(operator_id={self.operator_id}, dealer_id={self.dealer_id}, "
            f"username={self.username}, password=[redacted], totp_secret=[redacted])"
        )


def bootstrap_first_admin(
    operators: OperatorService,
    dealer_id: str,
    *,
    username: str = "admin",
    display_name: str = "Dealer administrator",
    password: str | None = None,
) -> BootstrapCredentials:
    """Create the dealer's first ``dealer_admin`` with a generated password and TOTP secret.

    Refused with :class:`~forecourt.edge.operators.service.AlreadyBootstrapped` once the dealer has
    any operator. The TOTP enrolment is confirmed by the admin's first login.
    """
    password = password or secrets.token_urlsafe(18)
    created = operators.bootstrap_admin(dealer_id, username, display_name, password)
    return BootstrapCredentials(
        operator_id=created.operator.id,
        dealer_id=dealer_id,
        username=username,
        password=password,
        totp_secret=created.enrolment.secret,
        enrolment=created.enrolment,
    )
