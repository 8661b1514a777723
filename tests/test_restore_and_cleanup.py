"""Restore and cleanup remove exactly what a run created: never an object without its marks."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes.client.rest import ApiException

from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.workload.actions import inject_risky_pod
from chaosrun import BIN, chaos_env

KIRVIS = str(Path(sys.executable).parent / "kirvis")




def run_objects(core, run_id: str) -> list[str]:
    selector = f"chaoskirvis.io/run-id={run_id}"
    pods = core.list_pod_for_all_namespaces(label_selector=selector).items
    maps = core.list_config_map_for_all_namespaces(label_selector=selector).items
    return sorted(f"{o.metadata.namespace}/{o.metadata.name}" for o in pods + maps)


def foreign_pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}


def test_restore_removes_the_run_and_is_idempotent(make_namespace, core, run):
    namespace = make_namespace(enforce="privileged")
    outcome = inject_risky_pod(namespace, ["privileged"], **run)
    run_id = run["configuration"]["kirvis_run_id"]
    assert outcome["outcome"] == "allowed"
    assert run_objects(core, run_id) == sorted(
        [f"{namespace}/{outcome['name']}", f"{namespace}/kirvis-ledger-{run_id}"]
    )

    first = restore_run(**run)
    second = restore_run(**run)

    assert first["removed"] == [f"Pod {outcome['name']} in namespace {namespace}"]
    assert first["records_removed"] == [f"ConfigMap kirvis-ledger-{run_id} in namespace {namespace}"]
    assert second["removed"] == [] and second["failed"] == []
    assert run_objects(core, run_id) == []


def test_the_record_is_written_before_the_attempt(make_namespace, core, run):
    namespace = make_namespace(enforce="baseline")
    outcome = inject_risky_pod(namespace, ["privileged"], **run)
    run_id = run["configuration"]["kirvis_run_id"]

    record = core.read_namespaced_config_map(f"kirvis-ledger-{run_id}", namespace)
    entries = [json.loads(v) for v in record.data.values()]
    assert outcome["outcome"] == "blocked"
    # the intent is the record's only write: the denial is in the outcome, the record is removed at restore
    assert [(e["name"], e["state"], e["technique"]) for e in entries] == [(outcome["name"], "intended", "privileged")]
    assert record.metadata.labels["app.kubernetes.io/managed-by"] == "chaoskirvis"
    restore_run(**run)
    assert run_objects(core, run_id) == []


def test_restore_leaves_alone_an_object_with_the_same_name_but_not_our_labels(make_namespace, core, run):
    namespace = make_namespace(enforce="privileged")
    outcome = inject_risky_pod(namespace, ["privileged"], **run)
    core.delete_namespaced_pod(outcome["name"], namespace)
    core.create_namespaced_pod(namespace, foreign_pod(outcome["name"]))

    summary = restore_run(**run)

    assert summary["removed"] == []
    assert summary["left_alone"] == [f"Pod {outcome['name']} in namespace {namespace}"]
    survivor = core.read_namespaced_pod(outcome["name"], namespace)
    assert survivor.metadata.labels in (None, {})


def test_cleanup_all_never_touches_unlabelled_objects(sandbox, make_namespace, core, run):
    namespace = make_namespace(enforce="privileged")
    outcome = inject_risky_pod(namespace, ["privileged"], **run)
    lookalike = outcome["name"].replace("privileged", "lookalike")
    core.create_namespaced_pod(namespace, foreign_pod(lookalike))

    done = subprocess.run([KIRVIS, "cleanup", "--all", "-n", namespace], env=chaos_env(sandbox.kubeconfig),
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert f"removing Pod {outcome['name']} in namespace {namespace}" in done.stdout
    assert lookalike not in done.stdout
    assert core.read_namespaced_pod(lookalike, namespace).metadata.name == lookalike
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_pod(outcome["name"], namespace)
    assert gone.value.status == 404


def test_cleanup_expired_removes_only_what_has_expired(sandbox, make_namespace, core, run):
    namespace = make_namespace(enforce="privileged")
    expired = inject_risky_pod(namespace, ["privileged"], configuration={**run["configuration"], "kirvis_ttl_seconds": 1},
                               secrets=run["secrets"])
    time.sleep(1.5)  # expiry stamps have a resolution of one second
    fresh_run = new_run_id()
    reset_run_id(fresh_run)
    fresh = inject_risky_pod(namespace, ["privileged"], configuration={"kirvis_run_id": fresh_run},
                             secrets=run["secrets"])

    done = subprocess.run([KIRVIS, "cleanup", "--expired", "-n", namespace], env=chaos_env(sandbox.kubeconfig),
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    names = [p.metadata.name for p in core.list_namespaced_pod(namespace).items]
    assert expired["name"] not in names and fresh["name"] in names
    restore_run(configuration={"kirvis_run_id": fresh_run}, secrets=run["secrets"])


def test_cleanup_needs_a_selection(sandbox):
    done = subprocess.run([KIRVIS, "cleanup"], env=chaos_env(sandbox.kubeconfig), capture_output=True, text=True)
    assert done.returncode == 2
    assert "--run-id ID, --expired or --all" in done.stderr


def test_run_killed_with_sigkill_mid_method_is_fully_recoverable(sandbox, make_namespace, core, tmp_path):
    namespace = make_namespace(enforce="privileged")
    run_id = new_run_id()
    experiment = yaml.safe_load((Path(__file__).parents[1] / "experiments/privileged-pod-denied.yaml").read_text())
    experiment["method"][0]["pauses"] = {"after": 120}
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(experiment))
    chaos = subprocess.Popen(
        [str(BIN / "chaos"), "run", str(path), "--var", f"namespace={namespace}", "--journal-path",
         str(tmp_path / "journal.json")],
        cwd=tmp_path, env=chaos_env(sandbox.kubeconfig, KIRVIS_RUN_ID=run_id),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not core.list_namespaced_pod(namespace, label_selector=f"chaoskirvis.io/run-id={run_id}").items:
            assert chaos.poll() is None and time.monotonic() < deadline, "the injection never happened"
            time.sleep(0.1)
    finally:
        os.kill(chaos.pid, signal.SIGKILL)
        chaos.wait()
    assert len(run_objects(core, run_id)) == 2

    listing = subprocess.run([KIRVIS, "cleanup", "--run-id", run_id, "--dry-run"],
                             env=chaos_env(sandbox.kubeconfig), capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and listing.stdout.count("would remove") == 2
    assert len(run_objects(core, run_id)) == 2

    done = subprocess.run([KIRVIS, "cleanup", "--run-id", run_id], env=chaos_env(sandbox.kubeconfig),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert run_objects(core, run_id) == []
