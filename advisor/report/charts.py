"""The report's charts, one function each, usable from notebooks as they are.

Every chart function imports matplotlib inside (importing this module costs nothing),
takes ``ax=None``, draws on it and returns it. Without ``ax`` it makes its own
:class:`matplotlib.figure.Figure`, not a pyplot figure: no backend is chosen, no global
figure list grows, and a report run in a CronJob needs no display (in a notebook, show
it with ``ax.figure`` or pass an ``ax`` from ``plt.subplots()``). Those figures are drawn
inside :func:`chart_style`; a caller's ``ax`` keeps the caller's style.

Names from clusters (volumes, jobs, targets) may hold ``$``, ``_`` or ``^``: every text
is drawn with ``parse_math=False`` so such a name is shown as written, never as mathtext.
Times are UTC; durations are shown in minutes, intervals in minutes or hours.
"""

from __future__ import annotations

import contextlib
import math
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from io import BytesIO
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from advisor import units
from advisor.model.concurrency import running_at_once
from advisor.model.trend import Trend, forecast_p99
from advisor.schema import utc

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OKABE_ITO: dict[str, str] = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9",
    "bluish_green": "#009E73", "yellow": "#F0E442", "blue": "#0072B2",
    "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}
"""Okabe & Ito's colour-blind-safe palette (2008), by name."""
OPERATION_COLORS: dict[str, str] = {"backup": OKABE_ITO["blue"],
                                    "deletion": OKABE_ITO["vermillion"],
                                    "restore": OKABE_ITO["bluish_green"]}
"""Colour of each backupstore operation in every chart."""
CONFLICT_MARKERS: dict[str, str] = {"delete_blocked": "X", "create_blocked": "v",
                                    "restore_blocked": "s", "pending_behind_deletion": "D"}
"""Marker of each lock-conflict kind (any other kind: ``*``)."""
MAX_TIMELINE_VOLUMES = 30
"""Rows a timeline shows; more would not be readable at report size."""
CMAP = "cividis"
"""Sequential colormap of the heatmap: readable with any colour vision and in grey."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_NO_TEXT_MATH = {"text.parse_math": False, "text.usetex": False}
_STYLE: dict[str, Any] = {
    **_NO_TEXT_MATH,
    "font.size": 10, "axes.titlesize": 12, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "legend.frameon": False,
    "axes.grid": True, "grid.alpha": 0.35, "grid.linewidth": 0.6, "axes.axisbelow": True,
    "axes.spines.top": False, "axes.spines.right": False,
    "hatch.linewidth": 0.8, "figure.dpi": 110, "savefig.dpi": 110,
    "image.cmap": CMAP,
}


@contextlib.contextmanager
def chart_style() -> Iterator[None]:
    """The report's style (font sizes readable at report size, a light grid, no top or
    right spines, the Okabe-Ito colour cycle, no mathtext) for what is drawn inside;
    rcParams are restored on exit and the backend is never touched."""
    import matplotlib as mpl
    from cycler import cycler

    order = ("blue", "orange", "bluish_green", "vermillion", "reddish_purple", "sky_blue",
             "black")
    style = {**_STYLE, "axes.prop_cycle": cycler(color=[OKABE_ITO[c] for c in order])}
    with mpl.rc_context(style):
        yield


@contextlib.contextmanager
def _canvas(ax: Axes | None, figsize: tuple[float, float]) -> Iterator[Axes]:
    """The axes to draw on: ``ax`` (only mathtext turned off) or a new figure's, drawn in
    :func:`chart_style`."""
    import matplotlib as mpl
    from matplotlib.figure import Figure

    if ax is not None:
        with mpl.rc_context(_NO_TEXT_MATH):
            yield ax
        return
    with chart_style():
        yield Figure(figsize=figsize, layout="constrained").add_subplot()


def to_png(ax_or_fig: Axes | Figure, dpi: int = 110) -> bytes:
    """The figure of ``ax_or_fig`` as PNG bytes (``dpi`` dots per inch, cropped to what
    is drawn); a pyplot figure is closed afterwards so figures do not pile up."""
    from matplotlib.figure import Figure

    fig = ax_or_fig if isinstance(ax_or_fig, Figure) else ax_or_fig.figure
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt = sys.modules.get("matplotlib.pyplot")  # loaded only if the caller uses pyplot
    if plt is not None:
        plt.close(fig)  # a no-op for a figure pyplot does not manage
    return buf.getvalue()


def _title(ax: Axes, title: str | None, default: str) -> None:
    ax.set_title(default if title is None else title, parse_math=False)


def _no_data(ax: Axes, title: str | None, default: str, message: str = "no data") -> Axes:
    _title(ax, title, default)
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
            fontsize=12, color="0.4", parse_math=False)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _legend(ax: Axes, **kw: Any) -> None:
    """The legend outside the axes on the right, where it hides no data."""
    leg = ax.legend(**{"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), **kw})
    for text in leg.get_texts():
        text.set_parse_math(False)


def _datenum(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC times as matplotlib date numbers (days since matplotlib's epoch)."""
    from matplotlib import dates as mdates

    t = pd.DatetimeIndex(pd.to_datetime(pd.Series(times).to_numpy(), utc=True))
    return mdates.date2num(t.tz_localize(None).to_numpy())


