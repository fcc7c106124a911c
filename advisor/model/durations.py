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
are found as :func:`_runs` says). The cron is the job's latest observation in ``jobs``,
read in UTC unless ``tz`` says otherwise (the frame has no zone); ``@every`` jobs have no
fixed slots and are skipped with a warning.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import special  # (scipy.stats is imported where used: it takes 0.5 s)

from advisor.cron import CronError, EverySchedule, parse
from advisor.model.columns import (
    categorical as _categorical,
)
from advisor.model.columns import (
    group_quantiles as _group_quantiles,
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
    sort_by as _sort_by,
)
from advisor.model.columns import (
    text as _text,
)
from advisor.model.columns import (
    times as _times,
)
from advisor.model.fleet import Duration
from advisor.schedules import fire_times
from advisor.schema import backup_times

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

FULL_UPLOAD_RATIO = 0.8
"""A backup that uploaded at least this share of its size did a full backup's work."""
SIGMA_FLOOR = 0.01
"""Smallest sigma of log duration (identical durations would give 0)."""
SIGMA_DEFAULT = 0.5
"""Assumption: sigma of log duration when no volume of the fleet has two backups."""
SPREAD_DEFAULT = 1.0
"""Assumption: sd of log median duration between volumes when fewer than three volumes
have history (one or two volumes: a factor of e either way)."""
_Z = {"p50": 0.0, "p95": 1.6448536269514722, "p99": 2.3263478740408408}
_Z_CI = 1.959963984540054
_GIB = 2**30
_FEATURES = ("log_upload_bytes", "log_actual_size_bytes")
_MODELS = ((0, 1), (1,), (0,), ())  # feature sets tried in turn for a sparse volume

Severity = Literal["skipped", "warning"]


