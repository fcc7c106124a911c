"""Backup rows as duration observations: which rows give a duration (completed, or
right-censored), each one's mode (full or incremental), and a :class:`FitProblem` for
every row left out or read with a substitute field. The rules are stated once, in
:mod:`advisor.model.durations`' docstring; the fits and the report read these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from advisor.model.columns import numeric, seconds, text, times
from advisor.schema import backup_times

__all__ = ["FULL_UPLOAD_RATIO", "FitProblem", "Severity", "backup_observations", "is_full",
           "usable_durations"]

FULL_UPLOAD_RATIO = 0.8
"""A backup that uploaded at least this share of its size did a full backup's work."""

Severity = Literal["skipped", "warning"]


@dataclass(frozen=True)
class FitProblem:
    """A backup row the fit skipped (or used with a substitute field)."""

    cluster: str
    volume: str
    backup: str
    field: str
    reason: str
    severity: Severity = "skipped"

    def __str__(self) -> str:
        return f"{self.cluster}/{self.volume} {self.backup}: {self.field}: {self.reason}"


def usable_durations(b: pd.DataFrame, t: dict[str, np.ndarray], now: object
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[FitProblem]]:
    """Rows usable as durations, their start and duration, and the problems of the rest.
    ``t``: the backups' time columns in epoch seconds."""
    rule = backup_times(b, now, seconds=t)  # (the one rule: advisor.schema)
    state, start0 = text(b, "state"), t["started_at"]
    ended, at_sync, running = rule.ended, rule.at_sync, rule.running
    use, start, dur = ended | at_sync | running, rule.start, rule.duration
    checks: list[tuple[np.ndarray, str, str, Severity]] = [
        ((state == "Completed").to_numpy(bool) & ~ended, "finished_at",
         "missing on a Completed backup: duration unknown", "skipped"),
        (use & np.isnan(start), "started_at", "no started_at or requested_at", "skipped"),
        (at_sync & ~np.isnan(start) & np.isnan(dur), "last_synced_at",
         "missing: failure time unknown", "skipped"),
        (running & ~np.isnan(start) & np.isnan(dur), "collected_at",
         "missing (and no now=): censoring time unknown", "skipped"),
        (ended & (dur <= 0), "finished_at",
         "duration {d:.0f} s <= 0 (finish not after the start: clock skew?)", "skipped"),
        (~ended & use & (dur < 0), "started_at",
         "after the censoring time ({d:.0f} s): clock skew?", "skipped"),
        (use & np.isnan(start0) & (dur > 0), "started_at",
         "missing; requested_at used as the start (includes queueing)", "warning"),
    ]
    problems: list[FitProblem] = []
    for mask, column, reason, severity in checks:
        rows = np.flatnonzero(mask)
        names = [text(b, c).iloc[rows].tolist() for c in ("cluster", "volume", "backup")]
        problems += [FitProblem(c, v, k, column, reason.format(d=dur[i]), severity)
                     for i, c, v, k in zip(rows, *names, strict=True)]
    keep = np.flatnonzero(rule.usable)
    return keep, start[keep], dur[keep], problems


def is_full(backups: pd.DataFrame) -> np.ndarray:
    """Per row: a full backup (``backup_mode``, or an upload of at least
    :data:`FULL_UPLOAD_RATIO` of its size), else incremental."""
    up, size = numeric(backups, "new_upload_bytes"), numeric(backups, "size_bytes")
    return ((text(backups, "backup_mode") == "full").to_numpy(bool)
            | ((size > 0) & (up >= FULL_UPLOAD_RATIO * size)))


def backup_observations(backups: pd.DataFrame, *, now: object = None) -> pd.DataFrame:
    """Each backup's duration as the fits read it (the rules of
    :mod:`advisor.model.durations`' docstring, in one place): ``cluster``, ``volume``,
    ``backup``, ``mode``, ``started_at``, ``duration_s`` (for a censored backup, how long
    it lasted at least) and ``censored``. Rows that give no duration are left out
    (:func:`~advisor.model.durations.fit_durations` reports them). The report's trends
    and charts read these, as the fits do."""
    t = {c: seconds(backups, c) for c in ("requested_at", "started_at", "finished_at",
                                          "last_synced_at", "collected_at")}
    keep, start, dur, _ = usable_durations(backups, t, now)
    return pd.DataFrame({
        "cluster": text(backups, "cluster").iloc[keep].array,
        "volume": text(backups, "volume").iloc[keep].array,
        "backup": text(backups, "backup").iloc[keep].array,
        "mode": np.where(is_full(backups)[keep], "full", "incremental"),
        "started_at": times(start), "duration_s": dur,
        "censored": np.isnan(t["finished_at"][keep])})
