"""The report's renderers, in process, on small reports built by hand.

``advisor/report/render.py`` and its template ``templates/report.html.j2`` turn a
:class:`~advisor.report.build.Report` into HTML, Markdown, JSON, CSV and chart PNGs. The
reports here hold a few volumes and RecurringJobs whose figures were chosen so that each
lands on a known side of a formatting threshold, is zero, or is missing (NaN, None: the
reader sees "n/a"); every expected string below was worked out from those figures (the
comments give the arithmetic), never copied from an output.

The tests build no model and start no process, so mutmut can re-run them for each mutant
of render.py, and ``tests/template_mutants.py`` for each mutant of the template.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
from pathlib import Path

import jinja2
import jsonschema
import pandas as pd
import pytest

from advisor.model.trend import forecast_p99
from advisor.report import charts as ch
from advisor.report.build import VOLUME_COLUMNS, JobReport, Report
from advisor.report.recovery import RECOVERY_COLUMNS
from advisor.report.render import (
    FORMATS,
    PREFIX,
    _code,
    _md_changes,
    _md_quality,
    _slug,
    load_previous,
    md_escape,
    render_charts,
    to_csv,
    to_html,
    to_json,
    to_markdown,
    write_report,
)

SCHEMA = json.loads((Path(__file__).parents[1] / "advisor" / "report" / "report.schema.json")
                    .read_text())
NAN = float("nan")
WEEK_START, WEEK_END = "2026-11-23T00:00:00+00:00", "2026-11-30T00:00:00+00:00"
BASE = "longhorn-backup-report-2026-W48"


# --- reports built by hand -------------------------------------------------------------

def volume(name: str, **figures) -> dict:
    """One row of the volume table: a safe volume with a 10 / 15 min p95 / p99 on a
    daily job, unless ``figures`` say otherwise."""
    row = {"volume": name, "jobs": "daily", "at_risk": False, "p_conflict_per_run": 0.0,
           "p_conflict_per_run_se": 0.0, "p_conflict_per_week": 0.0,
           "expected_conflicts_per_week": 0.0, "skipped_runs_per_week": 0.0,
           "observed_conflicts_week": 0, "failed_backups_week": 0, "p95_s": 600.0,
           "p99_s": 900.0, "interval_s": 86400.0, "min_safe_interval_s": 86400.0,
           "margin_s": 85500.0,
           "p99_crosses_at": None, "duration_source": "own_history"}
    assert set(figures) <= set(row)
    return {**row, **figures}


def volume_table(*rows: dict) -> pd.DataFrame:
    """The volume table as build_report makes it (``p99_crosses_at`` a UTC datetime)."""
    df = pd.DataFrame(list(rows), columns=list(VOLUME_COLUMNS))
    df["p99_crosses_at"] = pd.to_datetime(df["p99_crosses_at"], utc=True)
    return df


def curve(*points: tuple[float, float]) -> pd.DataFrame:
    """A job's risk-against-interval curve: ``(interval_s, p)`` with a ± 0.001 band."""
    return pd.DataFrame([{"interval_s": i, "p": p, "p_lo": max(p - 0.001, 0.0),
                          "p_hi": p + 0.001} for i, p in points])


def job(name: str, cron: str, *, to: str | None = None, now: float | None = None,
        after: float | None = None, reason: str = "Meets the target.", volumes: int = 1,
        interval: float | None = 3600.0, to_interval: float | None = None,
        points: tuple = ((3600.0, 0.001),), recovery: dict | None = None) -> JobReport:
    """A RecurringJob's advice: changed when ``to`` (a new cron) is given."""
    changed = to is not None
    return JobReport(
        job=name, kind="interval" if changed else "keep", current_cron=cron,
        recommended_cron=to or cron,
        changed=changed, p_per_run_now=now, p_per_run_after=after, reason=reason,
        volumes=volumes, current_interval_s=interval,
        recommended_interval_s=to_interval if to_interval is not None else interval,
        yaml=f"kind: RecurringJob\nmetadata:\n  name: {name}\nspec:\n  cron: {to}"
        if changed else None,
        patch=f"kubectl -n longhorn-system patch recurringjob {name}" if changed else None,
        curve=curve(*points), recovery=recovery)


META = {"advisor_version": "0.1.0", "generated_at": "2026-11-30T06:07:08.123456+00:00",
        "week": "2026-W48", "week_start": WEEK_START, "week_end": WEEK_END,
        "cluster": "eu_west-1", "longhorn_version": "1.10", "target_risk": 0.01,
        "model_window": [WEEK_START, WEEK_END]}
OPS_COLUMNS = ["volume", "backup_target", "operation", "start", "end", "conflict"]


def quality(**fields) -> dict:
    """The data-quality block: a clean history unless ``fields`` say otherwise."""
    q = {"backups": 120, "backups_censored": 3,
         "history_from": "2026-10-01T00:00:00+00:00",
         "history_to": "2026-11-30T01:00:00+00:00", "volumes_on_fleet_prior": [],
         "deletion_durations": "no deletion was measured: the stated prior",
         "records_skipped": [], "records_with_warnings": [], "fit_problems": [],
         "assumptions": [], "longhorn_version": "1.10", "schedule_time_zone": "UTC"}
    assert set(fields) <= set(q)
    return {**q, **fields}


def count(observed, predicted, lo, hi, **more) -> dict:
    return {"observed": observed, "predicted": predicted, "lo": lo, "hi": hi, **more}


def recovery(**fields) -> dict:
    """The summary's ``recovery``: a week with nothing lost, unless ``fields`` say."""
    r = {"intended": 7, "completed": count(7.0, 7.0, 7.0, 7.0),
         "lost": count(0.0, 0.0, 0.0, 0.0),
         "delayed": count(0.0, 0.0, 0.0, 0.0, wait_p50_s=None, wait_p95_s=None),
         "deferred": count(0.0, 0.0, 0.0, 0.0, bytes=0.0),
         "restore_blocked": count(None, 0.0, 0.0, 0.0), "worst_gap": None,
         "volumes_losing_points": 0, "outside_range": [], "rpo": None}
    assert set(fields) <= set(r)
    return {**r, **fields}


FITS = {"conflicts": "fits", "causes": [], "text": "0 lock conflicts observed, 0–0 "
        "predicted (95 %): the model fits the week"}


def recovery_row(volume: str, **fields) -> dict:
    """One row of the recovery table: an hourly volume with every point, unless
    ``fields`` say."""
    r = {c: 0.0 for c in RECOVERY_COLUMNS}
    r |= {"volume": volume, "intended_interval_s": 3600.0, "intended_points": 168.0,
          "outside": ""}
    for k in ("points_observed", "points_predicted", "points_lo", "points_hi"):
        r[k] = 168.0
    for k in ("gap_p50", "gap_p95", "gap_max"):
        r |= {f"{k}_observed": 3600.0, f"{k}_predicted": 3600.0, f"{k}_lo": 3600.0,
              f"{k}_hi": 3600.0}
    for k in ("wait_p50_observed", "wait_p95_observed", "wait_p95_predicted", "wait_p95_lo",
              "wait_p95_hi"):
        r[k] = NAN
    assert set(fields) <= set(r)
    return {**r, **fields}


def report(*, meta=META, summary, jobs, volumes, changes=None, data_quality,
           operations=None, durations=None, detailed=(), fits=None, trends=None,
           recovery_rows=()) -> Report:
    """A Report of these parts (no operation, backup, fit, trend or recovery row unless
    given)."""
    return Report(
        meta=dict(meta), summary=summary, jobs=list(jobs), volumes=volumes, changes=changes,
        data_quality=data_quality,
        operations=pd.DataFrame(columns=OPS_COLUMNS) if operations is None else operations,
        durations=(pd.DataFrame(columns=["volume", "started_at", "duration_s", "censored"])
                   if durations is None else durations),
        detailed=list(detailed),
        fits=(pd.DataFrame(columns=["volume", "mode", "p50_s", "p95_s", "p99_s"])
              if fits is None else fits),
        trends=trends or {},
        recovery=pd.DataFrame(list(recovery_rows), columns=list(RECOVERY_COLUMNS)))


