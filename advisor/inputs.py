"""What the model reads from a history store: the small frames, and the duration fits,
kept in the store between runs so that a check against a large history need not read
and fit every Backup again.

The model does no I/O and the store knows no model; this is the glue both the CLI and a
notebook call::

    from advisor.inputs import model_inputs
    from advisor.store import HistoryStore
    inputs = model_inputs(HistoryStore())
    analysis = advisor.advice.analyse(inputs.frames, inputs.fits)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from advisor import __version__
from advisor.model import durations
from advisor.model.durations import MODEL_BACKUP_COLUMNS, DurationFits, fit_durations
from advisor.store import HistoryStore

__all__ = ["FITS", "ModelInputs", "model_inputs"]

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


def fits_key() -> str:
    """What the fits depend on besides the history: the advisor's version and the
    fitting code itself (so an edited fit is never read back as current)."""
    code = Path(durations.__file__).read_bytes()
    return f"{__version__}+{hashlib.sha256(code).hexdigest()[:16]}"


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


def _dr_backups(backups: pd.DataFrame, volumes: pd.DataFrame) -> pd.DataFrame:
    """The Backups that DR (standby) volumes name in ``status.lastBackup``."""
    standby = volumes["standby"].fillna(False).astype(bool)
    wanted = set(volumes.loc[standby, "last_backup"].dropna().astype(str)) \
        if "last_backup" in volumes.columns else set()
    return backups[backups["backup"].isin(wanted)].reset_index(drop=True)
