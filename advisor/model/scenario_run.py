"""A checked scenario (:func:`advisor.model.scenario.build_scenario`) simulated, and its
counts summarised per volume and per job, as JSON-ready data or plain-text tables."""

from __future__ import annotations

import pandas as pd

from advisor import longhorn
from advisor.model.scenario import Scenario, rfc3339
from advisor.model.simulate import SimulationResult, simulate

__all__ = ["CONFLICTS", "format_text", "run_scenario", "summarize"]

CONFLICTS = ("delete_blocked", "create_blocked", "restore_blocked",
             "pending_behind_deletion")
"""The conflicts :func:`summarize` counts per volume, in its order."""


def run_scenario(scenario: Scenario) -> SimulationResult:
    """Simulate ``scenario`` (see :func:`advisor.model.simulate.simulate`)."""
    return simulate(scenario.fleet, scenario.start, scenario.end, version=scenario.version,
                    seed=scenario.seed, tz=scenario.time_zone)


def _per(frame: pd.DataFrame, key: str, mask: pd.Series, unique: str | None = None
         ) -> dict[str, int]:
    rows = frame[mask]
    counts = rows.groupby(key)[unique].nunique() if unique else rows.groupby(key).size()
    return {str(k): int(n) for k, n in counts.items()}


def summarize(result: SimulationResult, scenario: Scenario) -> dict:
    """Counts over the whole window, per volume and per job, as plain JSON-ready data.

    Per volume: ``backups_completed`` (backups that completed, whether or not retention
    deleted them later), ``backups_failed`` (backups that failed on their own creation: a
    deletion held the lock) and ``conflicts``: the number of backups whose deletion was
    blocked (``delete_blocked``), that failed on creation (``create_blocked``), or that
    waited Pending behind a deletion (``pending_behind_deletion``), and the number of
    blocked DR restores (``restore_blocked``). Counts come from the event log, which keeps
    every conflict of a backup (the backups frame keeps only its last one). Per job:
    ``runs`` started, ``late_starts`` (runs that started after their slot) and
    ``skipped_slots`` (slots lost under Forbid). Jobs that do not touch the backupstore are
    not simulated: all 0.
    """
    ev = result.events
    backup, deletion = ev["operation"] == "backup", ev["operation"] == "deletion"
    completed = _per(ev, "volume", backup & (ev["event"] == "completed"))
    conflicts = {
        "delete_blocked": _per(ev, "volume", deletion & (ev["conflict"] == "delete_blocked"),
                               "backup"),
        "create_blocked": _per(ev, "volume", backup & (ev["conflict"] == "create_blocked"),
                               "backup"),
        "restore_blocked": _per(ev, "volume", ev["conflict"] == "restore_blocked"),
        "pending_behind_deletion": _per(
            ev, "volume", backup & (ev["conflict"] == "pending_behind_deletion"), "backup"),
    }
    volumes = [{"volume": v.name, "backups_completed": completed.get(v.name, 0),
                "backups_failed": conflicts["create_blocked"].get(v.name, 0),
                "conflicts": {c: conflicts[c].get(v.name, 0) for c in CONFLICTS}}
               for v in sorted(scenario.fleet.volumes, key=lambda v: v.name)]
    runs = result.runs
    n_runs = _per(runs, "recurring_job", runs["recurring_job"].notna())
    late = _per(runs, "recurring_job", runs["late_s"] > 0)
    sk = result.skipped_slots
    skipped = _per(sk, "recurring_job", sk["recurring_job"].notna())
    jobs = [{"job": j.name, "runs": n_runs.get(j.name, 0), "late_starts": late.get(j.name, 0),
             "skipped_slots": skipped.get(j.name, 0)}
            for j in sorted(scenario.fleet.jobs, key=lambda j: j.name)]
    window = {"start": rfc3339(scenario.start), "end": rfc3339(scenario.end),
              "longhorn_version": scenario.version}
    return {"volumes": volumes, "jobs": jobs, "window": window}


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    cells = [header, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in cells]


def format_text(summary: dict) -> str:
    """The :func:`summarize` output as aligned plain-text tables."""
    w = summary["window"]
    rules = longhorn.behaviour(w["longhorn_version"]).name
    lines = [f"simulated {w['start']} to {w['end']}, Longhorn {w['longhorn_version']} "
             f"({rules} rules)", ""]
    lines += _table(["volume", "completed", "failed", *CONFLICTS],
                    [[v["volume"], v["backups_completed"], v["backups_failed"],
                      *(v["conflicts"][c] for c in CONFLICTS)] for v in summary["volumes"]])
    lines.append("")
    lines += _table(["job", "runs", "late_starts", "skipped_slots"],
                    [[j["job"], j["runs"], j["late_starts"], j["skipped_slots"]]
                     for j in summary["jobs"]])
    return "\n".join(lines)
