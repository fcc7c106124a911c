"""advisor.report.charts with real matplotlib (Agg through Figure.savefig): each chart's
title, labels and artists, the empty cases, PNG output, names drawn literally, and no
global state left behind."""

from __future__ import annotations

import io
import math

import matplotlib as mpl
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from advisor.model.concurrency import running_at_once
from advisor.model.trend import forecast_p99
from advisor.report import charts

MONDAY = pd.Timestamp("2026-11-16T00:00:00Z")
NASTY = "pvc-$x^2$_a|b<script>"
BROKEN_MATH = r"pvc-$\frac{$"  # would fail to parse as mathtext


def at(hours: float) -> pd.Timestamp:
    return MONDAY + pd.Timedelta(hours=hours)


def op(volume: str, operation: str, start: float, end: float | None, conflict: str = "none",
       target: str = "default") -> dict:
    return {"volume": volume, "operation": operation, "start": at(start),
            "end": pd.NaT if end is None else at(end), "conflict": conflict,
            "backup_target": target}


def ops_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["volume", "operation", "start", "end", "conflict",
                                     "backup_target"])
    for c in ("start", "end"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df


def texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def legend_texts(ax: Axes) -> list[str]:
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg else []


def vlines(ax: Axes) -> dict[str, float]:
    """Vertical lines drawn with axvline, by label: their x."""
    return {ln.get_label(): ln.get_xdata()[0] for ln in ax.lines
            if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]
            and tuple(ln.get_ydata()) == (0, 1)}


def hlines(ax: Axes) -> dict[str, float]:
    return {ln.get_label(): ln.get_ydata()[0] for ln in ax.lines
            if len(ln.get_ydata()) == 2 and ln.get_ydata()[0] == ln.get_ydata()[1]
            and tuple(ln.get_xdata()) == (0, 1)}


def bars(ax: Axes) -> list:
    return [p for c in ax.containers if isinstance(c, BarContainer) for p in c.patches]


def literal(label) -> bool:
    """Whether a Text is drawn as written (no mathtext)."""
    return label._preprocess_math(label.get_text())[1] is False


@pytest.fixture
def ops() -> pd.DataFrame:
    return ops_frame([
        op("pvc-a", "backup", 2, 3),
        op("pvc-a", "deletion", 3.1, 3.5, conflict="delete_blocked"),
        op(NASTY, "backup", 2.5, 4, target="s3"),
        op(NASTY, "restore", 5, 6),
        op("pvc-c", "backup", 4, None, conflict="pending_behind_deletion"),
    ])


# --- style and output -----------------------------------------------------------------------

def test_chart_style_sets_the_style_inside_and_restores_rcparams():
    before = dict(mpl.rcParams)
    backend = mpl.get_backend()
    with charts.chart_style():
        assert mpl.rcParams["axes.spines.top"] is False
        assert mpl.rcParams["axes.grid"] is True
        assert mpl.rcParams["text.parse_math"] is False
        assert mpl.rcParams["axes.prop_cycle"].by_key()["color"][0] == \
            charts.OKABE_ITO["blue"]
    assert dict(mpl.rcParams) == before
    assert mpl.get_backend() == backend


def test_charts_leave_rcparams_unchanged(ops):
    before = dict(mpl.rcParams)
    charts.timeline(ops)
    charts.risk_ranking(pd.DataFrame(columns=["volume", "p_conflict_per_run",
                                              "p_conflict_per_run_se",
                                              "skipped_runs_per_week"]))
    assert dict(mpl.rcParams) == before


def test_a_new_figure_is_styled_and_not_a_pyplot_figure(ops):
    ax = charts.timeline(ops)
    assert type(ax.figure) is Figure
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()


def test_to_png_returns_a_decodable_png(ops):
    data = charts.to_png(charts.timeline(ops))
    assert data.startswith(b"\x89PNG")
    img = mpimg.imread(io.BytesIO(data), format="png")
    assert img.shape[0] > 0 and img.shape[1] > 0
    fig = charts.timeline(ops).figure
    assert charts.to_png(fig, dpi=50).startswith(b"\x89PNG")


def test_to_png_closes_a_pyplot_figure():
    import matplotlib.pyplot as plt  # (a dependency of the advisor: never skipped)

    fig, ax = plt.subplots()
    charts.duration_distribution(pd.Series([60.0, 120, 180]), ax=ax)
    assert charts.to_png(ax).startswith(b"\x89PNG")
    assert not plt.fignum_exists(fig.number)


