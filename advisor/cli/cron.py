"""``advisor cron``: when a RecurringJob schedule really fires."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from advisor.cli.options import TextOrJsonOpt, check_output, fail
from advisor.cron import CronError
from advisor.schedules import check

__all__ = ["cron"]

ExprArg = Annotated[str, typer.Argument(help="The schedule, e.g. '0 */2 * * *' (quote it).")]
FromOpt = Annotated[str | None, typer.Option(
    "--from", help="Fire times after this time (RFC 3339; default now, UTC).",
    show_default=False)]
CountOpt = Annotated[int, typer.Option("-n", help="How many fire times.", min=0)]
TzOpt = Annotated[str | None, typer.Option(
    "--tz", help="Evaluation time zone (IANA name or +HH:MM). Longhorn sets none, so the "
    "controller's zone applies: usually UTC.", show_default=False)]


def cron(expr: ExprArg, from_: FromOpt = None, n: CountOpt = 5, tz: TzOpt = None,
         output: TextOrJsonOpt = "text") -> None:
    """When a RecurringJob schedule really fires, read as Longhorn and Kubernetes do."""
    check_output(output, ("text", "json"))
    try:
        result = check(expr, from_, n, tz)
    except CronError as e:  # an unknown --tz
        raise fail(str(e), 2) from None
    except ValueError as e:
        raise fail(f"--from {from_!r} is not a time: {e}", 2) from None
    if output == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        def yes(ok: bool) -> str:
            return "accepts" if ok else "rejects"

        print(f"schedule:    {expr}")
        print(f"valid:       {'yes' if result.valid else 'no'} (Longhorn {yes(result.longhorn)}, "
              f"Kubernetes {yes(result.kubernetes)})")
        if result.error:
            print(f"error:       {result.error}")
        else:
            print(f"description: {result.description}")
            zone_note = f" (evaluated in {tz})" if tz else ""
            print(f"next {len(result.next)} fire time(s), UTC{zone_note}:")
            for t in result.next:
                print(f"  {t:%Y-%m-%dT%H:%M:%SZ}  {t:%a}")
            if len(result.next) < n:
                print("  (no further fire time within five years: the schedule never fires)")
    raise typer.Exit(0 if result.valid else 2)
