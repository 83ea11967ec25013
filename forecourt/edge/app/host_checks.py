"""The edge box's own probes for the self-check: cloud link, clock, certificates, disk.

The service checks (database, ledger, outbox, offline stock, package cache) look inside the
edge; these look at what the box stands on. Each returns a :class:`Check` and never raises for
a condition it is meant to report (an unreachable cloud is an ``error`` row, not an exception).

* ``cloud``: one mutual-TLS request to a dealer route (``GET /v1/dealer/compliance-profile``)
  proves the network path, the server certificate and our client certificate at once; its
  ``Date`` header gives the clock skew against the cloud (TOTP codes, certificate windows and
  bundle expiry all depend on the box's clock).
* ``certificates``: days left on the dealer certificate (mTLS and UDS 0x29 both stop with it).
* ``disk``: free space under the data directory (SQLite, package cache, ledger).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
from cryptography import x509

from forecourt.edge.app.checks import Check
from forecourt.edge.cloud_client import MutualTls

CERT_WARN = timedelta(days=30)
SKEW_WARN_S = 5.0
SKEW_ERROR_S = 90.0  # beyond ±1 TOTP step plus margin: logins and bundle windows start failing
DISK_WARN_BYTES = 2 * 1024**3
DISK_ERROR_BYTES = 200 * 1024**2


def cloud_check(
    cloud_url: str, tls: MutualTls, clock: Callable[[], datetime], timeout: float = 3.0
) -> Callable[[], Check]:
    def cloud() -> Check:
        started = clock()
        began = time.perf_counter()
        try:
            with httpx.Client(verify=tls.context(), timeout=timeout) as client:
                response = client.get(f"{cloud_url.rstrip('/')}/v1/dealer/compliance-profile")
        except (httpx.HTTPError, OSError) as exc:
            return Check("cloud", "error", f"unreachable: {type(exc).__name__}: {exc}")
        rtt_ms = round((time.perf_counter() - began) * 1000, 1)
        data: dict[str, object] = {"http_status": response.status_code, "rtt_ms": rtt_ms}
        if response.status_code >= 400:
            return Check(
                "cloud", "error", f"answered {response.status_code} to the dealer route", data
            )
        date = response.headers.get("date")
        if date is None:
            return Check("cloud", "warn", f"reachable in {rtt_ms} ms; no Date to compare", data)
        midpoint = started + timedelta(milliseconds=rtt_ms / 2)
        # Date has whole seconds (RFC 9110 §5.6.7): its second's middle is the best estimate
        skew = (parsedate_to_datetime(date) - midpoint).total_seconds() + 0.5
        data["clock_skew_s"] = round(skew, 1)
        status = (
            "error" if abs(skew) > SKEW_ERROR_S else "warn" if abs(skew) > SKEW_WARN_S else "ok"
        )
        return Check("cloud", status, f"reachable in {rtt_ms} ms, clock skew {skew:+.1f} s", data)

    return cloud


def certificate_check(
    cert_pem: Path, clock: Callable[[], datetime], warn: timedelta = CERT_WARN
) -> Callable[[], Check]:
    def certificates() -> Check:
        cert = x509.load_pem_x509_certificates(cert_pem.read_bytes())[0]
        left = cert.not_valid_after_utc - clock()
        data = {"not_after": cert.not_valid_after_utc.isoformat(), "days_left": left.days}
        subject = cert.subject.rfc4514_string()
        if left <= timedelta(0):
            return Check("certificates", "error", f"dealer certificate expired ({subject})", data)
        if cert.not_valid_before_utc > clock():
            return Check("certificates", "error", "dealer certificate not yet valid", data)
        status = "warn" if left < warn else "ok"
        return Check("certificates", status, f"dealer certificate: {left.days} days left", data)

    return certificates


def disk_check(directory: Path) -> Callable[[], Check]:
    def disk() -> Check:
        usage = shutil.disk_usage(directory)
        data = {"free_bytes": usage.free, "total_bytes": usage.total, "path": str(directory)}
        status = (
            "error"
            if usage.free < DISK_ERROR_BYTES
            else "warn"
            if usage.free < DISK_WARN_BYTES
            else "ok"
        )
        return Check("disk", status, f"{usage.free / 1024**3:.1f} GiB free", data)

    return disk


def host_checks(
    *,
    cloud_url: str,
    tls: MutualTls,
    data_dir: Path,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[Callable[[], Check], ...]:
    """Every probe of the box, in the order the status table shows them."""
    return (
        cloud_check(cloud_url, tls, clock),
        certificate_check(tls.client_cert, clock),
        disk_check(data_dir),
    )