def main_report() -> Report:
    """A week with something to do: two volumes at risk, a cron to change, what changed
    since last week, a problem of each kind in the data."""
    vols = volume_table(
        # 4.56 % ± 2 x 0.123 % = 0.246 points; 0.3126 -> "0.313"; 1800 s -> 30 min;
        # 5400 s -> 1.5 h (the hour threshold); 86400 s -> 24 h; 81000 s -> 22.5 h
        volume("pvc-a", at_risk=True, p_conflict_per_run=0.0456,
               p_conflict_per_run_se=0.00123, p_conflict_per_week=0.277,
               expected_conflicts_per_week=0.3126, observed_conflicts_week=3,
               failed_backups_week=1, p95_s=1800.0, p99_s=5400.0, margin_s=81000.0),
        # 0.999 % ± 0.1 %; 1234.5 -> "1.23e+03"; 89.6 s -> "90 s" (under 90 s: seconds);
        # 172800 s -> 2 d (the day threshold); 3600 s -> 60 min; -169200 s -> -47 h
        volume("pvc-b", jobs="daily, hourly", at_risk=True, p_conflict_per_run=0.00999,
               p_conflict_per_run_se=0.0005, p_conflict_per_week=0.0501,
               expected_conflicts_per_week=1234.5, skipped_runs_per_week=0.06,
               observed_conflicts_week=1, p95_s=89.6, p99_s=172800.0, interval_s=3600.0,
               min_safe_interval_s=14400.0, margin_s=-169200.0,
               p99_crosses_at="2026-12-03T05:00:00+00:00"),
        # on the fleet prior, no job: no duration, no interval, no margin
        volume("pvc-c_1", jobs="", p95_s=NAN, p99_s=NAN, interval_s=NAN,
               min_safe_interval_s=NAN, margin_s=NAN, duration_source="fleet_prior"))
    jobs = [job("daily", "0 0 * * *", to="17 1 * * *", now=0.0456, after=0.00321,
                reason="Offset by 17 min (shared target).", volumes=2, interval=86400.0,
                points=((43200.0, 0.09), (86400.0, 0.0456)),
                recovery={"points_now": 6.0, "points_after": 7.0, "gap_p95_now": 172800.0,
                          "gap_p95_after": 87000.0}),
            job("hourly", "0 * * * *")]
    summary = {"volumes": 3, "volumes_at_risk": 2, "conflicts_observed": 4,
               "conflicts_observed_by_kind": {"delete_blocked": 3, "create_blocked": 1,
                                              "pending_behind_deletion": 0},
               "conflicts_predicted": 3.26, "conflicts_predicted_range": [1.0, 7.0],
               "backups_week": 42, "failed_backups": 1, "skipped_runs_predicted": 1.04,
               "top_changes": ["RecurringJob daily: cron '0 0 * * *' -> '17 1 * * *'",
                               "pvc-b (2.0 d) outlasts its interval"],
               "over_target_after": ["pvc-b"],
               # 1,234 of 2,345 (thousands separators); a gap of 5.9 h against 60 min;
               # waits 6.5 min / 17 min; 1.5 GiB deferred
               "recovery": recovery(
                   intended=2345, completed=count(1234.0, 1250.0, 1200.0, 1300.0),
                   lost=count(1111.0, 1095.0, 1045.0, 1145.0),
                   delayed=count(171.0, 204.5, 164.0, 275.0, wait_p50_s=389.0,
                                 wait_p95_s=1015.0),
                   deferred=count(46.0, 86.0, 74.0, 105.0, bytes=1.5 * 2**30),
                   worst_gap={"volume": "pvc-b", "observed_s": 21145.0,
                              "predicted_lo_s": 16772.0, "predicted_hi_s": 25722.0,
                              "intended_s": 3600.0},
                   volumes_losing_points=2, outside_range=["pvc-a"]),
               "fit": {"conflicts": "more than predicted",
                       "causes": ["deletion durations come from the stated prior"],
                       "text": "9 lock conflicts observed, 1–7 predicted (95 %): more than "
                               "predicted; likely causes: deletion durations come from the "
                               "stated prior"}}
    rows = [recovery_row("pvc-b", points_observed=57.0, points_lo=54.0, points_hi=60.0,
                         lost_observed=111.0, lost_lo=108.0, lost_hi=114.0,
                         gap_max_observed=21145.0, gap_max_lo=16772.0, gap_max_hi=25722.0,
                         waited_observed=2.0, waited_lo=0.0, waited_hi=7.0,
                         wait_p95_observed=472.0),
            recovery_row("pvc-a", gap_p95_observed=9067.0, gap_p95_lo=7095.0,
                         gap_p95_hi=8906.0, deferred_observed=3.0, deferred_lo=4.0,
                         deferred_hi=10.0, outside="gap_p95, deferred")]
    changes = {
        "previous_week": "2026-W47", "newly_at_risk": ["pvc-b"],
        "no_longer_at_risk": ["pvc-d"], "new_volumes": ["pvc-c_1", "pvc-e"],
        "gone_volumes": [],
        "risk_moves": [{"volume": "pvc-a", "before": 0.01, "after": 0.0456, "change": 0.0356},
                       {"volume": "pvc-b", "before": 0.02, "after": 0.00999,
                        "change": -0.01001}],
        "cron_changes": [{"job": "daily", "before": "30 0 * * *", "after": "0 0 * * *"},
                         {"job": "hourly", "before": "15 * * * *", "after": "0 * * * *"}],
        "summary_before": {"volumes_at_risk": 1, "conflicts_observed": 2,
                           "conflicts_predicted": 2.0, "failed_backups": 0,
                           "skipped_runs_predicted": 0.0},
        "summary_now": {"volumes_at_risk": 2, "conflicts_observed": 4,
                        "conflicts_predicted": 3.26, "failed_backups": 1,
                        "skipped_runs_predicted": 1.04}}
    dq = quality(volumes_on_fleet_prior=["pvc-c_1", "pvc-e"],
                 records_skipped=["history.csv row 4: state Weird"],
                 records_with_warnings=["history.csv row 9: no size"],
                 fit_problems=["pvc-c_1: 2 backups"],
                 assumptions=["pvc-b: hourly", "pvc-e: no size"])
    return report(summary=summary, jobs=jobs, volumes=vols, changes=changes,
                  data_quality=dq, recovery_rows=rows)


def quiet_report() -> Report:
    """A week with nothing to do: one safe volume, one job to keep, no earlier report,
    no problem in the data."""
    summary = {"volumes": 1, "volumes_at_risk": 0, "conflicts_observed": 0,
               "conflicts_observed_by_kind": {}, "conflicts_predicted": 0.0,
               "conflicts_predicted_range": [0.0, 0.0], "backups_week": 7,
               "failed_backups": 0, "skipped_runs_predicted": 0.0, "top_changes": [],
               "over_target_after": [], "recovery": recovery(), "fit": FITS}
    return report(summary=summary, jobs=[job("hourly", "0 * * * *")],
                  volumes=volume_table(volume("pvc-q")), data_quality=quality())


CHARTS = {"risk-ranking": ("The fleet's risk ranking", b"png"),
          "timeline": ("Timeline [UTC]", b"\x89PNG")}
"""Two charts as render_charts gives them (their bytes need not be a real PNG here)."""


def test_md_escape_escapes_every_markdown_and_html_character_and_line_break():
    """Every character Markdown or HTML reads as syntax gets a backslash; a line break
    (CR, LF) becomes a space so a table cell stays one line."""
    assert md_escape(r"a\b`c*d_e{f}g[h]i(j)k#l+m-n.o!p|q<r>s~t&u") == (
        r"a\\b\`c\*d\_e\{f\}g\[h\]i\(j\)k\#l\+m\-n\.o\!p\|q\<r\>s\~t\&u")
    assert md_escape("x\r\ny\nz") == "x  y z"
    assert md_escape(12.5) == r"12\.5"


def test_code_keeps_a_code_span_on_one_line_and_closed():
    """In a code span a backtick would end it and a line break would start a block:
    backticks become quotes, line breaks spaces; the rest is left as written."""
    assert _code("0 0\r\n* * `x` <b>") == "0 0  * * 'x' <b>"


def test_slug_keeps_safe_names_and_hashes_the_others():
    """A name of safe characters is its own file stem; any other gets runs of unsafe
    characters replaced by one ``_``, is cut to 80 characters, and gets 6 hex digits of
    its SHA-1 so that two names never share a stem."""
    assert _slug("Pvc-A.1_b") == "Pvc-A.1_b"

    def sha(text: str) -> str:
        return hashlib.sha1(text.encode()).hexdigest()[:6]

    assert _slug("s3://bkp  x") == "s3_bkp_x-" + sha("s3://bkp  x")
    long = "v" * 100
    assert _slug(long) == "v" * 80 + "-" + sha(long)


