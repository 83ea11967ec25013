"""A client of the console's JSON API (``/api/v1``): what ``forecourt activate`` and
``forecourt edge status`` use, so the command line passes the same session, CSRF and permission
checks as the browser.

Login is password + TOTP. A TOTP code is accepted once (RFC 6238 §5.2), so a command line that
runs several times a minute keeps its session instead of logging in each time:
:class:`SessionCache` stores the session cookie (mode 0600) beside the edge's data and reuses it
until the edge says it is no longer valid.

:class:`LocalEndpoint` is the small file (``console.json``) a running edge writes into its data
directory so ``--local DATA_DIR`` finds the console's URL; the demo adds ``demo-operators.json``
(mode 0600) with its generated operators, so ``forecourt activate VIN --local .forecourt-demo``
needs nothing typed.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from forecourt.edge.operators.totp import INTERVAL_SECONDS, code_at

ENDPOINT_FILE = "console.json"
DEMO_OPERATORS_FILE = "demo-operators.json"
SESSION_FILE = "cli-session.json"
SESSION_COOKIE = "fc_session"


class ConsoleApiError(Exception):
    """The console refused or failed a call; ``code`` is its stable problem code."""

    def __init__(self, status: int, code: str, title: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail or title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail


class EndpointNotFound(Exception):
    """No running edge wrote its endpoint into the data directory."""


@dataclass(frozen=True, slots=True)
class OperatorLogin:
    """One operator's sign-in material. ``repr`` hides the secrets."""

    username: str
    password: str
    totp_secret: str | None = None
    totp_code: str | None = None
    role: str = ""

    def __repr__(self) -> str:
        return f"OperatorLogin(username={self.username}, role={self.role}, secrets=[redacted])"

    def code(self, at: datetime, step_offset: int = 0) -> str:
        """The code typed in (``--totp``), or the one the enrolled secret gives now."""
        if self.totp_code:
            return self.totp_code
        if self.totp_secret is None:
            raise ValueError(f"no TOTP code or secret for {self.username}")
        return code_at(self.totp_secret, at + timedelta(seconds=30 * step_offset))


def write_private_json(path: Path, doc: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=2)
    temporary.replace(path)


@dataclass(frozen=True, slots=True)
class LocalEndpoint:
    """Where the edge whose data lives in ``data_dir`` serves its console."""

    url: str
    dealer_id: str
    edge_id: str

    def write(self, data_dir: Path) -> None:
        doc = {"url": self.url, "dealer_id": self.dealer_id, "edge_id": self.edge_id}
        (data_dir / ENDPOINT_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, data_dir: Path) -> LocalEndpoint:
        for candidate in (data_dir / ENDPOINT_FILE, data_dir / "edge" / ENDPOINT_FILE):
            if candidate.exists():
                doc = json.loads(candidate.read_text(encoding="utf-8"))
                return cls(str(doc["url"]), str(doc["dealer_id"]), str(doc["edge_id"]))
        raise EndpointNotFound(
            f"no edge endpoint in {data_dir} (start `forecourt demo` or `forecourt edge serve`)"
        )


def edge_dir_of(data_dir: Path) -> Path:
    """The edge's own directory: ``data_dir`` itself, or the demo's ``data_dir/edge``."""
    return data_dir if (data_dir / ENDPOINT_FILE).exists() else data_dir / "edge"


def demo_operators(data_dir: Path) -> dict[str, OperatorLogin]:
    """The demo's generated operators by username (empty outside a demo)."""
    path = edge_dir_of(data_dir) / DEMO_OPERATORS_FILE
    if not path.exists():
        return {}
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {
        o["username"]: OperatorLogin(
            o["username"], o["password"], o["totp_secret"], None, o["role"]
        )
        for o in doc["operators"]
    }


class SessionCache:
    """Session cookies per (console URL, username), and the last TOTP step each login used."""

    def __init__(self, path: Path | None) -> None:
        self._path = path

    def _load(self) -> dict[str, Any]:
        if self._path is None or not self._path.exists():
            return {}
        try:
            doc = json.loads(self._path.read_text(encoding="utf-8"))
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def get(self, key: str) -> dict[str, Any]:
        found = self._load().get(key)
        return found if isinstance(found, dict) else {}

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        if self._path is None:
            return
        doc = self._load()
        doc[key] = dict(entry)
        write_private_json(self._path, doc)


