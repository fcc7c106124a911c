"""``advisor watch`` through the real ``kubernetes`` client against the loopback API server
(tests/kubeapi.py): every transition recorded with its time, deletions measured, resumed
from the store's resourceVersion, lists again on 410, nothing lost on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from advisor.history import summarize
from advisor.sources import synthetic as syn
from advisor.sources.kube import KubeError, clients
from advisor.sources.watch import BackupWatch, Cadence, WatchStats
from advisor.store import HistoryStore
from tests.conftest import T0, completed
from tests.kubeapi import FakeApi, serve


def fresh(name: str, volume: str = "pvc-0") -> dict:
    """A Backup just asked for by a job: state New, no times yet."""
    return syn.backup_cr(name, volume, state="", created=T0, job="hourly")


def advance(state: str, **status: object):
    def update(obj: dict) -> None:
        obj["status"].update(state=state, **status)
    return update


def ask_deletion(obj: dict) -> None:
    obj["metadata"]["deletionTimestamp"] = pd.Timestamp.now(tz="UTC").isoformat()


def until(check, timeout_s: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Running:
    """One watch in a thread: ``stop()`` returns its stats (or raises its error)."""

    def __init__(self, watch: BackupWatch):
        self.watch, self.stop_event = watch, threading.Event()
        self.out: dict = {}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.out["stats"] = self.watch.run(self.stop_event)
        except Exception as e:  # (handed to the test by stop())
            self.out["error"] = e

    def stop(self) -> WatchStats:
        self.stop_event.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the watch did not stop"
        if "error" in self.out:
            raise self.out["error"]
        return self.out["stats"]


@contextmanager
def watching(api: FakeApi, tmp_path: Path, store: HistoryStore, flush_every_s: float = 0.1,
             **kw) -> Iterator[Running]:
    with serve(api, tmp_path) as kubeconfig:
        [(name, client)] = clients(kubeconfig=str(kubeconfig))
        logs: list[str] = []
        running = Running(BackupWatch(client, store, cluster=name, log=logs.append,
                                      cadence=Cadence(flush_every_s=flush_every_s), **kw))
        running.logs = logs  # type: ignore[attr-defined]
        try:
            yield running
        finally:
            if running.thread.is_alive():
                running.stop_event.set()
                running.thread.join(15)


def observations(store: HistoryStore, name: str) -> pd.DataFrame:
    b = store.read("backups", latest=False)
    return b[b["backup"] == name].sort_values("collected_at").reset_index(drop=True)


def start_api() -> FakeApi:
    return FakeApi({"backups": [completed("backup-old", "pvc-0", minutes=4)]})


def test_every_transition_is_recorded_with_its_time_and_deletions_are_measured(tmp_path):
    api, store = start_api(), HistoryStore(tmp_path / "store")
    with watching(api, tmp_path, store) as w:
        api.wait_for_watches(1)
        api.change("backups", fresh("backup-new"))
        api.modify("backups", "backup-new", advance("Pending"))
        api.modify("backups", "backup-new", advance(
            "InProgress", snapshotCreatedAt=(T0 + timedelta(seconds=30)).isoformat()))
        api.modify("backups", "backup-new", advance("InProgress", progress=40))  # no row
        api.modify("backups", "backup-new", advance(
            "Completed", backupCreatedAt=(T0 + timedelta(minutes=6)).isoformat(),
            progress=100))
        api.modify("backups", "backup-new", ask_deletion)
        api.modify("backups", "backup-new", advance("Deleting"))
        time.sleep(0.3)  # the deletion takes a while
        api.delete("backups", "backup-new")
        until(lambda: len(observations(store, "backup-new")) == 7, what="7 rows stored")
        stats = w.stop()
    rows = observations(store, "backup-new")
    assert list(rows["state"]) == ["", "Pending", "InProgress", "Completed", "Completed",
                                   "Deleting", "Deleting"]
    assert rows["collected_at"].is_monotonic_increasing
    assert rows["source"].iloc[0] == "watch:prod/longhorn-system"
    assert rows["duration_s"].iloc[3] == 330.0
    assert rows["deleted_at"].notna().tolist() == [False] * 6 + [True]
    asked = rows["deletion_requested_at"].iloc[4]
    assert pd.notna(asked) and rows["deletion_requested_at"].iloc[:4].isna().all()
    deletion_s = (rows["deleted_at"].iloc[6] - asked).total_seconds()
    assert 0.3 <= deletion_s < 5
    # the first list saw backup-old; the latest row of backup-new is its removal
    assert observations(store, "backup-old")["state"].tolist() == ["Completed"]
    assert store.read("backups").set_index("backup").loc["backup-new", "deleted_at"] \
        == rows["deleted_at"].iloc[6]
    assert stats.events["MODIFIED"] == 6 and stats.events["DELETED"] == 1
    assert stats.lists == 1 and stats.resource_version == str(api.resource_version)
    # every minute's write went into one collection (within the hour): nothing piles up
    assert stats.writes >= 2 and len(store.collections()) == 1
    [c] = store.collections()
    assert c.meta["watch"]["resource_version"] == str(api.resource_version)
    assert len(store.read("backups", latest=False)) == 8
    summary = summarize(store.read_all())
    assert summary.deletions_measured == 1
    assert summary.deletion_median_s == pytest.approx(deletion_s)


def test_a_steady_stream_of_events_is_still_written_every_flush_interval(tmp_path):
    api, store = start_api(), HistoryStore(tmp_path / "store")
    with watching(api, tmp_path, store, flush_every_s=0.3) as w:
        api.wait_for_watches(1)
        deadline, i, stored_while_busy = time.monotonic() + 3.0, 0, 0
        while time.monotonic() < deadline:  # an event every 20 ms, never a pause
            api.change("backups", fresh(f"backup-{i}"))
            i += 1
            time.sleep(0.02)
            if i % 25 == 0:
                b = store.read("backups")
                stored_while_busy = max(stored_while_busy,
                                        int(b["backup"].str.fullmatch(r"backup-\d+").sum()))
        stats = w.stop()
    assert stored_while_busy > 0  # written during the stream, not only at its end
    assert stats.writes >= 3
    assert len(store.read("backups")) == i + 1  # and at the stop, every one of them


def test_a_restarted_watch_resumes_from_the_stored_resource_version(tmp_path):
    api, store = start_api(), HistoryStore(tmp_path / "store")
    with watching(api, tmp_path, store) as w:
        api.wait_for_watches(1)
        api.change("backups", fresh("backup-1"))
        until(lambda: len(observations(store, "backup-1")) == 1)
        w.stop()
    rv = store.collections()[-1].meta["watch"]["resource_version"]
    api.modify("backups", "backup-1", advance("InProgress"))  # while nothing watches
    api.requests.clear()
    with watching(api, tmp_path, store) as w:
        api.wait_for_watches(2)
        until(lambda: len(observations(store, "backup-1")) == 2)
        stats = w.stop()
    assert stats.lists == 0  # no list needed: the watch went on from the store's rv
    [first] = [r for r in api.requests if '"watch"' in r[1]]
    assert f'"resourceVersion": ["{rv}"]' in first[1]
    assert '"allowWatchBookmarks": ["true"]' in first[1]
    assert observations(store, "backup-1")["state"].tolist() == ["", "InProgress"]


@pytest.mark.parametrize("as_status", [False, True], ids=["error-event", "http-410"])
def test_an_expired_resource_version_lists_again_and_loses_no_transition(tmp_path,
                                                                        as_status):
    api, store = start_api(), HistoryStore(tmp_path / "store")
    api.change("backups", fresh("backup-1"))
    api.change("backups", fresh("backup-2"))
    with watching(api, tmp_path, store) as w:
        api.wait_for_watches(1)
        until(lambda: len(observations(store, "backup-2")) == 1)
        w.stop()
    # while nothing watches: one backup moves on, one is removed, history is compacted
    api.modify("backups", "backup-1", advance("InProgress"))
    api.delete("backups", "backup-2")
    api.compact()
    api.expire_as_status = as_status
    with watching(api, tmp_path, store) as w:
        until(lambda: len(observations(store, "backup-1")) == 2)
        api.wait_for_watches(2 if as_status else 3)
        api.modify("backups", "backup-1", advance("Completed"))
        until(lambda: len(observations(store, "backup-1")) == 3)
        stats = w.stop()
    assert stats.lists == 1 and stats.unseen_deletions == 1
    assert observations(store, "backup-1")["state"].tolist() == ["", "InProgress",
                                                                 "Completed"]
    # backup-2's removal was not seen: no deletion end is made up
    assert observations(store, "backup-2")["deleted_at"].isna().all()


def test_an_error_event_mid_stream_and_bookmarks(tmp_path):
    api, store = start_api(), HistoryStore(tmp_path / "store")
    with watching(api, tmp_path, store) as w:
        api.wait_for_watches(1)
        api.expire_watches()  # ERROR 410 on the open stream: list again, watch again
        api.wait_for_watches(2)
        api.change("backups", fresh("backup-1"))
        until(lambda: len(observations(store, "backup-1")) == 1)
        rv = api.bookmark()
        until(lambda: w.watch.stats.resource_version == str(rv), what="the bookmark")
        api.end_watches()  # the request's timeoutSeconds: go on from the bookmark
        api.wait_for_watches(3)
        stats = w.stop()
    assert stats.lists == 2 and stats.events["ERROR"] == 1 and stats.events["BOOKMARK"] == 1
    last = [r for r in api.requests if '"watch"' in r[1]][-1]
    assert f'"resourceVersion": ["{rv}"]' in last[1]


def test_server_errors_are_retried_and_refusals_end_the_watch(tmp_path):
    api, store = start_api(), HistoryStore(tmp_path / "store")
    api.watch_fail = {1: 503, 2: 429}
    with watching(api, tmp_path, store) as w:
        api.wait_for_watches(3)
        api.change("backups", fresh("backup-1"))
        until(lambda: len(observations(store, "backup-1")) == 1)
        stats = w.stop()
    assert stats.reconnects == 2
    assert any("503" in line for line in w.logs)  # type: ignore[attr-defined]

    api = start_api()
    api.forbidden.add("backups")
    with watching(api, tmp_path, HistoryStore(tmp_path / "other")) as w:
        w.thread.join(10)
        with pytest.raises(KubeError, match=r"get and list on backups\.longhorn\.io"):
            w.stop()
    for code, says in [(403, "verbs get, list and watch"), (401, "credentials were refused"),
                       (404, "Longhorn CRDs are not installed")]:
        api = start_api()
        api.watch_fail = {1: code}
        with watching(api, tmp_path, HistoryStore(tmp_path / f"s{code}")) as w:
            w.thread.join(10)
            with pytest.raises(KubeError, match=says):
                w.stop()
        # what was listed before the refusal is in the store
        assert len(HistoryStore(tmp_path / f"s{code}").read("backups")) == 1


def test_a_list_the_server_cannot_answer_is_tried_again_not_the_end(tmp_path):
    api, store = start_api(), HistoryStore(tmp_path / "store")
    # the list after the first: 503 on its first attempt and on all 5 retries
    api.fail = {("backups", n): 503 for n in range(2, 8)}
    with watching(api, tmp_path, store, sleep=lambda _: None) as w:
        api.wait_for_watches(1)
        api.expire_watches()
        api.wait_for_watches(2)
        api.change("backups", fresh("backup-1"))
        until(lambda: len(observations(store, "backup-1")) == 1)
        stats = w.stop()
    assert stats.lists == 2 and stats.reconnects == 1
    assert any("no answer" in line or "503" in line
               for line in w.logs)  # type: ignore[attr-defined]


def test_rows_wait_while_another_advisor_writes_the_store(tmp_path):
    from tests.test_store import another_writer

    api, store = start_api(), HistoryStore(tmp_path / "store")
    with watching(api, tmp_path, store) as w:
        api.wait_for_watches(1)
        until(lambda: len(store.collections()) == 1)
        with another_writer(store.path):
            api.change("backups", fresh("backup-1"))
            time.sleep(0.5)
            assert observations(store, "backup-1").empty
        until(lambda: len(observations(store, "backup-1")) == 1)
        w.stop()
    assert any("being written by another advisor" in line
               for line in w.logs)  # type: ignore[attr-defined]


def test_sigterm_writes_what_is_pending_and_exits_0(tmp_path):
    api, store_path = start_api(), tmp_path / "store"
    with serve(api, tmp_path) as kubeconfig:
        proc = subprocess.Popen(
            [sys.executable, "-m", "advisor", "watch", "--kubeconfig", str(kubeconfig),
             "--store", str(store_path), "--flush-every", "3600"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "COLUMNS": "200"})
        try:
            api.wait_for_watches(1, timeout_s=60)
            api.change("backups", fresh("backup-1"))
            api.modify("backups", "backup-1", advance("Pending"))
            time.sleep(0.5)  # (the events reach the advisor; the hourly write is far)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    rows = observations(HistoryStore(store_path), "backup-1")
    assert rows["state"].tolist() == ["", "Pending"]
    assert "stopped" in out and "rows written" in out
