"""TOTP enrolment material: provisioning URI, QR renderings, and no secret in a repr."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pytest

from forecourt.edge.operators import OperatorService, Role, TotpEnrolmentError
from forecourt.edge.operators.totp import code_at, enrolment_for, new_secret
from tests.edge.operators.conftest import DEALER, FakeClock, Staff


def test_enrolment_gives_an_otpauth_uri_and_qr_code_for_console_and_terminal() -> None:
    secret = new_secret()
    enrolment = enrolment_for(secret, "sam", DEALER, "Forecourt")
    uri = urlparse(enrolment.provisioning_uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [secret]
    assert parse_qs(uri.query)["issuer"] == ["Forecourt"]
    assert enrolment.qr_svg_data_uri().startswith("data:image/svg+xml")
    png = enrolment.qr_png_data_uri()
    assert base64.b64decode(png.split(",", 1)[1]).startswith(b"\x89PNG")
    assert "█" in enrolment.qr_terminal_text() or "▀" in enrolment.qr_terminal_text()
    assert secret not in repr(enrolment)
    assert len(base64.b32decode(secret)) == 20  # 160 bits


def test_re_enrolment_keeps_the_old_secret_until_a_code_confirms_the_new_one(
    operators: OperatorService, staff: Staff, clock: FakeClock
) -> None:
    tech = staff.hire(Role.TECHNICIAN)
    fresh = operators.begin_totp_enrolment(tech.operator)
    with pytest.raises(TotpEnrolmentError):
        operators.confirm_totp_enrolment(
            tech.operator, f"{(int(code_at(fresh.secret, clock())) + 1) % 10**6:06d}"
        )
    operators.login(DEALER, tech.operator.username, tech.password, tech.code())  # old still works
    clock.advance(30)
    operators.confirm_totp_enrolment(tech.operator, code_at(fresh.secret, clock()))
    clock.advance(30)
    operators.login(DEALER, tech.operator.username, tech.password, code_at(fresh.secret, clock()))
