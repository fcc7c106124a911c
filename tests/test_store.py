"""The history store on real files: round trips, deduplication, crashes, locks, versions."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor import schema, store
from advisor.store import (
    STATE_RANK,
    HistoryStore,
    StoreBusyError,
    StoreError,
    StoreVersionError,
    default_store_path,
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
        ranks = pd.Series([STATE_RANK[x] for x in seen["state"]], index=seen.index)
        assert STATE_RANK[row.state] == ranks.max()
        assert row.collected_at == seen.loc[ranks == ranks.max(), "collected_at"].max()


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


def _wait_for_new_staging(path: Path, leftovers: set[str], timeout_s: float = 20) -> None:
    """Return once a collection not in ``leftovers`` is being staged."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if set(os.listdir(path / ".staging")) - leftovers - {"store.json"}:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    raise AssertionError("the writer never staged a collection")


@pytest.mark.slow
def test_a_writer_killed_at_any_moment_leaves_the_store_consistent(tmp_path):
    path = tmp_path / "store"
    rng = random.Random(20250301)
    committed: dict[str, dict[str, int]] = {}
    for round_ in range(8):
        leftovers = set(os.listdir(path / ".staging")) if (path / ".staging").is_dir() else set()
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"r{round_}", "6000"],
                                stdout=subprocess.PIPE, env=_child_env(), cwd=REPO)
        try:
            assert proc.stdout.readline() == b"ready\n"
            if round_ % 2:
                time.sleep(rng.uniform(0.05, 0.6))
            else:  # most of a cycle is reading the store: aim some kills at the writing
                _wait_for_new_staging(path, leftovers)
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
