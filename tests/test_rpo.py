"""The recovery-point objective (``--rpo``): read, applied to volumes, kept by the interval
search, checked by ``advisor check`` and reported."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import advisor
from advisor.advice.search import VolumeOutcome, minimum_interval
from advisor.advice.search.jobs import rpo_cap
from advisor.advice.settings import Settings, parse_rpo
from advisor.model.collisions import rpo_findings
from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.schedules import interval_of
from tests.conftest import run_cli

HOUR = 3600.0
GIB = 2**30


def test_rpo_values_are_for_every_volume_or_one_jobs():
    assert parse_rpo(["2h"]) == (7200.0, ())
    assert parse_rpo(["hourly=30m", "1d", "db=90s"]) == (86400.0, (("hourly", 1800.0),
                                                                   ("db", 90.0)))
    for bad, why in [("2x", "not like"), ("=2h", "no job name"), ("0s", "above 0"),
                     ("hourly=", "not like")]:
        with pytest.raises(ValueError, match=why):
            parse_rpo([bad])


def test_a_volumes_rpo_is_the_smallest_of_its_jobs():
    """A job's own RPO replaces everyone's for its volumes; a volume in several jobs
    keeps the smallest that applies."""
    s = Settings(rpo_s=2 * HOUR, job_rpo_s=(("hourly", 1800.0), ("weekly", 8 * 86400.0)))
    assert s.rpo_of_job("hourly") == 1800 and s.rpo_of_job("daily") == 2 * HOUR
    assert s.rpo_of_volume(["weekly"]) == 8 * 86400
    assert s.rpo_of_volume(["weekly", "daily"]) == 2 * HOUR
    assert s.rpo_of_volume(["hourly", "daily"]) == 1800
    assert not Settings().has_rpo and Settings().rpo_of_volume(["x"]) is None
    with pytest.raises(ValueError, match="above 0"):
        Settings(rpo_s=0.0)


def _fleet() -> Fleet:
    d = Duration(60, 120, "lognormal")
    vols = (VolumeSpec("a", GIB, d, d, groups=("default",)),
            VolumeSpec("b", GIB, d, d, groups=("default", "db")))
    return Fleet(vols, (JobSpec("six", "0 */6 * * *", groups=("default",)),
                        JobSpec("db-hourly", "0 * * * *", groups=("db",))))


def test_the_rpo_caps_a_job_unless_another_job_keeps_its_volumes_within_it():
    """``six`` may go no longer than the RPO less a's p95 backup (2 min: a backup on time
    completes that late) for volume a, which only it backs up, or its interval now when
    longer; b, backed up hourly by another job, sets no cap."""
    f = _fleet()
    six = f.jobs[0]
    assert rpo_cap(f, six, ["a", "b"], Settings()) is None
    assert rpo_cap(f, six, ["a", "b"], Settings(rpo_s=12 * HOUR)) == 12 * HOUR - 120
    assert rpo_cap(f, six, ["a", "b"], Settings(rpo_s=2 * HOUR)) == 6 * HOUR  # (now)
    assert rpo_cap(f, six, ["b"], Settings(rpo_s=2 * HOUR)) is None
    assert rpo_cap(f, six, ["a"], Settings(job_rpo_s=(("db-hourly", HOUR),))) is None


def test_the_interval_search_never_goes_past_the_rpo():
    """A job that meets the target only from every 12 h: with an RPO of 4 h the search
    stops at 4 h, says so, and offers the best step it scored within it (it clearly
    cuts the risk)."""
    job = JobSpec("j", "0 * * * *")

    def scorer(jobs):
        (j,) = jobs
        every = interval_of(j.cron)
        return {"v": VolumeOutcome(0.001 if every >= 12 * HOUR else
                                   0.2 if every >= 3 * HOUR else 0.5, 0.001, 0.0)}

    free = minimum_interval(job, [job], scorer, 0.01)
    assert free.meets_target and free.step_s == 12 * HOUR
    capped = minimum_interval(job, [job], scorer, 0.01, max_s=4 * HOUR)
    # (the best the gallop scored within the cap: 2 h and 4 h were, 3 h was not)
    assert not capped.meets_target and capped.step_s == 4 * HOUR
    assert capped.after.cuts(capped.now)
    assert "no ladder step up to 4 h (the RPO's limit, 4 h) meets" in capped.reason
    assert all(s <= 12 * HOUR for s, _, _ in capped.scored)
    assert max(s for s, _, _ in capped.scored if s > HOUR) <= 4 * HOUR


def _jobs(*rows) -> pd.DataFrame:
    return pd.DataFrame([{"cluster": "c", "recurring_job": n, "task": "backup",
                          "cron": cron, "groups": groups, "retain": 3, "concurrency": 2,
                          "parameters": None} for n, cron, groups in rows])


def test_check_finds_schedules_that_promise_gaps_beyond_the_rpo():
    """Every 6 h breaks a 2 h RPO, unless another job on the same group fills the gaps
    (the union of their fire times is what a volume gets); per-job RPOs apply to their
    job's volumes."""
    rpo = Settings(rpo_s=2 * HOUR).rpo_of_job
    alone = rpo_findings(_jobs(("six", "0 */6 * * *", "default")), None, rpo)
    assert [(f.kind, f.jobs, f.details["gap_p95_s"]) for f in alone] == [
        ("recovery_point_objective", ("six",), 6 * HOUR)]
    assert "6 h apart" in alone[0].explanation and "RPO of 2 h" in alone[0].explanation
    filled = _jobs(("six", "0 */6 * * *", "default"), ("hourly", "30 * * * *", "default"))
    assert rpo_findings(filled, None, rpo) == []
    apart = _jobs(("six", "0 */6 * * *", "default"), ("hourly", "30 * * * *", "db"))
    assert [f.jobs for f in rpo_findings(apart, None, rpo)] == [("six",)]
    per_job = Settings(job_rpo_s=(("six", 8 * HOUR),)).rpo_of_job
    assert rpo_findings(apart, None, per_job) == []


