"""Vehicle Identification Number: ISO 3779 structure, 49 CFR 565 check digit and model year.

A VIN is 17 characters from the digits and the Latin capitals without ``I``, ``O`` and ``Q`` (they
read as 1 and 0). ISO 3779 splits it into three sections:

==========  =========  ===========================================================
positions   section    content
==========  =========  ===========================================================
1–3         WMI        world manufacturer identifier (ISO 3780: region, country)
4–9         VDS        vehicle descriptor; position 9 is the check digit (49 CFR 565)
10–17       VIS        vehicle indicator: 10 model year, 11 plant, 12–17 serial
==========  =========  ===========================================================

The check digit is mandatory for vehicles made for North America (WMI first character ``1``–``5``,
49 CFR 565.15(c)); :meth:`Vin.parse` refuses such a VIN when position 9 is wrong. For every other
region the digit is computed and *reported* (``check_digit_valid``) but not enforced, since
ISO 3779 does not require it and European or Chinese makers may use position 9 freely.

The model-year letter of position 10 repeats every 30 years; 49 CFR 565.15(b) resolves the cycle
with position 7: a digit there means 1980–2009, a letter means 2010–2039.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, cast

from forecourt.core.errors import VinError

VIN_LENGTH: Final = 17
ALPHABET: Final = frozenset("0123456789ABCDEFGHJKLMNPRSTUVWXYZ")
CHECK_DIGIT_POSITION: Final = 9

# 49 CFR 565.15(c), table I: letters take the values below, digits their own value.
TRANSLITERATION: Final[dict[str, int]] = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
# 49 CFR 565.15(c), table II: weight per position 1..17 (position 9, the check digit, weighs 0).
WEIGHTS: Final = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)

# Position-10 codes in order; U, Z and 0 are never year codes. Index i is 1980+i or 2010+i.
_YEAR_CODES: Final = "ABCDEFGHJKLMNPRSTVWXY123456789"

# ISO 3780 orders characters A–Z (without I, O, Q), then 1–9, then 0; ranges use that order.
_ISO3780_ORDER: Final = "ABCDEFGHJKLMNPRSTUVWXYZ1234567890"


class VinRegion(StrEnum):
    """Continent of manufacture, from the first WMI character (ISO 3780)."""

    AFRICA = "africa"
    ASIA = "asia"
    EUROPE = "europe"
    NORTH_AMERICA = "north_america"
    OCEANIA = "oceania"
    SOUTH_AMERICA = "south_america"


def _region_of(first: str) -> VinRegion:
    if first in "ABCDEFGH":
        return VinRegion.AFRICA
    if first in "JKLMNPR":
        return VinRegion.ASIA
    if first in "STUVWXYZ":
        return VinRegion.EUROPE
    if first in "12345":
        return VinRegion.NORTH_AMERICA
    if first in "67":
        return VinRegion.OCEANIA
    return VinRegion.SOUTH_AMERICA  # 8, 9, 0


# (first character, second-character range inclusive, country). Coarse on purpose: the countries a
# dealer network meets most; anything else reports its region only.
_COUNTRIES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("A", "A", "H", "South Africa"),
    ("J", "A", "0", "Japan"),
    ("K", "L", "R", "South Korea"),
    ("L", "A", "0", "China"),
    ("M", "A", "E", "India"),
    ("M", "F", "K", "Indonesia"),
    ("M", "L", "R", "Thailand"),
    ("R", "F", "K", "Taiwan"),
    ("S", "A", "M", "United Kingdom"),
    ("S", "N", "T", "Germany"),
    ("S", "U", "Z", "Poland"),
    ("T", "A", "H", "Switzerland"),
    ("T", "J", "P", "Czech Republic"),
    ("T", "R", "V", "Hungary"),
    ("V", "A", "E", "Austria"),
    ("V", "F", "R", "France"),
    ("V", "S", "W", "Spain"),
    ("W", "A", "0", "Germany"),
    ("X", "L", "R", "Netherlands"),
    ("X", "S", "W", "Russia"),
    ("Y", "A", "E", "Belgium"),
    ("Y", "F", "K", "Finland"),
    ("Y", "S", "W", "Sweden"),
    ("Z", "A", "R", "Italy"),
    ("1", "A", "0", "United States"),
    ("2", "A", "0", "Canada"),
    ("3", "A", "W", "Mexico"),
    ("4", "A", "0", "United States"),
    ("5", "A", "0", "United States"),
    ("6", "A", "W", "Australia"),
    ("7", "A", "E", "New Zealand"),
    ("8", "A", "E", "Argentina"),
    ("9", "A", "E", "Brazil"),
    ("9", "3", "9", "Brazil"),
)


def _country_of(wmi: str) -> str | None:
    rank = _ISO3780_ORDER.index(wmi[1])
    for first, low, high, country in _COUNTRIES:
        if wmi[0] == first and _ISO3780_ORDER.index(low) <= rank <= _ISO3780_ORDER.index(high):
            return country
    return None


def _check_syntax(vin: str) -> None:
    """Raise :class:`VinError` unless ``vin`` is 17 characters of the VIN alphabet."""
    if len(vin) != VIN_LENGTH:
        raise VinError(vin, None, f"must be {VIN_LENGTH} characters, got {len(vin)}")
    for index, char in enumerate(vin, start=1):
        if char in ALPHABET:
            continue
        if char in "IOQ":
            raise VinError(vin, index, f"letter {char!r} is not allowed (reads as 1 or 0)")
        raise VinError(vin, index, f"character {char!r} is not a digit or capital letter")


def compute_check_digit(vin: str) -> str:
    """The 49 CFR 565 check digit of a 17-character VIN (position 9 is ignored): ``0``–``9``/``X``.

    Raises :class:`VinError` if ``vin`` has the wrong length or a character outside the alphabet.
    """
    _check_syntax(vin)
    remainder = sum(TRANSLITERATION[c] * w for c, w in zip(vin, WEIGHTS, strict=True)) % 11
    return "X" if remainder == 10 else str(remainder)


def check_digit_mandatory(wmi_first: str) -> bool:
    """True where 49 CFR 565 makes the check digit mandatory: WMIs for North America (1–5)."""
    return wmi_first in "12345"


def model_year_of(vin: str) -> int | None:
    """Model year from position 10 (cycle chosen by position 7); ``None`` if not a year code."""
    index = _YEAR_CODES.find(vin[9])
    if index < 0:
        return None
    return (2010 if vin[6].isalpha() else 1980) + index


@dataclass(frozen=True, slots=True)
class Vin:
    """A syntactically valid VIN in canonical form (upper case, no surrounding space).

    Build one with :meth:`parse` (normalises and checks the check digit where it is mandatory) or
    :func:`build_vin` (computes the check digit). The constructor accepts only canonical text.
    """

    value: str

    def __post_init__(self) -> None:
        _check_syntax(self.value)

    @classmethod
    def parse(cls, text: str, *, verify_check_digit: bool = True) -> Vin:
        """Normalise ``text`` and check it.

        With ``verify_check_digit`` (the default) a North-American VIN whose position 9 is not the
        computed check digit is refused; pass ``False`` to accept it and read ``check_digit_valid``
        (for instance to report what a car answered to DID F190).
        """
        if not isinstance(cast(object, text), str):  # JSON and wire values arrive untyped
            raise VinError(repr(text)[:40], None, f"must be text, got {type(text).__name__}")
        vin = cls(text.strip().upper())
        if verify_check_digit and vin.check_digit_mandatory and not vin.check_digit_valid:
            raise VinError(
                vin.value,
                CHECK_DIGIT_POSITION,
                f"check digit is {vin.check_digit!r}, expected {vin.computed_check_digit!r}",
            )
        return vin

    def __str__(self) -> str:
        return self.value

    @property
    def wmi(self) -> str:
        """World manufacturer identifier, positions 1–3."""
        return self.value[:3]

    @property
    def vds(self) -> str:
        """Vehicle descriptor section, positions 4–9 (ISO 3779; includes the check digit)."""
        return self.value[3:9]

    @property
    def vis(self) -> str:
        """Vehicle indicator section, positions 10–17."""
        return self.value[9:]

    @property
    def check_digit(self) -> str:
        """Position 9 as written."""
        return self.value[8]

    @property
    def computed_check_digit(self) -> str:
        """Position 9 as 49 CFR 565 computes it."""
        return compute_check_digit(self.value)

    @property
    def check_digit_valid(self) -> bool:
        """Whether position 9 equals the computed check digit (reported for every region)."""
        return self.check_digit == self.computed_check_digit

    @property
    def check_digit_mandatory(self) -> bool:
        """Whether 49 CFR 565 makes the check digit mandatory (North-American WMI)."""
        return check_digit_mandatory(self.value[0])

    @property
    def model_year(self) -> int | None:
        """Model year (position 10, cycle by position 7), or ``None`` if not a year code."""
        return model_year_of(self.value)

    @property
    def plant_code(self) -> str:
        """Assembly plant, position 11."""
        return self.value[10]

    @property
    def serial(self) -> str:
        """Production sequence number, positions 12–17."""
        return self.value[11:]

    @property
    def region(self) -> VinRegion:
        """Continent of manufacture (ISO 3780)."""
        return _region_of(self.value[0])

    @property
    def country(self) -> str | None:
        """Country of manufacture where the WMI range is known, else ``None``."""
        return _country_of(self.wmi)


def build_vin(wmi: str, vds: str, vis: str) -> Vin:
    """Assemble a VIN from WMI (3), VDS attributes (5, positions 4–8) and VIS (8); fill position 9.

    The check digit is always computed, so the result verifies in every region; demo data and
    tests use this to make VINs a real registry would accept.
    """
    parts = {"wmi": (wmi, 3), "vds": (vds, 5), "vis": (vis, 8)}
    for name, (part, length) in parts.items():
        if len(part) != length:
            raise VinError(
                wmi + vds + vis, None, f"{name} must be {length} characters, got {len(part)}"
            )
    draft = (wmi + vds + "0" + vis).upper()
    return Vin(draft[:8] + compute_check_digit(draft) + draft[9:])
