"""How many backups run at once on each backup target, by hour of the week: what the
report's heatmap draws and where the fleet-wide offsets look for room."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["running_at_once"]


def running_at_once(ops: pd.DataFrame, *, freq: str = "1h") -> pd.DataFrame:
    """Mean number of backups running at once per backup target and hour of the week
    (UTC), time-weighted from the backups' intervals, not counted from their starts.

    Only rows with ``operation == "backup"`` count. The observed window runs from the
    first start to the last time seen in ``ops`` (any operation), rounded out to
    ``freq`` (a divisor of an hour: the resolution of the window's edges). For each bin of
    ``freq`` the backup-seconds inside it divided by its length is the number running on
    average; a cell is the mean of its bins in the window. A backup without an ``end``
    counts to the window's end (as :func:`timeline` draws it); give failed backups their
    failure time as ``end``. ``ops`` without ``backup_target`` is one target, "default".

    Returns one row per target, ``weekday`` (0 = Monday .. 6) and ``hour`` (0..23):
    ``running`` (mean backups at once; NaN where the window never covers that hour) and
    ``observed_h`` (hours of the window in that cell).
    """
    width = pd.Timedelta(freq)
    if width <= pd.Timedelta(0) or pd.Timedelta(hours=1) % width:
        raise ValueError(f"freq must divide an hour, got {freq!r}")
    targets = ops["backup_target"].astype(str) if "backup_target" in ops else \
        pd.Series("default", index=ops.index)
    s = pd.to_datetime(ops["start"], utc=True)
    e = pd.to_datetime(ops["end"], utc=True)
    cols = ["backup_target", "weekday", "hour", "running", "observed_h"]
    if s.notna().sum() == 0:
        return pd.DataFrame(columns=cols)
    w0 = s.min().floor(freq)
    w1 = max(s.max(), e.max() if e.notna().any() else s.max()).ceil(freq)
    w1 = max(w1, w0 + width)
    edges = pd.date_range(w0, w1, freq=width)
    t = (edges - w0).total_seconds().to_numpy()
    cells = pd.MultiIndex.from_product([range(7), range(24)], names=["weekday", "hour"])
    is_backup = ops["operation"].astype(str).eq("backup") & s.notna()
    out = []
    for target in sorted(set(targets[is_backup])) or ["default"]:
        m = is_backup & targets.eq(target)
        a = np.sort((s[m] - w0).dt.total_seconds().to_numpy())
        b = np.sort((e[m].fillna(w1).clip(lower=s[m]) - w0).dt.total_seconds().to_numpy())
        # F(t) = backup-seconds before t = sum over started of (min(t, end) - start)
        #      = t (#starts<t - #ends<t) - sum(starts<t) + sum(ends<t): sorted, O(n log n)
        ca, cb = np.concatenate([[0], np.cumsum(a)]), np.concatenate([[0], np.cumsum(b)])
        na, nb = np.searchsorted(a, t), np.searchsorted(b, t)
        busy = t * (na - nb) - ca[na] + cb[nb]
        mean = np.diff(busy) / width.total_seconds()
        bins = edges[:-1]
        g = pd.DataFrame({"weekday": bins.day_of_week, "hour": bins.hour, "running": mean})
        cell = g.groupby(["weekday", "hour"])["running"].agg(["mean", "size"])
        cell = cell.reindex(cells)
        out.append(pd.DataFrame({
            "backup_target": target, "weekday": cells.get_level_values(0),
            "hour": cells.get_level_values(1), "running": cell["mean"].to_numpy(),
            "observed_h": cell["size"].fillna(0).to_numpy() * width.total_seconds() / 3600,
        }))
    return pd.concat(out, ignore_index=True)[cols]
