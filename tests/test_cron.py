"""Cron as robfig/cron v3.0.1 reads it: robfig's test vectors, Go's quirks, expansion, Forbid."""

from __future__ import annotations

import ast
import csv
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from advisor import cron, golang
from advisor.schedules import check, describe, fire_times, forbid_runs
from tests.conftest import missing_dependency, run_cli

# robfig/cron v3.0.1's own test cases (the header says which), carried with the tests
VECTORS = Path(__file__).resolve().parent / "data" / "robfig_cron_v3_vectors.tsv"


def _rows() -> list[dict]:
    with VECTORS.open() as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _cases(row: dict) -> list[tuple[str, bool, str | None]]:
    """(expression, six-field parser?, evaluation zone) for each form a row can be read in."""
    parser, orig, five = row["parser"], row["spec_original"], row["spec_5field_equivalent"]
    zone = row["eval_zone"].removeprefix("fixed ") or None
    if parser.startswith("Every"):
        return [(five, False, zone)]
    if parser == "ParseStandard":
        return [(orig, False, zone)]
    cases = [(orig, True, zone)]  # robfig's six-field parsers (its own tests)
    if five and five != orig:
        k8s_zone = row["k8s_timeZone_equivalent"] or zone
        cases.append((five, False, k8s_zone))
    return cases


ROWS = _rows()


def test_the_vectors_file_is_all_read():
    assert len(ROWS) == 134
    assert {r["relation"] for r in ROWS} == {"equal", "not_equal", "error", "accept"}


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}:{r['spec_original']}" for i, r in
                                           enumerate(ROWS)])
def test_vector(row):
    for expr, seconds, zone in _cases(row):
        rel = row["relation"]
        if rel == "error":
            with pytest.raises(cron.CronError):
                cron.parse(expr, allow_tz_prefix=True, seconds=seconds)
            continue
        s = cron.parse(expr, allow_tz_prefix=True, seconds=seconds)
        if rel == "accept":
            continue
        got = s.next(_time(row["start"]), zone)
        want = None if row["expected_next"] == "ZERO" else _time(row["expected_next"])
        assert (got == want) == (rel == "equal"), (expr, zone, row["start"], got, want)


# --- parsing quirks, as robfig has them --------------------------------------------------


# What each quirk means, worked by hand from robfig/cron v3.0.1's parser.go and spec.go:
# the next fire time strictly after Monday 2026-01-05 00:00 UTC (None: Go's zero time, no
# match within five years).
@pytest.mark.parametrize(("expr", "next_fire"), [
    ("+5 * * * *", "2026-01-05T00:05"),        # strconv.Atoi("+5") is 5
    ("1, * * * *", "2026-01-05T00:01"),        # FieldsFunc drops the empty range
    ("*-5 * * * *", "2026-01-05T00:01"),       # a leading * ignores the rest of the range
    ("0 0 ? * *", "2026-01-06T00:00"),         # ? is *
    ("0 0 * JAN-mar sUn", "2026-01-11T00:00"),  # names in any case; dom * ANDs with dow
    ("0 0 * * MON-FRI", "2026-01-06T00:00"),
    ("0\t0  *\n* *", "2026-01-06T00:00"),     # any white space separates fields
    ("0 0 1,,15 * *", "2026-01-15T00:00"),
    ("*/1 * * * *", "2026-01-05T00:01"),       # step 1 keeps the star bit
    ("0 0 , * *", None),                       # no day of month at all, ANDed with dow *
    ("0 0 , * 1", "2026-01-12T00:00"),         # no day of month, ORed with Mondays
    ("@every 1.5h", "2026-01-05T01:30"),       # counted from the previous run
    ("@every 90m", "2026-01-05T01:30"),
    ("@every 0", "2026-01-05T00:00:01"),       # Every() rounds up to one second
    ("@every -1h", "2026-01-05T00:00:01"),
    ("@hourly", "2026-01-05T01:00"),
    ("@annually", "2027-01-01T00:00"),
])
def test_accepted_quirks_and_what_they_mean(expr, next_fire):
    after = datetime(2026, 1, 5, tzinfo=UTC)
    want = None if next_fire is None else datetime.fromisoformat(next_fire + "+00:00")
    assert cron.parse(expr).next(after, "UTC") == want


