"""``advisor recommend`` end to end on the sample fleet: the history is fitted, the
fleet rebuilt from it, every job's interval searched and every volume scored."""

from __future__ import annotations

import json

import pytest

from advisor.inputs import fleet_from_history
from advisor.model.durations import fit_durations
from advisor.model.risk import plans_from_fleet
from advisor.sample import load_sample, sample_fleet

from .conftest import run_cli

pytestmark = pytest.mark.slow(seconds=60)  # (run first: see conftest)


@pytest.fixture(scope="module")
def recommended() -> dict:
    r = run_cli("recommend", "--sample", "--start", "2026-11-23", "--longhorn-version",
                "1.8", "-o", "json", timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_json_contract(recommended):
    truth = sample_fleet()
    backup_jobs = {j.name for j in truth.jobs if j.task == "backup"}
    recs = {r["job"]: r for r in recommended["recommendations"]}
    assert set(recs) == backup_jobs  # the snapshot job is no lock risk
    for r in recs.values():
        assert {"job", "current_cron", "recommended_cron", "p_per_run_now",
                "p_per_run_after", "reason"} <= set(r)
        assert 0 <= r["p_per_run_now"] <= 1 and r["reason"]
    volumes = {v["volume"]: v for v in recommended["volumes"]}
    assert len(volumes) == 59  # 60 volumes, less the DR volume
    for v in volumes.values():
        assert {"volume", "p_conflict_per_run", "p_conflict_per_week",
                "expected_conflicts_per_week", "skipped_runs_per_week"} <= set(v)
    # the history's lock conflicts beside the prediction, from the parsed messages
    backups = load_sample().frames["backups"]
    seen = backups[backups["lock_conflict"] != "none"]["volume"].value_counts()
    for name, v in volumes.items():
        assert v["observed_conflicts"] == seen.get(name, 0)
        assert v["history_weeks"] > 7 and v["fit"] in ("fits", "more than predicted",
                                                       "fewer than predicted")
        assert v["observed_per_week"] == pytest.approx(v["observed_conflicts"]
                                                       / v["history_weeks"])
    assert volumes["pvc-app-02"]["fit"] == "fits"  # the worst volume's rate is right


def test_the_sample_fleets_known_problems_are_found(recommended):
    volumes = {v["volume"]: v for v in recommended["volumes"]}
    # the hourly job's largest volumes take over an hour: slots are skipped, and they
    # conflict far more than the small ones
    assert volumes["pvc-app-02"]["skipped_runs_per_week"] > 10
    assert volumes["pvc-app-02"]["p_conflict_per_run"] > 0.1
    assert volumes["pvc-batch-00"]["p_conflict_per_run"] < 0.01
    hourly = next(r for r in recommended["recommendations"] if r["job"] == "hourly")
    assert "> 60 min interval" in hourly["reason"]
    assert any("prior" in a for a in recommended["assumptions"])


def test_the_fleet_rebuilt_from_history_matches_the_sample():
    frames = load_sample().frames
    fits = fit_durations(frames["backups"], frames["volumes"], frames["backup_volumes"],
                         jobs=frames["jobs"])
    fleet, notes = fleet_from_history(frames, fits)
    truth = {v.name: v for v in sample_fleet().volumes}
    assert {j.name for j in fleet.jobs} == {j.name for j in sample_fleet().jobs}
    assert len(fleet.volumes) == 60 and any("DR volume" in n for n in notes)
    # the DR volume follows the owner of the Backup its status.lastBackup names
    dr = next(v for v in fleet.volumes if v.standby)
    assert (dr.name, dr.restore_of) == ("pvc-dr-orders", "pvc-orders")
    assert fleet.poll_interval_s == 300
    # without status.lastBackup, the lock path of its restore message tells the source
    vols = frames["volumes"].assign(last_backup=None)
    again, _ = fleet_from_history({**frames, "volumes": vols}, fits)
    assert next(v for v in again.volumes if v.standby).restore_of == "pvc-orders"
    # with neither, it is left out, and said so
    vols = vols.assign(message=None)
    left, notes = fleet_from_history({**frames, "volumes": vols}, fits)
    assert not any(v.standby for v in left.volumes)
    assert any("pvc-dr-orders" in n and "not modelled" in n for n in notes)
    for v in fleet.volumes:
        true = truth[v.name].backup_duration
        assert 0.7 < v.backup_duration.median_s / true.median_s < 1.4, v.name
    plans = {p.volume: p for p in plans_from_fleet(fleet)}
    assert "hourly" in plans["pvc-app-10"].queues  # a 40-volume run with others


def test_patch_output_is_only_kubectl_commands():
    r = run_cli("recommend", "--sample", "--start", "2026-11-23", "--job", "weekly",
                "-o", "patch", timeout=600)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert lines and all(ln.startswith(("kubectl ", "# no change")) for ln in lines)


def test_bad_options_exit_2():
    r = run_cli("recommend", "--sample", "-o", "xml")
    assert r.returncode == 2 and "--output" in r.stderr
    r = run_cli("recommend", "--sample", "--store", "/nonexistent")
    assert r.returncode == 2
