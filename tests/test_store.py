"""The history store on real files: round trips, deduplication, crashes, locks, versions."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor import schema, store
from advisor.store import (
    HistoryStore,
    StoreBusyError,
    StoreError,
    StoreVersionError,
    default_store_path,
    history_store,
    parts,
)

REPO = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2025-03-01T02:00:00Z")
HOUR = pd.Timedelta(hours=1)


def backup(name: str, state: str = "Completed", at: pd.Timestamp = T0, **fields) -> dict:
    """One backup observation with every required column set."""
    return {"cluster": "c1", "backup_target": "default", "volume": "vol-a", "backup": name,
            "recurring_job": "daily", "state": state, "censored": state != "Completed",
            "backup_mode": "incremental", "lock_conflict": "none", "source": "test",
            "collected_at": at, **fields}


def backups(*records: dict) -> pd.DataFrame:
    return schema.from_records("backups", list(records))


def job(cron: str, at: pd.Timestamp = T0) -> pd.DataFrame:
    return schema.from_records("jobs", [{"cluster": "c1", "recurring_job": "daily",
                                         "task": "backup", "cron": cron, "source": "test",
                                         "collected_at": at}])


def every_frame() -> dict[str, pd.DataFrame]:
    """All five frames with every dtype, NA where a column allows it."""
    return {
        "backups": backups(
            backup("b1", uid="u-1", snapshot="s-1", requested_at="2025-03-01T01:59:59Z",
                   started_at=T0, finished_at=T0 + pd.Timedelta(seconds=90.5),
                   last_synced_at=T0 + 2 * HOUR, duration_s=90.5, progress=100,
                   size_bytes=2**60 + 1, volume_size_bytes=10 * 2**30, new_upload_bytes=0,
                   reupload_bytes=7, lock_path="backupstore/volumes/ab/cd/vol-a/locks/x.lck",
                   lock_path_matches=True, message="done – ünïcode"),
            backup("b2", "Error", lock_conflict="create_blocked", lock_path_matches=False,
                   message="failed to acquire lock", backup_mode=""),
            backup("b3", "", source="file:/tmp/export.yaml", recurring_job=""),
        ),
        "jobs": schema.from_records("jobs", [
            {"cluster": "c1", "recurring_job": "daily", "task": "backup", "cron": "0 2 * * *",
             "retain": 7, "concurrency": 2, "groups": "default", "labels": "{}",
             "parameters": '{"full-backup-interval": "5"}', "full_backup_interval": 5,
             "source": "test", "collected_at": T0},
            {"cluster": "c1", "recurring_job": "snap", "task": "snapshot", "cron": "*/5 * * * *",
             "source": "test", "collected_at": T0}]),
        "volumes": schema.from_records("volumes", [
            {"cluster": "c1", "volume": "vol-a", "size_bytes": 10 * 2**30, "standby": False,
             "restore_required": None, "state": "attached", "robustness": "healthy",
             "recurring_jobs": "daily", "recurring_job_groups": "", "backup_target": "default",
             "last_backup": "b1", "last_backup_at": T0, "source": "test", "collected_at": T0}]),
        "backup_volumes": schema.from_records("backup_volumes", [
            {"cluster": "c1", "backup_target": "default", "backup_volume": "vol-a-x1",
             "volume": "vol-a", "size_bytes": 123, "source": "test", "collected_at": T0}]),
        "settings": schema.from_records("settings", [
            {"cluster": "c1", "setting": "backup-concurrent-limit", "value": "2",
             "source": "test", "collected_at": T0}]),
    }


def test_round_trip_keeps_dtypes_and_values(tmp_path):
    frames = every_frame()
    result = HistoryStore(tmp_path / "s").append(frames)
    assert result.collection_id is not None
    assert result.counts["backups"] == store.FrameCounts(added=3)
    assert "3 added" in str(result) and result.collection_id in str(result)
    reopened = HistoryStore(tmp_path / "s")
    for name, df in frames.items():
        for latest in (True, False):
            got = reopened.read(name, latest=latest)
            pd.testing.assert_frame_equal(got, df)
            assert got.dtypes.to_dict() == schema.dtypes(name)
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    assert meta["format"] == "longhorn-backup-advisor-store"
    assert meta["schema_version"] == schema.SCHEMA_VERSION
    [info] = reopened.collections()
    assert info.id == result.collection_id
    assert info.rows == {name: len(df) for name, df in frames.items()}
    assert info.sources["backups"] == ["file:/tmp/export.yaml", "test"]
    part = tmp_path / "s" / "collections" / info.id / "backups.parquet"
    assert pq.read_schema(part).metadata[b"advisor.schema_version"] == str(
        schema.SCHEMA_VERSION).encode()
    assert reopened.observations()["jobs"] == 2


def test_missing_store_reads_empty_and_is_created_on_append(tmp_path):
    s = HistoryStore(tmp_path / "a" / "b")
    assert not s.path.exists()
    for name in schema.FRAMES:
        pd.testing.assert_frame_equal(s.read(name), schema.empty(name))
    assert s.collections() == []
    assert s.append({"backups": schema.empty("backups")}).collection_id is None
    assert not s.path.exists()
    s.append({"backups": backups(backup("b1"))})
    assert (s.path / "store.json").is_file()


def test_same_frames_twice_write_nothing_new(tmp_path):
    s = HistoryStore(tmp_path)
    s.append(every_frame())
    again = every_frame()
    # Only provenance differs: the same content seen again later, from elsewhere.
    for df in again.values():
        df["collected_at"] = T0 + 5 * HOUR
        df["source"] = "kube:prod"
    result = s.append(again)
    assert result.collection_id is None
    assert result.written == 0
    # (every frame counted: an empty count would make the check below vacuous)
    assert set(result.counts) == set(again)
    assert all(c.added == c.updated == 0 and c.unchanged == len(again[n])
               for n, c in result.counts.items())
    assert "nothing new" in str(result)
    assert len(list((tmp_path / "collections").iterdir())) == 1
    assert len(s.read("backups", latest=False)) == 3


def test_duplicate_rows_in_one_append_are_stored_once(tmp_path):
    result = HistoryStore(tmp_path).append({"backups": backups(backup("b1"), backup("b1"))})
    assert result.counts["backups"] == store.FrameCounts(added=1, unchanged=1)


def test_progress_is_an_update_and_latest_is_completed(tmp_path):
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1", "InProgress", progress=40))})
    result = s.append({"backups": backups(backup("b1", "Completed", T0 + HOUR, progress=100))})
    assert result.counts["backups"] == store.FrameCounts(updated=1)
    latest = s.read("backups")
    assert latest["state"].tolist() == ["Completed"]
    assert latest["progress"].tolist() == [100]
    assert s.read("backups", latest=False)["state"].tolist() == ["InProgress", "Completed"]


def test_reading_some_columns_keeps_the_latest_rows_of_a_full_read(tmp_path):
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1", "InProgress", progress=40),
                                 backup("b2", "Completed", volume="vol-b", duration_s=30.0))})
    s.append({"backups": backups(backup("b1", "Completed", T0 + HOUR, progress=100,
                                        duration_s=70.0))})
    cols = ["volume", "duration_s", "backup"]
    some = s.read("backups", columns=cols)
    # in schema order; the state that chose b1's row is read but not returned
    assert list(some.columns) == ["volume", "backup", "duration_s"]
    pd.testing.assert_frame_equal(some, s.read("backups")[list(some.columns)])
    assert some["duration_s"].tolist() == [30.0, 70.0]
    assert len(s.read("backups", columns=cols, latest=False)) == 3
    assert s.read("jobs", columns=["cron"]).columns.tolist() == ["cron"]  # (empty)
    with pytest.raises(ValueError, match=r"no column.*'uuid'"):
        s.read("backups", columns=["volume", "uuid"])


def test_an_older_observation_arriving_late_does_not_hide_completion(tmp_path):
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1", "Completed", T0 + HOUR))})
    result = s.append({"backups": backups(backup("b1", "InProgress", T0))})
    assert result.counts["backups"] == store.FrameCounts(updated=1)
    assert s.read("backups")["state"].tolist() == ["Completed"]
    assert len(s.read("backups", latest=False)) == 2


def test_ties_go_to_later_collected_at_then_later_collection(tmp_path):
    s = HistoryStore(tmp_path)
    s.append({"jobs": job("0 * * * *", T0)})
    s.append({"jobs": job("30 * * * *", T0 + HOUR)})
    s.append({"jobs": job("15 * * * *", T0)})  # an old export read late
    assert s.read("jobs")["cron"].tolist() == ["30 * * * *"]
    s.append({"jobs": job("45 * * * *", T0 + HOUR)})  # same time, later collection
    assert s.read("jobs")["cron"].tolist() == ["45 * * * *"]
    # Error and Completed are both final: the later observation wins either way.
    s.append({"backups": backups(backup("b1", "Completed", T0 + HOUR), backup("b1", "Error", T0))})
    assert s.read("backups")["state"].tolist() == ["Completed"]
    s.append({"backups": backups(backup("b1", "Deleting", T0))})
    assert s.read("backups")["state"].tolist() == ["Deleting"]


# How far a Backup has got, written out here from Longhorn's Backup lifecycle rather than
# read from the store: a Backup is created with no state, waits (Pending), runs
# (InProgress), may lose its engine (Unknown: not final, it can still end either way),
# ends Completed or Error (both final: the later observation wins), and is Deleting last.
LIFECYCLE = {"": 0, "Pending": 1, "InProgress": 2, "Unknown": 3, "Error": 4, "Completed": 4,
             "Deleting": 5}


@pytest.mark.parametrize(("earlier", "later", "kept"), [
    ("Unknown", "Error", "Error"), ("Error", "Unknown", "Error"),
    ("Unknown", "Completed", "Completed"), ("Completed", "Unknown", "Completed"),
    ("InProgress", "Unknown", "Unknown"), ("Unknown", "InProgress", "Unknown"),
    ("Pending", "", "Pending"), ("Error", "Completed", "Completed"),
    ("Completed", "Error", "Error"), ("Deleting", "Completed", "Deleting")])
def test_the_most_advanced_state_wins_whatever_the_order(tmp_path, earlier, later, kept):
    """Pairs of observations of one Backup (``earlier`` collected an hour before
    ``later``), each in its own collection: the state kept is the one further along."""
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1", earlier, T0))})
    s.append({"backups": backups(backup("b1", later, T0 + HOUR))})
    assert s.read("backups")["state"].tolist() == [kept]


observation = st.tuples(st.sampled_from(["b1", "b2", "b3"]),
                        st.sampled_from(schema.BACKUP_STATES),
                        st.integers(0, 4),                  # collected_at, hours after T0
                        st.sampled_from(["", "retrying"]))  # message: varies the content


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(observation, min_size=1, max_size=4), min_size=1, max_size=5))
def test_latest_is_the_most_advanced_state_per_backup(batches):
    with tempfile.TemporaryDirectory() as d:
        s = HistoryStore(d)
        for batch in batches:
            s.append({"backups": backups(*(backup(n, state, T0 + h * HOUR, message=m)
                                            for n, state, h, m in batch))})
        stored = s.read("backups", latest=False)
        latest = s.read("backups")
    distinct = {(n, state, m) for batch in batches for n, state, _, m in batch}
    assert len(stored) == len(distinct)
    assert sorted(latest["backup"]) == sorted({n for n, _, _ in distinct})
    for row in latest.itertuples():
        seen = stored[stored["backup"] == row.backup]
        ranks = pd.Series([LIFECYCLE[x] for x in seen["state"]], index=seen.index)
        assert LIFECYCLE[row.state] == ranks.max()
        assert row.collected_at == seen.loc[ranks == ranks.max(), "collected_at"].max()
    # in stored order: the rows kept are a subsequence of the stored ones (a Backup seen
    # once is kept where it was, whatever is ranked around it)
    at = stored.reset_index().merge(latest, on=list(latest.columns))["index"]
    assert len(at) == len(latest) and at.is_monotonic_increasing


# Appends big collections to the store at argv[1] until killed.
WRITER = """
import sys
import numpy as np
import pandas as pd
from advisor.store import HistoryStore

