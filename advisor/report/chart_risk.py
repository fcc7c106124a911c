"""The charts of lock-conflict risk: a job's risk against its interval
(:func:`conflict_vs_interval`) and the riskiest volumes (:func:`risk_ranking`)
(conventions: :mod:`advisor.report.charts`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from advisor import units
from advisor.report.chart_base import (
    OKABE_ITO,
    canvas,
    legend,
    no_data,
    plain_log_ticks,
    set_title,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def conflict_vs_interval(curve: pd.DataFrame, *, current_s: float,
                         recommended_s: float | None = None, target: float | None = None,
                         title: str | None = None, ax: Axes | None = None) -> Axes:
    """Conflict probability per run against the job interval, both on log scales.

    ``curve`` columns: ``interval_s`` (seconds), ``p`` (probability per run), ``p_lo``,
    ``p_hi`` (95 % band, may be NaN). Zeros are drawn at a floor a decade below the
    smallest positive value (said in the y label). ``current_s`` and ``recommended_s``
    (seconds) are marked; ``target`` (probability) is a horizontal line."""
    default = "Lock-conflict probability against the job interval"
    with canvas(ax, (9, 4.5)) as ax:
        c = curve.dropna(subset=["interval_s", "p"]).sort_values("interval_s")
        c = c[c["interval_s"] > 0]
        if c.empty:
            return no_data(ax, title, default)
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
        plain_log_ticks(ax.xaxis)
        # (the log formatter writes mathtext, which the style shows literally)
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g} %"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"interval between runs ({unit}, log scale)")
        ax.set_ylabel(f"conflict probability per run\n(log scale; 0 drawn at {floor:.0e})")
        set_title(ax, title, default)
        legend(ax)
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
    with canvas(ax, (9, 1.4 + 0.34 * max(len(v), 3))) as ax:
        if v.empty:
            return no_data(ax, title, default)
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
        set_title(ax, title, default)
        legend(ax, handles=handles)
    return ax