def _plain_log_ticks(axis: Any) -> None:
    """Tick labels of a log axis as plain numbers (30, not 3x10^1)."""
    from matplotlib.ticker import FuncFormatter, LogFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))


def _date_axis(ax: Axes) -> None:
    from matplotlib import dates as mdates

    loc = mdates.AutoDateLocator(tz="UTC")
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz="UTC"))


# --- the per-volume timeline ------------------------------------------------------------------

def timeline(ops: pd.DataFrame, *, start: pd.Timestamp | None = None,
             end: pd.Timestamp | None = None, volumes: Sequence[str] | None = None,
             title: str | None = None, ax: Axes | None = None) -> Axes:
    """One row per volume, one horizontal bar per backupstore operation from its start to
    its end (UTC), coloured by operation; lock conflicts marked at the operation's start.

    ``ops`` columns: ``volume``, ``operation`` (backup, deletion, restore), ``start``,
    ``end`` (NaT: still running or end unknown, drawn to the window's end, hatched and
    lighter: censored), ``conflict`` ("none" or a lock-conflict kind). The window is
    ``start`` .. ``end`` (default: the first start to the last time seen, padded by 2 %,
    5 % at the end when an operation has no end). Rows are ``volumes`` in that order (default: the
    volumes in order of appearance), at most :data:`MAX_TIMELINE_VOLUMES`.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    default = "Backupstore operations per volume (UTC)"
    if volumes is not None:
        names = [str(v) for v in volumes]
    else:
        names = [] if ops.empty else list(dict.fromkeys(ops["volume"].astype(str)))
    shown = names[:MAX_TIMELINE_VOLUMES]
    with _canvas(ax, (10, 1.4 + 0.32 * max(len(shown), 3))) as ax:
        if ops.empty or not shown:
            return _no_data(ax, title, default)
        s = pd.to_datetime(ops["start"], utc=True)
        e = pd.to_datetime(ops["end"], utc=True)
        last = max(e.max() if e.notna().any() else s.max(), s.max())
        pad = max((last - s.min()) * 0.02, pd.Timedelta(minutes=5))
        w0 = utc(start) if start is not None else s.min() - pad
        # a running operation gets more than a sliver
        tail = pad * 2.5 if e.isna().any() else pad
        w1 = utc(end) if end is not None else last + tail
        row = {v: i for i, v in enumerate(shown)}
        y = ops["volume"].astype(str).map(row)
        keep = y.notna() & (s < w1) & (e.isna() | (e > w0))
        if not keep.any():
            return _no_data(ax, title, default, "no operations in this window")
        x0 = _datenum(s[keep].clip(lower=w0))
        # max: a finish before its start (clock skew) is drawn as a sliver, not backwards
        x1 = np.maximum(_datenum(e[keep].fillna(w1).clip(upper=w1)), x0)
        yk, op = y[keep].to_numpy(float), ops.loc[keep, "operation"].astype(str).to_numpy()
        open_ = e[keep].isna().to_numpy()
        handles: list[Any] = []
        for name in dict.fromkeys(op):
            color = OPERATION_COLORS.get(name, OKABE_ITO["reddish_purple"])
            for censored in (False, True):
                m = (op == name) & (open_ == censored)
                if m.any():
                    ax.barh(yk[m], x1[m] - x0[m], left=x0[m], height=0.7, color=color,
                            alpha=0.4 if censored else 0.9, hatch="///" if censored else None,
                            edgecolor=color, linewidth=0.5, label=name)
            handles.append(Patch(color=color, label=name))
        if open_.any():
            handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="///",
                                 label="no end (running or unknown): censored, to window end"))
        kind = ops.loc[keep, "conflict"].fillna("none").astype(str).to_numpy()
        for k in dict.fromkeys(kind[kind != "none"]):
            m = kind == k
            marker = CONFLICT_MARKERS.get(k, "*")
            ax.plot(x0[m], yk[m], linestyle="none", marker=marker, color=OKABE_ITO["black"],
                    markersize=7, markeredgecolor="white", markeredgewidth=0.6, zorder=3)
            handles.append(Line2D([], [], linestyle="none", marker=marker, color="black",
                                  label=f"lock conflict: {k}"))
        if len(names) > len(shown):
            handles.append(Patch(visible=False, label=f"showing the first {len(shown)} of "
                                                      f"{len(names)} volumes"))
        ax.set_yticks(range(len(shown)), labels=shown, parse_math=False)
        ax.set_ylim(len(shown) - 0.5, -0.5)  # the first volume at the top
        ax.set_xlim(_datenum([w0])[0], _datenum([w1])[0])
        _date_axis(ax)
        ax.grid(False, axis="y")
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel("volume")
        _title(ax, title, default)
        _legend(ax, handles=handles)
    return ax


# --- durations ------------------------------------------------------------------------------

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
    with _canvas(ax, (9, 4.5)) as ax:
        if not len(d) and not len(c):
            return _no_data(ax, title, default)
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
            _plain_log_ticks(ax.xaxis)
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
        _title(ax, title, default)
        _legend(ax)
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
    with _canvas(ax, (9, 4.8)) as ax:
        if start.notna().sum() == 0:
            return _no_data(ax, title, default)
        if now is None:
            now = trend.now if trend is not None else start.max()
        now = utc(now)
        if trend is None:
            trend = forecast_p99(start, dur, cens, interval_s=interval_s, now=now)
        done = ~cens & dur.gt(0) & start.notna()
        known = cens & dur.gt(0) & start.notna()
        unknown = cens & ~dur.gt(0) & start.notna()
        ax.plot(_datenum(start[done]), dur[done] / 60, linestyle="none", marker="o",
                markersize=3.5, alpha=0.7, color=OKABE_ITO["blue"],
                label=f"completed ({int(done.sum())})")
        if known.any():
            ax.plot(_datenum(start[known]), dur[known] / 60, linestyle="none", marker="^",
                    markersize=5, color=OKABE_ITO["orange"],
                    label=f"censored ({int(known.sum())}): at least this long")
        if unknown.any():
            ax.plot(_datenum(start[unknown]), np.full(int(unknown.sum()), 0.02),
                    linestyle="none", marker="|", markersize=12, color=OKABE_ITO["orange"],
                    transform=ax.get_xaxis_transform(),
                    label=f"censored, duration unknown ({int(unknown.sum())})")
        _trend_lines(ax, trend, start.min(), now)
        if interval_s is not None and interval_s > 0:
            ax.axhline(interval_s / 60, color=OKABE_ITO["vermillion"], linewidth=2,
                       label=f"job interval {units.duration(interval_s)}")
        ax.axvline(_datenum([now])[0], color="0.5", linestyle=":", linewidth=1,
                   label=f"now ({now:%Y-%m-%d})")
        # the note as the legend's last line, wrapped to the legend's width
        ax.plot([], [], linestyle="none", label=textwrap.fill(trend.note, 44))
        ax.set_ylim(bottom=0)
        _date_axis(ax)
        ax.set_xlabel("backup start (UTC)")
        ax.set_ylabel("backup duration (minutes)")
        _title(ax, title, default)
        _legend(ax, fontsize=8)
    return ax


def _trend_lines(ax: Axes, trend: Trend, first: pd.Timestamp, now: pd.Timestamp) -> None:
    """The fitted p99 over the data and, with significant growth, its forecast."""
    if trend.ref is None:
        return
    color = OKABE_ITO["reddish_purple"]
    fit = pd.date_range(first, max(now, first + pd.Timedelta(minutes=1)), periods=50)
    label = "fitted p99" if trend.has_slope else "pooled p99 (no trend)"
    ax.plot(_datenum(fit), trend.p99_over(fit) / 60, color=color, linewidth=2, label=label)
    if not trend.significant:
        return
    stop = now + pd.Timedelta(days=trend.horizon_days)
    if trend.crossing_at is not None and trend.crossing_at > now:
        stop = trend.crossing_hi if trend.crossing_hi is not None else \
            trend.crossing_at + (trend.crossing_at - now) * 0.1
    ahead = pd.date_range(now, stop, periods=50)
    ax.plot(_datenum(ahead), trend.p99_over(ahead) / 60, color=color, linewidth=2,
            linestyle="--", label="p99 forecast")
    if trend.crossing_at is not None and trend.interval_s is not None:
        if trend.crossing_lo is not None and trend.crossing_hi is not None:
            ax.axvspan(*_datenum([trend.crossing_lo, trend.crossing_hi]), color=color,
                       alpha=0.12, linewidth=0, label="crossing range (±2 se)")
        ax.plot(_datenum([trend.crossing_at]), [trend.interval_s / 60], marker="X",
                markersize=10, color=color, linestyle="none",
                label=f"p99 reaches the interval ~{trend.crossing_at:%Y-%m-%d}")


# --- conflicts ------------------------------------------------------------------------------

def conflict_vs_interval(curve: pd.DataFrame, *, current_s: float,
                         recommended_s: float | None = None, target: float | None = None,
                         title: str | None = None, ax: Axes | None = None) -> Axes:
    """Conflict probability per run against the job interval, both on log scales.

    ``curve`` columns: ``interval_s`` (seconds), ``p`` (probability per run), ``p_lo``,
    ``p_hi`` (95 % band, may be NaN). Zeros are drawn at a floor a decade below the
    smallest positive value (said in the y label). ``current_s`` and ``recommended_s``
    (seconds) are marked; ``target`` (probability) is a horizontal line."""
    default = "Lock-conflict probability against the job interval"
    with _canvas(ax, (9, 4.5)) as ax:
        c = curve.dropna(subset=["interval_s", "p"]).sort_values("interval_s")
        c = c[c["interval_s"] > 0]
        if c.empty:
            return _no_data(ax, title, default)
        marks = [v for v in (current_s, recommended_s) if v is not None and v > 0]
        hours = np.median(np.concatenate([c["interval_s"].to_numpy(), marks])) >= 7200
        scale, unit = (3600.0, "hours") if hours else (60.0, "minutes")
        x = c["interval_s"].to_numpy(float) / scale
        cols = [c[k].to_numpy(float) for k in ("p", "p_lo", "p_hi") if k in c]
        values = np.concatenate([*cols, [target if target else np.nan]])
        positive = values[np.isfinite(values) & (values > 0)]
        floor = 10.0 ** (math.floor(math.log10(positive.min())) - 1) if len(positive) else 1e-4
        p = np.clip(c["p"].to_numpy(float), floor, None)
        if {"p_lo", "p_hi"} <= set(c.columns):
            lo, hi = (np.clip(c[k].to_numpy(float), floor, None) for k in ("p_lo", "p_hi"))
            band = np.isfinite(lo) & np.isfinite(hi)
            if band.any():
                ax.fill_between(x, lo, hi, where=band, color=OKABE_ITO["sky_blue"],
                                alpha=0.35, linewidth=0, label="95 % interval")
        ax.plot(x, p, color=OKABE_ITO["blue"], marker="o", markersize=3.5,
                label="conflict probability per run")
        ax.axvline(current_s / scale, color=OKABE_ITO["vermillion"], linewidth=2,
                   label=f"current {units.duration(current_s)}")
        if recommended_s is not None and recommended_s > 0:
            ax.axvline(recommended_s / scale, color=OKABE_ITO["bluish_green"], linewidth=2,
                       linestyle="--", label=f"recommended {units.duration(recommended_s)}")
        if target is not None and target > 0:
            ax.axhline(target, color=OKABE_ITO["black"], linestyle=":",
                       label=f"target {target:.2%}".replace(".00%", "%"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.xaxis)
        # (the log formatter writes mathtext, which the style shows literally)
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g} %"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"interval between runs ({unit}, log scale)")
        ax.set_ylabel(f"conflict probability per run\n(log scale; 0 drawn at {floor:.0e})")
        _title(ax, title, default)
        _legend(ax)
    return ax


def risk_ranking(volumes: pd.DataFrame, *, top: int = 20, target: float | None = None,
                 title: str | None = None, ax: Axes | None = None) -> Axes:
    """The ``top`` volumes by ``p_conflict_per_run`` (probability per run) as horizontal
    bars, riskiest at the top, with ±2 ``p_conflict_per_run_se`` error bars, ``target``
    (probability) as a vertical line; volumes with ``skipped_runs_per_week`` > 0 are
    hatched and annotated with their skipped runs a week."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    default = f"Volumes at most risk of a lock conflict (top {top})"
    v = volumes.dropna(subset=["p_conflict_per_run"])
    v = v.sort_values("p_conflict_per_run", ascending=False, kind="stable").head(top)
    with _canvas(ax, (9, 1.4 + 0.34 * max(len(v), 3))) as ax:
        if v.empty:
            return _no_data(ax, title, default)
        p = v["p_conflict_per_run"].to_numpy(float)
        se = v["p_conflict_per_run_se"].fillna(0).to_numpy(float)
        skips = v["skipped_runs_per_week"].fillna(0).to_numpy(float)
        y = np.arange(len(v))
        bars = ax.barh(y, p, height=0.7, color=OKABE_ITO["blue"], alpha=0.85,
                       xerr=[np.minimum(2 * se, p), 2 * se], ecolor="0.25", capsize=2.5,
                       label="conflict probability per run (±2 se)")
        for bar, s, right in zip(bars.patches, skips, p + 2 * se, strict=True):
            if s > 0:
                bar.set_hatch("///")
                bar.set_edgecolor(OKABE_ITO["orange"])
                ax.annotate(f"skips {s:.3g}/wk", (right, bar.get_y() + bar.get_height() / 2),
                            xytext=(4, 0), textcoords="offset points", va="center",
                            fontsize=8, color="0.25")
        handles = [bars]
        if (skips > 0).any():
            handles.append(Patch(facecolor=OKABE_ITO["blue"], edgecolor=OKABE_ITO["orange"],
                                 hatch="///", label="skips runs (skipped runs a week)"))
        if target is not None and target > 0:
            handles.append(ax.axvline(target, color=OKABE_ITO["vermillion"], linestyle="--",
                                      label=f"target {target:.2%}".replace(".00%", "%")))
        ax.set_yticks(y, labels=v["volume"].astype(str).tolist(), parse_math=False)
        ax.set_ylim(len(v) - 0.5, -0.5)
        ax.set_xlim(left=0)
        ax.margins(x=0.15)
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
        ax.grid(False, axis="y")
        ax.set_xlabel("lock-conflict probability per run (%)")
        ax.set_ylabel("volume")
        _title(ax, title, default)
        _legend(ax, handles=handles)
    return ax


