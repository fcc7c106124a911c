"""The report's recovery points.

:func:`recovery_summary` is what the summary cards lead with: how many of the recovery
points the crons promised the week delivered, how many were lost, the longest gap, how
many backups waited behind a deletion and how many cleanups were deferred, each observed
and predicted with its range. :func:`recovery_rows` is the per-volume table, worst
first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from advisor.model.recovery_observed import pending_waits
from advisor.units import duration as dur
from advisor.units import finite, size

if TYPE_CHECKING:
    from advisor.advice.analyse import Analysis

__all__ = ["RECOVERY_CHANGE", "RECOVERY_COLUMNS", "SHOWN", "change_text", "headline",
           "recovery_rows", "recovery_summary"]

RECOVERY_CHANGE = ("points_now", "points_after", "gap_p95_now", "gap_p95_after")
"""What a job's advice does to recovery points
(:meth:`~advisor.advice.analyse.Analysis.recovery_change`)."""

SHOWN = 25
"""Volumes the HTML and Markdown recovery tables show (the JSON and CSV hold all)."""

RECOVERY_COLUMNS = (
    "volume", "intended_interval_s", "intended_points",
    "points_observed", "points_predicted", "points_lo", "points_hi",
    "lost_observed", "lost_predicted", "lost_lo", "lost_hi",
    "gap_p50_observed", "gap_p50_predicted", "gap_p50_lo", "gap_p50_hi",
    "gap_p95_observed", "gap_p95_predicted", "gap_p95_lo", "gap_p95_hi",
    "gap_max_observed", "gap_max_predicted", "gap_max_lo", "gap_max_hi",
    "waited_observed", "waited_predicted", "waited_lo", "waited_hi",
    "wait_p50_observed", "wait_p95_observed", "wait_p95_predicted", "wait_p95_lo",
    "wait_p95_hi", "deferred_observed", "deferred_predicted", "deferred_lo", "deferred_hi",
    "deferred_bytes_observed", "restore_blocked_predicted", "restore_blocked_lo",
    "restore_blocked_hi", "outside")
"""The per-volume recovery table: per figure its observed value, predicted median and
central 95 % of the draws (``_lo``, ``_hi``); ``outside``: the figures observed outside
that range."""


def recovery_rows(a: Analysis) -> pd.DataFrame:
    """Per volume (:data:`RECOVERY_COLUMNS`), the most recovery points lost first, then
    the longest gap against the intended interval."""
    t = a.recovery
    if t.empty:
        return pd.DataFrame(columns=list(RECOVERY_COLUMNS))
    ratio = t["gap_max_observed"].fillna(t["gap_max_predicted"]) / t["intended_interval_s"]
    order = pd.DataFrame({"lost": -t["lost_observed"].fillna(t["lost_predicted"]),
                          "ratio": -ratio.fillna(0), "volume": t["volume"]})
    t = t.loc[order.sort_values(["lost", "ratio", "volume"], kind="stable").index]
    return t[list(RECOVERY_COLUMNS)].reset_index(drop=True)


def recovery_summary(a: Analysis, rows: pd.DataFrame) -> dict:
    """The fleet's week in recovery points (``rows``: :func:`recovery_rows`): per count
    its observed total and predicted median with range; the pooled Pending waits; the
    deferred cleanups' bytes; the longest gap against its intended interval; the
    volumes that lost points and those observed outside their predicted range."""
    fleet = a.recovery_summary()
    waits = pending_waits(a.backups, a.window.start, a.window.end)["wait"]
    delayed = dict(fleet["waited"], wait_p50_s=_q(waits, 0.5), wait_p95_s=_q(waits, 0.95))
    deferred = dict(fleet["deferred"], bytes=float(rows["deferred_bytes_observed"].sum())
                    if len(rows) else 0.0)
    worst = None
    if len(rows) and rows["gap_max_observed"].notna().any():
        r = rows.loc[(rows["gap_max_observed"] / rows["intended_interval_s"]).idxmax()]
        worst = {"volume": str(r["volume"]), "observed_s": finite(r["gap_max_observed"]),
                 "predicted_lo_s": finite(r["gap_max_lo"]),
                 "predicted_hi_s": finite(r["gap_max_hi"]),
                 "intended_s": finite(r["intended_interval_s"])}
    return {"intended": round(fleet["intended_points"]), "completed": fleet["points"],
            "lost": fleet["lost"], "delayed": delayed, "deferred": deferred,
            "restore_blocked": fleet["restore_blocked"], "worst_gap": worst,
            "volumes_losing_points": int((rows["lost_observed"] > 0).sum()),
            "outside_range": rows.loc[rows["outside"] != "", "volume"].tolist(),
            "rpo": _rpo(a)}


def _rpo(a: Analysis) -> dict | None:
    """The RPO asked (None: none) and the volumes whose predicted p95 gap is over it, now
    and once the advice is applied (:meth:`~advisor.advice.analyse.Analysis.over_rpo`)."""
    s = a.settings
    if not s.has_rpo:
        return None
    over = a.over_rpo()
    return {"rpo_s": s.rpo_s, "per_job": dict(s.job_rpo_s),
            "over_now": over.loc[over["over_now"], "volume"].tolist(),
            "over_after": over.loc[over["over_after"], "volume"].tolist(),
            "volumes": [{"volume": r.volume, "rpo_s": r.rpo_s,
                         "gap_p95_now_s": finite(r.gap_p95_now),
                         "gap_p95_after_s": finite(r.gap_p95_after)}
                        for r in over.itertuples()]}


def headline(s: dict) -> list[tuple[str, str]]:
    """The summary's recovery-point cards, ``(figure, what it is)``, from the summary's
    ``recovery`` (:func:`recovery_summary`): the HTML shows them as cards, the Markdown
    as its first lines."""
    r = s["recovery"]
    done, lost, late, kept = r["completed"], r["lost"], r["delayed"], r["deferred"]
    cards = [(f"{_n(done['observed'])} / {r['intended']:,}",
              f"recovery points completed this week (the crons promise {r['intended']:,}; "
              f"predicted {_range(done)})"),
             (_n(lost["observed"]),
              f"recovery points lost (skipped runs, failed backups) on "
              f"{r['volumes_losing_points']} volumes; predicted {_range(lost)}")]
    w = r["worst_gap"]
    if w is not None:
        cards.append((dur(w["observed_s"]),
                      f"longest gap between backups: {w['volume']}, intended every "
                      f"{dur(w['intended_s'])} (predicted {dur(w['predicted_lo_s'])}–"
                      f"{dur(w['predicted_hi_s'])})"))
    cards.append((_n(late["observed"]),
                  "backups delayed behind a deletion" + (
                      f", waiting {dur(late['wait_p50_s'])} (p50) / "
                      f"{dur(late['wait_p95_s'])} (p95)" if late["wait_p95_s"] is not None
                      else "") + f"; predicted {_range(late)}"))
    rpo = r.get("rpo")
    if rpo is not None:
        asked = ", ".join(([f"{dur(rpo['rpo_s'])} for every volume"] if rpo["rpo_s"] else [])
                          + [f"{dur(v)} for {j}" for j, v in rpo["per_job"].items()])
        cards.append((f"{len(rpo['over_now'])} → {len(rpo['over_after'])}",
                      f"volumes whose p95 gap is over the RPO ({asked}), predicted now → "
                      "with the changes below"))
    cards.append((_n(kept["observed"]),
                  f"cleanups deferred (a deletion retried: up to {size(kept['bytes'])} kept "
                  f"beyond retain); predicted {_range(kept)}"))
    return cards


def change_text(c: dict | None) -> str:
    """A job's advice in recovery points, in a sentence
    (:meth:`~advisor.advice.analyse.Analysis.recovery_change`; empty for None)."""
    if not c:
        return ""
    return (f"Recovery points: {_n(c['points_now'])} → {_n(c['points_after'])} a week per "
            f"volume (median, predicted); worst p95 gap {dur(c['gap_p95_now'])} → "
            f"{dur(c['gap_p95_after'])}.")


def _n(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _range(x: dict) -> str:
    return "n/a" if x["lo"] is None or not np.isfinite(x["lo"]) else \
        f"{x['lo']:,.0f}–{x['hi']:,.0f}"


def _q(x: pd.Series, q: float) -> float | None:
    return float(x.quantile(q)) if len(x) else None
