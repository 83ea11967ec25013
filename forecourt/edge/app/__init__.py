"""The edge's web app: JSON API, server-rendered console, metrics and health, for one dealer.

Public API::

    create_app(services: EdgeServices, settings: ConsoleSettings | None = None) -> FastAPI
    EdgeServices            what the app calls (operators, reviews, activations, ledger, ...)
    ConsoleSettings         cookies, SSE keep-alive, page sizes
    VehicleDirectory        port: cars on the dealer network now; StaticVehicleDirectory
    DiscoveredCar, FeatureNotice, feature_notices(catalog, market)
    ProblemCode             the stable codes of every API refusal

See docs/console.md for routes, pages and the security model.
"""

from forecourt.edge.app.app import create_app
from forecourt.edge.app.notices import feature_notice, feature_notices
from forecourt.edge.app.problems import ConsoleProblem, ProblemCode
from forecourt.edge.app.services import (
    ConsoleSettings,
    DiscoveredCar,
    EdgeServices,
    FeatureNotice,
    StaticVehicleDirectory,
    VehicleDirectory,
)

__all__ = [
    "ConsoleProblem",
    "ConsoleSettings",
    "DiscoveredCar",
    "EdgeServices",
    "FeatureNotice",
    "ProblemCode",
    "StaticVehicleDirectory",
    "VehicleDirectory",
    "create_app",
    "feature_notice",
    "feature_notices",
]