@pytest.mark.parametrize(("expr", "field", "fragment"), [
    ("0 0 * * 7", "day-of-week", "end of range (7) above maximum (6)"),
    ("0 0 L * *", "day-of-month", "failed to parse int from L"),
    ("0 0 1W * *", "day-of-month", "failed to parse int from 1W"),
    ("0 0 * * 1#2", "day-of-week", "failed to parse int from 1#2"),
    ("H 0 * * *", "minute", "failed to parse int from H"),
    ("0 0 * * SAT-SUN", "day-of-week", "beginning of range (6) beyond end of range (0)"),
    ("0 0 0 * * *", None, "expected exactly 5 fields, found 6"),
    ("*/0 * * * *", "minute", "step of range should be a positive number"),
    ("5-6-7 * * * *", "minute", "too many hyphens"),
    ("-5 * * * *", "minute", "failed to parse int from "),
    ("0 0 0 * *", "day-of-month", "beginning of range (0) below minimum (1)"),
    ("@Daily", None, "unrecognized descriptor: @Daily"),
    ("@daily ", None, "unrecognized descriptor"),
    ("@every 5", None, "missing unit in duration"),
    ("@every 1d", None, 'unknown unit "d"'),
    ("", None, "empty spec string"),
    ("TZ=UTC 0 * * * *", None, "not accepted by Longhorn"),
    ("CRON_TZ=Europe/Berlin 0 2 * * *", None, "not accepted by Longhorn"),
])
def test_rejections_name_the_field(expr, field, fragment):
    with pytest.raises(cron.CronError) as e:
        cron.parse(expr)
    assert e.value.field == field and fragment in str(e.value)
    if field:
        assert str(e.value).startswith(f"{field} field: ")


def test_star_step_rules_for_the_day_fields():
    # "*/1" is still a star: both day fields must match (every Monday)
    s = cron.parse("0 0 */1 * 1")
    assert s.next(datetime(2026, 11, 28, tzinfo=UTC)) == datetime(2026, 11, 30, tzinfo=UTC)
    # "*/2" is restricted: odd days OR Mondays; 2026-11-29 is odd (a Sunday)
    s = cron.parse("0 0 */2 * 1")
    assert s.next(datetime(2026, 11, 28, tzinfo=UTC)) == datetime(2026, 11, 29, tzinfo=UTC)
    assert s.next(datetime(2026, 11, 29, tzinfo=UTC)) == datetime(2026, 11, 30, tzinfo=UTC)


