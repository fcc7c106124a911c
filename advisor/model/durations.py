"""Backup and deletion durations per volume, fitted from the ``backups`` history.

For each (cluster, volume, mode) a backup's duration ``T`` (seconds) is lognormal,
``log T ~ Normal(mu, sigma)``: a backup's time is a product of factors (data changed,
throughput, contention), and :class:`advisor.model.fleet.Duration`, which the simulator
consumes, is lognormal by median and p95. Weibull is not tried; the Kaplan-Meier columns
of the table are the nonparametric check.

Observations (assumptions about the data, stated once):

- Durations and censoring follow the one rule of :func:`advisor.schema.backup_times`:
  an end (``finished_at``) gives ``finished_at - start`` (the start is ``started_at``,
  else ``requested_at``, with a warning: queueing is then included); no end is
  right-censored ("lasted at least"), at ``last_synced_at`` for a failed, unknown or
  deleting backup and at the row's ``collected_at`` (``now`` where missing) for a
  running one; a backup that has not started says nothing about upload time.
  A censoring time of 0 s (a backup that failed at once on the lock) is left out silently.
- Durations <= 0 s, negative censoring times and missing times are skipped and reported
  as :class:`FitProblem` (volume, backup, field, reason): nothing is dropped silently.
- Mode: ``full`` when ``backup_mode`` says so or when the backup uploaded at least
  :data:`FULL_UPLOAD_RATIO` of its size (``new_upload_bytes / size_bytes``: the first
  backup of a backup volume, or a broken chain, does a full backup's work whatever its
  mode says); else ``incremental``. Before Longhorn 1.7 neither field exists and every
  backup counts as incremental; ``full-backup-interval`` is not used (run counts are
  not in the history).

Own history (``source="own_history"``, at least ``min_observations`` completed backups):
maximum likelihood with censoring by Newton's method in Olsen's parametrisation
``(a, b) = (mu/sigma, 1/sigma)``, where the censored normal log-likelihood is concave,
with step halving, vectorised across volumes. Completed backups enter by their sufficient
statistics, so an iteration costs only the censored rows; without censoring the start
(the closed-form MLE) is the answer. 95 % CIs of quantiles by the delta method on
``log q = mu + z sigma`` from the observed information, with Student's t quantile
(``n - 1`` degrees of freedom) for small samples.

The quantiles pool the whole history (a growing volume's current p99 is higher: its
trend is :mod:`advisor.model.trend`'s). Rows are per (cluster, volume), whatever the
backup target.

Fleet prior (``source="fleet_prior"``): per mode, OLS across volumes of the own-history
``mu`` on the volume's mean log uploaded bytes and its log actual size (the Volume's
``actual_size_bytes``, else the mean log of its backups' ``size_bytes``; fewer features
where a volume lacks them; the mean log of every volume's completed backups when fewer
than 3 volumes are rich). A sparse volume's ``mu`` is the precision-weighted mean of the
prediction (variance ``s^2 (1 + x0' (X'X)^+ x0)``) and its own completed backups (variance
``sigma^2 / n``); ``sigma`` is the fleet's median own-history sigma, and its spread
between volumes widens the CI. Only censored backups, or none: the prediction alone.
With fewer than three volumes to learn from, the fleet's mean with a spread of
:data:`SPREAD_DEFAULT` (an assumption) stands in for the regression.

Deletions: the ``backups`` frame has no deletion start or end (``Deleting`` says a
deletion was under way at collection, not since when), so deletion durations always come
from :class:`DeletionPrior` (``source="prior"``).

Queue delay: ``started_at`` minus the cron slot of the run that created the backup (runs
are found as :mod:`advisor.model.queueing` says). The cron is the job's latest observation
in ``jobs``, read in UTC unless ``tz`` says otherwise (the frame has no zone); ``@every``
jobs have no fixed slots and are skipped with a warning.

This module holds the entry point (:func:`fit_durations`) and what it returns; the work
is done, by subject, in :mod:`advisor.model.observations` (rows to durations),
:mod:`advisor.model.censored` (the numerics), :mod:`advisor.model.lognormal` (own
history and fleet prior), :mod:`advisor.model.deletions` and
:mod:`advisor.model.queueing`. Their public names used outside are importable from here.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special  # (scipy.stats is imported where used: it takes 0.5 s)

from advisor.model.censored import QUANTILE_Z
from advisor.model.censored import SIGMA_FLOOR as SIGMA_FLOOR
from advisor.model.columns import (
    categorical as _categorical,
)
from advisor.model.columns import (
    latest as _latest,
)
from advisor.model.columns import (
    median_sd as _median_sd,
)
from advisor.model.columns import (
    numeric as _numeric,
)
from advisor.model.columns import (
    pairs as _pairs,
)
from advisor.model.columns import (
    seconds as _seconds,
)
from advisor.model.columns import (
    text as _text,
)
from advisor.model.columns import (
    times as _times,
)
from advisor.model.deletions import DeletionPrior, deletion_priors
from advisor.model.fleet import Duration
from advisor.model.lognormal import SIGMA_DEFAULT as SIGMA_DEFAULT
from advisor.model.lognormal import SPREAD_DEFAULT as SPREAD_DEFAULT
from advisor.model.lognormal import fit_table
from advisor.model.observations import (
    FULL_UPLOAD_RATIO,
    FitProblem,
    backup_observations,
    is_full,
    usable_durations,
)
from advisor.model.observations import Severity as Severity
from advisor.model.queueing import queue_delays
from advisor.model.trend_fit import TrendFit, fit_trends

if TYPE_CHECKING:
    from scipy import stats

__all__ = ["FULL_UPLOAD_RATIO", "MODEL_BACKUP_COLUMNS", "BackupPrior", "DeletionPrior",
           "DurationFit", "DurationFits", "FitProblem", "backup_observations", "fit_durations",
           "size_prior"]

MODEL_BACKUP_COLUMNS = (
    "cluster", "backup_target", "volume", "backup", "recurring_job", "state",
    "requested_at", "started_at", "finished_at", "last_synced_at", "duration_s", "censored",
    "size_bytes", "volume_size_bytes", "new_upload_bytes", "backup_mode", "lock_conflict",
    "collected_at")
"""The Backup columns the model reads (:func:`fit_durations`,
:func:`advisor.inputs.fleet_from_history`,
:func:`advisor.model.observed.observed_vs_predicted`): all ``advisor recommend`` and
``advisor check`` read of a store's backups (names, uids and messages are most of its
size)."""


@dataclass(frozen=True)
class BackupPrior:
    """Assumption, not a Longhorn fact: with no history, a backup's median seconds are
    ``base_s + churn * GiB * 1024 / rate_mib_s`` of the volume's size, lognormal with
    ``p95 = p95_ratio * median``: an incremental backup uploads the changed share
    (``churn``) of the volume at ``rate_mib_s``. Chosen, not measured: 30 s of fixed work
    (snapshot, lock, config), 10 % churn between backups, 100 MiB/s to the target; a
    2 TiB volume gets a 35-minute median. Used by ``advisor check`` when no history is
    given, and said so in its output."""

    base_s: float = 30.0
    churn: float = 0.10
    rate_mib_s: float = 100.0
    p95_ratio: float = 2.5

    def __call__(self, size_bytes: int) -> Duration:
        median = self.base_s + self.churn * max(size_bytes, 0) / 2**20 / self.rate_mib_s
        return Duration(median, median * self.p95_ratio, "lognormal")

    def __str__(self) -> str:
        return (f"backup duration prior: median {self.base_s:g} s + {self.churn:.0%} of "
                f"the volume at {self.rate_mib_s:g} MiB/s, p95 {self.p95_ratio:g} x median")



@dataclass(frozen=True)
class DurationFit:
    """One (cluster, volume, mode)'s backup duration in seconds; ``*_ci`` are 95 %
    intervals."""

    cluster: str
    volume: str
    mode: str
    source: str
    n_completed: int
    n_censored: int
    mu_log: float
    sigma_log: float
    p50_s: float
    p50_ci: tuple[float, float]
    p95_s: float
    p95_ci: tuple[float, float]
    p99_s: float
    p99_ci: tuple[float, float]
    note: str = ""

    @classmethod
    def from_row(cls, r: pd.Series) -> DurationFit:
        """From a row of :attr:`DurationFits.table`."""
        f = {k: r[k] for k in cls.__dataclass_fields__ if k in r.index}
        ci = {f"{q}_ci": (float(r[f"{q}_lo_s"]), float(r[f"{q}_hi_s"])) for q in QUANTILE_Z}
        return cls(**{**f, **ci})

    def quantile(self, p: float) -> float:
        """The fitted ``p`` quantile in seconds (0 < p < 1)."""
        return float(np.exp(self.mu_log + self.sigma_log * special.ndtri(p)))

    def as_duration(self) -> Duration:
        """The fit as the simulator's lognormal :class:`Duration` (median, p95)."""
        if not math.isfinite(self.p50_s):
            raise ValueError(f"{self.volume} ({self.mode}) has no fitted duration: {self.note}")
        return Duration(self.p50_s, max(self.p95_s, self.p50_s), "lognormal")


