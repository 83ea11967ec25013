"""Software packages: what an ECU may receive, and the semantic version that orders them.

A package targets one ECU role and a set of hardware numbers; it is offered per market (and per
model, an empty set meaning every model). The plan picks, for each ECU and package name, the newest
version that fits; anti-rollback on the car then refuses anything older than what it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import total_ordering

from forecourt.core.ecu import EcuRole
from forecourt.core.errors import DomainValueError, VersionError
from forecourt.core.market import Market

# https://semver.org/spec/v2.0.0.html, the recommended regular expression.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class SemVer:
    """A semantic version, ordered by SemVer 2.0.0 precedence (§11).

    Build metadata is kept for display but, as the specification says, ignored for precedence;
    equality follows precedence too, so ``1.0.0+a == 1.0.0+b`` and both hash alike.
    """

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``; raise :class:`VersionError`."""
        match = _SEMVER.match(text)
        if match is None:
            raise VersionError(text, "not MAJOR.MINOR.PATCH[-pre][+build] (SemVer 2.0.0)")
        major, minor, patch, pre, build = match.groups()
        return cls(
            int(major),
            int(minor),
            int(patch),
            tuple(pre.split(".")) if pre else (),
            tuple(build.split(".")) if build else (),
        )

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release ranks above all its pre-releases; numeric identifiers rank below alphanumeric
        # ones and compare as numbers; a longer identifier list wins when all before are equal.
        pre = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())


class PackageType(StrEnum):
    """What a package carries."""

    OS = "os"
    MAP = "map"
    LANGUAGE = "language"
    COMPLIANCE = "compliance"
    CONFIG = "config"


@dataclass(frozen=True, slots=True)
class SoftwarePackage:
    """One immutable, content-addressed package version."""

    name: str
    version: SemVer
    package_type: PackageType
    target_role: EcuRole
    compatible_hardware: frozenset[str]
    markets: frozenset[Market]
    size: int
    sha256: str
    models: frozenset[str] = frozenset()  # empty: every model
    language: str | None = None  # for language packs: the BCP 47 tag it provides

    def __post_init__(self) -> None:
        if not self.name:
            raise DomainValueError("name", "must not be empty")
        if not self.compatible_hardware:
            raise DomainValueError("compatible_hardware", f"{self.name} fits no hardware")
        if not self.markets:
            raise DomainValueError("markets", f"{self.name} is offered in no market")
        if self.size <= 0:
            raise DomainValueError("size", "must be positive")
        if not _SHA256_HEX.match(self.sha256):
            raise DomainValueError("sha256", "must be 64 lower-case hex digits")
        if (self.package_type is PackageType.LANGUAGE) != (self.language is not None):
            raise DomainValueError("language", "set exactly for language packs")

    def fits(self, hardware_number: str, model: str, market: Market) -> bool:
        """Whether this package may be installed on that hardware, in that model and market."""
        return (
            hardware_number in self.compatible_hardware
            and market in self.markets
            and (not self.models or model in self.models)
        )
