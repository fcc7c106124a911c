"""The in-cluster manifests: valid YAML of the right kinds, and read-only access to
exactly what the Kubernetes source reads."""

from __future__ import annotations

import shlex
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import yaml

from advisor.sources.kube import GROUP, RESOURCES

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
READ_VERBS = {"get", "list", "watch"}


def documents() -> list[dict]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def test_manifests_are_kubernetes_objects_of_known_kinds():
    docs = documents()
    assert docs
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(d) and d["metadata"].get("name")
    kinds = {d["kind"] for d in docs}
    assert {"ServiceAccount", "ClusterRole", "RoleBinding"} <= kinds
    assert kinds <= {"Namespace", "ServiceAccount", "ClusterRole", "RoleBinding",
                     "ClusterRoleBinding", "CronJob", "Deployment",
                     "PersistentVolumeClaim"}


def test_the_role_grants_reading_exactly_what_the_source_lists_and_no_write():
    roles = [d for d in documents() if d["kind"] in ("ClusterRole", "Role")]
    assert roles
    granted: set[str] = set()
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= READ_VERBS, rule  # no create, update, delete...
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
            assert rule["apiGroups"] == [GROUP]
            granted |= set(rule["resources"])
    assert granted == set(RESOURCES)
    # bound where Longhorn lives, to the advisor's ServiceAccount
    (binding,) = [d for d in documents() if d["kind"] == "RoleBinding"]
    assert binding["metadata"]["namespace"] == "longhorn-system"
    assert binding["roleRef"]["name"] == roles[0]["metadata"]["name"]
    sa = next(d for d in documents() if d["kind"] == "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": sa["metadata"]["namespace"]}]


def workloads() -> dict[str, dict]:
    """The pod template of each workload, by kind."""
    out = {}
    for d in documents():
        if d["kind"] == "Deployment":
            out["Deployment"] = d["spec"]["template"]
        elif d["kind"] == "CronJob":
            out["CronJob"] = d["spec"]["jobTemplate"]["spec"]["template"]
    return out


def advisor_commands(container: dict) -> list[list[str]]:
    """Every ``advisor`` command line a container runs (its args, or the lines of its
    shell script), with the shell's variables as placeholders."""
    if container.get("command", [])[:2] == ["/bin/sh", "-c"]:
        script = container["args"][0]
        lines = [ln.split(">")[0].strip() for ln in script.splitlines()]
        return [shlex.split(ln)[1:] for ln in lines if ln.startswith("advisor ")]
    return [container["args"]]


def test_the_workloads_run_the_advisor_read_only_as_a_non_root_user_on_the_claim():
    docs = documents()
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    found = workloads()
    assert set(found) == {"Deployment", "CronJob"}
    for kind, pod in found.items():
        spec = pod["spec"]
        assert spec["serviceAccountName"] == sa["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 65532  # the Dockerfile's USER
        [c] = spec["containers"]
        assert c["image"] == f"longhorn-backup-advisor:{version}", kind
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        mounted = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]
                   if "persistentVolumeClaim" in v}
        assert mounted and mounted <= claims
        assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}  # (read-only root)
    assert "USER 65532:65532" in (ROOT / "Dockerfile").read_text()
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1  # the store has one writer
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_the_cronjob_fires_weekly_by_kubernetes_cron_and_never_overlaps():
    from advisor.cron import parse

    cron = next(d for d in documents() if d["kind"] == "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    schedule = parse(cron["spec"]["schedule"])
    t, fires = datetime(2026, 11, 30, tzinfo=UTC), []
    while (t := schedule.next(t, cron["spec"]["timeZone"])) < datetime(2026, 12, 28,
                                                                      tzinfo=UTC):
        fires.append(t)
    assert len(fires) == 4 and all(f.weekday() == 0 and f.minute != 0 for f in fires)


def test_every_advisor_command_in_the_manifests_is_one_the_cli_accepts():
    from typer.testing import CliRunner

    from advisor.cli import app

    runner = CliRunner()
    commands = [cmd for pod in workloads().values() for c in pod["spec"]["containers"]
                for cmd in advisor_commands(c)]
    assert {cmd[0] for cmd in commands} == {"watch", "collect", "report", "history",
                                            "recommend"}
    for cmd in commands:
        # click parses every option before --help acts: an unknown one fails here
        got = runner.invoke(app, [*cmd, "--help"])
        assert got.exit_code == 0, (cmd, got.output)
        assert "--in-cluster" in cmd or cmd[0] in ("report", "history", "recommend")
    # the script writes into the claim, one folder per ISO week
    script = workloads()["CronJob"]["spec"]["containers"][0]["args"][0]
    assert 'out="/data/reports/$(date -u +%G-W%V)"' in script
