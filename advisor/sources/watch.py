"""Backups watched live (``advisor watch``): every state transition, with its time.

A list shows each Backup as it is at one instant, and a Backup CR exists only while it is
retained: Pending, InProgress and Deleting spans, and so deletion durations, are only
seen by watching. The watch records an observation (a ``backups`` row, ``collected_at``
= when the event arrived) whenever a Backup is first seen, changes ``status.state`` or
its lock messages, has its deletion asked for (``metadata.deletionTimestamp``), or is
removed (its DELETED event: ``deleted_at``). A deletion's duration is then ``deleted_at
- deletion_requested_at``.

It reads from the resourceVersion the store last recorded for the cluster (or lists
first), keeps it from events and BOOKMARKs, and lists again on a 410 (an expired
resourceVersion, as an HTTP status or as an ERROR event): the list is compared with what
was known, so a transition missed while not watching is recorded at the list's time, and
a Backup removed meanwhile is counted (its deletion's end is unknown, so none is made
up). 429, 5xx and lost connections are retried with backoff for as long as it runs; 401,
403 and 404 end it.

Rows are written to the store at least every ``flush_every_s`` and when it stops
(SIGTERM), into one collection per ``roll_every_s`` (each write supersedes the hour's
previous one), with the resourceVersion they reach in its manifest: a watch killed at
any instant resumes from what the store holds and loses nothing it had written.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from advisor.longhorn import NAMESPACE
from advisor.sources.base import retry_delay
from advisor.sources.crs import FrameBuilder, Origin
from advisor.sources.kube import (
    GROUP,
    KubeError,
    KubeUnavailable,
    ListStats,
    Paging,
    list_resource,
    tls_failure,
)
from advisor.store import HistoryStore, StoreBusyError

__all__ = ["BackupWatch", "Cadence", "WatchStats"]

WATCH_TIMEOUT_S = 300
"""Seconds the API server keeps one watch request open (``timeoutSeconds``); the watch
then goes on from the last resourceVersion."""
FLUSH_EVERY_S = 60.0
ROLL_EVERY_S = 3600.0
MAX_BACKOFF_S = 30.0
BUSY_RETRY_S = 5.0
"""Seconds before writing again when another advisor holds the store."""


@dataclass
class WatchStats:
    """What a watch did: events by type, rows written, lists, reconnections."""

    events: Counter[str] = field(default_factory=Counter)
    rows_written: int = 0
    problems: int = 0
    lists: int = 0
    reconnects: int = 0
    writes: int = 0
    unseen_deletions: int = 0
    resource_version: str | None = None


@dataclass(frozen=True)
class Cadence:
    """When a watch writes and asks again: rows are written at least every
    ``flush_every_s`` seconds, into one collection per ``roll_every_s`` seconds; the API
    server keeps one watch request open ``timeout_s`` seconds."""

    flush_every_s: float = FLUSH_EVERY_S
    roll_every_s: float = ROLL_EVERY_S
    timeout_s: int = WATCH_TIMEOUT_S


@dataclass
class _Outbox:
    """The rows not yet written, when they are due, and the collection this hour's
    writes supersede (``open_id``, opened at ``opened`` on the monotonic clock)."""

    next_write: float
    pending: list[tuple[dict, pd.Timestamp, bool]] = field(default_factory=list)
    open_id: str | None = None
    opened: float = 0.0


@dataclass(frozen=True)
class _Seen:
    """What a transition is measured against."""

    state: str
    deleting: bool
    messages: str


def _seen(obj: dict) -> _Seen:
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return _Seen(str(status.get("state") or ""), bool(meta.get("deletionTimestamp")),
                 json.dumps([status.get("error"), status.get("messages")], sort_keys=True,
                            default=str))


def _name(obj: dict) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return str(meta.get("name") or "")


class _Fatal(Exception):
    pass


class BackupWatch:
    """Watch the Backups of one cluster (``api``: a ``kubernetes.client.ApiClient``)
    into ``store``, tagged ``cluster``. :meth:`run` until ``stop`` is set."""

    def __init__(self, api: object, store: HistoryStore, *, cluster: str,
                 namespace: str = NAMESPACE, cadence: Cadence = Cadence(),
                 log: Callable[[str], None] = print,
                 sleep: Callable[[float], None] = time.sleep):
        self.api, self.store, self.cluster, self.namespace = api, store, cluster, namespace
        self.cadence, self.log, self.sleep = cadence, log, sleep
        self.source = f"watch:{cluster}/{namespace}"
        self.stats = WatchStats()
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._known: dict[str, _Seen] = {}
        self._version = "v1beta2"

    # --- the main thread: rows into the store -----------------------------------------

    def run(self, stop: threading.Event) -> WatchStats:
        """Watch until ``stop`` is set, then write what is pending and return. Raises
        :class:`KubeError` (after writing) when the cluster refuses the watch."""
        rv = self._resume()
        reader = threading.Thread(target=self._read, args=(rv,), daemon=True,
                                  name="backup-watch")
        reader.start()
        out = _Outbox(time.monotonic() + self.cadence.flush_every_s)
        fatal: KubeError | None = None
        while True:
            stopping = stop.is_set()
            if stopping:
                self._stop.set()  # (the reader adds nothing more: what is queued is all)
            item = self._next(timeout_s=0.0 if stopping else 0.2)
            if item is not None:
                fatal = self._take(item, out.pending) or fatal
            due = time.monotonic() >= out.next_write
            if item is not None and (stopping or fatal or not due):
                continue  # (drain what has arrived; a steady stream still writes when due)
            if out.pending and (due or stopping or fatal):
                flushed = self._flush(out)
                if not flushed and (stopping or fatal):
                    time.sleep(0.5)  # (the store is busy: once more before stopping)
                    continue
            if stopping or (fatal and not out.pending):
                break
        # The reader ends at its next event or at the request's timeoutSeconds (a daemon
        # thread: closing its response here would wait on the read it is blocked in).
        self._stop.set()
        if fatal is not None:
            raise fatal
        return self.stats

    def _next(self, timeout_s: float) -> tuple | None:
        """The reader's next item, None when none came within ``timeout_s``."""
        try:
            return self._events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def _take(self, item: tuple, pending: list[tuple[dict, pd.Timestamp, bool]]
              ) -> KubeError | None:
        """Add the reader's ``item`` to ``pending``; the error that ends the watch when
        that is what it brings."""
        # ("event", row or None, rv): a row and the rv that covers it arrive together,
        # so a write never records an rv past a row it does not hold
        kind, row, rv = item
        if rv is not None:
            self.stats.resource_version = rv
        if kind == "fatal":
            return row
        if row is not None:
            pending.append(row)
        return None

    def _flush(self, out: _Outbox) -> bool:
        """Write what is pending (superseding this hour's collection): False, keeping
        the rows, when the store was busy."""
        if time.monotonic() - out.opened >= self.cadence.roll_every_s:
            out.open_id = None
        written = self._write(out.pending, out.open_id)
        if written is False:  # the store is busy: try again soon, losing nothing
            out.next_write = time.monotonic() + min(BUSY_RETRY_S, self.cadence.flush_every_s)
            return False
        out.pending = []
        out.next_write = time.monotonic() + self.cadence.flush_every_s
        if written is not None:
            if out.open_id is None:
                out.opened = time.monotonic()
            out.open_id = written
        return True

    def _write(self, pending: list[tuple[dict, pd.Timestamp, bool]],
               open_id: str | None) -> str | bool | None:
        """Append ``pending`` (superseding ``open_id``): the collection written, None
        when nothing was new, False when the store was busy."""
        builder = FrameBuilder(self.cluster, pending[-1][1])
        times, deleted = [], []
        for i, (obj, at, gone) in enumerate(pending):
            before = len(builder.rows["backups"])
            builder.add(obj, Origin(self.source, f"event {i + 1}"), self.source)
            if len(builder.rows["backups"]) > before:
                times.append(at)
                deleted.append(at if gone else None)
        result = builder.finish(dedupe=False)
        for p in result.problems:
            self.log(f"{p.severity}: {p}")
        self.stats.problems += len(result.skipped)
        backups = result.frames["backups"]
        backups["collected_at"] = pd.Series(times, dtype=backups["collected_at"].dtype)
        backups["deleted_at"] = pd.Series(pd.to_datetime(deleted, utc=True),
                                          dtype=backups["deleted_at"].dtype)
        meta = {"watch": {"cluster": self.cluster, "namespace": self.namespace,
                          "resource_version": self.stats.resource_version}}
        try:
            appended = self.store.append(
                {"backups": backups}, meta=meta,
                supersede=[open_id] if open_id in self.store.collection_ids() else [])
        except StoreBusyError as e:
            self.log(f"{e}; keeping {len(pending)} row(s) for the next write")
            return False
        self.stats.writes += 1
        self.stats.rows_written += appended.written
        if appended.collection_id:
            self.log(f"wrote {appended.written} row(s) into {appended.collection_id}, at "
                     f"resourceVersion {self.stats.resource_version}")
        return appended.collection_id or (open_id if appended.written else None)

    def _resume(self) -> str | None:
        """The resourceVersion the store's last write for this cluster reached, and what
        each Backup not yet removed was then."""
        rv = None
        for c in reversed(self.store.collections()):
            w = c.meta.get("watch") or {}
            if w.get("cluster") == self.cluster and w.get("namespace") == self.namespace:
                rv = w.get("resource_version")
                break
        if rv is None:
            return None
        # the Backups this watch saw and did not see removed (not those a list collected
        # long ago: their removal was never the watch's to see)
        seen = self.store.read("backups", latest=False, columns=["cluster", "backup",
                                                                  "source"])
        mine = set(seen.loc[(seen["cluster"] == self.cluster)
                            & (seen["source"] == self.source), "backup"])
        del seen
        b = self.store.read("backups", columns=["cluster", "backup", "state",
                                                "deletion_requested_at", "deleted_at"])
        b = b[(b["cluster"] == self.cluster) & b["deleted_at"].isna() & b["backup"].isin(mine)]
        # (only the state and deletion are compared: a message change is recorded again)
        for name, state, deleting in zip(b["backup"], b["state"],
                                         b["deletion_requested_at"].notna(), strict=True):
            self._known[str(name)] = _Seen(str(state), bool(deleting), "")
        return str(rv)

    # --- the reader thread: the API server's events into the queue --------------------

    def _read(self, rv: str | None) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._list()
                rv = self._watch(rv)
                attempt = 0
            except _Gone:
                rv = None  # the resourceVersion expired: list again
            except _Fatal as e:
                self._events.put(("fatal", e.args[0], None))
                return
            except Exception as e:  # (5xx, 429, lost connections: retried)
                if self._stop.is_set():
                    return
                delay = min(retry_delay(attempt, getattr(e, "retry_after", None)),
                            MAX_BACKOFF_S)
                self.log(f"watch of backups in {self.cluster}: {_describe(e)}; again in "
                         f"{delay:g} s")
                attempt += 1
                self.stats.reconnects += 1
                self._stop.wait(delay)

    def _list(self) -> str:
        stats = ListStats()
        try:
            doc = list_resource(self.api, "backups", self.namespace,
                                paging=Paging(sleep=self.sleep), stats=stats)
        except KubeUnavailable:
            raise  # (retried, as a lost watch is)
        except KubeError as e:
            raise _Fatal(e) from None
        at = pd.Timestamp.now(tz="UTC")
        self.stats.lists += 1
        self._version = stats.versions.get("backups", self._version)
        listed = set()
        for obj in doc["items"]:
            listed.add(_name(obj))
            self._events.put(("event", self._observe(obj, at), None))
        for name in set(self._known) - listed:
            del self._known[name]  # removed while not watching: when, nobody saw
            self.stats.unseen_deletions += 1
        rv = str(doc["metadata"]["resourceVersion"])
        self._events.put(("event", None, rv))
        return rv

    def _observe(self, obj: dict, at: pd.Timestamp, gone: bool = False
                 ) -> tuple[dict, pd.Timestamp, bool] | None:
        """The row to record for ``obj`` (None: nothing changed that is recorded)."""
        name = _name(obj)
        seen = _seen(obj)
        if gone:
            self._known.pop(name, None)
        elif self._known.get(name) == seen:
            return None
        else:
            before = self._known.get(name)
            self._known[name] = seen
            if before is not None and before.messages == "" and (
                    before.state, before.deleting) == (seen.state, seen.deleting):
                return None  # (known from the store, where messages are not compared)
        return obj, at, gone

    def _watch(self, rv: str) -> str:
        """Events from ``rv`` until the server ends the request; the last rv."""
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.rest import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        try:
            resp = CustomObjectsApi(self.api).list_namespaced_custom_object(
                GROUP, self._version, self.namespace, "backups", watch=True,
                resource_version=rv, allow_watch_bookmarks=True,
                timeout_seconds=self.cadence.timeout_s, _preload_content=False,
                _request_timeout=(10, self.cadence.timeout_s + 30))
        except ApiException as e:
            _raise_status(e.status, e.reason, _body_message(e.body), e.headers, self)
        try:
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    break
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                self.stats.events[str(kind)] += 1
                if kind == "ERROR":
                    _raise_status(obj.get("code") or 500, obj.get("reason"),
                                  obj.get("message"), None, self)
                new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                row = (self._observe(obj, pd.Timestamp.now(tz="UTC"), kind == "DELETED")
                       if kind in ("ADDED", "MODIFIED", "DELETED") else None)
                rv = str(new_rv) if new_rv else rv
                self._events.put(("event", row, rv))
        finally:
            resp.release_conn()
        return rv


