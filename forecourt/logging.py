"""Structured logging with structlog: JSON in production, readable in development.

Every log event passes through :func:`redact_secrets`, so a password, token, key or TOTP secret
that reaches a log call by mistake is written as ``"[redacted]"``, never in clear.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

_SECRET_KEY = re.compile(
    r"(pass(word|phrase)?|secret|token|totp|otp|private|priv_key|api_key|authorization|cookie|"
    r"credential|seed|pin|salt|sealed)",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of any secret-looking key, at any depth."""
    for key in list(event_dict):
        if key == "event":
            continue
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(event_dict[key])
    return event_dict


class _StderrLogger:
    """Writes each rendered event to whatever ``sys.stderr`` is *now*.

    structlog's PrintLogger keeps the stream it was created with; after a test runner swaps and
    closes stderr, later log calls would fail. Looking the stream up per call avoids that.
    """

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _FileLogger:
    """Appends each rendered event to a file, reopening it if it was removed or replaced.

    The demo keeps its logs under a data directory that ``--fresh`` may wipe while running.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stream: TextIO | None = None

    def _open(self) -> TextIO:
        stream = self._stream
        if stream is not None and os.fstat(stream.fileno()).st_nlink > 0:
            return stream
        if stream is not None:
            stream.close()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = stream = self._path.open("a", encoding="utf-8")
        return stream

    def msg(self, message: str) -> None:
        with self._lock:
            stream = self._open()
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _FileHandler(logging.Handler):
    """Routes the standard library's records (uvicorn, httpx, udsoncan) into the same file."""

    def __init__(self, sink: _FileLogger) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self._sink.msg(self.format(record))


def _stderr_logger_factory(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(level: str = "INFO", json: bool = False, file: Path | None = None) -> None:
    """Configure structlog and the standard library's logging once per process.

    With ``file``, every event goes to that file as JSON lines instead of to stderr, so that an
    interactive command (the demo) keeps its terminal for what a person should read.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    factory: Any
    if file is not None:
        sink = _FileLogger(file)
        handler = _FileHandler(sink)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.basicConfig(level=numeric, handlers=[handler], force=True)
        json = True

        def factory(*_args: Any) -> _FileLogger:
            return sink

    else:
        logging.basicConfig(stream=sys.stderr, level=numeric, format="%(message)s", force=True)
        factory = _stderr_logger_factory
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(component=name)
