"""In-memory stand-ins for the car and the package cache, honouring the workflow's ports.

:class:`FakeCar` keeps what a real car keeps across TCP sessions (files received so far, issued
nonces, the activation counter, installed images) and applies a bundle only if it is for this
VIN, fresh (an issued nonce, or an offline counter above its own) and every image arrived whole.
Faults are injected per test: a link cut after N bytes of a file, a negative response to
authentication or to the apply routine.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from forecourt.edge.cloud_client import (
    Authorisation,
    AuthorisationRequest,
    OfflinePackageOffer,
    PackageRef,
)
from forecourt.edge.workflow import (
    ApplyOutcome,
    CarIdentity,
    CarUnreachable,
    EcuIdentity,
    NegativeResponse,
    PackageUnavailable,
)
from forecourt.edge.workflow.ports import TransferProgress
from forecourt.trust.manifest import (
    EcuVersionReport,
    InstalledImage,
    build_ecu_report,
    build_manifest,
)

VIN = "WVWZZZ1JZXW000001"
OTHER_VIN = "WVWZZZ1JZXW000002"
BLOCK = 4096


def bundle_for(
    vin: str, images: list[PackageRef], *, nonce: str | None = None, counter: int | None = None
) -> bytes:
    doc: dict[str, Any] = {
        "vin": vin,
        "images": [r.to_dict() for r in images],
        "freshness": {"nonce": nonce} if nonce else {"counter": counter},
    }
    return json.dumps(doc, sort_keys=True).encode()


@dataclass
class FakeCar:
    vin: str = VIN
    address: str = "127.0.0.10"
    counter: int = 0
    ecus: tuple[EcuIdentity, ...] = (
        EcuIdentity(0x1000, "CGW-0001", "HW-CGW-1", "1.0.0"),
        EcuIdentity(0x1002, "IVI-0001", "HW-IVI-1", "1.0.0"),
    )
    files: dict[str, bytearray] = field(default_factory=dict)
    nonces: list[str] = field(default_factory=list)
    used_nonces: set[str] = field(default_factory=set)
    installed: dict[tuple[int, str], tuple[str, int]] = field(default_factory=dict)
    last_bundle_id: str | None = None
    applies: int = 0
    apply_calls: int = 0
    cut_after: dict[str, int] = field(default_factory=dict)
    auth_nrc: int | None = None
    apply_nrc: int | None = None
    reachable: bool = True
    sent_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    keys: dict[int, Ed25519PrivateKey] = field(default_factory=dict)
    report_counter: int = 0

    def __post_init__(self) -> None:
        self.keys = {e.logical_address: Ed25519PrivateKey.generate() for e in self.ecus}
        self.ecus = tuple(
            replace(
                e,
                signing_key_hex=self.keys[e.logical_address]
                .public_key()
                .public_bytes(Encoding.Raw, PublicFormat.Raw)
                .hex(),
            )
            for e in self.ecus
        )

    def report(self) -> bytes:
        """FD04: the signed vehicle version manifest, each ECU's report under its own key."""
        self.report_counter += 1
        reports = []
        for ecu in self.ecus:
            images = tuple(
                InstalledImage(name, size, {"sha256": sha})
                for (addr, name), (sha, size) in sorted(self.installed.items())
                if addr == ecu.logical_address
            )
            reports.append(
                build_ecu_report(
                    self.keys[ecu.logical_address],
                    EcuVersionReport(
                        ecu_serial=ecu.serial,
                        counter=self.report_counter,
                        nonce=f"n{self.report_counter}",
                        latest_verified_time=datetime(2025, 3, 1, tzinfo=UTC),
                        images=images,
                        activation_counter=self.counter,
                    ),
                )
            )
        return build_manifest(self.keys[0x1000], self.vin, self.ecus[0].serial, reports)

    def apply_bundle(self) -> ApplyOutcome:
        self.apply_calls += 1
        if self.apply_nrc is not None:
            raise NegativeResponse(0x1000, 0x31, self.apply_nrc, "injected")
        bundle = bytes(self.files.get("activation.bundle", b""))
        doc = json.loads(bundle)
        if doc["vin"] != self.vin:
            raise NegativeResponse(0x1000, 0x31, 0x31, "foreign VIN")
        fresh = doc["freshness"]
        if fresh.get("nonce") is not None:
            if fresh["nonce"] not in self.nonces or fresh["nonce"] in self.used_nonces:
                raise NegativeResponse(0x1000, 0x31, 0x24, "replayed nonce")
            self.used_nonces.add(fresh["nonce"])
            new_counter = self.counter + 1
        else:
            if fresh["counter"] <= self.counter:
                raise NegativeResponse(0x1000, 0x31, 0x24, "offline counter reused")
            new_counter = fresh["counter"]
        for image in doc["images"]:
            got = bytes(self.files.get(image["name"], b""))
            if hashlib.sha256(got).hexdigest() != image["sha256"]:
                raise NegativeResponse(0x1000, 0x31, 0x72, f"image {image['name']} mismatch")
        for image in doc["images"]:
            self.installed[(image["ecu_address"], image["name"])] = (image["sha256"], image["size"])
        self.counter = new_counter
        self.last_bundle_id = hashlib.sha256(bundle).hexdigest()[:16]
        self.applies += 1
        return ApplyOutcome(tuple((e.logical_address, 0) for e in self.ecus))