class _Gone(Exception):
    pass


class _Retry(Exception):
    def __init__(self, message: str, retry_after: str | None):
        super().__init__(message)
        self.retry_after = retry_after


def _body_message(body: object) -> str:
    try:
        return str(json.loads(body).get("message") or "")  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError):
        return ""


def _raise_status(code: int, reason: object, message: object, headers: object,
                  w: BackupWatch) -> None:
    where = f"watch of backups.{GROUP}/{w._version} in namespace {w.namespace}"
    if code == 410:
        raise _Gone()
    if code == 0:
        raise _Fatal(KubeError(f"{where}: {tls_failure(reason)}"))
    if code == 429 or code >= 500:
        raise _Retry(f"{code} {reason}: {message}",
                     (headers or {}).get("Retry-After"))  # type: ignore[attr-defined]
    if code == 401:
        raise _Fatal(KubeError(f"{where}: 401 Unauthorized: the credentials were refused "
                               f"({message})"))
    if code == 403:
        raise _Fatal(KubeError(f"{where}: 403 Forbidden: the advisor needs the verbs get, "
                               f"list and watch on backups.{GROUP} in namespace "
                               f"{w.namespace}: {message}"))
    if code == 404:
        raise _Fatal(KubeError(f"{where}: 404: backups.{GROUP}/{w._version} is not served "
                               "(the Longhorn CRDs are not installed, or at another "
                               f"version): {message}"))
    raise _Fatal(KubeError(f"{where}: {code} {reason}: {message}"))


def _describe(e: Exception) -> str:
    return str(e) if isinstance(e, _Retry) else f"{type(e).__name__}: {e}"