class ConsoleClient:
    """Calls the console API as one signed-in operator."""

    def __init__(
        self,
        base_url: str,
        *,
        cache: SessionCache | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        ca: Path | None = None,
    ) -> None:
        """``ca``: the CA that issued the console's HTTPS certificate (else the system's)."""
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            verify=ssl.create_default_context(cafile=str(ca)) if ca is not None else True,
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
            headers={"accept": "application/json"},
        )
        self._cache = cache or SessionCache(None)
        self._csrf = ""
        self.operator: dict[str, Any] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- session --------------------------------------------------------------------------------

    def sign_in(self, login: OperatorLogin) -> dict[str, Any]:
        """Reuse the cached session of ``login.username`` if the edge still honours it, else log
        in with a code of a time step not used before (the next one if this one was)."""
        key = f"{self.base_url}|{login.username}"
        cached = self._cache.get(key)
        token = cached.get("token")
        if isinstance(token, str):
            self._http.cookies.set(SESSION_COOKIE, token)
            try:
                me = self._json("GET", "/api/v1/me")
            except ConsoleApiError:
                self._http.cookies.clear()
            else:
                self._csrf, self.operator = str(me["csrf_token"]), dict(me["operator"])
                return self.operator
        now = datetime.now(UTC)
        step = int(now.timestamp()) // INTERVAL_SECONDS  # RFC 6238 T
        offset = 1 if login.totp_code is None and cached.get("step", -1) >= step else 0
        body = {
            "username": login.username,
            "password": login.password,
            "totp_code": login.code(now, offset),
        }
        doc = self._json("POST", "/api/v1/session", json=body)
        self._csrf, self.operator = str(doc["csrf_token"]), dict(doc["operator"])
        token = self._http.cookies.get(SESSION_COOKIE)
        self._cache.put(key, {"token": token, "step": step + offset})
        return self.operator

    # -- calls ----------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"x-csrf-token": self._csrf} if method not in ("GET", "HEAD") else {}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ConsoleApiError(0, "unreachable", "Edge unreachable", str(exc)) from exc
        if response.status_code >= 400:
            raise _problem(response)
        return response.json() if response.content else None

    def activate(self, vin: str, features: list[str]) -> str:
        doc = self._json("POST", "/api/v1/activations", json={"vin": vin, "features": features})
        return str(doc["workflow_id"])

    def activate_batch(self, vins: list[str], features: list[str], reason: str) -> list[str]:
        body = {"vins": vins, "features": features, "reason": reason}
        doc = self._json("POST", "/api/v1/activations/batch", json=body)
        return [str(i) for i in doc["workflow_ids"]]

    def progress(self, workflow_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/api/v1/activations/{workflow_id}"))

    def vehicles(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/v1/vehicles"))

    def status(self) -> dict[str, Any]:
        return dict(self._json("GET", "/api/v1/status"))

    def consent(self, vin: str) -> dict[str, Any]:
        """The consent form for ``vin``: the market's categories, modes and current decisions."""
        return dict(self._json("GET", f"/api/v1/consent/{vin}"))

    def record_consent(self, body: dict[str, Any]) -> dict[str, Any]:
        """Record the customer's answers (the body of ``POST /api/v1/consent``)."""
        return dict(self._json("POST", "/api/v1/consent", json=body))

    def events(self, workflow_id: str) -> Iterator[dict[str, Any]]:
        """The workflow's Server-Sent Events: each ``progress`` document, until ``end``."""
        path = f"/api/v1/activations/{workflow_id}/events"
        timeout = httpx.Timeout(None, connect=5.0)
        with self._http.stream("GET", path, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                raise _problem(response)
            event, data = "", ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "":
                    if event == "end":
                        return
                    if event == "progress" and data:
                        yield dict(json.loads(data))
                    event, data = "", ""


def _problem(response: httpx.Response) -> ConsoleApiError:
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    return ConsoleApiError(
        response.status_code,
        str(doc.get("code", f"http_{response.status_code}")),
        str(doc.get("title", response.reason_phrase)),
        str(doc.get("detail", "")),
    )
