"""Longhorn custom resources (as ``kubectl get -o json`` or the API returns them) to frames.

Shared by every source that sees CRs: files, the Kubernetes API. Only translation lives
here; the meaning of each field is in ``longhorn-facts.md`` section 4.

Both ``longhorn.io/v1beta1`` and ``v1beta2`` are read. Where a field was added in a later
Longhorn (``status.backupTargetName`` in 1.8, ``spec.backupMode`` in 1.7) the older form
is used as a fallback and the default applies otherwise. RecurringJob fields left out are
given the defaults Longhorn's admission webhook writes
(``webhook/resources/recurringjob/mutator.go``): ``spec.name`` = ``metadata.name``,
``concurrency`` 10, ``groups`` empty, ``retain`` at least 1 for backup tasks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor import longhorn, schema
from advisor.sources.base import LoadResult, Problem

API_GROUP = "longhorn.io"
API_VERSIONS = ("v1beta1", "v1beta2")
DEFAULT_CONCURRENCY = longhorn.DEFAULT_CONCURRENCY
DEFAULT_BACKUP_TARGET = "default"
JOB_LABEL_PREFIX = longhorn.JOB_LABEL_PREFIX
GROUP_LABEL_PREFIX = longhorn.GROUP_LABEL_PREFIX

KIND_FRAME = {
    "Backup": "backups",
    "RecurringJob": "jobs",
    "Volume": "volumes",
    "BackupVolume": "backup_volumes",
    "Setting": "settings",
}
"""Longhorn kinds the advisor reads, and the frame each one fills."""


class RecordError(Exception):
    """A record that cannot be used at all: ``field`` says which field is at fault."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Origin:
    """Where one object came from: the file (or API) and its place in it."""

    file: str
    place: str  # "item 3", "document 2", "line 17": used when the object has no name


def object_id(obj: object, origin: Origin) -> str:
    """``kind/namespace/name`` of an object, or its place in the file when unnamed."""
    if not isinstance(obj, dict):
        return origin.place
    kind = obj.get("kind") or "object"
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name")
    if not name:
        return f"{kind} at {origin.place}"
    ns = meta.get("namespace")
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def _dict(obj: dict, key: str) -> dict:
    v = obj.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise RecordError(key, f"is a {type(v).__name__}, expected a mapping")
    return v


def _text(v: object) -> str | None:
    """A CR field as text: times and numbers written unquoted in YAML come back as str."""
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _most_severe(found: Iterable[longhorn.LockMessage]) -> longhorn.LockMessage:
    """The classification that matters most: a failed backup over a blocked deletion."""
    return max(found, key=lambda m: m.severity,
               default=longhorn.classify_message(None))


def _labels_with(labels: dict, prefix: str) -> str:
    names = sorted(k[len(prefix):] for k, v in labels.items()
                   if isinstance(k, str) and k.startswith(prefix) and str(v) == "enabled")
    return ",".join(names)


# --- one extractor per kind: raw values keyed by column; conversion happens per frame ---

def _backup(obj: dict) -> dict:
    meta, spec, status = _dict(obj, "metadata"), _dict(obj, "spec"), _dict(obj, "status")
    labels = _dict(meta, "labels")
    volume = status.get("volumeName") or labels.get("backup-volume")
    if not volume:
        raise RecordError("status.volumeName", "missing (and no backup-volume label): "
                          "cannot tell which volume the backup belongs to")
    state = status.get("state") or ""
    if not isinstance(state, str) or state not in schema.BACKUP_STATE_RANK:
        raise RecordError("status.state", f"{state!r} is not a Longhorn backup state "
                          f"({', '.join(s or '(New)' for s in schema.BACKUP_STATES)})")
    spec_labels = _dict(spec, "labels")
    status_labels = _dict(status, "labels")
    messages = status.get("messages") if isinstance(status.get("messages"), dict) else {}
    texts = [status.get("error"), messages.get("error"), messages.get("info")]
    lock = _most_severe(
        longhorn.classify_message(str(t), where="backup", volume=str(volume))
        for t in texts if t)
    mode = spec.get("backupMode") or ""
    return {
        "backup_target": (status.get("backupTargetName") or labels.get("backup-target")
                          or DEFAULT_BACKUP_TARGET),
        "volume": str(volume),
        "backup": meta["name"],
        "uid": meta.get("uid"),
        "snapshot": spec.get("snapshotName") or status.get("snapshotName"),
        "recurring_job": (spec_labels.get("RecurringJob") or status_labels.get("RecurringJob")
                          or ""),
        "state": state,
        "requested_at": _text(meta.get("creationTimestamp")),
        "started_at": _text(status.get("snapshotCreatedAt")),
        "finished_at": _text(status.get("backupCreatedAt")),
        "last_synced_at": _text(status.get("lastSyncedAt")),
        "deletion_requested_at": _text(meta.get("deletionTimestamp")),
        "progress": status.get("progress"),
        "size_bytes": status.get("size"),
        "volume_size_bytes": status.get("volumeSize"),
        "new_upload_bytes": status.get("newlyUploadDataSize"),
        "reupload_bytes": status.get("reUploadedDataSize"),
        "backup_mode": mode,
        "lock_conflict": lock.kind,
        "lock_path": lock.lock_path,
        "lock_path_matches": lock.path_matches,
        "message": next((str(t) for t in texts if t), None),
    }


