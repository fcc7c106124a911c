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
