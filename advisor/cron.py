"""RecurringJob schedules read exactly as Kubernetes and Longhorn read them.

Kubernetes fires a RecurringJob's CronJob with robfig/cron v3.0.1 ``ParseStandard`` and
``SpecSchedule.Next``; Longhorn's webhook accepts ``spec.cron`` with robfig/cron's
``ParseStandard`` too and, unlike Kubernetes' parser, has no ``TZ=`` / ``CRON_TZ=``
prefix (the six fields it would make are rejected). This module re-implements robfig's
rules (``parser.go``, ``spec.go``, ``constantdelay.go``) and the Go library functions
they rely on (``strings.Fields``, ``strconv.Atoi``, ``time.ParseDuration``,
``time.Date``'s handling of daylight-saving gaps), so that:

- a schedule is accepted or rejected as Kubernetes would, with the reason and the field;
- ``next`` is robfig's ``Next``: the first fire time strictly after a time, in an
  evaluation zone (Longhorn sets no ``timeZone``, so the controller's zone: usually UTC),
  resolving gaps and repeated hours as Go does, and ``None`` (Go's zero time) when
  nothing matches within five years;
- ``@every D`` is a fixed delay from the previous run, whatever the zone.

Vectorised expansion, CronJob run semantics and descriptions are in
:mod:`advisor.schedules`. No third-party cron library is used for the semantics.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError

from advisor.golang import GO_SPACE_CHARS, go_atoi, go_fields, go_lower, go_parse_duration

__all__ = [
    "CronError",
    "EverySchedule",
    "Schedule",
    "SpecSchedule",
    "parse",
    "utc_offset",
    "zone",
]

_STAR = 1 << 63
_NEVER_YEARS = 5
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class _Bounds:
    name: str
    lo: int
    hi: int
    names: dict[str, int] | None = None


_SECOND = _Bounds("second", 0, 59)
_MINUTE = _Bounds("minute", 0, 59)
_HOUR = _Bounds("hour", 0, 23)
_DOM = _Bounds("day-of-month", 1, 31)
_MONTH = _Bounds("month", 1, 12, {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    start=1)})
_DOW = _Bounds("day-of-week", 0, 6, {d: i for i, d in enumerate(
    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"))})
_PLACES = (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW)


class CronError(ValueError):
    """A schedule that robfig/cron (and so Kubernetes or Longhorn) rejects.

    ``field`` names the cron field at fault (``minute``, ``hour``, ``day-of-month``,
    ``month``, ``day-of-week``), or is None for the whole expression.
    """

    def __init__(self, reason: str, field: str | None = None, expr: str = ""):
        self.reason = reason
        self.field = field
        self.expr = expr
        where = f"{field} field: " if field else ""
        super().__init__(f"{where}{reason}")


# --- Go library functions the parser relies on ----------------------------------------

def zoneinfo_path() -> tuple[str, ...]:
    """Folders searched for zone files (Python's ``zoneinfo.TZPATH``)."""
    return tuple(TZPATH)


_FIXED = re.compile(r"^(?:UTC)?([+-])(\d{2}):?(\d{2})$")


@lru_cache(maxsize=64)
def zone(name: str | tzinfo | None) -> tzinfo:
    """A zone by IANA name (``time.LoadLocation``: '' and 'UTC' are UTC), or a fixed
    offset written ``+05:30`` / ``UTC-08:00``."""
    if isinstance(name, tzinfo):
        return name
    if name in (None, "", "UTC"):
        return UTC
    fixed = _FIXED.match(name)
    if fixed:
        sign = -1 if fixed.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(fixed.group(2)),
                                         minutes=int(fixed.group(3))))
    if ".." in name or name.startswith(("/", "\\")):
        raise CronError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name!r}") from None


