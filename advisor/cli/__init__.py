"""The ``advisor`` command: a thin layer over the public API, one module per command,
the options two commands share declared once in :mod:`advisor.cli.options`.

Exit codes: 0 done (warnings are counted in the output), 1 the store could not be used
(busy, newer version, not a store), 2 invalid input with nothing usable.
"""

from __future__ import annotations

from typing import Annotated

import typer

from advisor import __version__
from advisor.cli import (
    check,
    collect,
    cron,
    history,
    recommend,
    report,
    sample,
    simulate,
    watch,
)

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  pretty_exceptions_show_locals=False,
                  help="How Longhorn backup schedules collide on the backupstore lock, "
                       "volume by volume, and what schedule avoids it. Read-only.")

# (in the order `advisor --help` lists them: gather history, look at it, then advise)
app.command("collect")(collect.collect)
app.command("watch")(watch.watch)
app.command("history")(history.history)
app.command("sample")(sample.sample)
app.command("cron")(cron.cron)
app.command("simulate")(simulate.simulate)
app.command("recommend")(recommend.recommend)
app.command("report")(report.report)
app.command("check")(check.check)


def _version(value: bool) -> None:
    if value:
        print(f"advisor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Longhorn backup advisor."""


def main() -> None:
    """Entry point of the ``advisor`` console script (a process of its own: its file loads
    may freeze what they leave alive, see :func:`advisor.sources.files.no_cycle_collection`)."""
    from advisor.sources import files

    files.FREEZE_AFTER_LOAD = True
    app()
