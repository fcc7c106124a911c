"""What moved since the previous weekly report: volumes newly at risk or no longer, the
largest moves of risk per run, jobs whose cron changed, and the summary then and now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["changes_since"]


def changes_since(previous: Mapping | None, summary: dict, volumes: pd.DataFrame,
                  jobs: Sequence[Any]) -> dict | None:
    """What moved since ``previous`` (the last report's JSON): volumes newly at risk or
    no longer, the largest moves of risk per run, jobs whose cron changed, and the
    summary figures then and now."""
    if not previous:
        return None
    before = {v["volume"]: v for v in previous.get("volumes", [])}
    now = {r.volume: r for r in volumes.itertuples()}
    risk_then = {k for k, v in before.items() if v.get("at_risk")}
    risk_now = {k for k, r in now.items() if r.at_risk}
    moves = []
    for k, r in now.items():
        if k in before and before[k].get("p_conflict_per_run") is not None:
            p0 = float(before[k]["p_conflict_per_run"])
            se = float(np.hypot(before[k].get("p_conflict_per_run_se") or 0,
                                r.p_conflict_per_run_se))
            d = r.p_conflict_per_run - p0
            if abs(d) > 2 * se and abs(d) > 1e-4:
                moves.append({"volume": k, "before": p0, "after": r.p_conflict_per_run,
                              "change": d})
    moves.sort(key=lambda m: -abs(m["change"]))
    crons_then = {j["job"]: j["current_cron"] for j in previous.get("jobs", [])}
    return {
        "previous_week": previous.get("meta", {}).get("week"),
        "newly_at_risk": sorted(risk_now - risk_then & set(before) | (risk_now - set(before))),
        "no_longer_at_risk": sorted(risk_then - risk_now),
        "new_volumes": sorted(set(now) - set(before)),
        "gone_volumes": sorted(set(before) - set(now)),
        "risk_moves": moves[:20],
        "cron_changes": [{"job": j.job, "before": crons_then[j.job], "after": j.current_cron}
                         for j in jobs if j.job in crons_then
                         and crons_then[j.job] != j.current_cron],
        "summary_before": {k: previous.get("summary", {}).get(k) for k in (
            "volumes_at_risk", "conflicts_observed", "conflicts_predicted",
            "failed_backups", "skipped_runs_predicted")},
        "summary_now": {k: summary[k] for k in (
            "volumes_at_risk", "conflicts_observed", "conflicts_predicted",
            "failed_backups", "skipped_runs_predicted")},
    }