_LIGHT = ("table", "regression", "deletions", "queue_delay", "queue_delay_by_volume")


@dataclass(frozen=True, eq=False)
class DurationFits:
    """What :func:`fit_durations` learned, as DataFrames.

    ``table``: one row per cluster/volume/mode: ``source``, ``n_completed``,
    ``n_censored``, ``mu_log``, ``sigma_log``, ``p50_s``/``p95_s``/``p99_s`` with
    ``_lo_s``/``_hi_s``, Kaplan-Meier ``km_p50_s``/``km_p95_s`` (NaN where censoring keeps
    the curve above) and ``note``. ``regression``: the fleet-prior regressions.
    ``deletions``: the prior per volume. ``queue_delay``: per job;
    ``queue_delay_by_volume``: per job and volume, with the mean rank of its start in
    a run; ``queue_delay_backups``: per backup. ``observations``: the durations used.
    """

    table: pd.DataFrame
    regression: pd.DataFrame
    deletions: pd.DataFrame
    queue_delay: pd.DataFrame
    queue_delay_by_volume: pd.DataFrame
    queue_delay_backups: pd.DataFrame
    observations: pd.DataFrame
    problems: tuple[FitProblem, ...]
    trend_fits: pd.DataFrame | None = field(default=None, repr=False)
    """Each volume's duration trend fit (:func:`~advisor.model.trend_fit.fit_trends`, one
    row per cluster and volume, in its :meth:`preferred` mode); None until :meth:`trends`
    first fits them from ``observations`` (a report needs them, the scoring does not)."""

    def _row(self, frame: pd.DataFrame, volume: str, cluster: str | None,
             mode: str | None = None) -> pd.Series:
        m = frame["volume"] == volume
        if cluster is not None:
            m &= frame["cluster"] == cluster
        if mode is not None:
            m &= frame["mode"] == mode
        rows = frame[m]
        if len(rows) != 1:
            raise KeyError(f"{volume!r} {mode or ''}: " + (
                "in several clusters: pass cluster=" if len(rows) else "no fit"))
        return rows.iloc[0]

    def for_volume(self, volume: str, mode: str = "incremental",
                   cluster: str | None = None) -> DurationFit:
        """The fit of one volume and mode."""
        return DurationFit.from_row(self._row(self.table, volume, cluster, mode))

    def preferred(self, cluster: str | None = None) -> pd.DataFrame:
        """One row of ``table`` per volume (of ``cluster``, if given; else per cluster and
        volume): its incremental fit,
        or its other one when it has none (a volume with full backups only). Recurring
        backups are incremental but for the first, so that is the duration to show and
        to schedule by."""
        t = self.table if cluster is None else self.table[self.table["cluster"] == cluster]
        return t.sort_values("mode", key=lambda m: m != "incremental", kind="stable"
                             ).drop_duplicates(["cluster", "volume"]).reset_index(drop=True)

    def trend_table(self) -> pd.DataFrame:
        """:attr:`trend_fits`, fitted from ``observations`` on first use."""
        if self.trend_fits is None:  # (frozen: the one field filled in later)
            object.__setattr__(self, "trend_fits",
                               fit_trends(self.observations, self.preferred()))
        return self.trend_fits

    def trends(self, cluster: str | None = None) -> dict[str, TrendFit]:
        """``{volume: TrendFit}``: each volume's p99 duration trend (of ``cluster``, if
        given), what :func:`advisor.model.trend.forecast` reads at a week's end."""
        t = self.trend_table()
        if cluster is not None:
            t = t[t["cluster"] == cluster]
        return {str(r["volume"]): TrendFit.from_row(r) for r in t.to_dict("records")}

    def backup_durations(self, mode: str = "incremental", cluster: str | None = None
                         ) -> dict[str, Duration]:
        """``{volume: Duration}`` of every volume fitted in ``mode``, for the simulator."""
        t = self.table[(self.table["mode"] == mode) & self.table["p50_s"].notna()]
        if cluster is not None:
            t = t[t["cluster"] == cluster]
        return {str(r.volume): Duration(r.p50_s, max(r.p95_s, r.p50_s), "lognormal",
                                        _median_sd(r.p50_lo_s, r.p50_hi_s))
                for r in t.itertuples()}

    def deletion_durations(self, cluster: str | None = None) -> dict[str, Duration]:
        """``{volume: Duration}`` of every volume's (prior) deletion duration."""
        d = self.deletions if cluster is None else self.deletions[
            self.deletions["cluster"] == cluster]
        return {str(r.volume): Duration(float(r.p50_s), float(r.p95_s), "lognormal",
                                        float(r.median_sd)) for r in d.itertuples()}

    def deletion_duration(self, volume: str, cluster: str | None = None) -> Duration:
        """The (prior) deletion duration of one volume's backups."""
        r = self._row(self.deletions, volume, cluster)
        return Duration(float(r["p50_s"]), float(r["p95_s"]), "lognormal",
                        float(r["median_sd"]))

    def kaplan_meier(self, volume: str, mode: str = "incremental",
                     cluster: str | None = None) -> stats._survival.ECDFResult:
        """scipy's Kaplan-Meier estimate of one volume and mode (the nonparametric check)."""
        o = self.observations
        if o.empty and not self.table.empty:
            raise ValueError("these fits were read back without their observations "
                             "(DurationFits.from_frames): fit_durations the history again")
        m = (o["volume"] == volume) & (o["mode"] == mode)
        if cluster is not None:
            m &= o["cluster"] == cluster
        d, c = o.loc[m, "duration_s"].to_numpy(), o.loc[m, "censored"].to_numpy(bool)
        from scipy import stats

        return stats.ecdf(stats.CensoredData(uncensored=d[~c], right=d[c]))

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """The fits as frames, for keeping (:meth:`from_frames` reads them back): all but
        the per-backup ``observations`` and ``queue_delay_backups``, which are as large
        as the history and are not needed to score schedules; the trends are fitted
        first if they are not yet."""
        return {**{f: getattr(self, f) for f in _LIGHT}, "problems": self.problems_frame(),
                "trends": self.trend_table()}

    @classmethod
    def from_frames(cls, frames: Mapping[str, pd.DataFrame]) -> DurationFits:
        """Fits kept by :meth:`to_frames`; ``observations`` and ``queue_delay_backups``
        come back empty (:meth:`kaplan_meier` needs a fit made from the history)."""
        p = frames["problems"]
        problems = tuple(FitProblem(*(str(x) for x in row))
                         for row in p[list(FitProblem.__dataclass_fields__)].itertuples(
                             index=False))
        return cls(**{f: frames[f] for f in _LIGHT},
                   queue_delay_backups=pd.DataFrame(),
                   observations=pd.DataFrame(columns=["cluster", "volume", "mode",
                                                      "duration_s", "censored"]),
                   problems=problems, trend_fits=frames["trends"])

    def problems_frame(self) -> pd.DataFrame:
        """The problems as a DataFrame."""
        cols = list(FitProblem.__dataclass_fields__)
        return pd.DataFrame([[getattr(p, c) for c in cols] for p in self.problems],
                            columns=cols)

    def __repr__(self) -> str:
        src = self.table["source"].value_counts().to_dict()
        return (f"DurationFits({len(self.table)} volume/mode fits {src}, "
                f"{len(self.deletions)} deletion priors, {len(self.queue_delay)} jobs, "
                f"{len(self.problems)} problems)")

    def _repr_html_(self) -> str:
        cols = ["cluster", "volume", "mode", "source", "n_completed", "n_censored", "p50_s",
                "p95_s", "p99_s", "p99_lo_s", "p99_hi_s", "note"]
        body = self.table[cols].to_html(index=False, float_format=lambda x: f"{x:.4g}")
        return f"<p><b>{html.escape(repr(self))}</b></p>{body}"


