"""Hostile change entries: a run record is a ConfigMap anyone who may write ConfigMaps in its namespace can
forge, and restore runs with the runner's rights. So a change entry is validated before anything is built
from it, a patched object is put back only while it carries the run's own mark, a deleted one is recreated
only by create, and a cluster-scoped one only for a cleanup naming its run (docs/guardrails.md, "What a
record is trusted with").
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from chaoskirvis.guardrails.actions import tamper_guardrail
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.changes import CHANGED_BY_ANNOTATION
from chaoskirvis.ledger.runid import new_run_id
from chaosrun import chaos_env

KIRVIS = str(Path(sys.executable).parent / "kirvis")
GROUP = "admissionregistration.k8s.io/v1"


def marks(run_id: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "chaoskirvis", "chaoskirvis.io/run-id": run_id,
            "chaoskirvis.io/technique": "ledger", "chaoskirvis.io/record": "ledger"}


def plant(core, home: str, run_id: str, entries: dict[str, dict]) -> str:
    """A run record as `kirvis` writes it (every mark), holding `entries`; its name."""
    name = f"kirvis-ledger-{run_id}"
    core.create_namespaced_config_map(home, {"metadata": {"name": name, "labels": marks(run_id)},
                                             "data": {k: json.dumps(v) for k, v in entries.items()}})
    return name


def entry(kind: str, api_version: str, plural: str, name: str, namespace: str | None, state: str,
          original: dict, intended: dict | None = None) -> dict:
    found = {"apiVersion": api_version, "kind": kind, "plural": plural, "name": name, "namespace": namespace,
             "state": state, "original": original}
    if intended is not None:
        found["intended"] = intended
    return found


def namespace_entry(original: dict, state: str = "changed", intended: dict | None = None, run_id: str = "",
                    name: str | None = None) -> dict:
    if intended is None:
        intended = copy.deepcopy(original)
        intended["metadata"].setdefault("annotations", {})[CHANGED_BY_ANNOTATION] = run_id
    return entry("Namespace", "v1", "namespaces", name or original["metadata"]["name"], None, state, original,
                 intended)


def policy(name: str, namespace: str, **metadata) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace, "uid": "forged-uid", "resourceVersion": "1",
                         **metadata},
            "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}}


def policy_entry(original: dict, namespace: str | None = None) -> dict:
    return entry("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", original["metadata"]["name"],
                 namespace or original["metadata"]["namespace"], "deleted", original)


def cleanup(sandbox, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KIRVIS, "cleanup", *args], env=chaos_env(sandbox.kubeconfig), capture_output=True,
                          text=True, timeout=60)


def plain(api: client.ApiClient, obj) -> dict:
    return api.sanitize_for_serialization(obj)


def writes_since(sandbox, since: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.sandbox.requests[since:]
            if (r.user_agent or "").startswith("chaoskirvis/") and r.method in ("PUT", "PATCH", "POST")]


def test_forged_change_entries_are_reported_and_never_acted_on(sandbox, api, core, make_namespace):
    run_id = new_run_id()
    home, victim = make_namespace(enforce="restricted"), make_namespace(enforce="restricted")
    net = client.NetworkingV1Api(api)
    net.create_namespaced_network_policy(victim, {"metadata": {"name": "default-deny"},
                                                  "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    weakened = {**plain(api, core.read_namespace(victim))}
    weakened["metadata"] = {**weakened["metadata"], "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}
    own = plain(api, core.read_namespace(home))
    renamed = copy.deepcopy(own)
    renamed["metadata"]["name"] = victim
    unmarked = namespace_entry(own, run_id=run_id)
    unmarked["intended"]["metadata"]["annotations"][CHANGED_BY_ANNOTATION] = "someone-else"
    entries = {
        # another namespace's change, in this namespace's record
        f"namespaces._cluster.{victim}": namespace_entry(weakened, run_id=run_id),
        # a NetworkPolicy of another namespace
        f"networkpolicies.{victim}.default-deny": policy_entry(policy("default-deny", victim), namespace=victim),
        # a kind no guardrail technique changes
        f"pods.{home}.app": entry("Pod", "v1", "pods", "app", home, "deleted",
                                  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": home}}),
        # the original is another object than the entry names
        f"namespaces._cluster.{home}": namespace_entry(renamed, run_id=run_id, name=home),
        # what a recreate would take over
        f"networkpolicies.{home}.owned": policy_entry(policy("owned", home, ownerReferences=[{
            "apiVersion": "v1", "kind": "Namespace", "name": home, "uid": own["metadata"]["uid"]}])),
        f"networkpolicies.{home}.finalized": policy_entry(policy("finalized", home, finalizers=["example.com/x"])),
        # a key naming another object than its entry
        f"networkpolicies.{home}.other": policy_entry(policy("misnamed", home)),
    }
    record = plant(core, home, run_id, entries)
    # what the run intended without its own mark (a separate record key set: one object per key)
    core.patch_namespaced_config_map(record, home, {"data": {f"namespaces._cluster.{home}x": json.dumps(unmarked)}})
    before = {ns: core.read_namespace(ns).metadata.resource_version for ns in (home, victim)}
    seen = len(sandbox.sandbox.requests)

    done = cleanup(sandbox, "--run-id", run_id)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("invalid change entry") == len(entries) + 1, done.stdout
    for reason in ("may only be recorded in that namespace's own record", "may only name objects in its own",
                   "is not one a guardrail technique changes", "not the entry's object",
                   "carries metadata.ownerReferences", "carries metadata.finalizers", "does not name",
                   f"does not carry its mark {CHANGED_BY_ANNOTATION}={run_id}"):
        assert reason in done.stdout, reason
    assert {ns: core.read_namespace(ns).metadata.resource_version for ns in (home, victim)} == before
    assert [p.metadata.name for p in net.list_namespaced_network_policy(home).items] == []
    assert writes_since(sandbox, seen) == []  # nothing built from a forged entry: reads only (the record is kept)


def test_a_forged_original_cannot_put_back_a_namespace_the_run_did_not_mark(sandbox, api, core, make_namespace):
    """The mark is written by the run's own patch: a forger who may write ConfigMaps but not patch the
    namespace cannot add it, so a record describing a "privileged original" changes nothing."""
    run_id = new_run_id()
    home = make_namespace(enforce="restricted")
    forged = plain(api, core.read_namespace(home))
    forged["metadata"]["labels"] = {"pod-security.kubernetes.io/enforce": "privileged"}
    before = core.read_namespace(home).metadata
    claimed = namespace_entry(forged, run_id=run_id)
    claimed["written_resource_version"] = before.resource_version  # "the run wrote what is there now"
    record = plant(core, home, run_id, {f"namespaces._cluster.{home}": claimed})

    done = cleanup(sandbox, "--run-id", run_id)

    assert done.returncode == 1
    assert f"conflict: Namespace {home}: someone changed it since the run did (the run's mark is gone)" in done.stderr
    now = core.read_namespace(home).metadata
    assert now.labels == before.labels and now.resource_version == before.resource_version
    core.delete_namespaced_config_map(record, home)

    # never confirmed (state changing): the run's patch never landed, so there is nothing to put back
    plant(core, home, run_id, {f"namespaces._cluster.{home}": namespace_entry(forged, "changing", run_id=run_id)})
    done = cleanup(sandbox, "--run-id", run_id)
    assert done.returncode == 0 and f"nothing to put back: Namespace {home}" in done.stdout, done.stdout + done.stderr
    assert core.read_namespace(home).metadata.resource_version == before.resource_version


def test_a_forged_deleted_object_is_created_only_never_over_an_existing_one(sandbox, api, core, make_namespace):
    run_id = new_run_id()
    home = make_namespace()
    net = client.NetworkingV1Api(api)
    net.create_namespaced_network_policy(home, {"metadata": {"name": "default-deny"},
                                                "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    record = plant(core, home, run_id,
                   {f"networkpolicies.{home}.default-deny": policy_entry(policy("default-deny", home))})
    before = net.read_namespaced_network_policy("default-deny", home)

    done = cleanup(sandbox, "--run-id", run_id)

    assert done.returncode == 1
    assert f"conflict: NetworkPolicy default-deny in namespace {home}: another object of that name" in done.stderr
    after = net.read_namespaced_network_policy("default-deny", home)
    assert after.metadata.resource_version == before.metadata.resource_version and after.spec.ingress is None
    core.delete_namespaced_config_map(record, home)


def test_what_a_forged_record_can_still_do_create_an_absent_object_it_describes(sandbox, api, core, make_namespace):
    """The trust that remains (docs/guardrails.md): a deleted object's original cannot be checked against
    anything, so a forged entry makes `kirvis cleanup --run-id` create the NetworkPolicy it describes, in the
    record's own namespace, without owner references or finalizers, and only where none of that name is."""
    run_id = new_run_id()
    home = make_namespace()
    plant(core, home, run_id, {f"networkpolicies.{home}.forged": policy_entry(policy("forged", home))})

    done = cleanup(sandbox, "--run-id", run_id)

    assert done.returncode == 0 and f"put back: NetworkPolicy forged in namespace {home}" in done.stdout
    created = client.NetworkingV1Api(api).read_namespaced_network_policy("forged", home).metadata
    assert created.uid != "forged-uid" and not created.owner_references and not created.finalizers