# --- load_previous -----------------------------------------------------------------------

def test_load_previous_reads_the_latest_readable_earlier_week(tmp_path):
    """The previous report is the JSON of the latest week before this one; a later or
    the same week, a file not named like a report, an unreadable or broken one is
    passed over (the comparison is left out rather than guessed)."""
    def put(name: str, doc: object) -> None:
        (tmp_path / name).write_text(json.dumps(doc))

    put(f"{PREFIX}2026-W44.json", {"week": 44})
    put(f"{PREFIX}2026-W45.json", {"week": 45})
    (tmp_path / f"{PREFIX}2026-W46.json").write_text("{not json")        # broken
    (tmp_path / f"{PREFIX}2026-W47.json").mkdir()                        # unreadable
    put(f"{PREFIX}2026-W48.json", {"week": 48})                          # this week
    put(f"{PREFIX}2026-W49.json", {"week": 49})                          # later
    put(f"{PREFIX}2026-w47x.json", {"week": "odd"})                      # not a week
    put(f"{PREFIX}2026-W47-volumes.json", {"week": "csv"})
    put("other-2026-W47.json", {"week": "other"})
    assert load_previous(str(tmp_path), "2026-W48") == {"week": 45}
    assert load_previous(tmp_path, "2026-W45") == {"week": 44}
    assert load_previous(tmp_path, "2026-W44") is None
    assert load_previous(tmp_path / "missing", "2026-W48") is None


# --- JSON and CSV ------------------------------------------------------------------------

def test_to_json_is_the_reports_dict_in_order_valid_against_the_schema():
    """The JSON is ``Report.to_dict()`` indented by two spaces in its own key order,
    ending with a newline, and valid against report.schema.json."""
    r = main_report()
    text = to_json(r)
    doc = json.loads(text)
    jsonschema.validate(doc, SCHEMA)
    assert doc == json.loads(json.dumps(r.to_dict()))
    assert list(doc) == ["schema_version", "meta", "summary", "jobs", "volumes", "changes",
                         "data_quality", "detailed", "running_at_once", "trends",
                         "recovery_points"]
    assert [v["volume"] for v in doc["recovery_points"]] == ["pvc-b", "pvc-a"]
    assert doc["recovery_points"][1]["outside"] == "gap_p95, deferred"
    assert doc["recovery_points"][1]["wait_p95_observed"] is None  # (NaN: no wait)
    assert doc["summary"]["recovery"]["worst_gap"]["volume"] == "pvc-b"
    assert list(doc["meta"]) == list(META)
    assert text.startswith('{\n  "schema_version": 2,\n  "meta": {\n    "advisor_version": ')
    assert text.endswith("]\n}\n")
    # NaN would make invalid JSON: the missing figures of pvc-c_1 are null
    assert doc["volumes"][2]["p99_s"] is None and doc["volumes"][1]["p99_crosses_at"] == (
        "2026-12-03T05:00:00+00:00")
    jsonschema.validate(json.loads(to_json(quiet_report())), SCHEMA)


def test_to_json_refuses_a_nan_rather_than_writing_invalid_json():
    """A NaN the build let through is an error, never the ``NaN`` token JSON has not."""
    r = main_report()
    r.summary["conflicts_predicted"] = NAN
    with pytest.raises(ValueError, match="JSON compliant"):
        to_json(r)


def test_to_csv_holds_the_volume_table_and_the_jobs_without_their_curves():
    """``volumes``: the volume table as it is (no index column; a missing figure is an
    empty field); ``jobs``: one row per job, every field but the curve."""
    files = to_csv(main_report())
    assert list(files) == ["volumes", "jobs", "recovery"]
    rec = list(csv.reader(io.StringIO(files["recovery"])))
    assert rec[0] == list(RECOVERY_COLUMNS) and [r[0] for r in rec[1:]] == ["pvc-b", "pvc-a"]
    assert rec[1][RECOVERY_COLUMNS.index("lost_observed")] == "111.0"
    assert rec[2][-1] == "gap_p95, deferred" and rec[1][-1] == ""
    vols = list(csv.reader(io.StringIO(files["volumes"])))
    assert vols[0] == list(VOLUME_COLUMNS)
    assert vols[2] == ["pvc-b", "daily, hourly", "True", "0.00999", "0.0005", "0.0501",
                       "1234.5", "0.06", "1", "0", "89.6", "172800.0", "3600.0",
                       "14400.0", "-169200.0", "2026-12-03 05:00:00+00:00", "own_history"]
    assert vols[3][0] == "pvc-c_1" and vols[3][10:16] == ["", "", "", "", "", ""]
    assert len(vols) == 4
    jobs = list(csv.reader(io.StringIO(files["jobs"])))
    assert jobs[0] == ["job", "kind", "current_cron", "recommended_cron", "changed",
                       "p_per_run_now", "p_per_run_after", "reason", "volumes",
                       "current_interval_s", "recommended_interval_s", "yaml", "patch",
                       "concurrency", "split_job", "split_cron", "split_volumes",
                       "recovery_points_now", "recovery_points_after",
                       "recovery_gap_p95_now", "recovery_gap_p95_after"]
    assert jobs[1][:11] == ["daily", "interval", "0 0 * * *", "17 1 * * *", "True", "0.0456",
                            "0.00321", "Offset by 17 min (shared target).", "2", "86400.0",
                            "86400.0"]
    assert jobs[1][11].startswith("kind: RecurringJob\nmetadata:\n")
    assert jobs[1][-4:] == ["6.0", "7.0", "172800.0", "87000.0"]
    assert jobs[2] == ["hourly", "keep", "0 * * * *", "0 * * * *", "False", "", "",
                       "Meets the target.", "1", "3600.0", "3600.0", "", "", "", "", "",
                       "", "", "", "", ""]
    assert len(jobs) == 3


# --- Markdown ----------------------------------------------------------------------------

