"""What the commands share: each option used by two or more commands, declared once (one
name, one help, one range), and the helpers that read history, report load problems and
fail with an exit code.

Exit codes: 0 done, 1 the store could not be used (busy, newer version, not a store), 2
invalid input with nothing usable.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from advisor.inputs import model_inputs
from advisor.model.durations import DurationFits, fit_durations
from advisor.model.risk import default_window
from advisor.sample import load_sample
from advisor.sources.base import LoadResult, Problem
from advisor.sources.files import InputError, load_files
from advisor.store import HistoryStore, StoreError

__all__ = ["KUBERNETES", "ClusterOpt", "ClusterTagOpt", "FromFileOpt",
           "InClusterOpt", "KubeconfigOpt", "LonghornVersionOpt", "NamespaceOpt", "OutOpt",
           "RpoOpt", "SampleOpt", "StartOpt", "StoreOpt", "TableOrJsonOpt", "TargetRiskOpt",
           "TextOrJsonOpt", "WeekOpt", "check_output", "fail", "fitted", "print_load",
           "week_of"]

KUBERNETES = "Kubernetes API"
"""The help panel of the options that reach a cluster's API server."""
MAX_WARNINGS_SHOWN = 200

# --- where the history comes from: one of --store, --from-file, --sample ---------------

StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="History store folder (default: $ADVISOR_STORE, else "
    "$XDG_DATA_HOME/longhorn-backup-advisor).", show_default=False)]
FromFileOpt = Annotated[list[Path] | None, typer.Option(
    "--from-file", "-f", help="Read backup history from files: kubectl get -o json/yaml "
    "output, GitOps manifests, a CSV of backup history, a folder of them, or - for stdin. "
    "Repeatable.", show_default=False)]
SampleOpt = Annotated[bool, typer.Option(
    "--sample", help="Use the sample fleet (made by the simulator; cluster 'sample').")]

# --- what is analysed and how ----------------------------------------------------------

TargetRiskOpt = Annotated[float, typer.Option(
    "--target-risk", "--max-risk", help="Largest acceptable P(conflict) and P(skip) per "
    "run (--max-risk is its old name).", min=1e-6, max=0.5)]
RpoOpt = Annotated[list[str] | None, typer.Option(
    "--rpo", help="Recovery-point objective: the longest acceptable p95 gap between a "
    "volume's completed backups, e.g. 2h (every volume) or JOB=30m (that RecurringJob's "
    "volumes). Repeatable. Advice never lengthens an interval past it.",
    show_default=False)]
LonghornVersionOpt = Annotated[str, typer.Option(
    "--longhorn-version", help="Longhorn's rules to apply.")]
WeekOpt = Annotated[str | None, typer.Option(
    "--week", help="The ISO week to score, YYYY-Www, e.g. 2026-W47 (default: the "
    "history's last complete week).", show_default=False)]
StartOpt = Annotated[str | None, typer.Option(
    "--start", help="Old form of --week: the week from this date's Monday on or after it.",
    show_default=False, hidden=True)]
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", help="The cluster, when the history holds several.", show_default=False)]

# --- reading a cluster (collect --kube, watch) ------------------------------------------

ClusterTagOpt = Annotated[str, typer.Option(
    "--cluster", help="The cluster's name to tag what is read with (what is read through "
    "a kubeconfig context is tagged with the context's name).")]
NamespaceOpt = Annotated[str, typer.Option(
    "--namespace", help="Longhorn's namespace.", rich_help_panel=KUBERNETES)]
KubeconfigOpt = Annotated[str | None, typer.Option(
    "--kubeconfig", help="The kubeconfig (default $KUBECONFIG, else ~/.kube/config).",
    show_default=False, rich_help_panel=KUBERNETES)]
InClusterOpt = Annotated[bool, typer.Option(
    "--in-cluster", help="The cluster the advisor runs in (its service account) instead "
    "of a kubeconfig context, tagged --cluster.", rich_help_panel=KUBERNETES)]

# --- output ----------------------------------------------------------------------------

TableOrJsonOpt = Annotated[str, typer.Option("--output", "-o", help="table or json.")]
TextOrJsonOpt = Annotated[str, typer.Option("--output", "-o", help="text or json.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Folder to write into.")]


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` on stderr; the exit to raise, with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def check_output(output: str, choices: tuple[str, ...]) -> None:
    """Exit 2 unless ``--output`` is one of ``choices``."""
    if output not in choices:
        named = f"{', '.join(choices[:-1])} or {choices[-1]}"
        raise fail(f"--output must be {named}, not {output!r}", 2)


def print_load(result: LoadResult, all_problems: bool) -> None:
    """What a load read, per kind of record, and what it skipped or warned about (the
    first :data:`MAX_WARNINGS_SHOWN` warnings unless ``all_problems``)."""
    # lists from the API server were printed per cluster as they were read; what came
    # from files (and the sample) is said here, with the records of every source
    listed = any(f.startswith("kube:") for f in result.files)
    paths = [f for f in result.files if not f.startswith("kube:") and f != "sample"]
    read = ([f"{len(paths)} file(s)"] if paths else []) + (
        ["the sample fleet"] if "sample" in result.files else [])
    if read:
        print(f"read {' and '.join(read)}"
              + ("; records of every source:" if listed else ""))
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


def fitted(store: Path | None, sample: bool, from_file: list[Path] | None = None,
           backup_columns: tuple[str, ...] | None = None,
           problems: list[Problem] | None = None) -> tuple[dict, DurationFits]:
    """The frames and duration fits of the one data option set: --sample, --from-file
    or --store. From a store, the fits it keeps from its present collections (fitted
    and kept on the first run after a collection, see
    :func:`advisor.inputs.model_inputs`), and of its Backups only ``backup_columns``.
    ``problems``, if given, gets the records a file load skipped or warned about."""
    if sum(bool(x) for x in (store, from_file, sample)) > 1:
        raise fail("give one of --store, --from-file, --sample", 2)
    if not (sample or from_file):  # (no --store: the default store)
        try:
            inputs = model_inputs(HistoryStore(store), backup_columns=backup_columns)
        except StoreError as e:
            raise fail(str(e), 1) from None
        return inputs.frames, inputs.fits
    if sample:
        frames = load_sample().frames
    else:
        try:
            result = load_files(from_file or [])
        except InputError as e:
            raise fail(str(e), 2) from None
        print_load(result, False)
        if problems is not None:  # (what the caller reports)
            problems.extend(result.problems)
        if result.usable_rows == 0:
            raise fail("no usable record in the input", 2)
        frames = result.frames
    return frames, fit_durations(frames["backups"], frames.get("volumes"),
                                 frames.get("backup_volumes"), jobs=frames.get("jobs"))


def week_of(week: str | None, start: str | None) -> str | None:
    """``--week``, or the ISO week of ``--start``'s Monday (on or after it)."""
    if start is None:
        return week
    if week is not None:
        raise fail("give --week or --start, not both", 2)
    try:
        monday = default_window(start)[0]
    except ValueError as e:
        raise fail(f"--start {start!r}: {e}", 2) from None
    y, w, _ = monday.isocalendar()
    return f"{y}-W{w:02d}"