CLUSTER_SCOPED = {
    "validatingadmissionpolicybindings": ("ValidatingAdmissionPolicyBinding", lambda name: {
        "spec": {"policyName": "anything", "validationActions": ["Deny"]}}),
    "validatingwebhookconfigurations": ("ValidatingWebhookConfiguration", lambda name: {"webhooks": [{
        "name": "all.forger.example.com", "failurePolicy": "Ignore", "sideEffects": "None",
        "admissionReviewVersions": ["v1"], "clientConfig": {"url": "https://forger.example.com/review"},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["secrets"]}],
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nowhere"}}}]}),
}


@pytest.mark.parametrize("plural", CLUSTER_SCOPED)
def test_a_cluster_scoped_change_is_put_back_only_by_a_cleanup_naming_its_run(sandbox, api, core, make_namespace,
                                                                               plural):
    run_id = new_run_id()
    home = make_namespace()
    name = f"kirvis-forged-{run_id}"
    kind, body = CLUSTER_SCOPED[plural]
    original = {"apiVersion": GROUP, "kind": kind, "metadata": {"name": name, "uid": "forged", "resourceVersion": "1"},
                **body(name)}
    record = plant(core, home, run_id, {f"{plural}._cluster.{name}": entry(kind, GROUP, plural, name, None, "deleted",
                                                                           original)})
    admission = client.AdmissionregistrationV1Api(api)
    listed = {"validatingadmissionpolicybindings": admission.list_validating_admission_policy_binding,
              "validatingwebhookconfigurations": admission.list_validating_webhook_configuration}[plural]

    for selection in (["--all"], ["--all", "--cluster-scoped"], ["--expired", "--cluster-scoped"]):
        done = cleanup(sandbox, *selection, "-n", home)
        assert done.returncode == 0, done.stdout + done.stderr
        assert selection[0] == "--expired" or f"only `kirvis cleanup --run-id {run_id}` puts it back" in done.stdout
        assert not [o for o in listed().items if o.metadata.name == name]
        assert core.read_namespaced_config_map(record, home).metadata.name == record  # kept

    done = cleanup(sandbox, "--run-id", run_id)  # the trust that remains: a person naming the run
    try:
        assert done.returncode == 0 and f"put back: {kind} {name}" in done.stdout, done.stdout + done.stderr
    finally:
        getattr(admission, {"validatingadmissionpolicybindings": "delete_validating_admission_policy_binding",
                            "validatingwebhookconfigurations": "delete_validating_webhook_configuration"}[plural])(name)


def test_the_runs_own_restore_puts_back_what_it_saved_not_what_the_record_says_now(core, make_namespace, run):
    namespace = make_namespace(enforce="restricted")
    run_id = run["configuration"]["kirvis_run_id"]
    tamper_guardrail("pod-security-privileged", namespace, mode="change", **run)
    record = core.read_namespaced_config_map(f"kirvis-ledger-{run_id}", namespace)
    key = f"namespaces._cluster.{namespace}"
    forged = json.loads(record.data[key])
    forged["original"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    core.patch_namespaced_config_map(record.metadata.name, namespace, {"data": {key: json.dumps(forged)}})

    assert restore_run(**run)["restored"] == [f"Namespace {namespace}"]

    assert core.read_namespace(namespace).metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("state", ["changed", "deleted"])
def test_an_entry_that_is_not_an_object_is_invalid(sandbox, core, make_namespace, state):
    run_id = new_run_id()
    home = make_namespace()
    plant(core, home, run_id, {f"namespaces._cluster.{home}": {
        "apiVersion": "v1", "kind": "Namespace", "plural": "namespaces", "name": home, "namespace": None,
        "state": state, "original": "not an object"}})
    done = cleanup(sandbox, "--run-id", run_id)
    assert done.returncode == 0 and "its original is not an object" in done.stdout, done.stdout + done.stderr
