"""``advisor check``: the GitOps gate on proposed RecurringJobs, with and without
history; exit 0 within the risk, 1 above it, 2 on invalid input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.slow(seconds=60)  # (run first: see conftest)


def job(name: str, cron: str, task: str = "backup", groups: str = "[default]",
        retain: int = 3, concurrency: int = 2) -> str:
    return (f"apiVersion: longhorn.io/v1beta2\nkind: RecurringJob\n"
            f"metadata: {{name: {name}, namespace: longhorn-system}}\n"
            f"spec: {{name: {name}, task: {task}, cron: \"{cron}\", retain: {retain}, "
            f"concurrency: {concurrency}, groups: {groups}}}\n")


def volume(name: str, size: int, group: str | None = None) -> str:
    labels = (f"\n  labels: {{recurring-job-group.longhorn.io/{group}: enabled}}"
              if group else "")
    return (f"apiVersion: longhorn.io/v1beta2\nkind: Volume\n"
            f"metadata:\n  name: {name}\n  namespace: longhorn-system{labels}\n"
            f"spec: {{size: \"{size}\", numberOfReplicas: 3}}\n"
            f"status: {{state: attached, robustness: healthy}}\n")


def write(tmp_path: Path, *docs: str) -> str:
    p = tmp_path / "proposed.yaml"
    p.write_text("---\n".join(docs))
    return str(p)


def check(*args: str) -> tuple[int, dict | None, str]:
    r = run_cli("check", *args, "-o", "json", timeout=600)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr


def test_weekly_and_monthly_at_midnight_on_default_are_risky(tmp_path):
    code, out, _ = check(write(tmp_path, job("weekly", "0 0 * * 0"),
                               job("monthly", "0 0 1 * *")))
    assert code == 1 and out["verdict"] == "risky" and out["max_risk"] == 0.01
    f = next(f for f in out["findings"] if f["kind"] == "simultaneous_fire")
    assert set(f["jobs"]) == {"weekly", "monthly"} and f["groups"] == ["default"]
    assert "1.7 times a year" in f["explanation"] and f["p_per_run"] > 0.01
    assert any(a.startswith("no history") for a in out["assumptions"])


def test_jobs_apart_and_snapshots_pass(tmp_path):
    # a snapshot job at the same minute never touches the backupstore
    code, out, _ = check(write(tmp_path, job("nightly", "0 1 * * *"),
                               job("snap", "0 1 * * *", task="snapshot"),
                               job("weekly", "30 4 * * 0", groups="[archive]")))
    assert code == 0 and out["verdict"] == "ok", out
    assert not any("snap" in f["jobs"] for f in out["findings"])


def test_an_interval_shorter_than_a_large_volumes_prior_is_flagged(tmp_path):
    # no history: the stated prior gives a 2 TiB volume a 35-minute median, p95 88 min
    code, out, _ = check(write(tmp_path, job("hourly", "0 * * * *"),
                               volume("big", 2 * 2**40)))
    assert code == 1
    f = next(f for f in out["findings"] if f["kind"] == "interval_shorter_than_duration")
    assert f["jobs"] == ["hourly"] and "big" in f["volumes"]


def test_invalid_input_exits_2_with_the_reason(tmp_path):
    code, _, err = check(write(tmp_path, job("broken", "0 0 * * 8")))
    assert code == 2 and "end of range (8) above maximum (6)" in err and "broken" in err
    code, _, err = check(write(tmp_path, job("typo", "0 0 * * *", task="bakup")))
    assert code == 2 and "'bakup' is not a Longhorn task" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: longhorn.io/v1beta2\nkind: RecurringJob\n  spec: [\n")
    code, _, err = check(str(bad))
    assert code == 2 and "bad.yaml" in err


def test_against_the_sample_history(tmp_path):
    # the sample's own hourly job is risky on its volumes; a batch job on its own
    # small volumes is not
    code, out, _ = check(write(tmp_path, job("hourly", "0 * * * *", retain=24,
                                             concurrency=10)),
                         "--sample", "--start", "2026-11-23")
    assert code == 1
    f = next(f for f in out["findings"] if f["kind"] == "lock_risk")
    assert f["jobs"] == ["hourly"] and f["p_per_run"] > 0.1 and len(f["volumes"]) >= 40
    code, out, _ = check(write(tmp_path, job("batch", "17 2 * * *", groups="[batch]",
                                             retain=7, concurrency=4)),
                         "--sample", "--start", "2026-11-23")
    assert code == 0 and out["verdict"] == "ok"


def test_a_monthly_job_is_judged_with_the_jobs_already_there(tmp_path):
    # the sample's archive group has a weekly job at Sunday 03:00: a monthly one at 03:00
    # on the 1st meets it whenever the 1st is a Sunday, which no week of history shows
    code, out, _ = check(write(tmp_path, job("monthly", "0 3 1 * *", groups="[archive]",
                                             retain=6, concurrency=4)),
                         "--sample", "--start", "2026-11-23")
    assert code == 1 and out["verdict"] == "risky"
    f = next(f for f in out["findings"] if f["kind"] == "simultaneous_fire")
    assert set(f["jobs"]) == {"monthly", "weekly"} and "1.7 times a year" in f["explanation"]
    # its Monte Carlo risk is scored around its run in the weeks scored (1 December)
    risk = next(f for f in out["findings"] if f["kind"] == "lock_risk")
    assert risk["jobs"] == ["monthly"]
    assert "1 window(s) of 24 h around its fire time(s) from 2026-12-01" \
        in risk["explanation"]
    assert "nan" not in risk["explanation"]
    # findings between jobs the proposal leaves alone are not its doing
    assert all("monthly" in f["jobs"] for f in out["findings"])
