"""The one wording of numbers (advisor/units.py): durations, probabilities with their
uncertainty, counts and dates, at each threshold, and "n/a" for what is not a number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advisor import units

NAN = float("nan")


@pytest.mark.parametrize(("value", "text"), [
    (None, "n/a"), (NAN, "n/a"), (float("inf"), "n/a"), (pd.NA, "n/a"), ("text", "n/a"),
    ([0.5], "n/a"), (0, "0 %"), (0.01, "1 %"), (0.012345, "1.23 %"), (1, "100 %"),
    (np.float64(0.25), "25 %"), ("0.5", "50 %")])
def test_pct_is_a_percentage_to_three_significant_digits_or_na(value, text):
    """A probability reads as a percentage to three significant digits; anything that
    is not a finite number (missing, NaN, infinite, text, a list) as "n/a"."""
    assert units.percent(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (None, "n/a"), (-float("inf"), "n/a"), (0, "0"), (2.0, "2"), (0.06, "0.06"),
    (0.3126, "0.313"), (1234.5, "1.23e+03")])
def test_num_is_three_significant_digits_or_na(value, text):
    """A count reads to three significant digits (exponent form past 999)."""
    assert units.number(value) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "n/a"), (NAN, "n/a"), (float("inf"), "n/a"), ("soon", "n/a"),
    (0, "0 s"), (89.4, "89 s"), (89.6, "90 s"),          # under 90 s: seconds
    (90, "1.5 min"), (150, "2.5 min"), (151, "2.5 min"),   # to one decimal under 10 min
    (120, "2 min"), (599, "10 min"),                       # (2.0 and 9.98: no ".0")
    (600, "10 min"), (629, "10 min"), (5399, "90 min"),    # whole minutes: 10.48, 89.98
    (5400, "1.5 h"), (5581, "1.6 h"), (172799, "48 h"),    # 1.55028 h; 47.9997 h
    (86400, "24 h"), (172800, "2 d"), (177121, "2.1 d"),   # 2 days and over: days, 2.05001
    (-30, "-30 s"), (-100, "-1.7 min"), (-5400, "-1.5 h"), (-172800, "-2 d")])
def test_dur_picks_seconds_minutes_hours_or_days_at_its_thresholds(seconds, text):
    """A duration reads in seconds under 90 s, minutes (to one decimal under 10 min)
    under 1.5 h, hours under 2 days, days from there, without a trailing ".0"; a
    negative one (a margin) keeps its sign; 0 has none."""
    assert units.duration(seconds) == text


@pytest.mark.parametrize(("when", "text"), [
    (None, ""), (NAN, ""), (float("inf"), ""), (-float("inf"), ""), (pd.NaT, ""),
    (pd.Timestamp("2026-12-03T23:30:00Z"), "2026-12-03"),
    ("2026-01-05T05:00:00+00:00", "2026-01-05")])
def test_when_is_the_date_or_nothing(when, text):
    """A time reads as its date (YYYY-MM-DD); no time (None, NaN, infinite, NaT) as an
    empty cell."""
    assert units.date(when) == text


def test_finite_reads_numbers_and_refuses_everything_else():
    """``finite`` gives a float for a finite number (or its text) and None for
    anything else, whatever error reading it raises."""
    assert units.finite("2.5") == 2.5 and units.finite(np.int64(3)) == 3.0
    assert [units.finite(x) for x in (object(), [1], "x", NAN, None)] == [None] * 5


@pytest.mark.parametrize(("p", "text"), [
    (0.00004, "under 0.01 %"), (0.0001, "0.01 %"), (-0.00004, "under 0.01 %"),
    (0.831682, "83.2 %"), (0.999, "99.9 %")])
def test_a_percentage_says_no_more_than_the_estimate_can(p, text):
    """Under 0.01 % a Monte Carlo estimate is "under 0.01 %", not 0.004 % or 4e-03 %
    (and no markup character: the report need not escape its own figures)."""
    assert units.percent(p) == text
    assert not set(units.percent_pm(p, 0.001)) & set("<>&\"'")


@pytest.mark.parametrize(("p", "se", "text"), [
    (0.831682, 0.00241, "83.2 % ± 0.482"),   # two standard errors: 0.482 points
    (0.05, 0.0125, "5 % ± 2.5"),
    (0.2, None, "20 % ± n/a"), (0.2, NAN, "20 % ± n/a"),  # no standard error: said
    (None, 0.01, "n/a"), (0, 0, "0 % ± 0"),
    (0.00005, 0.00001, "under 0.01 %"),        # not "under 0.01 % ± under 0.01"
    (0.00005, 0.001, "under 0.01 % ± 0.2"), (0.5, 0.00001, "50 % ± under 0.01")])
def test_an_uncertainty_is_two_standard_errors(p, se, text):
    """One convention everywhere, stated in units.UNCERTAINTY: ± two standard errors, in
    percentage points."""
    assert units.percent_pm(p, se) == text
    assert units.UNCERTAINTY.startswith("two standard errors")


def test_the_same_seconds_read_the_same_everywhere():
    """5,400 s was "1.5 h" in the report's table, "90 min" in the chart legend and the
    job reason, and "1h30m" elsewhere; the advice, the trend and the charts now all take
    their wording from units."""
    import importlib

    from advisor.advice.search import intervals
    from advisor.model import trend
    from advisor.report import build, chart_durations, chart_risk, render

    offsets = importlib.import_module("advisor.advice.search.offsets")  # (not the verb)
    for module in (intervals, offsets, build):
        assert module.dur is units.duration
    assert chart_durations.units is units and chart_risk.units is units
    assert trend.units is units and trend.pct_pm is units.percent_pm
    assert render._dur is units.duration and render._pct is units.percent


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (1023, "1023 B"), (2**20, "1.0 MiB"), (351 * 2**30, "351.0 GiB"),
    (2 * 2**40, "2.0 TiB"), (None, "n/a")])
def test_a_size_reads_in_binary_units(n, text):
    """The gate's findings named sizes with a formatter of their own, and durations as
    "6h00m" where the report says "6 h": both now come from units."""
    assert units.size(n) == text
