import json

import pytest

from forecourt.logging import configure_logging, get_logger


def test_secrets_are_redacted_at_any_depth_in_json_logs(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    get_logger("test").info(
        "operator_login",
        username="alice",
        password="correct horse battery staple",
        context={"totp_secret": "JBSWY3DPEHPK3PXP", "dealer": "D-EU-1"},
        headers=[{"Authorization": "Bearer abc.def"}],
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["username"] == "alice"
    assert event["password"] == "[redacted]"
    assert event["context"] == {"totp_secret": "[redacted]", "dealer": "D-EU-1"}
    assert event["headers"] == [{"Authorization": "[redacted]"}]
    for secret in ("correct horse", "JBSWY3DPEHPK3PXP", "abc.def"):
        assert secret not in line


def test_levels_below_the_configured_one_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", json=True)
    log = get_logger("test")
    log.info("quiet")
    log.warning("loud")
    err = capsys.readouterr().err
    assert "quiet" not in err
    assert "loud" in err