def _job(obj: dict) -> dict:
    meta, spec, status = _dict(obj, "metadata"), _dict(obj, "spec"), _dict(obj, "status")
    cron = spec.get("cron")
    if not cron:
        raise RecordError("spec.cron", "missing: a RecurringJob needs a schedule")
    task = spec.get("task")
    if not task:
        raise RecordError("spec.task", "missing: a RecurringJob needs a task")
    groups = spec.get("groups") or []
    if not isinstance(groups, list):
        raise RecordError("spec.groups", f"is a {type(groups).__name__}, expected a list")
    params = _dict(spec, "parameters")
    retain = spec.get("retain")
    n = 0 if retain is None else _int_or_none(retain)  # None: not a number, warned later
    if task in longhorn.RETAIN_ZERO_TASKS:
        retain = 0
    elif task == "snapshot-delete":
        retain = 0 if n is not None and n < 0 else retain
    elif n is not None and n < 1:
        retain = 1
    concurrency = spec.get("concurrency")
    if concurrency in (None, 0, "0"):
        concurrency = DEFAULT_CONCURRENCY
    return {
        "recurring_job": spec.get("name") or meta["name"],
        "task": str(task),
        "cron": str(cron),
        "retain": retain,
        "concurrency": concurrency,
        "groups": ",".join(sorted(str(g) for g in groups)),
        "labels": json.dumps(_dict(spec, "labels"), sort_keys=True),
        "parameters": json.dumps(params, sort_keys=True),
        "full_backup_interval": params.get("full-backup-interval"),
        "execution_count": status.get("executionCount"),
    }


def _condition_messages(status: dict) -> list[str]:
    """Messages of a volume's conditions: a list in v1beta2, a map by type in v1beta1."""
    conditions = status.get("conditions") or []
    if isinstance(conditions, dict):
        conditions = list(conditions.values())
    if not isinstance(conditions, list):
        raise RecordError("status.conditions", f"is a {type(conditions).__name__}, "
                          "expected a list")
    return [str(c["message"]) for c in conditions if isinstance(c, dict) and c.get("message")]


def _volume(obj: dict) -> dict:
    meta, spec, status = _dict(obj, "metadata"), _dict(obj, "spec"), _dict(obj, "status")
    labels = _dict(meta, "labels")
    # A lock failure in a volume's condition is a DR volume's incremental restore.
    found = [(longhorn.classify_message(m, where="volume", volume=meta["name"]), m)
             for m in _condition_messages(status)]
    lock, message = max(found, key=lambda f: f[0].severity,
                        default=(longhorn.classify_message(None), None))
    return {
        "lock_conflict": lock.kind,
        "message": message if lock.kind != "none" else None,
        "volume": meta["name"],
        "size_bytes": spec.get("size"),
        "actual_size_bytes": status.get("actualSize"),
        "standby": status.get("isStandby", spec.get("standby")),
        "restore_required": status.get("restoreRequired"),
        "state": status.get("state") or "",
        "robustness": status.get("robustness") or "",
        "recurring_jobs": _labels_with(labels, JOB_LABEL_PREFIX),
        "recurring_job_groups": _labels_with(labels, GROUP_LABEL_PREFIX),
        "backup_target": spec.get("backupTargetName") or DEFAULT_BACKUP_TARGET,
        "last_backup": status.get("lastBackup") or None,
        "last_backup_at": _text(status.get("lastBackupAt")),
    }


