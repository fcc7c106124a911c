"""The ``advisor`` command: a thin layer over the public API.

Exit codes: 0 done (warnings are counted in the output), 1 the store could not be used
(busy, newer version, not a store), 2 invalid input with nothing usable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from advisor import __version__, load_sample
from advisor.cron import CronError
from advisor.history import summarize
from advisor.model.scenario import ScenarioError, format_text, load_scenario, run_scenario
from advisor.model.scenario import summarize as summarize_scenario
from advisor.schedules import check
from advisor.sources.base import LoadResult, empty_result
from advisor.sources.files import InputError, load_files
from advisor.store import HistoryStore, StoreError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  pretty_exceptions_show_locals=False,
                  help="How Longhorn backup schedules collide on the backupstore lock, "
                       "volume by volume, and what schedule avoids it. Read-only.")

StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="History store folder (default: $ADVISOR_STORE, else "
    "$XDG_DATA_HOME/longhorn-backup-advisor).", show_default=False)]
MAX_WARNINGS_SHOWN = 200


def _fail(message: str, code: int) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        print(f"advisor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Longhorn backup advisor."""


def _print_load(result: LoadResult, all_problems: bool) -> None:
    print(f"read {len(result.files)} file(s)")
    for kind, n in sorted(result.read.items()):
        print(f"  {kind:<14} {n:>8}")
    skipped, warnings = result.skipped, result.warnings
    if skipped:
        print(f"skipped {len(skipped)} record(s):")
        for p in skipped:
            print(f"  {p}")
    if warnings:
        shown = warnings if all_problems else warnings[:MAX_WARNINGS_SHOWN]
        print(f"{len(warnings)} warning(s) (records kept, field left empty or copy dropped):")
        for p in shown:
            print(f"  {p}")
        if len(shown) < len(warnings):
            print(f"  ... {len(warnings) - len(shown)} more (--all-problems shows them)")


@app.command()
def collect(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="More files or folders, as with --from-file.", show_default=False)] = None,
    from_file: Annotated[list[Path] | None, typer.Option(
        "--from-file", "-f", help="kubectl get -o json/yaml output, GitOps manifests, a "
        "CSV of backup history, a folder of them, or - for stdin. Repeatable.",
        show_default=False)] = None,
    sample: Annotated[bool, typer.Option(
        "--sample", help="Collect the sample fleet (made by the simulator; cluster "
        "'sample').")] = False,
    cluster: Annotated[str, typer.Option(
        "--cluster", help="Name to tag these records with.")] = "default",
    store: StoreOpt = None,
    all_problems: Annotated[bool, typer.Option(
        "--all-problems", help="Print every warning, not the first 200.")] = False,
) -> None:
    """Read backup history into the local history store."""
    inputs = [*(from_file or []), *(paths or [])]
    if not inputs and not sample:
        raise _fail("nothing to collect: give --from-file PATH... or --sample", 2)
    try:
        result = load_files(inputs, cluster=cluster) if inputs else empty_result()
    except InputError as e:
        raise _fail(str(e), 2) from None
    if sample:  # tagged cluster "sample", so it never mixes with a real cluster's history
        result = result.merge(load_sample())
    _print_load(result, all_problems)
    if result.usable_rows == 0:
        raise _fail("no usable record in the input; nothing stored", 2)
    try:
        hs = HistoryStore(store)
        appended = hs.append(result.frames)
    except StoreError as e:
        raise _fail(str(e), 1) from None
    for name, c in appended.counts.items():
        print(f"{name}: {c.added} added, {c.updated} updated, {c.unchanged} unchanged")
    where = (f"collection {appended.collection_id}" if appended.collection_id
             else "nothing new")
    print(f"store: {hs.path} ({where}); {len(result.warnings)} warning(s), "
          f"{len(result.skipped)} skipped")


@app.command()
def history(
    store: StoreOpt = None,
    output: Annotated[str, typer.Option(
        "--output", "-o", help="table or json.")] = "table",
) -> None:
    """Summarise the history store: clusters, volumes, jobs, backups, conflicts."""
    if output not in ("table", "json"):
        raise _fail(f"--output must be table or json, not {output!r}", 2)
    try:
        hs = HistoryStore(store)
        frames = {name: hs.read(name) for name in ("backups", "jobs", "volumes")}
        observations = hs.observations()
    except StoreError as e:
        raise _fail(str(e), 1) from None
    summary = summarize(frames, observations)
    if output == "json":
        print(json.dumps({"store": str(hs.path), **summary.to_dict()}, indent=2))
    else:
        print(f"store: {hs.path}")
        print(summary)


@app.command("sample")
def sample_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write into.")] = Path(
        "sample"),
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of the simulation (default: the bundled sample's).",
        show_default=False)] = None,
) -> None:
    """Write the sample fleet (kubectl JSON) and its ground truth (events, runs, skips)."""
    from advisor.sources import sample

    paths = sample.write_sample(out, sample.SEED if seed is None else seed)
    for what, path in paths.items():
        print(f"{what:8} {path}")
    print(f"collect it with: advisor collect --from-file {paths['fleet']}")


@app.command("cron")
def cron_command(
    expr: Annotated[str, typer.Argument(help="The schedule, e.g. '0 */2 * * *' (quote it).")],
    from_: Annotated[str | None, typer.Option(
        "--from", help="Fire times after this time (RFC 3339; default now, UTC).",
        show_default=False)] = None,
    n: Annotated[int, typer.Option("-n", help="How many fire times.", min=0)] = 5,
    tz: Annotated[str | None, typer.Option(
        "--tz", help="Evaluation time zone (IANA name or +HH:MM). Longhorn sets none, so "
        "the controller's zone applies: usually UTC.", show_default=False)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """When a RecurringJob schedule really fires, read as Longhorn and Kubernetes do."""
    if output not in ("text", "json"):
        raise _fail(f"--output must be text or json, not {output!r}", 2)
    try:
        result = check(expr, from_, n, tz)
    except CronError as e:  # an unknown --tz
        raise _fail(str(e), 2) from None
    except ValueError as e:
        raise _fail(f"--from {from_!r} is not a time: {e}", 2) from None
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


@app.command("simulate")
def simulate_command(
    scenario: Annotated[Path, typer.Argument(
        help="The scenario file (YAML): window, Longhorn version, volumes, RecurringJobs.",
        show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Simulate a scenario's backups, deletions and restores on the backupstore lock."""
    if output not in ("text", "json"):
        raise _fail(f"--output must be text or json, not {output!r}", 2)
    try:
        sc = load_scenario(scenario)
    except ScenarioError as e:
        for problem in e.problems:
            print(f"error: {scenario}: {problem}", file=sys.stderr)
        raise typer.Exit(2) from None
    except OSError as e:
        raise _fail(f"{scenario}: cannot read the scenario file ({e.strerror})", 2) from None
    summary = summarize_scenario(run_scenario(sc), sc)
    print(json.dumps(summary, indent=2) if output == "json" else format_text(summary))


def main() -> None:
    """Entry point of the ``advisor`` console script."""
    app()
