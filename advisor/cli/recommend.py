"""``advisor recommend``: the smallest safe interval per RecurringJob, and each volume's
risk now."""

from __future__ import annotations

import json
from typing import Annotated

import pandas as pd
import typer

from advisor.advice import DEFAULT_TARGET, Analysis, Settings, analyse
from advisor.advice.fit import week_fit
from advisor.advice.settings import parse_rpo
from advisor.cli.options import (
    ClusterOpt,
    FromFileOpt,
    LonghornVersionOpt,
    RpoOpt,
    SampleOpt,
    StartOpt,
    StoreOpt,
    TargetRiskOpt,
    WeekOpt,
    check_output,
    fail,
    fitted,
    week_of,
)
from advisor.longhorn import LATEST
from advisor.longhorn.manifests import job_labels_and_parameters
from advisor.model.observed import OBSERVED_BACKUP_COLUMNS
from advisor.model.recovery_observed import RECOVERY_BACKUP_COLUMNS
from advisor.report.recovery import change_text
from advisor.units import duration as dur

__all__ = ["recommend"]

OUTPUTS = ("table", "json", "yaml", "patch")
JSON_VOLUME_COLUMNS = [
    "volume", "p_conflict_per_run", "p_conflict_per_week", "expected_conflicts_per_week",
    "skipped_runs_per_week", "history_weeks", "observed_conflicts", "observed_per_week",
    "predicted_per_week", "predicted_lo", "predicted_hi", "fit", "min_safe_interval_s",
    "min_safe_basis"]
TABLE_ROWS = 30

JobOpt = Annotated[list[str] | None, typer.Option(
    "--job", help="Only this job (repeatable).", show_default=False)]
VolumeOpt = Annotated[list[str] | None, typer.Option(
    "--volume", help="Only list these volumes (repeatable).", show_default=False)]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table, json, yaml or patch.")]


def recommend(
    store: StoreOpt = None,
    from_file: FromFileOpt = None,
    sample: SampleOpt = False,
    target_risk: TargetRiskOpt = DEFAULT_TARGET,
    rpo: RpoOpt = None,
    job: JobOpt = None,
    volume: VolumeOpt = None,
    cluster: ClusterOpt = None,
    version: LonghornVersionOpt = LATEST,
    week: WeekOpt = None,
    start: StartOpt = None,
    output: OutputOpt = "table",
) -> None:
    """The smallest safe interval per RecurringJob, and each volume's risk now.
    Prints changes (YAML, kubectl patch); never applies them.

    The history is one of --store (the default), --from-file and --sample."""
    check_output(output, OUTPUTS)
    try:
        every, per_job = parse_rpo(rpo or [])
        settings = Settings(target=target_risk, week=week_of(week, start),
                            version=version, cluster=cluster, rpo_s=every, job_rpo_s=per_job)
    except ValueError as e:
        raise fail(str(e), 2) from None
    # (of a store's Backups, what comparing with the history and finding DR sources read)
    frames, fits = fitted(store, sample, from_file,
                          backup_columns=tuple(dict.fromkeys(
                              (*OBSERVED_BACKUP_COLUMNS, *RECOVERY_BACKUP_COLUMNS))))
    try:
        analysis = analyse(frames, fits, settings, jobs=job)
    except ValueError as e:
        raise fail(str(e), 2) from None
    table = analysis.assessment.table.merge(analysis.observed.drop(columns=["cluster"]),
                                            on="volume", how="left").merge(
        analysis.minimum_safe_intervals().drop(columns=["job"]).rename(
            columns={"basis": "min_safe_basis"}), on="volume", how="left")
    if volume:
        table = table[table["volume"].isin(volume)]
    recs = analysis.recommendations
    if output == "json":
        _print_json(analysis, table, settings, frames["jobs"])
    elif output == "yaml":
        specs = {j.name: j for j in analysis.fleet.jobs}
        extras = job_labels_and_parameters(frames["jobs"], cluster)
        print("---\n".join(doc for r in recs if r.changed
                           for doc in r.manifests(specs[r.job], **extras.get(r.job, {})))
              or "# no change recommended")
    elif output == "patch":
        print("\n".join(line for r in recs if r.changed for line in r.patches)
              or "# no change recommended")
    else:
        _print_table(analysis, table, settings, frames["jobs"])


