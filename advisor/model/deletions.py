"""Deletion durations: the ``backups`` frame has no deletion start or end (``Deleting``
says a deletion was under way at collection, not since when), so a volume's deletion
duration is always :class:`DeletionPrior`'s, by the size of its backup volume and the
backups it holds (``source="prior"``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from advisor.model.censored import QUANTILE_Z
from advisor.model.columns import numeric, text

__all__ = ["DeletionPrior", "deletion_priors"]

_GIB = 2**30


@dataclass(frozen=True)
class DeletionPrior:
    """Assumption, not a Longhorn fact: a deletion's median seconds are ``base_s +
    per_gib_s * GiB + per_backup_s * backups`` of the backup volume, lognormal with
    ``p95 = p95_ratio * median``.

    Why this shape: Longhorn deletes the backup's config, then every block no other backup
    uses, under the lock; the cost grows with the blocks to check (the backup volume's
    size: 512 blocks of 2 MiB per GiB) and the configs to read (its backups). The numbers
    are chosen, not measured: 30 s of fixed work (lock, listing), 0.5 s per GiB (about
    1,000 blocks checked a second), 5 s per backup (1,000 backups: over an hour, in line
    with reports of deletions taking hours there).
    """

    base_s: float = 30.0
    per_gib_s: float = 0.5
    per_backup_s: float = 5.0
    p95_ratio: float = 2.5
    median_sd: float = 0.6931471805599453
    """The doubt in the median, as the standard deviation of its log: ln 2, a factor of
    2 either way at one standard deviation (a factor of 3.9 at 95 %). The risk model
    carries it into its intervals (see :class:`~advisor.model.fleet.Duration`)."""

    def median_s(self, size_bytes: np.ndarray, n_backups: np.ndarray) -> np.ndarray:
        """Median deletion seconds for backup volumes of ``size_bytes`` (NaN: 0) holding
        ``n_backups`` backups."""
        gib = np.nan_to_num(np.asarray(size_bytes, dtype=float)) / _GIB
        return self.base_s + self.per_gib_s * gib + self.per_backup_s * np.asarray(n_backups)


def deletion_priors(backups: pd.DataFrame, cv: np.ndarray, keys: pd.DataFrame,
                    collected_at: np.ndarray, sizes: Mapping[str, np.ndarray],
                    standby: np.ndarray, prior: DeletionPrior) -> pd.DataFrame:
    """The deletion prior of every volume with a backup volume, backups, or (not a DR
    volume) a Volume. Size (``size_from``): the BackupVolume's ``size_bytes`` (largest
    over targets), else the volume's actual size, else its largest backup, else its
    nominal size (the Volume's spec, or the backups' ``volumeSize``: an upper bound, as
    blocks never written are not in the backupstore). Backups held: those Completed at
    the cluster's latest collection (older rows of a store may be deleted since).

    ``cv``: each backup's code into ``keys`` (cluster, volume); ``collected_at``: each
    backup's collection (epoch s); ``sizes``: per key, in bytes (NaN: unknown), the
    ``backup_volume``'s, the ``actual`` and the ``nominal`` size (this one is raised in
    place to the backups' ``volume_size_bytes``); ``standby``: per key, a DR volume."""
    size_bv, size_act, size_spec = sizes["backup_volume"], sizes["actual"], sizes["nominal"]
    size_b = np.full(len(keys), np.nan)
    np.fmax.at(size_b, cv, numeric(backups, "size_bytes"))
    np.fmax.at(size_spec, cv, numeric(backups, "volume_size_bytes"))
    cl = pd.factorize(keys["cluster"])[0][cv]
    latest = np.full(cl.max() + 1 if len(cl) else 0, np.nan)
    np.fmax.at(latest, cl, collected_at)
    held = (text(backups, "state") == "Completed").to_numpy(bool) & (collected_at == latest[cl])
    n = np.bincount(cv[held], minlength=len(keys))
    rows = (np.bincount(cv, minlength=len(keys)) > 0) | np.isfinite(size_bv) | (
        np.isfinite(size_act) & ~standby)
    choices = (size_bv, size_act, size_b, size_spec)
    pick = np.argmax(np.column_stack([np.isfinite(c) for c in choices] + [
        np.ones(len(keys), bool)]), axis=1)
    size = np.column_stack([*choices, np.full(len(keys), np.nan)])[np.arange(len(keys)), pick]
    size_from = np.array(["backup_volume", "actual", "backup", "nominal", "unknown"])[pick]
    med = prior.median_s(size, n)
    d = keys.assign(backup_volume_size_bytes=size, size_from=size_from, n_backups=n,
                    p50_s=med,
                    p95_s=med * prior.p95_ratio, median_sd=prior.median_sd,
                    p99_s=med * prior.p95_ratio ** (QUANTILE_Z["p99"] / QUANTILE_Z["p95"]),
                    source="prior",
                    note=f"assumption (no deletion times in the history): {prior.base_s:g} s "
                         f"+ {prior.per_gib_s:g} s/GiB + {prior.per_backup_s:g} s/backup, "
                         f"p95 = {prior.p95_ratio:g} x median, median known to a factor "
                         f"of {np.exp(prior.median_sd):.3g} (1 sd)")
    return d[rows].sort_values(["cluster", "volume"], ignore_index=True)
