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

import numpy as np
import pandas as pd

from advisor.model.fastpath import WEEK_S, VolumeScore
from advisor.model.recovery import range_of
from advisor.model.risk import RiskAssessment

__all__ = ["COUNTS", "FIGURES", "RECOVERY_BACKUP_COLUMNS", "fleet_recovery",
           "observed_recovery", "pending_waits", "predicted_draws", "recovery_table"]

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
    ``end``'s figures (see the module docstring; seconds, bytes, counts)."""
    b = backups[[c for c in RECOVERY_BACKUP_COLUMNS if c in backups]]
    if b.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = b[_KEY].astype(str).drop_duplicates()
    out = keys.merge(_gaps(b, start, end), on=_KEY, how="left")
    asked = b["requested_at"].fillna(b["started_at"])
    week = (asked >= start) & (asked < end)
    conflict = b["lock_conflict"].astype(str)
    g = pending_waits(b, start, end).groupby(_KEY)["wait"]
    out = out.merge(pd.DataFrame({"waited": g.size(), "wait_p50": g.quantile(0.5),
                                  "wait_p95": g.quantile(0.95)}).reset_index(),
                    on=_KEY, how="left")
    failed = b[week & (b["state"].astype(str) == "Error")]
    deleted = b["deletion_requested_at"].fillna(asked)
    d = b[(deleted >= start) & (deleted < end) & (conflict == "delete_blocked")]
    counts = [
        failed.groupby(_KEY).size().rename("failed"),
        d.groupby(_KEY).size().rename("deferred"),
        d.groupby(_KEY)["new_upload_bytes"].sum().astype(float).rename("deferred_bytes"),
        ]
    if (conflict == "restore_blocked").any():  # (else the history holds no restores)
        counts.append(b[week & (conflict == "restore_blocked")].groupby(_KEY).size()
                      .rename("restore_blocked"))
    else:
        out["restore_blocked"] = np.nan
    for s in counts:
        s.index = s.index.set_levels([lv.astype(str) for lv in s.index.levels])
        out = out.merge(s.reset_index(), on=_KEY, how="left")
    restores = out["restore_blocked"].notna().any()
    for c in ("points", "failed", "waited", "deferred", "deferred_bytes",
              *(["restore_blocked"] if restores else [])):
        out[c] = out[c].fillna(0)
    return out[COLUMNS].reset_index(drop=True)


def pending_waits(backups: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
                  ) -> pd.DataFrame:
    """The backups asked for in the week that waited Pending behind a deletion:
    ``cluster``, ``volume`` and ``wait`` (seconds; see the module docstring)."""
    b = backups
    asked = b["requested_at"].fillna(b["started_at"])
    w = b[(asked >= start) & (asked < end)
          & (b["lock_conflict"].astype(str) == "pending_behind_deletion")]
    return pd.DataFrame({"cluster": w["cluster"].astype(str),
                         "volume": w["volume"].astype(str),
                         "wait": ((w["started_at"] - w["requested_at"]).dt.total_seconds()
                                  .clip(lower=0))})