MAIN_MD = [
    r"# Longhorn backup report 2026\-W48: cluster eu\_west\-1",
    "",
    # the dates are the advisor's own, cut to the day; 0.01 -> 1 %
    r"Week 2026-11-23 to 2026-11-30 (UTC); Longhorn 1\.10 rules; target 1 % conflict "
    r"per run; advisor 0\.1\.0.",
    "",
    "## Summary",
    "",
    # recovery points first: thousands separators, durations as a person reads them
    # (21145 s -> 5.9 h, 16772 s -> 4.7 h, 389 s -> 6.5 min, 1015 s -> 17 min)
    r"- **1,234 / 2,345** recovery points completed this week \(the crons promise 2,345; "
    r"predicted 1,200–1,300\)",
    r"- **1,111** recovery points lost \(skipped runs, failed backups\) on 2 volumes; "
    "predicted 1,045–1,145",
    r"- **5\.9 h** longest gap between backups: pvc\-b, intended every 60 min \(predicted "
    r"4\.7 h–7\.1 h\)",
    r"- **171** backups delayed behind a deletion, waiting 6\.5 min \(p50\) / 17 min "
    r"\(p95\); predicted 164–275",
    r"- **46** cleanups deferred \(a deletion retried: up to 1\.5 GiB kept beyond retain\); "
    "predicted 74–105",
    "",
    r"9 lock conflicts observed, 1–7 predicted \(95 %\): more than predicted; likely "
    "causes: deletion durations come from the stated prior",
    "",
    "- **2 of 3 volumes at risk**",
    # 3.26 -> 3.3 to one decimal; the range's ends to none
    "- lock conflicts observed this week: **4**; predicted 3.3 (95 % range of a week's "
    "count 1–7)",
    "- failed backups: 1 of 42",
    "- skipped runs predicted: 1.0 a week",
    r"- over the target with the changes below applied: 1 of 3 (pvc\-b)",
    "",
    "### The three most important changes",
    "",
    r"1. RecurringJob daily: cron '0 0 \* \* \*' \-\> '17 1 \* \* \*'",
    r"2. pvc\-b \(2\.0 d\) outlasts its interval",
    "",
    "## Recovery points",
    "",
    "The 25 volumes that lost the most (all are in the JSON and CSV): observed, and in "
    "brackets the central 95 % of the predicted weeks.",
    "",
    "| volume | intended every | completed | lost | gap p95 | longest gap | delayed | wait p95 "
    "| cleanups deferred | outside range |",
    "|---|---|---|---|---|---|---|---|---|---|",
    # in the order given (the build sorts): observed [predicted range]; NaN -> n/a
    r"| pvc\-b | 60 min | 57 [54–60] | 111 [108–114] | 60 min [60 min–60 min] | 5.9 h "
    "[4.7 h–7.1 h] | 2 [0–7] | 7.9 min | 0 [0–0] |  |",
    r"| pvc\-a | 60 min | 168 [168–168] | 0 [0–0] | 2.5 h [2 h–2.5 h] | 60 min "
    r"[60 min–60 min] | 0 [0–0] | n/a | 3 [4–10] | gap\_p95, deferred |",
    "",
    "## RecurringJobs",
    "",
    "### daily",
    "",
    "Change cron `0 0 * * *` to `17 1 * * *`.",
    "",
    r"Offset by 17 min \(shared target\)\.",
    "",
    # 172800 s -> 2 d, 87000 s -> 24.2 h
    r"Recovery points: 6 → 7 a week per volume \(median, predicted\); worst p95 gap 2 d → "
    r"24\.2 h\.",
    "",
    "```yaml",
    "kind: RecurringJob",
    "metadata:",
    "  name: daily",
    "spec:",
    "  cron: 17 1 * * *",
    "```",
    "",
    "```sh",
    "kubectl -n longhorn-system patch recurringjob daily",
    "```",
    "",
    "### hourly",
    "",
    "Keep `0 * * * *`.",
    "",
    r"Meets the target\.",
    "",
    "## Volumes by risk",
    "",
    "P(conflict)/run: ± is two standard errors (about a 95 % interval), in percentage "
    "points.",
    "",
    "| volume | jobs | P(conflict)/run | P(conflict)/week | conflicts/week | skipped/week "
    "| observed | p95 | p99 | interval | min safe interval | margin | p99 reaches interval |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    r"| pvc\-a | daily | 4.56 % ± 0.246 | 27.7 % | 0.313 | 0 | 3 | 30 min | 1.5 h | 24 h "
    "| 24 h | 22.5 h |  |",
    r"| pvc\-b | daily, hourly | 0.999 % ± 0.1 | 5.01 % | 1.23e+03 | 0.06 | 1 | 90 s | 2 d "
    "| 60 min | 4 h | -47 h | 2026-12-03 |",
    r"| pvc\-c\_1 |  | 0 % ± 0 | 0 % | 0 | 0 | 0 | n/a | n/a | n/a | n/a | n/a |  |",
    "",
    "## Changes since the previous report",
    "",
    r"Compared with 2026\-W47.",
    r"- newly at risk: pvc\-b",
    r"- no longer at risk: pvc\-d",
    r"- new volumes: pvc\-c\_1, pvc\-e",
    r"- pvc\-a: conflict per run 1 % → 4.56 %",
    r"- pvc\-b: conflict per run 2 % → 0.999 %",
    "- RecurringJob daily: cron `30 0 * * *` → `0 0 * * *`",
    "- RecurringJob hourly: cron `15 * * * *` → `0 * * * *`",
    "- volumes at risk 1 → 2; conflicts observed 2 → 4",
    "",
    "## Charts",
    "",
    "![The fleet's risk ranking](c/risk-ranking.png)",
    "",
    r"![Timeline \[UTC\]](c/timeline.png)",
    "",
    "## Data quality and assumptions",
    "",
    '- Backups in the history: 120 (3 censored: still running or failed, kept as "at '
    'least this long")',
    r"- History from 2026\-10\-01T00:00:00\+00:00 to 2026\-11\-30T01:00:00\+00:00",
    r"- Volumes on the fleet prior (too little history of their own): pvc\-c\_1, pvc\-e",
    "- Deletion durations: no deletion was measured: the stated prior",
    r"- Longhorn rules assumed: 1\.10",
    "- Time zone of schedules: UTC",
    r"- Assumed: pvc\-b: hourly",
    r"- Assumed: pvc\-e: no size",
    r"- Skipped: history\.csv row 4: state Weird",
    r"- Warning: history\.csv row 9: no size",
    r"- Fit: pvc\-c\_1: 2 backups",
]


def test_markdown_of_a_week_with_changes_reads_section_by_section():
    """The whole Markdown document of the main report: every figure formatted, every
    text escaped, the changed job's YAML and patch, the unchanged job kept, what
    changed since last week (the empty list of volumes gone left out), the charts as
    images and every data-quality item."""
    md = to_markdown(main_report(), {"risk-ranking": ("The fleet's risk ranking",
                                                      "c/risk-ranking.png"),
                                     "timeline": ("Timeline [UTC]", "c/timeline.png")})
    assert md == "\n".join(MAIN_MD) + "\n"


def test_markdown_of_a_quiet_week_says_so():
    """No change to make, no earlier report, no chart, no volume on the prior: each
    section says so instead of showing nothing."""
    md = to_markdown(quiet_report(), {})
    assert md.endswith("\n") and not md.endswith("\n\n")
    lines = md.split("\n")
    start = lines.index("### The three most important changes")
    assert lines[start:start + 9] == ["### The three most important changes", "", "None.", "",
                                      "## Recovery points", "", lines[start + 6], "",
                                      "No volume."]
    assert lines[lines.index("## Summary") + 2:lines.index("## Summary") + 9] == [
        r"- **7 / 7** recovery points completed this week \(the crons promise 7; predicted "
        "7–7\\)",
        r"- **0** recovery points lost \(skipped runs, failed backups\) on 0 volumes; "
        "predicted 0–0",
        # no worst gap, no wait: those parts are left out
        "- **0** backups delayed behind a deletion; predicted 0–0",
        r"- **0** cleanups deferred \(a deletion retried: up to 0 B kept beyond retain\); "
        "predicted 0–0", "",
        r"0 lock conflicts observed, 0–0 predicted \(95 %\): the model fits the week", ""]
    assert lines[lines.index("### hourly") + 2] == "Keep `0 * * * *`."
    assert "```yaml" not in lines and "```sh" not in lines
    start = lines.index("## Changes since the previous report")
    assert lines[start:start + 7] == [
        "## Changes since the previous report", "",
        "No earlier report in the output folder: nothing to compare with.", "",
        "## Charts", "", "## Data quality and assumptions"]
    assert "- Volumes on the fleet prior (too little history of their own): none" in lines
    assert lines[-2] == "- Time zone of schedules: UTC"
    assert "- skipped runs predicted: 0.0 a week" in lines


def test_markdown_crons_stay_in_their_code_spans():
    """A cron holding a backtick or a line break stays one closed code span."""
    r = dataclasses.replace(quiet_report(), jobs=[
        job("odd", "0 0\n* * `x`", to="5 0\r\n* * *", now=0.5, after=0.001)])
    lines = to_markdown(r, {}).split("\n")
    assert "Change cron `0 0 * * 'x'` to `5 0  * * *`." in lines


def test_markdown_of_a_changed_job_without_yaml_has_empty_blocks():
    """A changed job with no YAML or patch made gets empty code blocks, never "None"."""
    r = dataclasses.replace(quiet_report(), jobs=[dataclasses.replace(
        job("daily", "0 0 * * *", to="5 0 * * *"), yaml=None, patch=None)])
    lines = to_markdown(r, {}).split("\n")
    start = lines.index("```yaml")
    assert lines[start:start + 7] == ["```yaml", "", "```", "", "```sh", "", "```"]


def test_markdown_changes_list_at_most_ten_moves_and_nothing_without_a_previous_report():
    """What changed: at most the ten largest moves of risk; an empty comparison reads as
    no earlier report."""
    assert _md_changes(None) == _md_changes({}) == [
        "No earlier report in the output folder: nothing to compare with."]
    c = dict(main_report().changes, gone_volumes=["pvc-z"], risk_moves=[
        {"volume": f"pvc-{i:02d}", "before": 0.0, "after": 0.5, "change": 0.5}
        for i in range(11)])
    out = _md_changes(c)
    assert r"- volumes gone: pvc\-z" in out
    moves = [line for line in out if "conflict per run" in line]
    assert moves[0] == r"- pvc\-00: conflict per run 0 % → 50 %"
    assert len(moves) == 10 and moves[-1].startswith(r"- pvc\-09:")


