"""The model's inputs from a real store: duration fits fitted once per collection, kept in
the store, and read back into the same fleet."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

import advisor
from advisor.inputs import FITS, fits_key, fitting_modules, fleet_from_history, model_inputs
from advisor.model.durations import DurationFits, fit_durations
from advisor.sample import load_sample
from advisor.store import HistoryStore
from tests.conftest import run_cli

pytestmark = pytest.mark.slow(seconds=80)  # (run first: see conftest)


def test_fits_are_kept_and_read_back_into_the_same_fleet(tmp_path):
    store = HistoryStore(tmp_path)
    frames = load_sample().frames
    store.append(frames)
    first = model_inputs(store)
    assert not first.reused and first.kept
    again = model_inputs(store)
    assert again.reused and not again.kept
    pd.testing.assert_frame_equal(again.fits.table, first.fits.table, check_dtype=False)
    assert [str(p) for p in again.fits.problems] == [str(p) for p in first.fits.problems]
    # the fleet the model scores is the same either way, DR sources included
    a, notes_a = fleet_from_history(first.frames, first.fits)
    b, notes_b = fleet_from_history(again.frames, again.fits)
    assert a == b and notes_a == notes_b
    assert any(v.standby for v in b.volumes)
    # and the same as fitting the whole history by hand
    full = store.read_all()
    by_hand = fit_durations(full["backups"], full["volumes"], full["backup_volumes"],
                            jobs=full["jobs"])
    assert fleet_from_history(full, by_hand)[0] == a
    # each volume's duration trend is kept with the fits, read back to the nanosecond
    # and the last bit, and reads at any week exactly as the one fitted by hand
    from advisor.model.trend import forecast

    kept, fresh = again.fits.trends("sample"), by_hand.trends("sample")
    assert kept == fresh and len(kept) == len(by_hand.preferred("sample"))
    assert {t.method for t in kept.values()} >= {"ols", "tobit"}
    now = pd.Timestamp("2026-11-23T00:00:00Z")
    for v, fit in kept.items():
        a, b = (dataclasses.astuple(forecast(f, interval_s=3600, now=now))
                for f in (fit, fresh[v]))
        assert [x for x in a if x == x] == [x for x in b if x == x], v  # (NaN: no slope)


def test_a_new_collection_fits_again(tmp_path):
    store = HistoryStore(tmp_path)
    frames = load_sample().frames
    half = frames["backups"].iloc[: len(frames["backups"]) // 2]
    store.append({**frames, "backups": half})
    assert model_inputs(store).kept
    store.append(frames)
    later = model_inputs(store, backup_columns=["volume", "backup"])
    assert not later.reused and later.kept
    assert list(later.frames["backups"].columns) == ["volume", "backup"]
    assert len(later.frames["backups"]) == len(store.read("backups", columns=["backup"]))
    assert len(list((tmp_path / "derived" / FITS).iterdir())) == 1


def test_fits_read_back_say_what_they_lack(tmp_path):
    store = HistoryStore(tmp_path)
    store.append(load_sample().frames)
    model_inputs(store)
    fits = model_inputs(store).fits
    assert isinstance(fits, DurationFits) and fits.observations.empty
    volume = fits.table["volume"].iloc[0]
    try:
        fits.kaplan_meier(volume)
    except ValueError as e:
        assert "without their observations" in str(e)
    else:
        raise AssertionError("kaplan_meier on fits without observations must refuse")


def test_collect_keeps_the_fits_for_the_next_check(tmp_path):
    store = tmp_path / "store"
    r = run_cli("collect", "--sample", "--store", str(store))
    assert r.returncode == 0 and "duration fits of 60 volume/mode(s) kept" in r.stdout
    assert model_inputs(HistoryStore(store)).reused  # the check after it reads them back
    again = run_cli("collect", "--sample", "--store", str(store))  # nothing new: no fit
    assert again.returncode == 0 and "duration fits" not in again.stdout
    other = tmp_path / "other"
    r = run_cli("collect", "--sample", "--no-fit", "--store", str(other))
    assert r.returncode == 0 and not (other / "derived").exists()


def test_the_fits_key_covers_all_the_fitting_code(monkeypatch):
    """The kept fits are read back only when the code that made them is the same:
    durations.py was split into several modules, and a key that hashed it alone would
    read back fits made by an older censored likelihood or deletion prior."""
    names = {str(p.relative_to(Path(advisor.__file__).parent)) for p in fitting_modules()}
    assert {"model/durations.py", "model/censored.py", "model/lognormal.py",
            "model/observations.py", "model/deletions.py", "model/queueing.py",
            "schema.py", "model/fleet.py", "longhorn/jobs.py"} <= names, names
    assert "report/build.py" not in names and "cli/report.py" not in names
    key = fits_key()  # and a change to any of them changes the key
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: real(self) + (
        b"#" if self.name == "censored.py" else b""))
    assert fits_key() != key
