"""Dealer certificate chains already verified, remembered until something could change the answer.

Path validation of a dealer's client certificate (parse, signatures up to the OEM root, validity,
name constraints, purpose, CRL signature and lookup) costs more CPU than the rest of an
authorisation's checks together, and an edge presents the same certificate on every request. A
successful verification is therefore remembered under everything it depended on:

* the presented chain (the PEM text exactly as the TLS layer handed it over),
* the CRLs it was checked against, the issuing CA's and the root's of issuing CAs (their SHA-256
  fingerprints: publishing a new CRL is a new key, so a revocation takes effect on the very next
  request),
* the instants it holds for: every certificate of the path valid, and the CRLs current
  (``lastUpdate``..``nextUpdate``); outside that window the chain is verified again and refused
  with the precise reason.

Refusals are never remembered, so each one is re-derived (and logged by the trust layer). The
registry's own revocations are not part of this cache: they are read from the database on every
request (:func:`forecourt.cloud.registry.dealers.certificate_standing`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from forecourt.trust.certificates import CertificatePurpose, DealerIdentity, dealer_identity
from forecourt.trust.chain import verify_chain

__all__ = ["VerifiedDealer", "VerifiedDealerCache"]


@dataclass(frozen=True, slots=True)
class VerifiedDealer:
    """A dealer chain that verified, and the window in which that verdict stands."""

    identity: DealerIdentity
    valid_from: datetime
    valid_until: datetime


class VerifiedDealerCache:
    """Bounded LRU of verified dealer chains, keyed by chain text and CRL fingerprint.

    Thread-safe: requests verify in the thread pool. Two threads missing at once both verify
    (the same answer); no lock is held while verifying.
    """

    def __init__(
        self,
        root: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        *,
        capacity: int = 4096,
    ) -> None:
        self._root = root
        self._intermediates = list(intermediates)
        self._capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[tuple[str, ...], bytes, bytes], VerifiedDealer] = (
            OrderedDict()
        )
        self._fingerprints: dict[int, tuple[x509.CertificateRevocationList, bytes]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def verify(
        self,
        pems: Sequence[str],
        crl: x509.CertificateRevocationList | None,
        now: datetime,
        *,
        root_crl: x509.CertificateRevocationList | None = None,
    ) -> DealerIdentity:
        """The identity of the dealer chain ``pems`` (PEM, leaf first, not empty) at ``now``,
        checked against the issuing CA's ``crl`` and the root's ``root_crl`` when given.

        Raises ``ValueError`` for unreadable PEM, and what :func:`verify_chain` or
        :func:`dealer_identity` raise when the chain does not verify.
        """
        key = (tuple(pems), self._fingerprint(crl), self._fingerprint(root_crl))
        with self._lock:
            known = self._entries.get(key)
            if known is not None:
                self._entries.move_to_end(key)
        if known is not None and known.valid_from <= now <= known.valid_until:
            return known.identity
        chain = [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in pems]
        leaf, presented = chain[0], chain[1:]
        path = verify_chain(
            leaf,
            [*presented, *self._intermediates],
            self._root,
            CertificatePurpose.DEALER,
            now,
            crl,
            root_crl=root_crl,
        )
        identity = dealer_identity(leaf)
        starts = [c.not_valid_before_utc for c in path]
        ends = [c.not_valid_after_utc for c in path]
        for checked in (crl, root_crl):
            if checked is not None:
                starts.append(checked.last_update_utc)
                if checked.next_update_utc is not None:
                    ends.append(checked.next_update_utc)
        verified = VerifiedDealer(identity, max(starts), min(ends))
        with self._lock:
            self._entries[key] = verified
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return identity

    def _fingerprint(self, crl: x509.CertificateRevocationList | None) -> bytes:
        """SHA-256 of ``crl`` (empty for none), remembered per CRL object: the config hands the
        same object back until a new CRL is published."""
        if crl is None:
            return b""
        with self._lock:
            known = self._fingerprints.get(id(crl))
            if known is not None and known[0] is crl:
                return known[1]
        fingerprint = crl.fingerprint(hashes.SHA256())
        with self._lock:
            if len(self._fingerprints) > 8:  # a few CRLs are in use at once; old ones go
                self._fingerprints.clear()
            self._fingerprints[id(crl)] = (crl, fingerprint)
        return fingerprint
