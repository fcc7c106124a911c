"""What a parsed schedule means over time: all fire times in a window, CronJob runs under
``concurrencyPolicy: Forbid``, and a description for people.

Built on :mod:`advisor.cron` (robfig's rules). Fire times are computed with numpy where
the evaluation zone's UTC offset is constant, and by robfig's own ``Next`` around every
offset change (a day each side), so the result is exactly the sequence that repeated
``Next`` gives, in a fraction of the time (a year of ``*/5 * * * *`` in a few ms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

import numpy as np
import pandas as pd

from advisor.cron import CronError, EverySchedule, Schedule, SpecSchedule, parse, utc_offset, zone
from advisor.schema import utc

__all__ = ["CronCheck", "Forbid", "RunPlan", "check", "describe", "fire_times", "forbid_runs",
           "interval_of"]

_DAY = 86400
_GUARD_S = _DAY  # around an offset change, robfig's Next is used as it is
_YEARS_LIMIT = 5
_GAPS_FROM = pd.Timestamp("2026-01-04T00:00:00Z")  # where interval_of looks (a Sunday)
_GAPS_DAYS = 400  # more than a year, so that month ends and leap days count


def _unix(t: datetime | pd.Timestamp | str) -> int:
    return int(utc(t).value // 10**9)


def _bits(mask: int, lo: int, hi: int) -> np.ndarray:
    return np.array([i for i in range(lo, hi + 1) if mask >> i & 1], dtype=np.int64)


def _low(mask: int) -> np.int64:
    """The value bits of a field (bit 63, robfig's star mark, does not fit an int64)."""
    return np.int64(mask & (2**63 - 1))


_UTC_KEYS = frozenset({"UTC", "Etc/UTC"})  # (zones whose offset never changes: a shortcut)


def _offset_changes(tz: tzinfo, a: int, b: int) -> list[int]:
    """Where ``tz``'s UTC offset changes in [a, b]: for each change, the first of the
    probes (every 6 h, to a day past ``b``) that sees the new offset. That is within 6 h
    after the change, well inside the day of guard that :func:`fire_times` leaves to
    robfig's Next around it, so the exact second does not matter."""
    if tz is UTC or getattr(tz, "key", None) in _UTC_KEYS:
        return []
    probes = list(range(a, b + _DAY, _DAY // 4))
    offs = [utc_offset(tz, p) for p in probes]
    return [p for p, before, after in zip(probes[1:], offs, offs[1:], strict=False)
            if before != after]


def _wall_matches(s: SpecSchedule, after: int, before: int, offset: int) -> np.ndarray:
    """Fire times in (after, before) where the zone's offset is ``offset`` throughout:
    exactly the matching wall-clock times, as Next finds them without DST."""
    lo_local, hi_local = after + offset, before + offset
    day0, day1 = lo_local // _DAY, (hi_local - 1) // _DAY
    days = np.arange(day0, day1 + 1, dtype=np.int64)
    if not len(days):
        return np.empty(0, dtype=np.int64)
    d64 = days.astype("datetime64[D]")
    months = d64.astype("datetime64[M]")
    month = (months.astype(np.int64) % 12 + 1)
    dom = (d64 - months).astype(np.int64) + 1
    weekday = (days + 4) % 7  # 1970-01-01 was a Thursday; Sunday is 0
    month_ok = (_low(s.month) >> month) & 1 == 1
    dom_ok = (_low(s.dom) >> dom) & 1 == 1
    dow_ok = (_low(s.dow) >> weekday) & 1 == 1
    star = bool(s.dom >> 63 & 1 or s.dow >> 63 & 1)
    day_ok = (dom_ok & dow_ok) if star else (dom_ok | dow_ok)
    days = days[month_ok & day_ok]
    secs = (_bits(s.hour, 0, 23)[:, None, None] * 3600
            + _bits(s.minute, 0, 59)[None, :, None] * 60
            + _bits(s.second, 0, 59)[None, None, :]).ravel()
    local = (days[:, None] * _DAY + secs[None, :]).ravel()
    local = local[(local > lo_local) & (local < hi_local)]
    return np.sort(local) - offset


def fire_times(schedule: Schedule | str, start: datetime | str, end: datetime | str,
               tz: str | tzinfo | None = None, *, anchor: datetime | str | None = None
               ) -> np.ndarray:
    """Every fire time strictly after ``start`` and before ``end``, in order, as
    ``datetime64[s]`` (UTC): the sequence ``t = Next(t)`` from ``start``.

    ``tz`` is the evaluation zone (default UTC). ``@every`` schedules count from
    ``anchor`` (the previous run or the job's creation; default ``start``).
    """
    s = parse(schedule) if isinstance(schedule, str) else schedule
    a, b = _unix(start), _unix(end)
    if b <= a:
        return np.empty(0, dtype="datetime64[s]")
    if isinstance(s, EverySchedule):
        first = _unix(anchor) if anchor is not None else a
        k0 = max(1, (a - first) // s.delay_s + 1)
        out = first + s.delay_s * np.arange(k0, (b - first) // s.delay_s + 2, dtype=np.int64)
        return out[(out > a) & (out < b)].astype("datetime64[s]")
    assert isinstance(s, SpecSchedule)
    loc = s.location or zone(tz)
    guards = [(c - _GUARD_S, c + _GUARD_S) for c in _offset_changes(loc, a, b)]
    out: list[np.ndarray] = []
    t, gi = a, 0
    while t < b:
        while gi < len(guards) and guards[gi][1] <= t:
            gi += 1
        g = guards[gi] if gi < len(guards) else None
        if g is None or t < g[0]:
            stop = min(b, g[0]) if g else b
            found, gave_up = _stable_matches(s, loc, t, stop)
            out.append(found)
            if gave_up or g is None or stop >= b:
                break
            t = int(found[-1]) if len(found) else t
        # Through the offset change: robfig's Next itself, from the last fire time before
        # it, until a fire time past the guard.
        r = s.next_unix(t, loc)
        while r is not None and r < b:
            out.append(np.array([r], dtype=np.int64))
            t = r
            if r >= g[1]:
                break
            r = s.next_unix(t, loc)
        if r is None or r >= b:
            break
    result = np.concatenate(out) if out else np.empty(0, dtype=np.int64)
    return result.astype("datetime64[s]")


def interval_of(cron: str, *, median: bool = False) -> float | None:
    """The interval in seconds between fire times when ``cron`` fires evenly (over 400
    days in UTC, so month ends count), else None; with ``median=True`` an uneven schedule
    gives its median gap instead. None too when it fires fewer than twice in that time."""
    fires = fire_times(cron, _GAPS_FROM - pd.Timedelta(seconds=1),
                       _GAPS_FROM + pd.Timedelta(days=_GAPS_DAYS)).astype(np.int64)
    gaps = np.diff(fires)
    if not len(gaps):
        return None
    if (gaps == gaps[0]).all():
        return float(gaps[0])
    return float(np.median(gaps)) if median else None


def _stable_matches(s: SpecSchedule, loc: tzinfo, after: int, before: int
                    ) -> tuple[np.ndarray, bool]:
    """Fire times in (after, before), where ``loc``'s offset is constant, and whether
    robfig gave up on the way (a match over five years after the previous one)."""
    offset = utc_offset(loc, after)
    if offset % 60:  # an offset with seconds (local mean time, Monrovia until 1972):
        out, t = [], after  # robfig truncates to the minute in absolute time, so that
        while (r := s.next_unix(t, loc)) is not None and r < before:  # only Next says
            out.append(r)
            t = r
        return np.array(out, dtype=np.int64), r is None
    found = _wall_matches(s, after, before, offset)
    prev = np.concatenate([[after], found[:-1]]) if len(found) else found
    for i in np.flatnonzero(found - prev > (_YEARS_LIMIT - 1) * 365 * _DAY):
        if s.next_unix(int(prev[i]), loc) != int(found[i]):  # rare: let Next decide
            return found[:i], True
    return found, False


@dataclass(frozen=True)
class RunPlan:
    """CronJob runs under ``concurrencyPolicy: Forbid`` (no ``startingDeadlineSeconds``).

    ``runs``: one row per run that started: ``slot`` (the fire time it stands for),
    ``start`` (when it started: later than its slot for a catch-up run), ``end``,
    ``late_s``, ``skipped_before`` (slots lost just before it). ``skipped``: every slot
    that never ran, with the run (by index) that was active when it fired.
    """

    runs: pd.DataFrame
    skipped: pd.DataFrame

    @property
    def effective_interval_s(self) -> float:
        """Mean time between run starts, in seconds (NaN with fewer than two runs)."""
        starts = self.runs["start"]
        return float(starts.diff().dt.total_seconds().mean()) if len(starts) > 1 else np.nan


@dataclass
class Forbid:
    """One CronJob under ``concurrencyPolicy: Forbid``, as Kubernetes' controller runs it
    (no ``startingDeadlineSeconds``): while a run is active a slot that fires does not
    start; when the run ends, the most recent slot that fired meanwhile starts at once
    and older ones are lost for good. A job never overlaps itself.

    The one implementation of that rule: the simulator drives it event by event,
    :func:`forbid_runs` over known run durations. Slots are whatever the caller times
    them with (seconds, timestamps). ``skipped``: the slots lost, in order.
    """

    active: bool = False
    waiting: object = None
    skipped: list = field(default_factory=list)

    def fire(self, slot: object) -> tuple[bool, object]:
        """``slot`` fires: whether a run starts now, and the older waiting slot it
        displaced (lost for good; None when there was none)."""
        if not self.active:
            self.active = True
            return True, None
        lost, self.waiting = self.waiting, slot
        if lost is not None:
            self.skipped.append(lost)
        return False, lost

    def end(self) -> object:
        """The active run ended: the slot whose run starts now (the latest that fired
        during it), or None, and the job is idle."""
        slot, self.waiting = self.waiting, None
        self.active = slot is not None
        return slot


def forbid_runs(slots: np.ndarray | pd.Series | list, durations_s: np.ndarray | list[float],
                *, sync_delay_s: float = 0.0) -> RunPlan:
    """Which slots start, and when, when each run lasts ``durations_s[i]`` (the i-th run
    that starts), by :class:`Forbid`.

    A slot that fires while a run is active (up to and including the instant it ends)
    waits; the run it stands for starts when the active one ends, late by
    ``sync_delay_s`` (the controller's next sync). So a slow run stretches the job's
    interval. ``durations_s`` must have at least as many entries as runs start.
    """
    f = pd.to_datetime(np.asarray(slots, dtype="datetime64[ns]"), utc=True)
    d = np.asarray(durations_s, dtype=float)
    forbid = Forbid()
    runs: list[dict] = []
    skipped: list[dict] = []
    lost_since_start = 0
    free_at = None  # when the active run ends

    def start(slot: pd.Timestamp, ended: pd.Timestamp | None = None) -> pd.Timestamp:
        """Start the run for ``slot``: at the slot, or, when it waited for a run that
        ``ended`` then (even one ending as it fired), at the controller's next sync."""
        nonlocal lost_since_start
        k = len(runs)
        if k >= len(d):
            raise ValueError(f"durations_s has {len(d)} entries; run {k + 1} needs one more")
        begin = slot if ended is None else ended + pd.Timedelta(seconds=sync_delay_s)
        runs.append({"slot": slot, "start": begin, "late_s": (begin - slot).total_seconds(),
                     "skipped_before": lost_since_start,
                     "end": begin + pd.Timedelta(seconds=float(d[k]))})
        lost_since_start = 0
        return runs[-1]["end"]

    i, n = 0, len(f)
    while i < n or forbid.active:
        if forbid.active and (i == n or f[i] > free_at):  # the run ends before f[i] fires
            slot = forbid.end()
            if slot is not None:
                free_at = start(slot, free_at)
            continue
        starts, lost = forbid.fire(f[i])
        if lost is not None:
            skipped.append({"slot": lost, "blocked_by_run": len(runs) - 1})
            lost_since_start += 1
        if starts:
            free_at = start(f[i])
        i += 1
    runs_df = pd.DataFrame(runs, columns=["slot", "start", "end", "late_s", "skipped_before"])
    skipped_df = pd.DataFrame(skipped, columns=["slot", "blocked_by_run"])
    return RunPlan(runs_df, skipped_df)


# --- descriptions ------------------------------------------------------------------------

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def _step(values: list[int], span: int) -> int | None:
    """k when ``values`` is 0, k, 2k, ... covering the whole range (``span`` values)
    evenly."""
    if len(values) < 2 or values[0] != 0:
        return None
    k = values[1]
    return k if values == list(range(0, span, k)) and span % k == 0 else None


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ranges(values: list[int], names: tuple[str, ...] | None = None, base: int = 0) -> str:
    def name(v: int) -> str:
        return names[v - base] + ("s" if names is _DAYS else "") if names else str(v)

    out, run = [], [values[0]]
    for v in values[1:]:
        if v == run[-1] + 1:
            run.append(v)
        else:
            out.append(run)
            run = [v]
    out.append(run)
    parts = []
    for r in out:  # a run of three or more is a range; one or two are listed
        parts += [name(v) for v in r] if len(r) < 3 else [f"{name(r[0])} to {name(r[-1])}"]
    return _list(parts)


def describe(schedule: Schedule | str, tz: str | tzinfo | None = None) -> str:
    """A schedule in words: "every hour at minute 0", "Saturdays at 00:00 UTC"."""
    s = parse(schedule, allow_tz_prefix=True) if isinstance(schedule, str) else schedule
    if isinstance(s, EverySchedule):
        return f"every {_duration(s.delay_s)}, counted from the previous run"
    assert isinstance(s, SpecSchedule)
    loc = s.location or zone(tz)
    zname = str(loc)  # a ZoneInfo's key, "UTC", or a fixed offset "UTC-08:00"
    zname = "UTC" if zname == "Etc/UTC" else zname
    minutes, hours = _bits(s.minute, 0, 59).tolist(), _bits(s.hour, 0, 23).tolist()
    secs = _bits(s.second, 0, 59).tolist()
    if not (minutes and hours and secs and _can_match_a_day(s)):
        return "never: no day matches"
    every_hour = len(hours) == 24
    mstep, hstep = _step(minutes, 60), _step(hours, 24)
    if every_hour and len(minutes) == 60:
        when = "every minute"
    elif every_hour and mstep:
        when = f"every {mstep} minutes"
    elif every_hour:
        plural = "s" if len(minutes) > 1 else ""
        when = f"every hour at minute{plural} {_list([str(m) for m in minutes])}"
    elif hstep and len(minutes) == 1:
        when = f"every {hstep} hours at minute {minutes[0]}"
    elif len(hours) * len(minutes) <= 6:
        when = "at " + _list([f"{h:02d}:{m:02d}" for h in hours for m in minutes]) + f" {zname}"
    else:
        when = (f"at minute{'s' if len(minutes) > 1 else ''} {_ranges(minutes)} past "
                f"hour{'s' if len(hours) > 1 else ''} {_ranges(hours)} {zname}")
    if secs != [0]:
        when += f", second{'s' if len(secs) > 1 else ''} {_ranges(secs)}"
    days = _days(s)
    months = _bits(s.month, 1, 12).tolist()
    month_text = "" if len(months) == 12 else f" in {_ranges(months, _MONTHS, 1)}"
    dom = _bits(s.dom, 1, 31).tolist()
    if len(months) == 1 and len(dom) == 1 and days == f"on day {dom[0]} of the month":
        days, month_text = f"on {_MONTHS[months[0] - 1]} {dom[0]}", ""
    if days == "every day":
        text = when if when.startswith("every") else f"every day {when}"
        return text + month_text
    if when.startswith("every"):  # "every 15 minutes on day 1 ...", "... on Mondays"
        return f"{when} {days if days.startswith('on ') else 'on ' + days}{month_text}"
    return f"{days}{month_text} {when}"


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _can_match_a_day(s: SpecSchedule) -> bool:
    """Whether any date can match (robfig's day rule, over the schedule's months)."""
    months = _bits(s.month, 1, 12).tolist()
    if not months:  # "0 0 1 , 1": robfig never fires it, whatever the day fields say
        return False
    longest = max(_MONTH_DAYS[m - 1] for m in months)
    dom = [d for d in _bits(s.dom, 1, 31).tolist() if d <= longest]
    dow = _bits(s.dow, 0, 6).tolist()
    if s.dom >> 63 & 1 or s.dow >> 63 & 1:
        return bool(dom and dow)
    return bool(dom or dow)


def _dom_text(dom: list[int]) -> str:
    k = dom[1] - dom[0] if len(dom) > 3 else 0
    if k > 1 and dom == list(range(dom[0], 32, k)[: len(dom)]) and dom[-1] + k > 31:
        nth = {2: "2nd", 3: "3rd"}.get(k, f"{k}th")
        return f"every {nth} day of the month from day {dom[0]}"
    return f"day{'s' if len(dom) > 1 else ''} {_ranges(dom)} of the month"


def _days(s: SpecSchedule) -> str:
    """The days ``s`` fires on, by robfig's day rule (it has some: :func:`_can_match_a_day`)."""
    dom, dow = _bits(s.dom, 1, 31).tolist(), _bits(s.dow, 0, 6).tolist()
    dom_star, dow_star = bool(s.dom >> 63 & 1), bool(s.dow >> 63 & 1)
    dom_all, dow_all = len(dom) == 31, len(dow) == 7
    if dom_star or dow_star:  # both must match; a star field holds every value
        if dom_all and dow_all:
            return "every day"
        return _ranges(dow, _DAYS) if dom_all else f"on {_dom_text(dom)}"
    # robfig: neither is a star, so either field matching is enough (an empty one never)
    if dom_all or dow_all:
        return "every day"
    if not dom:
        return _ranges(dow, _DAYS)
    if not dow:
        return f"on {_dom_text(dom)}"
    return f"on {_dom_text(dom)} or on {_ranges(dow, _DAYS)}"


def _duration(seconds: int) -> str:
    """Go's way of writing a whole number of seconds, at least 1 (an ``@every`` delay)."""
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v)


# --- a schedule checked as a user asks `advisor cron` ------------------------------------


@dataclass(frozen=True)
class CronCheck:
    """Whether Longhorn and Kubernetes accept a schedule, what it means, when it fires.

    ``valid`` is Longhorn's verdict (a RecurringJob's ``spec.cron``); ``kubernetes`` is
    whether a CronJob could fire it (robfig's ``ParseStandard``, TZ prefixes allowed).
    ``next`` are UTC times.
    """

    expr: str
    valid: bool
    error: str | None
    longhorn: bool
    kubernetes: bool
    description: str
    next: list[datetime]
    tz: str

    def to_dict(self) -> dict:
        """The JSON form printed by ``advisor cron -o json``."""
        return {"valid": self.valid, "error": self.error, "description": self.description,
                "next": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in self.next],
                "accepted_by": {"longhorn": self.longhorn, "kubernetes": self.kubernetes}}


def check(expr: str, after: datetime | str | None = None, n: int = 5,
          tz: str | None = None) -> CronCheck:
    """Check ``expr`` as ``advisor cron`` does: validity for Longhorn and Kubernetes, the
    description, and the next ``n`` fire times strictly after ``after`` (default now) in
    the evaluation zone ``tz`` (default UTC). ``@every`` counts from ``after``."""
    loc = zone(tz)  # an unknown zone is the caller's error: CronError
    start = pd.Timestamp.now(tz="UTC") if after is None else utc(after)
    try:
        k8s: Schedule | None = parse(expr, allow_tz_prefix=True)
    except CronError:
        k8s = None
    try:
        s = parse(expr)
    except CronError as e:
        return CronCheck(expr, False, str(e), False, k8s is not None, "", [], str(tz or "UTC"))
    times: list[datetime] = []
    t = _unix(start)
    for _ in range(n):
        r = s.next_unix(t, loc)
        if r is None:
            break
        times.append(datetime.fromtimestamp(r, UTC))
        t = r
    return CronCheck(expr, True, None, True, True, describe(s, loc), times, str(tz or "UTC"))