def _load_location(name: str) -> tzinfo | None:
    """``time.LoadLocation`` for a TZ= prefix: '' and 'UTC' are UTC, 'Local' is the
    evaluation zone (None), '..' or a leading slash is refused, and any other name is the
    zone file of that relative path (Go does not require a normalised path)."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return None
    if ".." in name or name.startswith(("/", "\\")):
        raise CronError(f"provided bad location {name}: time: invalid location name")
    try:
        return ZoneInfo(name)
    except ValueError:  # not a normalised key: Go opens the path as it is
        for base in zoneinfo_path():
            # the raw path, as Go opens it (pathlib would drop a trailing slash)
            try:
                with open(os.path.join(base, name), "rb") as f:
                    return ZoneInfo.from_file(f, key=name)
            except FileNotFoundError:
                continue
            except (OSError, ValueError):
                break
    except (ZoneInfoNotFoundError, OSError):
        pass
    raise CronError(f"provided bad location {name}: unknown time zone {name}")


def utc_offset(tz: tzinfo, unix: int) -> int:
    """UTC offset in seconds of ``tz`` at the instant ``unix``."""
    if tz is UTC:
        return 0
    off = datetime.fromtimestamp(unix, tz).utcoffset()  # never None: fromtimestamp needs one
    return int(off.total_seconds())  # type: ignore[union-attr]


def _fields(tz: tzinfo, unix: int) -> tuple[int, int, int, int, int, int, int]:
    """(year, month, day, hour, minute, second, weekday with Sunday 0) of ``unix``."""
    d = datetime.fromtimestamp(unix, tz)
    return d.year, d.month, d.day, d.hour, d.minute, d.second, (d.weekday() + 1) % 7


def _go_date(y: int, mo: int, d: int, h: int, mi: int, s: int, tz: tzinfo) -> int:
    """``time.Date(...).Unix()``: fields may overflow; a wall time in a gap or a repeat is
    resolved as Go does (the offset in force at ``wall - offset(wall)``)."""
    y, mo = y + (mo - 1) // 12, (mo - 1) % 12 + 1
    days = date(y, mo, 1).toordinal() - _EPOCH_ORDINAL + d - 1
    wall = days * 86400 + h * 3600 + mi * 60 + s
    return wall - utc_offset(tz, wall - utc_offset(tz, wall))


# --- schedules ----------------------------------------------------------------------------


class Schedule(ABC):
    """A parsed schedule. ``next(after, tz)`` is robfig's ``Next``."""

    expr: str

    @abstractmethod
    def next(self, after: datetime, tz: str | tzinfo | None = None) -> datetime | None:
        """The first fire time strictly after ``after`` (whole seconds, UTC-aware), or None
        when nothing matches within five years. ``tz`` is the evaluation zone (default
        UTC); a ``TZ=`` prefix in the schedule overrides it."""

    @abstractmethod
    def next_unix(self, after: int, tz: tzinfo) -> int | None:
        """:meth:`next` on whole Unix seconds (``after`` already truncated)."""