store, tag, n = HistoryStore(sys.argv[1]), sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
for i in range(10**6):
    now = pd.Timestamp.now(tz="UTC")
    common = {"cluster": "c1", "backup_target": "default", "source": "kill-test",
              "collected_at": now}
    b = pd.DataFrame({**common, "volume": [f"vol-{k % 50}" for k in range(n)],
                      "backup": [f"{tag}-{i}-{k}" for k in range(n)], "recurring_job": "daily",
                      "state": "Completed", "censored": False, "backup_mode": "incremental",
                      "lock_conflict": "none", "size_bytes": np.arange(n) * 4096,
                      "message": "x" * 60})
    v = pd.DataFrame({**common, "volume": [f"vol-{k}" for k in range(50)], "state": "attached",
                      "robustness": "healthy", "recurring_jobs": "daily",
                      "recurring_job_groups": "", "size_bytes": i})
    store.append({"backups": b, "volumes": v})
"""


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _assert_consistent(path: Path, earlier: dict[str, dict[str, int]]) -> None:
    """Every committed collection is whole and matches its manifest; earlier ones unchanged."""
    s = HistoryStore(path)
    infos = s.collections()
    listed = sorted(os.listdir(path / "collections")) if infos else []
    assert [c.id for c in infos] == listed  # no half-written directory is visible
    for c in infos:
        files = {p.name for p in (path / "collections" / c.id).iterdir()}
        assert files == {"manifest.json", *(f"{name}.parquet" for name in c.rows)}
        for name, rows in c.rows.items():
            assert pq.read_metadata(path / "collections" / c.id / f"{name}.parquet").num_rows \
                == rows
    now = {c.id: c.rows for c in infos}
    assert all(now.get(cid) == rows for cid, rows in earlier.items())
    earlier.update(now)
    for name in schema.FRAMES:
        assert len(s.read(name, latest=False)) == sum(c.rows.get(name, 0) for c in infos)
        s.read(name)


def _wait_for_new_entry(folder: Path, known: set[str], timeout_s: float = 60) -> None:
    """Return once ``folder`` holds an entry not in ``known`` (nor a staged store.json)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if set(os.listdir(folder)) - known - {"store.json"}:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    raise AssertionError(f"the writer never made a new entry in {folder}")


