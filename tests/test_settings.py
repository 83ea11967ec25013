from pathlib import Path

import pytest

from forecourt.settings import Environment, load_settings


def test_environment_variables_configure_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORECOURT_ENVIRONMENT", "test")
    monkeypatch.setenv("FORECOURT_DATA_DIR", "/var/lib/forecourt")
    settings = load_settings()
    assert settings.environment is Environment.TEST
    assert settings.sqlalchemy_url("edge") == "sqlite:////var/lib/forecourt/edge.sqlite3"


def test_a_toml_file_named_by_forecourt_config_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "forecourt.toml"
    config.write_text('log_level = "DEBUG"\ndatabase_url = "postgresql://db/cloud"\n')
    monkeypatch.setenv("FORECOURT_CONFIG", str(config))
    settings = load_settings()
    assert settings.log_level == "DEBUG"
    assert settings.sqlalchemy_url("cloud") == "postgresql://db/cloud"


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "forecourt.toml"
    config.write_text('log_level = "DEBUG"\n')
    monkeypatch.setenv("FORECOURT_CONFIG", str(config))
    monkeypatch.setenv("FORECOURT_LOG_LEVEL", "WARNING")
    assert load_settings().log_level == "WARNING"


def test_production_refuses_to_run_without_a_configured_signing_key() -> None:
    with pytest.raises(ValueError, match="production needs FORECOURT_KEY_URI"):
        load_settings(environment="production")


def test_production_logs_json_by_default_and_development_does_not() -> None:
    assert load_settings(environment="production", key_uri="file:/k.pem").json_logs is True
    assert load_settings(environment="development").json_logs is False


def test_unknown_settings_are_refused_not_ignored() -> None:
    with pytest.raises(ValueError, match="databse_url"):
        load_settings(databse_url="sqlite://")
