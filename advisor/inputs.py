"""What the model reads from a history: from a store, the small frames and the duration
fits, kept in the store between runs so that a check against a large history need not
read and fit every Backup again; and from any history's frames and fits, the fleet the
model scores (:func:`fleet_from_history`).

The model does no I/O and the store knows no model; this is the glue both the CLI and a
notebook call::

    from advisor.inputs import model_inputs
    from advisor.store import HistoryStore
    inputs = model_inputs(HistoryStore())
    analysis = advisor.advice.analyse(inputs.frames, inputs.fits)
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from advisor import __version__
from advisor.longhorn import (
    DEFAULT_CONCURRENCY,
    FAILED_BACKUP_TTL_SETTING,
    POLL_INTERVAL_SETTING,
    parse_lock_path,
    system_backup_policy,
)
from advisor.model.durations import MODEL_BACKUP_COLUMNS, DurationFits, fit_durations
from advisor.model.fleet import Fleet, JobSpec, VolumeSpec
from advisor.sources.base import Problem
from advisor.store import HistoryStore

__all__ = ["FITS", "ModelInputs", "fleet_from_history", "history_cluster", "job_specs",
           "model_inputs", "store_problems"]

FITS = "duration-fits"
"""The name the fits are kept under (:meth:`HistoryStore.keep_derived`)."""
_SMALL = ("jobs", "volumes", "backup_volumes", "settings")


@dataclass(frozen=True)
class ModelInputs:
    """``frames``: jobs, volumes, backup volumes and settings (latest rows), and
    ``backups``: the columns asked for, or (when none were) only the Backups that DR
    volumes name in ``status.lastBackup``, which :func:`fleet_from_history` reads.
    ``fits``: the duration fits; ``reused``: read back from the store rather than fitted
    (then without their per-backup frames, see :meth:`DurationFits.from_frames`);
    ``kept``: fitted now and kept in the store for the next run."""

    frames: dict[str, pd.DataFrame]
    fits: DurationFits
    reused: bool
    kept: bool


def fitting_modules() -> list[Path]:
    """The source files the fits are computed by: :mod:`advisor.model.durations` and
    every advisor module it imports, and those they import (anywhere in the file, so a
    module the fitting code comes to use is counted without a list to keep)."""
    found: dict[str, Path] = {}
    todo = ["advisor.model.durations"]
    while todo:
        name = todo.pop()
        spec = importlib.util.find_spec(name)
        if name in found or spec is None or not spec.origin:
            continue
        found[name] = path = Path(spec.origin)
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("advisor.")]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and \
                    (node.module or "").startswith("advisor"):
                todo.append(node.module)  # (and the names that are modules)
                todo += [f"{node.module}.{a.name}" for a in node.names
                         if _is_module(f"{node.module}.{a.name}")]
    return [found[n] for n in sorted(found)]


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # (a name inside a module, not a submodule)
        return False


def fits_key() -> str:
    """What the fits depend on besides the history: the advisor's version and the
    fitting code itself (:func:`fitting_modules`), so an edited fit is never read back
    as current."""
    code = hashlib.sha256()
    for path in fitting_modules():
        code.update(path.read_bytes())
    return f"{__version__}+{code.hexdigest()[:16]}"


def model_inputs(store: HistoryStore, *, backup_columns: Sequence[str] | None = None,
                 keep: bool = True) -> ModelInputs:
    """The model's inputs from ``store``: the fits kept from its present collections
    when there are (a check then reads no Backup it does not ask for), else fitted from
    its Backups and, with ``keep``, kept (when no other process is writing the store;
    a store that cannot be written is read as if ``keep`` were False).
    ``backup_columns``: Backup columns to return in ``frames["backups"]``."""
    ids = store.collection_ids()
    small = {name: store.read(name) for name in _SMALL}
    key = fits_key()
    kept = store.derived(FITS, key)
    if kept is not None:
        fits = DurationFits.from_frames(kept)
        backups = (store.read("backups", columns=list(backup_columns)) if backup_columns
                   else kept["dr_backups"])
        return ModelInputs({**small, "backups": backups}, fits, reused=True, kept=False)
    columns = list(dict.fromkeys([*MODEL_BACKUP_COLUMNS, *(backup_columns or ())]))
    backups = store.read("backups", columns=columns)
    fits = fit_durations(backups, small["volumes"], small["backup_volumes"],
                         jobs=small["jobs"])
    dr = _dr_backups(backups, small["volumes"])
    stored = False
    if keep:
        try:
            stored = store.keep_derived(FITS, key, {**fits.to_frames(), "dr_backups": dr},
                                        ids)
        except OSError:  # (a read-only store: it is read, not kept)
            stored = False
    out = backups[list(backup_columns)] if backup_columns else dr
    return ModelInputs({**small, "backups": out}, fits, reused=False, kept=stored)


def store_problems(store: HistoryStore) -> list[Problem]:
    """The records the store's last collection skipped or warned about (``collect`` keeps
    them in its manifest), as :class:`Problem` s: what a report of the store lists, as
    a report of the files would."""
    for c in reversed(store.collections()):
        if "problems" in c.meta:
            return [Problem(f"collection {c.id}", "", "", p["text"],
                            p.get("severity", "skipped")) for p in c.meta["problems"]]
    return []


def _dr_backups(backups: pd.DataFrame, volumes: pd.DataFrame) -> pd.DataFrame:
    """The Backups that DR (standby) volumes name in ``status.lastBackup``."""
    standby = volumes["standby"].fillna(False).astype(bool)
    wanted = set(volumes.loc[standby, "last_backup"].dropna().astype(str)) \
        if "last_backup" in volumes.columns else set()
    return backups[backups["backup"].isin(wanted)].reset_index(drop=True)


# --- the history as the model's fleet -----------------------------------------------------

def _names(value: object) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ()
    return tuple(v for v in str(value).split(",") if v)


def job_specs(jobs: pd.DataFrame) -> tuple[JobSpec, ...]:
    """The RecurringJobs of a ``jobs`` frame as :class:`JobSpec` (no retain: 1, no
    concurrency: Longhorn's default; a system backup's policy from its parameters)."""
    return tuple(JobSpec(str(r.recurring_job), str(r.cron), str(r.task),
                         int(r.retain) if pd.notna(r.retain) else 1,
                         int(r.concurrency) if pd.notna(r.concurrency)
                         else DEFAULT_CONCURRENCY, _names(r.groups),
                         system_backup_policy(getattr(r, "parameters", None)))
                 for r in jobs.itertuples())


def _setting(settings: pd.DataFrame | None, cluster: str, name: str) -> int | None:
    """A Longhorn setting's last collected whole-number value in ``cluster``, if any."""
    if settings is None:
        return None
    s = settings[(settings["cluster"] == cluster) & (settings["setting"] == name)]
    value = str(s["value"].iloc[-1]).strip() if len(s) else ""
    return int(value) if value.isdigit() else None


