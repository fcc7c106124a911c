"""The history frames: column names, dtypes, units and meaning, and their validation.

Every stage passes these frames: sources build them, the store keeps them, the model reads
them. A column's meaning follows Longhorn's CRs (see ``longhorn-facts.md`` section 4).

Times are timezone-aware UTC (``datetime64[ns, UTC]``); sizes are bytes (nullable
``Int64``); durations are seconds (``float64``, NaN where unknown).

Frames
------
``backups``
    One row per observation of a Backup. ``started_at`` is ``status.snapshotCreatedAt``,
    ``finished_at`` is ``status.backupCreatedAt`` (Completed only), ``requested_at`` is
    ``metadata.creationTimestamp``. A backup without an end is kept as a right-censored
    row (``censored`` is true, ``duration_s`` is NaN), never dropped; how long it lasted at
    least, and every duration the model reads, follow one rule: :func:`backup_times`.
``jobs``
    RecurringJobs, one row per observation.
``volumes``
    Volumes with their recurring-job labels, one row per observation.
``backup_volumes``
    BackupVolumes (a volume on one backup target), one row per observation.
``settings``
    Longhorn settings that change timing, one row per observation.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

SCHEMA_VERSION = 2
"""Version of the frames' layout. Bumped when a column is added, renamed or retyped.
2: backups gained ``deletion_requested_at``, ``deleted_at`` and ``time_resolution_s``."""

Dtype = Literal["string", "Int64", "float64", "boolean", "datetime"]

_PANDAS_DTYPE: dict[str, object] = {
    "string": pd.StringDtype(),
    "Int64": pd.Int64Dtype(),
    "float64": "float64",
    "boolean": pd.BooleanDtype(),
    "datetime": pd.DatetimeTZDtype("ns", "UTC"),
}


@dataclass(frozen=True)
class Column:
    """One column of a frame: its name, dtype, unit and meaning."""

    name: str
    dtype: Dtype
    description: str
    unit: str = ""
    nullable: bool = True


BACKUP_STATES = ("", "Pending", "InProgress", "Completed", "Error", "Unknown", "Deleting")
"""``status.state`` values of a Backup CR; ``""`` is Longhorn's New."""

BACKUP_STATE_RANK: dict[str, int] = {"": 0, "Pending": 1, "InProgress": 2, "Unknown": 3,
                                     "Error": 4, "Completed": 4, "Deleting": 5}
"""How far a Backup has got. It only moves forward, so of two observations of one Backup
the most advanced state is kept (by a file's reader and by the store): an old export
loaded late must not hide a later state. Error and Completed are both final (the later
observation wins); states not listed rank below New."""

LOCK_CONFLICTS = (
    "none",
    "delete_blocked",
    "create_blocked",
    "restore_blocked",
    "pending_behind_deletion",
)
"""Kinds of lock conflict read from messages (see ``advisor.longhorn.classify_message``)."""

BACKUP_MODES = ("", "full", "incremental")

_IDENTITY = [
    Column("cluster", "string", "cluster the record came from (kube context or --cluster)",
           nullable=False),
]
_PROVENANCE = [
    Column("source", "string", "where the record was read: 'file:<path>', 'csv:<path>', "
           "'kube:<context>', 'prometheus:<url>', 'sample'", nullable=False),
    Column("collected_at", "datetime", "when the record was collected", "UTC",
           nullable=False),
]