def test_a_given_ax_is_drawn_on_and_returned(ops):
    ax = Figure().add_subplot()
    assert charts.timeline(ops, ax=ax) is ax
    assert ax.get_title() == "Backupstore operations per volume (UTC)"


# --- timeline ------------------------------------------------------------------------------

def test_timeline_draws_one_bar_per_operation_and_marks_conflicts(ops):
    ax = charts.timeline(ops, title="Week 47")
    assert ax.get_title() == "Week 47"
    assert ax.get_xlabel() == "time (UTC)" and ax.get_ylabel() == "volume"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pvc-a", NASTY, "pvc-c"]
    patches = bars(ax)
    assert len(patches) == len(ops)
    hatched = [p for p in patches if p.get_hatch()]
    assert len(hatched) == 1  # pvc-c's running backup, drawn to the window's end
    window_end = ax.get_xlim()[1]
    assert hatched[0].get_x() + hatched[0].get_width() == pytest.approx(window_end)
    # the deletion's bar: starts at its start, one per row
    x_del = mpl.dates.date2num(at(3.1).tz_localize(None).to_datetime64())
    assert any(p.get_x() == pytest.approx(x_del) and p.get_y() == pytest.approx(-0.35)
               for p in patches)
    markers = {ln.get_marker(): ln for ln in ax.lines}
    assert markers["X"].get_xdata()[0] == pytest.approx(x_del)
    assert markers["D"].get_ydata()[0] == 2
    legend = legend_texts(ax)
    assert {"backup", "deletion", "restore", "lock conflict: delete_blocked",
            "lock conflict: pending_behind_deletion"} <= set(legend)
    assert any("censored" in t for t in legend)