def test_markdown_data_quality_shows_fifty_problems_of_each_kind_and_counts_the_rest():
    """Fifty skipped records, warnings or fit problems are listed; beyond that one line
    says how many more the JSON holds."""
    q = quality(records_skipped=[f"s{i}" for i in range(51)],
                records_with_warnings=[f"w{i}" for i in range(50)],
                fit_problems=["f0"])
    out = _md_quality(q)
    skipped = [line for line in out if line.startswith("- Skipped: ")]
    assert skipped[0] == "- Skipped: s0" and skipped[-1] == "- Skipped: s49"
    assert len(skipped) == 50
    assert out[out.index("- Skipped: s49") + 1] == "- ... 1 more (skipped; all in the JSON)"
    assert len([line for line in out if line.startswith("- Warning: ")]) == 50
    assert out[out.index("- Warning: w49") + 1] == "- Fit: f0"
    assert out[-1] == "- Fit: f0"
    assert not [line for line in out if "more (" in line and "skipped" not in line]


# --- HTML --------------------------------------------------------------------------------

def sections(html: str) -> dict[str, str]:
    """The page's sections by id: each from its ``<h2 id=...>`` to the next one (the
    last to the end of the page); ``"head"``: what comes before the first."""
    parts = re.split(r'(?=<h2 id=")', html)
    out = {"head": parts[0]}
    for part in parts[1:]:
        out[re.match(r'<h2 id="([^"]+)"', part).group(1)] = part
    return out


def test_html_head_names_the_week_cluster_and_target():
    """The title, heading and lead paragraph: week, cluster, the week's dates, Longhorn
    rules, the target as a percentage, the advisor's version and when it ran (to the
    minute)."""
    s = sections(to_html(main_report(), {}))
    assert list(s) == ["head", "summary", "recovery", "jobs", "volumes", "changes", "charts",
                       "quality"]
    assert s["head"].startswith("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n")
    assert "<title>Longhorn backup report 2026-W48: eu_west-1</title>" in s["head"]
    assert s["head"][s["head"].index("<h1>"):] == (
        "<h1>Longhorn backup report 2026-W48: cluster eu_west-1</h1>\n"
        '<p class="muted">Week 2026-11-23 to 2026-11-30 (UTC);\n'
        "Longhorn 1.10 rules; target 1 % conflict\n"
        "per run; advisor 0.1.0, generated 2026-11-30T06:07 UTC.\n"
        "The advisor only reads the cluster: the changes below are for you to review and "
        "apply.</p>\n\n")


def test_html_summary_cards_and_top_changes():
    """The recovery-point cards lead (completed of promised, lost, the longest gap,
    delayed, deferred, each with its predicted range), then whether the week's
    conflicts fit the prediction (marked when not), then the risk cards (at risk of all,
    observed, predicted with its range, failed of all, skipped runs) and the top changes
    as a numbered list, escaped."""
    s = sections(to_html(main_report(), {}))
    assert s["summary"] == (
        '<h2 id="summary">Summary</h2>\n'
        '<div class="cards">\n'
        '  <div class="card"><b>1,234 / 2,345</b>recovery points completed this week (the '
        "crons promise 2,345; predicted 1,200–1,300)</div>\n"
        '  <div class="card"><b>1,111</b>recovery points lost (skipped runs, failed backups) '
        "on 2 volumes; predicted 1,045–1,145</div>\n"
        '  <div class="card"><b>5.9 h</b>longest gap between backups: pvc-b, intended every '
        "60 min (predicted 4.7 h–7.1 h)</div>\n"
        '  <div class="card"><b>171</b>backups delayed behind a deletion, waiting 6.5 min '
        "(p50) / 17 min (p95); predicted 164–275</div>\n"
        '  <div class="card"><b>46</b>cleanups deferred (a deletion retried: up to 1.5 GiB '
        "kept beyond retain); predicted 74–105</div>\n"
        "</div>\n"
        '<p class="warn">9 lock conflicts observed, 1–7 predicted (95 %): more than '
        "predicted; likely causes: deletion durations come from the stated prior.</p>\n"
        '<div class="cards">\n'
        '  <div class="card"><b>2 / 3</b>volumes at risk</div>\n'
        '  <div class="card"><b>4</b>lock conflicts observed this week</div>\n'
        '  <div class="card"><b>3.3</b>predicted (95 % range\n'
        "    1–7)</div>\n"
        '  <div class="card"><b>1</b>failed backups of 42</div>\n'
        '  <div class="card"><b>1.0</b>skipped runs a week (predicted)</div>\n'
        '  <div class="card"><b>1 / 3</b>over the target with the changes below applied'
        '</div>\n'
        "</div>\n"
        "<h3>The three most important changes</h3>\n"
        "<ol><li>RecurringJob daily: cron &#39;0 0 * * *&#39; -&gt; &#39;17 1 * * *&#39;</li>"
        "<li>pvc-b (2.0 d) outlasts its interval</li></ol>\n\n")
    quiet = sections(to_html(quiet_report(), {}))["summary"]
    assert '<p>0 lock conflicts observed, 0–0 predicted (95 %): the model fits the week.</p>' \
        in quiet and "longest gap" not in quiet and "waiting" not in quiet


def test_html_recovery_table_marks_the_figures_outside_their_range():
    """One row per volume in the order given: observed [predicted range], completed of
    promised, a missing wait as n/a, and each figure observed outside its range (the
    row's ``outside``) in red, the others not."""
    s = sections(to_html(main_report(), {}))["recovery"]
    rows = re.findall(r"<tr><td class=\"name\">.*?</tr>", s, re.S)
    assert [re.sub(r"\s*\n\s*", "", r) for r in rows] == [
        '<tr><td class="name">pvc-b</td><td>60 min</td><td>57 of 168 [54–60]</td>'
        "<td>111 [108–114]</td><td>60 min</td><td>60 min [60 min–60 min]</td>"
        "<td>5.9 h [4.7 h–7.1 h]</td><td>2 [0–7]</td><td>7.9 min</td><td>0 [0–0]</td></tr>",
        '<tr><td class="name">pvc-a</td><td>60 min</td><td>168 of 168 [168–168]</td>'
        "<td>0 [0–0]</td><td>60 min</td><td class=\"warn\">2.5 h [2 h–2.5 h]</td>"
        "<td>60 min [60 min–60 min]</td><td>0 [0–0]</td><td>n/a</td>"
        '<td class="warn">3 [4–10]</td></tr>']
    assert "The 2 volumes that lost the most are shown\n(all 2 are in the JSON and CSV)" in s


def test_html_jobs_show_the_change_to_make_and_the_job_to_keep():
    """A changed job: both crons, its volumes, the risk now → after, why, and the YAML
    and patch; an unchanged job: its cron, "n/a" for a risk not computed, no YAML."""
    s = sections(to_html(main_report(), {}))
    assert s["jobs"] == (
        '<h2 id="jobs">RecurringJobs</h2>\n'
        "<h3>daily</h3>\n"
        "<p>Change cron <code>0 0 * * *</code> to\n"
        "<code>17 1 * * *</code> (2 volumes; worst volume's conflict per run 4.56 % → "
        "0.321 %).</p>\n"
        '<p class="muted">Offset by 17 min (shared target).</p>\n'
        "<p>Recovery points: 6 → 7 a week per volume (median, predicted); worst p95 gap "
        "2 d → 24.2 h.</p>\n"
        "<pre>kind: RecurringJob\nmetadata:\n  name: daily\nspec:\n  cron: 17 1 * * *</pre>\n"
        "<pre>kubectl -n longhorn-system patch recurringjob daily</pre>\n"
        "<h3>hourly</h3>\n"
        "<p>Keep <code>0 * * * *</code> (1 volumes; worst volume's conflict per run n/a)."
        "</p>\n"
        '<p class="muted">Meets the target.</p>\n\n')


