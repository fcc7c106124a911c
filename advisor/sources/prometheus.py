"""Backup history read from Prometheus: the samples of longhorn-manager's backup metrics.

Longhorn's managers export, for each Backup CR they own (``status.ownerID``: one manager
at a time), ``longhorn_backup_state`` and ``longhorn_backup_actual_size_bytes``, labelled
``volume`` (the Backup's ``backup-volume`` label), ``backup`` and, in newer managers,
``recurring_job`` (the Backup's *metadata* label ``RecurringJob``, empty unless set)
(``metrics_collector/backup_collector.go`` in longhorn-manager). There is no duration
metric: a backup's start and end are the first samples in which it is InProgress and
Completed (:mod:`advisor.sources.backup_samples` turns samples into rows).

Both metrics are read with ``/api/v1/query_range`` at one ``step`` from ``since`` to
``until``, both aligned down to a multiple of the step (so that two collections sample
the same instants). Prometheus refuses a query of more than 11,000 points per series, so
the window is read in pieces of at most :data:`MAX_POINTS` steps that meet without
sharing a sample. Each time derived from samples is known within ``time_resolution_s``:
the step, or the gap between two samples where data is missing. The real precision is
``max(step, scrape interval)``: a step finer than the scrape interval only repeats
samples.

A backup whose first sample is at the window's start, already past Pending, began before
``since``: it is left out with that reason (its start is not in the window, and a row
without it would replace a fuller one already in the store). Errors are
:class:`PrometheusError`, naming the URL and what to do; 429 and 5xx answers, time-outs
and refused connections are retried with backoff, a bounded number of times.
"""
from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import requests

from advisor import schema
from advisor.sources.backup_samples import SIZE_METRIC, STATE_METRIC, BackupSamples
from advisor.sources.base import LoadResult, empty_result, retry_delay

__all__ = ["MAX_POINTS", "Connection", "PrometheusError", "QueryStats", "load_prometheus",
           "parse_duration", "parse_since", "read_secret"]

MAX_POINTS = 11_000
"""Points per series Prometheus answers in one query_range at most."""
RETRIES = 4
"""Attempts after the first for a query answered 429 or 5xx, timing out or refused."""
TIMEOUT_S = 60.0
"""Seconds one query may take."""
TOKEN_ENV = "ADVISOR_PROMETHEUS_TOKEN"
PASSWORD_ENV = "ADVISOR_PROMETHEUS_PASSWORD"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|[smhdwy])")


class PrometheusError(Exception):
    """Prometheus could not be read as asked (what, where, and what to do)."""


@dataclass
class QueryStats:
    """What reading took: queries (and retried requests), series and samples read, and
    the backups found, from ``url`` (without credentials) over the window from ``start``
    to ``end`` (aligned to the step)."""

    queries: int = 0
    retries: int = 0
    series: int = 0
    samples: int = 0
    backups: int = 0
    url: str = ""
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None


@dataclass(frozen=True)
class Connection:
    """How to talk to a Prometheus: ``bearer_token`` or ``basic_auth`` (user, password)
    authenticate; ``ca_file`` verifies the server (``insecure_skip_tls_verify``: not at
    all), ``client_cert`` and ``client_key`` (PEM files) authenticate the client.
    ``timeout_s`` bounds each query (seconds); a query that may pass later is asked
    again after waiting (``sleep``, seconds), up to :data:`RETRIES` times."""

    bearer_token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure_skip_tls_verify: bool = False
    timeout_s: float = TIMEOUT_S
    sleep: Callable[[float], None] = time.sleep

    def session(self) -> requests.Session:
        """A session that asks for JSON, with the credentials."""
        session = requests.Session()
        session.headers["Accept"] = "application/json"
        if self.bearer_token:
            session.headers["Authorization"] = f"Bearer {self.bearer_token}"
        elif self.basic_auth:
            session.auth = self.basic_auth
        return session

    def tls(self) -> dict[str, object]:
        """``verify`` and ``cert``, as each request takes them."""
        tls: dict[str, object] = {}
        if self.insecure_skip_tls_verify:
            import urllib3

            # The user chose not to verify: one warning per query would only bury the
            # output.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            tls["verify"] = False
        elif self.ca_file:
            tls["verify"] = self.ca_file
        if self.client_cert:
            tls["cert"] = ((self.client_cert, self.client_key) if self.client_key
                           else self.client_cert)
        return tls


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration (``30s``, ``1m``, ``12h``, ``30d``, ``1h30m``,
    or a plain number of seconds); ``ValueError`` if it is none or not positive."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{text!r} is not a duration (e.g. 30s, 1m, 12h, 30d)") from None
        seconds = sum(float(n) * (0.001 if u == "ms" else _UNITS[u]) for n, u in parts)
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


