"""The CloudEvents 1.0 envelope and the data of each event type an edge pushes.

The type names are the edge outbox's (``forecourt.edge.outbox``); a contract test keeps the two
lists equal. Every model refuses unknown shapes with a precise validation error, so a malformed
event is rejected alone and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

WORKFLOW_STEP: Final = "forecourt.edge.workflow.step.v1"
CONSENT_RECORDED: Final = "forecourt.edge.consent.recorded.v1"
ACTIVATION_COMPLETED: Final = "forecourt.edge.activation.completed.v1"
OFFLINE_PACKAGE_USED: Final = "forecourt.edge.offline_package.used.v1"
EVENT_TYPES: Final = frozenset(
    {WORKFLOW_STEP, CONSENT_RECORDED, ACTIVATION_COMPLETED, OFFLINE_PACKAGE_USED}
)

#: Most events in one ``POST /v1/sync/events`` (the edge sends at most its batch size, 100).
MAX_BATCH: Final = 500
SOURCE_PREFIX: Final = "forecourt-edge/"

EventId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Vin = Annotated[str, Field(min_length=17, max_length=17, pattern=r"^[A-HJ-NPR-Z0-9]{17}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
DealerId = Annotated[str, Field(min_length=1, max_length=32)]
Id64 = Annotated[str, Field(min_length=1, max_length=64)]


class CloudEvent(BaseModel):
    """CloudEvents 1.0, JSON format (structured): the attributes the cloud reads."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"]
    id: EventId
    type: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=128)
    subject: str | None = Field(default=None, max_length=128)
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    data: dict[str, Any]


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore")

    dealer_id: DealerId
    vin: Vin


class StepData(_Data):
    vin: str = Field(max_length=17)  # a step before identification may not know the VIN yet
    workflow_id: Id64
    seq: int = Field(ge=1)
    to: str = Field(max_length=32)
    status: str = Field(max_length=64)
    evidence_sha256: Sha256
    ledger_index: int = Field(ge=0)


class ConsentAnswer(BaseModel):
    record_id: Id64
    category: str = Field(min_length=1, max_length=64)
    granted: bool
    supersedes_id: Id64 | None = None


class ConsentData(_Data):
    notice_id: str = Field(min_length=1, max_length=64)
    notice_version: str = Field(min_length=1, max_length=32)
    region: str = Field(min_length=1, max_length=16)
    subject_sha256: Sha256
    mechanism: str = Field(default="opt_in", max_length=16)
    method: str = Field(default="console", max_length=32)
    captured_at: datetime
    records: list[ConsentAnswer] = Field(min_length=1, max_length=64)


class ImageVersion(BaseModel):
    name: str = Field(max_length=100)
    sha256: Sha256
    length: int = Field(ge=0)


class EcuSoftware(BaseModel):
    """One ECU's software as the car's verified version manifest reported it."""

    software_version: str = Field(default="", max_length=64)
    activation_counter: int = Field(default=0, ge=0)
    images: list[ImageVersion] = Field(default_factory=list, max_length=256)


class EcuChange(BaseModel):
    serial: str = Field(min_length=1, max_length=64)
    address: str = Field(pattern=r"^[0-9A-F]{4}$")
    before: EcuSoftware
    after: EcuSoftware


class CompletedData(_Data):
    workflow_id: Id64
    bundle_sha256: Sha256
    features: list[str] = Field(default_factory=list, max_length=64)
    authorisation_id: Id64 | None = None
    offline_package_id: Id64 | None = None
    offline: bool = False
    activation_counter: int | None = Field(default=None, ge=0)
    software: list[EcuChange] = Field(default_factory=list, max_length=64)


class OfflineUseData(_Data):
    package_id: Id64
    workflow_id: Id64
    operator_id: str = Field(default="unknown", min_length=1, max_length=64)
    used_at: datetime


DATA_MODELS: Final[dict[str, type[_Data]]] = {
    WORKFLOW_STEP: StepData,
    CONSENT_RECORDED: ConsentData,
    ACTIVATION_COMPLETED: CompletedData,
    OFFLINE_PACKAGE_USED: OfflineUseData,
}
