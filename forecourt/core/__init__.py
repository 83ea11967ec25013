"""The pure domain of Forecourt: no I/O, no database, no web framework, fully typed.

Everything here is an immutable value (frozen dataclass or enum) or a pure function, so the cloud,
the edge, the simulator and the tests share one definition of a VIN, a vehicle, a feature and of
what activating a car means (:func:`plan_activation`). :mod:`forecourt.core.codec` maps every type
to and from plain JSON for storage and APIs.
"""

from forecourt.core.catalog import Catalog
from forecourt.core.codec import from_dict, to_dict, to_json
from forecourt.core.compliance import (
    CategoryRule,
    ComplianceProfile,
    ConsentChoice,
    ConsentMode,
    ConsentRecord,
    DataCategory,
    DataRegion,
)
from forecourt.core.dealer import Dealer
from forecourt.core.ecu import Ecu, EcuRole
from forecourt.core.entitlement import Entitlement, EntitlementSource, EntitlementState
from forecourt.core.errors import (
    CoreError,
    DomainValueError,
    IllegalTransition,
    VersionError,
    VinError,
)
from forecourt.core.feature import Feature, LicenceKind, LicenceTerms, MarketOffer, PackageNeed
from forecourt.core.market import Market
from forecourt.core.package import PackageType, SemVer, SoftwarePackage
from forecourt.core.plan import (
    ActivationPlan,
    ComplianceSettings,
    ConsentForbidden,
    ConsentMissing,
    DependencyMissing,
    EcuTarget,
    HardwareMissing,
    NoCompatiblePackage,
    NotEntitled,
    NotOfferedInMarket,
    PlanRefusal,
    PlanResult,
    ProfileMarketMismatch,
    RefusalCode,
    RefusalReason,
    UnknownFeature,
    Withheld,
    WrongLifecycleState,
    plan_activation,
)
from forecourt.core.vehicle import (
    ACTIVATABLE_STATES,
    ALLOWED_TRANSITIONS,
    LifecycleState,
    Vehicle,
    VehicleModel,
)
from forecourt.core.vin import Vin, VinRegion, build_vin, compute_check_digit

__all__ = [
    "ACTIVATABLE_STATES",
    "ALLOWED_TRANSITIONS",
    "ActivationPlan",
    "Catalog",
    "CategoryRule",
    "ComplianceProfile",
    "ComplianceSettings",
    "ConsentChoice",
    "ConsentForbidden",
    "ConsentMissing",
    "ConsentMode",
    "ConsentRecord",
    "CoreError",
    "DataCategory",
    "DataRegion",
    "Dealer",
    "DependencyMissing",
    "DomainValueError",
    "Ecu",
    "EcuRole",
    "EcuTarget",
    "Entitlement",
    "EntitlementSource",
    "EntitlementState",
    "Feature",
    "HardwareMissing",
    "IllegalTransition",
    "LicenceKind",
    "LicenceTerms",
    "LifecycleState",
    "Market",
    "MarketOffer",
    "NoCompatiblePackage",
    "NotEntitled",
    "NotOfferedInMarket",
    "PackageNeed",
    "PackageType",
    "PlanRefusal",
    "PlanResult",
    "ProfileMarketMismatch",
    "RefusalCode",
    "RefusalReason",
    "SemVer",
    "SoftwarePackage",
    "UnknownFeature",
    "Vehicle",
    "VehicleModel",
    "VersionError",
    "Vin",
    "VinError",
    "VinRegion",
    "Withheld",
    "WrongLifecycleState",
    "build_vin",
    "compute_check_digit",
    "from_dict",
    "plan_activation",
    "to_dict",
    "to_json",
]