@dataclass(frozen=True)
class FitProblem:
    """A backup row the fit skipped (or used with a substitute field)."""

    cluster: str
    volume: str
    backup: str
    field: str
    reason: str
    severity: Severity = "skipped"

    def __str__(self) -> str:
        return f"{self.cluster}/{self.volume} {self.backup}: {self.field}: {self.reason}"


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
        ci = {f"{q}_ci": (float(r[f"{q}_lo_s"]), float(r[f"{q}_hi_s"])) for q in _Z}
        return cls(**{**f, **ci})

    def quantile(self, p: float) -> float:
        """The fitted ``p`` quantile in seconds (0 < p < 1)."""
        return float(np.exp(self.mu_log + self.sigma_log * special.ndtri(p)))

    def as_duration(self) -> Duration:
        """The fit as the simulator's lognormal :class:`Duration` (median, p95)."""
        if not math.isfinite(self.p50_s):
            raise ValueError(f"{self.volume} ({self.mode}) has no fitted duration: {self.note}")
        return Duration(self.p50_s, max(self.p95_s, self.p50_s), "lognormal")


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
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
        """One row of ``table`` per volume (of ``cluster``, if given): its incremental fit,
        or its other one when it has none (a volume with full backups only). Recurring
        backups are incremental but for the first, so that is the duration to show and
        to schedule by."""
        t = self.table if cluster is None else self.table[self.table["cluster"] == cluster]
        return t.sort_values("mode", key=lambda m: m != "incremental", kind="stable"
                             ).drop_duplicates("volume").reset_index(drop=True)

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
        as the history and are not needed to score schedules."""
        return {**{f: getattr(self, f) for f in _LIGHT}, "problems": self.problems_frame()}

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
                   problems=problems)

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


# --- observations ---------------------------------------------------------------------------

def _observations(b: pd.DataFrame, t: dict[str, np.ndarray], now: object
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[FitProblem]]:
    """Rows usable as durations, their start and duration, and the problems of the rest."""
    rule = backup_times(b, now, seconds=t)  # (the one rule: advisor.schema)
    state, start0 = _text(b, "state"), t["started_at"]
    ended, at_sync, running = rule.ended, rule.at_sync, rule.running
    use, start, dur = ended | at_sync | running, rule.start, rule.duration
    checks: list[tuple[np.ndarray, str, str, Severity]] = [
        ((state == "Completed").to_numpy(bool) & ~ended, "finished_at",
         "missing on a Completed backup: duration unknown", "skipped"),
        (use & np.isnan(start), "started_at", "no started_at or requested_at", "skipped"),
        (at_sync & ~np.isnan(start) & np.isnan(dur), "last_synced_at",
         "missing: failure time unknown", "skipped"),
        (running & ~np.isnan(start) & np.isnan(dur), "collected_at",
         "missing (and no now=): censoring time unknown", "skipped"),
        (ended & (dur <= 0), "finished_at",
         "duration {d:.0f} s <= 0 (finish not after the start: clock skew?)", "skipped"),
        (~ended & use & (dur < 0), "started_at",
         "after the censoring time ({d:.0f} s): clock skew?", "skipped"),
        (use & np.isnan(start0) & (dur > 0), "started_at",
         "missing; requested_at used as the start (includes queueing)", "warning"),
    ]
    problems: list[FitProblem] = []
    for mask, column, reason, severity in checks:
        rows = np.flatnonzero(mask)
        names = [_text(b, c).iloc[rows].tolist() for c in ("cluster", "volume", "backup")]
        problems += [FitProblem(c, v, k, column, reason.format(d=dur[i]), severity)
                     for i, c, v, k in zip(rows, *names, strict=True)]
    keep = np.flatnonzero(rule.usable)
    return keep, start[keep], dur[keep], problems


def _full(backups: pd.DataFrame) -> np.ndarray:
    """Per row: a full backup (``backup_mode``, or an upload of at least
    :data:`FULL_UPLOAD_RATIO` of its size), else incremental."""
    up, size = _numeric(backups, "new_upload_bytes"), _numeric(backups, "size_bytes")
    return ((_text(backups, "backup_mode") == "full").to_numpy(bool)
            | ((size > 0) & (up >= FULL_UPLOAD_RATIO * size)))


def backup_observations(backups: pd.DataFrame, *, now: object = None) -> pd.DataFrame:
    """Each backup's duration as the fits read it (the module docstring's rules, in one
    place): ``cluster``, ``volume``, ``backup``, ``mode``, ``started_at``,
    ``duration_s`` (for a censored backup, how long it lasted at least) and
    ``censored``. Rows that give no duration are left out (:func:`fit_durations` reports
    them). The report's trends and charts read these, as the fits do."""
    t = {c: _seconds(backups, c) for c in ("requested_at", "started_at", "finished_at",
                                           "last_synced_at", "collected_at")}
    keep, start, dur, _ = _observations(backups, t, now)
    return pd.DataFrame({
        "cluster": _text(backups, "cluster").iloc[keep].array,
        "volume": _text(backups, "volume").iloc[keep].array,
        "backup": _text(backups, "backup").iloc[keep].array,
        "mode": np.where(_full(backups)[keep], "full", "incremental"),
        "started_at": _times(start), "duration_s": dur,
        "censored": np.isnan(t["finished_at"][keep])})


# --- fitting ---------------------------------------------------------------------------------