def parse_since(text: str, now: pd.Timestamp | None = None) -> pd.Timestamp:
    """A window's start: a duration before ``now`` (``30d``) or an RFC 3339 time (UTC)."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    try:
        return now - pd.Timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        ts = schema.utc(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30d, 12h, 90m) nor an RFC 3339 "
                         "time") from None
    try:
        return ts.as_unit("ns")
    except pd.errors.OutOfBoundsDatetime:
        raise ValueError(f"{text!r} is out of range (1677 to 2262)") from None


def read_secret(path: str | None, env_var: str) -> str | None:
    """The secret in the file ``path`` (surrounding whitespace removed), else in the
    environment variable ``env_var``, else None. Secrets never come as a CLI argument:
    those are visible to every user of the machine in its process list."""
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                secret = f.read().strip()
        except OSError as e:
            raise PrometheusError(f"cannot read the secret file {path}: {e.strerror}") from None
        if not secret:
            raise PrometheusError(f"the secret file {path} is empty")
        return secret
    return os.environ.get(env_var) or None


def _redacted(url: str) -> str:
    """``url`` without a user or password in it (it names the source in the store)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url.rstrip("/")
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc)).rstrip("/")


def _error_text(resp: requests.Response) -> str:
    try:
        body = resp.json()
        return f"{body.get('errorType', 'error')}: {body['error']}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return resp.text.strip()[:300] or resp.reason


def _query_range(session: requests.Session, url: str, params: dict, tls: dict,
                 stats: QueryStats, sleep: Callable[[float], None], timeout_s: float
                 ) -> list[dict]:
    """The ``result`` of one query_range (a list of series), retrying what may pass.
    ``tls`` (``verify``, ``cert``) goes with each request: requests lets
    $REQUESTS_CA_BUNDLE override a session's own ``verify``."""
    where = _redacted(url)
    endpoint = url.rstrip("/") + "/api/v1/query_range"
    stats.queries += 1
    for attempt in range(RETRIES + 1):
        last = attempt == RETRIES
        try:
            resp = session.get(endpoint, params=params, timeout=timeout_s, **tls)
        except requests.exceptions.SSLError as e:
            reason = getattr(e.args[0], "reason", e) if e.args else e
            raise PrometheusError(
                f"{where}: TLS failed ({reason}): give --ca-file with the CA "
                "that signed the server's certificate (and --client-cert/--client-key if "
                "it asks for one), or --insecure-skip-tls-verify") from None
        except (requests.ConnectionError, requests.Timeout) as e:
            if last:
                raise PrometheusError(
                    f"{where}: no answer after {RETRIES + 1} attempts of at most "
                    f"{timeout_s:g} s each ({type(e).__name__}): is Prometheus running "
                    "there, and is this its base URL (e.g. http://prometheus:9090)?"
                ) from None
            delay = retry_delay(attempt, None)
        else:
            status = resp.status_code
            if status == 200:
                return _matrix(resp, where)
            if status in (400, 422):
                raise PrometheusError(f"{where}: the query {params['query']!r} was refused "
                                      f"({status} {_error_text(resp)})")
            if status == 401:
                raise PrometheusError(
                    f"{where}: 401 Unauthorized: give credentials that Prometheus (or the "
                    "proxy in front of it) accepts: --bearer-token-file or $" + TOKEN_ENV
                    + ", or --basic-auth USER with --basic-auth-password-file or $"
                    + PASSWORD_ENV)
            if status == 403:
                raise PrometheusError(f"{where}: 403 Forbidden: these credentials may not "
                                      f"query Prometheus ({_error_text(resp)})")
            if not (status == 429 or status >= 500):
                raise PrometheusError(f"{where}: {status} {resp.reason} for {endpoint}: is "
                                      "this Prometheus' base URL (e.g. http://prometheus:9090)?")
            if last:
                raise PrometheusError(f"{where}: {status} after {RETRIES + 1} attempts: "
                                      f"{_error_text(resp)}")
            delay = retry_delay(attempt, resp.headers.get("Retry-After"))
        stats.retries += 1
        sleep(delay)
    raise AssertionError("unreachable")


