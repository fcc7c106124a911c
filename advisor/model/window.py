"""The window a risk assessment scores: whole weeks from a Monday, long enough for the
rarest job to run (:mod:`advisor.model.risk` re-exports these)."""

from __future__ import annotations

import math

import pandas as pd

from advisor.model.fleet import JobSpec
from advisor.schedules import interval_of
from advisor.schema import utc

__all__ = ["WEEK_S", "default_window", "weeks_to_run"]

WEEK_S = 7 * 86400.0


def default_window(start: str | pd.Timestamp | None = None, weeks: int = 1
                   ) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``weeks`` weeks from the Monday 00:00 UTC on or after ``start`` (default: the
    Monday after today)."""
    t = utc(start) if start is not None else pd.Timestamp.now(tz="UTC")
    monday = (t + pd.Timedelta(days=(7 - t.weekday()) % 7)).normalize()
    if monday < t:
        monday += pd.Timedelta(days=7)
    return monday, monday + pd.Timedelta(weeks=weeks)


def weeks_to_run(job: JobSpec) -> int:
    """Whole weeks a window needs for ``job`` to run in it (a monthly job: 5), at most
    53."""
    gap = interval_of(job.cron, median=True) or WEEK_S
    return min(53, max(1, math.ceil(gap / WEEK_S)))
