"""``forecourt vin``: the only core command; it adds I/O (printing) around the pure decoder."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from forecourt.core.errors import VinError
from forecourt.core.vin import Vin
from forecourt.logging import get_logger

_log = get_logger("core.vin")


def vin_command(vins: list[str] = typer.Argument(..., help="one or more VINs")) -> None:
    """Decode each VIN; print a table per valid one and exit 1 naming every invalid one."""
    out = Console()
    err = Console(stderr=True)
    failures = 0
    for text in vins:
        try:
            vin = Vin.parse(text)
        except VinError as exc:
            failures += 1
            where = "length" if exc.position is None else f"position {exc.position}"
            err.print(
                f"invalid VIN {exc.vin!r}: {where}: {exc.reason}", markup=False, soft_wrap=True
            )
            _log.warning("vin_refused", vin=exc.vin, position=exc.position, reason=exc.reason)
            continue
        out.print(_table(vin))
    if failures:
        raise typer.Exit(code=1)


def _table(vin: Vin) -> Table:
    table = Table(title=f"VIN {vin}", show_header=True, title_justify="left")
    table.add_column("field")
    table.add_column("positions")
    table.add_column("value")
    country = vin.country or "unknown"
    check = "valid" if vin.check_digit_valid else f"invalid (expected {vin.computed_check_digit})"
    enforced = "enforced (49 CFR 565)" if vin.check_digit_mandatory else "not enforced"
    year = "not encoded" if vin.model_year is None else str(vin.model_year)
    table.add_row("WMI", "1–3", vin.wmi)
    table.add_row("region", "1–2", f"{vin.region.value.replace('_', ' ')} / {country}")
    table.add_row("VDS", "4–9", vin.vds)
    table.add_row("check digit", "9", f"{vin.check_digit}: {check}, {enforced}")
    table.add_row("VIS", "10–17", vin.vis)
    table.add_row("model year", "10", year)
    table.add_row("plant code", "11", vin.plant_code)
    table.add_row("serial", "12–17", vin.serial)
    return table
