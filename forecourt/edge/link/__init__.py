"""The edge's vehicle link: discover cars, read identity, authenticate, transfer, apply, report.

Public API (everything else is private)::

    VehicleLink            the Protocol the activation workflow calls (protocol.py)
    DoipVehicleLink        over DoIP + UDS with doipclient and udsoncan (doip.py)
    InMemoryVehicleLink    in memory, for unit tests of the workflow (memory.py)
    DealerCredentials      dealer certificate + proof of ownership (+ optional 0x27 key source)

Errors are drawn in :mod:`forecourt.edge.link.errors`.
"""

from forecourt.edge.link.doip import DoipVehicleLink, LinkConfig
from forecourt.edge.link.errors import (
    ApplyRefused,
    DiagnosticMessageRefused,
    EcuNegativeResponse,
    EcuTimeout,
    LinkNotBound,
    RoutingActivationRefused,
    TransferInterrupted,
    TransferVerificationFailed,
    UnexpectedResponse,
    VehicleLinkError,
    VehicleNotFound,
    VehicleUnreachable,
)
from forecourt.edge.link.memory import InMemoryVehicleLink, MemoryEcu, MemoryVehicle
from forecourt.edge.link.model import (
    GATEWAY,
    ApplyOutcome,
    Did,
    DiscoveredVehicle,
    Dtc,
    EcuIdentity,
    FeatureStatus,
    Preconditions,
    ResetType,
    TransferReceipt,
    VehicleIdentity,
    VehicleStatus,
    VersionReport,
)
from forecourt.edge.link.protocol import (
    AuthenticationResult,
    DealerCredentials,
    Progress,
    VehicleLink,
)

__all__ = [
    "GATEWAY",
    "ApplyOutcome",
    "ApplyRefused",
    "AuthenticationResult",
    "DealerCredentials",
    "DiagnosticMessageRefused",
    "Did",
    "DiscoveredVehicle",
    "DoipVehicleLink",
    "Dtc",
    "EcuIdentity",
    "EcuNegativeResponse",
    "EcuTimeout",
    "FeatureStatus",
    "InMemoryVehicleLink",
    "LinkConfig",
    "LinkNotBound",
    "MemoryEcu",
    "MemoryVehicle",
    "Preconditions",
    "Progress",
    "ResetType",
    "RoutingActivationRefused",
    "TransferInterrupted",
    "TransferReceipt",
    "TransferVerificationFailed",
    "UnexpectedResponse",
    "VehicleIdentity",
    "VehicleLink",
    "VehicleLinkError",
    "VehicleNotFound",
    "VehicleStatus",
    "VehicleUnreachable",
    "VersionReport",
]