@pytest.mark.slow
def test_a_writer_killed_at_any_moment_leaves_the_store_consistent(tmp_path):
    path = tmp_path / "store"
    rng = random.Random(20250301)
    committed: dict[str, dict[str, int]] = {}
    for round_ in range(8):
        leftovers = set(os.listdir(path / ".staging")) if (path / ".staging").is_dir() else set()
        known = set(committed)
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"r{round_}", "6000"],
                                stdout=subprocess.PIPE, env=_child_env(), cwd=REPO)
        try:
            assert proc.stdout.readline() == b"ready\n"
            # (waiting for the writer, not a fixed time: a loaded machine may take
            # seconds over one append, and a kill before any commit tests little)
            if round_ % 2:  # at some moment of the cycle after a commit
                _wait_for_new_entry(path / "collections", known)
                time.sleep(rng.uniform(0, 0.6))
            else:  # most of a cycle is reading the store: aim some kills at the writing
                _wait_for_new_entry(path / ".staging", leftovers)
                time.sleep(rng.uniform(0, 0.02))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        _assert_consistent(path, committed)
    assert committed, "no collection was committed before the kills"
    result = HistoryStore(path).append({"backups": backups(backup("after-the-kills"))})
    assert result.counts["backups"].added == 1 and result.collection_id is not None
    assert list((path / ".staging").iterdir()) == []
    _assert_consistent(path, committed)


# Holds the writer lock of the store at argv[1] the way an advisor process would.
LOCK_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(60)
"""


@contextmanager
def another_writer(store_path: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the store's writer lock for the block."""
    proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER,
                             str(store_path / ".writer.lock")], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"locked\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_second_writer_is_refused_with_the_other_pid(tmp_path):
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1"))})
    with another_writer(tmp_path) as proc:
        with pytest.raises(StoreBusyError) as err:
            s.append({"backups": backups(backup("b2"))})
        assert str(tmp_path) in str(err.value) and f"pid {proc.pid}" in str(err.value)
        assert isinstance(err.value, StoreError)
        assert s.read("backups")["backup"].tolist() == ["b1"]  # readers take no lock
    assert s.append({"backups": backups(backup("b2"))}).counts["backups"].added == 1


def test_leftover_staging_is_removed_by_the_next_writer(tmp_path):
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1"))})
    dead = tmp_path / ".staging" / "20250301T020000.000000Z-deadbeef"
    dead.mkdir(parents=True)
    (dead / "backups.parquet").write_bytes(b"half a file")
    assert len(s.read("backups")) == 1  # readers ignore staging
    s.append({"backups": backups(backup("b2"))})
    assert list((tmp_path / ".staging").iterdir()) == []
    assert (tmp_path / ".writer.lock").read_text() == ""  # no pid once the writer is done


def test_a_newer_store_is_refused(tmp_path):
    newer = schema.SCHEMA_VERSION + 1
    (tmp_path / "store.json").write_text(json.dumps(
        {"format": "longhorn-backup-advisor-store", "schema_version": newer}))
    with pytest.raises(StoreVersionError, match="upgrade longhorn-backup-advisor") as err:
        HistoryStore(tmp_path)
    assert f"schema {newer} > {schema.SCHEMA_VERSION}" in str(err.value)


def test_a_newer_part_is_refused(tmp_path):
    s = HistoryStore(tmp_path)
    cid = s.append({"backups": backups(backup("b1"))}).collection_id
    part = tmp_path / "collections" / cid / "backups.parquet"
    table = pq.read_table(part)
    pq.write_table(table.replace_schema_metadata(
        {**table.schema.metadata, b"advisor.schema_version": b"99"}), part)
    with pytest.raises(StoreVersionError, match=str(part)):
        s.read("backups")


def _old_part(path: Path, cid: str) -> None:
    """A version-0 collection: no ``message`` nor ``reupload_bytes``; ``lock_conflict`` was
    called ``conflict``; plain int64 and object columns."""
    old = schema.from_records("backups", [backup("old", lock_conflict="delete_blocked",
                                                 size_bytes=5)])
    old = old.drop(columns=["message", "reupload_bytes"]).rename(
        columns={"lock_conflict": "conflict"}).astype({"size_bytes": "int64"})
    table = pa.Table.from_pandas(old.astype({c: object for c in old.select_dtypes("string")}),
                                 preserve_index=False)
    (path / "collections" / cid).mkdir(parents=True)
    pq.write_table(table.replace_schema_metadata({b"advisor.schema_version": b"0"}),
                   path / "collections" / cid / "backups.parquet")
    (path / "collections" / cid / "manifest.json").write_text(json.dumps(
        {"id": cid, "written_at": "2020-01-01T00:00:00+00:00", "schema_version": 0,
         "frames": {"backups": {"file": "backups.parquet", "rows": 1}}}))


def test_an_older_store_is_migrated_on_read_and_bumped_on_append(tmp_path, monkeypatch):
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("new"))})
    _old_part(tmp_path, "20200101T000000.000000Z-00000000")
    meta = json.loads((tmp_path / "store.json").read_text())
    (tmp_path / "store.json").write_text(json.dumps({**meta, "schema_version": 0}))
    monkeypatch.setitem(store.MIGRATIONS, 0, lambda frame, df: df.rename(
        columns={"conflict": "lock_conflict"}) if frame == "backups" else df)

    got = HistoryStore(tmp_path).read("backups", latest=False)
    assert got.dtypes.to_dict() == schema.dtypes("backups")
    # an old part is read whole, since its migration may need any column
    some = HistoryStore(tmp_path).read("backups", columns=["backup", "lock_conflict"])
    assert some.to_dict("list") == {"backup": ["old", "new"],
                                    "lock_conflict": ["delete_blocked", "none"]}
    assert got["backup"].tolist() == ["old", "new"]  # the old collection sorts first
    old = got.iloc[0]
    assert pd.isna(old["message"]) and pd.isna(old["reupload_bytes"])
    assert old["lock_conflict"] == "delete_blocked" and old["size_bytes"] == 5

    # The migrated row is the same content as today's, so it is not stored again.
    result = s.append({"backups": backups(
        backup("old", lock_conflict="delete_blocked", size_bytes=5), backup("newer"))})
    assert result.counts["backups"] == store.FrameCounts(added=1, unchanged=1)
    assert json.loads((tmp_path / "store.json").read_text())["schema_version"] \
        == schema.SCHEMA_VERSION


