"""The charts of backup durations: their :func:`duration_distribution` against the job
interval and their :func:`duration_trend` with the p99 forecast (conventions:
:mod:`advisor.report.charts`)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from advisor import units
from advisor.model.trend import Trend, forecast_p99
from advisor.report.chart_base import (
    OKABE_ITO,
    canvas,
    date_axis,
    datenum,
    legend,
    no_data,
    plain_log_ticks,
    set_title,
)
from advisor.schema import utc

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def duration_distribution(durations_s: pd.Series, *, quantiles: Mapping[str, float] | None = None,
                          interval_s: float | None = None,
                          censored_s: pd.Series | None = None, title: str | None = None,
                          ax: Axes | None = None) -> Axes:
    """Histogram of completed backup durations (``durations_s``, seconds; shown in
    minutes, on log-spaced bins when they span more than 30x), with ``quantiles`` (name:
    seconds, e.g. ``{"p50": 600, "p99": 2400}``) as labelled vertical lines, the job
    interval ``interval_s`` (seconds) as a thick line, and ``censored_s`` (seconds that
    running or failed backups lasted at least) as a rug along the bottom."""
    default = "Backup durations"
    d = pd.to_numeric(pd.Series(durations_s), errors="coerce").to_numpy(float)
    d = d[np.isfinite(d) & (d > 0)] / 60
    c = np.array([]) if censored_s is None else \
        pd.to_numeric(pd.Series(censored_s), errors="coerce").to_numpy(float)
    c = c[np.isfinite(c) & (c > 0)] / 60
    with canvas(ax, (9, 4.5)) as ax:
        if not len(d) and not len(c):
            return no_data(ax, title, default)
        values = np.concatenate([d, c])
        log = values.max() / values.min() > 30
        if len(d):
            nbins = int(np.clip(np.sqrt(len(d)), 8, 40))
            bins = np.geomspace(d.min(), d.max() * 1.0001, nbins + 1) if log else nbins
            ax.hist(d, bins=bins, color=OKABE_ITO["sky_blue"], edgecolor="white",
                    linewidth=0.5, label=f"completed ({len(d)})")
        else:
            ax.text(0.5, 0.6, "no completed backups", transform=ax.transAxes,
                    ha="center", color="0.4")
        if log:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        styles = ("--", "-.", ":", (0, (5, 1, 1, 1)))
        for i, (name, q) in enumerate((quantiles or {}).items()):
            if q is not None and math.isfinite(q) and q > 0:
                ax.axvline(q / 60, color=OKABE_ITO["black"], linestyle=styles[i % 4],
                           linewidth=1.2, label=f"{name} {units.duration(q)}")
        if interval_s is not None and interval_s > 0:
            ax.axvline(interval_s / 60, color=OKABE_ITO["vermillion"], linewidth=2.5,
                       label=f"job interval {units.duration(interval_s)}")
        if len(c):
            ax.plot(c, np.full(len(c), 0.02), linestyle="none", marker="|", markersize=14,
                    markeredgewidth=1.5, color=OKABE_ITO["orange"],
                    transform=ax.get_xaxis_transform(),
                    label=f"censored ({len(c)}): running or failed, at least this long")
        ax.set_xlabel("backup duration (minutes" + (", log scale)" if log else ")"))
        ax.set_ylabel("backups")
        set_title(ax, title, default)
        legend(ax)
    return ax


def duration_trend(started_at: pd.Series, duration_s: pd.Series, censored: pd.Series, *,
                   interval_s: float | None, trend: Trend | None = None,
                   now: pd.Timestamp | None = None, title: str | None = None,
                   ax: Axes | None = None) -> Axes:
    """Backup durations (minutes) over their start time (UTC), censored ones (``duration_s``
    the time lasted at least; NaN: unknown, marked at the bottom) in another marker, the
    fitted p99 line (solid up to ``now``, dashed as a forecast up to the crossing's range
    or the horizon), the job interval ``interval_s`` (seconds), the crossing with its
    range, and ``trend.note``. ``trend`` defaults to :func:`forecast_p99` of the same
    data at ``now`` (default: the latest start)."""
    default = "Backup duration trend"
    start = pd.Series(pd.to_datetime(pd.Series(started_at).to_numpy(), utc=True))
    dur = pd.to_numeric(pd.Series(duration_s), errors="coerce").reset_index(drop=True)
    cens = pd.Series(censored).reset_index(drop=True).fillna(False).astype(bool)
    with canvas(ax, (9, 4.8)) as ax:
        if start.notna().sum() == 0:
            return no_data(ax, title, default)
        if now is None:
            now = trend.now if trend is not None else start.max()
        now = utc(now)
        if trend is None:
            trend = forecast_p99(start, dur, cens, interval_s=interval_s, now=now)
        done = ~cens & dur.gt(0) & start.notna()
        known = cens & dur.gt(0) & start.notna()
        unknown = cens & ~dur.gt(0) & start.notna()
        ax.plot(datenum(start[done]), dur[done] / 60, linestyle="none", marker="o",
                markersize=3.5, alpha=0.7, color=OKABE_ITO["blue"],
                label=f"completed ({int(done.sum())})")
        if known.any():
            ax.plot(datenum(start[known]), dur[known] / 60, linestyle="none", marker="^",
                    markersize=5, color=OKABE_ITO["orange"],
                    label=f"censored ({int(known.sum())}): at least this long")
        if unknown.any():
            ax.plot(datenum(start[unknown]), np.full(int(unknown.sum()), 0.02),
                    linestyle="none", marker="|", markersize=12, color=OKABE_ITO["orange"],
                    transform=ax.get_xaxis_transform(),
                    label=f"censored, duration unknown ({int(unknown.sum())})")
        _trend_lines(ax, trend, start.min(), now)
        if interval_s is not None and interval_s > 0:
            ax.axhline(interval_s / 60, color=OKABE_ITO["vermillion"], linewidth=2,
                       label=f"job interval {units.duration(interval_s)}")
        ax.axvline(datenum([now])[0], color="0.5", linestyle=":", linewidth=1,
                   label=f"now ({now:%Y-%m-%d})")
        # the note as the legend's last line, wrapped to the legend's width
        ax.plot([], [], linestyle="none", label=textwrap.fill(trend.note, 44))
        ax.set_ylim(bottom=0)
        date_axis(ax)
        ax.set_xlabel("backup start (UTC)")
        ax.set_ylabel("backup duration (minutes)")
        set_title(ax, title, default)
        legend(ax, fontsize=8)
    return ax


def _trend_lines(ax: Axes, trend: Trend, first: pd.Timestamp, now: pd.Timestamp) -> None:
    """The fitted p99 over the data and, with significant growth, its forecast."""
    if trend.ref is None:
        return
    color = OKABE_ITO["reddish_purple"]
    fit = pd.date_range(first, max(now, first + pd.Timedelta(minutes=1)), periods=50)
    label = "fitted p99" if trend.has_slope else "pooled p99 (no trend)"
    ax.plot(datenum(fit), trend.p99_over(fit) / 60, color=color, linewidth=2, label=label)
    if not trend.significant:
        return
    stop = now + pd.Timedelta(days=trend.horizon_days)
    if trend.crossing_at is not None and trend.crossing_at > now:
        stop = trend.crossing_hi if trend.crossing_hi is not None else \
            trend.crossing_at + (trend.crossing_at - now) * 0.1
    ahead = pd.date_range(now, stop, periods=50)
    ax.plot(datenum(ahead), trend.p99_over(ahead) / 60, color=color, linewidth=2,
            linestyle="--", label="p99 forecast")
    if trend.crossing_at is not None and trend.interval_s is not None:
        if trend.crossing_lo is not None and trend.crossing_hi is not None:
            ax.axvspan(*datenum([trend.crossing_lo, trend.crossing_hi]), color=color,
                       alpha=0.12, linewidth=0, label="crossing range (±2 se)")
        ax.plot(datenum([trend.crossing_at]), [trend.interval_s / 60], marker="X",
                markersize=10, color=color, linestyle="none",
                label=f"p99 reaches the interval ~{trend.crossing_at:%Y-%m-%d}")
