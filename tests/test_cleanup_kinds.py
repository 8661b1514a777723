"""`kirvis cleanup --kind PLURAL[.GROUP]`: the label sweep lists only the kinds named (so the identity that
cleans needs `list` on nothing else: `kirvis deploy` passes the kinds its selection stores); the run records,
and the objects they name, are always read; a kind the sweep does not know is exit 2, naming those it does."""
from __future__ import annotations

import pytest

from chaoskirvis.cli import main
from chaoskirvis.client import ApiError, kube_api
from chaoskirvis.ledger.ownership import object_name, ownership_metadata
from chaoskirvis.ledger.refs import POD, SECRET, SERVICE
from chaoskirvis.sandbox.api import parse_api_path
from chaoskirvis.workload.actions import inject_risky_pod
from identities import limited_user


def stray(kind, run_id: str, slug: str) -> dict:
    """An object of the run found only by the label sweep (no record names it: as a run killed between its
    create and its record's patch would leave one)."""
    metadata = {"name": object_name(run_id, slug, "x1"), **ownership_metadata(run_id, "test")}
    if kind is POD:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}
    if kind is SERVICE:
        return {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
                "spec": {"ports": [{"port": 80}], "selector": {"app": "none"}}}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "stringData": {"k": "v"}}


def exists(api, kind, namespace: str, name: str) -> bool:
    try:
        api.get(f"{kind.collection_path(namespace)}/{name}")
    except ApiError as exc:
        assert exc.status == 404
        return False
    return True


def listed(sandbox, seen: int, namespace: str) -> set[str]:
    """The collections in `namespace` listed since request `seen`."""
    found = set()
    for request in sandbox.requests[seen:]:
        if request.method == "GET" and request.path.startswith(("/api/", "/apis/")):
            parsed = parse_api_path(request.path)
            if parsed.namespace == namespace and not parsed.name:
                found.add(parsed.plural)
    return found


def test_only_the_kinds_named_are_swept_and_the_records_are_always_followed(
        sandbox, make_namespace, run, monkeypatch, capsys):
    namespace = make_namespace(enforce="privileged")
    api = kube_api(secrets={"KUBECONFIG": str(sandbox.kubeconfig)})
    recorded = inject_risky_pod(namespace, ["privileged"], **run)  # a pod its record names
    assert recorded["outcome"] == "allowed"
    run_id = run["configuration"]["kirvis_run_id"]
    strays = {kind: stray(kind, run_id, kind.plural)["metadata"]["name"] for kind in (POD, SERVICE, SECRET)}
    for kind in strays:
        api.create(kind.collection_path(namespace), stray(kind, run_id, kind.plural))
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    seen = len(sandbox.sandbox.requests)

    assert main(["cleanup", "--all", "-n", namespace, "--kind", "services"]) == 0
    out = capsys.readouterr().out

    assert listed(sandbox.sandbox, seen, namespace) == {"services", "configmaps"}
    assert f"removing Service {strays[SERVICE]} in namespace {namespace}" in out
    assert not exists(api, SERVICE, namespace, strays[SERVICE])
    # not swept: the pod and the Secret no record names stay
    assert exists(api, POD, namespace, strays[POD]) and exists(api, SECRET, namespace, strays[SECRET])
    assert strays[POD] not in out and strays[SECRET] not in out
    # the record is read, and the pod it names removed, though pods are not swept
    assert f"removing Pod {recorded['name']} in namespace {namespace}" in out
    assert not exists(api, POD, namespace, recorded["name"])
    assert f"removing record ConfigMap kirvis-ledger-{run_id} in namespace {namespace}" in out

    # the plural alone or with its group, repeated: both kinds swept, nothing else listed
    seen = len(sandbox.sandbox.requests)
    assert main(["cleanup", "--all", "-n", namespace, "--kind", "pods", "--kind", "secrets"]) == 0
    assert listed(sandbox.sandbox, seen, namespace) == {"pods", "secrets", "configmaps"}
    assert not exists(api, POD, namespace, strays[POD]) and not exists(api, SECRET, namespace, strays[SECRET])
    capsys.readouterr()