def test_tz_prefix_evaluates_in_its_zone_when_allowed():
    s = cron.parse("CRON_TZ=Asia/Tokyo 0 9 * * *", allow_tz_prefix=True)
    got = s.next(datetime(2026, 1, 1, tzinfo=UTC), "America/New_York")
    assert got == datetime(2026, 1, 2, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo


def test_go_durations():
    ns = golang.go_parse_duration
    assert ns("1h30m") == 5400 * 10**9 and ns("1.5h") == 5400 * 10**9
    assert ns("15m50ns") == 900 * 10**9 + 50 and ns("-1.5s") == -1_500_000_000
    assert ns("1µs") == ns("1μs") == ns("1us") == 1000 and ns("0") == 0 and ns("+0s") == 0
    for bad in ("", "5", "1d", ".s", "h", "9223372036854775808ns", "1..5s"):
        with pytest.raises(ValueError):
            ns(bad)
    assert cron.parse("@every 15ms").delay_s == 1  # at least a second
    assert cron.parse("@every 90m59.9s").delay_s == 5459  # truncated to whole seconds


def test_never_is_none():
    assert cron.parse("0 0 30 2 *").next(datetime(2026, 1, 1, tzinfo=UTC)) is None
    # Feb 29 in 2097 is 7 years after 2097: beyond robfig's five-year search
    s = cron.parse("0 0 29 2 *")
    assert s.next(datetime(2024, 3, 1, tzinfo=UTC)) == datetime(2028, 2, 29, tzinfo=UTC)
    assert s.next(datetime(2096, 3, 1, tzinfo=UTC)) is None


@pytest.fixture
def process_tz(monkeypatch):
    """Sets the process's local zone (TZ), and puts it back afterwards."""
    def set_tz(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()
    yield set_tz
    monkeypatch.undo()
    time.tzset()


# robfig's yearLimit is t.Year() + 5 with t in the evaluation zone: from any time in 2099
# there, Feb 29 2104 (five years on) is still found (the oracle agrees); the process's own
# zone, a year behind or ahead at that instant, plays no part.
@pytest.mark.parametrize(("local", "tz", "after", "want"), [
    ("Etc/GMT+12", "UTC", datetime(2099, 1, 1, 5, tzinfo=UTC),
     datetime(2104, 2, 29, tzinfo=UTC)),
    ("UTC", "Etc/GMT-14", datetime(2098, 12, 31, 12, tzinfo=UTC),  # 2099-01-01 02:00 there
     datetime(2104, 2, 28, 10, tzinfo=UTC)),
])
def test_five_year_search_counts_from_the_evaluation_zone(process_tz, local, tz, after, want):
    process_tz(local)
    assert cron.parse("0 0 29 2 *").next(after, tz) == want


# --- daylight saving, as Go resolves it ---------------------------------------------------


def test_dst_gap_and_repeat_in_new_york():
    ny = "America/New_York"
    s = cron.parse("30 2 * * *")  # 02:30 does not exist on 2026-03-08
    assert s.next(datetime(2026, 3, 8, 6, 0, tzinfo=UTC), ny) == datetime(
        2026, 3, 9, 6, 30, tzinfo=UTC)
    s = cron.parse("30 1 * * *")  # 01:30 happens twice on 2026-11-01: robfig fires twice
    first = s.next(datetime(2026, 11, 1, 4, 0, tzinfo=UTC), ny)
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert s.next(first, ny) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST


def test_truncate_to_the_minute_is_on_absolute_time():
    """Monrovia was at -0:44:30 in 1960. After 1960-06-01 00:00 UTC (23:15:30 local on
    May 31), robfig truncates to the UTC minute (:30 seconds local), steps minutes to
    00:00:30 local, then hours to 23:00:30, where the seconds do not match: 23:00 local on
    June 1 is missed and the first fire is on June 2 (23:44:30 UTC), as the oracle says."""
    s = cron.parse("0 23 * * *")
    assert s.next(datetime(1960, 6, 1, tzinfo=UTC), "Africa/Monrovia") == datetime(
        1960, 6, 2, 23, 44, 30, tzinfo=UTC)


def test_seconds_carried_from_a_gap_of_seconds():
    """Abidjan went from LMT (-0:16:08) to GMT at 1912-01-01 00:16:08 UTC. robfig's month
    steps carry the odd hours, minutes and seconds that gap leaves, and it takes until
    1915 to land on 1 January 00:00:00 again: the oracle's answer."""
    s = cron.parse("0 0 1 1 *")
    assert s.next(datetime(1911, 12, 20, tzinfo=UTC), "Africa/Abidjan") == datetime(
        1915, 1, 1, tzinfo=UTC)


def test_midnight_moved_to_noon_hangs_robfig():
    """McMurdo went from UTC to +12 at 1956-01-01 00:00 UTC: the 1st's midnight comes out
    at 12:00, and robfig's "subtract the hour if it is 12 or less" takes it back to the
    31st, forever (the oracle reports a hang). Here: None, the job never fires."""
    z = ZoneInfo("Antarctica/McMurdo")
    if datetime(1955, 12, 31, tzinfo=UTC).astimezone(z).utcoffset() != timedelta(0):
        missing_dependency("this zone database has no McMurdo history before 1956 "
                           "(backzone; Debian's tzdata has it)")
    s = cron.parse("0 0 1 * *")
    assert s.next(datetime(1955, 12, 31, 11, tzinfo=UTC), "Antarctica/McMurdo") is None


# --- vectorised expansion -------------------------------------------------------------------


def _iterated(expr: str, a: str, b: str, tz: str | None) -> np.ndarray:
    s = cron.parse(expr, allow_tz_prefix=True)
    out, t = [], _time(a)
    while True:
        t = s.next(t, tz)
        if t is None or t >= _time(b):
            break
        out.append(np.datetime64(t.replace(tzinfo=None), "s"))
    return np.array(out, dtype="datetime64[s]")


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Europe/Berlin",
                                "Australia/Lord_Howe", "America/Sao_Paulo", "Pacific/Chatham",
                                "+05:30"])
@pytest.mark.parametrize("expr", ["7,37 * * * *", "30 2 * * *", "0 0 * * *", "15 1-3 * * 0",
                                  "0 */2 * * *", "30 1 * 3,10,11 *", "0 0 1 * 1",
                                  "*/13 2 * * *", "TZ=Europe/Paris 30 2 * * *"])
def test_expansion_is_repeated_next(expr, tz):
    a, b = "2017-09-01T00:00:00Z", "2018-04-15T00:00:00Z"  # both hemispheres change
    got = fire_times(cron.parse(expr, allow_tz_prefix=True), a, b, tz)
    np.testing.assert_array_equal(got, _iterated(expr, a, b, tz))


def _changes_in_2026(tz: str) -> list[datetime]:
    """The hours of 2026 (UTC) at which ``tz``'s offset differs from the hour before,
    scanned with zoneinfo: the oracle for where the changes are."""
    z, t, out = ZoneInfo(tz), datetime(2026, 1, 1, tzinfo=UTC), []
    while t.year == 2026:
        if (t + timedelta(hours=1)).astimezone(z).utcoffset() != t.astimezone(z).utcoffset():
            out.append(t + timedelta(hours=1))
        t += timedelta(hours=1)
    return out


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"])
@pytest.mark.parametrize("expr", ["0 3 * * *", "30 1 * * *", "45 */2 * * *"])
def test_expansion_ending_or_starting_hours_from_an_offset_change(expr, tz):
    """A window that ends five hours after an offset change (or starts five hours before
    one) still lays out the fire times around it as Next does: the changes near the
    window's end are looked for too, not only those a day inside it."""
    changes = _changes_in_2026(tz)
    assert len(changes) == 2  # (spring and autumn)
    for change in changes:
        for a, b in [(change - timedelta(days=3), change + timedelta(hours=5)),
                     (change - timedelta(hours=5), change + timedelta(days=3))]:
            a_, b_ = a.isoformat(), b.isoformat()
            got = fire_times(cron.parse(expr), a_, b_, tz)
            np.testing.assert_array_equal(got, _iterated(expr, a_, b_, tz))