def _dr_source(volume: object, owner: Mapping[str, str]) -> str | None:
    """The volume a DR volume follows: the owner of the Backup its ``status.lastBackup``
    names, else the volume of the lock path in its restore message."""
    last = getattr(volume, "last_backup", None)
    if isinstance(last, str) and last in owner:
        return owner[last]
    message = getattr(volume, "message", None)
    if isinstance(message, str):
        found = re.search(r"backupstore/\S+\.lck", message)
        path = parse_lock_path(found.group(0)) if found else None
        if path is not None and path.matches_volume():
            return path.volume
    return None


def history_cluster(frames: Mapping[str, pd.DataFrame], cluster: str | None = None) -> str:
    """``cluster``, else the history's only one, by its jobs and volumes ("" for none);
    a ValueError names them when there are several."""
    if cluster is not None:
        return cluster
    clusters = sorted(set(frames["jobs"]["cluster"].dropna())
                      | set(frames["volumes"]["cluster"].dropna()))
    if len(clusters) > 1:
        raise ValueError(f"several clusters {clusters}: choose one")
    return clusters[0] if clusters else ""


def _timing(settings: pd.DataFrame | None, cluster: str) -> dict[str, float]:
    """The Fleet fields of the timing settings the cluster has set (Fleet's defaults,
    Longhorn's, stand for the rest)."""
    timing = {}
    ttl_min = _setting(settings, cluster, FAILED_BACKUP_TTL_SETTING)
    if ttl_min is not None:
        timing["failed_backup_ttl_s"] = ttl_min * 60.0
    poll = _setting(settings, cluster, POLL_INTERVAL_SETTING)
    if poll:  # (0 turns polling off)
        timing["poll_interval_s"] = float(poll)
    return timing


