"""``advisor report``: the weekly report (HTML, Markdown, JSON, CSV and charts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from advisor.advice import DEFAULT_TARGET, Settings
from advisor.advice.settings import parse_rpo
from advisor.cli.options import (
    ClusterOpt,
    FromFileOpt,
    LonghornVersionOpt,
    OutOpt,
    RpoOpt,
    SampleOpt,
    StartOpt,
    StoreOpt,
    TargetRiskOpt,
    WeekOpt,
    fail,
    fitted,
    week_of,
)
from advisor.inputs import store_problems
from advisor.longhorn import LATEST, behaviour
from advisor.sources.base import Problem
from advisor.store import HistoryStore, StoreError

__all__ = ["report"]

FormatOpt = Annotated[str, typer.Option(
    "--format", help="Comma-separated: html, md, json, csv.")]
DetailedOpt = Annotated[int, typer.Option(
    "--detailed", min=0, help="The riskiest volumes given their own charts (duration "
    "distribution and trend).")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress bar (there is none when stderr is not a terminal).")]


def report(
    store: StoreOpt = None,
    from_file: FromFileOpt = None,
    sample: SampleOpt = False,
    out: OutOpt = Path("reports"),
    formats: FormatOpt = "html,md,json,csv",
    week: WeekOpt = None,
    start: StartOpt = None,
    cluster: ClusterOpt = None,
    target_risk: TargetRiskOpt = DEFAULT_TARGET,
    rpo: RpoOpt = None,
    version: LonghornVersionOpt = LATEST,
    detailed: DetailedOpt = 20,
    quiet: QuietOpt = False,
) -> None:
    """The weekly report: which volumes contend for the backupstore lock, why, and what
    to change (HTML, Markdown, JSON, CSV and charts). Prints patches; never applies them.

    The history is one of --store (the default), --from-file and --sample. The previous
    week's JSON in --out is what 'changed since' compares with."""
    from advisor.advice.settings import iso_week, latest_activity
    from advisor.report.build import REPORT_BACKUP_COLUMNS, build_report
    from advisor.report.progress import stages
    from advisor.report.render import FORMATS, load_previous, write_report

    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    if not wanted or set(wanted) - set(FORMATS):
        raise fail(f"--format: choose from {', '.join(FORMATS)}, not {formats!r}", 2)
    week = week_of(week, start)
    try:
        iso_week(week)
        behaviour(version)
    except ValueError as e:
        raise fail(str(e), 2) from None
    with stages(enabled=not quiet) as step:
        step("reading the history")
        loaded: list[Problem] = []
        frames, fits = fitted(store, sample, from_file,
                              backup_columns=REPORT_BACKUP_COLUMNS, problems=loaded)
        problems = _load_problems(store) if not (sample or from_file) else loaded
        label = iso_week(week, latest_activity(frames["backups"]))[0]
        try:
            every, per_job = parse_rpo(rpo or [])
            settings = Settings(target=target_risk, week=week, version=version,
                                cluster=cluster, rpo_s=every, job_rpo_s=per_job)
            built = build_report(frames, fits, settings, previous=load_previous(out, label),
                                 problems=problems, detailed=detailed, progress=step)
        except ValueError as e:
            raise fail(str(e), 2) from None
        step("charts")
        try:
            written = write_report(built, out, wanted, on_chart=step)
        except OSError as e:
            raise fail(f"cannot write the report into {out}: {e}", 1) from None
    s = built.summary
    print(f"week {label}, cluster {built.meta['cluster']}: {s['volumes_at_risk']} of "
          f"{s['volumes']} volumes at risk; {s['conflicts_observed']} lock conflicts "
          f"observed, {s['conflicts_predicted']:.1f} predicted")
    for c in s["top_changes"]:
        print(f"- {c}")
    for p in written:
        if p.suffix != ".png":
            print(f"wrote {p}")
    charts = sum(p.suffix == ".png" for p in written)
    if charts:
        print(f"wrote {charts} chart(s) beside the Markdown")


def _load_problems(store: Path | None) -> list[Problem]:
    """The store's last collection's problems (none for a path that is not a store)."""
    try:
        return store_problems(HistoryStore(store))
    except StoreError:
        return []
