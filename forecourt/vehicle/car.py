"""The simulated car: the gateway's routing table, its ECUs, and the all-or-nothing apply.

Apply (routine FF00 on the gateway) in steps, each announced to an :data:`ApplyHook` so tests can
cut the power between any two of them:

``verify`` (bundle verified, then every ECU opens the secrets sealed to it with its own X25519
key: one that cannot fails the whole apply) -> ``stage:<ECU>`` per target ECU (image copied to a
new slot file, opened secrets to a new secure-storage file, both fsynced) ->
``commit`` (the new state document is written to a temp file) -> ``rename`` (atomic replace: the
commit point) -> ``cleanup`` (slots no longer referenced are removed).

Before ``rename`` the committed document still describes the old car and staged slots are orphans
swept at the next load; after it the document describes the new car. A refused or failed apply
records a DTC on the gateway and changes nothing else.
"""

from __future__ import annotations

import copy
import os
import secrets
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from forecourt.logging import get_logger
from forecourt.trust.errors import BundleError
from forecourt.trust.model import ImageTarget
from forecourt.trust.verifier import verify_image
from forecourt.vehicle.dids import Preconditions, canonical_json
from forecourt.vehicle.ecu import Ecu
from forecourt.vehicle.faults import ApplyHook, FaultPlan, no_hook
from forecourt.vehicle.quota import StorageQuota, TransferLimits
from forecourt.vehicle.revocation import CrlRefused, accept_crl, crl_issuer, pinned_issuers
from forecourt.vehicle.seams import (
    ActivationPlan,
    AuthenticationContext,
    BundleVerifier,
    CarView,
    EcuView,
    ImageInstall,
    RefuseAllAuthenticator,
    RefuseAllVerifier,
    TesterAuthenticator,
    TrustRefusal,
)
from forecourt.vehicle.secure_storage import read_secrets, write_secrets
from forecourt.vehicle.storage import (
    CarState,
    CarStore,
    DtcRecord,
    FeatureState,
    InstalledImage,
)
from forecourt.vehicle.uds.nrc import NegativeResponse, Nrc
from forecourt.vehicle.uds.session import Clock, SystemClock
from forecourt.vehicle.version_report import signed_ecu_report, vehicle_manifest

_log = get_logger("vehicle.car")

GATEWAY_ADDRESS = 0x1000
DTC_ACTIVATION_REFUSED = 0xD10000  # | NRC: bundle refused by verification
DTC_ACTIVATION_FAILED = 0xD20000  # | NRC: verified bundle failed to apply (flash, preconditions)
DTC_STATUS_CONFIRMED = 0x09  # testFailed | confirmedDTC
ROUTINE_OK, ROUTINE_NOT_APPLIED = 0x00, 0x01
MAX_OPEN_NONCES = 8
REPORT_COUNTER_LEASE = 64  # FD04 counters reserved per commit (one fsync per 64 reports)
SECURE_STORAGE = "\x00secure-storage"  # key of a staged secrets file (no image has this name)


class FlashFailure(Exception):
    """Writing an image to an ECU's slot failed (injected, or an I/O error)."""


class ImageRefused(Exception):
    """A received image is not the signed one (length or SHA-256): refused, nothing applied."""

    def __init__(self, nrc: Nrc, reason: str) -> None:
        super().__init__(reason)
        self.nrc = nrc
        self.reason = reason


COPY_CHUNK = 1 << 20


def _verified_copy(source: Path, slot: Path, image: ImageInstall) -> None:
    """Copy ``source`` into ``slot`` while ``verify_image`` checks it against its signed target.

    One read of the file: every chunk is hashed and written as it passes, reading stops at the
    signed length (a longer file is refused, never read to its end), and the slot is fsynced
    only once the length and SHA-256 match. A mismatch raises :class:`ImageRefused`; the caller
    removes the partial slot with the rest of the staged files.
    """
    target = ImageTarget(
        ecu_serial=f"{image.ecu_address:04X}",
        image=image.name,
        length=image.length,
        hashes={"sha256": image.sha256},
        hardware_id="",
        release_counter=image.version,
        version=str(image.version),
    )
    with source.open("rb") as reader, slot.open("wb") as writer:

        def chunks() -> Iterator[bytes]:
            while chunk := reader.read(COPY_CHUNK):
                yield chunk
                writer.write(chunk)

        try:
            verify_image(target, chunks())
        except BundleError as error:
            raise ImageRefused(Nrc(error.nrc), f"{error.code}: {error}") from error
        writer.flush()
        os.fsync(writer.fileno())


