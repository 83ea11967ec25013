"""Anomaly thresholds from ``FORECOURT_ANOMALY_*`` and the ``[anomaly]`` table of the TOML file.

Kept beside the rules rather than in the edge's command line so every way of building the edge
(CLI, demo, tests) gets the same tuning without new options. Precedence is the one every other
setting follows (:mod:`forecourt.settings`): a ``FORECOURT_ANOMALY_<KEY>`` variable wins over
``<key>`` in the ``[anomaly]`` table of the file named by ``FORECOURT_CONFIG``, which wins over the
documented default. Durations are seconds or ISO 8601 (``600``, ``"PT10M"``), times ``HH:MM`` (or
a TOML local time), the time zone an IANA name (``Europe/Berlin``), the refusal codes a JSON list in
a variable and an array in the file.

A bad value stops the edge at start: an unknown key, a negative count or a zero window in the file
is refused with the key and the file named, a bad variable with the variable named. The file's
table is checked on its own, so a wrong value there is refused even while a variable overrides it:
the file is what the next operator will read and trust.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from forecourt.edge.anomaly.model import DEFAULT_REFUSAL_CODES, Thresholds
from forecourt.logging import get_logger

_log = get_logger("edge.anomaly.settings")
_D = Thresholds()

#: The variable naming the TOML settings file, shared with :func:`forecourt.settings.load_settings`.
CONFIG_VARIABLE = "FORECOURT_CONFIG"
#: The table of that file that holds the anomaly thresholds.
TABLE = "anomaly"
ENV_PREFIX = "FORECOURT_ANOMALY_"


class AnomalySettingsRefused(ValueError):
    """A threshold the edge will not start with; ``source`` is the variable or the file.

    ``key`` is the threshold's name (``burst_window``), or None when the whole source is wrong (a
    file that is not TOML, an ``anomaly`` key that is not a table).
    """

    def __init__(self, message: str, *, source: str, key: str | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.key = key


def _seconds(value: object) -> object:
    """A bare number in text is seconds (pydantic reads only ISO text otherwise)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]


class AnomalyFields(BaseModel):
    """One field per :class:`Thresholds` field, same name, same default; no other key allowed."""

    model_config = ConfigDict(extra="forbid")

    lookback: Duration = _D.lookback
    burst_max_cars: int = _D.burst_max_cars
    burst_window: Duration = _D.burst_window
    refusal_run: int = _D.refusal_run
    refusal_window: Duration = _D.refusal_window
    refusal_codes: frozenset[str] = DEFAULT_REFUSAL_CODES
    opening: time = _D.opening
    closing: time = _D.closing
    timezone: str = _D.timezone
    signin_failures: int = _D.signin_failures
    offline_max_uses: int = _D.offline_max_uses
    offline_window: Duration = _D.offline_window

    def given(self) -> dict[str, Any]:
        """Only the values the source set, so a lower-precedence source fills the rest."""
        return self.model_dump(include=set(self.model_fields_set))

    def thresholds(self) -> Thresholds:
        return Thresholds(**self.model_dump())


class AnomalySettings(AnomalyFields, BaseSettings):
    """The :class:`AnomalyFields` read from ``FORECOURT_ANOMALY_*`` variables only."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")


def load_thresholds(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Thresholds:
    """Variables over the file's ``[anomaly]`` table over defaults; refuses a bad value.

    ``config_file`` None: the file ``FORECOURT_CONFIG`` names, if any. A named file that does not
    exist adds nothing, as for the other settings. ``environ`` is read for ``FORECOURT_CONFIG``
    only (tests pass their own); the variables themselves come from the process environment.

    Raises :class:`AnomalySettingsRefused` (a :class:`ValueError`) and logs
    ``anomaly_settings_refused`` with the source and the key.
    """
    try:
        if config_file is None:
            named = (os.environ if environ is None else environ).get(CONFIG_VARIABLE)
            config_file = Path(named) if named else None
        from_file = _from_file(config_file) if config_file is not None else {}
        from_env = _from_environment()
        try:
            return AnomalyFields(**{**from_file, **from_env}).thresholds()
        except (ValidationError, ValueError) as exc:  # only the merge of two valid sources
            raise AnomalySettingsRefused(
                f"anomaly settings refused: {exc}", source=f"{ENV_PREFIX}* and {config_file}"
            ) from exc
    except AnomalySettingsRefused as exc:
        _log.error("anomaly_settings_refused", source=exc.source, key=exc.key, error=str(exc))
        raise


def thresholds_from_environment() -> Thresholds:
    """The same as :func:`load_thresholds` with no arguments: variables, then the file."""
    return load_thresholds()


def _from_environment() -> dict[str, Any]:
    """The values set by ``FORECOURT_ANOMALY_*``, each checked against the thresholds' limits."""
    try:
        settings = AnomalySettings()
    except ValidationError as exc:
        raise _env_refused(exc, _first_key(exc)) from exc
    except SettingsError as exc:  # a variable that is not the JSON its field needs
        raise _env_refused(exc, None) from exc
    try:
        settings.thresholds()
    except ValueError as exc:
        raise _env_refused(exc, _key_named_in(str(exc), settings.model_fields_set)) from exc
    return settings.given()


def _env_refused(exc: Exception, key: str | None) -> AnomalySettingsRefused:
    return AnomalySettingsRefused(
        f"{ENV_PREFIX}* settings refused: {exc}",
        source=f"{ENV_PREFIX}{key.upper()}" if key else f"{ENV_PREFIX}*",
        key=key,
    )


def _from_file(path: Path) -> dict[str, Any]:
    """The file's ``[anomaly]`` table, validated on its own; empty without file or table."""
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AnomalySettingsRefused(
            f"{path}: cannot read the settings file: {exc}", source=str(path)
        ) from exc
    table = document.get(TABLE, {})
    if not isinstance(table, dict):
        raise AnomalySettingsRefused(
            f"{path}: [{TABLE}] must be a table of thresholds, not {type(table).__name__}",
            source=str(path),
            key=TABLE,
        )
    try:
        fields = AnomalyFields.model_validate(table)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or None
        what = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        raise AnomalySettingsRefused(
            f"{path}: [{TABLE}] {key}: {what} (got {error.get('input')!r})",
            source=str(path),
            key=key,
        ) from exc
    try:
        fields.thresholds()
    except ValueError as exc:
        key = _key_named_in(str(exc), fields.model_fields_set)
        where = f"[{TABLE}] {key}" if key else f"[{TABLE}]"
        raise AnomalySettingsRefused(f"{path}: {where}: {exc}", source=str(path), key=key) from exc
    return fields.given()


def _first_key(exc: ValidationError) -> str | None:
    errors = exc.errors()
    if not errors or not errors[0]["loc"]:
        return None
    return str(errors[0]["loc"][0])


def _key_named_in(message: str, keys: set[str]) -> str | None:
    """The key a :class:`Thresholds` refusal is about: each of its messages starts with it."""
    return next((k for k in sorted(keys, key=len, reverse=True) if message.startswith(k)), None)