def test_html_volume_table_formats_every_figure():
    """One row per volume in the table's order, the risky ones marked; each figure in
    its format (see main_report for the arithmetic), "n/a" where missing, the date the
    p99 reaches the interval or nothing."""
    s = sections(to_html(main_report(), {}))["volumes"]
    head, body = s.split("<tbody>\n")
    assert re.findall(r"<th[^>]*>([^<]*)</th>", head) == [
        "volume", "jobs", "P(conflict) / run", "P(conflict) / week", "conflicts / week",
        "skipped runs / week", "observed this week", "p95", "p99", "interval",
        "min safe interval", "margin", "p99 reaches interval"]
    assert body == (
        '<tr class="risk"><td class="text name">pvc-a</td>\n'
        '<td class="text">daily</td><td>4.56 % ± 0.246</td>\n'
        "<td>27.7 %</td><td>0.313</td>\n"
        "<td>0</td><td>3</td>\n"
        "<td>30 min</td><td>1.5 h</td><td>24 h</td>\n"
        "<td>24 h</td><td>22.5 h</td><td></td></tr>\n"
        '<tr class="risk"><td class="text name">pvc-b</td>\n'
        '<td class="text">daily, hourly</td><td>0.999 % ± 0.1</td>\n'
        "<td>5.01 %</td><td>1.23e+03</td>\n"
        "<td>0.06</td><td>1</td>\n"
        "<td>90 s</td><td>2 d</td><td>60 min</td>\n"
        "<td>4 h</td><td>-47 h</td><td>2026-12-03</td></tr>\n"
        '<tr><td class="text name">pvc-c_1</td>\n'
        '<td class="text"></td><td>0 % ± 0</td>\n'
        "<td>0 %</td><td>0</td>\n"
        "<td>0</td><td>0</td>\n"
        "<td>n/a</td><td>n/a</td><td>n/a</td>\n"
        "<td>n/a</td><td>n/a</td><td></td></tr>\n"
        "</tbody>\n</table>\n\n")


def test_html_changes_since_the_previous_report():
    """The summary then and now, each non-empty list of volumes, the moves of risk and
    the crons changed; the empty list (volumes gone) is left out."""
    s = sections(to_html(main_report(), {}))
    assert s["changes"] == (
        '<h2 id="changes">Changes since the previous report</h2>\n'
        "<p>Compared with 2026-W47: volumes at risk 1\n"
        "→ 2; lock conflicts observed\n"
        "2 → 4.</p>\n"
        "<ul>\n"
        "<li>Newly at risk: pvc-b</li><li>No longer at risk: pvc-d</li>"
        "<li>New volumes: pvc-c_1, pvc-e</li>"
        "<li>pvc-a: conflict per run 1 % → 4.56 %</li>"
        "<li>pvc-b: conflict per run 2 % → 0.999 %</li>"
        "<li>RecurringJob daily: cron <code>30 0 * * *</code> → <code>0 0 * * *</code></li>"
        "<li>RecurringJob hourly: cron <code>15 * * * *</code> → <code>0 * * * *</code></li>"
        "</ul>\n\n")


def test_html_charts_are_inline_images_with_their_titles():
    """Each chart is a figure anchored by its stem, its PNG inline as a base64 data URI
    (b"png" is "cG5n"), its title as alt text and caption, in the order given."""
    s = sections(to_html(main_report(), CHARTS))
    assert s["charts"] == (
        '<h2 id="charts">Charts</h2>\n'
        '<figure id="chart-risk-ranking"><img src="data:image/png;base64,cG5n" '
        'alt="The fleet&#39;s risk ranking"><figcaption>The fleet&#39;s risk ranking'
        "</figcaption></figure>\n"
        '<figure id="chart-timeline"><img src="data:image/png;base64,iVBORw==" '
        'alt="Timeline [UTC]"><figcaption>Timeline [UTC]</figcaption></figure>\n\n')


def test_html_data_quality_lists_every_item():
    """The history's size and span, the volumes on the prior, the assumptions and each
    problem of the data, by kind."""
    s = sections(to_html(main_report(), {}))
    assert s["quality"] == (
        '<h2 id="quality">Data quality and assumptions</h2>\n'
        "<ul>\n"
        '<li>Backups in the history: 120 (3 censored: still running or failed, kept as "at '
        'least this long")</li>\n'
        "<li>History from 2026-10-01T00:00:00+00:00 to 2026-11-30T01:00:00+00:00</li>\n"
        "<li>Volumes on the fleet prior (too little history of their own): pvc-c_1, "
        "pvc-e</li>\n"
        "<li>Deletion durations: no deletion was measured: the stated prior</li>\n"
        "<li>Longhorn rules assumed: 1.10</li>\n"
        "<li>Time zone of schedules: UTC</li>\n"
        "<li>Assumed: pvc-b: hourly</li><li>Assumed: pvc-e: no size</li>"
        "<li>Skipped: history.csv row 4: state Weird</li>"
        "<li>Warning: history.csv row 9: no size</li>"
        "<li>Fit: pvc-c_1: 2 backups</li>"
        "</ul>\n</body>\n</html>")


def test_html_of_a_quiet_week_says_so():
    """Nothing to change, no earlier report, no chart, no volume on the prior, no
    problem: each section says so, or is empty."""
    s = sections(to_html(quiet_report(), {}))
    assert s["summary"].endswith(
        "<h3>The three most important changes</h3>\n"
        "<p>None: every schedule meets the target.</p>\n")
    assert '<div class="card"><b>0.0</b>skipped runs a week' in s["summary"]
    assert "<ol>" not in s["summary"]
    assert s["jobs"].endswith("<p>Keep <code>0 * * * *</code> (1 volumes; worst volume's "
                              'conflict per run n/a).</p>\n<p class="muted">Meets the '
                              "target.</p>\n\n")
    assert "<pre>" not in s["jobs"]
    assert '<tr><td class="text name">pvc-q</td>' in s["volumes"]
    assert s["changes"] == (
        '<h2 id="changes">Changes since the previous report</h2>\n'
        "<p>No earlier report in the output folder: nothing to compare with.</p>\n\n")
    assert s["charts"] == '<h2 id="charts">Charts</h2>\n\n'
    assert s["quality"].endswith(
        "<li>Volumes on the fleet prior (too little history of their own): none</li>\n"
        "<li>Deletion durations: no deletion was measured: the stated prior</li>\n"
        "<li>Longhorn rules assumed: 1.10</li>\n"
        "<li>Time zone of schedules: UTC</li>\n"
        "</ul>\n</body>\n</html>")


def test_html_lists_at_most_ten_moves_of_risk():
    """At most the ten largest moves of risk (the JSON holds them all)."""
    r = main_report()
    r.changes["risk_moves"] = [{"volume": f"pvc-{i:02d}", "before": 0.0, "after": 0.5,
                                "change": 0.5} for i in range(11)]
    s = sections(to_html(r, {}))
    moves = re.findall(r"<li>(pvc-\d+): conflict per run 0 % → 50 %</li>", s["changes"])
    assert moves == [f"pvc-{i:02d}" for i in range(10)]


@pytest.mark.parametrize(("counts", "after"), [
    ((51, 50, 51), {"Skipped: s49": "<li>... 1 more (skipped; all in the JSON)</li><li>W",
                    "Warning: w49": "<li>Fit: f0</li>",
                    "Fit: f49": "<li>... 1 more (fit; all in the JSON)</li></ul>"}),
    ((50, 51, 50), {"Skipped: s49": "<li>Warning: w0</li>",
                    "Warning: w49": "<li>... 1 more (warning; all in the JSON)</li><li>F",
                    "Fit: f49": "</ul>"}),
])
def test_html_lists_fifty_problems_of_each_kind_and_counts_the_rest(counts, after):
    """Fifty skipped records, warnings or fit problems are listed, in order; beyond that
    one item says how many more the JSON holds (as the Markdown does)."""
    r = main_report()
    skipped, warnings, fits = counts
    r.data_quality.update(records_skipped=[f"s{i}" for i in range(skipped)],
                          records_with_warnings=[f"w{i}" for i in range(warnings)],
                          fit_problems=[f"f{i}" for i in range(fits)])
    q = sections(to_html(r, {}))["quality"]
    for kind, prefix, n in (("Skipped", "s", skipped), ("Warning", "w", warnings),
                            ("Fit", "f", fits)):
        items = re.findall(rf"<li>{kind}: ({prefix}\d+)</li>", q)
        assert items == [f"{prefix}{i}" for i in range(min(n, 50))]
    for item, text in after.items():
        assert f"<li>{item}</li>{text}" in q
    assert q.count(" more (") == sum(n > 50 for n in counts)


