"""The Kubernetes source through the real ``kubernetes`` client, against a loopback server
that answers as the API server does (tests/kubeapi.py): pages, expired tokens, retries,
and the errors a user must be able to act on."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from advisor.sources import synthetic as syn
from advisor.sources.kube import KubeError, ListStats, Paging, list_resource, load_kube
from tests.conftest import T0, completed, in_progress
from tests.kubeapi import FakeApi, serve


def fleet_objects(n_backups: int = 23) -> dict[str, list[dict]]:
    return {
        "backups": [completed(f"backup-{i:03d}", f"pvc-{i % 3}", minutes=5 + i % 7,
                              offset_h=i) for i in range(n_backups)]
        + [in_progress("backup-running", "pvc-0")],
        "volumes": [syn.volume_cr(f"pvc-{i}", size_bytes=20 * syn.GIB,
                                  actual_size_bytes=syn.GIB,
                                  created=T0 - timedelta(days=9)) for i in range(3)],
        "recurringjobs": [syn.recurring_job_cr("daily", "0 2 * * *", retain=7,
                                               groups=["default"])],
        "backupvolumes": [syn.backup_volume_cr("pvc-0", size_bytes=3 * syn.GIB)],
        "settings": [syn.setting_cr("backupstore-poll-interval", "300")],
        "backuptargets": [],
    }


def no_sleep(_: float) -> None:
    pass


NO_WAIT = Paging(sleep=no_sleep)


def test_every_resource_is_read_page_by_page_into_the_frames(tmp_path):
    api = FakeApi(fleet_objects())
    with serve(api, tmp_path) as kubeconfig:
        result, stats = load_kube(kubeconfig=str(kubeconfig),
                                  paging=Paging(limit=5, sleep=no_sleep))
    b = result.frames["backups"]
    assert len(b) == 24 and set(b["cluster"]) == {"prod"}  # the current context's name
    assert set(b["state"]) == {"Completed", "InProgress"}
    assert b.loc[b["backup"] == "backup-004", "duration_s"].iloc[0] == 9 * 60
    assert len(result.frames["volumes"]) == 3 and len(result.frames["jobs"]) == 1
    s = stats["prod"]
    assert s.objects == 24 + 3 + 1 + 1 + 1 and s.pages == 5 + 1 + 1 + 1 + 1 + 1
    assert set(s.versions.values()) == {"v1beta2"}
    # pages asked with limit and the server's continue token, with the kubeconfig's token
    pages = [r for r in api.requests if r[0].endswith("/backups")]
    assert '"limit": ["5"]' in pages[0][1] and '"continue"' not in pages[0][1]
    assert all('"continue"' in r[1] for r in pages[1:])
    assert all(r[2]["authorization"] == "Bearer secret-token" for r in api.requests)
    assert all(r[2].get("accept", "").startswith("application/json") for r in api.requests)


def test_several_contexts_are_several_clusters(tmp_path):
    api = FakeApi(fleet_objects(4))
    with serve(api, tmp_path) as kubeconfig:
        result, stats = load_kube(["prod", "staging"], kubeconfig=str(kubeconfig),
                                  paging=NO_WAIT)
    assert set(result.frames["backups"]["cluster"]) == {"prod", "staging"}
    assert set(stats) == {"prod", "staging"}


def test_an_expired_token_lists_again_from_the_start(tmp_path):
    api = FakeApi(fleet_objects())
    # the collection changes while the third page is being asked for: its token expires
    api.on_page[("backups", 3)] = lambda a: a.change(
        "backups", completed("backup-late", "pvc-1", minutes=3, offset_h=40))
    with serve(api, tmp_path) as kubeconfig:
        from kubernetes import config

        client = config.new_client_from_config(config_file=str(kubeconfig))
        stats = ListStats()
        doc = list_resource(client, "backups", paging=Paging(limit=5, sleep=no_sleep),
                            stats=stats)
    names = [o["metadata"]["name"] for o in doc["items"]]
    assert len(names) == len(set(names)) == 25 and "backup-late" in names  # none twice
    assert stats.relists == 1 and doc["kind"] == "BackupList"


def test_429_and_5xx_are_retried_with_backoff(tmp_path):
    api = FakeApi(fleet_objects(4))
    api.fail[("backups", 1)] = 429
    api.fail[("backups", 2)] = 500
    api.fail[("volumes", 1)] = 503
    slept: list[float] = []
    with serve(api, tmp_path) as kubeconfig:
        result, stats = load_kube(kubeconfig=str(kubeconfig), paging=Paging(sleep=slept.append))
    assert len(result.frames["backups"]) == 5 and stats["prod"].retries == 3
    assert slept == [0.0, 1.0, 0.5]  # Retry-After: 0, then 0.5 s doubling


def test_a_server_that_keeps_failing_is_reported(tmp_path):
    api = FakeApi(fleet_objects(4))
    for n in range(1, 10):
        api.fail[("backups", n)] = 500
    with serve(api, tmp_path) as kubeconfig, pytest.raises(KubeError) as err:
        load_kube(kubeconfig=str(kubeconfig), paging=NO_WAIT)
    assert "backups.longhorn.io/v1beta2" in str(err.value) and "500" in str(err.value)
    assert "injected 500" in str(err.value)  # the Status message, as the server gave it


def test_403_names_the_verbs_and_resource_missing(tmp_path):
    api = FakeApi(fleet_objects(4))
    api.forbidden.add("settings")
    with serve(api, tmp_path) as kubeconfig, pytest.raises(KubeError) as err:
        load_kube(kubeconfig=str(kubeconfig), paging=NO_WAIT)
    text = str(err.value)
    assert "403 Forbidden" in text and "get and list on settings.longhorn.io" in text
    assert "namespace longhorn-system" in text and 'cannot list resource "settings"' in text


def test_401_says_the_credentials_were_refused(tmp_path):
    api = FakeApi(fleet_objects(4))
    with serve(api, tmp_path) as kubeconfig:
        api.token = "another-token"
        with pytest.raises(KubeError, match="401 Unauthorized: the credentials"):
            load_kube(kubeconfig=str(kubeconfig), paging=NO_WAIT)


def test_v1beta1_is_read_when_v1beta2_is_not_served_and_404_means_no_crds(tmp_path):
    api = FakeApi(fleet_objects(4), versions=("v1beta1",))
    with serve(api, tmp_path) as kubeconfig:
        result, stats = load_kube(kubeconfig=str(kubeconfig), paging=NO_WAIT)
    assert len(result.frames["backups"]) == 5
    assert set(stats["prod"].versions.values()) == {"v1beta1"}
    api = FakeApi(fleet_objects(4), versions=())
    with serve(api, tmp_path) as kubeconfig, pytest.raises(KubeError) as err:
        load_kube(kubeconfig=str(kubeconfig), paging=NO_WAIT)
    assert "Longhorn CRDs are not installed" in str(err.value)


def test_an_unknown_context_is_named(tmp_path):
    api = FakeApi(fleet_objects(1))
    with serve(api, tmp_path) as kubeconfig, pytest.raises(KubeError, match="'nope'"):
        load_kube(["nope"], kubeconfig=str(kubeconfig), paging=NO_WAIT)


def test_a_server_that_does_not_answer_times_out_boundedly(tmp_path):
    # a port nothing listens on: refused at once, retried RETRIES times, then reported
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "c", "clusters": '
        f'[{{"name": "x", "cluster": {{"server": "http://127.0.0.1:{port}"}}}}], "users": '
        '[{"name": "u", "user": {"token": "t"}}], "contexts": [{"name": "c", "context": '
        '{"cluster": "x", "user": "u"}}]}')
    slept: list[float] = []
    with pytest.raises(KubeError, match="no answer after 6 attempts"):
        load_kube(kubeconfig=str(kubeconfig), paging=Paging(timeout_s=2, sleep=slept.append))
    assert len(slept) == 5


def test_collect_kube_stores_each_context_as_a_cluster(tmp_path):
    from advisor.store import HistoryStore
    from tests.conftest import run_cli

    objects = fleet_objects(4)
    api = FakeApi(objects)
    store = tmp_path / "store"
    with serve(api, tmp_path) as kubeconfig:
        r = run_cli("collect", "--kube", "--context", "prod", "--context", "staging",
                    "--kubeconfig", str(kubeconfig), "--store", str(store), "--no-fit")
        assert r.returncode == 0, r.stderr
        # per cluster: what it listed, resource by resource (at the version served)
        for cluster in ("prod", "staging"):
            block = r.stdout.split(f"cluster {cluster}: ")[1].split("\ncluster ")[0]
            assert block.startswith("11 objects in 6 page(s) from namespace longhorn-system")
            for plural, items in objects.items():
                assert re.search(rf"^  {plural}\.longhorn\.io/v1beta2 +{len(items)}$", block,
                                 re.M), plural
        assert "file(s)" not in r.stdout  # (it read no file: it used to say "read 12")
        api.forbidden.add("volumes")
        r = run_cli("collect", "--kube", "--kubeconfig", str(kubeconfig), "--store",
                    str(store))
        assert r.returncode == 2 and "403 Forbidden" in r.stderr
    b = HistoryStore(store).read("backups")
    assert sorted(set(b["cluster"])) == ["prod", "staging"] and len(b) == 10
    assert all(s.startswith("kube:") for s in b["source"])
    # (the loopback server answers GET only: anything else would have failed the run)
    assert {r[0].split("/")[2] for r in api.requests} == {"longhorn.io"}


def test_in_cluster_reads_the_service_account_token_and_ca_over_https(tmp_path,
                                                                      monkeypatch):
    from kubernetes.config import incluster_config

    from tests.promserver import make_pki

    pki = make_pki(tmp_path / "pki")
    api = FakeApi(fleet_objects(3))
    api.token = "pod-service-account-token"
    secrets = tmp_path / "serviceaccount"  # what the kubelet mounts in a pod
    secrets.mkdir()
    (secrets / "token").write_text(api.token)
    (secrets / "ca.crt").write_bytes(pki.ca.read_bytes())
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(secrets / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(secrets / "ca.crt"))
    with serve(api, tmp_path, tls=(pki.server_cert, pki.server_key)):
        host, port = api.url.removeprefix("https://").split(":")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
        result, stats = load_kube(in_cluster=True, cluster="prod-in-cluster", paging=NO_WAIT)
        assert set(result.frames["backups"]["cluster"]) == {"prod-in-cluster"}
        assert list(stats) == ["prod-in-cluster"] and stats["prod-in-cluster"].objects == 10
        # the pod's token file, sent as the client's in-cluster loader does
        assert {r[2]["authorization"] for r in api.requests} == {
            "bearer pod-service-account-token"}
        # a CA that did not sign the server's certificate: refused, not read
        other = make_pki(tmp_path / "other")
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(other.ca))
        with pytest.raises(KubeError, match=r"TLS connection failed .*CERTIFICATE_VERIFY"):
            load_kube(in_cluster=True, cluster="x", paging=NO_WAIT)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(KubeError, match=r"in-cluster configuration: .*service account"):
        load_kube(in_cluster=True)