def _backup_volume(obj: dict) -> dict:
    meta, spec, status = _dict(obj, "metadata"), _dict(obj, "spec"), _dict(obj, "status")
    labels = _dict(meta, "labels")
    return {
        # Before 1.8 a BackupVolume was named after its volume and had no target.
        "backup_target": (spec.get("backupTargetName") or labels.get("backup-target")
                          or DEFAULT_BACKUP_TARGET),
        "backup_volume": meta["name"],
        "volume": spec.get("volumeName") or labels.get("backup-volume") or meta["name"],
        "size_bytes": status.get("size"),
        "last_backup": status.get("lastBackupName") or None,
        "last_backup_at": _text(status.get("lastBackupAt")),
    }


def _setting(obj: dict) -> dict:
    value = obj.get("value")
    if value is None:
        raise RecordError("value", "missing")
    return {"setting": _dict(obj, "metadata")["name"], "value": _text(value)}


_EXTRACT: dict[str, Callable[[dict], dict]] = {
    "Backup": _backup, "RecurringJob": _job, "Volume": _volume,
    "BackupVolume": _backup_volume, "Setting": _setting,
}

# Column -> the CR field it comes from, for messages that must name the field.
FIELD_OF = {
    "backups": {"requested_at": "metadata.creationTimestamp",
                "started_at": "status.snapshotCreatedAt",
                "finished_at": "status.backupCreatedAt",
                "last_synced_at": "status.lastSyncedAt", "progress": "status.progress",
                "size_bytes": "status.size", "volume_size_bytes": "status.volumeSize",
                "new_upload_bytes": "status.newlyUploadDataSize",
                "reupload_bytes": "status.reUploadedDataSize",
                "backup_mode": "spec.backupMode"},
    "jobs": {"retain": "spec.retain", "concurrency": "spec.concurrency",
             "full_backup_interval": "spec.parameters.full-backup-interval",
             "execution_count": "status.executionCount"},
    "volumes": {"size_bytes": "spec.size", "actual_size_bytes": "status.actualSize",
                "standby": "status.isStandby", "restore_required": "status.restoreRequired",
                "last_backup_at": "status.lastBackupAt"},
    "backup_volumes": {"size_bytes": "status.size", "last_backup_at": "status.lastBackupAt"},
    "settings": {},
}


def _int_or_none(v: object) -> int | None:
    try:
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def check_api_version(obj: dict) -> str:
    """The object's kind if it is a Longhorn kind the advisor reads; else RecordError."""
    api = obj.get("apiVersion")
    kind = obj.get("kind")
    if not kind or not isinstance(kind, str):
        raise RecordError("kind", "missing: not a Kubernetes object")
    if not api or not isinstance(api, str):
        raise RecordError("apiVersion", "missing")
    group, _, version = api.rpartition("/")
    if group != API_GROUP:
        raise RecordError("apiVersion", f"{api!r} is not a Longhorn object "
                          f"(expected {API_GROUP}/v1beta1 or v1beta2); the advisor reads "
                          f"{', '.join(KIND_FRAME)}")
    if version not in API_VERSIONS:
        raise RecordError("apiVersion", f"{api!r}: version {version} is not supported "
                          f"(expected {' or '.join(API_VERSIONS)})")
    if kind not in KIND_FRAME:
        raise RecordError("kind", f"{kind} is not used by the advisor (it reads "
                          f"{', '.join(KIND_FRAME)})")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise RecordError("metadata.name", "missing")
    return kind