def test_advisor_check_fails_a_proposal_beyond_the_rpo(tmp_path):
    """Through the CLI: exit 1 with the finding; a looser RPO passes (exit 0)."""
    (tmp_path / "jobs.yaml").write_text(
        "apiVersion: longhorn.io/v1beta2\nkind: RecurringJob\nmetadata:\n  name: six\n"
        "  namespace: longhorn-system\nspec:\n  cron: '0 */6 * * *'\n  task: backup\n"
        "  groups: [default]\n  retain: 4\n  concurrency: 2\n")
    tight = run_cli("check", str(tmp_path / "jobs.yaml"), "--rpo", "2h", "-o", "json")
    assert tight.returncode == 1, tight.stderr
    found = [f for f in json.loads(tight.stdout)["findings"]
             if f["kind"] == "recovery_point_objective"]
    assert [(f["jobs"], f["gap_p95_s"], f["rpo_s"]) for f in found] == [
        (["six"], 6 * HOUR, 2 * HOUR)]
    loose = run_cli("check", str(tmp_path / "jobs.yaml"), "--rpo", "six=6h")
    assert loose.returncode == 0, loose.stdout + loose.stderr
    bad = run_cli("check", str(tmp_path / "jobs.yaml"), "--rpo", "soon")
    assert bad.returncode == 2 and "--rpo 'soon'" in bad.stderr


@pytest.fixture(scope="module")
def sample():
    return advisor.load_history(sample=True)


def test_recommend_keeps_the_sample_within_its_rpo(sample):
    """hourly-db needs 12 h for the target; with an RPO of 4 h its advice stays within
    4 h and says why, and the volumes over their RPO are named with their predicted
    p95 gaps."""
    free = advisor.recommend(sample, jobs=["hourly-db"])
    (r,) = free.recommendations
    assert r.recommended_interval_s > 4 * HOUR
    capped = advisor.recommend(sample, jobs=["hourly-db"], rpo="4h")
    (c,) = capped.recommendations
    assert (c.recommended_interval_s or c.current_interval_s) <= 4 * HOUR
    assert "(the RPO's limit, " in c.reason
    over = capped.over_rpo
    assert set(over.columns) >= {"volume", "rpo_s", "gap_p95_now", "gap_p95_after"}
    assert (over["rpo_s"] == 4 * HOUR).all()
    assert (over.loc[over["over_after"], "gap_p95_after"] > 4 * HOUR).all()
    change = capped.recovery["hourly-db"]
    assert change is None or change["gap_p95_now"] > 0
