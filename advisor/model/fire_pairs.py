"""Two proposed jobs' fire times against each other, for ``advisor check``
(:mod:`advisor.model.collisions`): fires in the same minute (``simultaneous_fire``), over
the horizon and over the calendar's 28-year cycle, and fires a few minutes apart
(``near_fire``).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import numpy as np
import pandas as pd

from advisor.cron import SpecSchedule
from advisor.model.findings import RETENTION_TASKS, Finding, ProposedJob
from advisor.schedules import fire_times

__all__ = ["fires_at", "pair_findings"]

_LISTED = 50  # fire times listed in a finding's details
_CYCLE_YEARS = 28  # the Gregorian calendar's dates and weekdays repeat (1901-2099)
_CYCLE_MAX_FIRES = 10_000  # per horizon, for the rarer job of a pair


def fires_at(s: SpecSchedule, unix: np.ndarray, loc: tzinfo) -> np.ndarray:
    """Whether ``s`` matches the wall-clock minute of each time (robfig's field rules,
    daylight-saving gaps aside)."""
    t = pd.DatetimeIndex(pd.to_datetime(unix, unit="s", utc=True)).tz_convert(loc)

    def ok(mask: int, v: object) -> np.ndarray:
        return (np.uint64(mask) >> np.asarray(v, dtype=np.uint64)) & np.uint64(1) == 1

    dom, dow = ok(s.dom, t.day), ok(s.dow, (t.day_of_week + 1) % 7)  # cron: Sunday is 0
    day = (dom & dow) if (s.dom >> 63 & 1 or s.dow >> 63 & 1) else (dom | dow)
    return ok(s.minute, t.minute) & ok(s.hour, t.hour) & ok(s.month, t.month) & day


def _long_run(rare: ProposedJob, other: ProposedJob, loc: tzinfo, t0: pd.Timestamp
              ) -> tuple[float, float] | None:
    """Same-minute fires per year over the 28-year calendar cycle from the horizon's
    start, and their share of ``rare``'s runs (None when ``rare`` fires too often for
    this to be cheap, or never)."""
    if len(rare.fires) > _CYCLE_MAX_FIRES or not isinstance(other.schedule, SpecSchedule):
        return None
    t1 = t0 + pd.DateOffset(years=_CYCLE_YEARS)
    fires = fire_times(rare.schedule, t0 - pd.Timedelta(seconds=1), t1, loc)
    minutes = np.unique(fires.astype(np.int64) // 60) * 60
    if not len(minutes):
        return None
    hits = int(fires_at(other.schedule, minutes, loc).sum())
    return hits / ((t1 - t0).days / 365.25), hits / len(minutes)


def pair_findings(a: ProposedJob, b: ProposedJob, scope: dict, t0: pd.Timestamp,
                  weeks: float, loc: tzinfo, window_s: float) -> list[Finding]:
    """The ``simultaneous_fire`` and ``near_fire`` findings of jobs ``a`` and ``b`` on
    the volumes or groups of ``scope``, from their fire times over ``weeks`` from ``t0``
    in the zone ``loc``; ``window_s``: how close fires are near."""
    ma, mb = np.unique(a.fires // 60), np.unique(b.fires // 60)
    return [*_simultaneous(a, b, ma, mb, scope, t0, weeks, loc),
            *_near(a, b, ma, mb, scope, weeks, loc, window_s)]


def _simultaneous(a: ProposedJob, b: ProposedJob, ma: np.ndarray, mb: np.ndarray,
                  scope: dict, t0: pd.Timestamp, weeks: float, loc: tzinfo
                  ) -> list[Finding]:
    """Fires in the same minute (``ma``, ``mb``: each job's fire minutes), over the
    horizon, or, when rarer than weekly, over the calendar's cycle."""
    common = np.intersect1d(ma, mb)
    n = len(common)
    rare, other = (a, b) if len(ma) <= len(mb) else (b, a)
    cycle = _long_run(rare, other, loc, t0) if n / weeks < 1 else None
    if not (n or (cycle and cycle[0])):
        return []
    share = {a.name: n / len(ma), b.name: n / len(mb)} if n else {
        rare.name: cycle[1],  # type: ignore[index]
        other.name: cycle[0] * 7 / 365.25 / max(len(other.fires) / weeks, 1e-9)}  # type: ignore[index]
    times = [_local(m * 60, loc) for m in common[:_LISTED]]
    daily = n == len(np.unique(common // 1440))
    text = (f"{a.about(loc)} and {b.about(loc)} fire in the same minute {_where(scope)}: "
            f"{_how_often(n, weeks, daily)}{_dates(times, n)}")
    if cycle:
        text += (f"; about {_per_year(cycle[0])} ({cycle[1]:.1%} of {rare.name}'s "
                 f"runs) over the {_CYCLE_YEARS}-year calendar cycle")
    if n:
        text += f". That is {_share(a, n, len(ma))} and {_share(b, n, len(mb))}"
    text += ". Each time both back up the same volumes at once"
    if {a.task, b.task} & RETENTION_TASKS:
        text += ("; the job whose backup ends first deletes its oldest backup "
                 "(retention) while the other's backup holds the lock, so that deletion "
                 "fails and is retried later.")
    else:
        text += ", sharing the backup target's bandwidth."
    per_week = n / weeks if n else cycle[0] * 7 / 365.25  # type: ignore[index]
    return [Finding("simultaneous_fire", (a.name, b.name), text, **scope,
                    p_per_run=max(share.values()), expected_per_week=per_week,
                    cluster=a.cluster,
                    details={**_times(n, times, share),
                             "long_run_per_year": cycle[0] if cycle else None})]


def _near(a: ProposedJob, b: ProposedJob, ma: np.ndarray, mb: np.ndarray, scope: dict,
          weeks: float, loc: tzinfo, window_s: float) -> list[Finding]:
    """Fires within ``window_s`` of each other, not in the same minute."""
    w = max(1, int(window_s // 60))
    lo = np.searchsorted(mb, ma - w, "left")
    hi = np.searchsorted(mb, ma + w, "right")
    near = hi - lo - np.isin(ma, mb)
    if not near.sum():
        return []
    hit_a = int((near > 0).sum())
    lo_b = np.searchsorted(ma, mb - w, "left")
    hi_b = np.searchsorted(ma, mb + w, "right")
    hit_b = int(((hi_b - lo_b - np.isin(mb, ma)) > 0).sum())
    share = {a.name: hit_a / len(ma), b.name: hit_b / len(mb)}
    first = [_local(m * 60, loc) for m in ma[near > 0][:_LISTED]]
    text = (f"{a.about(loc)} and {b.about(loc)} fire within {w} minutes of each "
            f"other (not the same minute) {_where(scope)}: {_how_often(hit_a, weeks)} for "
            f"{a.name} ({share[a.name]:.1%} of its runs, {share[b.name]:.1%} of "
            f"{b.name}'s){_dates(first, hit_a)}. A retention deletion after the first job's "
            "backup meets the other's backup whenever that backup takes longer than "
            "the gap.")
    return [Finding("near_fire", (a.name, b.name), text, **scope,
                    p_per_run=max(share.values()), expected_per_week=hit_a / weeks,
                    cluster=a.cluster,
                    details={"window_s": w * 60, **_times(hit_a, first, share)})]


# --- words -----------------------------------------------------------------------


def _where(scope: dict) -> str:
    if "volumes" in scope:
        v = scope["volumes"]
        more = ", ..." if len(v) > 5 else ""
        return f"on {len(v)} shared volume(s) ({', '.join(v[:5])}{more})"
    g = scope["groups"]
    return "on every volume" if g == ("*",) else f"on group(s) {', '.join(g)}"


def _local(unix: int, loc: tzinfo) -> datetime:
    return datetime.fromtimestamp(int(unix), UTC).astimezone(loc)


def _how_often(n: int, weeks: float, once_a_day: bool = False) -> str:
    days = round(weeks * 7)
    if not n:
        return f"never in the {days}-day horizon"
    per_week = n / weeks
    rate = (f"{per_week:.3g} times a week" if per_week >= 1
            else f"about {_per_year(per_week * 365.25 / 7)}")
    every_day = ", every day" if once_a_day and n == days else ""
    count = {1: "once", 2: "twice"}.get(n, f"{n} times")
    return f"{count} in the {days}-day horizon ({rate}{every_day})"


def _per_year(x: float) -> str:
    return "once a year" if f"{x:.2g}" == "1" else f"{x:.2g} times a year"


def _dates(times: list[datetime], n: int) -> str:
    if not times:
        return ""
    head = ", ".join(t.strftime("%a %Y-%m-%d %H:%M") for t in times[:6])
    more = f", ... (first 6 of {n})" if n > 6 else ""
    return f", at {head}{more} {times[0].tzname()}"


def _share(j: ProposedJob, n: int, runs: int) -> str:
    return f"{n} of {j.name}'s {runs} runs ({n / runs:.1%})"


def _times(n: int, times: list[datetime], share: dict[str, float]) -> dict:
    return {"count": n, "times": [t.isoformat() for t in times[:_LISTED]],
            "p_per_run_by_job": share}
