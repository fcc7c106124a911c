"""advisor.schedules pinned down: Kubernetes' Forbid rule, ``check``, descriptions and
expansion, with expected values worked out by hand from robfig/cron v3.0.1's rules and
Kubernetes' CronJob controller (``concurrencyPolicy: Forbid``, no
``startingDeadlineSeconds``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from advisor import cron
from advisor.schedules import (
    CronCheck,
    Forbid,
    check,
    describe,
    fire_times,
    forbid_runs,
    interval_of,
)

T0 = pd.Timestamp("2026-01-05T00:00:00Z")  # a Monday


def _at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def _hourly(n: int) -> np.ndarray:
    return np.array([np.datetime64("2026-01-05T00:00:00") + np.timedelta64(h, "h")
                     for h in range(n)], dtype="datetime64[s]")


# --- Forbid, step by step ----------------------------------------------------------------


def test_forbid_state_machine_keeps_only_the_latest_waiting_slot():
    """Kubernetes' Forbid: the first slot starts; slots firing during the run wait, each
    newer one displacing (losing for good) the one before; the run's end starts the latest
    one, and the end of that run, with nothing waiting, leaves the job idle."""
    f = Forbid()
    assert f.fire("a") == (True, None) and f.active and f.waiting is None
    assert f.fire("b") == (False, None) and f.waiting == "b" and f.skipped == []
    assert f.fire("c") == (False, "b") and f.waiting == "c" and f.skipped == ["b"]
    assert f.fire("d") == (False, "c") and f.skipped == ["b", "c"]
    assert f.end() == "d" and f.active and f.waiting is None  # d's run starts now
    assert f.end() is None and not f.active and f.waiting is None
    assert f.fire("e") == (True, None) and f.skipped == ["b", "c"]


# --- forbid_runs: the frames it returns ----------------------------------------------------


def test_forbid_runs_frames_have_their_columns_even_when_empty():
    """The documented columns, in order, whatever happened: no slots at all, or slots
    that all ran (nothing skipped)."""
    runs_cols = ["slot", "start", "end", "late_s", "skipped_before"]
    none = forbid_runs([], [])
    assert list(none.runs.columns) == runs_cols and none.runs.empty
    assert list(none.skipped.columns) == ["slot", "blocked_by_run"] and none.skipped.empty
    assert np.isnan(none.effective_interval_s)
    plan = forbid_runs(_hourly(2), [600, 600])  # 10-minute runs: nothing waits
    assert list(plan.runs.columns) == runs_cols
    assert list(plan.skipped.columns) == ["slot", "blocked_by_run"] and plan.skipped.empty
    assert list(plan.runs["end"]) == [_at(10), _at(70)]
    assert list(plan.runs["skipped_before"]) == [0, 0]
    assert list(plan.runs["late_s"]) == [0, 0]


def test_forbid_runs_counts_every_slot_lost_before_a_run():
    """Every 10 minutes from 00:00, the first run lasting 45 minutes: 00:10, 00:20 and
    00:30 are lost, 00:40 starts at 00:45 (5 minutes late) standing for three lost slots;
    the next runs (1 minute) start on time with none lost."""
    slots = np.array([np.datetime64("2026-01-05T00:00:00") + np.timedelta64(10 * k, "m")
                      for k in range(7)], dtype="datetime64[s]")
    plan = forbid_runs(slots, [45 * 60, 60, 60, 60])
    assert list(plan.runs["slot"]) == [_at(0), _at(40), _at(50), _at(60)]
    assert list(plan.runs["start"]) == [_at(0), _at(45), _at(50), _at(60)]
    assert list(plan.runs["skipped_before"]) == [0, 3, 0, 0]
    assert list(plan.skipped["slot"]) == [_at(10), _at(20), _at(30)]
    assert list(plan.skipped["blocked_by_run"]) == [0, 0, 0]


def test_forbid_runs_gives_nanosecond_utc_times_whatever_the_slots():
    """The frames' times are ``datetime64[ns, UTC]`` (advisor.schema's times), also for
    slots in whole seconds as :func:`fire_times` gives them."""
    plan = forbid_runs(_hourly(3), [70 * 60, 600, 600])
    for col in ("slot", "start", "end"):
        assert plan.runs[col].dtype == "datetime64[ns, UTC]"
    assert list(plan.runs["start"]) == [_at(0), _at(70), _at(120)]


def test_forbid_runs_names_the_run_that_needs_a_duration():
    """Two hourly slots and one duration: the second run is the one without a length."""
    with pytest.raises(ValueError, match=r"^durations_s has 1 entries; run 2 needs one more$"):
        forbid_runs(_hourly(2), [60])


def test_forbid_runs_sync_delay_applies_to_waiting_slots_only():
    """``sync_delay_s``: a run that waited starts that long after the previous run ends
    (the controller's next sync); a slot that fires on an idle job starts at its time.
    Hourly slots, the first run 70 minutes: the 01:00 run starts at 01:10:30."""
    plan = forbid_runs(_hourly(3), [70 * 60, 600, 600], sync_delay_s=30)
    assert list(plan.runs["start"]) == [_at(0), _at(70.5), _at(120)]
    assert list(plan.runs["late_s"]) == [0, 630, 0]
    assert list(plan.runs["end"]) == [_at(70), _at(80.5), _at(130)]


def test_a_slot_firing_as_the_run_ends_waits_for_the_next_sync():
    """A slot firing at the very instant the active run ends still finds it active (the
    controller sees the Job's completion later), so under Forbid it waits and starts at
    the next sync, ``sync_delay_s`` after the end: hourly slots, a first run of exactly
    60 minutes, a 15 s sync delay: the 01:00 run starts at 01:00:15, 15 s late."""
    plan = forbid_runs(_hourly(2), [3600, 600], sync_delay_s=15)
    assert list(plan.runs["start"]) == [_at(0), _at(60.25)]
    assert list(plan.runs["late_s"]) == [0, 15]
    assert plan.skipped.empty


# --- check, as `advisor cron` reports ----------------------------------------------------


def test_check_gives_five_times_by_default():
    """``n`` defaults to five: hourly from Monday 00:00 gives 01:00 to 05:00."""
    c = check("0 * * * *", "2026-01-05T00:00:00Z")
    assert c.next == [datetime(2026, 1, 5, h, tzinfo=UTC) for h in range(1, 6)]
    assert c.tz == "UTC" and c.expr == "0 * * * *"


def test_check_defaults_to_now_whatever_the_machines_zone(monkeypatch):
    """Without ``after``, the times follow the current instant, not the machine's wall
    clock read as UTC: with the machine in UTC+14, an every-minute schedule still fires
    within a minute of now."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    try:
        before = time.time()
        c = check("* * * * *", n=1)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert len(c.next) == 1
    assert before < c.next[0].timestamp() <= before + 61


def test_check_of_a_schedule_that_never_fires():
    """robfig's Next finds nothing within five years for 30 February: the schedule is
    valid, with no fire times."""
    c = check("0 0 30 2 *", "2026-01-01T00:00:00Z", tz="Europe/Berlin")
    assert isinstance(c, CronCheck)
    assert c.valid and c.longhorn and c.kubernetes and c.error is None
    assert c.next == [] and c.description == "never: no day matches"
    assert c.tz == "Europe/Berlin"


def test_check_of_a_rejected_schedule():
    """Rejected by both parsers (day-of-week 7 is above robfig's maximum 6): no times,
    no description, the expression and the zone as given."""
    c = check("0 0 * * 7", "2026-01-01T00:00:00Z")
    assert c == CronCheck("0 0 * * 7", False,
                          "day-of-week field: end of range (7) above maximum (6): 7",
                          False, False, "", [], "UTC")
    c = check("0 0 * * 7", "2026-01-01T00:00:00Z", tz="Asia/Tokyo")
    assert c.tz == "Asia/Tokyo" and c.expr == "0 0 * * 7"


def test_check_of_a_schedule_only_kubernetes_accepts():
    """A TZ= prefix: Kubernetes' parser reads it, Longhorn's webhook refuses it."""
    c = check("TZ=UTC 0 * * * *", "2026-01-01T00:00:00Z")
    assert not c.valid and not c.longhorn and c.kubernetes
    assert "not accepted by Longhorn" in c.error and c.next == [] and c.description == ""
    assert c.to_dict() == {"valid": False, "error": c.error, "description": "", "next": [],
                           "accepted_by": {"longhorn": False, "kubernetes": True}}


def test_check_to_dict_and_every():
    """``@every 90m`` counts from ``after``: 01:30 and 03:00; the JSON form writes the
    times as RFC 3339 in UTC."""
    c = check("@every 90m", "2026-01-05T00:00:00Z", 2)
    assert c.next == [datetime(2026, 1, 5, 1, 30, tzinfo=UTC),
                      datetime(2026, 1, 5, 3, 0, tzinfo=UTC)]
    assert c.to_dict() == {
        "valid": True, "error": None,
        "description": "every 1h30m, counted from the previous run",
        "next": ["2026-01-05T01:30:00Z", "2026-01-05T03:00:00Z"],
        "accepted_by": {"longhorn": True, "kubernetes": True}}


@pytest.mark.parametrize(("expr", "text"), [
    ("@every 1h0m5s", "every 1h5s, counted from the previous run"),
    ("@every 45s", "every 45s, counted from the previous run"),
    ("@every 10m", "every 10m, counted from the previous run"),
    ("@every 1ms", "every 1s, counted from the previous run"),  # robfig: at least 1 s
])
def test_describe_every(expr, text):
    """The delay in hours, minutes and seconds, zero parts left out."""
    assert describe(expr) == text


def test_fire_times_of_every_from_an_anchor():
    """``@every 1h`` anchored at 00:20: fire times 01:20, 02:20, ... strictly inside the
    window (the window's edges are excluded)."""
    got = fire_times("@every 1h", "2026-01-05T01:20:00Z", "2026-01-05T04:20:00Z",
                     anchor="2026-01-05T00:20:00Z")
    want = np.array(["2026-01-05T02:20:00", "2026-01-05T03:20:00"], dtype="datetime64[s]")
    np.testing.assert_array_equal(got, want)
    assert cron.parse("@every 1h").next_unix(100, cron.zone(None)) == 3700


# --- descriptions --------------------------------------------------------------------------


# What each schedule means by robfig's rules, worked by hand, and the words for it.
@pytest.mark.parametrize(("expr", "text"), [
    # a field that matches nothing: robfig's Next never finds a time
    (", 0 * * *", "never: no day matches"),
    ("0 , * * *", "never: no day matches"),
    ("0 0 * , *", "never: no day matches"),
    ("0 0 1 , 1", "never: no day matches"),  # no month, even though Mondays are listed
    ("0 0 * * ,", "never: no day matches"),  # a star day field ANDs with an empty one
    ("0 0 , * ?", "never: no day matches"),
    ("0 0 31 4,6 *", "never: no day matches"),  # April and June have 30 days
    # day fields, neither a star: either matches; an empty one never does
    ("0 0 , * 0", "Sundays at 00:00 UTC"),
    ("0 0 1,2 * ,", "on days 1 and 2 of the month at 00:00 UTC"),
    ("0 0 * * 1,2", "Mondays and Tuesdays at 00:00 UTC"),
    ("0 0 * * 1-3,5", "Mondays to Wednesdays and Fridays at 00:00 UTC"),
    ("0 0 15 6 1", "on day 15 of the month or on Mondays in June at 00:00 UTC"),
    ("0 0 1-31 * 1", "every day at 00:00 UTC"),  # every day of the month, OR Mondays
    ("0 0 */1 * 1", "Mondays at 00:00 UTC"),  # */1 keeps the star: AND
    ("0 0 5 * */1", "on day 5 of the month at 00:00 UTC"),
    # the last day of the longest month
    ("0 0 31 1 *", "on January 31 at 00:00 UTC"),
    ("0 0 29 2 *", "on February 29 at 00:00 UTC"),
    ("0 0 1 1,2 *", "on day 1 of the month in January and February at 00:00 UTC"),
    ("0 0 * 1-3 *", "every day at 00:00 UTC in January to March"),
    # days of the month in steps that run to the month's end, and ones that do not
    ("0 0 */3 * *", "on every 3rd day of the month from day 1 at 00:00 UTC"),
    ("0 0 */8 * *", "on every 8th day of the month from day 1 at 00:00 UTC"),  # 1,9,17,25
    ("0 0 2/2 * *", "on every 2nd day of the month from day 2 at 00:00 UTC"),  # to 30
    ("0 0 */15 * *", "on days 1, 16 and 31 of the month at 00:00 UTC"),  # three days
    ("0 0 3-24/7 * *", "on days 3, 10, 17 and 24 of the month at 00:00 UTC"),  # 31 missing
    ("0 0 28-31 * *", "on days 28 to 31 of the month at 00:00 UTC"),
    ("0 0 1,3,5,30 * *", "on days 1, 3, 5 and 30 of the month at 00:00 UTC"),
    # minutes and hours
    ("* * * * *", "every minute"),
    ("*/15 * * * *", "every 15 minutes"),
    ("*/7 * * * *", "every hour at minutes 0, 7, 14, 21, 28, 35, 42, 49 and 56"),
    ("*/45 * * * *", "every hour at minutes 0 and 45"),  # 0, 45: not evenly spaced
    ("*/30 * * * *", "every 30 minutes"),  # 0 and 30: two values, evenly spaced
    ("0,20,40 * * * *", "every 20 minutes"),
    ("0 0,12 * * *", "every 12 hours at minute 0"),
    ("5,35 * * * *", "every hour at minutes 5 and 35"),
    ("0 */2 * * *", "every 2 hours at minute 0"),
    ("0 */3 * * 6", "every 3 hours at minute 0 on Saturdays"),
    ("0 */5 * * *", "every day at 00:00, 05:00, 10:00, 15:00 and 20:00 UTC"),
    ("0 1-6 * * *", "every day at 01:00, 02:00, 03:00, 04:00, 05:00 and 06:00 UTC"),
    ("0 1-7 * * *", "every day at minute 0 past hours 1 to 7 UTC"),
    ("*/5 1 * * *", "every day at minutes 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50 and 55 "
                    "past hour 1 UTC"),
    ("0,1 1,2,3,5 * * *", "every day at minutes 0 and 1 past hours 1 to 3 and 5 UTC"),
    ("*/10 3,15 * * *", "every day at minutes 0, 10, 20, 30, 40 and 50 past hours 3 and 15 "
                        "UTC"),  # two hours are plural too
    ("0 9-17 * * 1-5", "Mondays to Fridays at minute 0 past hours 9 to 17 UTC"),
    ("*/15 * * 1 *", "every 15 minutes in January"),
    ("*/15 * 1 * *", "every 15 minutes on day 1 of the month"),
    ("0 * * * 1-5", "every hour at minute 0 on Mondays to Fridays"),
    ("TZ=Asia/Tokyo 0 9 * * *", "every day at 09:00 Asia/Tokyo"),
])
def test_describe_says_what_robfig_fires(expr, text):
    """Descriptions of the minutes, hours and days robfig's Next fires on."""
    assert describe(expr) == text
    assert describe(expr, "Europe/Berlin") == text.replace(" UTC", " Europe/Berlin")


@pytest.mark.parametrize(("expr", "text"), [
    ("30 0 0 * * *", "every day at 00:00 UTC, second 30"),
    ("*/20 0 0 * * *", "every day at 00:00 UTC, seconds 0, 20 and 40"),
    ("0,30 * * * * *", "every minute, seconds 0 and 30"),
    (", 0 0 * * *", "never: no day matches"),
])
def test_describe_seconds(expr, text):
    """robfig's six-field form (seconds first): seconds other than 0 are said."""
    assert describe(cron.parse(expr, seconds=True)) == text


def test_describe_names_utc_whatever_its_spelling():
    """Etc/UTC is UTC; a fixed offset is named by its offset."""
    assert describe("0 2 * * *", "Etc/UTC") == "every day at 02:00 UTC"
    assert describe("0 2 * * *", "-08:00") == "every day at 02:00 UTC-08:00"


# --- fire_times at the edges ----------------------------------------------------------------


def _utc_times(*texts: str) -> np.ndarray:
    return np.array(texts, dtype="datetime64[s]")


def test_fire_times_of_an_empty_window_is_empty():
    """An end at or before the start: no fire times, still ``datetime64[s]``."""
    for end in ("2026-01-05T01:00:00Z", "2026-01-05T02:00:00Z"):
        got = fire_times("0 * * * *", "2026-01-05T02:00:00Z", end)
        assert got.dtype == np.dtype("datetime64[s]") and got.shape == (0,)


def test_fire_times_from_a_start_between_two_seconds():
    """Strictly after 23:59:59.999999999 comes midnight (robfig's Next rounds up to the
    next whole second), so a daily midnight schedule fires at 00:00:00."""
    got = fire_times("0 0 * * *", "2026-01-04T23:59:59.999999999Z", "2026-01-05T12:00:00Z")
    np.testing.assert_array_equal(got, _utc_times("2026-01-05T00:00:00"))


def test_fire_times_before_1970():
    """A window over the Unix epoch: 18:00 on 31 December 1969 and on 1 January 1970."""
    got = fire_times("0 18 * * *", "1969-12-31T12:00:00Z", "1970-01-02T00:00:00Z")
    np.testing.assert_array_equal(got, _utc_times("1969-12-31T18:00:00", "1970-01-01T18:00:00"))


def test_fire_times_of_seconds():
    """robfig's six-field form: second 30 of 00:00 fires at 00:00:30, once a day."""
    got = fire_times(cron.parse("30 0 0 * * *", seconds=True), "2026-01-05T00:00:00Z",
                     "2026-01-06T00:00:00Z")
    np.testing.assert_array_equal(got, _utc_times("2026-01-05T00:00:30"))


def test_fire_times_of_every_without_an_anchor_count_from_the_start():
    """``@every 90m`` with no anchor counts from the window's start: 01:30 and 03:00."""
    got = fire_times("@every 90m", "2026-01-05T00:00:00Z", "2026-01-05T04:00:00Z")
    np.testing.assert_array_equal(got, _utc_times("2026-01-05T01:30:00", "2026-01-05T03:00:00"))


def test_fire_times_of_every_anchored_after_the_start():
    """A job created at 01:00 with ``@every 1h`` first fires at 02:00 (a delay after its
    creation), not at 01:00, even when asked from midnight."""
    got = fire_times("@every 1h", "2026-01-05T00:00:00Z", "2026-01-05T03:30:00Z",
                     anchor="2026-01-05T01:00:00Z")
    np.testing.assert_array_equal(got, _utc_times("2026-01-05T02:00:00", "2026-01-05T03:00:00"))


def test_fire_times_of_every_anchored_before_1970():
    """``@every 1h`` from 00:30 on 31 December 1969: on the half hours of 1 January."""
    got = fire_times("@every 1h", "1970-01-01T00:00:00Z", "1970-01-01T03:00:00Z",
                     anchor="1969-12-31T00:30:00Z")
    np.testing.assert_array_equal(got, _utc_times("1970-01-01T00:30:00", "1970-01-01T01:30:00",
                                                  "1970-01-01T02:30:00"))


def test_fire_times_at_a_dst_change_exclude_the_end():
    """Europe/Berlin springs forward at 01:00 UTC on 29 March 2026; hourly at minute 0
    fires on every UTC hour (CET and CEST are whole hours). From 00:00 to 03:00 UTC:
    01:00 and 02:00 only (the window's edges excluded); robfig's Next agrees. A yearly
    schedule has no fire time there."""
    got = fire_times("0 * * * *", "2026-03-29T00:00:00Z", "2026-03-29T03:00:00Z",
                     "Europe/Berlin")
    np.testing.assert_array_equal(got, _utc_times("2026-03-29T01:00:00", "2026-03-29T02:00:00"))
    got = fire_times("0 0 1 1 *", "2026-03-29T00:00:00Z", "2026-03-29T03:00:00Z",
                     "Europe/Berlin")
    assert got.dtype == np.dtype("datetime64[s]") and got.shape == (0,)


def test_fire_times_stop_where_robfig_gives_up():
    """robfig's Next looks five years ahead (to the end of the year five years on): from
    June 2098 that is 2103, and 29 February 2104 is past it, so the job never fires
    again; from June 2099 it finds 2104-02-29."""
    got = fire_times("0 0 29 2 *", "2098-06-01T00:00:00Z", "2105-01-01T00:00:00Z")
    assert got.shape == (0,)
    got = fire_times("0 0 29 2 *", "2099-06-01T00:00:00Z", "2105-01-01T00:00:00Z")
    np.testing.assert_array_equal(got, _utc_times("2104-02-29T00:00:00"))


def test_fire_times_leave_robfig_next_to_the_days_around_dst_changes(monkeypatch):
    """Only around an offset change (a day or so each side) is robfig's Next called; the
    rest is computed at once. Europe/Berlin changes twice in 2026, so a year of
    ``*/5 * * * *`` (a fire time every five minutes of the 365 days after the start, which
    is excluded: the changes move whole hours) needs Next for at most two times three
    days of them."""
    calls = []
    real = cron.SpecSchedule.next_unix

    def counted(self, after, tz):
        calls.append(after)
        return real(self, after, tz)

    monkeypatch.setattr(cron.SpecSchedule, "next_unix", counted)
    got = fire_times("*/5 * * * *", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z",
                     "Europe/Berlin")
    assert len(got) == 365 * 288 - 1  # the start itself is excluded
    assert 0 < len(calls) <= 2 * 3 * 288


def test_fire_times_follow_robfig_next_a_day_before_an_offset_change():
    """America/Sitka was UTC+14:58:47 until 1867-10-19T00:31:13Z (the Alaska purchase,
    then -9:01:13). Within a day of that change every fire time is robfig's Next: from
    15:30 local its minute loop truncates on absolute time, 47 s off the wall-clock
    minute, so it steps past 16:00 and first fires at 17:00 local. The times are robfig
    v3.0.1's own (the Go oracle of tests/test_cron_differential.py)."""
    got = fire_times("0 * * * *", "1867-10-18T00:31:13Z", "1867-10-18T05:00:00Z",
                     "America/Sitka")
    np.testing.assert_array_equal(got, _utc_times("1867-10-18T02:01:13", "1867-10-18T03:01:13",
                                                  "1867-10-18T04:01:13"))


def test_fire_times_in_an_offset_with_seconds_follow_robfig():
    """Monrovia kept -0:44:30 until 1972. robfig's Next truncates to the minute in
    absolute time, so from 00:10Z it misses 00:44:30Z (local midnight) and first fires at
    01:44:30Z (the Go oracle's answer); wall-clock matching gave 00:44:30Z too. In a
    whole-minute era the wall clock and Next agree again."""
    got = fire_times("0 * * * *", "1971-06-01T00:10:00Z", "1971-06-01T04:00:00Z",
                     "Africa/Monrovia")
    assert got.astype(str).tolist() == ["1971-06-01T01:44:30", "1971-06-01T02:44:30",
                                        "1971-06-01T03:44:30"]
    now = fire_times("0 * * * *", "2026-06-01T00:10:00Z", "2026-06-01T03:00:00Z",
                     "Africa/Monrovia")
    assert now.astype(str).tolist() == ["2026-06-01T01:00:00", "2026-06-01T02:00:00"]
    # the end is excluded there too, and a window without a fire time is empty
    assert fire_times("0 * * * *", "1971-06-01T00:10:00Z", "1971-06-01T03:44:30Z",
                      "Africa/Monrovia").astype(str).tolist()[-1] == "1971-06-01T02:44:30"
    empty = fire_times("0 0 1 1 *", "1971-06-01T00:00:00Z", "1971-07-01T00:00:00Z",
                       "Africa/Monrovia")
    assert empty.dtype == np.dtype("datetime64[s]") and len(empty) == 0


def test_fire_times_go_on_through_the_end_of_an_offset_with_seconds():
    """Monrovia moved from -0:44:30 to UTC on 1972-01-07: noon local is 12:44:30Z before
    and 12:00Z after; through the change itself robfig's Next decides (it skips the 7th
    and 8th), so fire_times is exactly the Next sequence, after the change too."""
    got = fire_times("0 12 * * *", "1971-12-28T00:00:00Z", "1972-01-12T00:00:00Z",
                     "Africa/Monrovia")
    s, t, want = cron.parse("0 12 * * *"), datetime(1971, 12, 28, tzinfo=UTC), []
    while (t := s.next(t, "Africa/Monrovia")) < datetime(1972, 1, 12, tzinfo=UTC):
        want.append(np.datetime64(t.replace(tzinfo=None), "s"))
    assert got.tolist() == want
    assert str(got[0]) == "1971-12-28T12:44:30" and str(got[-1]) == "1972-01-11T12:00:00"


@pytest.mark.parametrize(("cron", "even", "median"), [
    ("0 * * * *", 3600.0, 3600.0),
    ("*/15 * * * *", 900.0, 900.0),
    ("@every 90m", 5400.0, 5400.0),
    ("0 3 * * 1", 7 * 86400.0, 7 * 86400.0),
    ("*/7 * * * *", None, 420.0),  # minutes 0, 7, ..., 56: a 4-minute gap each hour
    ("0 0,6,12 * * *", None, 6 * 3600.0),
    ("0 0 */2 * *", None, 2 * 86400.0),  # odd days: month ends break the rhythm
    ("0 0 29 2 *", None, None),  # no 29 February in the 400 days looked at
    ("0 0 1 1 *", None, None),  # one 1 January: no gap to measure
    ("0 0 4 1 *", 365 * 86400.0, 365 * 86400.0),  # the first fire is where it looks from
])
def test_interval_of(cron, even, median):
    """The gap between fire times when it is always the same (an uneven schedule has
    none, but a median), over 400 days, so that month ends and a year's turn count."""
    assert interval_of(cron) == even
    assert interval_of(cron, median=True) == median