def test_html_shows_the_volumes_gone_and_a_missing_error_bar():
    """The list of volumes gone, and a risk whose standard error is missing: "n/a" for
    the error bar, the risk itself still shown."""
    r = main_report()
    r.changes.update(gone_volumes=["pvc-y", "pvc-z"], newly_at_risk=[], new_volumes=[],
                     no_longer_at_risk=[], risk_moves=[], cron_changes=[])
    vols = r.volumes.copy()
    vols.loc[0, "p_conflict_per_run_se"] = NAN
    s = sections(to_html(dataclasses.replace(r, volumes=vols), {}))
    assert "<ul>\n<li>Volumes gone: pvc-y, pvc-z</li></ul>\n" in s["changes"]
    assert "<td>4.56 % ± n/a</td>" in s["volumes"]


HOSTILE = "<i>&'\""


def hostile(text: object) -> object:
    """``text`` with markup around it (any other value as it is)."""
    return f"{HOSTILE}{text}</i>" if isinstance(text, str) else text


def test_html_shows_every_string_as_text_never_markup():
    """Every string the page shows, the cluster's and the advisor's alike (names, crons,
    reasons, YAML, the previous report's JSON read back from the output folder, the data
    problems, chart stems and titles), is escaped: markup in any of them stays text."""
    r = main_report()
    vols = r.volumes.assign(volume=r.volumes["volume"].map(hostile),
                            jobs=r.volumes["jobs"].map(hostile))
    jobs = [dataclasses.replace(j, **{f.name: hostile(getattr(j, f.name))
                                      for f in dataclasses.fields(j) if f.name != "curve"})
            for j in r.jobs]

    def deep(x):
        if isinstance(x, dict):
            return {k: deep(v) for k, v in x.items()}
        if isinstance(x, list):
            return [deep(v) for v in x]
        return hostile(x)

    changes = deep(r.changes)
    changes["summary_before"] = {k: hostile(str(v)) for k, v in
                                 changes["summary_before"].items()}
    bad = dataclasses.replace(r, meta=deep(r.meta), jobs=jobs, volumes=vols,
                              summary=deep(r.summary), changes=changes,
                              data_quality=deep(r.data_quality))
    html = to_html(bad, {hostile("stem"): (hostile("title"), b"png")})
    assert "<i>" not in html and "</i>" not in html and "'\"" not in html
    escaped = "&lt;i&gt;&amp;&#39;&#34;"
    for what in ("eu_west-1", "2026-W48", "2026-W47", "0.1.0", "pvc-c_1", "daily, hourly",
                 "0 0 * * *", "17 1 * * *", "30 0 * * *", "Meets the target.", "stem",
                 "title", "1", "2", "pvc-d", "pvc-b: hourly", "history.csv row 4: state Weird",
                 "UTC"):
        assert f"{escaped}{what}&lt;/i&gt;" in html, what


def test_html_refuses_a_report_missing_a_field():
    """A field the template needs and the report lacks is an error, not a blank."""
    r = main_report()
    del r.data_quality["schedule_time_zone"]
    with pytest.raises(jinja2.UndefinedError):
        to_html(r, {})


# --- write_report ------------------------------------------------------------------------

def test_write_report_writes_each_format_beside_and_renames(tmp_path):
    """Every format by default into a folder made with its parents: the charts' PNGs in
    a folder the Markdown links to, then the Markdown, HTML, JSON and the three CSVs, each
    what its renderer gives; no temporary file is left, and a second run replaces the
    first."""
    r = main_report()
    out = tmp_path / "a" / "b"
    charts_dir = out / f"{BASE}-charts"
    expected = [charts_dir / "risk-ranking.png", charts_dir / "timeline.png",
                out / f"{BASE}.md", out / f"{BASE}.html", out / f"{BASE}.json",
                out / f"{BASE}-volumes.csv", out / f"{BASE}-jobs.csv",
                out / f"{BASE}-recovery.csv"]
    for _ in range(2):
        assert write_report(r, str(out), charts=CHARTS) == expected
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{BASE}-charts", f"{BASE}.md", f"{BASE}.html", f"{BASE}.json",
         f"{BASE}-volumes.csv", f"{BASE}-jobs.csv", f"{BASE}-recovery.csv"])
    assert sorted(p.name for p in charts_dir.iterdir()) == ["risk-ranking.png", "timeline.png"]
    assert expected[0].read_bytes() == b"png" and expected[1].read_bytes() == b"\x89PNG"
    assert expected[2].read_text() == to_markdown(r, {
        "risk-ranking": ("The fleet's risk ranking", f"{BASE}-charts/risk-ranking.png"),
        "timeline": ("Timeline [UTC]", f"{BASE}-charts/timeline.png")})
    assert expected[3].read_text() == to_html(r, CHARTS)
    assert expected[4].read_text() == to_json(r)
    files = to_csv(r)
    assert expected[5].read_text() == files["volumes"]
    assert expected[6].read_text() == files["jobs"]
    assert expected[7].read_text() == files["recovery"]
    assert FORMATS == ("html", "md", "json", "csv")


def test_write_report_draws_no_chart_for_json_and_csv(tmp_path):
    """JSON and CSV need no chart: none is drawn (``on_chart`` never hears of one) and
    no chart folder is made."""
    drawn: list[str] = []
    written = write_report(main_report(), tmp_path, ("csv", "json"), on_chart=drawn.append)
    assert written == [tmp_path / f"{BASE}.json", tmp_path / f"{BASE}-volumes.csv",
                       tmp_path / f"{BASE}-jobs.csv", tmp_path / f"{BASE}-recovery.csv"]
    assert drawn == [] and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{BASE}{x}" for x in (".json", "-volumes.csv", "-jobs.csv", "-recovery.csv"))


def test_write_report_html_only_writes_no_markdown_nor_png(tmp_path):
    """HTML holds its charts inline: no PNG file, no Markdown."""
    assert write_report(main_report(), tmp_path, ["html"], charts=CHARTS) == [
        tmp_path / f"{BASE}.html"]
    assert [p.name for p in tmp_path.iterdir()] == [f"{BASE}.html"]


def test_write_report_refuses_an_unknown_format_before_writing(tmp_path):
    """An unknown format is refused, naming the unknown ones and the known ones, before
    anything is made."""
    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        write_report(main_report(), out, ["html", "pdf", "docx"], charts=CHARTS)
    assert str(err.value) == ("unknown format(s) ['docx', 'pdf']; choose from html, md, "
                              "json, csv")
    assert not out.exists()


# --- charts ------------------------------------------------------------------------------

def empty_report() -> Report:
    """A cluster with no volume, job or operation: each chart says "no data"."""
    return dataclasses.replace(quiet_report(), jobs=[], volumes=volume_table())


EMPTY_TITLES = ["The fleet's risk ranking", "The week's operations, riskiest volumes",
                "Backups running at once, target default"]
"""The charts of a cluster with nothing: with no operation, the concurrency chart is the
"default" target's."""


def test_write_report_draws_the_charts_markdown_needs_and_links_them(tmp_path):
    """Markdown without charts given: they are drawn (``on_chart`` told each title in
    turn), written as PNG files and linked from the Markdown."""
    drawn: list[str] = []
    written = write_report(empty_report(), tmp_path, ["md"], on_chart=drawn.append)
    assert drawn == EMPTY_TITLES
    folder = tmp_path / f"{BASE}-charts"
    assert written == [folder / "risk-ranking.png", folder / "timeline.png",
                       folder / "running-at-once-default.png", tmp_path / f"{BASE}.md"]
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in written[:3])
    md = written[3].read_text()
    assert (f"![Backups running at once, target default]({BASE}-charts/"
            "running-at-once-default.png)") in md


def test_write_report_draws_the_charts_html_needs_inline(tmp_path):
    """HTML without charts given: they are drawn and shown inline, no PNG file
    written."""
    drawn: list[str] = []
    written = write_report(empty_report(), tmp_path, ["html"], on_chart=drawn.append)
    assert drawn == EMPTY_TITLES and written == [tmp_path / f"{BASE}.html"]
    html = written[0].read_text()
    assert re.findall(r'<figure id="chart-([^"]+)"><img src="data:image/png;base64,iVBORw0K'
                      r'GgoAAAANSUhEUg[^"]+" alt="([^"]+)">', html) == [
        ("risk-ranking", "The fleet&#39;s risk ranking"),
        ("timeline", "The week&#39;s operations, riskiest volumes"),
        ("running-at-once-default", "Backups running at once, target default")]