BACKUPS: tuple[Column, ...] = (
    *_IDENTITY,
    Column("backup_target", "string", "backup target name ('default' before Longhorn 1.8)",
           nullable=False),
    Column("volume", "string", "Longhorn volume name (status.volumeName)", nullable=False),
    Column("backup", "string", "Backup CR name", nullable=False),
    Column("uid", "string", "metadata.uid"),
    Column("snapshot", "string", "spec.snapshotName"),
    Column("recurring_job", "string", "RecurringJob that made it (spec.labels.RecurringJob, "
           "else status.labels.RecurringJob); empty for manual and system backups",
           nullable=False),
    Column("state", "string", "status.state: '' (New), Pending, InProgress, Completed, Error, "
           "Unknown, Deleting", nullable=False),
    Column("requested_at", "datetime", "metadata.creationTimestamp: when the backup was asked "
           "for (for a record pulled from the store: the pull time)", "UTC"),
    Column("started_at", "datetime", "status.snapshotCreatedAt: when the replica started "
           "the backup", "UTC"),
    Column("finished_at", "datetime", "status.backupCreatedAt for Completed backups: when all "
           "blocks were uploaded", "UTC"),
    Column("last_synced_at", "datetime", "status.lastSyncedAt (about the failure time for "
           "Error backups)", "UTC"),
    Column("deletion_requested_at", "datetime", "metadata.deletionTimestamp: when the "
           "Backup's deletion was asked for (its backupstore deletion starts then)", "UTC"),
    Column("deleted_at", "datetime", "when a watch saw the Backup removed (its DELETED "
           "event): the end of its deletion; empty from lists and files", "UTC"),
    Column("time_resolution_s", "float64", "for times derived from samples (Prometheus): "
           "the interval between samples, within which started_at and finished_at are "
           "each known; NaN for times read from the CR (1 s, replica clock)", "s"),
    Column("duration_s", "float64", "finished_at - started_at for Completed backups; NaN "
           "otherwise", "s"),
    Column("censored", "boolean", "true when the backup has no end (in progress, failed): a "
           "right-censored duration", nullable=False),
    Column("progress", "Int64", "status.progress", "%"),
    Column("size_bytes", "Int64", "status.size", "bytes"),
    Column("volume_size_bytes", "Int64", "status.volumeSize", "bytes"),
    Column("new_upload_bytes", "Int64", "status.newlyUploadDataSize (>= 1.7)", "bytes"),
    Column("reupload_bytes", "Int64", "status.reUploadedDataSize (>= 1.7)", "bytes"),
    Column("backup_mode", "string", "spec.backupMode: full, incremental or '' (< 1.7)",
           nullable=False),
    Column("lock_conflict", "string", "lock conflict read from the messages: none, "
           "delete_blocked, create_blocked, restore_blocked, pending_behind_deletion",
           nullable=False),
    Column("lock_path", "string", "backupstore lock file named in the message"),
    Column("lock_path_matches", "boolean", "whether the lock path's hash folders belong to "
           "this volume (NA when there is no lock path)"),
    Column("message", "string", "status.error, else status.messages.error, else "
           "status.messages.info"),
    *_PROVENANCE,
)

JOBS: tuple[Column, ...] = (
    *_IDENTITY,
    Column("recurring_job", "string", "RecurringJob name (spec.name, else metadata.name)",
           nullable=False),
    Column("task", "string", "spec.task: backup, backup-force-create, snapshot, ...",
           nullable=False),
    Column("cron", "string", "spec.cron as written", nullable=False),
    Column("retain", "Int64", "spec.retain (backups of this job kept per volume)"),
    Column("concurrency", "Int64", "spec.concurrency: volumes processed at once in one run "
           "(CRD default 10 when left out)"),
    Column("groups", "string", "spec.groups, comma-separated, sorted"),
    Column("labels", "string", "spec.labels as JSON"),
    Column("parameters", "string", "spec.parameters as JSON"),
    Column("full_backup_interval", "Int64", "parameters.full-backup-interval: every N-th "
           "run is full"),
    Column("execution_count", "Int64", "status.executionCount (>= 1.7)"),
    *_PROVENANCE,
)

VOLUMES: tuple[Column, ...] = (
    *_IDENTITY,
    Column("volume", "string", "Volume name", nullable=False),
    Column("size_bytes", "Int64", "spec.size", "bytes"),
    Column("actual_size_bytes", "Int64", "status.actualSize", "bytes"),
    Column("standby", "boolean", "status.isStandby: a DR volume"),
    Column("restore_required", "boolean", "status.restoreRequired"),
    Column("state", "string", "status.state: attached, detached, ...", nullable=False),
    Column("robustness", "string", "status.robustness: healthy, degraded, faulted, ...",
           nullable=False),
    Column("recurring_jobs", "string", "jobs from recurring-job.longhorn.io/<job>=enabled "
           "labels, comma-separated, sorted", nullable=False),
    Column("recurring_job_groups", "string", "groups from "
           "recurring-job-group.longhorn.io/<group>=enabled labels, comma-separated, sorted",
           nullable=False),
    Column("backup_target", "string", "spec.backupTargetName (>= 1.8), else 'default'",
           nullable=False),
    Column("last_backup", "string", "status.lastBackup"),
    Column("last_backup_at", "datetime", "status.lastBackupAt: start of the last backup",
           "UTC"),
    Column("lock_conflict", "string", "lock conflict read from the volume's conditions "
           "(a DR volume's restore: restore_blocked), else none", nullable=False),
    Column("message", "string", "the condition message the lock conflict was read from"),
    *_PROVENANCE,
)

