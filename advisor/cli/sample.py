"""``advisor sample``: write the bundled sample fleet and its ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advisor.cli.options import OutOpt

__all__ = ["sample"]

SeedOpt = Annotated[int | None, typer.Option(
    "--seed", help="Seed of the simulation (default: the bundled sample's).",
    show_default=False)]


def sample(out: OutOpt = Path("sample"), seed: SeedOpt = None) -> None:
    """Write the sample fleet (kubectl JSON) and its ground truth (events, runs, skips)."""
    from advisor import sample as fleet

    paths = fleet.write_sample(out, fleet.SEED if seed is None else seed)
    for what, path in paths.items():
        print(f"{what:8} {path}")
    print(f"collect it with: advisor collect --from-file {paths['fleet']}")
