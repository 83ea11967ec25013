"""Settings from the environment (``FORECOURT_*``) and an optional TOML file.

One object per process, built explicitly (never at import time) so that tests and the demo can run
several differently configured parts in one interpreter. Outside development the settings refuse
defaults that are only safe on a laptop.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class InsecureSettingsError(ValueError):
    """A production process was configured with a development-only value."""


class Settings(BaseSettings):
    """Everything a Forecourt process can be told from outside."""

    model_config = SettingsConfigDict(
        env_prefix="FORECOURT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    environment: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    log_json: bool | None = Field(
        default=None, description="JSON logs; defaults to on in production, off otherwise."
    )
    data_dir: Path = Field(default=Path(".forecourt"), description="state: databases, keys, blobs")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; defaults to SQLite in data_dir"
    )
    cloud_url: str = "https://127.0.0.1:8443"
    key_uri: str | None = Field(
        default=None,
        description="signing key: file:PATH?password-env=VAR or pkcs11:token=...;object=...",
    )
    anomaly: dict[str, Any] = Field(
        default_factory=dict,
        description="the file's [anomaly] table: the edge's anomaly thresholds, checked key by key "
        "when the edge starts (forecourt.edge.anomaly.settings); FORECOURT_ANOMALY_* win over it",
    )

    @property
    def json_logs(self) -> bool:
        if self.log_json is not None:
            return self.log_json
        return self.environment is Environment.PRODUCTION

    def sqlalchemy_url(self, name: str) -> str:
        """The database for part ``name`` (cloud / edge): configured, or SQLite in data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / f'{name}.sqlite3').as_posix()}"

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION and self.key_uri is None:
            raise InsecureSettingsError(
                "production needs FORECOURT_KEY_URI (a key file or an HSM), not a generated key"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("FORECOURT_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, the file named by FORECOURT_CONFIG, and overrides."""
    return Settings(**overrides)