def test_expansion_of_a_year_of_five_minutes_and_every():
    f = fire_times("*/5 * * * *", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert len(f) == 365 * 288 - 1  # strictly after the start
    assert f[0] == np.datetime64("2026-01-01T00:05:00") and np.all(np.diff(f) == 300)
    every = fire_times("@every 90m", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
                       anchor="2025-12-31T23:00:00Z")
    assert every[0] == np.datetime64("2026-01-01T00:30:00") and len(every) == 16
    assert len(fire_times("0 0 30 2 *", "2026-01-01", "2036-01-01")) == 0
    assert len(fire_times("0 0 29 2 *", "2096-03-01", "2110-01-01")) == 0  # gives up


# --- Forbid: a run of 70 minutes on an hourly schedule ---------------------------------------


def test_forbid_on_hand_computed_hourly_70_minute_runs():
    slots = fire_times("0 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T08:00:01Z")
    slots = np.concatenate([np.array(["2026-01-01T00:00:00"], dtype="datetime64[s]"), slots])
    plan = forbid_runs(slots, [70 * 60] * 20)
    t = pd.Timestamp("2026-01-01T00:00:00Z")
    starts = [t + pd.Timedelta(minutes=m) for m in (0, 70, 140, 210, 280, 350, 420, 490)]
    assert list(plan.runs["start"]) == starts
    # each run stands for the latest slot that fired while the previous one was active
    assert list(plan.runs["slot"].dt.hour) == [0, 1, 2, 3, 4, 5, 7, 8]
    assert list(plan.runs["late_s"]) == [0, 600, 1200, 1800, 2400, 3000, 0, 600]
    assert list(plan.skipped["slot"]) == [t + pd.Timedelta(hours=6)]
    assert list(plan.skipped["blocked_by_run"]) == [5]
    assert plan.runs["skipped_before"].sum() == 1
    assert plan.effective_interval_s == pytest.approx(70 * 60)


def test_forbid_collapses_several_missed_slots_into_one():
    slots = fire_times("*/10 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T01:00:01Z")
    plan = forbid_runs(slots, [35 * 60, 60, 60, 60])
    # the 00:10 run lasts until 00:45: 00:20, 00:30 lost; 00:40 starts late at 00:45
    assert list(plan.runs["slot"].dt.minute) == [10, 40, 50, 0]
    assert plan.runs["start"].iloc[1] == pd.Timestamp("2026-01-01T00:45:00Z")
    assert list(plan.skipped["slot"].dt.minute) == [20, 30]
    with pytest.raises(ValueError, match="durations_s has 1 entries"):
        forbid_runs(slots, [60])


# --- descriptions and the CLI -------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "text"), [
    ("0 * * * *", "every hour at minute 0"),
    ("@hourly", "every hour at minute 0"),
    ("0 0 * * 6", "Saturdays at 00:00 UTC"),
    ("*/5 * * * *", "every 5 minutes"),
    ("0 2 * * *", "every day at 02:00 UTC"),
    ("0 3 * * 1-5", "Mondays to Fridays at 03:00 UTC"),
    ("30 3 1,15 * *", "on days 1 and 15 of the month at 03:30 UTC"),
    ("0 0 */2 * 1", "on every 2nd day of the month from day 1 or on Mondays at 00:00 UTC"),
    ("@yearly", "on January 1 at 00:00 UTC"),
    ("@every 90m", "every 1h30m, counted from the previous run"),
    ("0 0 31 2 *", "never: no day matches"),
])
def test_describe(expr, text):
    assert describe(expr) == text


def test_describe_names_the_zone():
    assert describe("0 2 * * *", "Europe/Berlin") == "every day at 02:00 Europe/Berlin"
    assert describe("0 2 * * *", timezone(timedelta(hours=5, minutes=30))) == \
        "every day at 02:00 UTC+05:30"


