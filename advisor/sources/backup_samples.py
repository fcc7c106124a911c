"""Samples of longhorn-manager's backup metrics, merged per backup, to ``backups`` rows.

Only translation lives here (reading Prometheus is :mod:`advisor.sources.prometheus`).
``longhorn_backup_state`` is 0 New, 1 Pending, 2 InProgress, 3 Completed, 4 Error,
5 Unknown, and 0 for any other state (Longhorn 1.8's Deleting): a 0 after InProgress or
later is read as Deleting. A backup's series come from whichever manager owned it, so
one backup may have several (and one label set per ``recurring_job`` value): they are
merged by the ``backup`` label, an instant seen twice (a hand-over) keeping the further
state.

From the merged samples (instants on the query's step grid): ``requested_at`` is the
first New or Pending sample, ``started_at`` the first InProgress one, ``finished_at``
the first Completed one after it, ``deletion_requested_at`` the first Deleting one, and
``deleted_at`` the first instant without a sample after Deleting (while other backups
are still sampled). ``time_resolution_s`` is the step, or the gap before the start or
end sample when samples are missing there. A backup not Completed has no end and is
kept, censored.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pandas as pd

from advisor.sources.base import Problem, Severity

STATE_METRIC = "longhorn_backup_state"
SIZE_METRIC = "longhorn_backup_actual_size_bytes"
STATES = {0: "", 1: "Pending", 2: "InProgress", 3: "Completed", 4: "Error", 5: "Unknown"}
"""``longhorn_backup_state`` values (``getBackupStateValue``); 0 is also Deleting."""


@dataclass
class _Backup:
    """The merged samples of one backup, from every series that names it."""

    states: dict[int, int] = field(default_factory=dict)
    sizes: dict[int, float] = field(default_factory=dict)
    volumes: Counter[str] = field(default_factory=Counter)
    recurring_job: str = ""
    backup_target: str = ""
    bad: Counter[tuple[str, str]] = field(default_factory=Counter)


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


class BackupSamples:
    """Series of the two metrics, added as query_range returns them (``metric`` labels,
    ``values`` of [seconds, "value"]), then turned into rows by :meth:`rows`. Every
    series, sample or backup that cannot be used is in ``problems``, named by
    ``source``."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []
        self.series = 0
        self.samples = 0
        self._backups: dict[str, _Backup] = defaultdict(_Backup)

    def add(self, series: list[dict], metric: str) -> None:
        """Merge the series of ``metric`` (:data:`STATE_METRIC` or :data:`SIZE_METRIC`)."""
        for s in series:
            labels = s.get("metric") or {}
            name = labels.get("backup")
            values = s.get("values") or []
            self.series += 1
            self.samples += len(values)
            if not name:
                shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                self.problems.append(Problem(
                    self.source, f"{{{shown}}}", "backup",
                    f"{metric} series without a backup label ({len(values)} samples) left out"))
                continue
            b = self._backups[name]
            if labels.get("volume"):
                b.volumes[labels["volume"]] += len(values)
            b.recurring_job = labels.get("recurring_job") or b.recurring_job
            b.backup_target = labels.get("backup_target") or b.backup_target
            for t, v in values:
                ms = round(float(t) * 1000)
                x = float(v)
                if metric == SIZE_METRIC:
                    if not math.isfinite(x) or x < 0:
                        b.bad[(metric, v)] += 1
                    else:  # (two owners at one instant: 0 before completion, the size after)
                        b.sizes[ms] = max(x, b.sizes.get(ms, x))
                elif not math.isfinite(x) or x != int(x) or int(x) not in STATES:
                    b.bad[(metric, v)] += 1
                else:  # (two owners at one instant, in a hand-over: the further state)
                    b.states[ms] = max(int(x), b.states.get(ms, 0))

    def rows(self, start_ms: int, step_ms: int) -> list[dict]:
        """One ``backups`` row (without cluster and provenance) per usable backup, by name,
        for a window whose first instant is ``start_ms`` sampled every ``step_ms``."""
        last_ms = max((max(b.states) for b in self._backups.values() if b.states),
                      default=start_ms)
        rows = (self._row(name, self._backups[name], start_ms, step_ms, last_ms)
                for name in sorted(self._backups))
        return [r for r in rows if r is not None]

    def _problem(self, obj: str, fld: str, reason: str, severity: Severity = "skipped"
                 ) -> None:
        self.problems.append(Problem(self.source, obj, fld, reason, severity))

    def _row(self, name: str, b: _Backup, start_ms: int, step_ms: int, last_ms: int
             ) -> dict | None:
        """The row of one backup, or None (with the reason) when it is left out."""
        obj = f"backup/{name}"
        for (metric, value), n in sorted(b.bad.items()):
            what = "a size in bytes" if metric == SIZE_METRIC else "a Longhorn backup state (0-5)"
            self._problem(obj, metric, f"{n} sample(s) of value {value} are not {what}; "
                          "ignored", "warning")
        if not b.volumes:
            self._problem(obj, "volume", "no series names its volume (empty volume label: "
                          "the Backup has no backup-volume label); left out")
            return None
        if len(b.volumes) > 1:
            self._problem(obj, "volume", f"series name several volumes "
                          f"({', '.join(sorted(b.volumes))}); kept the most sampled", "warning")
        if not b.states:
            self._problem(obj, STATE_METRIC, "no usable state sample in the window; left out")
            return None
        ts = sorted(b.states)
        vals = [b.states[t] for t in ts]
        if ts[0] <= start_ms and (vals[0] >= 2 or set(vals) == {0}):
            # Its start is before the window. A row without it would also replace, in the
            # store, a fuller one read with an earlier --since.
            self._problem(obj, "started_at", f"already {STATES[vals[0]] or 'New or Deleting'} "
                          f"at the window's start {_ts(start_ms)}: it began before --since, so "
                          "its start is not in this window; left out (an earlier --since "
                          "reads it)")
            return None
        i_prog = next((i for i, v in enumerate(vals) if v == 2), None)
        i_done = next((i for i, v in enumerate(vals)
                       if v == 3 and (i_prog is None or i > i_prog)), None)
        i_del = None  # the first 0 after InProgress or later: the start of its deletion
        highest = 0
        for i, v in enumerate(vals):
            if v == 0 and highest >= 2:
                i_del = i
                break
            highest = max(highest, v)
        state = "Deleting" if vals[-1] == 0 and i_del is not None else STATES[vals[-1]]

        def gap(i: int) -> int:  # how far back the previous sample is
            return ts[i] - ts[i - 1] if i > 0 else step_ms

        started = _ts(ts[i_prog]) if i_prog is not None else None
        finished = _ts(ts[i_done]) if i_done is not None else None
        if i_done is not None and i_prog is None:
            before = (f"(last seen {STATES[vals[i_done - 1]] or 'New'} at "
                      f"{_ts(ts[i_done - 1])}) " if i_done > 0 else "")
            self._problem(obj, "started_at", f"never sampled InProgress: it was Completed at "
                          f"{finished} {before}within one sample interval "
                          f"({gap(i_done) / 1000:g} s); start left empty, so its duration counts "
                          "from its request and includes queueing (a smaller --step, down "
                          "to the scrape interval, sees more)", "warning")
        resolution = max([step_ms] + [gap(i) for i in (i_prog, i_done) if i is not None])
        # The series ending while Deleting, when others are still sampled after it, is
        # the Backup being removed: the end of its deletion.
        gone = ts[-1] + step_ms
        deleted = _ts(gone) if state == "Deleting" and gone <= last_ms else None
        size = max(b.sizes.values()) if b.sizes else None
        if size == 0 and i_done is None:
            size = None  # (status.size is empty, exported as 0, until the backup completes)
        return {
            "backup_target": b.backup_target or "default",
            "volume": b.volumes.most_common(1)[0][0],
            "backup": name,
            "recurring_job": b.recurring_job,
            "state": state,
            "requested_at": _ts(ts[0]) if vals[0] in (0, 1) and ts[0] > start_ms else None,
            "started_at": started,
            "finished_at": finished,
            "deletion_requested_at": _ts(ts[i_del]) if i_del is not None else None,
            "deleted_at": deleted,
            "time_resolution_s": resolution / 1000,
            "size_bytes": None if size is None else int(size),
            "backup_mode": "",
            "lock_conflict": "none",
        }
