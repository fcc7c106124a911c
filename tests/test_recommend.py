"""Advice on schedules: the ladder's crons, the minimum-interval search against known risk
curves and the fast path, offsets that keep busy windows apart, staggering, output."""

from __future__ import annotations

import json
import math
import shlex

import numpy as np
import pandas as pd
import pytest
import yaml

from advisor.advice.search import (
    LADDER,
    VolumeOutcome,
    ladder_cron,
    minimum_interval,
    offsets,
    stagger,
)
from advisor.cron import parse
from advisor.longhorn.manifests import kubectl_patch
from advisor.model.fastpath import score_volume
from advisor.model.fleet import Duration, JobSpec
from advisor.schedules import fire_times, interval_of

START = pd.Timestamp("2026-01-04T00:00:00Z")  # a Sunday
_Z99 = 2.3263478740408408


def fires(cron: str, days: float, start: pd.Timestamp = START) -> np.ndarray:
    """Fire times in Unix seconds from ``start`` (inclusive) for ``days``."""
    return fire_times(cron, start - pd.Timedelta(seconds=1),
                      start + pd.Timedelta(days=days)).astype(np.int64)


def min_gap(cron: str) -> float:
    return float(np.diff(fires(cron, 21)).min())


# --- the ladder -------------------------------------------------------------------------

PHASES = ["0 * * * *", "7 * * * *", "59 23 * * 6", "30 2 * * *", "5 * * * *",
          "13 5-23/6 * * 3", "@every 90m", "@daily"]