def test_check_and_cli():
    c = check("0 0 * * 6", "2026-11-28T13:00:00Z", 2)
    assert c.valid and c.longhorn and c.kubernetes
    assert c.next == [datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 12, tzinfo=UTC)]
    r = run_cli("cron", "0 0 * * 6", "--from", "2026-11-28T13:00:00Z", "-n", "2", "-o",
                "json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {
        "valid": True, "error": None, "description": "Saturdays at 00:00 UTC",
        "next": ["2026-12-05T00:00:00Z", "2026-12-12T00:00:00Z"],
        "accepted_by": {"longhorn": True, "kubernetes": True}}
    bad = run_cli("cron", "TZ=UTC 0 * * * *", "-o", "json")
    assert bad.returncode == 2
    out = json.loads(bad.stdout)
    assert out["valid"] is False and out["next"] == [] and "Longhorn" in out["error"]
    assert out["accepted_by"] == {"longhorn": False, "kubernetes": True}
    text = run_cli("cron", "0 2 * * *", "--from", "2026-03-07T00:00:00Z", "--tz",
                   "America/New_York", "-n", "2")
    assert text.returncode == 0 and "every day at 02:00 America/New_York" in text.stdout
    assert "2026-03-07T07:00:00Z" in text.stdout and "2026-03-09T06:00:00Z" in text.stdout
    assert run_cli("cron", "0 0 * * 7").returncode == 2
    assert "unknown time zone" in run_cli("cron", "0 * * * *", "--tz", "Mars/Base").stderr


def test_no_third_party_cron_library():
    tree = ast.parse(Path(cron.__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom)}
    assert not names & {"croniter", "cronsim", "crontab", "apscheduler"}


# time.ParseDuration's answers, from Go 1.19 itself (a throw-away program calling
# time.ParseDuration on each text): nanoseconds, or the error message.
GO_DURATIONS = [
    ("9223372036854775807ns", 9223372036854775807),  # the largest Duration
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ("-9223372036854775808ns", -9223372036854775808),  # the smallest
    ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
    ("-9223372036854775807ns1ns", -9223372036854775808),
    ("-9223372036854775807ns2ns", 'time: invalid duration "-9223372036854775807ns2ns"'),
    ("2562047h", 9223369200000000000),
    ("2562048h", 'time: invalid duration "2562048h"'),
    ("2562047h47m16.854775807s", 9223372036854775807),
    ("-2562047h47m16.854775808s", -9223372036854775808),
    ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
    ("153722867m", 9223372020000000000),
    ("922337203685477580.9ns", 922337203685477580),
    # an integer part past 2**63 is refused before its unit is read
    ("10000000000000000000x", 'time: invalid duration "10000000000000000000x"'),
    ("18446744073709551616ns", 'time: invalid duration "18446744073709551616ns"'),
    ("9223372036854775808ns1x", 'time: unknown unit "x" in duration "9223372036854775808ns1x"'),
    ("9223372036854775807ns2ns1x", 'time: invalid duration "9223372036854775807ns2ns1x"'),
    # fractions: float64 arithmetic, digits past 2**63 dropped, truncated to whole ns
    (".5h", 1800000000000),
    ("1.h", 3600000000000),
    ("5.s", 5000000000),
    ("1.1s", 1100000000),
    ("1.5h30m", 7200000000000),
    ("3.000000001h", 10800000003600),
    ("0.000000001h", 3600),
    ("100.0000001ms", 100000000),
    ("0.5ns", 0),
    ("1.00000000000000000000001h", 3600000000000),
    ("0.9223372036854775809s", 922337203),
    ("0.99999999999999999999s", 1000000000),
    ("1.9999999999999999999999s", 2000000000),
    ("0.09223372036854775809h", 332041393326),
    ("00000000000000000000000000000001s", 1000000000),
    # a fraction's digits past 2**63 change the float64 answer in its last nanosecond
    ("0.70526360871249997319h", 2538948991365),
    ("0.894689739310833322204h", 3220883061519),
    ("0.97074283003055546013293h", 3494674188109),
    ("0.89610990583888874713245h", 3225995661019),
    # signs, zero, units
    ("+5s", 5000000000), ("-0", 0), ("+0", 0), ("0", 0), ("0s", 0), ("-0h", 0),
    ("9s", 9000000000), ("1h9s", 3609000000000), ("1m0.9s", 60900000000),
    ("1.5µs", 1500), ("1μs", 1000), ("1us", 1000),
    ("", 'time: invalid duration ""'),
    ("-", 'time: invalid duration "-"'),
    (".", 'time: invalid duration "."'),
    (".s", 'time: invalid duration ".s"'),
    ("h", 'time: invalid duration "h"'),
    ("A1h", 'time: invalid duration "A1h"'),
    ("5", 'time: missing unit in duration "5"'),
    ("1s1", 'time: missing unit in duration "1s1"'),
    ("1.2.3s", 'time: missing unit in duration "1.2.3s"'),
    ("1ns.5", 'time: missing unit in duration "1ns.5"'),
    ("1.5", 'time: missing unit in duration "1.5"'),
    ("1:s", 'time: unknown unit ":s" in duration "1:s"'),  # ":" follows "9" in ASCII
    ("1.5:s", 'time: unknown unit ":s" in duration "1.5:s"'),
    ("1h:", 'time: unknown unit "h:" in duration "1h:"'),
    ("1h-30m", 'time: unknown unit "h-" in duration "1h-30m"'),
    ("1hx", 'time: unknown unit "hx" in duration "1hx"'),
    ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
    ("1Ms", 'time: unknown unit "Ms" in duration "1Ms"'),
]