def _unix(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86400 + delta.seconds  # floor: microseconds are dropped


def _datetime(unix: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=unix)


@dataclass(frozen=True)
class SpecSchedule(Schedule):
    """Bit sets per field (bit 63 marks a ``*`` or ``?``), as robfig stores them."""

    expr: str
    second: int
    minute: int
    hour: int
    dom: int
    month: int
    dow: int
    location: tzinfo | None = None  # from a TZ= prefix; None: the evaluation zone

    def next(self, after: datetime, tz: str | tzinfo | None = None) -> datetime | None:
        u = self.next_unix(_unix(after), zone(tz))
        return None if u is None else _datetime(u)

    def can_fire(self) -> bool:
        """False when a field matches no value at all (``0 , * * *``) or no day can match
        (both day fields empty, or one empty under the star rule)."""
        # (bit 63 alone never occurs: a star field holds every value of its range too)
        if not (self.second and self.minute and self.hour and self.month):
            return False
        if self.dom & _STAR or self.dow & _STAR:
            return bool(self.dom and self.dow)
        return bool(self.dom or self.dow)

    def day_matches(self, day: int, weekday: int) -> bool:
        """robfig's ``dayMatches``: if either day field is a star, both must match;
        otherwise either may."""
        dom_ok = bool(1 << day & self.dom)
        dow_ok = bool(1 << weekday & self.dow)
        if self.dom & _STAR or self.dow & _STAR:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def next_unix(self, after: int, tz: tzinfo) -> int | None:
        # A line-by-line transcription of robfig's SpecSchedule.Next (spec.go).
        loc = self.location or tz
        if not self.can_fire():
            return None  # Go searches five years and returns the zero time: same answer
        t = after + 1
        added = False
        year_limit = _fields(loc, t)[0] + _NEVER_YEARS
        while True:  # WRAP
            y, mo, d, h, mi, s, wd = _fields(loc, t)
            if y > year_limit:
                return None
            wrapped = False
            while not (1 << mo & self.month):
                if not added:
                    added = True
                    t = _go_date(y, mo, 1, 0, 0, 0, loc)
                y, mo, d, h, mi, s, wd = _fields(loc, t)
                t = _go_date(y, mo + 1, d, h, mi, s, loc)  # AddDate(0, 1, 0)
                y, mo, d, h, mi, s, wd = _fields(loc, t)
                if mo == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self.day_matches(d, wd):
                if not added:
                    added = True
                    t = _go_date(y, mo, d, 0, 0, 0, loc)
                y, mo, d, h, mi, s, wd = _fields(loc, t)
                before = t
                t = _go_date(y, mo, d + 1, h, mi, s, loc)  # AddDate(0, 0, 1)
                h = _fields(loc, t)[3]
                # DST can move midnight: add an hour if it's 23, subtract one if it's 1.
                if h != 0:
                    t += (24 - h) * 3600 if h > 12 else -h * 3600
                if t <= before:
                    # A skipped day (Pacific/Apia, 2011-12-30) sends robfig back to the day
                    # before, forever: Next never returns, so the job never fires again.
                    return None
                y, mo, d, h, mi, s, wd = _fields(loc, t)
                if d == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << h & self.hour):
                if not added:
                    added = True
                    t = _go_date(y, mo, d, h, 0, 0, loc)
                t += 3600
                y, mo, d, h, mi, s, wd = _fields(loc, t)
                if h == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << mi & self.minute):
                if not added:
                    added = True
                    t -= t % 60  # Truncate(time.Minute): on absolute time, not wall time
                t += 60
                y, mo, d, h, mi, s, wd = _fields(loc, t)
                if mi == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not (1 << s & self.second):
                if not added:
                    added = True
                t += 1
                y, mo, d, h, mi, s, wd = _fields(loc, t)
                if s == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            return t


@dataclass(frozen=True)
class EverySchedule(Schedule):
    """``@every D``: a fixed delay in whole seconds (at least 1 s), whatever the zone."""

    expr: str
    delay_s: int

    def next(self, after: datetime, tz: str | tzinfo | None = None) -> datetime | None:
        return _datetime(_unix(after) + self.delay_s)

    def next_unix(self, after: int, tz: tzinfo) -> int | None:
        return after + self.delay_s


# --- the parser (robfig parser.go) -------------------------------------------------------

_DESCRIPTORS = {
    "@yearly": ("0", "0", "0", "1", "1", "*"),
    "@annually": ("0", "0", "0", "1", "1", "*"),
    "@monthly": ("0", "0", "0", "1", "*", "*"),
    "@weekly": ("0", "0", "0", "*", "*", "0"),
    "@daily": ("0", "0", "0", "*", "*", "*"),
    "@midnight": ("0", "0", "0", "*", "*", "*"),
    "@hourly": ("0", "0", "*", "*", "*", "*"),
}


def _number(text: str, b: _Bounds) -> int:
    if b.names is not None:
        n = b.names.get(go_lower(text))
        if n is not None:
            return n
    try:
        n = go_atoi(text)
    except ValueError as e:
        raise CronError(f"failed to parse int from {text}: {e}", b.name) from None
    if n < 0:
        raise CronError(f"negative number ({n}) not allowed: {text}", b.name)
    return n