# --- the entry point -------------------------------------------------------------------------

def fit_durations(backups: pd.DataFrame, volumes: pd.DataFrame | None = None,
                  backup_volumes: pd.DataFrame | None = None,
                  jobs: pd.DataFrame | None = None, *, min_observations: int = 8,
                  now: object = None, tz: str | None = None,
                  deletion_prior: DeletionPrior = DeletionPrior()) -> DurationFits:
    """Backup durations per (cluster, volume, mode), deletion priors per volume and queue
    delays per job, from the schema's frames (the module docstring states every rule).

    ``min_observations``: completed backups a volume needs for its own fit; fewer borrow
    from the fleet. ``volumes`` gives actual sizes (a regressor) and volumes without
    backups (they get a fleet-prior row); ``backup_volumes`` gives sizes for deletions;
    ``jobs`` (RecurringJobs, their cron) is needed for queue delays. ``now``: censoring
    time of running backups whose row lacks ``collected_at``. ``tz``: the zone cron
    schedules fire in (default UTC). Bad rows never raise: they are in ``problems``.
    Per-volume work depends only on that volume's rows and the fleet's regressions.
    """
    if min_observations < 2:
        raise ValueError("min_observations must be at least 2")
    t = {c: _seconds(backups, c) for c in ("requested_at", "started_at", "finished_at",
                                           "last_synced_at", "collected_at")}
    vols = _latest(volumes, ["cluster", "volume"])
    bvs = _latest(backup_volumes, ["cluster", "backup_target", "backup_volume"])
    known = pd.concat([f[["cluster", "volume"]] for f in (vols, bvs) if f is not None]
                      ) if vols is not None or bvs is not None else None
    cv, keys = _pairs(backups, "cluster", "volume", known)

    def per_key(df: pd.DataFrame | None, column: str) -> np.ndarray:
        out = np.full(len(keys), np.nan)
        if df is not None:
            np.fmax.at(out, _pairs(df, "cluster", "volume", keys)[0], _numeric(df, column))
        return out

    standby = np.zeros(len(keys), bool)
    if vols is not None and "standby" in vols.columns:
        standby[_pairs(vols, "cluster", "volume", keys)[0]] = vols["standby"].fillna(
            False).to_numpy(bool)
    size_act = per_key(vols, "actual_size_bytes")
    keep, start, dur, problems = usable_durations(backups, t, now)
    up, size = _numeric(backups, "new_upload_bytes"), _numeric(backups, "size_bytes")
    full = is_full(backups)[keep]
    censored = np.isnan(t["finished_at"][keep])
    # the regressor "actual size": the Volume's, else the backups' status.size
    ok = keep[~censored & (size[keep] > 0)]
    with np.errstate(invalid="ignore"):
        log_size = np.bincount(cv[ok], np.log(size[ok]), len(keys)) / np.bincount(
            cv[ok], minlength=len(keys))
        log_act = np.where(size_act > 0, np.log(np.where(size_act > 0, size_act, 1)),
                           log_size)
    table, regression = fit_table(cv[keep], full, keys, dur, censored, up[keep], log_act,
                                  min_observations)
    sizes = {"backup_volume": per_key(bvs, "size_bytes"), "actual": size_act,
             "nominal": per_key(vols, "size_bytes")}
    deletions = deletion_priors(backups, cv, keys, t["collected_at"], sizes, standby,
                                deletion_prior)
    by_job, by_volume, per_backup = queue_delays(backups, cv, keys, t, jobs, tz, problems)
    observations = pd.DataFrame({
        "cluster": _categorical(keys["cluster"], cv[keep]),
        "volume": _categorical(keys["volume"], cv[keep]),
        "backup": _text(backups, "backup").iloc[keep].array,
        "mode": pd.Categorical.from_codes((~full).astype(np.int8), ["full", "incremental"]),
        "started_at": _times(start), "duration_s": dur, "censored": censored})
    return DurationFits(table, regression, deletions, by_job, by_volume, per_backup,
                        observations, tuple(problems))


