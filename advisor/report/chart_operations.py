"""The charts of the week's backupstore operations: the per-volume :func:`timeline` and
the hour-of-week :func:`concurrency_heatmap` (conventions: :mod:`advisor.report.charts`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from advisor.model.concurrency import running_at_once
from advisor.report.chart_base import (
    CMAP,
    OKABE_ITO,
    canvas,
    date_axis,
    datenum,
    legend,
    no_data,
    set_title,
)
from advisor.schema import utc

if TYPE_CHECKING:
    from matplotlib.axes import Axes

OPERATION_COLORS: dict[str, str] = {"backup": OKABE_ITO["blue"],
                                    "deletion": OKABE_ITO["vermillion"],
                                    "restore": OKABE_ITO["bluish_green"]}
"""Colour of each backupstore operation in every chart."""
CONFLICT_MARKERS: dict[str, str] = {"delete_blocked": "X", "create_blocked": "v",
                                    "restore_blocked": "s", "pending_behind_deletion": "D"}
"""Marker of each lock-conflict kind (any other kind: ``*``)."""
MAX_TIMELINE_VOLUMES = 30
"""Rows a timeline shows; more would not be readable at report size."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


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
    with canvas(ax, (10, 1.4 + 0.32 * max(len(shown), 3))) as ax:
        if ops.empty or not shown:
            return no_data(ax, title, default)
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
            return no_data(ax, title, default, "no operations in this window")
        x0 = datenum(s[keep].clip(lower=w0))
        # max: a finish before its start (clock skew) is drawn as a sliver, not backwards
        x1 = np.maximum(datenum(e[keep].fillna(w1).clip(upper=w1)), x0)
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
        ax.set_xlim(datenum([w0])[0], datenum([w1])[0])
        date_axis(ax)
        ax.grid(False, axis="y")
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel("volume")
        set_title(ax, title, default)
        legend(ax, handles=handles)
    return ax



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
    with canvas(ax, (10, 4)) as ax:
        if backups.empty:
            return no_data(ax, title, "Backups running at once (UTC)")
        table = running_at_once(ops)
        table = table[table["backup_target"] == backup_target]
        if table.empty:
            return no_data(ax, title, default, f"no backups on target {backup_target}")
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
        set_title(ax, title, default)
    return ax
