"""The exploration API notebooks use: its docstring examples run, and each result is a
DataFrame, an HTML rendering and a chart."""

from __future__ import annotations

import doctest

import pytest
from matplotlib.axes import Axes

import advisor
from advisor import api
from advisor.cron import CronError


def test_the_docstring_examples_run():
    failures, tried = doctest.testmod(api, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried >= 6 and failures == 0


@pytest.fixture(scope="module")
def history() -> advisor.History:
    return advisor.load_history(sample=True)


def test_history_risk_and_what_if_render_and_plot(history):
    assert "sample" in history._repr_html_()
    ax = history.plot("pvc-db-05")
    assert isinstance(ax, Axes) and "pvc-db-05" in ax.get_title()
    d = history.durations("pvc-db-05")
    assert d["started_at"].is_monotonic_increasing and d["duration_s"].max() > 3600
    # every completed backup is drawn, and the fitted quantiles as lines, in order
    done = int((~d["censored"].fillna(False).astype(bool)).sum())
    labels = ax.get_legend_handles_labels()[1]
    assert f"completed ({done})" in labels
    lines = {label.split()[0]: line.get_xdata()[0] for line, label in
             zip(*ax.get_legend_handles_labels(), strict=True)
             if label.split()[0] in ("p50", "p95", "p99")}
    assert list(lines) == ["p50", "p95", "p99"] and lines["p50"] < lines["p95"] < lines["p99"]
    # the incremental fit's p99, as the report shows (DurationFits.preferred)
    inc = history.fits.table.set_index(["volume", "mode"]).loc[("pvc-db-05", "incremental")]
    assert lines["p99"] == pytest.approx(inc["p99_s"] / 60)

    risk = advisor.assess_risk(history, week="2026-W47")
    t = risk.table
    assert t["at_risk"].iloc[0] and "hourly-db" in t.set_index("volume").at["pvc-db-05",
                                                                              "jobs"]
    assert isinstance(risk.plot(top=5), Axes) and "<table" in risk._repr_html_()

    # moving hourly off minute 0 (where daily fires) changes the app volumes' risk
    change = advisor.what_if(history, {"hourly": {"cron": "30 * * * *"}}, week="2026-W47")
    w = change.table
    assert {"p_conflict_per_run_before", "p_conflict_per_run_after", "changed"} <= set(w)
    assert w["changed"].any() and len(w) == len(t)
    assert isinstance(change.plot(top=5), Axes) and "<table" in change._repr_html_()
    # the same change twice is no change: both sides share their draws
    same = advisor.what_if(history, {"hourly": {"cron": "0 * * * *"}}, week="2026-W47")
    assert not same.table["changed"].any()


def test_what_if_refuses_what_it_cannot_change(history):
    with pytest.raises(ValueError, match="no RecurringJob"):
        advisor.what_if(history, {"nightly": {"cron": "0 1 * * *"}})
    with pytest.raises(ValueError, match="cannot change"):
        advisor.what_if(history, {"hourly": {"groups": ["x"]}})
    with pytest.raises(CronError):
        advisor.what_if(history, {"hourly": {"cron": "0 0 * * 7"}})


def test_recommend_and_the_report_from_the_api(history):
    advice = advisor.recommend(history, jobs=["hourly-db"], week="2026-W47")
    [row] = advice.table.to_dict("records")
    assert row["job"] == "hourly-db" and "<table" in advice._repr_html_()
    assert isinstance(advice.plot("hourly-db"), Axes)
    report = advisor.build_report(history, week="2026-W47", detailed=2)
    assert report.meta["week"] == "2026-W47" and len(report.trends) == 2


def test_a_history_prints_short(history):
    text = repr(history)
    assert text.startswith("History('the sample fleet': ") and len(text) < 300