@dataclass
class CarServices:
    """What a car needs from outside: the trust seams, time, faults and the power-loss hook."""

    verifier: BundleVerifier = field(default_factory=RefuseAllVerifier)
    authenticator: TesterAuthenticator = field(default_factory=RefuseAllAuthenticator)
    clock: Clock = field(default_factory=SystemClock)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    faults: FaultPlan = field(default_factory=FaultPlan)
    apply_hook: ApplyHook = no_hook
    transfer_limits: TransferLimits = field(default_factory=TransferLimits)


def security_secret_path(store: CarStore, address: int) -> Path:
    return store.keys_dir() / f"{address:04X}.seedkey"


class Car:
    def __init__(self, store: CarStore, services: CarServices | None = None) -> None:
        self.store = store
        self.services = services or CarServices()
        self.state: CarState = store.load()
        self.gateway_address = GATEWAY_ADDRESS
        self.preconditions = Preconditions()
        self._results: dict[int, int] = {}
        self._report_counter = self.state.report_counter  # the reservation: start above it
        self.quota = StorageQuota(store.directory / "files", self.services.transfer_limits)
        self.ecus: dict[int, Ecu] = {
            address: Ecu(
                self,
                address,
                security_secret=security_secret_path(store, address).read_bytes(),
                authenticator=self.services.authenticator,
                clock=self.services.clock,
            )
            for address in self.state.ecus
        }

    @property
    def vin(self) -> str:
        return self.state.vin

    @property
    def eid(self) -> bytes:
        return bytes.fromhex(self.state.eid)

    @property
    def gid(self) -> bytes:
        return bytes.fromhex(self.state.gid)

    def ecu(self, address: int) -> Ecu | None:
        return self.ecus.get(address)

    # nonces, DIDs ---------------------------------------------------------------------------
    def issue_nonce(self) -> bytes:
        """FD00: a fresh nonce per read, valid until used once or pushed out by newer ones.

        Only an authenticated tester reaches this (the ECU gates FD00). Committed before it is
        answered, so a car restarted, or a link dropped and re-established, between issuing a
        nonce and receiving the bundle still accepts it (once: using it removes it in the
        apply's commit).
        """
        nonce = secrets.token_bytes(16)
        state = copy.deepcopy(self.state)
        state.issued_nonces = [*state.issued_nonces, nonce.hex()][-MAX_OPEN_NONCES:]
        self._commit(state)
        return nonce

    @property
    def report_counter(self) -> int:
        """The counter of the last version report issued (FD04)."""
        return self._report_counter

    def _next_report_counter(self) -> int:
        """A report counter never issued before, without a disk write per read.

        The committed ``report_counter`` is a reservation: counters up to it may have been
        issued. A new block of :data:`REPORT_COUNTER_LEASE` is committed only when the last one
        is used up, and a restarted car starts above the reservation, so a counter is never
        reused and an anonymous FD04 reader costs one fsync per lease, not one per read.
        """
        if self._report_counter >= self.state.report_counter:
            state = copy.deepcopy(self.state)
            state.report_counter = self._report_counter + REPORT_COUNTER_LEASE
            self._commit(state)
        self._report_counter += 1
        return self._report_counter

    def authentication_context(self, address: int) -> AuthenticationContext:
        """What ECU ``address`` checks a 0x29 exchange against: pinned anchors, the car's time."""
        return AuthenticationContext(
            vin=self.state.vin,
            ecu_serial=self.state.ecus[address].serial_number,
            oem_root_pem=self.state.oem_root_pem,
            oem_chain_pem=self.state.oem_chain_pem,
            crl_pem=self.state.crl_pem,
            now=self.services.now(),
            root_crl_pem=self.state.root_crl_pem,
        )

    def store_crl(self, data: bytes) -> bool:
        """FD07: take the issuing CA's CRL if pinned-CA-signed and newer; True if it changed.

        A CRL issued by the pinned root is the root's CRL of revoked issuing CAs: it is taken
        by the same rules against the root, and replaces the root CRL held (one of each kind is
        kept, so the state stays bounded). Committed atomically before it is answered; from
        then on every 0x29 checks against it. A refusal
        (:class:`~forecourt.vehicle.revocation.CrlRefused`) is logged and changes nothing.
        """
        root = pinned_issuers(self.state.oem_root_pem)
        try:
            of_root = bool(root) and crl_issuer(data) == root[0].subject
            if of_root:
                update = accept_crl(data, root, self.state.root_crl_pem)
            else:
                issuers = pinned_issuers(self.state.oem_chain_pem)
                update = accept_crl(data, issuers, self.state.crl_pem)
        except CrlRefused as refusal:
            _log.warning(
                "crl_refused", vin=self.vin, nrc=f"{refusal.nrc:#04x}", reason=refusal.reason
            )
            raise
        if update.changed:
            state = copy.deepcopy(self.state)
            if of_root:
                state.root_crl_pem = update.pem
            else:
                state.crl_pem = update.pem
            self._commit(state)
            _log.info(
                "crl_accepted",
                vin=self.vin,
                number=update.number,
                this_update=update.this_update.isoformat(),
                root=of_root,
            )
        return update.changed

    def secure_storage(self, address: int) -> dict[str, bytes]:
        """The secrets ECU ``address`` holds (opened at apply); for the ECU's own use only."""
        rel = self.state.ecus[address].secure_storage
        return read_secrets(self.store.directory / rel if rel else None)

    def feature_status(self, ecu_address: int | None) -> list[dict[str, object]]:
        """FD02: each grant, active only inside [valid_from, valid_until) at the car's time."""
        now = self.services.now()
        return [
            {
                "feature": f.feature_id,
                "ecu": f"{f.ecu_address:04X}",
                "valid_from": f.valid_from,
                "valid_until": f.valid_until,
                "active": _in_validity(f.valid_from, f.valid_until, now),
            }
            for f in self.state.features
            if ecu_address is None or f.ecu_address == ecu_address
        ]

    def version_report(self, ecu_address: int) -> bytes:
        """FD04: the gateway's signed vehicle version manifest, or one ECU's own signed report.

        Every read is a new reporting cycle: the report counter rises and the nonce is fresh.
        """
        counter = self._next_report_counter()
        state = self.state
        nonce, now = secrets.token_hex(16), self.services.now()
        if ecu_address == self.gateway_address:
            keys = {a: self.store.signing_key(a) for a in state.ecus}
            return vehicle_manifest(state, ecu_address, keys, counter=counter, nonce=nonce, now=now)
        key = self.store.signing_key(ecu_address)
        return canonical_json(
            signed_ecu_report(state, ecu_address, key, counter=counter, nonce=nonce, now=now)
        )

    def status_summary(self, ecu_address: int | None) -> bytes:
        """FD06: the unsigned summary (installed images by ECU address, features, last bundle)."""
        ecus = [e for a, e in sorted(self.state.ecus.items()) if ecu_address in (None, a)]
        return canonical_json(
            {
                "vin": self.state.vin,
                "activation_counter": self.state.activation_counter,
                "last_bundle_id": self.state.last_bundle_id,
                "ecus": [
                    {
                        "address": f"{e.address:04X}",
                        "serial": e.serial_number,
                        "hardware": e.hardware_number,
                        "images": {
                            n: {"version": i.version, "sha256": i.sha256, "length": i.length}
                            for n, i in sorted(e.images.items())
                        },
                    }
                    for e in ecus
                ],
                "features": self.feature_status(ecu_address),
            }
        )

    def view(self) -> CarView:
        return CarView(
            vin=self.state.vin,
            option_codes=tuple(self.state.option_codes),
            ecus=tuple(
                EcuView(
                    address=e.address,
                    serial_number=e.serial_number,
                    hardware_number=e.hardware_number,
                    installed={n: i.version for n, i in e.images.items()},
                    sealing_public_key=e.sealing_public_key,
                )
                for e in self.state.ecus.values()
            ),
            activation_counter=self.state.activation_counter,
            issued_nonces=tuple(bytes.fromhex(n) for n in self.state.issued_nonces),
            used_nonces=tuple(bytes.fromhex(n) for n in self.state.used_nonces),
            oem_root_pem=self.state.oem_root_pem,
            active_features=tuple(f.feature_id for f in self.state.features),
            trust_state=copy.deepcopy(self.state.trust_state),
        )

    def routine_results(self) -> bytes:
        """FF00 requestRoutineResults: per ECU, address (2 bytes) + outcome (0 = applied)."""
        return b"".join(struct.pack(">HB", a, r) for a, r in sorted(self._results.items()))

    # small committed changes ----------------------------------------------------------------
    def write_repair_shop_code(self, address: int, code: str) -> None:
        state = copy.deepcopy(self.state)
        state.ecus[address].repair_shop_code = code
        self._commit(state)

    def clear_dtcs(self, address: int) -> None:
        state = copy.deepcopy(self.state)
        state.dtcs = [d for d in state.dtcs if d.ecu_address != address]
        self._commit(state)

    def record_dtc(self, code: int, reason: str, address: int | None = None) -> None:
        state = copy.deepcopy(self.state)
        state.dtcs.append(
            DtcRecord(
                code=code,
                status=DTC_STATUS_CONFIRMED,
                ecu_address=address if address is not None else self.gateway_address,
                reason=reason,
                recorded_at=self.services.now().isoformat(),
            )
        )
        self._commit(state)

    def _commit(self, state: CarState) -> None:
        self.store.commit(state)
        self.state = state

    # activation -----------------------------------------------------------------------------
    def activate_from_file(self, receiving_ecu: int, name: str) -> int:
        """FF00 start: verify and apply the bundle file received on ``receiving_ecu``."""
        received = self.ecus[receiving_ecu].receiver.completed(name)
        if received is None:
            raise NegativeResponse(Nrc.REQUEST_SEQUENCE_ERROR, f"no bundle file {name!r}")
        return self.verify_and_apply(received.path.read_bytes())

    def verify_and_apply(self, bundle: bytes) -> int:
        """Verify ``bundle`` and apply it to every ECU it names, all or nothing.

        Returns the new activation counter; raises :class:`NegativeResponse` after recording a
        DTC when the bundle is refused or cannot be applied.
        """
        hook = self.services.apply_hook
        failures = self.preconditions.failures()
        if failures:
            self._refuse(
                DTC_ACTIVATION_FAILED,
                Nrc.CONDITIONS_NOT_CORRECT,
                f"preconditions not met ({failures:#04x})",
            )
        now = self.services.now()
        floor = self.state.last_verified_at if self.state.last_bundle_id else None
        if floor is not None and now < datetime.fromisoformat(floor):
            # Expiry is checked against the car's clock: one set back would revive expired
            # metadata (a freeze attack). The time of the car's last verified apply (its own
            # clock then) is a trusted lower bound; the factory stamp is the plant's clock.
            self._refuse(
                DTC_ACTIVATION_REFUSED,
                Nrc.CONDITIONS_NOT_CORRECT,
                f"car clock {now.isoformat()} is behind the last verification at {floor}",
            )
        hook("verify")
        try:
            plan = self.services.verifier.verify(bundle, self.view(), now)
            self._check_plan(plan)
        except TrustRefusal as refusal:
            self._refuse(DTC_ACTIVATION_REFUSED, refusal.nrc, refusal.reason)
        opened = self._open_secrets(plan)
        targets = sorted(
            {g.ecu_address for g in plan.features}
            | {i.ecu_address for i in plan.images}
            | set(opened)
        )
        staged: dict[tuple[int, str], str] = {}
        try:
            for address in targets:
                hook(f"stage:{address:04X}")
                staged.update(self._stage(plan, address))
                if address in opened:
                    staged[(address, SECURE_STORAGE)] = self._stage_secrets(
                        plan, address, opened[address]
                    )
        except ImageRefused as refused:
            for rel in staged.values():
                (self.store.directory / rel).unlink(missing_ok=True)
            self._refuse(DTC_ACTIVATION_REFUSED, refused.nrc, refused.reason)
        except (FlashFailure, OSError) as exc:
            for rel in staged.values():
                (self.store.directory / rel).unlink(missing_ok=True)
            self._results = {a: ROUTINE_NOT_APPLIED for a in targets}
            failed = self.services.faults.fail_flash_ecu
            if failed in self._results:
                self._results[failed] = Nrc.GENERAL_PROGRAMMING_FAILURE
            self._refuse(DTC_ACTIVATION_FAILED, Nrc.GENERAL_PROGRAMMING_FAILURE, str(exc))
        new = self._next_state(plan, staged)
        hook("commit")
        self.store.commit(new, before_replace=lambda: hook("rename"))
        self.state = new
        hook("cleanup")
        self.store.load()  # sweeps slots the new state no longer references
        self._results = dict.fromkeys(targets, ROUTINE_OK)
        _log.info(
            "activation_applied",
            vin=self.vin,
            bundle=plan.bundle_id,
            counter=new.activation_counter,
            ecus=[f"{a:04X}" for a in targets],
        )
        return new.activation_counter

    def _open_secrets(self, plan: ActivationPlan) -> dict[int, dict[str, bytes]]:
        """Each ECU opens what is sealed to it, before anything is staged (all or nothing)."""
        opened: dict[int, dict[str, bytes]] = {}
        for sealed in plan.secrets:
            if sealed.ecu_address not in self.state.ecus:
                self._refuse(
                    DTC_ACTIVATION_REFUSED,
                    Nrc.REQUEST_OUT_OF_RANGE,
                    f"secrets for unknown ECU {sealed.ecu_address:04X}",
                )
            try:
                opened[sealed.ecu_address] = dict(
                    sealed.open(self.store.sealing_key(sealed.ecu_address))
                )
            except TrustRefusal as refusal:
                self._refuse(DTC_ACTIVATION_FAILED, refusal.nrc, refusal.reason)
        return opened

    def _stage_secrets(self, plan: ActivationPlan, address: int, new: dict[str, bytes]) -> str:
        held = self.secure_storage(address)
        path = self.store.secure_dir(address) / f"secrets.{plan.counter}"
        path.unlink(missing_ok=True)  # left by an apply cut before its commit
        write_secrets(path, {**held, **new})
        _log.info("secrets_stored", vin=self.vin, ecu=f"{address:04X}", names=sorted(new))
        return path.relative_to(self.store.directory).as_posix()

    def _refuse(self, dtc_base: int, nrc: Nrc, reason: str) -> None:
        _log.warning("activation_refused", vin=self.vin, nrc=f"{nrc:#04x}", reason=reason)
        self.record_dtc(dtc_base | nrc, reason)
        raise NegativeResponse(nrc, reason)

    def _check_plan(self, plan: ActivationPlan) -> None:
        """The car's own checks, whatever the verifier said (defence in depth).

        NRCs follow the trust layer's table (``forecourt.trust.errors``): rollback 0x70, replay
        0x24, foreign ECU 0x31, image hash or length 0x72.
        """
        if plan.counter <= self.state.activation_counter:
            raise TrustRefusal(
                Nrc.UPLOAD_DOWNLOAD_NOT_ACCEPTED, f"counter {plan.counter} not fresh"
            )
        if plan.nonce is not None and (
            plan.nonce.hex() not in self.state.issued_nonces
            or plan.nonce.hex() in self.state.used_nonces
        ):
            raise TrustRefusal(Nrc.REQUEST_SEQUENCE_ERROR, "nonce not issued or already used")
        for grant in plan.features:
            if grant.ecu_address not in self.state.ecus:
                raise TrustRefusal(Nrc.REQUEST_OUT_OF_RANGE, f"no ECU {grant.ecu_address:04X}")
        for image in plan.images:
            ecu = self.state.ecus.get(image.ecu_address)
            if ecu is None:
                raise TrustRefusal(Nrc.REQUEST_OUT_OF_RANGE, f"no ECU {image.ecu_address:04X}")
            installed = ecu.images.get(image.name)
            if installed is not None and image.version < installed.version:
                raise TrustRefusal(Nrc.UPLOAD_DOWNLOAD_NOT_ACCEPTED, f"rollback of {image.name}")
            received = self.ecus[self.gateway_address].receiver.completed(image.name)
            if received is None:
                raise TrustRefusal(Nrc.REQUEST_SEQUENCE_ERROR, f"image {image.name} not received")
            if received.length != image.length or received.sha256 != image.sha256:
                raise TrustRefusal(
                    Nrc.GENERAL_PROGRAMMING_FAILURE, f"image {image.name} hash/length"
                )

    def _stage(self, plan: ActivationPlan, address: int) -> dict[tuple[int, str], str]:
        if self.services.faults.fail_flash_ecu == address:
            raise FlashFailure(f"flash failed on ECU {address:04X}")
        staged = {}
        for image in (i for i in plan.images if i.ecu_address == address):
            source = self.ecus[self.gateway_address].receiver.completed(image.name)
            assert source is not None  # checked in _check_plan
            slot = self.store.slots_dir(address) / f"{image.name}.v{image.version}.{plan.counter}"
            staged[(address, image.name)] = slot.relative_to(self.store.directory).as_posix()
            _verified_copy(source.path, slot, image)
        return staged

    def _next_state(self, plan: ActivationPlan, staged: dict[tuple[int, str], str]) -> CarState:
        new = copy.deepcopy(self.state)
        granted = {g.feature_id for g in plan.features} | set(plan.revoked_features)
        new.features = [f for f in new.features if f.feature_id not in granted]
        new.features += [
            FeatureState(
                feature_id=g.feature_id,
                ecu_address=g.ecu_address,
                valid_until=g.valid_until.isoformat() if g.valid_until else None,
                activation_counter=plan.counter,
                valid_from=(g.valid_from or self.services.now()).isoformat(),
            )
            for g in plan.features
        ]
        for image in plan.images:
            new.ecus[image.ecu_address].images[image.name] = InstalledImage(
                name=image.name,
                version=image.version,
                sha256=image.sha256,
                length=image.length,
                slot=staged.get((image.ecu_address, image.name)),
            )
        for address in {a for a, kind in staged if kind == SECURE_STORAGE}:
            new.ecus[address].secure_storage = staged[(address, SECURE_STORAGE)]
        new.activation_counter = plan.counter
        new.last_verified_at = self.services.now().isoformat()
        if plan.nonce is not None:
            new.used_nonces = [*new.used_nonces, plan.nonce.hex()][-256:]
            new.issued_nonces = [n for n in new.issued_nonces if n != plan.nonce.hex()]
        new.last_bundle_id = plan.bundle_id
        if plan.trust_state is not None:
            new.trust_state = dict(plan.trust_state)
        return new


def _in_validity(valid_from: str | None, valid_until: str | None, now: datetime) -> bool:
    """A grant is active from its start (inclusive) to its end (exclusive); open ends are open."""
    started = valid_from is None or datetime.fromisoformat(valid_from) <= now
    ended = valid_until is not None and datetime.fromisoformat(valid_until) <= now
    return started and not ended
