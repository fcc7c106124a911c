"""Recovery points as a history shows them, for one week, volume by volume, defined as
:mod:`advisor.model.recovery` predicts them.

- ``points``: the volume's backups that completed in the week (``finished_at``, i.e.
  ``status.backupCreatedAt``; any job's, and manual ones);
- ``gap_p50``, ``gap_p95``, ``gap_max``: the gaps between successive completions that
  end in the week (the one before the week's first is the volume's last completion
  before the week, however long before);
  the maximum also counts the open gap from the last completion to the week's end;
- ``failed``: backups asked for in the week that ended in Error (each a lost recovery
  point: Longhorn never retries a failed backup);
- ``waited``, ``wait_p50``, ``wait_p95``: the backups asked for in the week that waited
  Pending behind a deletion (their messages say so), and how long (``started_at`` minus
  ``requested_at``: ``status.snapshotCreatedAt`` minus ``metadata.creationTimestamp``,
  queueing time, ``longhorn-facts.md`` section 4);
- ``deferred`` and ``deferred_bytes``: the retention deletions of the week that met a
  backup or restore and were retried (each keeps one backup beyond ``retain`` until a
  retry succeeds), and the bytes those backups uploaded (an upper bound of what their
  deletion frees: blocks shared with newer backups stay);
- ``restore_blocked``: restore attempts the history's messages show meeting a deletion
  (NaN for every volume when no message in the history shows one: Backups record no
  restores, so a history of Backups alone cannot count them).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from advisor.model.fastpath import WEEK_S, VolumeScore
from advisor.model.recovery import fleet_sum, range_of, ranges
from advisor.model.risk import RiskAssessment, VolumeRisk

__all__ = ["COUNTS", "FIGURES", "RECOVERY_BACKUP_COLUMNS", "fleet_recovery",
           "observed_recovery", "pending_waits", "predicted_draws", "predicted_table",
           "recovery_table"]

RECOVERY_BACKUP_COLUMNS = ("cluster", "volume", "backup", "state", "requested_at",
                           "started_at", "finished_at", "deletion_requested_at",
                           "new_upload_bytes", "lock_conflict")
"""The Backup columns :func:`observed_recovery` reads."""
COLUMNS = ["cluster", "volume", "points", "gap_p50", "gap_p95", "gap_max", "failed",
           "waited", "wait_p50", "wait_p95", "deferred", "deferred_bytes",
           "restore_blocked"]
_KEY = ["cluster", "volume"]


def observed_recovery(backups: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
                      ) -> pd.DataFrame:
    """One row per (cluster, volume) with a Backup in the history: the week ``start`` -
    ``end``'s figures (see the module docstring; seconds, bytes, counts). Millions of
    Backups are read column by column: only the week's rows are taken out."""
    b = backups
    if b.empty:
        return pd.DataFrame(columns=COLUMNS)
    f = b["finished_at"]
    # every volume, with its last completion before the week (NaT: none)
    last = f.where(f < start).groupby([b["cluster"], b["volume"]], observed=True,
                                      sort=False).max().rename("last")
    out = _strings(last.reset_index())
    asked = b["requested_at"].fillna(b["started_at"])
    week = ((asked >= start) & (asked < end)).to_numpy(dtype=bool, na_value=False)
    out = out.merge(_gaps(b[((f >= start) & (f < end)).to_numpy(dtype=bool, na_value=False)],
                          out, start, end), on=_KEY, how="left").drop(columns="last")
    g = pending_waits(b, start, end).groupby(_KEY)["wait"]
    out = out.merge(pd.DataFrame({"waited": g.size(), "wait_p50": g.quantile(0.5),
                                  "wait_p95": g.quantile(0.95)}).reset_index(),
                    on=_KEY, how="left")
    conflict = b["lock_conflict"]
    deleted = b["deletion_requested_at"].fillna(asked)
    d = _strings(b.loc[((deleted >= start) & (deleted < end) & (conflict == "delete_blocked"))
                       .to_numpy(dtype=bool, na_value=False), [*_KEY, "new_upload_bytes"]])
    w = _strings(b.loc[week, [*_KEY, "state", "lock_conflict"]])
    counts = [
        w[w["state"] == "Error"].groupby(_KEY).size().rename("failed"),
        d.groupby(_KEY).size().rename("deferred"),
        d.groupby(_KEY)["new_upload_bytes"].sum().astype(float).rename("deferred_bytes")]
    restores = bool((conflict == "restore_blocked").fillna(False).any())
    if restores:  # (else the history holds no restores)
        counts.append(w[w["lock_conflict"] == "restore_blocked"].groupby(_KEY).size()
                      .rename("restore_blocked"))
    else:
        out["restore_blocked"] = np.nan
    for c in counts:
        out = out.merge(c.reset_index(), on=_KEY, how="left")
    for c in ("points", "failed", "waited", "deferred", "deferred_bytes",
              *(["restore_blocked"] if restores else [])):
        out[c] = out[c].fillna(0)
    return out[COLUMNS].reset_index(drop=True)


