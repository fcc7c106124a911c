"""The in-cluster manifests: valid YAML of the right kinds, and read-only access to
exactly what the Kubernetes source reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from advisor.sources.kube import GROUP, RESOURCES

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
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