def chart_report() -> Report:
    """Operations on two targets (nfs://a once, s3://b three times: the busier), a
    changed job and a kept one with a curve, a job with one scored interval and one with
    no interval (no chart for those), and two detailed volumes: pvc-a (in the table, two
    fits, a trend given, fitted as of its fifth backup) and pvc-gone (in neither: no
    interval, no fit, no backup)."""
    start = pd.Timestamp(WEEK_START)

    def op(vol, target, h0, h1, conflict="none"):
        return {"volume": vol, "backup_target": target, "operation": "backup",
                "start": start + pd.Timedelta(hours=h0),
                "end": start + pd.Timedelta(hours=h1) if h1 is not None else pd.NaT,
                "conflict": conflict}

    ops = pd.DataFrame([op("pvc-a", "s3://b", 1, 2), op("pvc-a", "s3://b", 25, 27),
                        op("pvc-b", "s3://b", 1.5, None, "delete_blocked"),
                        op("pvc-c_1", "nfs://a", 3, 4)], columns=OPS_COLUMNS)
    days = pd.date_range("2026-11-13T01:00:00Z", periods=10, freq="D")
    durations = pd.DataFrame({
        "volume": ["pvc-a"] * 10 + ["pvc-b"] * 2,
        "started_at": list(days) + list(days[:2]),
        "duration_s": [600.0 + 60 * i for i in range(8)] + [1500.0, NAN, 5000.0, 5200.0],
        "censored": [False] * 8 + [True, True, False, False]})
    # (one row per volume, the preferred fit: build_report chose pvc-a's incremental one)
    fits = pd.DataFrame({"volume": ["pvc-a", "pvc-b"], "mode": ["incremental", "incremental"],
                         "p50_s": [500.0, 4000.0], "p95_s": [700.0, 5000.0],
                         "p99_s": [900.0, 6000.0]})
    d = durations[durations["volume"] == "pvc-a"]
    trend = forecast_p99(d["started_at"][:5], d["duration_s"][:5], d["censored"][:5],
                         interval_s=None, now=d["started_at"].iloc[4])
    jobs = [job("daily", "0 0 * * *", to="0 */12 * * *", now=0.09, after=0.002,
                interval=86400.0, to_interval=43200.0,
                points=((43200.0, 0.002), (86400.0, 0.09))),
            job("hourly", "0 * * * *", points=((1800.0, 0.01), (3600.0, 0.004))),
            job("weekly", "0 3 * * 0", interval=604800.0),
            job("odd", "0 3 1-7 * 1", interval=None, points=((3600.0, 0.1), (7200.0, 0.05)))]
    return dataclasses.replace(main_report(), jobs=jobs, operations=ops, durations=durations,
                               detailed=["pvc-a", "pvc-gone"], fits=fits,
                               trends={"pvc-a": trend})


def png(draw) -> bytes:
    """The PNG of a chart drawn by hand, in the report's style."""
    with ch.chart_style():
        return ch.to_png(draw())


def expected_charts(r: Report) -> dict[str, tuple[str, bytes | None]]:
    """The charts of chart_report as worked out from its figures: ``{stem: (title, PNG
    drawn by hand)}`` (None: the PNG is not compared, that of the busiest target, which
    a chart of the default target would equal)."""
    nfs = "nfs_a-" + hashlib.sha1(b"nfs://a").hexdigest()[:6]
    s3 = "s3_b-" + hashlib.sha1(b"s3://b").hexdigest()[:6]
    start, end = pd.Timestamp(WEEK_START), pd.Timestamp(WEEK_END)
    interval = "RecurringJob {}: its worst volume's conflict per run against the interval"
    days = pd.Series(pd.date_range("2026-11-13T01:00:00Z", periods=10, freq="D"))
    completed = pd.Series([600.0 + 60 * i for i in range(8)])
    none = pd.Series([], dtype=float)
    return {
        # the top 20 against the target
        "risk-ranking": ("The fleet's risk ranking", png(
            lambda: ch.risk_ranking(r.volumes, top=20, target=0.01))),
        # the detailed volumes over the report's week
        "timeline": ("The week's operations, riskiest volumes", png(lambda: ch.timeline(
            r.operations, volumes=["pvc-a", "pvc-gone"], start=start, end=end))),
        # one per target, in order; nfs://a is not the busiest: its own chart
        f"running-at-once-{nfs}": ("Backups running at once, target nfs://a", png(
            lambda: ch.concurrency_heatmap(r.operations, backup_target="nfs://a"))),
        f"running-at-once-{s3}": ("Backups running at once, target s3://b", None),
        # a changed job: current and recommended intervals; a kept one: current only
        "interval-daily": ("RecurringJob daily: risk and interval", png(
            lambda: ch.conflict_vs_interval(r.jobs[0].curve, current_s=86400.0,
                                            recommended_s=43200.0, target=0.01,
                                            title=interval.format("daily")))),
        "interval-hourly": ("RecurringJob hourly: risk and interval", png(
            lambda: ch.conflict_vs_interval(r.jobs[1].curve, current_s=3600.0,
                                            recommended_s=None, target=0.01,
                                            title=interval.format("hourly")))),
        # pvc-a: its completed backups, the incremental fit (preferred to the full one),
        # its interval, its censored backups of known length; the trend given, drawn up
        # to the report's week end (not the trend's own "now")
        "durations-pvc-a": ("Volume pvc-a: backup durations", png(
            lambda: ch.duration_distribution(
                completed, quantiles={"p50": 500.0, "p95": 700.0, "p99": 900.0},
                interval_s=86400.0, censored_s=pd.Series([1500.0]),
                title="Volume pvc-a: backup durations"))),
        "trend-pvc-a": ("Volume pvc-a: duration trend", png(lambda: ch.duration_trend(
            days, pd.concat([completed, pd.Series([1500.0, NAN])], ignore_index=True),
            pd.Series([False] * 8 + [True, True]), interval_s=86400.0,
            trend=r.trends["pvc-a"], now=end, title="Volume pvc-a: duration trend"))),
        # pvc-gone: no backup, no interval, no fit, no trend
        "durations-pvc-gone": ("Volume pvc-gone: backup durations", png(
            lambda: ch.duration_distribution(none, quantiles=None, interval_s=None,
                                             censored_s=none,
                                             title="Volume pvc-gone: backup durations"))),
        "trend-pvc-gone": ("Volume pvc-gone: duration trend", png(lambda: ch.duration_trend(
            pd.Series([], dtype="datetime64[ns, UTC]"), none, pd.Series([], dtype=bool),
            interval_s=None, trend=None, now=end, title="Volume pvc-gone: duration trend"))),
    }


def test_render_charts_draws_each_chart_from_the_reports_figures():
    """In reading order: the fleet's ranking, the timeline, one concurrency chart per
    target (sorted), one risk-against-interval chart per job with a curve of two points
    or more and an interval, then each detailed volume's durations and trend; stems
    file-name-safe, each title told to ``on_chart``, and each chart the one drawn by hand
    from the figures it should show."""
    r = chart_report()
    told: list[str] = []
    charts = render_charts(r, on_chart=told.append)
    expected = expected_charts(r)
    assert list(charts) == list(expected)
    assert [t for t, _ in charts.values()] == [t for t, _ in expected.values()] == told
    for stem, (_, drawn) in expected.items():
        assert charts[stem][1].startswith(b"\x89PNG\r\n\x1a\n"), stem
        assert drawn is None or charts[stem][1] == drawn, stem


def test_a_p99_already_past_the_interval_reads_already_without_a_trend():
    """A volume whose p99 is past its interval now (a negative margin) but whose trend
    gives no date (no significant growth) reads "already", not an empty cell; one with
    room left and no date stays empty."""
    import dataclasses

    late = volume("pvc-late", p99_s=3700.0, interval_s=3600.0, margin_s=-100.0)
    fine = volume("pvc-fine")
    report = dataclasses.replace(main_report(), volumes=volume_table(late, fine))
    md = to_markdown(report, {})
    row = next(ln for ln in md.splitlines() if ln.startswith(r"| pvc\-late"))
    assert row.endswith("| already |")
    assert next(ln for ln in md.splitlines() if ln.startswith(r"| pvc\-fine")).endswith("|  |")
    body = sections(to_html(report, {}))["volumes"]
    assert "<td>already</td>" in body and body.count("already") == 1
