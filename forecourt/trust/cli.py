"""``forecourt bundle ...`` and ``forecourt pki ...`` commands."""

from __future__ import annotations

import typer

bundle_app = typer.Typer(no_args_is_help=True)
pki_app = typer.Typer(no_args_is_help=True)