BACKUP_VOLUMES: tuple[Column, ...] = (
    *_IDENTITY,
    Column("backup_target", "string", "backup target name", nullable=False),
    Column("backup_volume", "string", "BackupVolume CR name", nullable=False),
    Column("volume", "string", "Longhorn volume name", nullable=False),
    Column("size_bytes", "Int64", "status.size: data kept for the volume", "bytes"),
    Column("last_backup", "string", "status.lastBackupName"),
    Column("last_backup_at", "datetime", "status.lastBackupAt", "UTC"),
    *_PROVENANCE,
)

SETTINGS: tuple[Column, ...] = (
    *_IDENTITY,
    Column("setting", "string", "Setting name", nullable=False),
    Column("value", "string", "value as written", nullable=False),
    *_PROVENANCE,
)

FRAMES: dict[str, tuple[Column, ...]] = {
    "backups": BACKUPS,
    "jobs": JOBS,
    "volumes": VOLUMES,
    "backup_volumes": BACKUP_VOLUMES,
    "settings": SETTINGS,
}
"""Every frame by name."""

KEYS: dict[str, tuple[str, ...]] = {
    "backups": ("cluster", "backup_target", "backup"),
    "jobs": ("cluster", "recurring_job"),
    "volumes": ("cluster", "volume"),
    "backup_volumes": ("cluster", "backup_target", "backup_volume"),
    "settings": ("cluster", "setting"),
}
"""Columns that identify one object in a frame; the store deduplicates on them."""

PROVENANCE_COLUMNS = ("source", "collected_at")
"""Columns that say where and when a row was seen, not what it says."""


