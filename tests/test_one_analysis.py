"""One analysis behind every entry point: ``advisor recommend -o json``,
``advisor.recommend()`` / ``advisor.assess_risk()`` and the report's JSON give the same
week, the same figures for every volume and the same advice for every job, on the sample
fleet with the default settings (seed 0)."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

import advisor
from advisor.advice import Settings, analyse
from advisor.advice.settings import iso_week, latest_activity
from advisor.model.risk import target_figure

from .conftest import run_cli

pytestmark = pytest.mark.slow(seconds=120)  # (run first: see conftest)

VOLUME_FIGURES = ["p_conflict_per_run", "p_conflict_per_week",
                  "expected_conflicts_per_week", "skipped_runs_per_week"]


@pytest.fixture(scope="module")
def history() -> advisor.History:
    return advisor.load_history(sample=True)


@pytest.fixture(scope="module")
def cli_recommend() -> dict:
    r = run_cli("recommend", "--sample", "-o", "json", timeout=900)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def cli_report(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("report")
    r = run_cli("report", "--sample", "--out", str(out), "--format", "json", "--quiet",
                timeout=900)
    assert r.returncode == 0, r.stderr
    [path] = out.rglob("*.json")
    return json.loads(path.read_text())


def test_every_entry_point_scores_the_same_week(history, cli_recommend, cli_report):
    """The history's last complete ISO week (its last Backup, not the day it is run)."""
    label, start, end = iso_week(None, latest_activity(history.backups))
    assert cli_report["meta"]["week"] == cli_recommend["week"] == label
    assert [pd.Timestamp(t) for t in cli_recommend["window"]] == [start, end]
    assert analyse(history.frames, history.fits, Settings(), advise=False).window.label \
        == label


def test_every_entry_point_gives_each_volume_the_same_figures(history, cli_recommend,
                                                              cli_report):
    api = advisor.assess_risk(history).table.set_index("volume")
    cli = pd.DataFrame(cli_recommend["volumes"]).set_index("volume")
    rep = pd.DataFrame(cli_report["volumes"]).set_index("volume")
    assert set(api.index) == set(cli.index) == set(rep.index)
    assert len(api) > 50
    for col in VOLUME_FIGURES:
        pd.testing.assert_series_equal(cli[col].sort_index(), api[col].sort_index(),
                                       check_names=False, rtol=1e-9)
        pd.testing.assert_series_equal(rep[col].sort_index(), api[col].sort_index(),
                                       check_names=False, rtol=1e-9)
    assert (rep["at_risk"].sort_index() == api["at_risk"].sort_index()).all()


def test_every_entry_point_gives_each_job_the_same_advice(history, cli_recommend,
                                                          cli_report):
    api = {r.job: r.to_dict() for r in advisor.recommend(history).recommendations}
    cli = {r["job"]: r for r in cli_recommend["recommendations"]}
    rep = {j["job"]: j for j in cli_report["jobs"]}
    assert set(api) == set(cli) and set(api) <= set(rep)
    assert any(r["changed"] for r in api.values())  # (the sample has advice to agree on)
    for job, r in api.items():
        for k in ("current_cron", "recommended_cron", "changed", "kind"):
            assert cli[job][k] == r[k] == rep[job][k], (job, k)
        for k in ("p_per_run_now", "p_per_run_after"):
            assert cli[job][k] == pytest.approx(r[k], rel=1e-9), (job, k)
            assert rep[job][k] == pytest.approx(r[k], rel=1e-9), (job, k)


