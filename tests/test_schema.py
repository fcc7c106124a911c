"""The schema: frames, dtypes, and a validation that reports every problem at once."""

from __future__ import annotations

import pandas as pd
import pytest

from advisor import schema

ROW = {"cluster": "c", "backup_target": "default", "volume": "v", "backup": "b",
       "recurring_job": "", "state": "Completed", "censored": False, "backup_mode": "",
       "lock_conflict": "none", "source": "test", "collected_at": "2026-11-23T06:00:00Z",
       "started_at": "2026-11-23T02:00:00Z", "finished_at": "2026-11-23T02:10:00Z",
       "duration_s": 600.0, "size_bytes": 10}


def test_every_frame_has_its_keys_and_provenance():
    for name, cols in schema.FRAMES.items():
        names = [c.name for c in cols]
        assert len(names) == len(set(names))
        assert set(schema.KEYS[name]) <= set(names)
        assert set(schema.PROVENANCE_COLUMNS) <= set(names)
        assert list(schema.empty(name).columns) == names
        assert schema.validate(name, schema.empty(name)) == []
        assert f"`{names[0]}`" in schema.describe(name)


def test_from_records_gives_the_schema_dtypes():
    df = schema.from_records("backups", [ROW])
    assert schema.validate("backups", df) == []
    assert str(df["started_at"].dtype) == "datetime64[ns, UTC]"
    assert df.loc[0, "finished_at"] - df.loc[0, "started_at"] == pd.Timedelta(minutes=10)
    assert pd.isna(df.loc[0, "progress"]) and str(df["progress"].dtype) == "Int64"


def test_validation_reports_every_problem_not_the_first():
    df = schema.from_records("backups", [
        ROW,
        {**ROW, "state": "Exploded", "volume": None},
        {**ROW, "lock_conflict": "maybe", "size_bytes": -1, "duration_s": -3.0},
    ])
    df["extra"] = 1
    df = df.drop(columns="uid")
    df["progress"] = df["progress"].astype("float64")
    with pytest.raises(schema.SchemaError) as e:
        schema.validate("backups", df)
    found = {(p.row, p.column) for p in e.value.problems}
    assert found == {(None, "uid"), (None, "extra"), (None, "progress"), (1, "volume"),
                     (1, "state"), (2, "lock_conflict"), (2, "size_bytes"),
                     (2, "duration_s")}
    text = str(e.value)
    assert "8 schema problem(s)" in text and "row 1, column 'state'" in text
    assert len(schema.validate("backups", df, raise_=False)) == 8


def test_unknown_frame():
    with pytest.raises(ValueError, match="unknown frame 'nope'"):
        schema.columns("nope")


def _times_frame() -> pd.DataFrame:
    t = pd.Timestamp("2026-11-20T00:00:00Z")
    m = pd.Timedelta(minutes=1)
    rows = [  # (state, requested, started, finished, last synced), minutes after t
        ("Completed", 0, 1, 11, 11),      # 600 s
        ("Error", 0, 1, None, 6),         # failed: censored at its last sync, 300 s
        ("Error", 0, 1, 21, 30),          # completed, then its deletion failed: 1200 s
        ("InProgress", 0, 1, None, 2),    # running: censored at collection (t+61), 3600 s
        ("Pending", 0, None, None, 1),    # not started: no duration
        ("Completed", 0, 1, None, 11),    # no end on a Completed one: missing data
        ("Deleting", 0, 1, None, 16),     # censored at its last sync, 900 s
        ("Completed", 0, None, 5, 5),     # no start: from the request, 300 s
    ]

    def at(x):
        return pd.NaT if x is None else t + x * m

    return pd.DataFrame({
        "cluster": "c", "volume": "v", "backup": [f"b{i}" for i in range(len(rows))],
        "state": [r[0] for r in rows], "requested_at": [at(r[1]) for r in rows],
        "started_at": [at(r[2]) for r in rows], "finished_at": [at(r[3]) for r in rows],
        "last_synced_at": [at(r[4]) for r in rows], "collected_at": t + 61 * m})


def test_one_duration_rule_read_by_the_sources_and_the_fits():
    """Worked by hand from the rule's text (advisor.schema.backup_times): an end gives
    a duration; no end is censored at the last sync (failed, unknown, deleting) or at the
    collection (running); a Backup in Error with an end completed before its deletion
    failed (Longhorn >= 1.8). The sources' stored columns and the fits' observations
    are the same reading."""
    from advisor.model.durations import backup_observations

    b = _times_frame()
    rule = schema.backup_times(b)
    want = [600, 300, 1200, 3600, None, None, 900, 300]
    assert [None if not u else d for u, d in zip(rule.usable, rule.duration, strict=True)
            ] == want
    assert rule.censored.tolist() == [False, True, False, True, True, False, True, False]
    stored = schema.with_durations(b)
    assert stored["duration_s"][[0, 2, 7]].tolist() == [600, 1200, 300]
    assert stored["duration_s"][[1, 3, 4, 5, 6]].isna().all()  # (no end: no duration)
    assert stored["censored"].tolist() == rule.censored.tolist()
    obs = backup_observations(b).set_index("backup")
    assert obs["duration_s"].to_dict() == {f"b{i}": d for i, d in enumerate(want)
                                           if d is not None}
    assert obs["censored"].to_dict() == {f"b{i}": bool(rule.censored[i])
                                         for i, d in enumerate(want) if d is not None}