@pytest.mark.parametrize(("text", "want"), GO_DURATIONS)
def test_go_parse_duration_matches_go(text, want):
    """Every boundary of time.ParseDuration: the int64 range, the overflow of an integer
    or a fraction, float64 fractions, and which error Go reports first."""
    if isinstance(want, int):
        assert golang.go_parse_duration(text) == want
    else:
        with pytest.raises(ValueError) as e:
            golang.go_parse_duration(text)
        assert str(e.value) == want


# robfig/cron v3.0.1's own error for each expression (ParseStandard's message, from the
# oracle in tests/oracle), and the field it is about.
ROBFIG_ERRORS = [
    ("0 0 * * 9223372036854775808", "day-of-week",
     'failed to parse int from 9223372036854775808: strconv.Atoi: parsing '
     '"9223372036854775808": value out of range'),
    ("0 0 * * 9223372036854775807", "day-of-week",
     "end of range (9223372036854775807) above maximum (6): 9223372036854775807"),
    ("0 0 * * */-9223372036854775808", "day-of-week",
     "negative number (-9223372036854775808) not allowed: -9223372036854775808"),
    ("0 0 * * */-9223372036854775809", "day-of-week",
     'failed to parse int from -9223372036854775809: strconv.Atoi: parsing '
     '"-9223372036854775809": value out of range'),
    ("0 0 * * 1/-1", "day-of-week", "negative number (-1) not allowed: -1"),
    ("5/0 * * * *", "minute", "step of range should be a positive number: 5/0"),
    ("0 1-2/0 * * *", "hour", "step of range should be a positive number: 1-2/0"),
    ("1/2/3 * * * *", "minute", "too many slashes: 1/2/3"),
    ("0 0 1-2-3 * *", "day-of-month", "too many hyphens: 1-2-3"),
    ("0 0 * a *", "month", 'failed to parse int from a: strconv.Atoi: parsing "a": invalid syntax'),
    ("1- * * * *", "minute", 'failed to parse int from : strconv.Atoi: parsing "": invalid syntax'),
    ("+-1 * * * *", "minute",
     'failed to parse int from +: strconv.Atoi: parsing "+": invalid syntax'),
    ("0x5 * * * *", "minute",
     'failed to parse int from 0x5: strconv.Atoi: parsing "0x5": invalid syntax'),
    ("\u0661 * * * *", "minute",  # an Arabic-Indic one is not an ASCII digit
     'failed to parse int from \u0661: strconv.Atoi: parsing "\u0661": invalid syntax'),
    ("5-* * * * *", "minute",
     'failed to parse int from *: strconv.Atoi: parsing "*": invalid syntax'),
    ("60 * * * *", "minute", "end of range (60) above maximum (59): 60"),
    ("0 24 * * *", "hour", "end of range (24) above maximum (23): 24"),
    ("0 0 0 * *", "day-of-month", "beginning of range (0) below minimum (1): 0"),
    ("0 0 32 * *", "day-of-month", "end of range (32) above maximum (31): 32"),
    ("0 0 * 0 *", "month", "beginning of range (0) below minimum (1): 0"),
    ("0 0 * 13 *", "month", "end of range (13) above maximum (12): 13"),
    ("0 0 * * SUN-7", "day-of-week", "end of range (7) above maximum (6): SUN-7"),
    ("5-4 * * * *", "minute", "beginning of range (5) beyond end of range (4): 5-4"),
    ("* * * *", None, "expected exactly 5 fields, found 4: [* * * *]"),
    ("0 0 1 1 1 1", None, "expected exactly 5 fields, found 6: [0 0 1 1 1 1]"),
    ("   ", None, "expected exactly 5 fields, found 0: []"),
    ("", None, "empty spec string"),
    ("@foo", None, "unrecognized descriptor: @foo"),
    ("@every", None, "unrecognized descriptor: @every"),
    ("@every ", None, 'failed to parse duration @every : time: invalid duration ""'),
    ("@every 1x", None,
     'failed to parse duration @every 1x: time: unknown unit "x" in duration "1x"'),
    ("TZ=Mars/X 0 0 * * *", None, "provided bad location Mars/X: unknown time zone Mars/X"),
    ("TZ=../x 0 0 * * *", None, "provided bad location ../x: time: invalid location name"),
    ("TZ=/etc/x 0 0 * * *", None, "provided bad location /etc/x: time: invalid location name"),
    ("TZ=\\x 0 0 * * *", None, "provided bad location \\x: time: invalid location name"),
    ("CRON_TZ=TZ=UTC 0 9 * * *", None,  # the first "=" ends the prefix
     "provided bad location TZ=UTC: unknown time zone TZ=UTC"),
    ("TZ=UTC @daily\x1c", None, "unrecognized descriptor: @daily\x1c"),  # not Go space
    ("H * * * *", "minute",
     'failed to parse int from H: strconv.Atoi: parsing "H": invalid syntax'),
    ("5A * * * *", "minute",
     'failed to parse int from 5A: strconv.Atoi: parsing "5A": invalid syntax'),
    ("0 0 * * fr\u0131", "day-of-week",
     'failed to parse int from fr\u0131: strconv.Atoi: parsing "fr\u0131": invalid syntax'),
]