@pytest.mark.parametrize("like", PHASES)
@pytest.mark.parametrize("step", LADDER)
def test_ladder_cron_parses_and_fires_exactly_every_step(step, like):
    cron = ladder_cron(step, like)
    parse(cron)  # Longhorn's parser accepts it
    t = fires(cron, 35 if step == LADDER[-1] else 3)
    assert len(t) >= 3
    assert set(np.diff(t).tolist()) == {step}
    if step >= 3600 and not like.startswith("@every"):  # the minute phase is kept
        first_minute = next(m for m in range(60) if parse(like).minute >> m & 1)
        assert {int(x) // 60 % 60 for x in t} == {first_minute}
    if step >= 86400 and not like.startswith("@every"):  # and the hour
        first_hour = next(h for h in range(24) if parse(like).hour >> h & 1)
        assert {int(x) // 3600 % 24 for x in t} == {first_hour}


@pytest.mark.parametrize(("step", "like", "expected"), [
    (7200, "7 * * * *", "7 */2 * * *"),
    (7 * 86400, "30 2 * * *", "30 2 * * 0"),
    (900, "5 * * * *", "5-59/15 * * * *"),
    (86400, "0 */4 * * *", "0 0 * * *"),
    (3 * 3600, "30 2 * * *", "30 2-23/3 * * *"),
    (7 * 86400, "15 4 * * 5", "15 4 * * 5"),
])
def test_ladder_cron_keeps_the_phase(step, like, expected):
    assert ladder_cron(step, like) == expected


def test_ladder_cron_refuses_a_step_off_the_ladder():
    with pytest.raises(ValueError, match="not on the ladder"):
        ladder_cron(5400, "0 * * * *")


# --- minimum interval: a known risk curve -----------------------------------------------


def lognormal_sf(x: float, median: float, p95: float) -> float:
    sigma = math.log(p95 / median) / 1.6448536269514722
    return 0.5 * math.erfc(math.log(x / median) / (sigma * math.sqrt(2)))


def curve_scorer(median: float, p95: float, calls: list | None = None):
    """Risk = P(backup > the job's shortest gap), exact (se 0), one volume."""
    def scorer(jobs):
        if calls is not None:
            calls.append([j.cron for j in jobs])
        (job,) = [j for j in jobs if j.name == "j"]
        p = lognormal_sf(min_gap(job.cron), median, p95)
        return {"v": VolumeOutcome(p, 0.0, 0.0, p99_backup_s=median * math.exp(
            math.log(p95 / median) / 1.6448536269514722 * _Z99))}
    return scorer


CURVES = [(20 * 60, 50 * 60), (3 * 60, 6 * 60), (5 * 3600, 9 * 3600), (40 * 60, 70 * 60)]
CURRENT = ["*/5 * * * *", "0 * * * *", "@every 90m", "0 0,6,12 * * *", "0 0 * * 0"]


@pytest.mark.parametrize("target", [0.01, 0.05])
@pytest.mark.parametrize("curve", CURVES)
@pytest.mark.parametrize("current", CURRENT)
def test_minimum_interval_is_the_smallest_step_under_the_target(current, curve, target):
    calls: list = []
    scorer = curve_scorer(*curve, calls)
    best = min(s for s in LADDER if lognormal_sf(s, *curve) <= target)
    job = JobSpec("j", current)
    other = JobSpec("other", "0 3 * * *")
    advice = minimum_interval(job, [other, job], scorer, target)
    assert len(calls) == advice.scorer_calls <= 11
    assert all(c[0] == "0 3 * * *" for c in calls)  # the other job is passed unchanged
    if lognormal_sf(min_gap(current), *curve) > target:
        # too risky now: the recommendation is the smallest ladder step that meets it
        assert advice.recommendation.changed
        assert advice.step_s == best == interval_of(advice.recommended_cron)
        assert advice.meets_target and advice.after.upper <= target
        i = LADDER.index(best)
        assert i == 0 or lognormal_sf(LADDER[i - 1], *curve) > target
        assert advice.now.p_conflict_per_run > target
        assert "p99 backup" in advice.reason
    else:
        assert advice.recommended_cron == current and advice.step_s is None
        shorter = [s for s in LADDER if s < min_gap(current)]
        if best in shorter:
            assert advice.could_run_every_s == best
            assert "could run every" in advice.reason
            asked = minimum_interval(job, [other, job], scorer, target, allow_shorter=True)
            assert asked.step_s == best == interval_of(asked.recommended_cron)
            i = LADDER.index(best)
            assert i == 0 or lognormal_sf(LADDER[i - 1], *curve) > target
        else:
            assert advice.could_run_every_s is None


def test_minimum_interval_counts_the_monte_carlo_error():
    def scorer(se):
        def score(jobs):
            p = 0.007 if min_gap(jobs[0].cron) < 7200 else 0.001
            return {"v": VolumeOutcome(p, se, 0.0)}
        return score

    job = JobSpec("j", "0 * * * *")
    noisy = minimum_interval(job, [job], scorer(0.002))  # 0.007 + 2 * 0.002 > 0.01
    assert noisy.recommended_cron == "0 */2 * * *"
    assert "p + 2·se" in noisy.reason
    precise = minimum_interval(job, [job], scorer(0.001))  # 0.009 <= 0.01
    assert precise.recommended_cron == "0 * * * *"


def test_minimum_interval_counts_skipped_slots():
    def scorer(jobs):
        skip = 0.2 if min_gap(jobs[0].cron) < 4 * 3600 else 0.0
        return {"v": VolumeOutcome(0.0, 0.0, skip)}

    job = JobSpec("j", "10 * * * *")
    assert minimum_interval(job, [job], scorer).recommended_cron == "10 */4 * * *"


def test_minimum_interval_looks_only_at_the_jobs_volumes():
    def scorer(jobs):
        p = lognormal_sf(min_gap(jobs[0].cron), 1200, 3000)
        return {"a": VolumeOutcome(p, 0.0, 0.0), "b": VolumeOutcome(0.5, 0.0, 0.0)}

    job = JobSpec("j", "0 * * * *")
    assert minimum_interval(job, [job], scorer, volumes=["a"]).recommended_cron == \
        "0 */2 * * *"
    stuck = minimum_interval(job, [job], scorer)  # "b" is bad whatever the interval
    assert stuck.recommended_cron == "0 * * * *" and not stuck.meets_target
    assert "no ladder step" in stuck.reason and "volume b" in stuck.reason
    with pytest.raises(ValueError, match="no outcome"):
        minimum_interval(job, [job], scorer, volumes=["c"])
    with pytest.raises(ValueError, match="no outcome"):  # a and c, both under the target
        minimum_interval(JobSpec("j", "0 */12 * * *"), [job], scorer, volumes=["a", "c"])
    # a scorer may leave volumes out once one breaks the target ("b" does, always)
    partial = minimum_interval(job, [job], scorer, volumes=["a", "b", "c"])
    assert partial.recommended_cron == "0 * * * *" and not partial.meets_target
    with pytest.raises(ValueError, match="less than twice"):
        minimum_interval(JobSpec("feb29", "0 0 29 2 *"), [], scorer)
    with pytest.raises(ValueError, match="never takes the backup lock"):
        minimum_interval(JobSpec("s", "0 * * * *", task="snapshot"), [], scorer)


# --- minimum interval: the fast path as the scorer --------------------------------------


def fastpath_scorer(backup: Duration, deletion: Duration, draws: int = 2000):
    """One volume covered by every job, scored over a week by ``score_volume``."""
    def p99(d: Duration) -> float:
        return d.median_s * math.exp(d.sigma * _Z99)

    def scorer(jobs):
        s = score_volume([(j, backup) for j in jobs], deletion, START,
                         START + pd.Timedelta(days=7), draws=draws, seed=1, threads=1)
        conflict = s.p_any_conflict_per_run()
        runs, skipped = s.counts("runs"), s.counts("skipped_slots")
        share = skipped / np.maximum(runs + skipped, 1)
        return {"v": VolumeOutcome(conflict.mean, conflict.se, float(share.mean()),
                                   float(share.std(ddof=1) / math.sqrt(draws)),
                                   p99_backup_s=p99(backup), p99_deletion_s=p99(deletion))}
    return scorer


def test_minimum_interval_with_the_fast_path():
    backup = Duration.parse({"median": "40m", "p95": "70m"})
    deletion = Duration.parse({"median": "1m", "p95": "2m"})
    scorer = fastpath_scorer(backup, deletion)
    job = JobSpec("hourly", "0 * * * *")
    advice = minimum_interval(job, [job], scorer)
    assert advice.now.upper > 0.01 and advice.after.upper <= 0.01
    assert advice.step_s is not None and advice.step_s > 3600
    i = LADDER.index(advice.step_s)
    shorter = scorer([JobSpec("hourly", ladder_cron(LADDER[i - 1], job.cron))])["v"]
    assert shorter.upper > 0.01  # one step shorter breaks the target
    assert advice.recommended_cron == ladder_cron(advice.step_s, "0 * * * *")
    # lognormal p99 = median * (p95 / median) ** (z99 / z95): 40 min * 1.75 ** 1.414 =
    # 88.3 min; 60 s * 2 ** 1.414 = 160 s, which reads "2.7 min" (under 10 min: 1 decimal)
    assert "p99 backup 88 min + deletion 2.7 min > 60 min interval" in advice.reason
    assert advice.scorer_calls == 2  # the current cron, then the first step up meets it
    rec = advice.recommendation.to_dict()
    assert rec["p_per_run_now"] == advice.now.p_conflict_per_run > 0.01
    assert json.loads(json.dumps(rec))["patch"] == kubectl_patch("hourly", rec[
        "recommended_cron"])


# --- offsets ----------------------------------------------------------------------------


def windows_overlap(crons: dict[str, str], busy_s: dict[str, float]) -> int:
    """How many pairs of windows of different jobs meet, over eight days."""
    start, end, job = (np.array(x) for x in zip(*[
        (t, t + busy_s[name], k) for k, (name, cron) in enumerate(crons.items())
        for t in fires(cron, 8, START - pd.Timedelta(days=1))], strict=True))
    meet = (start[:, None] < end[None, :]) & (start[None, :] < end[:, None])
    return int((meet & (job[:, None] != job[None, :])).sum()) // 2


def test_offsets_move_a_second_hourly_job_clear_of_the_first():
    jobs = [JobSpec("small", "0 * * * *"), JobSpec("big", "0 * * * *")]
    busy = {"small": 600.0, "big": 1200.0}
    assert windows_overlap({j.name: j.cron for j in jobs}, busy)
    advice = {a.job: a for a in offsets(jobs, busy)}
    assert advice["big"].recommended_cron == "0 * * * *"  # longest window placed first
    assert advice["small"].recommended_cron == "35 * * * *"  # centre of the free 40 min
    assert all(a.feasible for a in advice.values())
    assert not windows_overlap({k: a.recommended_cron for k, a in advice.items()}, busy)
    assert advice["small"].shares_with == ("big",)
    assert advice["small"].recommendation.changed


def test_offsets_report_windows_that_cannot_fit():
    jobs = [JobSpec("a", "0 * * * *"), JobSpec("b", "0 * * * *")]
    advice = {a.job: a for a in offsets(jobs, {"a": 40 * 60.0, "b": 30 * 60.0})}
    assert advice["a"].feasible
    assert not advice["b"].feasible and advice["b"].recommended_cron == "0 * * * *"
    assert "sum > period" in advice["b"].reason and "70 min" in advice["b"].reason
    slow = offsets([JobSpec("c", "*/30 * * * *")], {"c": 40 * 60.0})[0]
    assert not slow.feasible and "no offset helps" in slow.reason


def test_offsets_place_daily_jobs_around_an_hourly_one():
    jobs = [JobSpec("d1", "0 0 * * *"), JobSpec("d2", "0 0 * * *"),
            JobSpec("h", "0 * * * *"), JobSpec("snap", "0 * * * *", task="snapshot")]
    busy = {"d1": 30 * 60.0, "d2": 25 * 60.0, "h": 20 * 60.0}
    advice = offsets(jobs, busy)
    assert [a.job for a in advice] == ["d1", "d2", "h"]  # snapshots take no lock
    got = {a.job: a.recommended_cron for a in advice}
    assert got["h"] == "0 * * * *" and all(a.feasible for a in advice)
    assert not windows_overlap(got, busy)


def test_offsets_leave_jobs_on_different_volumes_alone():
    jobs = [JobSpec("a", "0 * * * *"), JobSpec("b", "0 * * * *"), JobSpec("c", "0 * * * *")]
    busy = {"a": 1200.0, "b": 1200.0, "c": 600.0}
    advice = offsets(jobs, busy, volumes={"a": ["v1"], "b": ["v2"], "c": ["v2", "v3"]})
    got = {a.job: a.recommended_cron for a in advice}
    assert got["a"] == "0 * * * *" and got["b"] == "0 * * * *" and got["c"] != "0 * * * *"
    assert not windows_overlap({"b": got["b"], "c": got["c"]}, busy)
    with pytest.raises(ValueError, match="no busy window"):
        offsets(jobs, {"a": 60.0})


# --- staggering -------------------------------------------------------------------------


def test_stagger_splits_a_job_into_parts_that_do_not_run_at_once():
    job = JobSpec("nightly", "30 1 * * *", concurrency=10, groups=("g",))
    vols = [f"pvc-{i}" for i in range(30)]
    s = stagger(job, 30, 4, 50 * 60, 3, volumes=vols)
    names = [j.name for j, _ in s.parts]
    assert names == ["nightly-s1", "nightly-s2", "nightly-s3"]
    assert [j.groups for j, _ in s.parts] == [("g-s1",), ("g-s2",), ("g-s3",)]
    assert [c for _, c in s.parts] == ["30 1 * * *", "20 2 * * *", "10 3 * * *"]
    docs = list(yaml.safe_load_all(s.manifests))
    assert [d["spec"]["name"] for d in docs] == names
    assert all(d["kind"] == "RecurringJob" and d["spec"]["concurrency"] == 4 for d in docs)
    labels = [shlex.split(c) for c in s.commands[:-1]]
    assert len(labels) == 30 and labels[4][5] == "pvc-4"
    assert labels[4][6] == "recurring-job-group.longhorn.io/g-s2=enabled"
    assert s.commands[-1].endswith("delete recurringjobs.longhorn.io nightly")
    assert (s.at_once_before, s.at_once_after) == (10, 4)
    assert "up to 10 backups at once" in s.reason and "up to 4 at once" in s.reason


def test_stagger_says_when_parts_overlap():
    job = JobSpec("hourly", "0 * * * *", groups=("default",))
    s = stagger(job, 12, 4, 40 * 60, 3)
    assert [c for _, c in s.parts] == ["0 * * * *", "20 * * * *", "40 * * * *"]
    assert s.at_once_after == 8 and "overlap" in s.reason
    assert "recurring-job-group.longhorn.io/default=enabled" in s.commands[0]
    assert "<volume>" in s.commands[0] and len(s.commands) == 4
    with pytest.raises(ValueError, match="evenly"):
        stagger(JobSpec("x", "*/7 * * * *"), 12, 4, 60, 3)
