"""The exploration API notebooks use: its docstring examples run, and each result is a
DataFrame, an HTML rendering and a chart."""

from __future__ import annotations

import doctest
import json
import shlex

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

import advisor
from advisor import api
from advisor.cron import CronError
from advisor.model.durations import backup_observations

pytestmark = pytest.mark.slow(seconds=80)  # (run first: see conftest)


def test_the_docstring_examples_run():
    failures, tried = doctest.testmod(api, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried >= 6 and failures == 0


@pytest.fixture(scope="module")
def history() -> advisor.History:
    return advisor.load_history(sample=True)


def test_history_risk_and_what_if_render_and_plot(history):
    assert "sample" in history._repr_html_()
    ax = history.plot("pvc-db-05")
    assert isinstance(ax, Axes) and "pvc-db-05" in ax.get_title()
    d = history.durations("pvc-db-05")
    assert d["started_at"].is_monotonic_increasing and d["duration_s"].max() > 3600
    # every completed backup is drawn, and the fitted quantiles as lines, in order
    done = int((~d["censored"].fillna(False).astype(bool)).sum())
    labels = ax.get_legend_handles_labels()[1]
    assert f"completed ({done})" in labels
    lines = {label.split()[0]: line.get_xdata()[0] for line, label in
             zip(*ax.get_legend_handles_labels(), strict=True)
             if label.split()[0] in ("p50", "p95", "p99")}
    assert list(lines) == ["p50", "p95", "p99"] and lines["p50"] < lines["p95"] < lines["p99"]
    # the incremental fit's p99, as the report shows (DurationFits.preferred)
    inc = history.fits.table.set_index(["volume", "mode"]).loc[("pvc-db-05", "incremental")]
    assert lines["p99"] == pytest.approx(inc["p99_s"] / 60)

    risk = advisor.assess_risk(history, week="2026-W47")
    t = risk.table
    assert t["at_risk"].iloc[0] and "hourly-db" in t.set_index("volume").at["pvc-db-05",
                                                                              "jobs"]
    assert isinstance(risk.plot(top=5), Axes) and "<table" in risk._repr_html_()

    # moving hourly off minute 0 (where daily fires) changes the app volumes' risk
    change = advisor.what_if(history, {"hourly": {"cron": "30 * * * *"}}, week="2026-W47")
    w = change.table
    assert {"p_conflict_per_run_before", "p_conflict_per_run_after", "changed"} <= set(w)
    assert w["changed"].any() and len(w) == len(t)
    assert isinstance(change.plot(top=5), Axes) and "<table" in change._repr_html_()
    # the same change twice is no change: both sides share their draws
    same = advisor.what_if(history, {"hourly": {"cron": "0 * * * *"}}, week="2026-W47")
    assert not same.table["changed"].any()


def test_what_if_refuses_what_it_cannot_change(history):
    with pytest.raises(ValueError, match="no RecurringJob"):
        advisor.what_if(history, {"nightly": {"cron": "0 1 * * *"}})
    with pytest.raises(ValueError, match="cannot change"):
        advisor.what_if(history, {"hourly": {"groups": ["x"]}})
    with pytest.raises(CronError):
        advisor.what_if(history, {"hourly": {"cron": "0 0 * * 7"}})


def test_recommend_and_the_report_from_the_api(history):
    advice = advisor.recommend(history, jobs=["hourly-db"], week="2026-W47")
    [row] = advice.table.to_dict("records")
    assert row["job"] == "hourly-db" and "<table" in advice._repr_html_()
    assert isinstance(advice.plot("hourly-db"), Axes)
    report = advisor.build_report(history, week="2026-W47", detailed=2)
    assert report.meta["week"] == "2026-W47" and len(report.trends) == 2


def test_a_history_prints_short(history):
    text = repr(history)
    assert text.startswith("History('the sample fleet': ") and len(text) < 300


def test_history_plot_draws_the_interval_and_the_censored_rug(history):
    """The duration chart notebook 01 shows: completed backups, fitted quantiles, the job
    interval, and each censored backup at how long it lasted at least, read as the fits
    read it (a failed backup: until it failed, not until the history was collected)."""
    b = history.backups[history.backups["volume"] == "pvc-app-02"]
    censored = b[b["censored"].fillna(False).astype(bool)]
    obs = backup_observations(b)
    lasted_min = obs.loc[obs["censored"], "duration_s"].sort_values().to_numpy() / 60
    seen_min = (censored["collected_at"] - censored["started_at"]).dt.total_seconds() / 60
    assert len(lasted_min) == len(censored) >= 2
    assert (lasted_min > 0).all() and (lasted_min <= seen_min.sort_values().to_numpy()).all()
    ax = history.plot("pvc-app-02", interval_s=3600, cluster="sample")
    labels = ax.get_legend_handles_labels()[1]
    assert "job interval 60 min" in labels
    assert any(label.startswith(f"censored ({len(lasted_min)})") for label in labels)
    [rug] = [line for line in ax.get_lines() if line.get_marker() == "|"]
    assert sorted(rug.get_xdata()) == pytest.approx(lasted_min)


def test_conflicts_count_what_longhorn_reported(history):
    t = history.conflicts()
    reported = history.backups["lock_conflict"].astype("string").fillna("none") != "none"
    assert int(t.to_numpy().sum()) == int(reported.sum()) > 0
    assert t.sum(axis=1).is_monotonic_decreasing and "pending_behind_deletion" in t.columns
    assert history.conflicts(cluster="elsewhere").empty
    ax = history.plot_conflicts(top=5)
    assert isinstance(ax, Axes)
    # one bar per volume and kind; together they are the five volumes' conflicts
    assert len(ax.patches) == 5 * t.shape[1]
    assert sum(p.get_width() for p in ax.patches) == int(t.head(5).to_numpy().sum())
    assert [t.get_text() for t in ax.get_yticklabels()] == t.index[:5][::-1].tolist()


def test_peak_at_once_is_the_most_backups_running_at_one_moment(history):
    start, end = pd.Timestamp("2026-11-16", tz="UTC"), pd.Timestamp("2026-11-23", tz="UTC")
    peaks = history.peak_at_once("2026-11-16", end)
    [(target, at, most)] = peaks[["backup_target", "at", "peak"]].drop_duplicates(
        ).itertuples(index=False)
    assert peaks["running"].sum() == most
    b = history.backups.dropna(subset=["started_at", "finished_at"])
    b = b[b["backup_target"] == target]
    s = np.sort(b["started_at"].dt.tz_localize(None).to_numpy())
    f = np.sort(b["finished_at"].dt.tz_localize(None).to_numpy())
    # backups running just after each start in the week: none more than the peak
    starts = s[(s >= start.tz_localize(None).asm8) & (s < end.tz_localize(None).asm8)]
    running = np.searchsorted(s, starts, "right") - np.searchsorted(f, starts, "right")
    assert running.max() == most
    assert ((b["started_at"] <= at) & (b["finished_at"] > at)).sum() == most
    assert start <= at < end
    conc = history.jobs.set_index("recurring_job")["concurrency"]
    assert (peaks["concurrency"] == peaks["recurring_job"].map(conc)).all()


def test_what_if_patches_are_the_commands_to_apply_it(history):
    change = advisor.WhatIf(None, None, {"hourly": {"cron": "30 * * * *", "retain": 12},
                                         "daily": {"concurrency": 4}}, "longhorn")
    assert change.patches == [
        "kubectl -n longhorn patch recurringjobs.longhorn.io hourly --type merge "
        """-p '{"spec":{"cron":"30 * * * *"}}'""",
        "kubectl -n longhorn patch recurringjobs.longhorn.io hourly --type merge "
        """-p '{"spec":{"retain":12}}'""",
        "kubectl -n longhorn patch recurringjobs.longhorn.io daily --type merge "
        """-p '{"spec":{"concurrency":4}}'"""]
    for cmd in change.patches:  # each parses as a shell command with a JSON merge patch
        words = shlex.split(cmd)
        assert words[:6] == ["kubectl", "-n", "longhorn", "patch",
                             "recurringjobs.longhorn.io", words[5]] and words[-2] == "-p"
        assert set(json.loads(words[-1])["spec"]) <= {"cron", "retain", "concurrency"}
    with pytest.raises(CronError):
        advisor.WhatIf(None, None, {"hourly": {"cron": "61 * * * *"}}).patches  # noqa: B018


def test_offsets_place_each_backup_jobs_busy_window(history):
    placed = advisor.offsets(history)
    t = placed.table
    backup_jobs = set(history.jobs.loc[history.jobs["task"].isin(
        ["backup", "backup-force-create"]), "recurring_job"])
    assert set(t["job"]) == backup_jobs and "<table" in placed._repr_html_()
    assert repr(placed).startswith(f"Offsets({len(t)} backup jobs")
    # an infeasible job keeps its cron; its window is its slowest volume's p95 + deletion
    row = t.set_index("job").loc["hourly-db"]
    assert not row["feasible"] and row["recommended_cron"] == row["current_cron"]
    fits = history.fits.preferred().set_index("volume")["p95_s"]
    dels = history.fits.deletions.set_index("volume")["p95_s"]
    db = [v for v in fits.index if v.startswith("pvc-db-")]
    assert row["busy_window_s"] == pytest.approx(max(fits[v] + dels[v] for v in db))


@pytest.fixture(scope="module")
def split(history) -> advisor.Stagger:
    return advisor.stagger(history, "daily", parts=3, concurrency=3, week="2026-W47",
                           namespace="longhorn")


def test_stagger_compares_the_week_simulated_before_and_after(split):
    start, end = split.start, split.end
    assert (start, end) == (pd.Timestamp("2026-11-16", tz="UTC"),
                            pd.Timestamp("2026-11-23", tz="UTC"))
    c = split.comparison
    assert list(c.index) == ["current", "staggered"]
    for name, result in (("current", split.before), ("staggered", split.after)):
        b = result.frames["backups"]
        week = b[(b["started_at"] >= start) & (b["started_at"] < end)]
        # the comparison's figures are the simulation's, counted directly
        assert c.at[name, "backups with a lock conflict"] == (week["lock_conflict"]
                                                               != "none").sum()
        s = result.skipped_slots["slot"]
        assert c.at[name, "runs skipped"] == ((s >= start) & (s < end)).sum()
    assert c.at["staggered", "peak backups at once"] < c.at["current", "peak backups at once"]
    jobs_after = set(split.after.frames["backups"]["recurring_job"].astype(str))
    assert "daily" not in jobs_after and {"daily-s1", "daily-s2", "daily-s3"} <= jobs_after
    assert repr(split) == (f"Stagger(daily in 3 parts: peak backups at once "
                           f"{c.at['current', 'peak backups at once']} now, "
                           f"{c.at['staggered', 'peak backups at once']} staggered)")


def test_stagger_prints_the_parts_and_what_to_review(split, history):
    t = split.table
    assert t["job"].tolist() == ["daily-s1", "daily-s2", "daily-s3"]
    assert t["cron"].is_unique and (t["concurrency"] == 3).all()
    assert t["volumes"].sum() == sum(map(len, split.part_volumes)) == len(split.commands) - 1
    assert split.commands[-1] == "kubectl -n longhorn delete recurringjobs.longhorn.io daily"
    assert split.manifests.count("kind: RecurringJob") == 3
    # the database volumes have labels of their own: the commands would add them to the
    # default group, and the result says so
    own = history.volumes.set_index("volume")["recurring_job_groups"].astype(str)
    assert split.joining_default and all("db" in own[v] for v in split.joining_default)
    for v in split.joining_default:
        [cmd] = [c for c in split.commands if f" {v} " in c]
        assert "recurring-job-group.longhorn.io/default=enabled" in cmd
    assert ", ".join(split.joining_default) in split.caution
    assert "Caution" in split._repr_html_() and split.reason in split._repr_html_()


def test_stagger_plots_and_refuses(split, history):
    ax = split.plot_running()
    assert [line.get_label() for line in ax.get_lines()] == ["current", "staggered"]
    assert "Monday 2026-11-16" in ax.get_title()
    axes = split.plot_heatmaps()
    assert len(axes) == 2 and axes[0].images[0].get_clim() == axes[1].images[0].get_clim()
    with pytest.raises(ValueError, match="no backup RecurringJob"):
        advisor.stagger(history, "nightly")
    with pytest.raises(ValueError, match="parts"):
        advisor.stagger(history, "daily", parts=1)


def test_the_report_plots_its_timeline_and_heatmap(history):
    report = advisor.build_report(history, week="2026-W47", detailed=2)
    ax = report.plot_timeline("2026-11-18 00:00", "2026-11-18 06:00",
                              volumes=report.volumes["volume"].head(5))
    assert isinstance(ax, Axes) and "2026-W47" in ax.get_title()
    assert len(ax.get_yticks()) == 5
    ax = report.plot_concurrency()
    assert "target default" in ax.get_title() and ax.images


def test_a_store_backed_history_carries_its_collections_problems(tmp_path):
    """A record `collect` reported (and kept in the collection's manifest) is in the
    History read back from the store, as the CLI's report of the store lists it, not
    only in a History read from the files themselves."""
    from advisor.sources import synthetic as syn

    from .conftest import completed, run_cli

    bad = completed("backup-badsize")
    bad["status"]["size"] = "lots"
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(syn.kubectl_list([completed("backup-ok"), bad])))
    store = tmp_path / "store"
    r = run_cli("collect", "--from-file", str(path), "--store", str(store), "--no-fit")
    assert r.returncode == 0, r.stderr
    from_files = advisor.load_history(files=[path])
    from_store = advisor.load_history(store)
    wanted = [p for p in from_files.problems if "backup-badsize" in str(p)]
    assert wanted and any("'lots' is not a whole number" in str(p) for p in wanted)
    assert [p.reason for p in from_store.problems] == [str(p) for p in from_files.problems]
    assert all(p.file.startswith("collection ") for p in from_store.problems)


def test_check_takes_the_risk_target_by_the_name_every_verb_uses(tmp_path):
    """Every verb takes ``target=``; check took ``max_risk=``, which is kept as its old
    name. The gate judges against the target it was given."""
    from advisor.sample import write_sample

    fleet = write_sample(tmp_path)["fleet"]
    assert advisor.check(fleet, target=0.05).to_dict()["max_risk"] == 0.05
    assert advisor.check(fleet, max_risk=0.02).to_dict()["max_risk"] == 0.02
    with pytest.raises(TypeError, match="not both"):
        advisor.check(fleet, target=0.05, max_risk=0.02)