def _matrix(resp: requests.Response, where: str) -> list[dict]:
    try:
        body = resp.json()
        data = body["data"]
        if body.get("status") != "success" or data.get("resultType") != "matrix":
            raise ValueError
        result = data["result"]
        if not isinstance(result, list):
            raise ValueError
        return result
    except (ValueError, KeyError, TypeError, AttributeError):
        kind = resp.headers.get("Content-Type", "no content type")
        raise PrometheusError(
            f"{where}: the answer is not Prometheus' query_range JSON ({kind}: "
            f"{resp.text.strip()[:120]!r}): is this Prometheus' base URL (e.g. "
            "http://prometheus:9090), not a UI or a login page in front of it?") from None


def _pieces(start_ms: int, end_ms: int, step_ms: int, max_points: int
            ) -> list[tuple[int, int]]:
    """[start, end] ranges of at most ``max_points`` steps; each starts one step after the
    previous ends, so no sample is read twice and none is missed."""
    out = []
    span = (max_points - 1) * step_ms
    s = start_ms
    while s <= end_ms:
        e = min(s + span, end_ms)
        out.append((s, e))
        s = e + step_ms
    return out


def load_prometheus(url: str, *, since: pd.Timestamp, until: pd.Timestamp | None = None,
                    step: str | float = "30s", cluster: str = "default", selector: str = "",
                    connection: Connection = Connection(), max_points: int = MAX_POINTS
                    ) -> tuple[LoadResult, QueryStats]:
    """The ``backups`` frame of the backups sampled by the Prometheus at ``url`` between
    ``since`` and ``until`` (default now), tagged ``cluster``, and what reading took.

    ``step`` is the sampling interval (a duration such as ``30s``, or seconds);
    ``selector`` is label matchers added to both metrics (``cluster="prod"`` when one
    Prometheus holds several clusters). ``connection``: the credentials, TLS and
    time-outs; ``max_points`` bounds the points per series of one query. Raises
    :class:`PrometheusError` when Prometheus cannot be read; nothing is returned then.
    """
    step_ms = round((parse_duration(step) if isinstance(step, str) else float(step)) * 1000)
    if step_ms < 1:
        raise ValueError(f"step {step!r} is below a millisecond")
    until = until if until is not None else pd.Timestamp.now(tz="UTC")
    start_ms = schema.utc(since).value // 1_000_000 // step_ms * step_ms
    end_ms = schema.utc(until).value // 1_000_000 // step_ms * step_ms
    if end_ms < start_ms:
        raise ValueError(f"since {since} is after until {until}")
    stats = QueryStats(url=_redacted(url), start=pd.Timestamp(start_ms, unit="ms", tz="UTC"),
                       end=pd.Timestamp(end_ms, unit="ms", tz="UTC"))
    source = f"prometheus:{stats.url}"
    session, tls = connection.session(), connection.tls()
    samples = BackupSamples(source)
    with session:
        for metric in (STATE_METRIC, SIZE_METRIC):
            for s, e in _pieces(start_ms, end_ms, step_ms, max_points):
                params = {"query": f"{metric}{{{selector}}}", "start": f"{s / 1000:.3f}",
                          "end": f"{e / 1000:.3f}", "step": f"{step_ms / 1000:g}"}
                series = _query_range(session, url, params, tls, stats, connection.sleep,
                                      connection.timeout_s)
                samples.add(series, metric)
    rows = samples.rows(start_ms, step_ms)
    stats.series, stats.samples, stats.backups = samples.series, samples.samples, len(rows)
    now = pd.Timestamp.now(tz="UTC")
    for r in rows:
        r.update(cluster=cluster, source=source, collected_at=now)
    result = empty_result()
    result.frames["backups"] = schema.with_durations(schema.from_records("backups", rows))
    result.read["Backup"] = len(rows)
    result.problems = samples.problems
    return result, stats
