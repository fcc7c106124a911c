"""The weekly report's structure and its flavours, on the sample fleet (whose problems are
known: the simulator made them)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from scipy import stats

from advisor.advice.settings import iso_week
from advisor.model.durations import fit_durations
from advisor.report.build import Report, build_report
from advisor.report.render import (
    PREFIX,
    load_previous,
    md_escape,
    to_csv,
    to_html,
    to_json,
    to_markdown,
)
from advisor.sample import fleet as sample
from advisor.sample import load_sample

pytestmark = pytest.mark.slow(seconds=160)  # (run first: see conftest)

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "advisor" / "report"
                     / "report.schema.json").read_text())


@pytest.fixture(scope="module")
def sample_report() -> Report:
    frames = load_sample().frames
    fits = fit_durations(frames["backups"], frames["volumes"], frames["backup_volumes"],
                         jobs=frames["jobs"])
    return build_report(frames, fits)


def test_the_week_is_the_last_complete_iso_week_of_the_history():
    label, start, end = iso_week(None, pd.Timestamp("2026-11-23T06:30:00Z"))  # a Monday
    assert (label, start, end) == ("2026-W47", pd.Timestamp("2026-11-16", tz="UTC"),
                                   pd.Timestamp("2026-11-23", tz="UTC"))
    assert iso_week(None, pd.Timestamp("2026-11-29T23:59:00Z"))[0] == "2026-W47"
    assert iso_week("2026-w01")[1] == pd.Timestamp("2025-12-29", tz="UTC")
    with pytest.raises(ValueError, match="YYYY-Www"):
        iso_week("2026-47")
    # the history's last backup decides, not when it was collected: an export of the
    # sample collected a week later still reports its last complete week
    from advisor.advice.settings import latest_activity

    b = load_sample().frames["backups"].assign(
        collected_at=pd.Timestamp("2026-12-01T09:00:00Z"))
    assert iso_week(None, latest_activity(b))[0] == "2026-W47"


def test_the_sample_report_shows_the_sample_fleets_known_problems(sample_report):
    r = sample_report
    v = r.volumes.set_index("volume")
    jobs = {j.job: j for j in r.jobs}
    # the 00:00 collisions: hourly and daily fire together on the same volumes
    assert jobs["hourly"].changed and "daily" in jobs["hourly"].reason
    assert jobs["hourly"].recommended_cron.split()[0] != "0"
    # the job that skips slots: hourly-db's slow database volumes
    db = v[v["jobs"].str.contains("hourly-db")]
    assert (db["skipped_runs_per_week"] > 10).all()
    # the volume slower than its interval: p99 beyond the hour, a negative margin
    assert v.at["pvc-db-05", "p99_s"] > 3600 and v.at["pvc-db-05", "margin_s"] < 0
    assert any("pvc-db-05" in c and "slower than their 60 min interval" in c
               for c in r.summary["top_changes"])
    assert len(r.summary["top_changes"]) == 3
    # observed this week against predicted, and both in a sensible relation
    s = r.summary
    assert s["conflicts_observed"] > 0 and s["conflicts_predicted"] > 0
    assert s["volumes_at_risk"] == int(r.volumes["at_risk"].sum()) > 0
    assert r.meta["week"] == "2026-W47" and r.meta["cluster"] == "sample"
    assert r.data_quality["volumes_on_fleet_prior"] == ["pvc-dr-orders"]
    assert "prior" in r.data_quality["deletion_durations"]
    # riskiest first; the curve of each job holds its current and recommended intervals
    assert r.volumes["at_risk"].is_monotonic_decreasing
    h = jobs["hourly"].curve
    assert {3600.0} <= set(h["interval_s"]) and (h["p_lo"] <= h["p"]).all()


def test_the_table_and_the_trend_charts_share_one_trend(sample_report):
    """"p99 reaches interval" in the volume table is the crossing of the same trend the
    chart draws and the JSON holds (two models once gave two dates for one volume)."""
    v = sample_report.volumes.set_index("volume")
    assert sample_report.trends and set(sample_report.trends) == set(sample_report.detailed)
    for name, trend in sample_report.trends.items():
        table = v.at[name, "p99_crosses_at"]
        assert (pd.isna(table) and trend.crossing_at is None) or table == trend.crossing_at
        assert trend.interval_s == v.at[name, "interval_s"]


def test_the_report_charts_each_volumes_preferred_fit(sample_report):
    """Which fit a volume's charts show is chosen once, by DurationFits.preferred (its
    incremental fit, else its other; tested in test_durations), in build_report: render
    chose it again itself, and History.plot not at all."""
    frames = load_sample().frames
    fits = fit_durations(frames["backups"], frames["volumes"], frames["backup_volumes"],
                         jobs=frames["jobs"])
    assert sample_report.fits["volume"].is_unique
    pd.testing.assert_frame_equal(sample_report.fits,
                                  fits.preferred(sample_report.meta["cluster"]))


def test_the_trends_and_charts_read_each_backup_as_the_fits_do(sample_report):
    """One definition of a backup's duration and censoring: the report's durations are
    the fits' observations (a backup without an end counts as lasting at least until
    its failure or its export), so a volume with censored backups gets the Tobit trend
    and its chart a rug of them; the report read the frame's duration_s, empty for
    every censored row, so neither could happen."""
    frames = load_sample().frames
    obs = fit_durations(frames["backups"], frames["volumes"], frames["backup_volumes"],
                        jobs=frames["jobs"]).observations
    d = sample_report.durations
    cens = d[d["censored"]]
    assert len(cens) and (cens["duration_s"] > 0).all()
    assert {sample_report.trends[v].method for v in cens["volume"]} == {"tobit"}
    for v, g in d.groupby("volume"):
        mode = sample_report.fits.set_index("volume").at[v, "mode"]
        want = obs[(obs["volume"] == v) & (obs["mode"] == mode)]
        assert sorted(g["duration_s"]) == sorted(want["duration_s"]), v
        assert int(g["censored"].sum()) == int(want["censored"].sum()), v


def test_the_json_holds_every_figure_and_validates_against_its_schema(sample_report):
    doc = json.loads(to_json(sample_report))
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema_version"] == 2
    assert len(doc["volumes"]) == doc["summary"]["volumes"]
    # the charts' numbers too: the heatmap's cells and the detailed volumes' trends
    cells = pd.DataFrame(doc["running_at_once"])
    assert len(cells) == 7 * 24 * cells["backup_target"].nunique()
    assert cells["running"].max() > 1  # the sample's 00:00 storms
    assert [t["volume"] for t in doc["trends"]] == doc["detailed"]
    db5 = next(t for t in doc["trends"] if t["volume"] == "pvc-db-05")
    assert db5["p99_now_s"] > db5["interval_s"] == 3600
    # a broken document is refused: the schema is not a formality
    broken = json.loads(to_json(sample_report))
    broken["volumes"][0]["p_conflict_per_run"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_the_csv_files_hold_the_volume_table_and_the_job_advice(sample_report, tmp_path):
    files = to_csv(sample_report)
    (tmp_path / "v.csv").write_text(files["volumes"])
    (tmp_path / "j.csv").write_text(files["jobs"])
    v, j = pd.read_csv(tmp_path / "v.csv"), pd.read_csv(tmp_path / "j.csv")
    assert len(v) == len(sample_report.volumes) and "margin_s" in v.columns
    assert set(j["job"]) == {x.job for x in sample_report.jobs}
    assert j.set_index("job").at["hourly", "changed"]


HOSTILE_VOLUME = "pvc-<script>alert(1)</script>"
PIPE_VOLUME = "pvc-a|b*c_d`e"


def hostile(report: Report) -> Report:
    """The sample report with names no Kubernetes object may have, as a label or a
    message can: what the renderers do with them is the test."""
    names = {report.volumes["volume"].iloc[0]: HOSTILE_VOLUME,
             report.volumes["volume"].iloc[1]: PIPE_VOLUME}
    vols = report.volumes.assign(volume=report.volumes["volume"].replace(names))
    jobs = [dataclasses.replace(j, reason=j.reason + " <b>label</b>") for j in report.jobs]
    return dataclasses.replace(report, volumes=vols, jobs=jobs,
                               detailed=[names.get(v, v) for v in report.detailed])


def test_cluster_strings_render_as_text_in_html_and_markdown(sample_report):
    r = hostile(sample_report)
    page = to_html(r, {})
    assert "<script>alert(1)</script>" not in page and "<b>label</b>" not in page
    assert "pvc-&lt;script&gt;alert(1)&lt;/script&gt;" in page
    md = to_markdown(r, {})
    assert "<script>" not in md
    row = next(line for line in md.splitlines() if line.startswith("| pvc\\-a\\|b"))
    # the pipe does not split the cell: the row has as many cells as the header
    header = next(line for line in md.splitlines() if line.startswith("| volume | jobs"))
    assert row.count(" | ") == header.count(" | ") and "a\\|b" in row
    assert md_escape("a|b<c>*d_") == "a\\|b\\<c\\>\\*d\\_"


def test_what_changed_since_the_previous_report(sample_report, tmp_path):
    r = sample_report
    before = json.loads(to_json(r))
    before["meta"]["week"] = "2026-W46"
    calm = before["volumes"][0]["volume"]
    before["volumes"][0]["at_risk"] = False
    before["volumes"][0]["p_conflict_per_run"] = 0.0
    before["volumes"][0]["p_conflict_per_run_se"] = 0.0
    before["volumes"] = [*before["volumes"][:-1],
                         {**before["volumes"][-1], "volume": "pvc-gone"}]
    before["jobs"][0]["current_cron"] = "5 * * * *"
    before["summary"]["conflicts_observed"] = 3
    (tmp_path / f"{PREFIX}2026-W46.json").write_text(json.dumps(before))
    (tmp_path / f"{PREFIX}2026-W48.json").write_text("{}")  # a later week: not "previous"
    (tmp_path / f"{PREFIX}2026-W45.json").write_text("{not json")  # older and broken
    previous = load_previous(tmp_path, "2026-W47")
    assert previous["meta"]["week"] == "2026-W46"
    from advisor.report.changes import changes_since

    c = changes_since(previous, r.summary, r.volumes, r.jobs)
    assert calm in c["newly_at_risk"] and "pvc-gone" in c["gone_volumes"]
    assert r.volumes["volume"].iloc[-1] in c["new_volumes"]
    assert c["risk_moves"][0]["volume"] == calm
    assert c["cron_changes"] == [{"job": r.jobs[0].job, "before": "5 * * * *",
                                  "after": r.jobs[0].current_cron}]
    assert c["summary_before"]["conflicts_observed"] == 3
    doc = json.loads(to_json(dataclasses.replace(r, changes=c)))
    jsonschema.validate(doc, SCHEMA)
    md = to_markdown(dataclasses.replace(r, changes=c), {})
    assert "Compared with 2026\\-W46" in md and "newly at risk" in md
    assert load_previous(tmp_path, "2026-W45") is None


def test_advisor_report_writes_every_flavour_and_compares_weeks(tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "reports"
    first = run_cli("report", "--sample", "--out", str(out), "--week", "2026-W46",
                    "--format", "json", timeout=300)
    assert first.returncode == 0, first.stderr
    second = run_cli("report", "--sample", "--out", str(out), "--week", "2026-W47",
                     timeout=300)
    assert second.returncode == 0, second.stderr
    assert "week 2026-W47, cluster sample:" in second.stdout
    base = out / f"{PREFIX}2026-W47"
    for suffix in (".html", ".md", ".json", "-volumes.csv", "-jobs.csv"):
        assert (base.parent / f"{base.name}{suffix}").stat().st_size > 0
    charts = sorted((out / f"{base.name}-charts").glob("*.png"))
    md = (base.parent / f"{base.name}.md").read_text()
    # every chart the Markdown names is beside it, and each is a PNG
    named = {line.split("](")[1].rstrip(")") for line in md.splitlines()
             if line.startswith("![")}
    assert named == {f"{base.name}-charts/{p.name}" for p in charts} and len(charts) >= 20
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in charts)
    doc = json.loads((base.parent / f"{base.name}.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["changes"]["previous_week"] == "2026-W46"  # read from the first run's JSON
    html_text = (base.parent / f"{base.name}.html").read_text()
    assert html_text.count('<img src="data:image/png;base64,') == len(charts)
    assert "Compared with 2026-W46" in html_text
    # the sample's known problems, in the words a reader sees
    # pvc-db-05's p99 as the report words it, against the sample's truth (its backups are
    # lognormal: p99 = median x exp(sigma x z_0.99), 3.19 h), within the fit's error
    shown = re.search(r"pvc-db-05 \((\d+\.\d) h\)", html_text)
    truth = next(v for v in sample.sample_fleet().volumes if v.name == "pvc-db-05")
    true_p99_h = truth.backup_duration.median_s * math.exp(
        truth.backup_duration.sigma * stats.norm.ppf(0.99)) / 3600
    assert shown and abs(float(shown[1]) / true_p99_h - 1) < 0.2, (shown, true_p99_h)
    for text in (shown[0], "slower than their 60 min interval",
                 "moved away from the fire times of daily", "<code>30 * * * *</code>"):
        assert text in html_text, text
        assert md_escape(text.replace("<code>", "").replace("</code>", "")) in md \
            or text.startswith("<code>"), text
    # no progress bar in a pipe, and a bad option is a clear error
    assert "steps" not in second.stderr
    bad = run_cli("report", "--sample", "--out", str(out), "--format", "pdf")
    assert bad.returncode == 2 and "--format" in bad.stderr


def test_advisor_report_reads_a_store(tmp_path):
    from tests.conftest import completed, run_cli

    store = tmp_path / "store"
    assert run_cli("collect", "--sample", "--store", str(store)).returncode == 0
    # a later collect with one record it must skip: the report says which and why
    late = {"apiVersion": "v1", "kind": "List", "items": [
        completed("backup-late", "pvc-app-00"),
        {"apiVersion": "longhorn.io/v1beta2", "kind": "Backup",
         "metadata": {"name": "backup-no-volume", "namespace": "longhorn-system"},
         "status": {"state": "Completed"}}]}
    (tmp_path / "late.json").write_text(json.dumps(late, default=str))
    assert run_cli("collect", "-f", str(tmp_path / "late.json"), "--cluster", "sample",
                   "--store", str(store), "--no-fit").returncode == 0
    got = run_cli("report", "--store", str(store), "--out", str(tmp_path / "out"),
                  "--format", "json,csv", "--quiet", timeout=300)
    assert got.returncode == 0, got.stderr
    doc = json.loads((tmp_path / "out" / f"{PREFIX}2026-W47.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"]["conflicts_observed"] > 0 and doc["meta"]["cluster"] == "sample"
    [skipped] = doc["data_quality"]["records_skipped"]
    assert "backup-no-volume" in skipped and "status.volumeName" in skipped


def test_the_progress_bar_shows_on_a_terminal_only(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()  # stderr a terminal, stdout a pipe
    proc = subprocess.Popen(
        [sys.executable, "-m", "advisor", "report", "--sample", "--out", str(tmp_path),
         "--format", "json"], stdout=subprocess.PIPE, stderr=slave,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # (the other end closed: the process ended)
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=300)
    os.close(master)
    assert proc.returncode == 0
    shown = seen.decode(errors="replace")
    assert "the risk of the current schedules" in shown and "steps" in shown
    assert "week 2026-W47" in proc.stdout.read().decode()  # the result still on stdout
    proc.stdout.close()