def fleet_from_history(frames: Mapping[str, pd.DataFrame], fits: DurationFits,
                       cluster: str | None = None) -> tuple[Fleet, tuple[str, ...]]:
    """The fleet one cluster's history describes: its RecurringJobs, its volumes with
    their labels and state, each volume's fitted incremental backup duration and its
    deletion duration (fitted or prior, as ``fits`` says). Returns the notes on what was
    assumed. A volume with no fit (no usable backup and no fleet prior) is left out and
    said so. A DR volume follows the volume named by its ``status.lastBackup`` (the
    owner of that Backup) or by the lock path in its restore message; it restores at
    every ``backupstore-poll-interval`` (default 300 s) for as long as a backup of its
    source takes (an assumption, noted); one whose source is unknown is left out and
    said so."""
    jobs_df, vols_df = frames["jobs"], frames["volumes"]
    cluster = history_cluster(frames, cluster)
    jobs_df = jobs_df[jobs_df["cluster"] == cluster]
    vols_df = vols_df[vols_df["cluster"] == cluster]
    notes: list[str] = []
    jobs = job_specs(jobs_df)
    timing = _timing(frames.get("settings"), cluster)
    poll_s = timing.get("poll_interval_s", Fleet.poll_interval_s)
    durations = fits.backup_durations("incremental", cluster)
    deletions = fits.deletion_durations(cluster)
    backups = frames.get("backups")
    owner: dict[str, str] = {}
    standby = vols_df["standby"].fillna(False).astype(bool)
    wanted = set(vols_df.loc[standby, "last_backup"].dropna().astype(str)) \
        if "last_backup" in vols_df.columns else set()
    if backups is not None and wanted:  # only the Backups DR volumes name
        b = backups[(backups["cluster"] == cluster) & backups["backup"].isin(wanted)]
        owner = dict(zip(b["backup"].astype(str), b["volume"].astype(str), strict=True))
    volumes, left_out, dr, dr_unknown = [], [], [], []
    for r in vols_df.itertuples():
        name = str(r.volume)
        if pd.notna(r.standby) and bool(r.standby):
            dr.append(r)
            continue
        deletion = deletions.get(name)
        if name not in durations or deletion is None:
            left_out.append(name)
            continue
        volumes.append(VolumeSpec(
            name, int(r.size_bytes) if pd.notna(r.size_bytes) else 0, durations[name],
            deletion, jobs=_names(r.recurring_jobs),
            groups=_names(r.recurring_job_groups),
            state=str(r.state) if pd.notna(r.state) else "attached",
            has_backup=bool(_names(getattr(r, "last_backup", None)))))
    known = {v.name: v for v in volumes}
    for r in dr:
        source = _dr_source(r, owner)
        if source not in known:
            dr_unknown.append(str(r.volume))
            continue
        volumes.append(VolumeSpec(
            str(r.volume), int(r.size_bytes) if pd.notna(r.size_bytes) else 0,
            known[source].backup_duration, known[source].deletion_duration,
            standby=True, restore_of=source, state="attached"))
    if left_out:
        notes.append(f"{len(left_out)} volume(s) without a duration estimate left out: "
                     + ", ".join(sorted(left_out)[:10]))
    if len(dr) > len(dr_unknown):
        notes.append(f"{len(dr) - len(dr_unknown)} DR volume(s): an incremental restore "
                     f"every {poll_s:g} s poll lasting as long as a backup of its source "
                     "(assumed: it reads about what the backup wrote)")
    if dr_unknown:
        notes.append(f"{len(dr_unknown)} DR volume(s) whose source is not in the history "
                     "(no status.lastBackup of a known Backup, no lock path in its "
                     "message): their restores are not modelled: "
                     + ", ".join(sorted(dr_unknown)[:10]))
    prior = fits.table[(fits.table["cluster"] == cluster)
                       & (fits.table["source"] != "own_history")]
    if len(prior):
        notes.append(f"{prior['volume'].nunique()} volume(s) on fleet priors")
    notes.append("deletion durations: " + ", ".join(
        f"{k} for {v} volume(s)" for k, v in
        fits.deletions[fits.deletions["cluster"] == cluster]["source"].value_counts()
        .items()))
    return Fleet(tuple(volumes), jobs, **timing), tuple(notes)