def test_default_store_path(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_STORE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "mine"
    assert HistoryStore().path == tmp_path / "mine"
    monkeypatch.delenv("ADVISOR_STORE")
    assert default_store_path() == tmp_path / "xdg" / "longhorn-backup-advisor"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for xdg in ("", "relative/dir"):  # both are ignored, as the XDG spec says
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
        assert default_store_path() == tmp_path / "home/.local/share/longhorn-backup-advisor"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_store_path() == tmp_path / "home/.local/share/longhorn-backup-advisor"
    assert not (tmp_path / "home").exists()  # opening creates nothing


def test_a_directory_that_is_not_a_store_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="is not a history store"):
        HistoryStore(tmp_path).append({"backups": backups(backup("b1"))})
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]  # nothing written into it
    with pytest.raises(StoreError, match="not a directory"):
        HistoryStore(tmp_path / "notes.txt")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "store.json").write_text('{"format": "something-else"}')
    with pytest.raises(StoreError, match="not a longhorn-backup-advisor store"):
        HistoryStore(tmp_path / "other")


def test_a_damaged_part_is_a_store_error_naming_the_file(tmp_path):
    s = HistoryStore(tmp_path)
    cid = s.append({"backups": backups(backup("b1"))}).collection_id
    part = tmp_path / "collections" / cid / "backups.parquet"
    part.write_bytes(part.read_bytes()[:40])
    with pytest.raises(StoreError, match=str(part)):
        s.read("backups")


def test_rows_without_identity_are_refused(tmp_path):
    bad = backups(backup("b1"), backup(None))
    with pytest.raises(schema.SchemaError, match="backup"):
        HistoryStore(tmp_path / "s").append({"backups": bad})
    assert not (tmp_path / "s").exists()
    with pytest.raises(ValueError, match="unknown frame"):
        HistoryStore(tmp_path / "s").read("nodes")


def test_derived_frames_are_kept_for_the_collections_they_came_from(tmp_path):
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1"))})
    ids = s.collection_ids()
    fits = {"table": pd.DataFrame({"volume": ["vol-a"], "p50_s": [60.0]})}
    assert s.derived("fits", "v1") is None
    assert s.keep_derived("fits", "v1", fits, ids)
    got = s.derived("fits", "v1")
    pd.testing.assert_frame_equal(got["table"], fits["table"])
    assert s.derived("fits", "v2") is None  # another key (another advisor) does not see it
    # they are not history: readers of the collections never see them
    assert s.read("backups")["backup"].tolist() == ["b1"]
    # a new collection makes them unused; keeping fits read before it is refused
    s.append({"backups": backups(backup("b2"))})
    assert s.derived("fits", "v1") is None
    assert not s.keep_derived("fits", "v1", fits, ids)
    assert s.keep_derived("fits", "v1", fits, s.collection_ids())
    assert len(list((tmp_path / "derived" / "fits").iterdir())) == 1  # the stale one went


def test_derived_frames_are_not_kept_while_another_process_writes(tmp_path):
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1"))})
    with another_writer(tmp_path):
        assert not s.keep_derived("fits", "v1", {"t": pd.DataFrame({"x": [1]})},
                                  s.collection_ids())
    assert s.derived("fits", "v1") is None
    with pytest.raises(ValueError, match="derived name"):
        s.keep_derived("../x", "v1", {}, s.collection_ids())


def test_a_damaged_derived_file_reads_as_none(tmp_path):
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1"))})
    assert s.keep_derived("fits", "v1", {"t": pd.DataFrame({"x": [1]})}, s.collection_ids())
    (part,) = (tmp_path / "derived" / "fits").glob("*/t.parquet")
    part.write_bytes(b"not parquet")
    assert s.derived("fits", "v1") is None


def test_a_collection_superseding_another_carries_its_rows_and_hides_it(tmp_path):
    s = HistoryStore(tmp_path)
    first = s.append({"backups": backups(backup("b1", "Pending"))}, meta={"n": 1})
    s.append({"jobs": job("0 2 * * *")})
    then = s.append({"backups": backups(backup("b1", "InProgress", T0 + pd.Timedelta(1, "m")))},
                    supersede=[first.collection_id], meta={"n": 2})
    assert then.counts["backups"].updated == 1 and then.written == 1
    ids = s.collection_ids()
    assert first.collection_id not in ids and ids[-1] == then.collection_id and len(ids) == 2
    assert not (tmp_path / "collections" / first.collection_id).exists()
    # both observations, once each, in order; the manifest says what was superseded
    assert s.read("backups", latest=False)["state"].tolist() == ["Pending", "InProgress"]
    info = s.collections()[-1]
    assert info.supersedes == (first.collection_id,) and info.meta == {"n": 2}
    assert info.rows == {"backups": 2} and s.observations()["backups"] == 2
    # nothing new: nothing written, nothing superseded
    assert s.append({"backups": backups(backup("b1", "InProgress"))},
                    supersede=[then.collection_id]).collection_id is None
    assert s.collection_ids() == ids
    with pytest.raises(StoreError, match="cannot supersede"):
        s.append({"backups": backups(backup("b2"))}, supersede=[first.collection_id])


def test_a_superseded_collection_left_by_a_dead_writer_stays_hidden(tmp_path, monkeypatch):
    s = HistoryStore(tmp_path)
    first = s.append({"backups": backups(backup("b1", "Pending"))})
    monkeypatch.setattr(HistoryStore, "_drop_hidden", lambda self: None)  # dies before
    then = s.append({"backups": backups(backup("b1", "Completed"))},
                    supersede=[first.collection_id])
    monkeypatch.undo()
    assert (tmp_path / "collections" / first.collection_id).is_dir()
    fresh = HistoryStore(tmp_path)  # (another process: nothing cached)
    assert fresh.collection_ids() == [then.collection_id]
    assert fresh.read("backups", latest=False)["state"].tolist() == ["Pending", "Completed"]
    fresh.append({"backups": backups(backup("b2"))})  # the next writer deletes it
    assert not (tmp_path / "collections" / first.collection_id).exists()


def test_append_result_text_names_the_collection_and_each_frame():
    """``str(AppendResult)``: the collection written, then each frame's counts in order,
    separated by "; "; with no counts, the head alone."""
    cid = "20250301T020000.000000Z-0badf00d"
    result = store.AppendResult(cid, {"backups": store.FrameCounts(1, 2, 3),
                                      "jobs": store.FrameCounts(unchanged=4)})
    assert str(result) == (f"wrote collection {cid} (backups: 1 added, 2 updated, 3 unchanged; "
                           "jobs: 0 added, 0 updated, 4 unchanged)")
    assert result.written == 3
    assert str(store.AppendResult(None)) == "nothing new, no collection written"
    assert repr(HistoryStore(Path("/nonexistent/store"))) == "HistoryStore('/nonexistent/store')"


def test_read_all_keeps_the_latest_row_per_key_unless_asked_for_all(tmp_path):
    """``read_all()`` returns every frame, by default one row per key (the most advanced),
    and every stored row with ``latest=False``."""
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1", "InProgress"))})
    s.append({"backups": backups(backup("b1", "Completed", T0 + HOUR))})
    frames = s.read_all()
    assert sorted(frames) == sorted(schema.FRAMES)
    assert frames["backups"]["state"].tolist() == ["Completed"]
    assert len(frames["jobs"]) == 0
    assert s.read_all(latest=False)["backups"]["state"].tolist() == ["InProgress", "Completed"]