def _print_json(analysis: Analysis, table: pd.DataFrame, settings: Settings,
                jobs: pd.DataFrame) -> None:
    """``-o json``: every recommendation and volume (the keys are a contract; new keys
    may be added)."""
    risk = analysis.assessment
    rows = table[JSON_VOLUME_COLUMNS].astype(object).where(
        table[JSON_VOLUME_COLUMNS].notna(), None)
    print(json.dumps({"recommendations": [
                          {**r.to_dict(), "recovery": analysis.recovery_change(r.job)}
                          for r in analysis.recommendations],
                      "volumes": rows.to_dict("records"),
                      "longhorn_version": settings.version, "target_risk": settings.target,
                      "week": analysis.window.label,
                      "window": [str(risk.start), str(risk.end)],
                      "assumptions": list(analysis.notes),
                      "rpo_s": settings.rpo_s, "rpo_by_job": dict(settings.job_rpo_s),
                      "fit": week_fit(analysis, jobs),
                      "after_advice": _after(analysis)}, indent=2, default=float))


def _after(analysis: Analysis) -> dict:
    """What the fleet looks like once every change is applied: the volumes still over
    the target (p + 2 se of conflict or skipped slot per run, over all their jobs)."""
    over = analysis.over_target_after()
    rpo = analysis.over_rpo()
    return {"changes_applied": [r.job for r in analysis.recommendations if r.changed],
            "volumes_over_target": over.to_dict("records"),
            "volumes_over_rpo": rpo[rpo["over_after"]][
                ["volume", "rpo_s", "gap_p95_after"]].to_dict("records")}


def _print_table(analysis: Analysis, table: pd.DataFrame, settings: Settings,
                 jobs: pd.DataFrame) -> None:
    """The default output: the recommendations (with what each does to recovery
    points), the fleet with them applied, whether the model fits the week, the riskiest
    volumes, the model against the history, and what was assumed."""
    print(f"Longhorn {settings.version} rules, week {analysis.assessment.start:%Y-%m-%d}, "
          f"target {settings.target:g} per run")
    for r in analysis.recommendations:
        print(f"- {r}")
        if r.changed and (change := analysis.recovery_change(r.job)):
            print(f"  {change_text(change)}")
    over = analysis.over_target_after()
    what = "with these changes" if analysis.advised is not None else "as it is"
    print(f"{what}: " + ("every volume stays under the target" if over.empty else
          f"{len(over)} volume(s) stay over the target: " + ", ".join(
              f"{r.volume} ({r.upper:.2%} p + 2 se)" for r in over.head(5).itertuples())))
    if settings.has_rpo:
        rpo = analysis.over_rpo()
        late = rpo[rpo["over_after"]]
        print(f"{what}: " + ("every volume's p95 gap stays within its RPO" if late.empty
              else f"{len(late)} volume(s) over their RPO (p95 gap): " + ", ".join(
                  f"{r.volume} ({dur(r.gap_p95_after)} > {dur(r.rpo_s)})"
                  for r in late.head(5).itertuples())))
    print(week_fit(analysis, jobs)["text"])
    print()
    shown = table.rename(columns={"predicted_per_week": "predicted/wk",
                                  "observed_per_week": "observed/wk",
                                  "skipped_runs_per_week": "skipped/wk"})
    print(shown[["volume", "p_conflict_per_run", "p_conflict_per_week", "predicted/wk",
                 "observed/wk", "fit", "skipped/wk", "draws"]]
          .head(TABLE_ROWS).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if len(table) > TABLE_ROWS:
        print(f"... {len(table) - TABLE_ROWS} more volumes (-o json lists all)")
    verdicts = table["fit"].value_counts()
    print("model against the history's lock conflicts: " + ", ".join(
        f"{n} volume(s) {k}" for k, n in verdicts.items())
          + " (observed: Backups whose messages report a lock conflict, per week of "
          "history; predicted: the same kinds, 95 % interval in -o json)")
    for n in analysis.notes:
        print(f"assumed: {n}")
