"""The Prometheus source against a real Prometheus (tests/promserver.py): a history of
Longhorn's backup metrics backfilled with promtool, read back with query_range."""

from __future__ import annotations

import json
import math
import time
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest

from advisor.sources.prometheus import (
    MAX_POINTS,
    Connection,
    PrometheusError,
    load_prometheus,
    parse_duration,
    parse_since,
    read_secret,
)
from tests import promserver as ps
from tests.conftest import run_cli

GIB = 2**30
STEP = ps.SCRAPE_S
# The history: six hours from A, sampled every 30 s (A on the hour, half a day ago).
A = (int(time.time()) // 3600 - 12) * 3600
END = A + 6 * 3600


def m(minutes: float) -> int:
    """A + minutes, in seconds."""
    return A + round(minutes * 60)


def backup(name: str, volume: str, phases: list[tuple], *, job: str = "",
           size: int = 5 * GIB) -> list[ps.Series]:
    """The state and size series of one backup. ``phases`` are (state, from, to[,
    instance]) in minutes after A, sampled every 30 s in [from, to); the RecurringJob
    label is empty until the backup is Completed, and one series per label set."""
    series: dict[tuple, list] = {}
    done = False
    for state, t0, t1, *inst in phases:
        done = done or state == 3
        for t in range(m(t0), m(t1), STEP):
            labels = (("volume", volume), ("backup", name),
                      ("recurring_job", job if done else ""),
                      ("instance", inst[0] if inst else "m1"))
            series.setdefault(labels, []).append((t, state, size if done else 0))
    out: list[ps.Series] = []
    for labels, samples in series.items():
        out.append(("longhorn_backup_state", dict(labels), [(t, s) for t, s, _ in samples]))
        out.append(("longhorn_backup_actual_size_bytes", dict(labels),
                    [(t, z) for t, _, z in samples]))
    return out


HISTORY: list[ps.Series] = [
    *backup("backup-daily-1", "pvc-a", [(0, 10, 10.5), (1, 10.5, 11), (2, 11, 23),
                                        (3, 23, 360)], job="daily"),
    *backup("backup-manual", "pvc-b", [(2, 60, 67.5), (3, 67.5, 360)], size=GIB),
    # the owning manager changes during the backup: two instances, one shared sample
    *backup("backup-moved", "pvc-d", [(1, 89, 90, "m1"), (2, 90, 100.5, "m1"),
                                      (2, 100, 110, "m2"), (3, 110, 360, "m2")],
            job="hourly"),
    *backup("backup-error", "pvc-c", [(1, 120, 121), (2, 121, 125), (4, 125, 360)],
            job="daily"),
    # Longhorn >= 1.8: Deleting shows as 0, then the Backup is gone
    *backup("backup-deleted", "pvc-b", [(2, 180, 190), (3, 190, 240), (0, 240, 245)],
            job="daily"),
    *backup("backup-fast", "pvc-c", [(1, 270, 270.5), (3, 270.5, 360)]),
    *backup("backup-running", "pvc-a", [(1, 349, 350), (2, 350, 360)], job="daily"),
    *backup("backup-early", "pvc-e", [(2, 0, 40), (3, 40, 360)]),
    *backup("backup-novolume", "", [(2, 30, 40), (3, 40, 360)]),
    ("longhorn_backup_state", {"volume": "pvc-x"}, [(m(50), 1), (m(50.5), 2)]),
    ("longhorn_backup_state", {"volume": "pvc-f", "backup": "backup-odd"},
     [(m(200), 2), (m(200.5), 7), (m(201), float("nan")), (m(201.5), 3)]),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ps.require_binaries()
    folder = tmp_path_factory.mktemp("prometheus")
    ps.backfill(HISTORY, folder / "data")
    return folder


@pytest.fixture(scope="module")
def server(data: Path):
    with ps.prometheus(ps.copy_data(data / "data", data / "plain")) as srv:
        yield srv


USER, PASSWORD = "advisor", "correct horse"


@pytest.fixture(scope="module")
def secured(data: Path):
    """A second server over a copy of the history: TLS with client certificates
    required, and basic auth."""
    pki = ps.make_pki(data / "pki")
    config = ps.web_config(data / "web.yml", pki, {USER: PASSWORD})
    kw = {"verify": str(pki.ca), "cert": (str(pki.client_cert), str(pki.client_key)),
          "auth": (USER, PASSWORD)}
    with ps.prometheus(ps.copy_data(data / "data", data / "secured"), web_config=config,
                       ready_kw=kw) as srv:
        yield srv, pki


def no_sleep(_: float) -> None:
    pass


def ts(seconds: int) -> pd.Timestamp:
    return pd.Timestamp(seconds, unit="s", tz="UTC")


CONNECTION = {f.name for f in fields(Connection)}


def load(url: str, since: int = A, until: int = END - STEP, **kw):
    """:func:`load_prometheus`, the :class:`Connection`'s fields among ``kw``."""
    kw.setdefault("sleep", no_sleep)
    connection = Connection(**{k: kw.pop(k) for k in CONNECTION & set(kw)})
    return load_prometheus(url, since=ts(since), until=ts(until), connection=connection, **kw)


def by_backup(df: pd.DataFrame) -> dict[str, dict]:
    assert not df["backup"].duplicated().any()
    return {r["backup"]: r for r in df.to_dict("records")}


def test_backups_and_durations_are_recovered_exactly_at_the_scrape_step(server):
    result, stats = load(server.url, cluster="prod")
    rows = by_backup(result.frames["backups"])
    assert set(rows) == {"backup-daily-1", "backup-manual", "backup-moved", "backup-error",
                         "backup-deleted", "backup-fast", "backup-running", "backup-odd"}
    daily = rows["backup-daily-1"]
    assert daily["state"] == "Completed" and daily["duration_s"] == 12 * 60
    assert daily["requested_at"] == ts(m(10)) and daily["started_at"] == ts(m(11))
    assert daily["finished_at"] == ts(m(23)) and daily["censored"] is False
    assert daily["recurring_job"] == "daily" and daily["size_bytes"] == 5 * GIB
    assert daily["volume"] == "pvc-a" and daily["backup_target"] == "default"
    assert rows["backup-manual"]["duration_s"] == 450 and rows["backup-manual"][
        "recurring_job"] == ""
    assert pd.isna(rows["backup-manual"]["requested_at"])  # never seen New or Pending
    # two managers' series of one backup: one row, one duration
    moved = rows["backup-moved"]
    assert moved["duration_s"] == 20 * 60 and moved["recurring_job"] == "hourly"
    deleted = rows["backup-deleted"]
    assert deleted["state"] == "Deleting" and deleted["duration_s"] == 600
    assert deleted["deletion_requested_at"] == ts(m(240))
    assert deleted["deleted_at"] == ts(m(245))
    df = result.frames["backups"]
    assert set(df["cluster"]) == {"prod"}
    assert set(df.loc[df["backup"] != "backup-odd", "time_resolution_s"]) == {STEP}
    assert set(df["source"]) == {f"prometheus:{server.url}"}
    assert set(df["lock_conflict"]) == {"none"} and set(df["backup_mode"]) == {""}
    assert stats.queries == 2 and stats.retries == 0  # one query per metric
    assert result.read["Backup"] == len(df) == stats.backups


def test_unfinished_backups_are_kept_censored(server):
    rows = by_backup(load(server.url)[0].frames["backups"])
    error, running = rows["backup-error"], rows["backup-running"]
    assert error["state"] == "Error" and error["censored"] is True
    assert error["started_at"] == ts(m(121)) and pd.isna(error["finished_at"])
    assert math.isnan(error["duration_s"]) and error["recurring_job"] == ""
    assert pd.isna(error["size_bytes"])  # 0 until completed: unknown, not empty
    assert running["state"] == "InProgress" and running["censored"] is True
    assert running["started_at"] == ts(m(350))


def test_every_record_not_usable_is_reported(server):
    result, _ = load(server.url)
    problems = {(p.object, p.field): p for p in result.problems}
    url = f"prometheus:{server.url}"
    assert all(p.file == url for p in result.problems)
    early = problems[("backup/backup-early", "started_at")]
    assert early.severity == "skipped" and "already InProgress" in early.reason
    assert problems[("backup/backup-novolume", "volume")].severity == "skipped"
    nolabel = [p for (obj, fld), p in problems.items() if fld == "backup"]
    assert len(nolabel) == 1 and 'volume="pvc-x"' in nolabel[0].object
    odd = sorted(p.reason for p in result.problems if p.object == "backup/backup-odd")
    assert odd == ["1 sample(s) of value 7 are not a Longhorn backup state (0-5); ignored",
                   "1 sample(s) of value NaN are not a Longhorn backup state (0-5); ignored"]
    fast = problems[("backup/backup-fast", "started_at")]
    assert fast.severity == "warning" and "never sampled InProgress" in fast.reason
    row = by_backup(result.frames["backups"])["backup-fast"]
    assert pd.isna(row["started_at"]) and row["finished_at"] == ts(m(270.5))
    # the one duration rule (advisor.schema.backup_times): without a start, the request
    # (its first sample, Pending at 270) is the start, queueing included
    assert row["requested_at"] == ts(m(270)) and row["duration_s"] == 30.0
    odd_row = by_backup(result.frames["backups"])["backup-odd"]
    assert odd_row["duration_s"] == 90  # the bad samples are skipped, not the backup,
    assert odd_row["time_resolution_s"] == 90  # and its end is known only within 90 s


@pytest.mark.parametrize("step", [60, 120, 300])
def test_a_coarser_step_recovers_durations_within_one_step(server, step):
    result, _ = load(server.url, step=f"{step}s")
    rows = by_backup(result.frames["backups"])
    for name, true in {"backup-daily-1": 720, "backup-manual": 450, "backup-moved": 1200,
                       "backup-deleted": 600}.items():
        assert abs(rows[name]["duration_s"] - true) <= step, name
    assert set(result.frames["backups"]["time_resolution_s"]) == {step}


def test_a_backup_that_began_before_since_is_left_out_not_given_a_start(server):
    result, _ = load(server.url, since=m(15))  # backup-daily-1 is InProgress then
    assert "backup-daily-1" not in set(result.frames["backups"]["backup"])
    p = next(p for p in result.problems if p.object == "backup/backup-daily-1")
    assert p.field == "started_at" and "before --since" in p.reason
    result, _ = load(server.url, since=m(30))  # and Completed here
    assert "backup-daily-1" not in set(result.frames["backups"]["backup"])
    # New at the window's start: kept, with its start; when it was asked for is unknown
    row = by_backup(load(server.url, since=m(10))[0].frames["backups"])["backup-daily-1"]
    assert row["started_at"] == ts(m(11)) and pd.isna(row["requested_at"])


def test_recurring_job_is_empty_until_the_backup_completes(server):
    rows = by_backup(load(server.url, until=m(20))[0].frames["backups"])
    assert rows["backup-daily-1"]["recurring_job"] == ""
    assert rows["backup-daily-1"]["state"] == "InProgress"
    rows = by_backup(load(server.url, until=m(30))[0].frames["backups"])
    assert rows["backup-daily-1"]["recurring_job"] == "daily"


def test_a_long_window_is_read_in_pieces_that_neither_repeat_nor_lose_a_sample(server):
    # 1 s steps over four hours: 14,400 points per series, two queries per metric, and
    # the second piece starts exactly when backup-error turns Error
    since = m(125) - MAX_POINTS
    until = since + 4 * 3600 - 1
    fine, stats = load(server.url, since=since, until=until, step="1s")
    assert stats.queries == 4 and stats.end - stats.start == pd.Timedelta(seconds=14_399)
    coarse, one = load(server.url, since=since, until=until, step="30s")
    assert one.queries == 2
    columns = ["backup", "state", "requested_at", "started_at", "finished_at", "duration_s",
               "censored", "recurring_job", "size_bytes", "volume"]
    assert len(fine.frames["backups"]) == len(coarse.frames["backups"]) == 6
    pd.testing.assert_frame_equal(fine.frames["backups"][columns],
                                  coarse.frames["backups"][columns])
    row = by_backup(fine.frames["backups"])["backup-error"]
    assert row["state"] == "Error" and row["started_at"] == ts(m(121))


def test_more_points_than_prometheus_answers_is_its_own_error(server):
    with pytest.raises(PrometheusError) as err:
        load(server.url, since=A, until=A + 4 * 3600, step="1s", max_points=20_000)
    text = str(err.value)
    assert server.url in text and "400" in text
    assert "exceeded maximum resolution of 11,000 points per timeseries" in text


def test_a_bad_selector_shows_prometheus_error_text(server):
    with pytest.raises(PrometheusError, match=r"was refused \(400 bad_data: .*parse error"):
        load(server.url, selector='cluster=~"("')


def test_a_selector_narrows_the_series(server):
    result, _ = load(server.url, selector='volume="pvc-a"')
    assert set(result.frames["backups"]["volume"]) == {"pvc-a"}


def test_connection_refused_is_retried_then_reported():
    slept: list[float] = []
    url = f"http://127.0.0.1:{ps.free_port()}"
    with pytest.raises(PrometheusError) as err:
        load(url, sleep=slept.append)
    assert url in str(err.value) and "no answer after 5 attempts" in str(err.value)
    assert "is Prometheus running there" in str(err.value)
    assert slept == [0.5, 1.0, 2.0, 4.0]


def test_a_server_that_does_not_answer_times_out(server):
    with ps.proxy(ps.Proxy(server.url, script=["hang"] * 5)) as p, \
            pytest.raises(PrometheusError, match=r"no answer after 5 attempts of at most 0.3 s"):
        load(p.url, timeout_s=0.3)


def test_5xx_is_retried_with_backoff(server):
    slept: list[float] = []
    with ps.proxy(ps.Proxy(server.url, script=[503, 500])) as p:
        result, stats = load(p.url, sleep=slept.append)
    assert stats.retries == 2 and slept == [0.0, 1.0]  # Retry-After: 0, then 0.5 s doubling
    assert len(result.frames["backups"]) == 8
    with ps.proxy(ps.Proxy(server.url, script=[500] * 5)) as p, \
            pytest.raises(PrometheusError, match="500 after 5 attempts: server_error: injected"):
        load(p.url)


@pytest.mark.parametrize("script, message", [
    (["html"], "not Prometheus' query_range JSON .*text/html"),
    ([403], "403 Forbidden: these credentials may not query"),
])
def test_answers_that_are_not_usable(server, script, message):
    with ps.proxy(ps.Proxy(server.url, script=script)) as p, \
            pytest.raises(PrometheusError, match=message):
        load(p.url)


def test_a_url_that_is_not_prometheus_base_url(server):
    with pytest.raises(PrometheusError, match=r"404 Not Found .* base URL"):
        load(server.url + "/prometheus")


def test_the_bearer_token_is_sent(server):
    with ps.proxy(ps.Proxy(server.url, token="s3cret")) as p:
        result, _ = load(p.url, bearer_token="s3cret")
        assert len(result.frames["backups"]) == 8
        assert {h.get("authorization") for _, h in p.requests} == {"Bearer s3cret"}
        assert all(path.startswith("/api/v1/query_range?") for path, _ in p.requests)
        with pytest.raises(PrometheusError, match=r"401 Unauthorized: .*--bearer-token-file"):
            load(p.url)


def test_tls_with_a_client_certificate_and_basic_auth(secured):
    srv, pki = secured
    tls = {"ca_file": str(pki.ca), "client_cert": str(pki.client_cert),
           "client_key": str(pki.client_key)}
    result, _ = load(srv.url, basic_auth=(USER, PASSWORD), **tls)
    assert len(result.frames["backups"]) == 8
    with pytest.raises(PrometheusError, match="401 Unauthorized"):
        load(srv.url, basic_auth=(USER, "wrong"), **tls)
    with pytest.raises(PrometheusError, match=r"TLS failed .*--ca-file"):
        load(srv.url, basic_auth=(USER, PASSWORD), client_cert=tls["client_cert"],
             client_key=tls["client_key"])  # the system CAs do not know the test CA
    with pytest.raises(PrometheusError):  # the server requires a client certificate
        load(srv.url, basic_auth=(USER, PASSWORD), ca_file=tls["ca_file"])
    result, _ = load(srv.url, basic_auth=(USER, PASSWORD), insecure_skip_tls_verify=True,
                     client_cert=tls["client_cert"], client_key=tls["client_key"])
    assert len(result.frames["backups"]) == 8


def test_secrets_come_from_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SOME_TOKEN", "from-env")
    assert read_secret(None, "SOME_TOKEN") == "from-env"
    (tmp_path / "token").write_text("from-file\n")
    assert read_secret(str(tmp_path / "token"), "SOME_TOKEN") == "from-file"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(PrometheusError, match="is empty"):
        read_secret(str(tmp_path / "empty"), "SOME_TOKEN")
    with pytest.raises(PrometheusError, match="cannot read"):
        read_secret(str(tmp_path / "missing"), "SOME_TOKEN")
    monkeypatch.delenv("SOME_TOKEN")
    assert read_secret(None, "SOME_TOKEN") is None


def test_durations_and_since():
    assert parse_duration("30s") == 30 and parse_duration("1m") == 60
    assert parse_duration("30d") == 30 * 86400 and parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90 and parse_duration("1.5h") == 5400
    for bad in ("", "0s", "30x", "1h30", "-5m", "abc"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    now = pd.Timestamp("2026-11-20T12:00:00Z")
    assert parse_since("12h", now) == pd.Timestamp("2026-11-20T00:00:00Z")
    assert parse_since("2026-11-01T00:00:00+01:00", now) == pd.Timestamp(
        "2026-10-31T23:00:00Z")
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("yesterday", now)
    with pytest.raises(ValueError, match="out of range"):
        parse_since("2999-01-01", now)


# --- the command line -----------------------------------------------------------------

def test_collect_from_prometheus_into_the_store(server, tmp_path):
    store = tmp_path / "store"
    r = run_cli("collect", "--prometheus", server.url, "--since", "30d", "--store",
                str(store), "--cluster", "prod", "--no-fit")
    assert r.returncode == 0, r.stderr
    assert "longhorn_backup_state" not in r.stderr
    assert f"prometheus {server.url}:" in r.stdout and "backups: 9 added" in r.stdout
    h = json.loads(run_cli("history", "--store", str(store), "-o", "json").stdout)
    assert h["backups"] == 9  # backup-early too: the window starts before the history
    assert h["backups_by_state"]["Completed"] == 6


def test_collect_sends_the_token_from_a_file_or_the_environment(server, tmp_path):
    (tmp_path / "token").write_text("s3cret\n")
    with ps.proxy(ps.Proxy(server.url, token="s3cret")) as p:
        r = run_cli("collect", "--prometheus", p.url, "--bearer-token-file",
                    str(tmp_path / "token"), "--store", str(tmp_path / "a"), "--no-fit")
        assert r.returncode == 0, r.stderr
        r = run_cli("collect", "--prometheus", p.url, "--store", str(tmp_path / "b"),
                    "--no-fit", env={"ADVISOR_PROMETHEUS_TOKEN": "s3cret"})
        assert r.returncode == 0, r.stderr
        assert "s3cret" not in r.stdout + r.stderr
        # refused: exit 2, a message that says what to do, and nothing stored
        r = run_cli("collect", "--prometheus", p.url, "--store", str(tmp_path / "c"),
                    "--no-fit")
    assert r.returncode == 2 and "401 Unauthorized" in r.stderr
    assert "--bearer-token-file" in r.stderr
    assert not (tmp_path / "c").exists()


def test_collect_rejects_prometheus_options_without_prometheus(tmp_path):
    r = run_cli("collect", "--sample", "--step", "1m", "--store", str(tmp_path / "s"))
    assert r.returncode == 2 and "go with --prometheus" in r.stderr
    r = run_cli("collect", "--prometheus", "http://127.0.0.1:1", "--since", "soon",
                "--store", str(tmp_path / "s"))
    assert r.returncode == 2 and "--since" in r.stderr and "soon" in r.stderr
    r = run_cli("collect", "--prometheus", "http://127.0.0.1:1", "--since", "2200-01-01",
                "--store", str(tmp_path / "s"))
    assert r.returncode == 2 and "is after until" in r.stderr


def test_collect_with_basic_auth_and_tls(secured, tmp_path):
    srv, pki = secured
    (tmp_path / "password").write_text(PASSWORD + "\n")
    tls = ["--ca-file", str(pki.ca), "--client-cert", str(pki.client_cert), "--client-key",
           str(pki.client_key)]
    r = run_cli("collect", "--prometheus", srv.url, "--basic-auth", USER,
                "--basic-auth-password-file", str(tmp_path / "password"), *tls, "--store",
                str(tmp_path / "a"), "--no-fit")
    assert r.returncode == 0, r.stderr
    assert "backups: 9 added" in r.stdout and PASSWORD not in r.stdout + r.stderr
    r = run_cli("collect", "--prometheus", srv.url, "--basic-auth", USER, *tls, "--store",
                str(tmp_path / "b"), "--no-fit", env={"ADVISOR_PROMETHEUS_PASSWORD": "nope"})
    assert r.returncode == 2 and "401 Unauthorized" in r.stderr
    assert not (tmp_path / "b").exists()
