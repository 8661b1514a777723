"""Ownership that cannot be talked round: hostile records, decoys, cluster-scoped objects and `-n`.

A run record is a ConfigMap: anyone who may write ConfigMaps in a namespace can write one, so its entries
are data to check, not instructions (README, "Labels, the run record, and cleanup"). Kubernetes names
are DNS subdomains (a Service's a DNS-1035 label) and namespaces DNS labels
(https://kubernetes.io/docs/concepts/overview/working-with-objects/names/): ``..``, ``.``, ``a/b`` and
the empty string are none of these, and an HTTP client normalises a ``..`` path segment away (RFC 3986
5.2.4), so ``/api/v1/namespaces/victim/pods/..`` is the namespace itself.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.rbac.actions import inject_rbac_grant
from chaoskirvis.workload.actions import inject_risky_pod
from chaosrun import chaos_env

KIRVIS = str(Path(sys.executable).parent / "kirvis")


def marks(run_id: str, technique: str = "privileged") -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "chaoskirvis", "chaoskirvis.io/run-id": run_id,
            "chaoskirvis.io/technique": technique}


def pod(name: str, labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}


def plant_record(core, namespace: str, run_id: str, entries: dict[str, object]) -> None:
    """A run record as `kirvis` would write it (every mark, the record label), holding `entries`."""
    data = {key: value if isinstance(value, str) else json.dumps(value) for key, value in entries.items()}
    core.create_namespaced_config_map(namespace, {"metadata": {
        "name": f"kirvis-ledger-{run_id}", "labels": {**marks(run_id, "ledger"), "chaoskirvis.io/record": "ledger"}},
        "data": data})


def kirvis(sandbox, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KIRVIS, *args], env=chaos_env(sandbox.kubeconfig), capture_output=True, text=True,
                          timeout=120)


def kirvis_requests(sandbox, since: int) -> list:
    return [r for r in sandbox.sandbox.requests[since:] if (r.user_agent or "").startswith("chaoskirvis/")]


def exists(read, *args) -> bool:
    try:
        read(*args)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_a_hostile_record_is_reported_and_never_acted_on(sandbox, make_namespace, core):
    run_id = new_run_id()
    home = make_namespace()
    # The victim carries every mark and the run id in its name: the weak check of before deleted it.
    victim = f"kirvis-{run_id}-victim"
    core.create_namespace({"metadata": {"name": victim, "labels": marks(run_id)}})
    try:
        core.create_namespaced_pod(victim, pod("app"))
        core.create_namespaced_secret(victim, {"metadata": {"name": "db"}, "stringData": {"password": "x"}})
        # every mark, but of a kind no technique creates
        core.create_namespaced_service_account(home, {"metadata": {"name": f"kirvis-{run_id}-s", "labels": marks(run_id)}})
        entries = {
            "pods.victim.dotdot": {"apiVersion": "v1", "plural": "pods", "kind": "Pod", "namespace": victim,
                                   "name": "..", "state": "intended"},
            "pods.victim.dot": {"apiVersion": "v1", "plural": "pods", "kind": "Pod", "namespace": victim,
                                "name": ".", "state": "intended"},
            "pods.home.dotdot": {"apiVersion": "v1", "plural": "pods", "kind": "Pod", "namespace": home,
                                 "name": "..", "state": "intended"},
            "pods.home.slash": {"apiVersion": "v1", "plural": "pods", "kind": "Pod", "namespace": home,
                                "name": f"kirvis-{run_id}-x/../..", "state": "intended"},
            "pods.home.empty": {"apiVersion": "v1", "plural": "pods", "kind": "Pod", "namespace": home,
                                "name": "", "state": "intended"},
            "serviceaccounts.home.s": {"apiVersion": "v1", "plural": "serviceaccounts", "kind": "ServiceAccount",
                                       "namespace": home, "name": f"kirvis-{run_id}-s", "state": "created"},
            "namespaces.victim": {"apiVersion": "v1", "plural": "namespaces", "kind": "Namespace",
                                  "name": victim, "state": "created"},
            "garbage": "{not json",
        }
        plant_record(core, home, run_id, entries)
        since = len(sandbox.sandbox.requests)

        done = kirvis(sandbox, "cleanup", "--run-id", run_id)

        assert exists(core.read_namespace, victim), done.stdout
        assert exists(core.read_namespaced_pod, "app", victim)
        assert exists(core.read_namespaced_secret, "db", victim)
        assert exists(core.read_namespaced_service_account, f"kirvis-{run_id}-s", home)
        assert done.returncode == 0, done.stderr
        reported = [line for line in done.stdout.splitlines() if line.startswith("left alone: invalid record entry")]
        assert sorted(line.split("'")[1] for line in reported) == sorted(entries), done.stdout
        sent = kirvis_requests(sandbox, since)
        assert not [r for r in sent if victim in r.path], [(r.method, r.path) for r in sent]
        assert [(r.method, r.path) for r in sent if r.method != "GET"] == [
            ("DELETE", f"/api/v1/namespaces/{home}/configmaps/kirvis-ledger-{run_id}")]
    finally:
        core.delete_namespace(victim)


def test_a_confined_cleanup_never_follows_an_entry_into_another_namespace(sandbox, make_namespace, core):
    run_id = new_run_id()
    home, other = make_namespace(), make_namespace()
    name = f"kirvis-{run_id}-privileged-a1b2"
    core.create_namespaced_pod(other, pod(name, marks(run_id)))
    plant_record(core, home, run_id, {f"pods.{other}.{name}": {
        "apiVersion": "v1", "plural": "pods", "kind": "Pod", "namespace": other, "name": name, "state": "created"}})

    done = kirvis(sandbox, "cleanup", "--run-id", run_id, "-n", home)

    assert exists(core.read_namespaced_pod, name, other), done.stdout
    assert done.returncode == 0, done.stderr
    assert f"a record may only name objects in its own namespace {home}" in done.stdout


def test_decoys_are_never_deleted(sandbox, make_namespace, core, api, run):
    """Partial marks, another run's id, the run id as a mere substring of the name, a same-named object."""
    namespace = make_namespace(enforce="privileged")
    run_id = run["configuration"]["kirvis_run_id"]
    other = new_run_id()
    outcome = inject_risky_pod(namespace, ["privileged"], **run)
    assert outcome["outcome"] == "allowed"
    decoys = {
        f"kirvis-{run_id}x-decoy-b2": marks(run_id),             # the run id only as a prefix of another id
        f"copy-of-kirvis-{run_id}-c3": marks(run_id),            # the run id inside, not in the fixed place
        f"{run_id}": marks(run_id),                              # the run id as the whole name
        f"kirvis-{other}-d4": marks(run_id),                     # another run's name with our labels
        f"kirvis-{run_id}-e5": marks(other),                     # our name shape, another run's label
        f"kirvis-{run_id}-f6": {**marks(run_id), "chaoskirvis.io/technique": ""},
        f"kirvis-{run_id}-g7": {**marks(run_id), "app.kubernetes.io/managed-by": "chaoskirvis-lookalike"},
        f"kirvis-{run_id}-h8": {**marks(run_id), "chaoskirvis.io/run-id": f"{run_id}-2"},
    }
    for name, labels in decoys.items():
        core.create_namespaced_pod(namespace, pod(name, labels))
    record = f"kirvis-ledger-{run_id}"
    core.patch_namespaced_config_map(record, namespace, {"data": {
        f"pods.{namespace}.{name}": json.dumps({"apiVersion": "v1", "plural": "pods", "kind": "Pod",
                                                "namespace": namespace, "name": name, "state": "created"})
        for name in decoys}})

    summary = restore_run(**run)
    swept = kirvis(sandbox, "cleanup", "--all", "-n", namespace)

    survivors = {p.metadata.name for p in core.list_namespaced_pod(namespace).items}
    assert summary["removed"] == [f"Pod {outcome['name']} in namespace {namespace}"]
    assert swept.returncode == 0, swept.stderr
    assert survivors == set(decoys), (summary, swept.stdout)
    for name in decoys:
        core.delete_namespaced_pod(name, namespace)