def utc(value: object) -> pd.Timestamp:
    """A time as a UTC ``pd.Timestamp`` (a time without an offset is taken as UTC):
    times are UTC everywhere inside; this is the conversion at the edges."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


CENSORED_AT_SYNC = ("Error", "Unknown", "Deleting")
"""States whose backup without an end stopped being observed at ``last_synced_at``."""


@dataclass(frozen=True)
class BackupTimes:
    """The one duration rule's reading of a ``backups`` frame, row by row (seconds since
    the epoch; NaN where unknown): see :func:`backup_times`."""

    start: np.ndarray
    duration: np.ndarray
    ended: np.ndarray
    at_sync: np.ndarray
    running: np.ndarray
    censored: np.ndarray
    """No end and not Completed (a Completed backup without an end is missing data)."""

    @property
    def usable(self) -> np.ndarray:
        """Rows that give a duration, complete or censored (and positive; NaN is not)."""
        return (self.ended | self.at_sync | self.running) & (self.duration > 0)


def epoch_seconds(df: pd.DataFrame | None, column: str) -> np.ndarray:
    """A time column as float Unix seconds (NaN for missing, or for a missing column)."""
    if df is None or column not in df.columns:
        return np.full(0 if df is None else len(df), np.nan)
    v = pd.to_datetime(df[column], utc=True).dt.tz_localize(None).to_numpy()
    out = v.astype("datetime64[ns]").astype(np.int64) / 1e9
    out[np.isnat(v)] = np.nan
    return out


def backup_times(b: pd.DataFrame, now: object = None, *,
                 seconds: Mapping[str, np.ndarray] | None = None) -> BackupTimes:
    """Each backup's start and duration by the one rule every reader follows (the
    sources' ``duration_s`` and ``censored``, the fits, the trend and the report):

    - the start is ``started_at``, else ``requested_at`` (queueing then included);
    - a backup with a ``finished_at`` has ended: its duration is ``finished_at - start``;
    - without one it is right-censored ("lasted at least"): a failed, unknown or
      deleting one (:data:`CENSORED_AT_SYNC`) at ``last_synced_at`` (about when it
      failed), an InProgress one, or a Pending one that has started, at its row's
      ``collected_at`` (``now`` where that is missing); a Pending or New one that has
      not started says nothing about upload time (no duration).

    ``seconds``: the time columns as :func:`epoch_seconds` reads them, when the caller
    has them already (the fits read millions of rows)."""

    def secs(column: str) -> np.ndarray:
        return seconds[column] if seconds is not None and column in seconds \
            else epoch_seconds(b, column)

    state = b["state"].astype("string").fillna("") if "state" in b.columns else \
        pd.Series([""] * len(b), dtype="string")
    start0, fin = secs("started_at"), secs("finished_at")
    coll = secs("collected_at").copy()  # (filled in below: never the caller's array)
    if now is not None:
        coll[np.isnan(coll)] = (utc(now) - pd.Timestamp(0, tz="UTC")).total_seconds()
    ended = ~np.isnan(fin)
    at_sync = ~ended & state.isin(CENSORED_AT_SYNC).to_numpy(bool)
    running = ~ended & ((state == "InProgress").to_numpy(bool)
                        | (state.isin(["Pending", ""]).to_numpy(bool) & ~np.isnan(start0)))
    start = np.where(np.isnan(start0), secs("requested_at"), start0)
    dur = np.where(ended, fin, np.where(at_sync, secs("last_synced_at"), coll)) - start
    return BackupTimes(start, dur, ended, at_sync, running,
                       ~ended & (state != "Completed").to_numpy(bool))


def with_durations(b: pd.DataFrame, rule: BackupTimes | None = None) -> pd.DataFrame:
    """``b`` (a ``backups`` frame) with ``duration_s`` and ``censored`` set by
    :func:`backup_times` (``rule``: its result for ``b``, when the caller has it): every
    source's last step, so the stored columns follow the rule the model reads (a
    negative duration, clock skew, is left empty)."""
    rule = backup_times(b) if rule is None else rule
    ok = rule.ended & (rule.duration >= 0)
    return b.assign(duration_s=pd.Series(np.where(ok, rule.duration, np.nan), index=b.index,
                                         dtype="float64"),
                    censored=pd.Series(rule.censored, index=b.index, dtype="boolean"))


def columns(frame: str) -> tuple[Column, ...]:
    """The columns of ``frame`` (one of :data:`FRAMES`)."""
    try:
        return FRAMES[frame]
    except KeyError:
        raise ValueError(f"unknown frame {frame!r}; frames are {', '.join(FRAMES)}") from None


def dtypes(frame: str) -> dict[str, object]:
    """The pandas dtype of each column of ``frame``."""
    return {c.name: _PANDAS_DTYPE[c.dtype] for c in columns(frame)}


def empty(frame: str) -> pd.DataFrame:
    """An empty frame with every column in its dtype."""
    return pd.DataFrame({n: pd.Series([], dtype=d) for n, d in dtypes(frame).items()})


def from_records(frame: str, records: list[dict]) -> pd.DataFrame:
    """Build ``frame`` from a list of dicts keyed by column name (missing keys are NA).

    Datetime values may be ``datetime`` objects or RFC 3339 strings; they are read as UTC.
    """
    cols = columns(frame)
    data = {c.name: [r.get(c.name) for r in records] for c in cols}
    return coerce(frame, pd.DataFrame(data, columns=[c.name for c in cols]))


def coerce(frame: str, df: pd.DataFrame, only: Collection[str] | None = None
           ) -> pd.DataFrame:
    """Return ``df`` with exactly the columns of ``frame`` (or those of them named in
    ``only``), in order and in their dtypes.

    Missing columns are added as NA. Raises ``ValueError`` when a column cannot be
    converted; :func:`validate` reports such problems row by row instead.
    """
    out = {}
    n = len(df)
    for c in columns(frame):
        if only is not None and c.name not in only:
            continue
        dtype = _PANDAS_DTYPE[c.dtype]
        if c.name not in df.columns:
            out[c.name] = pd.Series([None] * n, dtype=dtype, index=df.index)
            continue
        s = df[c.name]
        if c.dtype == "datetime":
            s = pd.to_datetime(s, utc=True, format="ISO8601").astype(dtype)
        elif c.dtype == "string" or c.dtype == "boolean":
            s = s.astype(dtype)
        elif c.dtype == "Int64":
            s = pd.to_numeric(s).astype(dtype)
        else:
            s = pd.to_numeric(s).astype(dtype)
        out[c.name] = s
    return pd.DataFrame(out, index=df.index)


@dataclass(frozen=True)
class Problem:
    """One problem found by :func:`validate`."""

    frame: str
    row: int | None
    column: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "frame"
        return f"{self.frame}: {where}, column {self.column!r}: {self.message}"


class SchemaError(ValueError):
    """A frame does not match its schema; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        head = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} schema problem(s):\n{head}{more}")


