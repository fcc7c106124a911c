"""``advisor check``: the GitOps gate on proposed RecurringJobs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from advisor.advice import DEFAULT_TARGET, Settings, gate
from advisor.advice.settings import parse_rpo
from advisor.cli.options import (
    LonghornVersionOpt,
    RpoOpt,
    SampleOpt,
    StartOpt,
    TableOrJsonOpt,
    TargetRiskOpt,
    WeekOpt,
    check_output,
    fail,
    fitted,
    week_of,
)
from advisor.longhorn import LATEST
from advisor.sources.files import InputError, load_files

__all__ = ["check"]

FilesArg = Annotated[list[Path], typer.Argument(
    help="Proposed RecurringJob manifests (and optionally Volume manifests): YAML or JSON "
    "files or folders.", show_default=False)]
# (not options.StoreOpt: without --store, check judges the proposal alone, not against
# the default store)
HistoryStoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="Judge against this history store's volumes and durations (default: "
    "no history, the proposal alone).", show_default=False)]


def check(
    files: FilesArg,
    target_risk: TargetRiskOpt = DEFAULT_TARGET,
    rpo: RpoOpt = None,
    store: HistoryStoreOpt = None,
    sample: SampleOpt = False,
    version: LonghornVersionOpt = LATEST,
    week: WeekOpt = None,
    start: StartOpt = None,
    output: TableOrJsonOpt = "table",
) -> None:
    """Check proposed RecurringJobs before applying them (a GitOps gate): exit 0 within
    --target-risk, 1 above it, 2 on invalid input."""
    check_output(output, ("table", "json"))
    try:
        every, per_job = parse_rpo(rpo or [])
        settings = Settings(target=target_risk, week=week_of(week, start), version=version,
                            rpo_s=every, job_rpo_s=per_job)
        proposed = load_files(files)
    except (InputError, ValueError) as e:
        raise fail(str(e), 2) from None
    history = fitted(store, sample) if (store or sample) else None
    try:
        result = gate.check(proposed, settings, history=history)
    except gate.ProposalError as e:
        for line in e.problems:
            print(f"error: {line}", file=sys.stderr)
        raise typer.Exit(2) from None
    if output == "json":
        print(result.to_json())
    else:
        print(f"{result.verdict}: {len(result.findings)} finding(s), target "
              f"{target_risk:g} per run" + (f", week {result.week}" if result.week else ""))
        for f in result.findings:
            p = "" if f["p_per_run"] is None else f" (P per run {f['p_per_run']:.3g})"
            print(f"- [{f.get('severity', 'high')}] {f['kind']}{p}: {f['explanation']}")
        for a in result.assumptions:
            print(f"assumed: {a}")
    raise typer.Exit(1 if result.risky else 0)