def test_cluster_scoped_objects_go_only_with_their_run_or_the_cluster_wide_flag(sandbox, make_namespace, run):
    rbac = client.RbacAuthorizationV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    home_a, home_b = make_namespace(), make_namespace()
    run_a = run["configuration"]["kirvis_run_id"]
    binding_a = inject_rbac_grant(home_a, **run)["name"]
    run_b = new_run_id()
    reset_run_id(run_b)
    other = {"configuration": {"kirvis_run_id": run_b}, "secrets": run["secrets"]}
    try:
        binding_b = inject_rbac_grant(home_b, **other)["name"]

        swept = kirvis(sandbox, "cleanup", "--all", "-n", home_b)
        assert swept.returncode == 0, swept.stderr
        assert exists(rbac.read_cluster_role_binding, binding_a) and exists(rbac.read_cluster_role_binding, binding_b)
        assert f"left alone: ClusterRoleBinding {binding_b} of run {run_b}: cluster-scoped" in swept.stdout

        flagged = kirvis(sandbox, "cleanup", "--all", "--cluster-scoped", "-n", home_b)
        assert flagged.returncode == 0, flagged.stderr
        assert not exists(rbac.read_cluster_role_binding, binding_b), flagged.stdout
        assert exists(rbac.read_cluster_role_binding, binding_a)

        own = kirvis(sandbox, "cleanup", "--run-id", run_a)
        assert own.returncode == 0, own.stderr
        assert not exists(rbac.read_cluster_role_binding, binding_a), own.stdout
    finally:
        restore_run(**other)
        reset_run_id(run_a)


@pytest.mark.parametrize("namespace", ["Team_A", "team-a\n", "..", "a/b", "", "x" * 64])
def test_an_invalid_namespace_is_refused_and_nothing_is_swept(sandbox, make_namespace, core, run, namespace):
    home = make_namespace(enforce="privileged")
    outcome = inject_risky_pod(home, ["privileged"], **run)
    since = len(sandbox.sandbox.requests)

    done = kirvis(sandbox, "cleanup", "--all", "-n", namespace)

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("kirvis cleanup: invalid -n"), done.stderr
    assert kirvis_requests(sandbox, since) == []
    assert exists(core.read_namespaced_pod, outcome["name"], home)


def test_cleanup_removes_a_configmap_a_technique_made_and_never_takes_a_record_for_one(sandbox, make_namespace, core):
    run_id = new_run_id()
    home = make_namespace()
    name = f"kirvis-{run_id}-credentials-in-configmap-a1b2"
    core.create_namespaced_config_map(home, {"metadata": {"name": name, "labels": marks(run_id, "credentials-in-configmap")},
                                             "data": {"AWS_SECRET_ACCESS_KEY": "x"}})
    plant_record(core, home, run_id, {})  # the run's record: a ConfigMap with the same marks

    done = kirvis(sandbox, "cleanup", "--run-id", run_id)

    assert done.returncode == 0, done.stdout + done.stderr
    assert not exists(core.read_namespaced_config_map, name, home), done.stdout
    assert not exists(core.read_namespaced_config_map, f"kirvis-ledger-{run_id}", home)
    assert done.stdout.splitlines() == [f"removing ConfigMap {name} in namespace {home}",
                                        f"removing record ConfigMap kirvis-ledger-{run_id} in namespace {home}"]