def _gaps(b: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per (cluster, volume): completions in the week and their gaps' figures."""
    f = b["finished_at"]
    done = b[(f >= start) & (f < end)].drop_duplicates(["cluster", "backup"], keep="last")
    before = b[f < start].groupby(_KEY, observed=True)["finished_at"].max().reset_index()
    t = pd.concat([pd.DataFrame({"cluster": x["cluster"].astype(str),
                                 "volume": x["volume"].astype(str),
                                 "t": _seconds(x["finished_at"])})
                   for x in (before, done)], ignore_index=True)
    t = t.sort_values([*_KEY, "t"], kind="stable")
    same = (t["cluster"].eq(t["cluster"].shift()) & t["volume"].eq(t["volume"].shift()))
    t["gap"] = np.where(same, t["t"].diff(), np.nan)
    s0, s1 = pd.Timestamp(start).value / 1e9, pd.Timestamp(end).value / 1e9
    inside = t[t["t"] >= s0]
    g = inside.groupby(_KEY)
    out = pd.DataFrame({"points": g.size(), "gap_p50": g["gap"].quantile(0.5),
                        "gap_p95": g["gap"].quantile(0.95),
                        "gap_max": g["gap"].max()})
    last = t.groupby(_KEY)["t"].max()
    tail = (s1 - last).rename("tail")
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
    """A volume's per-draw figures (:data:`FIGURES`) from its score, counts per week."""
    scale = WEEK_S / score.window_s
    out = score.recovery.per_draw(scale)
    out["deferred"] = score.delete_blocked * scale
    out["restore_blocked"] = score.restore_blocked * scale
    return out


def recovery_table(risk: RiskAssessment, observed: pd.DataFrame) -> pd.DataFrame:
    """One row per assessed volume whose recovery points were drawn: the intended
    interval, longest intended gap and slots (``intended_*``), then for each figure of
    :data:`FIGURES` its ``_observed`` value (``observed``: :func:`observed_recovery` of
    the same week; ``lost`` is the intended slots less the completed backups), its
    ``_predicted`` median over the draws and their central 95 % (``_lo``, ``_hi``);
    ``deferred_bytes_observed``; and ``outside``: the figures observed outside their
    predicted range (comma-separated)."""
    seen = observed.set_index(_KEY) if len(observed) else None
    rows = []
    for v in risk.volumes:
        rec = v.score.recovery
        if rec is None:
            continue
        row: dict = {"cluster": v.cluster, "volume": v.volume,
                     "intended_interval_s": rec.intended_s,
                     "intended_max_gap_s": rec.intended_max_s,
                     "intended_points": rec.intended_points * WEEK_S / v.score.window_s}
        o = _observed_row(seen, v.cluster, v.volume)
        if o is not None:
            o["lost"] = max(row["intended_points"] - o["points"], 0.0)
        outside = []
        for name, x in predicted_draws(v.score).items():
            if name not in FIGURES:
                continue
            mid, lo, hi = _whole(name, *range_of(x))
            obs = np.nan if o is None else float(o[name])
            row |= {f"{name}_observed": obs, f"{name}_predicted": mid, f"{name}_lo": lo,
                    f"{name}_hi": hi}
            if not np.isnan(obs) and not np.isnan(lo) and not lo - 1e-9 <= obs <= hi + 1e-9:
                outside.append(name)
        row["deferred_bytes_observed"] = np.nan if o is None else float(o["deferred_bytes"])
        row["outside"] = ", ".join(n for n in FIGURES if n in outside)
        rows.append(row)
    return pd.DataFrame(rows)


def _seconds(t: pd.Series) -> pd.Series:
    """UTC times as seconds since the epoch, whatever their unit (ns or us)."""
    return pd.to_datetime(t, utc=True).astype("datetime64[ns, UTC]").astype("int64") / 1e9


def _whole(name: str, mid: float, lo: float, hi: float) -> tuple[float, float, float]:
    """A count's range widened to whole numbers (a week holds whole backups); other
    figures as they are."""
    if name in COUNTS and not np.isnan(lo):
        return mid, float(np.floor(lo)), float(np.ceil(hi))
    return mid, lo, hi


def _observed_row(seen: pd.DataFrame | None, cluster: str, volume: str) -> dict | None:
    """The observed figures of a volume (a plan without a cluster matches the volume in
    the one cluster it is in); None when the history has none."""
    if seen is None:
        return None
    if (cluster, volume) in seen.index:
        return seen.loc[(cluster, volume)].to_dict()
    if not cluster:
        hit = seen.xs(volume, level="volume", drop_level=False) \
            if volume in seen.index.get_level_values("volume") else None
        if hit is not None and len(hit) == 1:
            return hit.iloc[0].to_dict()
    return None


def fleet_recovery(risk: RiskAssessment, table: pd.DataFrame, *, seed: int = 0,
                   samples: int = 4000) -> dict:
    """The fleet's week: per count of :data:`COUNTS` the total observed, and the total
    predicted (median) with its central 95 % (each volume's draws taken independently:
    the fast path scores volumes apart), as ``{name: {"observed", "predicted", "lo",
    "hi"}}``; ``intended_points`` too."""
    rng = np.random.default_rng(seed)
    totals = {k: np.zeros(samples) for k in COUNTS}
    for v in risk.volumes:
        if v.score.recovery is None:
            continue
        per = predicted_draws(v.score)
        pick = rng.integers(v.score.draws, size=samples)
        for k in COUNTS:
            totals[k] += np.nan_to_num(per[k][pick])
    out: dict = {"intended_points": float(table["intended_points"].sum()) if len(table)
                 else 0.0}
    for k in COUNTS:
        mid, lo, hi = _whole(k, *range_of(totals[k]))
        obs = table[f"{k}_observed"] if len(table) else pd.Series(dtype=float)
        out[k] = {"observed": float(obs.sum()) if obs.notna().any() else None,
                  **{n: None if np.isnan(x) else x
                     for n, x in (("predicted", mid), ("lo", lo), ("hi", hi))}}
    return out
