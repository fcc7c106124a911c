"""The interval ladder: the cron-friendly intervals advice moves along, and the cron
expressions that fire exactly evenly at them.

Schedules are read in UTC (Longhorn sets no ``timeZone``; the controller's zone is
usually UTC): in a zone with daylight saving, hourly and longer ladder steps are evenly
spaced except across the changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from advisor.cron import EverySchedule, SpecSchedule, parse
from advisor.schedules import fire_times

__all__ = ["LADDER", "REF", "WEEK_MIN", "cron_at", "fires_s", "ladder_cron", "phase_min",
           "step_index"]


LADDER: tuple[int, ...] = (
    *(m * 60 for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)),
    *(h * 3600 for h in (1, 2, 3, 4, 6, 8, 12)),
    86400, 7 * 86400)
"""Cron-friendly intervals in seconds: each divides an hour, a day or a week, so a cron
expression fires exactly evenly at it."""

WEEK_MIN = 7 * 1440
REF = pd.Timestamp("2026-01-04T00:00:00Z")  # a Sunday 00:00: minute 0 of the week circle
_VALUE_BITS = (1 << 63) - 1


def cron_at(step_s: float, offset_min: int) -> str:
    """The cron firing every ladder step ``step_s``, ``offset_min`` minutes into each
    period (periods start at midnight UTC; a week's at Sunday 00:00)."""
    k = int(step_s) // 60
    if int(step_s) not in LADDER:
        raise ValueError(f"{step_s} s is not on the ladder {LADDER}")
    o = offset_min % k
    if k < 60:
        return "* * * * *" if k == 1 else f"*/{k} * * * *" if o == 0 else f"{o}-59/{k} * * * *"
    if k < 1440:
        h, hour = k // 60, o // 60
        hours = "*" if h == 1 else f"*/{h}" if hour == 0 else f"{hour}-23/{h}"
        return f"{o % 60} {hours} * * *"
    if k == 1440:
        return f"{o % 60} {o // 60} * * *"
    return f"{o % 60} {o // 60 % 24} * * {o // 1440}"


def phase_min(cron: str) -> int:
    """Minute of the week of the schedule's earliest weekday, hour and minute values
    (0 for ``@every``)."""
    s = parse(cron)
    if isinstance(s, EverySchedule):
        return 0
    assert isinstance(s, SpecSchedule)

    def low(mask: int) -> int:
        v = mask & _VALUE_BITS
        return (v & -v).bit_length() - 1 if v else 0

    return low(s.dow) * 1440 + low(s.hour) * 60 + low(s.minute)


def ladder_cron(interval_s: float, like: str) -> str:
    """A cron expression firing exactly every ``interval_s`` (a :data:`LADDER` step) in
    UTC, keeping the minute, hour and weekday phase of ``like`` where the step allows:
    ``("7 * * * *", 2 h)`` gives ``"7 */2 * * *"``, ``("30 2 * * *", 7 d)`` gives
    ``"30 2 * * 0"``, ``("5 * * * *", 15 min)`` gives ``"5-59/15 * * * *"``."""
    return cron_at(interval_s, phase_min(like))


def fires_s(cron: str, days: float) -> np.ndarray:
    """Fire times (Unix seconds) in the ``days`` from the reference Sunday, inclusive."""
    end = REF + pd.Timedelta(days=days)
    return fire_times(cron, REF - pd.Timedelta(seconds=1), end).astype(np.int64)


def step_index(interval_s: float | None) -> int | None:
    """The index of ``interval_s`` on :data:`LADDER`, None when it is not a step."""
    return LADDER.index(int(interval_s)) if interval_s in LADDER else None