def _id_time(cid: str) -> pd.Timestamp:
    """The UTC time a collection id starts with (``20250301T020000.123456Z-...``)."""
    return pd.Timestamp(pd.to_datetime(cid.split("-")[0], format="%Y%m%dT%H%M%S.%fZ"),
                        tz="UTC")


def test_collection_info_says_when_and_with_what_schema_it_was_written(tmp_path):
    """A collection's id is its UTC write time and 8 hex digits; its info carries that
    time as ``written_at`` (tz-aware UTC), the schema version and the sources per frame."""
    s = HistoryStore(tmp_path)
    before = pd.Timestamp.now(tz="UTC")
    cid = s.append({"jobs": job("0 2 * * *")}).collection_id
    after = pd.Timestamp.now(tz="UTC")
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}", cid)
    [info] = s.collections()
    assert info.written_at == _id_time(cid) and str(info.written_at.tz) == "UTC"
    assert before <= info.written_at <= after
    assert info.schema_version == schema.SCHEMA_VERSION
    assert info.sources == {"jobs": ["test"]} and info.rows == {"jobs": 1}
    assert info.supersedes == () and info.meta == {}


def test_a_manifest_without_sources_reads_as_no_sources(tmp_path):
    """An older manifest lists a frame's rows but no sources: its info says none."""
    _old_part(tmp_path, "20200101T000000.000000Z-00000000")
    (tmp_path / "store.json").write_text(json.dumps(
        {"format": "longhorn-backup-advisor-store", "schema_version": 0}))
    [info] = HistoryStore(tmp_path).collections()
    assert info.sources == {"backups": []} and info.rows == {"backups": 1}
    assert info.schema_version == 0
    assert info.written_at == pd.Timestamp("2020-01-01T00:00:00Z")


def test_a_damaged_manifest_is_a_store_error_naming_it(tmp_path):
    """``collections()`` refuses a manifest that is not JSON, naming the file."""
    s = HistoryStore(tmp_path)
    cid = s.append({"jobs": job("0 2 * * *")}).collection_id
    manifest = tmp_path / "collections" / cid / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(StoreError, match=f"cannot read the manifest {re.escape(str(manifest))}"):
        s.collections()


def test_observations_add_up_every_collection_and_unknown_frames(tmp_path):
    """Rows per frame summed over collections (3 + 2 backups), every known frame listed
    (0 when none), and a frame only another tool wrote counted too."""
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1"), backup("b2"), backup("b3"))})
    cid = s.append({"backups": backups(backup("b4"), backup("b5"))}).collection_id
    manifest = tmp_path / "collections" / cid / "manifest.json"
    m = json.loads(manifest.read_text())
    m["frames"]["nodes"] = {"file": "nodes.parquet", "rows": 7}
    manifest.write_text(json.dumps(m))
    assert HistoryStore(tmp_path).observations() == {
        "backups": 5, "jobs": 0, "volumes": 0, "backup_volumes": 0, "settings": 0, "nodes": 7}


def test_nothing_is_derived_into_a_store_that_does_not_exist(tmp_path):
    """``keep_derived`` on a missing store keeps nothing and creates nothing."""
    s = HistoryStore(tmp_path / "none")
    assert s.keep_derived("fits", "v1", {"t": pd.DataFrame({"x": [1]})}, []) is False
    assert not (tmp_path / "none").exists()


def test_derived_frames_come_back_without_their_index(tmp_path):
    """Kept frames are stored without their index: they come back with a fresh one."""
    s = HistoryStore(tmp_path)
    s.append({"jobs": job("0 2 * * *")})
    df = pd.DataFrame({"x": [1.5, 2.5]}, index=pd.Index([7, 3], name="row"))
    assert s.keep_derived("fits", "v1", {"t": df}, s.collection_ids())
    pd.testing.assert_frame_equal(s.derived("fits", "v1")["t"],
                                  pd.DataFrame({"x": [1.5, 2.5]}))


def test_derived_manifest_says_what_was_kept(tmp_path):
    """The manifest of kept frames: their name, key, frames (sorted), how many collections
    they came from and when they were written (UTC, ISO 8601)."""
    s = HistoryStore(tmp_path)
    s.append({"jobs": job("0 2 * * *")})
    s.append({"jobs": job("5 2 * * *")})
    before = pd.Timestamp.now(tz="UTC")
    frames = {"z": pd.DataFrame({"x": [1]}), "a": pd.DataFrame({"y": [2]})}
    assert s.keep_derived("fits", "v1", frames, s.collection_ids())
    after = pd.Timestamp.now(tz="UTC")
    [manifest] = (tmp_path / "derived" / "fits").glob("*/manifest.json")
    m = json.loads(manifest.read_text())
    assert {k: m[k] for k in ("name", "key", "frames", "collections")} == {
        "name": "fits", "key": "v1", "frames": ["a", "z"], "collections": 2}
    written = pd.Timestamp(m["written_at"])
    assert m["written_at"].endswith("+00:00") and before <= written <= after


def test_a_stray_file_among_derived_frames_does_not_stop_keeping_them(tmp_path):
    """What a user left beside the kept frames (a file, not a folder of them) is no reason
    for ``keep_derived`` to fail: it keeps the new frames all the same."""
    s = HistoryStore(tmp_path)
    s.append({"jobs": job("0 2 * * *")})
    (tmp_path / "derived" / "fits").mkdir(parents=True)
    (tmp_path / "derived" / "fits" / "notes.txt").write_text("mine")
    assert s.keep_derived("fits", "v1", {"t": pd.DataFrame({"x": [1]})}, s.collection_ids())
    pd.testing.assert_frame_equal(s.derived("fits", "v1")["t"], pd.DataFrame({"x": [1]}))


def test_superseding_carries_only_the_named_collections_with_all_their_frames(tmp_path):
    """A collection superseding A carries every frame of A (jobs too, though the append has
    only backups), and not the rows of B, which it does not name: each row is read once."""
    s = HistoryStore(tmp_path)
    a = s.append({"backups": backups(backup("b1", "Pending")), "jobs": job("0 2 * * *")})
    s.append({"backups": backups(backup("b2"))})
    c = s.append({"backups": backups(backup("b1", "Completed", T0 + HOUR))},
                 supersede=[a.collection_id])
    assert c.counts == {"backups": store.FrameCounts(updated=1), "jobs": store.FrameCounts()}
    info = s.collections()[-1]
    assert info.id == c.collection_id and info.rows == {"backups": 2, "jobs": 1}
    assert s.read("jobs")["cron"].tolist() == ["0 2 * * *"]
    got = s.read("backups", latest=False)
    assert sorted(zip(got["backup"], got["state"], strict=True)) == [
        ("b1", "Completed"), ("b1", "Pending"), ("b2", "Completed")]