class FakeSession:
    def __init__(self, car: FakeCar) -> None:
        self.car = car
        self.open = True

    @property
    def address(self) -> str:
        return self.car.address

    @property
    def local_interface(self) -> str:
        return "lo:127.0.0.1"

    def _alive(self) -> None:
        if not self.open or not self.car.reachable:
            raise CarUnreachable(self.car.address, "link down")

    def identify(self) -> CarIdentity:
        self._alive()
        nonce = hashlib.sha256(f"{self.car.vin}{len(self.car.nonces)}".encode()).digest()[:16]
        self.car.nonces.append(nonce.hex())
        return CarIdentity(self.car.vin, self.car.ecus, nonce, self.car.counter)

    def authenticate(self, ecu_address: int) -> None:
        self._alive()
        if self.car.auth_nrc is not None:
            raise NegativeResponse(ecu_address, 0x29, self.car.auth_nrc, "injected")

    def confirmed_bytes(self, name: str, size: int) -> int:
        self._alive()
        return len(self.car.files.get(name, b""))

    def send_file(
        self, name: str, source: BinaryIO, size: int, offset: int, progress: TransferProgress
    ) -> None:
        self._alive()
        buffer = self.car.files.setdefault(name, bytearray())
        del buffer[offset:]
        source.seek(offset)
        while len(buffer) < size:
            cut = self.car.cut_after.get(name)
            if cut is not None and len(buffer) >= cut:
                del self.car.cut_after[name]
                self.open = False
                raise CarUnreachable(self.car.address, f"cut at {len(buffer)} bytes")
            block = source.read(min(BLOCK, size - len(buffer)))
            buffer.extend(block)
            self.car.sent_bytes += len(block)
            progress(len(buffer))

    def apply(self) -> ApplyOutcome:
        self._alive()
        return self.car.apply_bundle()

    def version_report(self) -> bytes:
        self._alive()
        return self.car.report()

    def close(self) -> None:
        self.open = False


class FakeConnector:
    def __init__(self, *cars: FakeCar) -> None:
        self.cars = {c.address: c for c in cars}
        self.connects = 0

    def add(self, car: FakeCar) -> None:
        self.cars[car.address] = car

    def discover(self, vin: str) -> str:
        for car in self.cars.values():
            if car.vin == vin and car.reachable:
                return car.address
        raise CarUnreachable(vin, "no car answers vehicle identification for this VIN")

    def connect(self, address: str) -> FakeSession:
        car = self.cars.get(address)
        if car is None or not car.reachable:
            raise CarUnreachable(address, "no DoIP entity")
        self.connects += 1
        return FakeSession(car)


class MemoryPackages:
    """A verified package cache in memory; ``missing`` digests cannot be fetched."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.missing: set[str] = set()
        self.ensured: list[str] = []

    def add(self, name: str, data: bytes, ecu_address: int = 0x1002) -> PackageRef:
        sha = hashlib.sha256(data).hexdigest()
        self.blobs[sha] = data
        return PackageRef(
            name, ecu_address, sha, len(data), f"https://cloud.test/v1/packages/{sha}"
        )

    def ensure(self, ref: PackageRef) -> None:
        if ref.sha256 in self.missing or ref.sha256 not in self.blobs:
            raise PackageUnavailable(ref, "not in the cloud")
        self.ensured.append(ref.sha256)

    @contextmanager
    def open(self, ref: PackageRef) -> Iterator[BinaryIO]:
        import io

        yield io.BytesIO(self.blobs[ref.sha256])


class Authoriser:
    """The fake cloud's authorisation: a bundle bound to the car's nonce, with the images."""

    def __init__(self, images: list[PackageRef]) -> None:
        self.images = images
        self.issued = 0

    def __call__(self, request: AuthorisationRequest) -> Authorisation:
        self.issued += 1
        bundle = bundle_for(request.vin, self.images, nonce=request.nonce_hex)
        return Authorisation(f"auth-{self.issued}", bundle, tuple(self.images))


def offline_offer(
    package_id: str,
    *,
    vin: str,
    counter: int,
    images: list[PackageRef],
    not_before: Any,
    not_after: Any,
) -> OfflinePackageOffer:
    return OfflinePackageOffer(
        package_id=package_id,
        vin=vin,
        counter=counter,
        bundle=bundle_for(vin, images, counter=counter),
        not_before=not_before,
        not_after=not_after,
        packages=tuple(images),
    )