def _censored_mle(n: np.ndarray, s1: np.ndarray, s2: np.ndarray, gc: np.ndarray,
                  yc: np.ndarray, iterations: int = 60) -> tuple[np.ndarray, ...]:
    """Censored normal MLE per group from the uncensored sums ``n``, ``s1`` (log T),
    ``s2`` (squares) and the censored rows' groups ``gc`` and log times ``yc``. Returns
    ``a, b`` and the inverse observed information (``caa, cab, cbb``)."""
    G = len(n)
    mu = s1 / n
    b = 1 / np.sqrt(np.maximum(s2 / n - mu**2, SIGMA_FLOOR**2))
    a = mu * b

    def loglik(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ll = n * np.log(b) - (b**2 * s2 - 2 * a * b * s1 + n * a**2) / 2
        return ll + np.bincount(gc, special.log_ndtr(a[gc] - b[gc] * yc), G)

    def hessian(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
        w = a[gc] - b[gc] * yc
        h = np.exp((-0.5 * w * w - _HALF_LOG_2PI) - special.log_ndtr(w))  # inverse Mills ratio
        k = h * (w + h)
        return (b * s1 - n * a + np.bincount(gc, h, G),
                n / b - (b * s2 - a * s1) - np.bincount(gc, yc * h, G),
                -n - np.bincount(gc, k, G), s1 + np.bincount(gc, yc * k, G),
                -n / b**2 - s2 - np.bincount(gc, yc**2 * k, G))

    for _ in range(iterations if len(gc) else 0):
        ga, gb, haa, hab, hbb = hessian(a, b)
        det = haa * hbb - hab**2
        da, db = -(hbb * ga - hab * gb) / det, -(haa * gb - hab * ga) / det
        if np.max(np.abs(np.r_[da, db, 0.0])) < 1e-10:
            break
        ll0, step = loglik(a, b), np.ones(G)
        for _ in range(40):  # halve the step wherever the likelihood does not climb
            a1, b1 = a + step * da, np.maximum(b + step * db, 1e-12)
            worse = ~(loglik(a1, b1) >= ll0 - 1e-9)
            if not worse.any():
                break
            step[worse] /= 2
        a, b = a1, b1
    _, _, haa, hab, hbb = hessian(a, b)
    det = haa * hbb - hab**2
    return a, b, -hbb / det, hab / det, -haa / det


def _kaplan_meier(g: np.ndarray, y: np.ndarray, event: np.ndarray, G: int
                  ) -> list[np.ndarray]:
    """Kaplan-Meier median and p95 per group (the smallest time with ``F >= p``; NaN
    where the curve stays above ``1 - p``), vectorised; events before censored at ties."""
    order = _sort_by(g, y, ~event)
    g, y, e = g[order], y[order], event[order]
    counts = np.bincount(g, minlength=G)
    first = np.cumsum(counts) - counts
    at_risk = counts[g] - (np.arange(len(g)) - first[g])
    with np.errstate(divide="ignore"):
        logf = np.maximum(np.where(e, np.log1p(-1.0 / at_risk), 0.0), -50.0)
    cs = np.cumsum(logf)
    log_s = cs - np.r_[0.0, cs][first][g]
    out = []
    for p in (0.5, 0.95):
        hit = np.flatnonzero(e & (log_s <= math.log1p(-p) + 1e-12))
        q = np.full(G, np.nan)
        groups, at = np.unique(g[hit], return_index=True)
        q[groups] = np.exp(y[hit[at]])
        out.append(q)
    return out


def _ols(F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, ...]:
    """OLS of ``y`` on ``[1, F]``, standardised, with a rank cut-off (uploads and sizes
    can be collinear). Returns coefficients on the original scale, the residual variance,
    ``(X'X)^+`` of the standardised design, and the features' means and scales."""
    mean, sd = F.mean(axis=0), F.std(axis=0)
    sd[sd == 0] = 1.0
    X = np.column_stack([np.ones(len(y)), (F - mean) / sd])
    beta, _, rank, _ = np.linalg.lstsq(X, y, rcond=1e-6)
    resid = y - X @ beta
    s2 = float(resid @ resid / max(len(y) - rank, 1))
    coef = np.r_[beta[0] - (beta[1:] * mean / sd).sum(), beta[1:] / sd]
    return coef, s2, np.linalg.pinv(X.T @ X, rcond=1e-12), mean, sd


def _fleet_prior(mode: str, in_mode: np.ndarray, own: np.ndarray, y_vol: np.ndarray,
                 feats: np.ndarray, sig_own: np.ndarray, sigma_within: float
                 ) -> tuple[np.ndarray, np.ndarray, float, float, list[dict]]:
    """The prediction of mu and its variance for every group of one mode (NaN where no
    model applies), the pooled sigma and its between-volume variance, the regressions."""
    train = own & in_mode
    if train.sum() < 3:  # too few rich volumes: learn from every volume's mean log
        train = in_mode & np.isfinite(y_vol)
    sig = sig_own[own & in_mode]
    sigma = float(np.median(sig)) if len(sig) >= 3 else sigma_within
    var_sigma = float(np.var(sig, ddof=1)) if len(sig) >= 3 else (sigma / 2) ** 2
    pred, var = np.full(len(own), np.nan), np.full(len(own), np.nan)
    rows = []
    for fs in _MODELS:
        has = np.all(np.isfinite(feats[:, list(fs)]), axis=1)
        fit = train & has
        if fit.sum() < (len(fs) + 3 if fs else 1):
            continue
        coef, s2, P, mean, sd = _ols(feats[fit][:, list(fs)], y_vol[fit])
        s2 = s2 if fit.sum() >= 3 else SPREAD_DEFAULT**2
        rows.append({"mode": mode, "features": ",".join(_FEATURES[f] for f in fs) or "-",
                     "n_volumes": int(fit.sum()), "intercept": coef[0],
                     **{_FEATURES[f]: coef[1 + i] for i, f in enumerate(fs)},
                     "residual_sd": math.sqrt(s2), "sigma_within": sigma,
                     "sigma_within_sd": math.sqrt(var_sigma)})
        todo = in_mode & has & np.isnan(pred)
        F0 = feats[todo][:, list(fs)]
        X0 = np.column_stack([np.ones(len(F0)), (F0 - mean) / sd])
        pred[todo] = coef[0] + F0 @ coef[1:]
        var[todo] = s2 * (1 + np.einsum("ij,jk,ik->i", X0, P, X0))
    return pred, var, sigma, var_sigma, rows


def _fit_table(cv: np.ndarray, full: np.ndarray, keys: pd.DataFrame,
               dur: np.ndarray, censored: np.ndarray, upload: np.ndarray,
               log_act_cv: np.ndarray, min_obs: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (cluster, volume, mode): own-history or fleet-prior fit, KM check.
    ``cv`` indexes ``keys``; every key gets a row per mode seen in the fleet."""
    from scipy import stats

    modes = np.unique((~full).astype(np.int64))  # 0: full, 1: incremental
    present = np.zeros(2 * len(keys), bool)
    present[cv * 2 + ~full] = True
    present.reshape(-1, 2)[:, modes] |= np.bincount(cv, minlength=len(keys))[:, None] == 0
    gid = np.cumsum(present) - 1
    uniq = np.flatnonzero(present)
    G, g, gcv, inc = len(uniq), gid[cv * 2 + ~full], uniq // 2, uniq % 2 == 1
    y, ev = np.log(dur), ~censored
    ge, ye = g[ev], y[ev]
    n_e = np.bincount(ge, minlength=G).astype(float)
    s1, s2 = np.bincount(ge, ye, G), np.bincount(ge, ye**2, G)
    n_c = np.bincount(g[censored], minlength=G)
    own = n_e >= max(min_obs, 2)

    mu, sigma = np.full(G, np.nan), np.full(G, np.nan)
    se = {q: np.full(G, np.nan) for q in _Z}
    cmask = censored & own[g]
    a, b, caa, cab, cbb = _censored_mle(n_e[own], s1[own], s2[own],
                                        (np.cumsum(own) - 1)[g[cmask]], y[cmask])
    mu[own], sigma[own] = a / b, np.maximum(1 / b, SIGMA_FLOOR)
    for q, z in _Z.items():  # delta method: log q = (a + z) / b
        ja, jb = 1 / b, -(a + z) / b**2
        se[q][own] = np.sqrt(np.maximum(ja**2 * caa + 2 * ja * jb * cab + jb**2 * cbb, 0))

    with np.errstate(divide="ignore", invalid="ignore"):
        ok = ev & (upload > 0)
        log_up = np.bincount(g[ok], np.log(upload[ok]), G) / np.bincount(g[ok], minlength=G)
        ybar = s1 / n_e
        two = n_e >= 2
        within = (s2 - s1**2 / n_e)[two].sum() / (n_e[two] - 1).sum()
    feats = np.column_stack([log_up, log_act_cv[gcv]])
    sigma_within = math.sqrt(within) if within > 0 else SIGMA_DEFAULT
    source = np.where(own, "own_history", "none").astype(object)
    note = np.full(G, "", dtype=object)
    regressions: list[dict] = []
    y_vol = np.where(own, mu, ybar)
    for is_inc in modes:
        name = "incremental" if is_inc else "full"
        in_mode = inc == is_inc
        pred, var_pred, sig_p, var_sig, rows = _fleet_prior(
            name, in_mode, own, y_vol, feats, sigma, sigma_within)
        regressions += rows
        sparse = in_mode & ~own & np.isfinite(pred)
        tau2 = np.maximum(var_pred, 1e-12)
        prec = 1 / tau2 + n_e / sig_p**2
        mu[sparse] = ((pred / tau2 + s1 / sig_p**2) / prec)[sparse]
        sigma[sparse] = sig_p
        for q, z in _Z.items():
            se[q][sparse] = np.sqrt(1 / prec[sparse] + z**2 * var_sig)
        source[sparse] = "fleet_prior"
        note[in_mode & ~own & ~np.isfinite(pred)] = f"no fleet regression for {name}"
    prior = source == "fleet_prior"
    note[prior & (n_e > 0)] = [f"{k:.0f} completed < {min_obs}: own mean shrunk toward the "
                               "fleet regression" for k in n_e[prior & (n_e > 0)]]
    note[prior & (n_e == 0) & (n_c > 0)] = "only censored observations: fleet prior"
    note[prior & (n_e == 0) & (n_c == 0)] = "no backups: fleet prior"

    km50, km95 = _kaplan_meier(g, y, ev, G)

    table = pd.DataFrame({"cluster": keys["cluster"].to_numpy()[gcv],
                          "volume": keys["volume"].to_numpy()[gcv],
                          "mode": np.where(inc, "incremental", "full"), "source": source,
                          "n_completed": n_e.astype(int), "n_censored": n_c,
                          "mu_log": mu, "sigma_log": sigma})
    crit = np.where(own, stats.t.ppf(0.975, np.maximum(n_e - 1, 1)), _Z_CI)
    for q, z in _Z.items():
        lq = mu + z * sigma
        table[f"{q}_s"] = np.exp(lq)
        table[f"{q}_lo_s"] = np.exp(lq - crit * se[q])
        table[f"{q}_hi_s"] = np.exp(lq + crit * se[q])
    table["km_p50_s"], table["km_p95_s"] = km50, km95
    table["note"] = note
    return (table.sort_values(["cluster", "volume", "mode"], ignore_index=True),
            pd.DataFrame(regressions, columns=["mode", "features", "n_volumes", "intercept",
                                               *_FEATURES, "residual_sd", "sigma_within",
                                               "sigma_within_sd"]))


# --- deletions -------------------------------------------------------------------------------

def _deletions(backups: pd.DataFrame, cv: np.ndarray, keys: pd.DataFrame,
               t: dict[str, np.ndarray], size_bv: np.ndarray, size_act: np.ndarray,
               size_spec: np.ndarray, standby: np.ndarray, prior: DeletionPrior
               ) -> pd.DataFrame:
    """The deletion prior of every volume with a backup volume, backups, or (not a DR
    volume) a Volume. Size (``size_from``): the BackupVolume's ``size_bytes`` (largest
    over targets), else the volume's actual size, else its largest backup, else its
    nominal size (the Volume's spec, or the backups' ``volumeSize``: an upper bound, as
    blocks never written are not in the backupstore). Backups held: those Completed at
    the cluster's latest collection (older rows of a store may be deleted since)."""
    size_b = np.full(len(keys), np.nan)
    np.fmax.at(size_b, cv, _numeric(backups, "size_bytes"))
    np.fmax.at(size_spec, cv, _numeric(backups, "volume_size_bytes"))
    coll = t["collected_at"]
    cl = pd.factorize(keys["cluster"])[0][cv]
    latest = np.full(cl.max() + 1 if len(cl) else 0, np.nan)
    np.fmax.at(latest, cl, coll)
    held = (_text(backups, "state") == "Completed").to_numpy(bool) & (coll == latest[cl])
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
                    p99_s=med * prior.p95_ratio ** (_Z["p99"] / _Z["p95"]), source="prior",
                    note=f"assumption (no deletion times in the history): {prior.base_s:g} s "
                         f"+ {prior.per_gib_s:g} s/GiB + {prior.per_backup_s:g} s/backup, "
                         f"p95 = {prior.p95_ratio:g} x median, median known to a factor "
                         f"of {np.exp(prior.median_sd):.3g} (1 sd)")
    return d[rows].sort_values(["cluster", "volume"], ignore_index=True)


# --- queue delay ----------------------------------------------------------------------------

def _runs(volume: np.ndarray, prev_fire: np.ndarray, busy_until: np.ndarray) -> np.ndarray:
    """The run number of each backup of one job, rows in creation order.

    A run backs up each of its volumes once and runs of a job never overlap (Forbid). So
    a new run starts when a volume comes again, or when a fire time passed while every
    earlier backup of the job had ended (an idle job at a fire time starts a run). Greedy
    segmentation: from a run's first row ``s`` the next run starts at ``min{i : p_i >=
    s}``, ``p_i`` being the previous row of the same volume (``i - 1`` where forced)."""
    n = len(volume)
    idx = np.arange(n)
    o = np.argsort(volume, kind="stable")
    same = volume[o][1:] == volume[o][:-1]
    prev = np.full(n, -1)
    prev[o[1:][same]] = o[:-1][same]
    prev = np.where(prev_fire > busy_until, idx - 1, prev)
    m = np.full(n + 1, n)
    np.minimum.at(m, prev[prev >= 0], idx[prev >= 0])
    nxt = np.minimum.accumulate(m[::-1])[::-1].tolist()
    starts = np.zeros(n, dtype=bool)
    s = 0
    while s < n:
        starts[s] = True
        s = nxt[s]
    return np.cumsum(starts) - 1


def _ranks(run: np.ndarray, started: np.ndarray) -> np.ndarray:
    """1-based rank of each row's start within its run (rows grouped by run; NaN: NaN)."""
    counts = np.bincount(run)
    order = np.arange(len(run))  # runs are mostly in start order already: sort the rest
    bad = (np.diff(run) == 0) & ~(np.diff(started) >= 0)
    if bad.any():
        redo = np.flatnonzero(np.isin(run, run[1:][bad]))
        order[redo] = redo[_sort_by(run[redo], started[redo], stable=True)]
    rank = np.empty(len(run))
    rank[order] = np.arange(len(run)) - (np.cumsum(counts) - counts)[run[order]] + 1
    return np.where(np.isnan(started), np.nan, rank)


def _queue_delay(backups: pd.DataFrame, cv: np.ndarray, keys: pd.DataFrame,
                 t: dict[str, np.ndarray], jobs: pd.DataFrame | None, tz: str | None,
                 problems: list[FitProblem]) -> tuple[pd.DataFrame, ...]:
    """Per backup: its run's cron slot (the latest fire time at or before the run's first
    creation, in ``tz``, default UTC), ``queue_delay_s = started_at - slot`` and
    ``run_rank`` (1: first to start in its run); summaries per job and per job/volume."""
    jc, jkeys = _pairs(backups, "cluster", "recurring_job")
    sel = (_text(backups, "recurring_job") != "").to_numpy(bool) & ~np.isnan(t["requested_at"])
    j = _latest(jobs, ["cluster", "recurring_job"])
    crons = {} if j is None else dict(zip(
        zip(_text(j, "cluster"), _text(j, "recurring_job"), strict=True),
        _text(j, "cron"), strict=True))
    end = t["finished_at"]
    for c in ("last_synced_at", "collected_at"):
        end = np.where(np.isnan(end), t[c], end)
    end = np.where(np.isnan(end), np.inf, end)
    rows = np.flatnonzero(sel)
    rows = rows[np.argsort(jc[rows].astype(np.int16 if len(jkeys) < 2**15 else np.int64),
                           kind="stable")]  # a radix sort for small codes
    bounds = np.flatnonzero(np.r_[True, np.diff(jc[rows]) != 0, True]) if len(rows) else []
    parts, by_job, by_volume = [], [], []
    for lo, hi in itertools.pairwise(bounds):
        r = rows[lo:hi][np.argsort(t["requested_at"][rows[lo:hi]], kind="stable")]
        cluster, name = jkeys.iloc[jc[r[0]]]
        cron = crons.get((cluster, name), "")
        try:
            sched = parse(cron) if cron else None
        except CronError as e:
            sched, cron = None, f"cron {cron!r}: {e}"
        if sched is None or isinstance(sched, EverySchedule):
            why = ("@every counts from the previous run, not the clock" if sched else
                   cron or "not in the jobs frame")
            problems.append(FitProblem(cluster, "", "", "recurring_job",
                                       f"{name}: {why}; no queue delay", "warning"))
            continue
        created = t["requested_at"][r]
        for margin_days in (2, 400):  # a monthly or yearly job's slot may be far back
            fires = fire_times(sched, pd.Timestamp(created[0] - margin_days * 86400, unit="s",
                                                   tz="UTC"),
                               pd.Timestamp(created[-1] + 1, unit="s", tz="UTC"), tz
                               ).astype(np.int64).astype(float)
            at = np.searchsorted(fires, created, side="right") - 1
            if at[0] >= 0:
                break
        prev_fire = np.where(at >= 0, fires[np.maximum(at, 0)], -np.inf)
        busy = np.r_[-np.inf, np.maximum.accumulate(end[r])[:-1]]
        run = _runs(cv[r], prev_fire, busy)
        slot = prev_fire[np.r_[0, np.flatnonzero(np.diff(run)) + 1]][run]
        started = t["started_at"][r]
        delay = np.where(np.isfinite(slot), started - slot, np.nan)
        rank = _ranks(run, started)
        by_job.append((cluster, name, int(run[-1]) + 1, int(np.count_nonzero(~np.isnan(delay))),
                       *(q[0] for q in _group_quantiles(np.zeros(len(r), np.int64), delay, 1,
                                                        (0.5, 0.95, 1.0)))))
        vols, vc = np.unique(cv[r], return_inverse=True)
        has = ~np.isnan(rank)
        with np.errstate(invalid="ignore"):
            mean_rank = np.bincount(vc[has], rank[has], len(vols)) / np.bincount(
                vc[has], minlength=len(vols))
        v50, v95 = _group_quantiles(vc, delay, len(vols), (0.5, 0.95))
        by_volume.append(pd.DataFrame({
            "cluster": cluster, "recurring_job": name, "volume": keys["volume"].to_numpy()[vols],
            "n_backups": np.bincount(vc, ~np.isnan(delay), len(vols)).astype(int),
            "mean_rank": mean_rank, "p50_s": v50, "p95_s": v95}))
        parts.append((r, slot, started, delay, rank))
    r, slot, started, delay, rank = (np.concatenate([p[i] for p in parts]) if parts
                                     else np.empty(0, int if i == 0 else float)
                                     for i in range(5))
    per_backup = pd.DataFrame({
        "cluster": _categorical(jkeys["cluster"], jc[r]),
        "recurring_job": _categorical(jkeys["recurring_job"], jc[r]),
        "volume": _categorical(keys["volume"], cv[r]),
        "backup": _text(backups, "backup").iloc[r].array,
        "slot": _times(slot), "started_at": _times(started),
        "queue_delay_s": delay, "run_rank": rank})
    by_job_df = pd.DataFrame(by_job, columns=["cluster", "recurring_job", "n_runs",
                                              "n_backups", "p50_s", "p95_s", "max_s"])
    by_volume_df = (pd.concat(by_volume, ignore_index=True) if by_volume else pd.DataFrame(
        columns=["cluster", "recurring_job", "volume", "n_backups", "mean_rank", "p50_s",
                 "p95_s"]))
    return by_job_df, by_volume_df, per_backup


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
    keep, start, dur, problems = _observations(backups, t, now)
    up, size = _numeric(backups, "new_upload_bytes"), _numeric(backups, "size_bytes")
    full = _full(backups)[keep]
    censored = np.isnan(t["finished_at"][keep])
    # the regressor "actual size": the Volume's, else the backups' status.size
    ok = keep[~censored & (size[keep] > 0)]
    with np.errstate(invalid="ignore"):
        log_size = np.bincount(cv[ok], np.log(size[ok]), len(keys)) / np.bincount(
            cv[ok], minlength=len(keys))
        log_act = np.where(size_act > 0, np.log(np.where(size_act > 0, size_act, 1)),
                           log_size)
    table, regression = _fit_table(cv[keep], full, keys, dur, censored, up[keep],
                                   log_act, min_observations)
    deletions = _deletions(backups, cv, keys, t, per_key(bvs, "size_bytes"), size_act,
                           per_key(vols, "size_bytes"), standby, deletion_prior)
    by_job, by_volume, per_backup = _queue_delay(backups, cv, keys, t, jobs, tz, problems)
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
