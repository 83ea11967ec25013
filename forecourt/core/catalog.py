"""The catalog: every feature and package version the OEM publishes, looked up by code or target."""

from __future__ import annotations

from dataclasses import dataclass

from forecourt.core.errors import DomainValueError
from forecourt.core.feature import Feature
from forecourt.core.market import Market
from forecourt.core.package import SoftwarePackage


@dataclass(frozen=True, slots=True)
class Catalog:
    """Features (unique codes) and packages (unique name + version)."""

    features: tuple[Feature, ...]
    packages: tuple[SoftwarePackage, ...]

    def __post_init__(self) -> None:
        codes = [feature.code for feature in self.features]
        if len(codes) != len(set(codes)):
            raise DomainValueError("features", "a feature code appears twice")
        versions = [(package.name, package.version) for package in self.packages]
        if len(versions) != len(set(versions)):
            raise DomainValueError("packages", "a package version appears twice")

    def feature(self, code: str) -> Feature | None:
        """The feature with ``code``, or ``None``."""
        return next((f for f in self.features if f.code == code), None)

    def standard_features(self, market: Market) -> tuple[Feature, ...]:
        """Features on by default in ``market``, sorted by code."""
        return tuple(sorted((f for f in self.features if f.standard_in(market)), key=_code))

    def newest_packages(
        self, hardware_number: str, model: str, market: Market, languages: tuple[str, ...]
    ) -> tuple[SoftwarePackage, ...]:
        """Per package name, the newest release that fits; language packs only for ``languages``.

        Pre-releases (``2.0.0-rc.1``) are never chosen automatically: they reach cars only through
        an explicit campaign, not through an activation. Sorted by name, so two calls with the
        same catalog give the same answer.
        """
        newest: dict[str, SoftwarePackage] = {}
        for package in self.packages:
            if package.version.prerelease or not package.fits(hardware_number, model, market):
                continue
            if package.language is not None and package.language not in languages:
                continue
            best = newest.get(package.name)
            if best is None or best.version < package.version:
                newest[package.name] = package
        return tuple(newest[name] for name in sorted(newest))


def _code(feature: Feature) -> str:
    return feature.code