def _strings(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its cluster and volume as plain strings (what the keys merge on)."""
    return df.astype({k: str for k in _KEY})


def pending_waits(backups: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
                  ) -> pd.DataFrame:
    """The backups asked for in the week that waited Pending behind a deletion:
    ``cluster``, ``volume`` and ``wait`` (seconds; see the module docstring)."""
    b = backups
    asked = b["requested_at"].fillna(b["started_at"])
    w = b[((asked >= start) & (asked < end) & (b["lock_conflict"] == "pending_behind_deletion"))
          .to_numpy(dtype=bool, na_value=False)]
    return pd.DataFrame({"cluster": w["cluster"].astype(str),
                         "volume": w["volume"].astype(str),
                         "wait": ((w["started_at"] - w["requested_at"]).dt.total_seconds()
                                  .clip(lower=0))})


def _gaps(done: pd.DataFrame, last: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
          ) -> pd.DataFrame:
    """Per (cluster, volume): completions in the week (``done``: the week's completed
    Backups) and their gaps' figures, the first gap from ``last`` (each volume's last
    completion before the week)."""
    done = _strings(done[[*_KEY, "backup", "finished_at"]]).drop_duplicates(
        ["cluster", "backup"], keep="last")
    before = last[last["last"].notna()]
    t = pd.concat([pd.DataFrame({"cluster": x["cluster"], "volume": x["volume"],
                                 "t": _seconds(x[col])})
                   for x, col in ((before, "last"), (done, "finished_at"))],
                  ignore_index=True)
    t = t.sort_values([*_KEY, "t"], kind="stable")
    same = (t["cluster"].eq(t["cluster"].shift()) & t["volume"].eq(t["volume"].shift()))
    t["gap"] = np.where(same, t["t"].diff(), np.nan)
    s0, s1 = pd.Timestamp(start).value / 1e9, pd.Timestamp(end).value / 1e9
    inside = t[t["t"] >= s0]
    g = inside.groupby(_KEY)
    out = pd.DataFrame({"points": g.size(), "gap_p50": g["gap"].quantile(0.5),
                        "gap_p95": g["gap"].quantile(0.95),
                        "gap_max": g["gap"].max()})
    tail = (s1 - t.groupby(_KEY)["t"].max()).rename("tail")
    out = out.join(tail, how="outer")
    out["gap_max"] = np.fmax(out["gap_max"], out["tail"])
    out["points"] = out["points"].fillna(0)
    return out.drop(columns="tail").reset_index()


FIGURES = ("points", "lost", "gap_p50", "gap_p95", "gap_max", "waited", "wait_p50",
           "wait_p95", "deferred", "restore_blocked")
"""The figures :func:`recovery_table` gives observed and predicted."""
COUNTS = ("points", "lost", "waited", "deferred", "restore_blocked")
"""Of :data:`FIGURES`, the counts (per week): they add up over a fleet."""


def predicted_draws(score: VolumeScore) -> dict[str, np.ndarray]:
    """A volume's per-draw figures (:data:`FIGURES`) from its score, counts per week (of
    the draws its recovery points were kept for)."""
    scale = WEEK_S / score.window_s
    out = score.recovery.per_draw(scale)
    n = score.recovery.draws
    out["deferred"] = score.delete_blocked[:n] * scale
    out["restore_blocked"] = score.restore_blocked[:n] * scale
    return out


def predicted_table(volumes: Iterable[VolumeRisk]) -> pd.DataFrame:
    """One row per volume whose recovery points were drawn: ``intended_interval_s``,
    ``intended_max_gap_s``, ``intended_points`` (a week), and per figure of
    :data:`FIGURES` its ``_predicted`` median over the draws and their central 95 %
    (``_lo``, ``_hi``; a count's widened to whole backups)."""
    rows = []
    for v in volumes:
        rec = v.score.recovery
        if rec is None:
            continue
        row: dict = {"cluster": v.cluster, "volume": v.volume,
                     "intended_interval_s": rec.intended_s,
                     "intended_max_gap_s": rec.intended_max_s,
                     "intended_points": rec.intended_points * WEEK_S / v.score.window_s}
        per = {k: x for k, x in predicted_draws(v.score).items() if k in FIGURES}
        mids, los, his = ranges(np.vstack(list(per.values())))
        for name, mid, lo, hi in zip(per, mids, los, his, strict=True):
            mid, lo, hi = _whole(name, mid, lo, hi)
            row |= {f"{name}_predicted": mid, f"{name}_lo": lo, f"{name}_hi": hi}
        rows.append(row)
    return pd.DataFrame(rows)


def recovery_table(risk: RiskAssessment, observed: pd.DataFrame,
                   predicted: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`predicted_table` of ``risk``'s volumes (or ``predicted``, made by it)
    with, for each figure of :data:`FIGURES`, its ``_observed`` value (``observed``:
    :func:`observed_recovery` of the same week; ``lost`` is the intended slots less the
    completed backups; a plan without a cluster matches the volume in the one cluster
    it is in), ``deferred_bytes_observed``, and ``outside``: the figures observed
    outside their predicted range (comma-separated)."""
    t = predicted_table(risk.volumes) if predicted is None else predicted.copy()
    if t.empty:
        return t
    names = [f for f in FIGURES if f != "lost"] + ["deferred_bytes"]
    o = observed.reindex(columns=[*_KEY, *names]).rename(
        columns={f: f"{f}_observed" for f in names})
    once = o[~o["volume"].duplicated(keep=False)].assign(cluster="")
    o = pd.concat([o, once[~once["cluster"].isin(o["cluster"])]]) \
        .drop_duplicates(_KEY, keep="first")
    t = t.merge(o, on=_KEY, how="left")
    t["lost_observed"] = (t["intended_points"] - t["points_observed"]).clip(lower=0)
    outside = []
    for f in FIGURES:
        obs, lo, hi = t[f"{f}_observed"], t[f"{f}_lo"], t[f"{f}_hi"]
        out = obs.notna() & lo.notna() & ~((lo - 1e-9 <= obs) & (obs <= hi + 1e-9))
        outside.append(np.where(out, f, ""))
    t["outside"] = [", ".join(n for n in row if n) for row in zip(*outside, strict=True)]
    order = ["cluster", "volume", "intended_interval_s", "intended_max_gap_s",
             "intended_points"]
    order += [f"{f}_{k}" for f in FIGURES for k in ("observed", "predicted", "lo", "hi")]
    return t[[*order, "deferred_bytes_observed", "outside"]]


def _seconds(t: pd.Series) -> pd.Series:
    """UTC times as seconds since the epoch, whatever their unit (ns or us)."""
    return pd.to_datetime(t, utc=True).astype("datetime64[ns, UTC]").astype("int64") / 1e9


def _whole(name: str, mid: float, lo: float, hi: float) -> tuple[float, float, float]:
    """A count's range widened to whole numbers (a week holds whole backups); other
    figures as they are."""
    if name in COUNTS and not np.isnan(lo):
        return mid, float(np.floor(lo)), float(np.ceil(hi))
    return mid, lo, hi


def fleet_recovery(risk: RiskAssessment, table: pd.DataFrame, *, seed: int = 0,
                   samples: int = 4000) -> dict:
    """The fleet's week: per count of :data:`COUNTS` the total observed, and the total
    predicted (median) with its central 95 % (:func:`~advisor.model.recovery.fleet_sum`:
    a doubt the volumes share moves them together), as ``{name: {"observed",
    "predicted", "lo", "hi"}}``; ``intended_points`` too."""
    per = [predicted_draws(v.score) for v in risk.volumes if v.score.recovery is not None]
    totals = {k: fleet_sum((p[k] for p in per), samples=samples, seed=seed)
              for k in COUNTS}
    out: dict = {"intended_points": float(table["intended_points"].sum()) if len(table)
                 else 0.0}
    for k in COUNTS:
        mid, lo, hi = _whole(k, *range_of(totals[k]))
        obs = table[f"{k}_observed"] if len(table) else pd.Series(dtype=float)
        out[k] = {"observed": float(obs.sum()) if obs.notna().any() else None,
                  **{n: None if np.isnan(x) else x
                     for n, x in (("predicted", mid), ("lo", lo), ("hi", hi))}}
    return out
