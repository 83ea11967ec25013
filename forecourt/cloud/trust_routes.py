"""``GET /v1/trust/crl`` and ``/v1/trust/root-crl``: the current CRLs, for edges to carry to cars.

An edge writes the CRL it holds to every car it authenticates to (DID FD07); this route is where
it gets a fresh one. The answer is the CRL exactly as the CA signed it (DER,
``application/pkix-crl``, RFC 5280 §4.2.1.13 / RFC 2585 §4.2), from
:attr:`forecourt.cloud.config.CloudConfig.crl` (the CRL the cloud itself checks dealers against,
read per request, so a publication is served at once).

``GET /v1/trust/root-crl`` serves the root's CRL of revoked issuing CAs the same way
(:attr:`~forecourt.cloud.config.CloudConfig.root_crl`, signed offline by ``forecourt pki
root-crl``); an edge checks it against the pinned root and writes it to cars as well.

Caching: the ``ETag`` is the SHA-256 of the DER, so an edge can ask "still this one?"
(``If-None-Match``, answered ``304`` without a body) and compare it with the file it holds.
``Cache-Control: no-cache`` lets caches keep the bytes but makes them revalidate each time: a
revocation can be published long before the CRL's nextUpdate, and must not wait for a cache.
"""

from __future__ import annotations

from email.utils import format_datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Request, Response

from forecourt.cloud.context import get_context
from forecourt.cloud.problems import CloudProblem, ProblemCode
from forecourt.trust.crl_reload import crl_etag

PKIX_CRL = "application/pkix-crl"
"""RFC 2585 §4.2: a DER CRL."""


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: ``*`` or any listed tag, weakly compared (``W/`` ignored)."""
    if if_none_match is None:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return any(t == "*" or t.removeprefix("W/") == etag for t in tags)


def _crl_response(
    request: Request, current: x509.CertificateRevocationList | None, whose: str
) -> Response:
    """The CRL as DER with its ETag, ``304`` when ``If-None-Match`` names it, else a 404
    problem when there is none."""
    if current is None:
        raise CloudProblem(
            404,
            ProblemCode.CRL_UNAVAILABLE,
            "No CRL published",
            f"the cloud holds no CRL of {whose}",
        )
    der = current.public_bytes(Encoding.DER)
    etag = crl_etag(der)
    headers = {
        "etag": etag,
        "cache-control": "public, no-cache",
        "last-modified": format_datetime(current.last_update_utc, usegmt=True),
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(der, media_type=PKIX_CRL, headers=headers)


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {PKIX_CRL: {}}, "description": "The CRL (DER)."},
    304: {"description": "The CRL named by If-None-Match is still the current one."},
    404: {"description": "No such CRL is configured (problem ``crl_unavailable``)."},
}


def trust_router() -> APIRouter:
    router = APIRouter(prefix="/v1/trust", tags=["trust"])

    @router.get("/crl", response_class=Response, responses=_RESPONSES)
    def crl(request: Request) -> Response:
        """The issuing CA's current CRL (DER).

        Protected like ``/v1/trust/roots``: no application-level check, so anyone who completes
        the listener's handshake may read it (a dealer edge by its certificate; on a listener
        that also admits OEM staff, a caller without one). A CRL is public by design (RFC 5280
        publishes it for every relying party) and proves itself: the edge and the car verify
        the CA's signature and refuse an older CRL, so the route has nothing to hide and
        nothing a caller could abuse. Requiring a dealer identity would only stop a
        certificate-less staff tool from fetching it.
        """
        return _crl_response(request, get_context(request).config.crl(), "the issuing CA")

    @router.get("/root-crl", response_class=Response, responses=_RESPONSES)
    def root_crl(request: Request) -> Response:
        """The root's current CRL of revoked issuing CAs (DER), protected like ``/crl``: it
        proves itself by the root's signature, which edges and cars check."""
        return _crl_response(request, get_context(request).config.root_crl(), "the OEM root")

    return router