def test_timeline_window_clips_and_follows_the_volume_order(ops):
    ax = charts.timeline(ops, start=at(2.8), end=at(4.5), volumes=["pvc-c", "pvc-a"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pvc-c", "pvc-a"]
    patches = bars(ax)
    assert len(patches) == 3  # pvc-c's backup, pvc-a's backup (clipped) and deletion
    x0 = mpl.dates.date2num(at(2.8).tz_localize(None).to_datetime64())
    assert min(p.get_x() for p in patches) == pytest.approx(x0)


def test_timeline_shows_at_most_30_volumes_and_says_so():
    rows = [op(f"pvc-{i:02d}", "backup", i / 10, i / 10 + 1) for i in range(45)]
    ax = charts.timeline(ops_frame(rows))
    assert len(ax.get_yticklabels()) == 30
    assert len(bars(ax)) == 30
    assert "showing the first 30 of 45 volumes" in legend_texts(ax)


def test_timeline_of_nothing_says_no_data():
    ax = charts.timeline(ops_frame([]))
    assert "no data" in texts(ax)
    assert ax.get_title() == "Backupstore operations per volume (UTC)"
    assert charts.to_png(ax).startswith(b"\x89PNG")


# --- duration distribution -------------------------------------------------------------------

def test_duration_distribution_marks_quantiles_interval_and_censored():
    rng = np.random.default_rng(0)
    d = pd.Series(600 * np.exp(0.4 * rng.standard_normal(200)))
    ax = charts.duration_distribution(
        d, quantiles={"p50": 600.0, "p95": 1160.0, "p99": 1500.0}, interval_s=3600,
        censored_s=pd.Series([2000.0, 2500.0, np.nan]))
    assert ax.get_title() == "Backup durations"
    assert ax.get_xlabel() == "backup duration (minutes)" and ax.get_ylabel() == "backups"
    assert ax.get_xscale() == "linear"  # 200 draws of sd 0.4 span less than 30x
    lines = vlines(ax)
    assert lines["p50 10 min"] == pytest.approx(10)
    assert lines["p95 19 min"] == pytest.approx(1160 / 60)
    assert lines["p99 25 min"] == pytest.approx(25)
    assert lines["job interval 60 min"] == pytest.approx(60)
    assert sum(p.get_height() for p in ax.patches) == 200
    rug = [ln for ln in ax.lines if ln.get_marker() == "|"]
    assert len(rug) == 1 and list(rug[0].get_xdata()) == pytest.approx([2000 / 60, 2500 / 60])
    assert "censored" in rug[0].get_label()


def test_duration_distribution_uses_log_bins_for_a_wide_spread():
    ax = charts.duration_distribution(pd.Series([30.0, 60, 600, 3600, 7200]))
    assert ax.get_xscale() == "log"
    assert "log scale" in ax.get_xlabel()
    edges = [p.get_x() for p in ax.patches]
    widths = np.diff(np.log(edges))
    assert np.allclose(widths, widths[0])


def test_duration_distribution_of_nothing_says_no_data():
    ax = charts.duration_distribution(pd.Series([], dtype=float), title="pvc-a")
    assert "no data" in texts(ax) and ax.get_title() == "pvc-a"


# --- conflict against interval --------------------------------------------------------------

@pytest.fixture
def curve() -> pd.DataFrame:
    return pd.DataFrame({
        "interval_s": [14400.0, 3600, 7200, 28800, 86400],
        "p": [0.002, 0.08, 0.01, 0.0, 0.0],
        "p_lo": [0.001, 0.06, 0.006, 0.0, np.nan],
        "p_hi": [0.004, 0.1, 0.015, 0.001, np.nan]})


def test_conflict_vs_interval_draws_curve_band_marks_and_target(curve):
    ax = charts.conflict_vs_interval(curve, current_s=3600, recommended_s=14400, target=0.01)
    assert ax.get_title() == "Lock-conflict probability against the job interval"
    assert ax.get_xlabel() == "interval between runs (hours, log scale)"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "0 drawn at 1e-04" in ax.get_ylabel()
    line = next(ln for ln in ax.lines if ln.get_label() == "conflict probability per run")
    assert list(line.get_xdata()) == [1, 2, 4, 8, 24]  # sorted, in hours
    assert list(line.get_ydata()) == pytest.approx([0.08, 0.01, 0.002, 1e-4, 1e-4])
    v = vlines(ax)
    assert v["current 60 min"] == 1 and v["recommended 4 h"] == 4
    assert hlines(ax)["target 1%"] == 0.01
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 1


def test_conflict_vs_interval_in_minutes_for_short_intervals(curve):
    c = curve.assign(interval_s=curve["interval_s"] / 24)
    ax = charts.conflict_vs_interval(c, current_s=150)
    assert "minutes" in ax.get_xlabel()
    assert vlines(ax)["current 2.5 min"] == pytest.approx(2.5)


def test_conflict_vs_interval_of_nothing_says_no_data(curve):
    ax = charts.conflict_vs_interval(curve.iloc[:0], current_s=3600)
    assert "no data" in texts(ax)


# --- running at once and the heatmap ---------------------------------------------------------

def test_running_at_once_is_time_weighted():
    two = ops_frame([op("a", "backup", 2, 3.5), op("b", "backup", 2, 3.5)])
    hourly = running_at_once(two).set_index(["backup_target", "weekday", "hour"])
    assert len(hourly) == 7 * 24
    assert hourly.loc[("default", 0, 2), "running"] == 2.0
    # 03:00-04:00: both run its first half; the window (rounded to 1 h) covers all of it
    assert hourly.loc[("default", 0, 3), "running"] == 1.0
    assert hourly.loc[("default", 0, 3), "observed_h"] == 1.0
    assert hourly["running"].notna().sum() == 2  # no other hour was observed
    # with 30-minute edges the window ends at 03:30: both ran all of what was seen
    half = running_at_once(two, freq="30min").set_index(["weekday", "hour"])
    assert half.loc[(0, 3), "running"] == 2.0 and half.loc[(0, 3), "observed_h"] == 0.5


def test_running_at_once_counts_overlap_not_starts_and_splits_targets():
    frame = ops_frame([
        op("a", "backup", 1, 4),                   # three whole hours
        op("b", "backup", 1.5, 2.25, target="s3"),
        op("a", "deletion", 4, 5),                 # not a backup: only stretches the window
        op("c", "backup", 24 * 6 + 23.5, None),    # Sunday 23:30, still running
    ])
    table = running_at_once(frame).set_index(["backup_target", "weekday", "hour"])
    default = table.loc["default", "running"]
    assert math.isnan(default[(0, 0)])  # before the window: not observed
    assert [default[(0, h)] for h in (1, 2, 3, 4, 5)] == [1, 1, 1, 0, 0]
    assert default[(6, 23)] == 0.5  # the window ends at the running backup's start hour + 1
    s3 = table.loc["s3", "running"]
    assert s3[(0, 1)] == 0.5 and s3[(0, 2)] == 0.25 and s3[(0, 3)] == 0


def test_running_at_once_averages_over_weeks():
    frame = ops_frame([op("a", "backup", 2, 3), op("a", "backup", 24 * 7 + 2, 24 * 7 + 2.5)])
    table = running_at_once(frame).set_index(["weekday", "hour"])
    assert table.loc[(0, 2), "running"] == 0.75
    assert table.loc[(0, 2), "observed_h"] == 2.0


def test_running_at_once_refuses_a_freq_longer_than_an_hour():
    with pytest.raises(ValueError, match="divide an hour"):
        running_at_once(ops_frame([op("a", "backup", 2, 3)]), freq="2h")


def test_concurrency_heatmap_shows_running_at_once_of_the_busiest_target(ops):
    busy = pd.concat([ops, ops_frame([op("pvc-d", "backup", 2, 3.5)])], ignore_index=True)
    ax = charts.concurrency_heatmap(busy)
    assert "target default" in ax.get_title()
    assert ax.get_xlabel() == "hour of day (UTC)" and ax.get_ylabel() == "weekday"
    assert [t.get_text() for t in ax.get_yticklabels()] == list(charts.WEEKDAYS)
    image = ax.images[0]
    assert image.get_cmap().name.startswith("cividis")
    # worked by hand: the window is Monday 02:00-06:00 (the first start to the restore's
    # end); on target default, pvc-a (2-3 h) and pvc-d (2-3.5 h) run at 02:00, pvc-d's
    # half hour at 03:00, then pvc-c (from 4 h, still running: to the window's end)
    expected = np.full((7, 24), np.nan)
    expected[0, 2:6] = [2.0, 0.5, 1.0, 1.0]
    got = np.ma.filled(image.get_array().astype(float), np.nan)
    np.testing.assert_array_equal(got, expected)
    colorbar = ax.figure.axes[-1]
    assert colorbar.get_ylabel() == "backups running at once"


def test_concurrency_heatmap_of_another_target(ops):
    ax = charts.concurrency_heatmap(ops, backup_target="s3")
    assert "target s3" in ax.get_title()
    grid = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    assert grid[0, 2] == 0.5 and grid[0, 3] == 1.0


def test_concurrency_heatmap_of_nothing_says_no_data(ops):
    assert "no data" in texts(charts.concurrency_heatmap(ops_frame([])))
    ax = charts.concurrency_heatmap(ops, backup_target="nfs")
    assert "no backups on target nfs" in texts(ax)


# --- duration trend ------------------------------------------------------------------------

@pytest.fixture
def growing() -> tuple[pd.Series, pd.Series, pd.Series]:
    rng = np.random.default_rng(11)
    days = np.arange(60) * 2.0
    start = pd.Series(MONDAY + pd.to_timedelta(days, unit="D"))
    dur = np.exp(math.log(1200) + math.log(1.03) / 7 * days + 0.25 * rng.standard_normal(60))
    cens = np.zeros(60, dtype=bool)
    cens[-2:] = True
    dur[-1] = np.nan  # censored, duration unknown
    return start, pd.Series(dur), pd.Series(cens)


def test_duration_trend_draws_points_fit_forecast_interval_and_crossing(growing):
    start, dur, cens = growing
    ax = charts.duration_trend(start, dur, cens, interval_s=3600)
    trend = forecast_p99(start, dur, cens, interval_s=3600, now=start.max())
    assert trend.crossing_at is not None and trend.crossing_at > trend.now
    assert ax.get_title() == "Backup duration trend"
    assert ax.get_xlabel() == "backup start (UTC)"
    assert ax.get_ylabel() == "backup duration (minutes)"
    by = {ln.get_label(): ln for ln in ax.lines}
    assert len(by["completed (58)"].get_xdata()) == 58
    assert by["censored (1): at least this long"].get_marker() == "^"
    assert by["censored, duration unknown (1)"].get_marker() == "|"
    assert by["p99 forecast"].get_linestyle() == "--"
    assert by["fitted p99"].get_linestyle() == "-"
    # the forecast starts at now and reaches past the crossing
    now_x = mpl.dates.date2num(trend.now.tz_localize(None).to_datetime64())
    cross_x = mpl.dates.date2num(trend.crossing_at.tz_localize(None).to_datetime64())
    assert by["p99 forecast"].get_xdata()[0] == pytest.approx(now_x)
    assert by["p99 forecast"].get_xdata()[-1] > cross_x
    assert hlines(ax)["job interval 60 min"] == 60
    mark = next(ln for label, ln in by.items() if label.startswith("p99 reaches"))
    assert mark.get_xdata()[0] == pytest.approx(cross_x)
    assert mark.get_ydata()[0] == pytest.approx(60)
    legend = " ".join(" ".join(legend_texts(ax)).split())
    assert trend.note in legend


def test_duration_trend_uses_a_given_trend(growing):
    start, dur, cens = growing
    trend = forecast_p99(start, dur, cens, interval_s=None, now=start.max())
    ax = charts.duration_trend(start, dur, cens, interval_s=None, trend=trend)
    assert any(trend.note in " ".join(t.split()) for t in legend_texts(ax))
    assert "job interval" not in " ".join(legend_texts(ax))


def test_duration_trend_without_enough_data_still_draws(growing):
    start, dur, cens = (s.iloc[:4] for s in growing)
    ax = charts.duration_trend(start, dur, cens, interval_s=3600)
    assert any(t.startswith("no trend") for t in legend_texts(ax))
    assert "p99 forecast" not in [ln.get_label() for ln in ax.lines]


def test_duration_trend_of_nothing_says_no_data():
    empty = pd.Series([], dtype="datetime64[ns, UTC]")
    ax = charts.duration_trend(empty, pd.Series([], dtype=float),
                               pd.Series([], dtype=bool), interval_s=3600)
    assert "no data" in texts(ax) and ax.get_title() == "Backup duration trend"


# --- risk ranking --------------------------------------------------------------------------

@pytest.fixture
def volumes() -> pd.DataFrame:
    return pd.DataFrame({
        "volume": ["pvc-low", NASTY, "pvc-mid", "pvc-none"],
        "p_conflict_per_run": [0.001, 0.2, 0.05, 0.0],
        "p_conflict_per_run_se": [0.0005, 0.02, 0.01, 0.0],
        "skipped_runs_per_week": [0.0, 3.5, 0.0, 0.0]})


def test_risk_ranking_ranks_bars_with_errors_target_and_skips(volumes):
    ax = charts.risk_ranking(volumes, top=3, target=0.01)
    assert ax.get_title() == "Volumes at most risk of a lock conflict (top 3)"
    assert ax.get_xlabel() == "lock-conflict probability per run (%)"
    assert ax.get_ylabel() == "volume"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [NASTY, "pvc-mid", "pvc-low"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # the first row at the top
    patches = bars(ax)
    assert [p.get_width() for p in patches] == [0.2, 0.05, 0.001]
    assert [bool(p.get_hatch()) for p in patches] == [True, False, False]
    errorbar = next(c for c in ax.containers if isinstance(c, BarContainer)).errorbar
    segments = errorbar.lines[2][0].get_segments()
    assert segments[0][:, 0] == pytest.approx([0.16, 0.24])
    assert segments[2][:, 0] == pytest.approx([0.0, 0.002])  # clipped at 0
    assert vlines(ax)["target 1%"] == 0.01
    assert "skips 3.5/wk" in texts(ax)


def test_risk_ranking_of_nothing_says_no_data(volumes):
    assert "no data" in texts(charts.risk_ranking(volumes.iloc[:0]))


# --- names from clusters -------------------------------------------------------------------

@pytest.mark.parametrize("name", [NASTY, BROKEN_MATH])
def test_cluster_names_are_drawn_literally(name):
    frame = ops_frame([op(name, "backup", 1, 2), op("pvc-b", "backup", 1, 3)])
    ax = charts.timeline(frame, title=f"volume {name}")
    label = ax.get_yticklabels()[0]
    assert label.get_text() == name and literal(label)
    assert ax.get_title() == f"volume {name}" and literal(ax.title)
    assert charts.to_png(ax).startswith(b"\x89PNG")  # mathtext would fail on BROKEN_MATH

    risk = pd.DataFrame({"volume": [name], "p_conflict_per_run": [0.1],
                         "p_conflict_per_run_se": [0.01], "skipped_runs_per_week": [0.0]})
    pyplot_ax = Figure().add_subplot()  # a caller's axes, made outside chart_style
    ax = charts.risk_ranking(risk, ax=pyplot_ax)
    label = ax.get_yticklabels()[0]
    assert label.get_text() == name and literal(label)
    assert charts.to_png(ax).startswith(b"\x89PNG")

    ax = charts.concurrency_heatmap(frame.assign(backup_target=name))
    assert name in ax.get_title() and literal(ax.title)
    assert charts.to_png(ax).startswith(b"\x89PNG")


def test_log_axis_ticks_are_plain_text_not_unparsed_mathtext():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    curve = pd.DataFrame({"interval_s": [3600.0, 7200.0, 86400.0], "p": [0.8, 0.1, 0.005],
                          "p_lo": [0.7, 0.05, 0.001], "p_hi": [0.9, 0.2, 0.01]})
    with charts.chart_style():
        ax = charts.conflict_vs_interval(curve, current_s=3600, recommended_s=86400,
                                         target=0.01)
        FigureCanvasAgg(ax.figure).draw()
        labels = [t.get_text() for t in (*ax.get_yticklabels(), *ax.get_xticklabels())]
    assert labels and not any("$" in t or "mathdefault" in t for t in labels)
    assert "1 %" in labels and "10 %" in labels