# --- concurrency ----------------------------------------------------------------------------

def concurrency_heatmap(ops: pd.DataFrame, *, backup_target: str | None = None,
                        title: str | None = None, ax: Axes | None = None) -> Axes:
    """Hour-of-week heatmap (weekday rows Mon..Sun, hour columns, UTC) of the mean number
    of backups running at once
    (:func:`~advisor.model.concurrency.running_at_once`) on one backup target: by
    default the one with the most backups, named in the title. Hours the history never
    covers are grey."""
    import matplotlib as mpl

    backups = ops[ops["operation"].astype(str).eq("backup")] if len(ops) else ops
    if backup_target is None and len(backups):
        tg = backups["backup_target"].astype(str) if "backup_target" in backups else \
            pd.Series("default", index=backups.index)
        backup_target = str(tg.value_counts().idxmax())
    default = f"Backups running at once on target {backup_target} (UTC, mean per hour)"
    with _canvas(ax, (10, 4)) as ax:
        if backups.empty:
            return _no_data(ax, title, "Backups running at once (UTC)")
        table = running_at_once(ops)
        table = table[table["backup_target"] == backup_target]
        if table.empty:
            return _no_data(ax, title, default, f"no backups on target {backup_target}")
        grid = table.pivot(index="weekday", columns="hour", values="running")
        grid = grid.reindex(index=range(7), columns=range(24)).to_numpy(float)
        cmap = mpl.colormaps[CMAP].with_extremes(bad="0.88")
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto",
                       vmin=0, interpolation="nearest")
        ax.figure.colorbar(im, ax=ax, label="backups running at once", pad=0.01)
        ax.set_yticks(range(7), labels=list(WEEKDAYS))
        ax.set_xticks(range(0, 24, 2), labels=[f"{h:02d}" for h in range(0, 24, 2)])
        ax.grid(False)
        ax.set_xlabel("hour of day (UTC)")
        ax.set_ylabel("weekday")
        _title(ax, title, default)
    return ax