_MAX_ROWS_REPORTED = 20


def validate(frame: str, df: pd.DataFrame, *, raise_: bool = True) -> list[Problem]:
    """Check ``df`` against the schema of ``frame`` and report every problem at once.

    Checks: missing and unexpected columns, dtypes, nulls in non-nullable columns, enum
    values (state, lock conflict, backup mode), negative sizes and durations. (A finish
    before its start is kept, with ``duration_s`` empty: it records clock skew.)
    Raises :class:`SchemaError` with all problems when ``raise_`` is true; otherwise
    returns them.
    """
    expected = dtypes(frame)
    problems = [Problem(frame, None, name, "missing column")
                for name in expected if name not in df.columns]
    problems += [Problem(frame, None, str(name), "unexpected column")
                 for name in df.columns if name not in expected]
    for c in columns(frame):
        if c.name not in df.columns:
            continue
        s = df[c.name]
        if str(s.dtype) != str(expected[c.name]):
            problems.append(Problem(frame, None, c.name,
                                    f"dtype {s.dtype}, expected {expected[c.name]}"))
            continue
        if not c.nullable:
            problems += _bad_rows(frame, df, c.name, s.isna(), "null in a non-nullable column")
        if c.dtype in ("Int64", "float64") and c.unit in ("bytes", "s", "%"):
            problems += _bad_rows(frame, df, c.name, s < 0, "negative value")
    if frame == "backups":
        problems += _enum_problems(frame, df)
    if raise_ and problems:
        raise SchemaError(problems)
    return problems


def _bad_rows(frame: str, df: pd.DataFrame, column: str, mask: pd.Series,
              message: str) -> list[Problem]:
    """A problem for each row of ``df`` where ``mask`` holds, the first
    :data:`_MAX_ROWS_REPORTED` of them one by one and the others counted."""
    rows = list(df.index[mask.fillna(False).to_numpy(dtype=bool)])
    out = [Problem(frame, int(r), column, message) for r in rows[:_MAX_ROWS_REPORTED]]
    if len(rows) > _MAX_ROWS_REPORTED:
        out.append(Problem(frame, None, column,
                           f"{message} in {len(rows) - _MAX_ROWS_REPORTED} more rows"))
    return out


def _enum_problems(frame: str, df: pd.DataFrame) -> list[Problem]:
    """The rows whose state, lock conflict or backup mode is none Longhorn has."""
    out = []
    enums = {"state": BACKUP_STATES, "lock_conflict": LOCK_CONFLICTS,
             "backup_mode": BACKUP_MODES}
    for name, allowed in enums.items():
        if name in df.columns and str(df[name].dtype) == "string":
            out += _bad_rows(frame, df, name, ~df[name].isin(allowed) & df[name].notna(),
                             f"not one of {allowed}")
    return out


def describe(frame: str) -> str:
    """A Markdown table of the columns of ``frame`` (used by the README and ``--help``)."""
    lines = ["| column | dtype | unit | meaning |", "|---|---|---|---|"]
    for c in columns(frame):
        dt = "datetime64[ns, UTC]" if c.dtype == "datetime" else c.dtype
        lines.append(f"| `{c.name}` | {dt} | {c.unit} | {c.description} |")
    return "\n".join(lines)