class FrameBuilder:
    """Collects CRs one at a time, then converts each frame's columns at once.

    Conversions are vectorised because one file can hold 100,000 Backups; a value that
    does not convert becomes NA with a warning naming the object and the field.
    """

    def __init__(self, cluster: str, collected_at: pd.Timestamp, *,
                 observed_at_export: bool = False):
        self.cluster = cluster
        self.collected_at = collected_at
        # A file is a snapshot taken at its export (latest status.lastSyncedAt of its
        # Backups): a Backup still running is censored there, not at the collection.
        self.observed_at_export = observed_at_export
        self._observed: dict[str, pd.Timestamp] = {}
        self.rows: dict[str, list[dict]] = {f: [] for f in schema.FRAMES}
        self.origins: dict[str, list[tuple[str, str, str]]] = {f: [] for f in schema.FRAMES}
        self.result = LoadResult(frames={})

    def add(self, obj: object, origin: Origin, source: str) -> None:
        """Translate one object; a record that cannot be used is reported as skipped."""
        oid = object_id(obj, origin)
        try:
            if not isinstance(obj, dict):
                raise RecordError("", f"is a {type(obj).__name__}, not a Kubernetes object")
            kind = check_api_version(obj)
            row = _EXTRACT[kind](obj)
        except RecordError as e:
            self.result.problems.append(Problem(origin.file, oid, e.field, e.reason))
            return
        frame = KIND_FRAME[kind]
        self.result.read[kind] += 1
        row["source"] = source
        self.rows[frame].append(row)
        self.origins[frame].append((origin.file, oid, source))

    def add_rows(self, frame: str, rows: Iterable[tuple[dict, str, str, str]]) -> None:
        """Add rows already keyed by column (CSV); each with its file, place and source."""
        for row, file, place, source in rows:
            row["source"] = source
            self.rows[frame].append(row)
            self.origins[frame].append((file, place, source))

    def finish(self, dedupe: bool = True) -> LoadResult:
        """The frames, with every conversion problem and duplicate reported (``dedupe``:
        one row per object; else every observation added, in order, as a watch adds
        them)."""
        if self.observed_at_export:
            self._observed = self._export_times()
        for frame in schema.FRAMES:
            self.result.frames[frame] = self._convert(frame, dedupe)
        return self.result

    def _export_times(self) -> dict[str, pd.Timestamp]:
        """Per file, when it was exported: the latest ``status.lastSyncedAt`` of its
        Backups (never after the collection; files without one: the collection time)."""
        files = [o[0] for o in self.origins["backups"]]
        synced = pd.to_datetime(pd.Series([r.get("last_synced_at") or None
                                           for r in self.rows["backups"]], dtype=object),
                                utc=True, format="ISO8601", errors="coerce")
        latest = synced.groupby(pd.Series(files, dtype=object)).max().dropna()
        return {f: min(t, self.collected_at) for f, t in latest.items()}

    def _warn(self, frame: str, i: int, column: str, reason: str) -> None:
        file, oid, source = self.origins[frame][i]
        # a CSV names its columns; a CR names its fields
        field = column if source.startswith("csv:") else FIELD_OF[frame].get(column, column)
        self.result.problems.append(Problem(file, oid, field, reason, "warning"))

    def _convert(self, frame: str, dedupe: bool = True) -> pd.DataFrame:
        rows = self.rows[frame]
        if not rows:
            return schema.empty(frame)
        cols = schema.columns(frame)
        raw = {c.name: [r.get(c.name) for r in rows] for c in cols}
        raw["cluster"] = [c or self.cluster for c in raw["cluster"]]
        raw["collected_at"] = ([self._observed.get(o[0], self.collected_at)
                                for o in self.origins[frame]] if self._observed
                               else [self.collected_at] * len(rows))
        out: dict[str, pd.Series] = {}
        for c in cols:
            values = raw[c.name]
            if c.dtype == "datetime":
                out[c.name] = self._times(frame, c.name, values)
            elif c.dtype == "Int64":
                out[c.name] = self._ints(frame, c.name, values)
            elif c.dtype == "boolean":
                out[c.name] = self._bools(frame, c.name, values)
            elif c.dtype == "float64":
                out[c.name] = pd.Series(values, dtype="float64")
            else:
                out[c.name] = pd.Series(values, dtype="string")
        df = pd.DataFrame(out)
        if frame == "backups":
            df = self._backup_durations(df)
        return self._dedupe(frame, df) if dedupe else df

    def _times(self, frame: str, column: str, values: list) -> pd.Series:
        if column == "collected_at":
            return pd.Series(pd.DatetimeIndex(values).tz_convert("UTC")).astype(
                schema.dtypes(frame)[column])
        s = pd.Series(values, dtype=object)
        s = s.where(s.notna() & (s != ""), None)
        parsed = pd.to_datetime(s, utc=True, format="ISO8601", errors="coerce")
        for i in np.flatnonzero(parsed.isna().to_numpy() & s.notna().to_numpy()):
            self._warn(frame, int(i), column,
                       f"{s.iloc[i]!r} is not an RFC 3339 time; left empty")
        return parsed.astype(schema.dtypes(frame)[column])

    def _ints(self, frame: str, column: str, values: list) -> pd.Series:
        s = pd.Series(values, dtype=object)
        s = s.where(s.notna() & (s != ""), None)
        num = pd.to_numeric(s, errors="coerce")
        bad = num.isna() & s.notna()
        frac = num.notna() & (num != np.floor(num.fillna(0)))
        neg = num < 0
        for i in np.flatnonzero((bad | frac | neg).to_numpy()):
            what = "negative" if neg.iloc[i] else "not a whole number"
            self._warn(frame, int(i), column, f"{s.iloc[i]!r} is {what}; left empty")
        num = num.where(~(bad | frac | neg))
        return num.astype("Int64")

    def _bools(self, frame: str, column: str, values: list) -> pd.Series:
        out = []
        for i, v in enumerate(values):
            if v is None or v == "":
                out.append(None)
            elif isinstance(v, bool):
                out.append(v)
            elif str(v).lower() in ("true", "false"):
                out.append(str(v).lower() == "true")
            else:
                self._warn(frame, i, column, f"{v!r} is not true or false; left empty")
                out.append(None)
        return pd.Series(out, dtype="boolean")

    def _backup_durations(self, df: pd.DataFrame) -> pd.DataFrame:
        rule = schema.backup_times(df)  # (the one duration rule)
        start, end = df["started_at"], df["finished_at"]
        skew = rule.ended & (rule.duration < 0)
        for i in np.flatnonzero(skew):
            self._warn("backups", int(i), "finished_at",
                       f"{end.iloc[i]} is before status.snapshotCreatedAt {start.iloc[i]} "
                       "(clock skew between nodes?); duration left empty")
        for i in np.flatnonzero((df["state"] == "Completed").to_numpy(bool) & ~rule.ended):
            self._warn("backups", int(i), "finished_at", "missing on a Completed backup; "
                       "its duration is unknown")
        for i in np.flatnonzero(rule.ended & start.isna().to_numpy() & ~skew):
            self._warn("backups", int(i), "started_at", "missing; metadata.creationTimestamp "
                       "used as the start (the duration includes queueing)")
        df = schema.with_durations(df, rule)
        mode_ok = df["backup_mode"].isin(schema.BACKUP_MODES)
        for i in np.flatnonzero(~mode_ok.to_numpy()):
            self._warn("backups", int(i), "backup_mode",
                       f"{df['backup_mode'].iloc[i]!r} is not full or incremental; left empty")
        df.loc[~mode_ok, "backup_mode"] = ""
        return df

    def _dedupe(self, frame: str, df: pd.DataFrame) -> pd.DataFrame:
        key = list(schema.KEYS[frame])
        dup = df.duplicated(key, keep=False)
        if not dup.any():
            return df
        order = df.assign(_pos=np.arange(len(df)))
        if frame == "backups":
            order["_rank"] = order["state"].map(schema.BACKUP_STATE_RANK).astype(int)
            order = order.sort_values(["_rank", "_pos"], kind="stable")
        keep = ~order.duplicated(key, keep="last")
        kept_pos = dict(zip(map(tuple, order.loc[keep, key].to_numpy()),
                            order.loc[keep, "_pos"], strict=True))
        for i in np.flatnonzero(dup.to_numpy()):
            winner = kept_pos[tuple(df.iloc[i][key])]
            if winner == i:
                continue
            wfile, woid, _ = self.origins[frame][winner]
            file, oid, _ = self.origins[frame][i]
            same = df.iloc[i].drop("source").equals(df.iloc[winner].drop("source"))
            how = "an identical copy" if same else "a different copy"
            self.result.problems.append(Problem(
                file, oid, "", f"duplicate object: {how} is in {wfile} ({woid}); "
                "kept that one" + ("" if frame != "backups" else
                                   " (the most advanced state, else the last read)"),
                "warning"))
        keep_rows = sorted(order.loc[keep, "_pos"])
        return df.iloc[keep_rows].reset_index(drop=True)
