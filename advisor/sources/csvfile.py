"""A CSV of backup history kept elsewhere (a spreadsheet, another tool's export).

One row per backup. Columns, named in the header, in any order:

| column | required | meaning |
|---|---|---|
| `volume` | yes | Longhorn volume name |
| `backup` | yes | backup name (unique per volume and target) |
| `state` | yes | Completed, Error, InProgress, Pending, Unknown, Deleting, or empty (New) |
| `started_at` | for durations | when the backup started (RFC 3339; no offset means UTC) |
| `finished_at` | for durations | when it completed |
| `duration_s` | | seconds; when `finished_at` is empty, `finished_at` = start + duration |
| `requested_at` | | when it was asked for |
| `recurring_job` | | the RecurringJob that made it; empty for manual backups |
| `cluster`, `backup_target` | | default: `--cluster`, `default` |
| `size_bytes`, `volume_size_bytes`, `new_upload_bytes`, `reupload_bytes` | | bytes |
| `backup_mode` | | full or incremental |
| `message` | | the Backup's error or info message (lock conflicts are read from it) |
| `uid`, `snapshot`, `last_synced_at`, `progress` | | as in the Backup CR |

Unknown columns are reported once and ignored; a row without a volume, a backup or a
valid state is reported and skipped.
"""

from __future__ import annotations

import csv
import io
import math

import pandas as pd

from advisor import longhorn, schema
from advisor.sources.base import Problem
from advisor.sources.crs import DEFAULT_BACKUP_TARGET, FrameBuilder

REQUIRED = ("volume", "backup", "state")
DERIVED = ("censored", "lock_conflict", "lock_path", "lock_path_matches", "source",
           "collected_at")
ACCEPTED = tuple(c.name for c in schema.BACKUPS if c.name not in DERIVED)


def load_csv(text: str, path: str, builder: FrameBuilder) -> None:
    """Add the rows of one CSV file of backup history to ``builder``."""
    problems = builder.result.problems
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        problems.append(Problem(path, "header", ", ".join(missing),
                                f"required column(s) missing; the header is {header}"))
        return
    unknown = [h for h in header if h not in ACCEPTED]
    if unknown:
        problems.append(Problem(path, "header", ", ".join(unknown),
                                "unknown column(s), ignored", "warning"))
    reader.fieldnames = header
    source = f"csv:{path}"
    rows = []
    for line, rec in enumerate(reader, start=2):
        place = f"line {line}"
        if None in rec:
            problems.append(Problem(path, place, "", "more fields than the header has"))
            continue
        row = {k: (v.strip() if isinstance(v, str) else v) or None
               for k, v in rec.items() if k in ACCEPTED}
        bad = next((c for c in ("volume", "backup") if not row.get(c)), None)
        if bad:
            problems.append(Problem(path, place, bad, "empty"))
            continue
        row["state"] = row.get("state") or ""
        if row["state"] not in schema.BACKUP_STATES:
            problems.append(Problem(path, place, "state",
                                    f"{row['state']!r} is not a Longhorn backup state"))
            continue
        place = f"line {line} (backup {row['backup']})"
        row["recurring_job"] = row.get("recurring_job") or ""
        row["backup_target"] = row.get("backup_target") or DEFAULT_BACKUP_TARGET
        row["backup_mode"] = row.get("backup_mode") or ""
        _finish_from_duration(row, path, place, problems)
        lock = longhorn.classify_message(row.get("message"), where="backup",
                                         volume=row["volume"])
        row.update(lock_conflict=lock.kind, lock_path=lock.lock_path,
                   lock_path_matches=lock.path_matches)
        rows.append((row, path, place, source))
    builder.add_rows("backups", rows)
    builder.result.read["CSV row"] += len(rows)


def _finish_from_duration(row: dict, path: str, place: str, problems: list[Problem]) -> None:
    """Fill ``finished_at`` from ``started_at + duration_s`` when only the duration is known."""
    duration = row.pop("duration_s", None)
    if duration is None or row.get("finished_at"):
        return
    try:
        seconds = float(duration)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError
    except ValueError:
        problems.append(Problem(path, place, "duration_s",
                                f"{duration!r} is not a number of seconds >= 0; ignored",
                                "warning"))
        return
    if row.get("started_at"):
        try:
            start = schema.utc(row["started_at"])
        except ValueError:
            return  # the bad start time is reported when the column is converted
        row["finished_at"] = (start + pd.Timedelta(seconds=seconds)).isoformat()
