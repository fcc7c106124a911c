"""What every chart of the report shares: the colour-blind-safe palette, the report's
style (:func:`chart_style`), the axes a chart draws on (:func:`canvas`), PNG output, and
the small helpers for titles, legends, empty charts and time axes. The conventions all
charts follow are in :mod:`advisor.report.charts`."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from io import BytesIO
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OKABE_ITO: dict[str, str] = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9",
    "bluish_green": "#009E73", "yellow": "#F0E442", "blue": "#0072B2",
    "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}
"""Okabe & Ito's colour-blind-safe palette (2008), by name."""
CMAP = "cividis"
"""Sequential colormap of the heatmap: readable with any colour vision and in grey."""
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
def canvas(ax: Axes | None, figsize: tuple[float, float]) -> Iterator[Axes]:
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


def set_title(ax: Axes, title: str | None, default: str) -> None:
    """``title`` (None: ``default``) over ``ax``, drawn as written (no mathtext)."""
    ax.set_title(default if title is None else title, parse_math=False)


def no_data(ax: Axes, title: str | None, default: str, message: str = "no data") -> Axes:
    """``ax`` as an empty chart: its title, ``message`` in the middle, no ticks."""
    set_title(ax, title, default)
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center",
            fontsize=12, color="0.4", parse_math=False)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def legend(ax: Axes, **kw: Any) -> None:
    """The legend outside the axes on the right, where it hides no data."""
    leg = ax.legend(**{"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), **kw})
    for text in leg.get_texts():
        text.set_parse_math(False)


def datenum(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC times as matplotlib date numbers (days since matplotlib's epoch)."""
    from matplotlib import dates as mdates

    t = pd.DatetimeIndex(pd.to_datetime(pd.Series(times).to_numpy(), utc=True))
    return mdates.date2num(t.tz_localize(None).to_numpy())


def plain_log_ticks(axis: Any) -> None:
    """Tick labels of a log axis as plain numbers (30, not 3x10^1)."""
    from matplotlib.ticker import FuncFormatter, LogFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))


def date_axis(ax: Axes) -> None:
    """Concise UTC date ticks on the x axis (its values: :func:`datenum`)."""
    from matplotlib import dates as mdates

    loc = mdates.AutoDateLocator(tz="UTC")
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz="UTC"))