def size_prior(fits: DurationFits, volumes: pd.DataFrame) -> Callable[[int], Duration]:
    """A volume size -> backup duration rule learned from the fleet's own fits: least
    squares of the log median on the log size over volumes with their own history, and
    the fleet's median p95 / p50 ratio. For sizing a volume the history does not know (a
    proposed job's new volumes); :class:`BackupPrior` when fewer than 3 volumes fit."""
    t = fits.table[(fits.table["mode"] == "incremental")
                   & (fits.table["source"] == "own_history")]
    sizes = _latest(volumes, ["cluster", "volume"])
    if sizes is None or t.empty:
        return BackupPrior()
    m = t.merge(sizes[["cluster", "volume", "size_bytes"]], on=["cluster", "volume"])
    m = m[(m["size_bytes"] > 0) & (m["p50_s"] > 0)]
    if len(m) < 3:
        return BackupPrior()
    x = np.log(m["size_bytes"].to_numpy(float))
    y = np.log(m["p50_s"].to_numpy(float))
    slope, intercept = np.polyfit(x, y, 1)
    ratio = float(np.median(m["p95_s"] / m["p50_s"]))

    def prior(size_bytes: int) -> Duration:
        median = float(np.exp(intercept + slope * np.log(max(size_bytes, 1))))
        return Duration(median, median * max(ratio, 1.0), "lognormal")

    return prior
