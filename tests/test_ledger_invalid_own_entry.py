"""A run's own record holding an entry that fails validation (someone edited it): restore never acts on
that entry, and never deletes the record either, since the entry may hold the only copy of an original.
The run's restore says so (naming `kirvis cleanup --run-id`), and so do the journal's ledger and verdict;
what else the record names is still put back; once a person has mended the entry, cleanup finishes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client
from kubernetes.client.rest import ApiException

from chaoskirvis.client import kube_api
from chaoskirvis.evidence.ledger import ledger_evidence
from chaoskirvis.evidence.verdict import verdict_of
from chaoskirvis.guardrails.actions import tamper_guardrail
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.state import run_state
from chaosrun import chaos_env

KIRVIS = str(Path(sys.executable).parent / "kirvis")
ENFORCE = "pod-security.kubernetes.io/enforce"


def cleanup(sandbox, run_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([KIRVIS, "cleanup", "--run-id", run_id], env=chaos_env(sandbox.kubeconfig),
                          capture_output=True, text=True, timeout=60)


def corrupt_name(entry: dict) -> tuple[dict, str]:
    return {**entry, "name": ".."}, "invalid change entry"


def corrupt_original(entry: dict) -> tuple[dict, str]:
    return {**entry, "original": "not an object"}, "invalid change entry"


@pytest.mark.parametrize("corrupt", [corrupt_name, corrupt_original])
def test_an_invalid_change_entry_of_the_runs_own_record_keeps_the_record(sandbox, api, core, make_namespace, run,
                                                                           corrupt):
    namespace = make_namespace(enforce="restricted")
    run_id = run["configuration"]["kirvis_run_id"]
    net = client.NetworkingV1Api(api)
    net.create_namespaced_network_policy(namespace, {"metadata": {"name": "default-deny"},
                                                     "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    tamper_guardrail("network-policy-opened", namespace, name="default-deny", mode="change", **run)
    tampered = tamper_guardrail("pod-security-privileged", namespace, mode="change", **run)
    record = f"kirvis-ledger-{run_id}"
    key = f"namespaces._cluster.{namespace}"
    saved = core.read_namespaced_config_map(record, namespace).data[key]
    bad, reported = corrupt(json.loads(saved))
    core.patch_namespaced_config_map(record, namespace, {"data": {key: json.dumps(bad)}})

    with pytest.raises(ActivityFailed) as failed:
        restore_run(**run)

    assert f"invalid change entry {key!r}" in str(failed.value) and f"kirvis cleanup --run-id {run_id}" in str(
        failed.value), failed.value
    assert core.read_namespaced_config_map(record, namespace).data[key] == json.dumps(bad)  # the record is kept
    assert net.read_namespaced_network_policy("default-deny", namespace).spec.ingress is None  # the valid one: put back
    assert core.read_namespace(namespace).metadata.labels[ENFORCE] == "privileged"  # never acted on
    ledger = ledger_evidence({}, run_state(run_id), [], kube_api(**run))
    assert ledger["restored"] is False and record in str(ledger["left_in_cluster"]), ledger
    reason = verdict_of({"status": "completed"}, [tampered], ledger=ledger, run_id=run_id).reason
    assert f"kirvis cleanup --run-id {run_id}" in reason and record in reason, reason

    done = cleanup(sandbox, run_id)

    assert f"left alone: {reported} {key!r}" in done.stdout, done.stdout + done.stderr
    assert core.read_namespaced_config_map(record, namespace).data[key] == json.dumps(bad)
    assert core.read_namespace(namespace).metadata.labels[ENFORCE] == "privileged"

    core.patch_namespaced_config_map(record, namespace, {"data": {key: saved}})  # a person mends the entry
    done = cleanup(sandbox, run_id)

    assert done.returncode == 0 and f"put back: Namespace {namespace}" in done.stdout, done.stdout + done.stderr
    assert core.read_namespace(namespace).metadata.labels[ENFORCE] == "restricted"
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map(record, namespace)
    assert gone.value.status == 404


def test_an_invalid_node_file_entry_of_the_runs_own_record_keeps_the_record(sandbox, core, make_namespace, run):
    namespace = make_namespace(enforce="restricted")
    run_id = run["configuration"]["kirvis_run_id"]
    tamper_guardrail("pod-security-privileged", namespace, mode="change", **run)
    record = f"kirvis-ledger-{run_id}"
    key = "nodefiles.kirvis-node.etc-kubernetes-manifests-kube-apiserver-yaml"
    bad = {"type": "node-file", "state": "node-changed", "node": "..", "path": "/etc/kubernetes/../x"}
    core.patch_namespaced_config_map(record, namespace, {"data": {key: json.dumps(bad)}})

    with pytest.raises(ActivityFailed) as failed:
        restore_run(**run)

    assert f"invalid node-file entry {key!r}" in str(failed.value), failed.value
    assert f"kirvis cleanup --run-id {run_id}" in str(failed.value), failed.value
    assert core.read_namespace(namespace).metadata.labels[ENFORCE] == "restricted"  # the valid change: put back
    assert core.read_namespaced_config_map(record, namespace).data[key] == json.dumps(bad)

    done = cleanup(sandbox, run_id)
    assert f"left alone: invalid node-file entry {key!r}" in done.stdout, done.stdout + done.stderr
    assert key in core.read_namespaced_config_map(record, namespace).data

    core.patch_namespaced_config_map(record, namespace, {"data": {key: None}})  # a person settles it
    done = cleanup(sandbox, run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map(record, namespace)
    assert gone.value.status == 404
