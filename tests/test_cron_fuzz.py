"""advisor.cron on arbitrary input: parse raises only CronError and returns promptly;
next, on what parse accepts, terminates.

The semantics are checked against robfig/cron itself in test_cron_differential.py; these
properties need no Go. Pacific/Apia is left out of the zones: around its missing
30 December 2011, robfig's own Next never returns (the differential test covers that).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.cron import CronError, EverySchedule, SpecSchedule, parse
from tests.conftest import time_limit

PARSE_SETTINGS = settings(max_examples=400, deadline=timedelta(seconds=1),
                          suppress_health_check=[HealthCheck.too_slow])
NEXT_SETTINGS = settings(max_examples=120, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.filter_too_much])
HANG_S = 10  # a hang guard, not a speed requirement: one Next takes milliseconds

ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe",
         "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Chatham", "America/Havana",
         "Antarctica/Troll", "Asia/Kathmandu", "Europe/Dublin")


def parse_or_none(text: str, **options):
    """parse, with CronError (carrying its reason and field) as None; anything else
    raised fails the test."""
    with time_limit(5, f"parse({text!r})"):
        try:
            return parse(text, **options)
        except CronError as e:
            assert isinstance(e, ValueError)
            assert isinstance(e.reason, str) and e.reason
            assert e.field is None or isinstance(e.field, str)
            return None


# Text that gets past the first checks: cron's own characters, names, descriptors.
CRON_CHARS = [
    *" \t*?/,-+0123456789LW#H@=_.:",
    "jan", "JAN", "Feb", "dec", "sun", "SAT", "mOn", "İ", "\u00a0", "\u3000", "\x85",
    "@every ", "@daily", "@hourly", "TZ=", "CRON_TZ=", "UTC", "America/New_York", "Local",
    "h", "m", "s", "ms", "µs", "ns", "1.5", "0", "60", "24", "32", "13", "7"]
cron_text = st.lists(st.sampled_from(CRON_CHARS), max_size=25).map("".join)

NAMES = {3: ["jan", "Feb", "MAR", "dec", "jAn"], 4: ["sun", "MON", "fri", "Sat", "tHu"]}
BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


@st.composite
def cron_field(draw, place: int) -> str:
    lo, hi = BOUNDS[place]
    number = st.integers(lo - 1, hi + 1).map(str)
    value = number | st.sampled_from(NAMES.get(place, ["0"]))
    atom = st.one_of(
        st.just("*"), st.just("?"), value,
        st.tuples(value, value).map("-".join),
        st.tuples(st.sampled_from(["*", "?"]) | value, st.integers(0, 70).map(str)).map(
            "/".join),
        st.tuples(value, value, st.integers(0, 70).map(str)).map(
            lambda t: f"{t[0]}-{t[1]}/{t[2]}"),
        st.sampled_from(["L", "W", "5#2", "H", "*-5", "+5", "05", ""]))
    return ",".join(draw(st.lists(atom, min_size=1, max_size=3)))


@st.composite
def cron_expr(draw) -> str:
    fields = [draw(cron_field(i)) for i in range(5)]
    spec = " ".join(fields)
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.sampled_from(["@hourly", "@daily", "@midnight", "@weekly",
                                     "@monthly", "@yearly", "@annually"]))
    if kind == 1:
        amount = draw(st.integers(-5, 10**6))
        unit = draw(st.sampled_from(["ns", "ms", "s", "m", "h", "µs"]))
        return f"@every {amount}{unit}"
    if kind == 2:
        zone = draw(st.sampled_from([*ZONES, "", "Local", "Nowhere/Town"]))
        return f"{draw(st.sampled_from(['TZ=', 'CRON_TZ=']))}{zone} {spec}"
    return spec


@PARSE_SETTINGS
@given(st.text())
def test_parse_raises_only_cron_error_on_any_text(text: str) -> None:
    for options in ({}, {"allow_tz_prefix": True}, {"seconds": True}):
        parse_or_none(text, **options)


@PARSE_SETTINGS
@given(cron_text)
def test_parse_raises_only_cron_error_on_cron_like_text(text: str) -> None:
    parsed = {}
    for options in ({}, {"allow_tz_prefix": True}, {"seconds": True}):
        parsed[len(parsed)] = sched = parse_or_none(text, **options)
        if sched is not None:  # what parses is a schedule of robfig's two kinds
            assert type(sched) in (EverySchedule, SpecSchedule), type(sched)
    # a TZ= prefix is the only thing Kubernetes accepts beyond Longhorn's five fields
    assert parsed[0] is None or parsed[1] is not None


@PARSE_SETTINGS
@given(cron_expr())
def test_parse_raises_only_cron_error_on_generated_schedules(text: str) -> None:
    longhorn = parse_or_none(text)
    kubernetes = parse_or_none(text, allow_tz_prefix=True)
    if longhorn is not None:  # Longhorn's rule only takes away (the TZ= prefixes)
        assert kubernetes is not None


@NEXT_SETTINGS
@given(cron_expr(), st.datetimes(datetime(2000, 1, 1), datetime(2035, 12, 31),
                                 timezones=st.just(UTC)),
       st.sampled_from(ZONES))
def test_next_terminates_on_accepted_schedules(text: str, after: datetime,
                                               zone: str) -> None:
    sched = parse_or_none(text, allow_tz_prefix=True)
    if sched is None:
        return
    t: datetime | None = after
    for i in range(3):
        with time_limit(HANG_S, f"{text!r}.next({t.isoformat()}, {zone!r}) #{i + 1}"):
            t = sched.next(t, zone)
        if t is None:
            break
        assert t.tzinfo is not None and t.utcoffset() == timedelta(0)
        assert t.microsecond == 0


@pytest.mark.parametrize("text", ["", " ", "\x00", "@", "TZ=", "TZ=UTC", "CRON_TZ=",
                                  "TZ=\u00a0", "*" * 10_000, "1," * 5_000 + "1 * * * *",
                                  "9" * 5_000 + " * * * *", "@every " + "9" * 5_000 + "h"])
def test_parse_edges_raise_only_cron_error(text: str) -> None:
    for options in ({}, {"allow_tz_prefix": True}, {"seconds": True}):
        parse_or_none(text, **options)