def test_without_kind_every_kind_is_swept(sandbox, make_namespace, run, monkeypatch, capsys):
    namespace = make_namespace(enforce="privileged")
    api = kube_api(secrets={"KUBECONFIG": str(sandbox.kubeconfig)})
    run_id = run["configuration"]["kirvis_run_id"]
    api.create(SECRET.collection_path(namespace), stray(SECRET, run_id, "secret"))
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    seen = len(sandbox.sandbox.requests)
    assert main(["cleanup", "--all", "-n", namespace]) == 0
    assert {"deployments", "daemonsets", "cronjobs", "pods", "services", "networkpolicies", "rolebindings", "roles",
            "secrets", "configmaps"} <= listed(sandbox.sandbox, seen, namespace)
    assert not exists(api, SECRET, namespace, object_name(run_id, "secret", "x1"))
    capsys.readouterr()


def test_configmaps_alone_reads_the_records_only(sandbox, make_namespace, run, monkeypatch, capsys):
    """What `kirvis deploy` passes for a namespace where the selection stores nothing (a guardrail change)."""
    namespace = make_namespace(enforce="privileged")
    recorded = inject_risky_pod(namespace, ["privileged"], **run)
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    seen = len(sandbox.sandbox.requests)
    assert main(["cleanup", "--all", "-n", namespace, "--kind", "configmaps"]) == 0
    assert listed(sandbox.sandbox, seen, namespace) == {"configmaps"}
    assert f"removing Pod {recorded['name']} in namespace {namespace}" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["pod", "deployments.batch", "Pods", "ingresses.networking.k8s.io", ""])
def test_an_unknown_kind_is_exit_2_naming_the_known_ones(kind, sandbox, monkeypatch, capsys):
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    seen = len(sandbox.sandbox.requests)
    assert main(["cleanup", "--expired", "--kind", "pods", "--kind", kind]) == 2
    err = capsys.readouterr().err
    assert f"unknown --kind {kind!r}" in err, err
    for known in ("deployments.apps", "cronjobs.batch", "pods", "networkpolicies.networking.k8s.io",
                  "roles.rbac.authorization.k8s.io", "secrets", "certificatesigningrequests.certificates.k8s.io",
                  "configmaps"):
        assert known in err, err
    assert len(sandbox.sandbox.requests) == seen  # refused before any request


def test_an_identity_that_may_list_only_the_kinds_named_cleans_with_them(
        sandbox, api, make_namespace, run, monkeypatch, capsys, tmp_path):
    """The point of --kind: a cleaner granted list, get and delete on Services and ConfigMaps only (as
    `kirvis deploy` grants its job) cleans with `--kind services`, exit 0; without it, the sweep of each other
    kind is refused, named, and cleanup exits 1."""
    namespace = make_namespace(enforce="privileged")
    admin = kube_api(secrets={"KUBECONFIG": str(sandbox.kubeconfig)})
    run_id = run["configuration"]["kirvis_run_id"]
    service = stray(SERVICE, run_id, "svc")
    admin.create(SERVICE.collection_path(namespace), service)
    name = f"cleaner-{namespace}"
    kubeconfig = limited_user(sandbox.sandbox, api, name, [
        {"apiGroups": [""], "resources": ["services", "configmaps"], "verbs": ["list", "get", "delete"]}],
        tmp_path / "cleaner.kubeconfig")
    try:
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        assert main(["cleanup", "--all", "-n", namespace, "--kind", "services"]) == 0, capsys.readouterr().err
        assert not exists(admin, SERVICE, namespace, service["metadata"]["name"])
        assert main(["cleanup", "--all", "-n", namespace]) == 1
        err = capsys.readouterr().err
        for plural in ("deployments", "daemonsets", "cronjobs", "pods", "networkpolicies", "rolebindings", "roles",
                       "secrets"):
            assert f"cannot list {plural} in namespace {namespace} (403" in err, err
        assert "cannot list services" not in err and "cannot list configmaps" not in err, err
    finally:
        admin.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}")
        admin.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}")