def test_a_key_column_a_migration_renames_still_deduplicates(tmp_path, monkeypatch):
    """An older part whose key column had another name (``recurring_job`` was ``name``)
    cannot be searched by key: it is read whole and migrated, so a row it holds is
    recognised as stored, and a new one is not."""
    s = HistoryStore(tmp_path)
    s.append({"jobs": job("0 2 * * *")})
    cid = "20200101T000000.000000Z-00000000"
    old = job("0 3 * * 0").assign(recurring_job="weekly").rename(
        columns={"recurring_job": "name"})
    (tmp_path / "collections" / cid).mkdir()
    pq.write_table(pa.Table.from_pandas(old, preserve_index=False).replace_schema_metadata(
        {b"advisor.schema_version": b"1"}), tmp_path / "collections" / cid / "jobs.parquet")
    (tmp_path / "collections" / cid / "manifest.json").write_text(json.dumps(
        {"id": cid, "written_at": "2020-01-01T00:00:00+00:00", "schema_version": 1,
         "frames": {"jobs": {"file": "jobs.parquet", "rows": 1}}}))
    monkeypatch.setitem(store.MIGRATIONS, 1, lambda frame, df: df.rename(
        columns={"name": "recurring_job"}) if frame == "jobs" else df)
    seen = job("0 3 * * 0", T0 + HOUR).assign(recurring_job="weekly", source="kube:prod")
    result = s.append({"jobs": pd.concat([seen, job("0 4 * * *").assign(recurring_job="new")])})
    assert result.counts["jobs"] == store.FrameCounts(added=1, unchanged=1)
    assert sorted(s.read("jobs")["recurring_job"]) == ["daily", "new", "weekly"]


def test_a_damaged_part_stops_an_append_with_advice(tmp_path):
    """An append that meets a damaged part (while looking for rows already stored) stops
    with a StoreError naming the file and saying how to read the rest."""
    s = HistoryStore(tmp_path)
    cid = s.append({"backups": backups(backup("b1"))}).collection_id
    part = tmp_path / "collections" / cid / "backups.parquet"
    part.write_bytes(part.read_bytes()[:40])
    advice = ("The file is damaged; move its collection directory out of the store to read "
              "the rest")
    with pytest.raises(StoreError, match=f"^cannot read {re.escape(str(part))}: ") as err:
        s.append({"backups": backups(backup("b2"))})
    assert str(err.value).endswith(advice)
    with pytest.raises(StoreError, match=f"^cannot read {re.escape(str(part))}: ") as err:
        s.read("backups")
    assert str(err.value).endswith(advice)


def test_store_json_is_written_once_then_only_to_upgrade_it(tmp_path):
    """store.json: format, schema version, layout, and when it was created and updated
    (UTC); not rewritten by later appends; an older one is upgraded keeping its creation
    time and what else it holds. Written as sorted, indented JSON ending in a newline."""
    s = HistoryStore(tmp_path)
    path = tmp_path / "store.json"
    before = pd.Timestamp.now(tz="UTC")
    s.append({"jobs": job("0 2 * * *")})
    after = pd.Timestamp.now(tz="UTC")
    text = path.read_text()
    meta = json.loads(text)
    assert text == json.dumps(meta, indent=2, sort_keys=True) + "\n"
    created = meta["created_at"]
    assert meta == {"format": "longhorn-backup-advisor-store",
                    "schema_version": schema.SCHEMA_VERSION, "created_at": created,
                    "updated_at": created, "layout": "collections/<id>/<frame>.parquet"}
    assert created.endswith("+00:00") and before <= pd.Timestamp(created) <= after
    s.append({"jobs": job("5 2 * * *")})
    assert path.read_text() == text
    path.write_text(json.dumps({"format": "longhorn-backup-advisor-store",
                                "schema_version": 1, "created_at": "2020-01-01T00:00:00+00:00",
                                "owner": "ops"}))
    before = pd.Timestamp.now(tz="UTC")
    s.append({"jobs": job("10 2 * * *")})
    meta = json.loads(path.read_text())
    assert meta["schema_version"] == schema.SCHEMA_VERSION and meta["owner"] == "ops"
    assert meta["created_at"] == "2020-01-01T00:00:00+00:00"
    assert meta["updated_at"].endswith("+00:00")
    assert before <= pd.Timestamp(meta["updated_at"]) <= pd.Timestamp.now(tz="UTC")


def test_latest_tells_apart_keys_that_differ_in_any_column(tmp_path):
    """A backup is one object per (cluster, backup target, name): 5 clusters x 2 targets x
    2 names are 20 objects, each seen Pending then Completed, so 20 Completed rows."""
    grid = [(c, t, b) for c in ("c0", "c1", "c2", "c3", "c4") for t in ("t0", "t1")
            for b in ("b0", "b1")]
    s = HistoryStore(tmp_path)
    for state, at in (("Pending", T0), ("Completed", T0 + HOUR)):
        s.append({"backups": backups(*(backup(b, state, at, cluster=c, backup_target=t)
                                       for c, t, b in grid))})
    latest = s.read("backups")
    assert sorted(zip(latest["cluster"], latest["backup_target"], latest["backup"],
                      strict=True)) == grid
    assert set(latest["state"]) == {"Completed"}


def test_a_state_the_advisor_does_not_know_ranks_below_new(tmp_path):
    """A state not in the lifecycle (one a later Longhorn may add) ranks below every known
    state, New ("") included, whatever the order; alone, it is kept."""
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1", "", T0), backup("b2", "Pending", T0),
                                 backup("b3", "Archived", T0))})
    s.append({"backups": backups(backup("b1", "Archived", T0 + HOUR),
                                 backup("b2", "Archived", T0 + HOUR))})
    latest = s.read("backups")
    assert dict(zip(latest["backup"], latest["state"], strict=True)) == {
        "b1": "", "b2": "Pending", "b3": "Archived"}


@pytest.mark.parametrize("storage", ["pyarrow", "python"])
def test_codes_number_values_in_order_met_and_na_as_minus_one(storage):
    """``_codes`` (the key columns' integer codes) numbers values in the order they are met,
    across the chunks of a series, NA as -1, and counts the values; empty, none."""
    dtype = pd.StringDtype(storage)
    s = pd.concat([pd.Series(["b", "a", None], dtype=dtype),
                   pd.Series(["a", "c", "b"], dtype=dtype)], ignore_index=True)
    codes, n = parts._codes(s)
    assert codes.tolist() == [0, 1, -1, 1, 2, 0] and n == 3 and codes.dtype == np.int64
    codes, n = parts._codes(pd.Series([], dtype=dtype))
    assert codes.tolist() == [] and n == 0 and codes.dtype == np.int64