def test_the_report_of_the_sample_equals_the_report_of_its_collected_store(tmp_path,
                                                                          cli_report):
    """``make report``'s way (write the sample, collect the file into a store, report
    the store) and ``report --sample`` give the same figures: a file's records are
    observed at its export time, not at the collection's (a collection days later made
    the still-running backups last until then, and moved every prediction)."""
    out, store = tmp_path / "sample", tmp_path / "store"
    assert run_cli("sample", "--out", str(out)).returncode == 0
    r = run_cli("collect", "--from-file", str(out / "sample-fleet.json"), "--cluster",
                "sample", "--store", str(store), timeout=600)
    assert r.returncode == 0, r.stderr
    r = run_cli("report", "--store", str(store), "--out", str(tmp_path / "rep"), "--format",
                "json", "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr
    [path] = (tmp_path / "rep").rglob("*.json")
    from_store = json.loads(path.read_text())
    for key in ("volumes_at_risk", "conflicts_observed", "conflicts_predicted",
                "conflicts_predicted_range", "skipped_runs_predicted"):
        assert from_store["summary"][key] == pytest.approx(cli_report["summary"][key]), key
    a = pd.DataFrame(from_store["volumes"]).set_index("volume").sort_index()
    b = pd.DataFrame(cli_report["volumes"]).set_index("volume").sort_index()
    for col in [*VOLUME_FIGURES, "p95_s", "p99_s"]:
        pd.testing.assert_series_equal(a[col], b[col], check_names=False, rtol=1e-9)
    # the trends too: a store read for the report without the columns the fits read a
    # backup by (last_synced_at, sizes, backup_mode) once gave the detailed volumes'
    # trends 1 censored backup where their fits had 8
    assert a["p99_crosses_at"].equals(b["p99_crosses_at"])
    assert from_store["detailed"] == cli_report["detailed"]
    for t, u in zip(from_store["trends"], cli_report["trends"], strict=True):
        assert {k: t[k] for k in ("volume", "n", "n_censored", "method", "note")} == \
            {k: u[k] for k in ("volume", "n", "n_censored", "method", "note")}
        assert t["slope_per_day"] == pytest.approx(u["slope_per_day"], rel=1e-9)


def test_the_gate_on_the_samples_own_manifests_agrees_with_the_advice(history,
                                                                      tmp_path):
    """``advisor check`` of the jobs as they are names, per job, the worst volume the
    advice names, judges it the same way (over the target or not, on the larger of
    conflict and skipped slot by p + 2 se) and gives figures within their errors: the
    gate's fast estimator and the advice's search estimate the same probabilities."""
    from advisor.sample import write_sample

    gate = advisor.check(write_sample(tmp_path)["fleet"], history)
    found = {f["jobs"][0]: f for f in gate.findings if f["kind"] == "lock_risk"}
    recs = {r.job: r for r in advisor.recommend(history).recommendations}
    assert set(found) == set(recs)
    a = analyse(history.frames, history.fits, Settings(), advise=False)
    assert gate.week == a.window.label
    risks = {v.volume: v for v in a.assessment.volumes}
    for job, r in recs.items():
        f, now = found[job], r.now
        if f["volume"] != r.volume_now:
            # a tie the draws decide: a job whose run outlasts its interval skips the
            # same slots on all its volumes, whose figures are then equal within their
            # errors; the gate's pick is as bad as the advice's, and is compared with
            # the advice's own figures of that volume
            (p, se), (q, qse) = (target_figure(risks[v], job)
                                 for v in (f["volume"], r.volume_now))
            assert abs(p - q) <= 3 * (se ** 2 + qse ** 2) ** 0.5, (job, f["volume"], p, q)
            c, k = (risks[f["volume"]].p_conflict_per_run_by_job[job],
                    risks[f["volume"]].p_skip_per_slot[job])
            now = replace(now, p_conflict_per_run=c.mean, p_conflict_per_run_se=c.se,
                          p_skip_per_run=k.mean, p_skip_per_run_se=k.se)
        assert (f["severity"] == "high") is (now.upper > gate.settings.target), job
        for p, se, q, qse in ((f["p_per_run"], f["p_per_run_se"], now.p_conflict_per_run,
                               now.p_conflict_per_run_se),
                              (f["p_skip_per_run"], f["p_skip_per_run_se"],
                               now.p_skip_per_run, now.p_skip_per_run_se)):
            assert abs(p - q) <= 3 * (se ** 2 + qse ** 2) ** 0.5 + 1e-9, (job, p, q)