@pytest.mark.parametrize(("expr", "field", "reason"), ROBFIG_ERRORS)
def test_rejections_give_robfigs_own_message(expr, field, reason):
    """The reason is robfig's error word for word; the field is the one robfig was
    reading; the message leads with the field."""
    with pytest.raises(cron.CronError) as e:
        cron.parse(expr, allow_tz_prefix=True)
    assert (e.value.reason, e.value.field, e.value.expr) == (reason, field, expr)
    assert str(e.value) == (f"{field} field: {reason}" if field else reason)


# --- time zones: Go's time.LoadLocation for a TZ= prefix, and evaluation zones ----------


def test_cron_error_defaults():
    """A CronError about the whole expression: no field, no expression until parse adds
    it, and the reason alone as its message."""
    e = cron.CronError("empty spec string")
    assert (e.reason, e.field, e.expr, str(e)) == ("empty spec string", None, "", "empty spec "
                                                                                 "string")


def test_names_are_lowered_as_go_lowers_them():
    """strings.ToLower maps U+0130 (dotted capital I) to a plain "i", so robfig reads
    "FRİ" as Friday (the oracle agrees); a dotless "ı" stays as it is: not a name."""
    after = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    assert cron.parse("0 0 * * FR\u0130").next(after) == datetime(2026, 1, 9, tzinfo=UTC)
    with pytest.raises(cron.CronError, match="failed to parse int from fr\u0131"):
        cron.parse("0 0 * * fr\u0131")


def test_naive_times_are_utc():
    """A datetime without a zone is read as UTC."""
    s = cron.parse("0 * * * *")
    assert s.next(datetime(2026, 1, 5, 0, 30)) == datetime(2026, 1, 5, 1, tzinfo=UTC)


# From the robfig oracle: 09:00 every day, evaluated in Asia/Tokyo, after Monday
# 2026-01-05 00:00 UTC; None: robfig rejects the prefix.
@pytest.mark.parametrize(("expr", "first"), [
    ("TZ=America/./New_York 0 9 * * *", datetime(2026, 1, 5, 14, tzinfo=UTC)),  # a path
    ("TZ= 0 9 * * *", datetime(2026, 1, 5, 9, tzinfo=UTC)),  # "" is UTC
    ("TZ=UTC 0 9 * * *", datetime(2026, 1, 5, 9, tzinfo=UTC)),
    ("TZ=Local 0 9 * * *", datetime(2026, 1, 6, 0, tzinfo=UTC)),  # the evaluation zone
    ("CRON_TZ=Local @daily", datetime(2026, 1, 5, 15, tzinfo=UTC)),
    ("TZ=America/New_York/ 0 9 * * *", None),  # not a directory
    ("TZ=America/. 0 9 * * *", None),  # a directory
    ("TZ=America 0 9 * * *", None),
    ("TZ=Mars/Phobos 0 9 * * *", None),
])
def test_tz_prefix_locations(expr, first):
    """What time.LoadLocation makes of each prefix: '' and UTC, Local, a zone file by a
    path that is not a normalised key, and the names it refuses."""
    if first is None:
        with pytest.raises(cron.CronError, match="provided bad location"):
            cron.parse(expr, allow_tz_prefix=True)
        return
    s = cron.parse(expr, allow_tz_prefix=True)
    assert s.next(datetime(2026, 1, 5, tzinfo=UTC), "Asia/Tokyo") == first


def test_a_zone_file_path_is_searched_in_every_zoneinfo_folder(monkeypatch):
    """Go opens a non-normalised zone name as a path under each zone folder in turn: a
    folder without it is skipped. The zone keeps the name as written."""
    monkeypatch.setattr(cron, "zoneinfo_path", lambda: ("/nonexistent/zoneinfo",
                                                        *cron.TZPATH))
    s = cron.parse("TZ=America/./New_York 0 9 * * *", allow_tz_prefix=True)
    assert s.next(datetime(2026, 7, 1, tzinfo=UTC)) == datetime(2026, 7, 1, 13, tzinfo=UTC)
    assert describe(s) == "every day at 09:00 America/./New_York"
    assert cron.zoneinfo_path()[1:] == tuple(cron.TZPATH)


