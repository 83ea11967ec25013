"""The console's :class:`EdgeServices` from the real edge (``forecourt.edge.wiring.start_edge``).

``forecourt edge serve`` and the demo both call :func:`console_services`; the console then
drives exactly the services the wiring assembled (one operator service, one activation service,
one ledger), and its self-check adds the box's probes (cloud, clock, certificates, disk).

The edge's cloud client has no call for the dealer's compliance profile yet, so
:func:`fetch_dealer_profile` reads ``GET /v1/dealer/compliance-profile`` itself with the same
mutual-TLS material.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from forecourt.core import ComplianceProfile
from forecourt.core.codec import from_dict
from forecourt.edge.app.host_checks import host_checks
from forecourt.edge.app.services import EdgeServices, FeatureNotice, VehicleDirectory
from forecourt.edge.cloud_client import MutualTls
from forecourt.edge.wiring import Edge, EdgeSettings


class ProfileUnavailable(RuntimeError):
    """The cloud did not give this dealer's compliance profile (the console cannot take consent)."""


def edge_tls(settings: EdgeSettings) -> MutualTls:
    return MutualTls(settings.tls_cert, settings.tls_key, settings.tls_ca)


def fetch_dealer_profile(settings: EdgeSettings, timeout: float = 10.0) -> ComplianceProfile:
    """The compliance profile at this dealer's location, as the cloud publishes it."""
    return fetch_versioned_dealer_profile(settings, timeout)[1]


def fetch_versioned_dealer_profile(
    settings: EdgeSettings, timeout: float = 10.0
) -> tuple[int | None, ComplianceProfile]:
    """The cloud's version number of the dealer's profile (reports cite it) and the profile."""
    url = f"{settings.cloud_url.rstrip('/')}/v1/dealer/compliance-profile"
    try:
        with httpx.Client(verify=edge_tls(settings).context(), timeout=timeout) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise ProfileUnavailable(f"{url}: {exc}") from exc
    if response.status_code != 200:
        raise ProfileUnavailable(f"{url} answered {response.status_code}: {response.text[:200]}")
    body = response.json()
    version = body.get("version")
    return (
        version if isinstance(version, int) else None,
        from_dict(ComplianceProfile, body["profile"]),
    )


def console_services(
    edge: Edge,
    profile: ComplianceProfile,
    vehicles: VehicleDirectory,
    *,
    features: Sequence[FeatureNotice] = (),
    profile_version: int | None = None,
) -> EdgeServices:
    """What ``create_app`` needs, each member the wired edge's own service."""
    settings = edge.settings
    return EdgeServices(
        dealer_id=settings.dealer_id,
        edge_id=settings.edge_id,
        profile=profile,
        profile_version=profile_version,
        sessions=edge.sessions,
        operators=edge.operators,
        reviews=edge.reviews,
        activations=edge.activations,
        ledger=edge.log,
        offline=edge.offline,
        vehicles=vehicles,
        features=tuple(features),
        cache_freshness=edge.cache.freshness,
        outbox=edge.outbox,
        clock=settings.clock,
        host_checks=host_checks(
            cloud_url=settings.cloud_url,
            tls=edge_tls(settings),
            data_dir=settings.data_dir,
            clock=settings.clock,
        ),
    )
