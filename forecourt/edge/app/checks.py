"""One self-check result: what the status page, ``/api/v1/status`` and ``forecourt edge status``
show per check. Kept apart so the services bundle and the probes can both name it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # ok | warn | error
    summary: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "summary": self.summary, **self.data}
