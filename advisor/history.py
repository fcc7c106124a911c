"""What a history holds: clusters, volumes, jobs, backups by state, time range, conflicts.

A pure summary of the frames (no I/O), shown by ``advisor history`` and usable in a
notebook as a dict or rendered as HTML.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field

import pandas as pd

from advisor import schema


@dataclass(frozen=True)
class HistorySummary:
    """Counts over the deduplicated frames of a history store or a load.

    ``lock_conflicts`` counts backups by the conflict their messages show, plus volumes
    whose conditions show one (a DR volume's blocked restore).

    Times are UTC; ``first_backup_at`` / ``last_backup_at`` span the backups' start times
    (request time where a backup never started). ``deletions_measured``: backups whose
    deletion was seen from its request to its removal (``advisor watch``), and
    ``deletion_median_s`` the median of those durations in seconds.
    """

    clusters: list[str]
    backup_targets: list[str]
    volumes: int
    jobs: list[str]
    backups: int
    backups_by_state: dict[str, int]
    censored_backups: int
    lock_conflicts: dict[str, int]
    lock_paths_not_matching: int
    first_backup_at: str | None
    last_backup_at: str | None
    volumes_with_backups: int = 0
    observations: dict[str, int] = field(default_factory=dict)
    deletions_measured: int = 0
    deletion_median_s: float | None = None

    def to_dict(self) -> dict:
        """The summary as plain JSON-ready data."""
        return asdict(self)

    def _rows(self) -> list[tuple[str, str]]:
        states = ", ".join(f"{s or 'New'} {n}" for s, n in self.backups_by_state.items())
        conflicts = ", ".join(f"{k} {n}" for k, n in self.lock_conflicts.items()) or "none"
        return [
            ("clusters", ", ".join(self.clusters) or "-"),
            ("backup targets", ", ".join(self.backup_targets) or "-"),
            ("volumes", f"{self.volumes} known, {self.volumes_with_backups} with backups"),
            ("recurring jobs", ", ".join(self.jobs) or "-"),
            ("backups", f"{self.backups} ({states or 'none'})"),
            ("censored (no end)", str(self.censored_backups)),
            ("deletions measured (watch)", f"{self.deletions_measured}" + (
                f", median {self.deletion_median_s:.0f} s" if self.deletions_measured
                else "")),
            ("time range (UTC)", f"{self.first_backup_at or '-'} .. {self.last_backup_at or '-'}"),
            ("lock conflicts", conflicts),
            ("lock paths not matching their volume", str(self.lock_paths_not_matching)),
        ]

    def __str__(self) -> str:
        width = max(len(k) for k, _ in self._rows())
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self._rows())

    def _repr_html_(self) -> str:
        cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
                        for k, v in self._rows())
        return f"<table>{cells}</table>"


def _iso(ts: pd.Timestamp) -> str | None:
    return None if pd.isna(ts) else ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def summarize(frames: dict[str, pd.DataFrame],
              observations: dict[str, int] | None = None) -> HistorySummary:
    """Summarise deduplicated frames (as :meth:`HistoryStore.read` returns them)."""
    b = frames.get("backups", schema.empty("backups"))
    v = frames.get("volumes", schema.empty("volumes"))
    j = frames.get("jobs", schema.empty("jobs"))
    clusters = set(b["cluster"].dropna()) | set(v["cluster"].dropna()) | set(
        j["cluster"].dropna())
    targets = set(b["backup_target"].dropna()) | set(v["backup_target"].dropna())
    times = b["started_at"].fillna(b["requested_at"])
    by_state = b["state"].value_counts().sort_index()
    conflicts = pd.concat([b.loc[b["lock_conflict"] != "none", "lock_conflict"],
                           v.loc[v["lock_conflict"] != "none", "lock_conflict"]]
                          ).value_counts().sort_index()
    deletion_s = (b["deleted_at"] - b["deletion_requested_at"]).dt.total_seconds().dropna()
    volumes = set(zip(v["cluster"], v["volume"], strict=True)) | set(
        zip(b["cluster"], b["volume"], strict=True))
    return HistorySummary(
        clusters=sorted(clusters),
        backup_targets=sorted(targets),
        volumes=len(volumes),
        volumes_with_backups=b[["cluster", "volume"]].drop_duplicates().shape[0],
        jobs=sorted(set(j["recurring_job"].dropna())),
        backups=len(b),
        backups_by_state={str(k): int(n) for k, n in by_state.items()},
        censored_backups=int(b["censored"].fillna(False).sum()),
        lock_conflicts={str(k): int(n) for k, n in conflicts.items()},
        lock_paths_not_matching=int((b["lock_path_matches"] == False).sum()),  # noqa: E712
        first_backup_at=_iso(times.min()) if len(times) else None,
        last_backup_at=_iso(times.max()) if len(times) else None,
        observations=dict(observations or {}),
        deletions_measured=len(deletion_s),
        deletion_median_s=float(deletion_s.median()) if len(deletion_s) else None,
    )