def test_a_collection_is_a_manifest_and_a_plain_parquet_file_per_frame(tmp_path):
    """A collection's folder: its manifest (id, time, schema version, what it supersedes,
    the caller's meta, and per frame its file, rows, added, updated and sources), and one
    Parquet file per frame holding the schema's columns only, tagged with the frame and
    schema version, which pandas reads back in the schema's dtypes."""
    s = HistoryStore(tmp_path)
    a = s.append({"backups": backups(backup("b1", "Pending"))})
    # (jobs: four rows, one a repeat, so the rows written are not a plain range of them)
    jobs = pd.concat([job(f"{m} 2 * * *").assign(recurring_job=name) for m, name in
                      ((0, "j0"), (5, "j1"), (0, "j0"), (10, "j2"))], ignore_index=True)
    c = s.append({"backups": backups(backup("b1", "Completed", T0 + HOUR),
                                     backup("b2", source="file:x.yaml")),
                  "jobs": jobs}, supersede=[a.collection_id], meta={"hour": "02"})
    assert c.counts["jobs"] == store.FrameCounts(added=3, unchanged=1)
    folder = tmp_path / "collections" / c.collection_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "backups.parquet", "jobs.parquet", "manifest.json"]
    m = json.loads((folder / "manifest.json").read_text())
    assert pd.Timestamp(m.pop("written_at")) == _id_time(c.collection_id)
    assert m == {
        "id": c.collection_id, "schema_version": schema.SCHEMA_VERSION,
        "supersedes": [a.collection_id], "meta": {"hour": "02"},
        "frames": {"backups": {"file": "backups.parquet", "rows": 3, "added": 1, "updated": 1,
                               "sources": ["file:x.yaml", "test"]},
                   "jobs": {"file": "jobs.parquet", "rows": 3, "added": 3, "updated": 0,
                            "sources": ["test"]}}}
    for name in ("backups", "jobs"):
        part = folder / f"{name}.parquet"
        meta = pq.read_schema(part).metadata
        assert meta[b"advisor.frame"] == name.encode()
        assert meta[b"advisor.schema_version"] == str(schema.SCHEMA_VERSION).encode()
        assert pq.read_schema(part).names == [col.name for col in schema.columns(name)]
        assert pd.read_parquet(part).dtypes.to_dict() == schema.dtypes(name)


def test_a_clock_stepped_back_still_sorts_a_new_collection_last(tmp_path, monkeypatch):
    """A collection written while the clock reads earlier than the last collection's time
    takes that time plus one microsecond, so it still sorts (and wins ties) last."""
    class Clock(datetime):
        at = datetime(2025, 3, 1, 2, 0, 0, 999999, tzinfo=UTC)

        @classmethod
        def now(cls, tz=None):
            return cls.at

    monkeypatch.setattr(history_store, "datetime", Clock)
    s = HistoryStore(tmp_path)
    ids = [s.append({"jobs": job("0 2 * * *")}).collection_id]
    Clock.at = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)  # an hour back
    ids += [s.append({"jobs": job(f"{m} 2 * * *")}).collection_id for m in (5, 10, 15)]
    assert [cid.split("-")[0] for cid in ids] == [
        "20250301T020000.999999Z", "20250301T020001.000000Z", "20250301T020001.000001Z",
        "20250301T020001.000002Z"]
    assert s.collection_ids() == ids
    assert s.read("jobs")["cron"].tolist() == ["15 2 * * *"]  # same collected_at: the last
    assert s.collections()[-1].written_at == pd.Timestamp("2025-03-01T02:00:01.000002Z")


def _foreign_part(path: Path, cid: str, df: pd.DataFrame, version: bytes | None) -> Path:
    """A jobs part and its manifest, as another tool or an older advisor wrote them
    (``version``: the schema version in its metadata, None for none)."""
    (path / "collections" / cid).mkdir(parents=True)
    table = pa.Table.from_pandas(df, preserve_index=False)
    part = path / "collections" / cid / "jobs.parquet"
    pq.write_table(table.replace_schema_metadata(
        None if version is None else {b"advisor.schema_version": version}), part)
    (path / "collections" / cid / "manifest.json").write_text(json.dumps(
        {"id": cid, "written_at": "2020-01-01T00:00:00+00:00", "schema_version": 1,
         "frames": {"jobs": {"file": "jobs.parquet", "rows": len(df)}}}))
    return part


def test_each_part_is_migrated_from_its_own_version(tmp_path, monkeypatch):
    """Migrations run from a part's own version: version 0 (retain counted weeks, the job
    was ``name``) takes both, an unversioned part (another tool's) is version 1 and takes
    the second only, a current part none."""
    s = HistoryStore(tmp_path)
    s.append({"jobs": job("0 2 * * *").assign(recurring_job="now", retain=5)})
    old = job("0 2 * * *").assign(retain=1).rename(columns={"recurring_job": "name"})
    _foreign_part(tmp_path, "20200101T000000.000000Z-00000000", old.assign(name="v0"), b"0")
    _foreign_part(tmp_path, "20200102T000000.000000Z-00000000",
                  old.assign(name="tool", retain=3), None)
    monkeypatch.setitem(store.MIGRATIONS, 0, lambda frame, df: df.assign(retain=df["retain"] * 7))
    monkeypatch.setitem(store.MIGRATIONS, 1, lambda frame, df: df.rename(
        columns={"name": "recurring_job"}))
    got = s.read("jobs", latest=False)
    assert dict(zip(got["recurring_job"], got["retain"], strict=True)) == {
        "v0": 7, "tool": 3, "now": 5}


def test_a_part_with_a_bad_version_is_a_store_error(tmp_path):
    """A part whose schema version is not a number is refused, naming the file."""
    s = HistoryStore(tmp_path)
    s.append({"jobs": job("0 2 * * *")})
    part = _foreign_part(tmp_path, "20200101T000000.000000Z-00000000", job("5 2 * * *"),
                         b"two")
    with pytest.raises(StoreError) as err:
        s.read("jobs")
    assert str(err.value) == f"{part}: bad advisor.schema_version b'two'"


def test_parts_with_plain_and_large_strings_read_together(tmp_path):
    """Parts of one schema version whose text is Arrow ``string`` (as pandas 2 writes it)
    or ``large_string`` (pandas 3) are read as one frame, and an append recognises the
    rows of both."""
    s = HistoryStore(tmp_path)
    old = s.append({"backups": backups(backup("b1"))}).collection_id
    s.append({"backups": backups(backup("b2"))})
    part = tmp_path / "collections" / old / "backups.parquet"
    table = pq.read_table(part)
    plain = pa.schema([f.with_type(pa.string()) if f.type == pa.large_string() else f
                       for f in table.schema], metadata=table.schema.metadata)
    pq.write_table(table.cast(plain), part)
    assert pq.read_schema(part).field("backup").type == pa.string()
    assert s.read("backups")["backup"].tolist() == ["b1", "b2"]
    assert s.append({"backups": backups(backup("b1"), backup("b2"))}).collection_id is None


def test_a_first_writer_that_died_early_leaves_a_store_that_opens(tmp_path):
    """A first writer killed after taking the lock and before store.json leaves the lock
    file and staging (or the lock file alone): that opens as an empty store."""
    for leftovers in ((".writer.lock", ".staging"), (".writer.lock",), (".staging",)):
        path = tmp_path / "-".join(leftovers)
        path.mkdir()
        for name in leftovers:
            if name == ".staging":
                (path / name).mkdir()
            else:
                (path / name).write_text("")
        s = HistoryStore(path)
        assert s.collections() == [] and len(s.read("jobs")) == 0
        assert s.append({"jobs": job("0 2 * * *")}).collection_id is not None