def test_utc_needs_no_zone_database(monkeypatch):
    """Go's LoadLocation("UTC") and LoadLocation("") read no file, and the advisor's
    zone("UTC") neither: both work on a machine with no zone database at all."""
    import sys
    import zoneinfo

    for module in ["tzdata", *(m for m in sys.modules if m.startswith("tzdata."))]:
        monkeypatch.setitem(sys.modules, module, None)  # no tzdata package either
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    cron.zone.cache_clear()
    try:
        with pytest.raises(zoneinfo.ZoneInfoNotFoundError):
            zoneinfo.ZoneInfo("UTC")  # the machine really has none
        for expr in ("TZ=UTC 0 9 * * *", "CRON_TZ= 0 9 * * *"):
            s = cron.parse(expr, allow_tz_prefix=True)
            assert s.next(datetime(2026, 1, 5, tzinfo=UTC)) == datetime(2026, 1, 5, 9,
                                                                        tzinfo=UTC)
        assert cron.zone("UTC") is UTC and cron.zone("") is UTC and cron.zone(None) is UTC
        assert cron.parse("0 9 * * *").next(datetime(2026, 1, 5, tzinfo=UTC), "UTC") == \
            datetime(2026, 1, 5, 9, tzinfo=UTC)
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
        cron.zone.cache_clear()


@pytest.mark.parametrize(("name", "offset"), [
    ("+05:30", timedelta(hours=5, minutes=30)), ("UTC-08:00", timedelta(hours=-8)),
    ("-0800", timedelta(hours=-8)), ("UTC+0545", timedelta(hours=5, minutes=45)),
])
def test_fixed_offset_zones(name, offset):
    """An evaluation zone written as a fixed offset, with or without UTC and a colon."""
    assert cron.zone(name).utcoffset(None) == offset


@pytest.mark.parametrize("name", ["Mars/Base", "../etc/passwd", "/etc/localtime", "\\UTC",
                                  "+5:30", "UTC+05:3"])
def test_unknown_evaluation_zones(name):
    """Anything else must be an IANA name; a path is refused."""
    with pytest.raises(cron.CronError, match=r"^unknown time zone "):
        cron.zone(name)


def test_zone_objects_pass_through():
    tokyo = ZoneInfo("Asia/Tokyo")
    assert cron.zone(tokyo) is tokyo and cron.zone("Asia/Tokyo") == tokyo


def test_parsed_schedules_keep_their_expression_and_zone():
    """``expr`` is the text as given, for every kind of schedule; ``location`` is the
    TZ= prefix's zone (descriptors too), or None: the evaluation zone."""
    for expr in ("0 9 * * *", "@daily", "@every 1h", "TZ=Asia/Tokyo @daily",
                 "CRON_TZ=Asia/Tokyo 0 9 * * *"):
        assert cron.parse(expr, allow_tz_prefix=True).expr == expr
    assert cron.parse("0 9 * * *").location is None
    assert cron.parse("@daily").location is None
    s = cron.parse("TZ=Asia/Tokyo @daily", allow_tz_prefix=True)
    assert s.location == ZoneInfo("Asia/Tokyo")
    # midnight in Tokyo, whatever the evaluation zone (the oracle agrees)
    assert s.next(datetime(2026, 1, 5, tzinfo=UTC), "America/New_York") == datetime(
        2026, 1, 5, 15, tzinfo=UTC)


def test_longhorn_and_prefix_messages():
    """Longhorn's webhook refuses any TZ= prefix; a prefix with no schedule after it
    (robfig panics on it) is refused too."""
    with pytest.raises(cron.CronError) as e:
        cron.parse("TZ=UTC 0 * * * *")
    assert str(e.value) == ("a TZ= or CRON_TZ= prefix is not accepted by Longhorn: "
                            "RecurringJob schedules run in the controller's time zone")
    for expr in ("TZ=UTC", "CRON_TZ="):
        with pytest.raises(cron.CronError) as e:
            cron.parse(expr, allow_tz_prefix=True)
        assert str(e.value) == "a time zone prefix must be followed by a schedule"


@pytest.mark.parametrize(("expr", "message"), [
    ("0 0 0 * * * *", "expected 5 to 6 fields, found 7: [0 0 0 * * * *]"),
    ("0 0 * *", "expected 5 to 6 fields, found 4: [0 0 * *]"),
])
def test_six_field_parser_field_counts(expr, message):
    """robfig's parser with seconds and an optional day-of-week (its own tests' parser)
    takes five or six fields, and says so."""
    with pytest.raises(cron.CronError) as e:
        cron.parse(expr, seconds=True)
    assert str(e.value) == message