def _range(expr: str, b: _Bounds) -> int:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    extra = 0
    if low_high[0] in ("*", "?"):
        start, end, extra = b.lo, b.hi, _STAR  # "*-5" is "*": the rest is not read
    else:
        start = _number(low_high[0], b)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _number(low_high[1], b)
        else:
            raise CronError(f"too many hyphens: {expr}", b.name)
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _number(range_and_step[1], b)
        if single:
            end = b.hi  # "N/step" means "N-max/step"
        if step > 1:
            extra = 0  # "*/2" is restricted, not a star, for the day-of-month/week rule
    else:
        raise CronError(f"too many slashes: {expr}", b.name)
    if start < b.lo:
        raise CronError(f"beginning of range ({start}) below minimum ({b.lo}): {expr}", b.name)
    if end > b.hi:
        raise CronError(f"end of range ({end}) above maximum ({b.hi}): {expr}", b.name)
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}",
                        b.name)
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}", b.name)
    bits = 0
    for i in range(start, end + 1, step):
        bits |= 1 << i
    return bits | extra


def _field(text: str, b: _Bounds) -> int:
    bits = 0
    for part in (p for p in text.split(",") if p):  # strings.FieldsFunc drops empties
        bits |= _range(part, b)
    return bits


def parse(expr: str, *, allow_tz_prefix: bool = False, seconds: bool = False) -> Schedule:
    """Parse a schedule as robfig/cron v3.0.1 ``ParseStandard`` does.

    By default the rules are Longhorn's: a ``TZ=`` / ``CRON_TZ=`` prefix is rejected.
    ``allow_tz_prefix`` accepts it as Kubernetes' parser does (the schedule is then
    evaluated in that zone). ``seconds`` parses robfig's six-field form (seconds first,
    day-of-week optional), used by robfig's own tests. Raises :class:`CronError`.
    """
    try:
        return _parse(expr, allow_tz_prefix, seconds)
    except CronError as e:
        raise CronError(e.reason, e.field, expr) from None


def _parse(spec: str, allow_tz_prefix: bool, seconds: bool) -> Schedule:
    expr = spec
    if not spec:
        raise CronError("empty spec string")
    location = None
    if spec.startswith(("TZ=", "CRON_TZ=")):
        if not allow_tz_prefix:
            raise CronError("a TZ= or CRON_TZ= prefix is not accepted by Longhorn: "
                            "RecurringJob schedules run in the controller's time zone")
        i, eq = spec.find(" "), spec.find("=")
        if i < 0:  # robfig slices spec[eq+1:-1] here and panics: no schedule follows
            raise CronError("a time zone prefix must be followed by a schedule")
        location = _load_location(spec[eq + 1:i])  # the first "=" is the prefix's
        spec = spec[i:].strip(GO_SPACE_CHARS)  # strings.TrimSpace: Unicode white space
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return _spec(expr, _DESCRIPTORS[spec], location)
        if spec.startswith("@every "):
            try:
                ns = go_parse_duration(spec[len("@every "):])
            except ValueError as e:
                raise CronError(f"failed to parse duration {spec}: {e}") from None
            ns = max(ns, 10**9)
            return EverySchedule(expr, ns // 10**9)
        raise CronError(f"unrecognized descriptor: {spec}")
    fields = go_fields(spec)
    lo, hi = (5, 6) if seconds else (5, 5)
    if not lo <= len(fields) <= hi:
        shown = "[" + " ".join(fields) + "]"
        if lo == hi:
            raise CronError(f"expected exactly {lo} fields, found {len(fields)}: {shown}")
        raise CronError(f"expected {lo} to {hi} fields, found {len(fields)}: {shown}")
    if not seconds:
        fields = ["0", *fields]
    elif len(fields) == 5:
        fields = [*fields, "*"]
    return _spec(expr, tuple(fields), location)


def _spec(expr: str, fields: tuple[str, ...] | list[str], location: tzinfo | None
          ) -> SpecSchedule:
    bits = [_field(f, b) for f, b in zip(fields, _PLACES, strict=True)]
    return SpecSchedule(expr, *bits, location=location)