def test_a_store_file_of_another_format_or_version_type_is_refused(tmp_path):
    """store.json must say the store's format and an integer schema version."""
    for i, text in enumerate([
            json.dumps({"format": "something-else", "schema_version": 1}),
            json.dumps({"format": "longhorn-backup-advisor-store", "schema_version": "2"}),
            "[1, 2]", "{not json"]):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "store.json").write_text(text)
        with pytest.raises(StoreError, match="is not a longhorn-backup-advisor store file"):
            HistoryStore(tmp_path / str(i))


def test_refusing_a_directory_that_is_not_a_store_says_what_to_do(tmp_path):
    """The refusal names the directory, why, and what to choose instead."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError) as err:
        HistoryStore(tmp_path)
    assert str(err.value) == (
        f"{tmp_path} exists but is not a history store (it has files and no store.json); "
        "refusing to write into it. Choose an empty or new directory (ADVISOR_STORE)")


def test_errors_name_what_was_asked_for(tmp_path):
    """Superseding collections that are not visible names them all (sorted) and the
    store; reading unknown columns names them and the frame's columns; rows without
    identity name every column they lack."""
    s = HistoryStore(tmp_path)
    s.append({"jobs": job("0 2 * * *")})
    gone = ["20200102T000000.000000Z-00000002", "20200101T000000.000000Z-00000001"]
    with pytest.raises(StoreError) as err:
        s.append({"jobs": job("5 2 * * *")}, supersede=gone)
    assert str(err.value) == (f"cannot supersede {', '.join(sorted(gone))}: not a visible "
                              f"collection of {tmp_path}")
    with pytest.raises(ValueError) as err:
        s.read("jobs", columns=["zz", "cron", "aa"])
    names = [c.name for c in schema.columns("jobs")]
    assert str(err.value) == ("jobs has no column(s) ['aa', 'zz']; its columns are "
                              + ", ".join(names))
    with pytest.raises(schema.SchemaError) as err:
        s.append({"jobs": job("0 2 * * *").assign(recurring_job=None, source=None)})
    assert [str(p) for p in err.value.problems] == [
        "jobs: frame, column 'recurring_job': 1 null value(s); the store needs it",
        "jobs: frame, column 'source': 1 null value(s); the store needs it"]


def test_an_unreadable_manifest_does_not_stop_reading(tmp_path):
    """A collection whose manifest is damaged (not JSON, or not an object) is still read
    (as superseding nothing); only ``collections()`` reports it."""
    s = HistoryStore(tmp_path)
    first = s.append({"jobs": job("0 2 * * *")}).collection_id
    second = s.append({"jobs": job("5 2 * * *", T0 + HOUR)}).collection_id
    (tmp_path / "collections" / first / "manifest.json").write_text("{not json")
    (tmp_path / "collections" / second / "manifest.json").write_text("[]")
    fresh = HistoryStore(tmp_path)
    assert fresh.collection_ids() == [first, second]
    assert fresh.read("jobs", latest=False)["cron"].tolist() == ["0 2 * * *", "5 2 * * *"]
    with pytest.raises(StoreError, match="cannot read the manifest"):
        fresh.collections()


def test_a_superseded_collection_that_cannot_be_deleted_stays_hidden(tmp_path):
    """A superseded collection the writer cannot delete (here a symbolic link, which
    ``rmtree`` refuses) stays hidden, and neither that writer nor the next one fails."""
    path = tmp_path / "s"
    s = HistoryStore(path)
    first = s.append({"backups": backups(backup("b1", "Pending"))}).collection_id
    elsewhere = tmp_path / "elsewhere"
    shutil.move(path / "collections" / first, elsewhere)
    os.symlink(elsewhere, path / "collections" / first)
    then = s.append({"backups": backups(backup("b1", "Completed"))}, supersede=[first])
    s.append({"jobs": job("0 2 * * *")})
    assert os.path.islink(path / "collections" / first)
    assert first not in s.collection_ids() and then.collection_id in s.collection_ids()
    assert s.read("backups", latest=False)["state"].tolist() == ["Pending", "Completed"]


def test_keeping_the_same_derived_frames_again_keeps_them(tmp_path):
    """Keeping frames already kept for these collections and key succeeds and changes
    nothing; they are kept in one folder named by a 24-hex-digit digest."""
    s = HistoryStore(tmp_path)
    s.append({"jobs": job("0 2 * * *")})
    fits = {"t": pd.DataFrame({"x": [1]})}
    assert s.keep_derived("fits", "v1", fits, s.collection_ids())
    assert s.keep_derived("fits", "v1", fits, s.collection_ids())
    [kept] = (tmp_path / "derived" / "fits").iterdir()
    assert re.fullmatch(r"[0-9a-f]{24}", kept.name)
    pd.testing.assert_frame_equal(s.derived("fits", "v1")["t"], fits["t"])


@pytest.fixture
def parquet_reads(monkeypatch) -> list[list[str]]:
    """The columns each Parquet read of the test asks for, in order (sorted)."""
    reads: list[list[str]] = []
    real = pq.ParquetFile.read

    def read(self, columns=None, *args, **kwargs):
        reads.append(sorted(columns) if columns is not None else ["<all>"])
        return real(self, columns, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", read)
    return reads


def test_reading_some_columns_reads_no_others_from_disk(tmp_path, parquet_reads):
    """``read(columns=...)`` reads from each part those columns and, for ``latest``, the
    key, ``collected_at`` and ``state`` that choose the row; nothing else."""
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1", "InProgress"))})
    s.append({"backups": backups(backup("b1", "Completed", T0 + HOUR, duration_s=70.0))})
    parquet_reads.clear()
    assert s.read("backups", columns=["duration_s"])["duration_s"].tolist() == [70.0]
    assert parquet_reads == [sorted(["cluster", "backup_target", "backup", "state",
                                     "collected_at", "duration_s"])] * 2
    parquet_reads.clear()
    assert len(s.read("backups", columns=["duration_s"], latest=False)) == 2
    assert parquet_reads == [["duration_s"]] * 2


def test_an_append_reads_whole_only_the_parts_holding_its_keys(tmp_path, parquet_reads):
    """Looking for rows already stored, an append reads each part's backup names, and
    whole only the parts holding one of its own."""
    s = HistoryStore(tmp_path)
    s.append({"backups": backups(backup("b1"))})
    s.append({"backups": backups(backup("b2"))})
    parquet_reads.clear()
    result = s.append({"backups": backups(backup("b2", "Deleting", T0 + HOUR))})
    assert result.counts["backups"] == store.FrameCounts(updated=1)
    assert parquet_reads == [["backup"], ["backup"],
                             sorted(c.name for c in schema.columns("backups"))]
