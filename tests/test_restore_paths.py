"""The paths of restore that a healthy sandbox never takes, driven through the fault-injecting proxy.

A delete the API server refuses (500), an object that stays after its delete while a finalizer holds it
(the API server answers the DELETE and every GET with it, ``metadata.deletionTimestamp`` set, until the
finalizers are removed: https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/), a
list that fails, and a run record that cannot be written before a create (then nothing may be created).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes.client.rest import ApiException

from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.workload.actions import inject_risky_pod
from chaosrun import BIN, EXPERIMENTS, chaos_env
from fault_proxy import Answer, Delay, FaultProxy

KIRVIS = str(Path(sys.executable).parent / "kirvis")


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def through(proxy: FaultProxy, run: dict, tmp_path: Path) -> dict:
    """The run's activity arguments, talking to the API through `proxy`."""
    kubeconfig = proxy.write_kubeconfig(tmp_path / "proxy.kubeconfig")
    return {"configuration": run["configuration"], "secrets": {"KUBECONFIG": str(kubeconfig)}}


def pod_names(core, namespace: str, run_id: str) -> list[str]:
    return sorted(p.metadata.name for p in core.list_namespaced_pod(
        namespace, label_selector=f"chaoskirvis.io/run-id={run_id}").items)


def has_record(core, namespace: str, run_id: str) -> bool:
    try:
        core.read_namespaced_config_map(f"kirvis-ledger-{run_id}", namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def kirvis(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KIRVIS, *args], env=chaos_env(kubeconfig), capture_output=True, text=True, timeout=120)


def test_a_failed_delete_keeps_the_record_and_a_later_cleanup_finishes_it(sandbox, make_namespace, core, run,
                                                                           tmp_path):
    namespace = make_namespace(enforce="privileged")
    run_id = run["configuration"]["kirvis_run_id"]
    refused = inject_risky_pod(namespace, ["privileged"], **run)["name"]
    removed = inject_risky_pod(namespace, ["privileged"], **run)["name"]
    refused_path = f"/api/v1/namespaces/{namespace}/pods/{refused}"

    def rule(method, path, query):
        if method == "DELETE" and path == refused_path:
            return Answer(500, status(500, "InternalError", "etcdserver: request timed out"))
        return None

    with FaultProxy(sandbox.sandbox, rule) as proxy, pytest.raises(ActivityFailed) as failed:
        restore_run(**through(proxy, run, tmp_path))

    message = str(failed.value)
    assert f"Pod {refused} in namespace {namespace}: 500 etcdserver: request timed out" in message
    assert "its record is kept" in message and f"kirvis cleanup --run-id {run_id}" in message
    assert pod_names(core, namespace, run_id) == [refused]
    assert has_record(core, namespace, run_id)

    done = kirvis(sandbox.kubeconfig, "cleanup", "--run-id", run_id)

    assert done.returncode == 0, done.stderr
    assert f"removing Pod {refused} in namespace {namespace}" in done.stdout
    assert removed not in done.stdout
    assert pod_names(core, namespace, run_id) == [] and not has_record(core, namespace, run_id)


def test_an_object_still_terminating_is_waited_for_within_wait_seconds_and_reported(
        sandbox, make_namespace, core, api, run, tmp_path):
    namespace = make_namespace(enforce="privileged")
    run_id = run["configuration"]["kirvis_run_id"]
    name = inject_risky_pod(namespace, ["privileged"], **run)["name"]
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    terminating = api.sanitize_for_serialization(core.read_namespaced_pod(name, namespace))
    terminating["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", deletionGracePeriodSeconds=0,
                                   finalizers=["example.com/hold"])
    deleted = []

    def rule(method, request_path, query):  # the delete is answered as the API server answers it then
        if request_path != path:
            return None
        if method == "DELETE":
            deleted.append(time.monotonic())
            return Answer(200, terminating)
        return Answer(200, terminating) if deleted and method == "GET" else None

    with FaultProxy(sandbox.sandbox, rule) as proxy, pytest.raises(ActivityFailed) as failed:
        restore_run(wait_seconds=2, **through(proxy, run, tmp_path))
    waited = time.monotonic() - deleted[0]
    reads_after_delete = [r for r in proxy.requests if r.method == "GET" and r.path == path][1:]

    assert f"Pod {name} in namespace {namespace}: still terminating after 2s" in str(failed.value)
    assert 2 <= waited < 8, waited
    assert 2 <= len(reads_after_delete) <= 8
    assert has_record(core, namespace, run_id)

    done = kirvis(sandbox.kubeconfig, "cleanup", "--run-id", run_id)  # no finalizer holds it now

    assert done.returncode == 0, done.stderr
    assert pod_names(core, namespace, run_id) == [] and not has_record(core, namespace, run_id)


def test_independent_deletes_go_concurrently(sandbox, make_namespace, core, run, tmp_path):
    """Six pods whose deletes each take a second to be answered are restored in about one second, not six."""
    namespace = make_namespace(enforce="privileged")
    run_id = run["configuration"]["kirvis_run_id"]
    names = [inject_risky_pod(namespace, ["privileged"], **run)["name"] for _ in range(6)]

    def rule(method, path, query):
        return Delay(1.0) if method == "DELETE" and "/pods/" in path else None

    with FaultProxy(sandbox.sandbox, rule) as proxy:
        started = time.monotonic()
        summary = restore_run(**through(proxy, run, tmp_path))
        took = time.monotonic() - started

    assert sorted(summary["removed"]) == sorted(f"Pod {name} in namespace {namespace}" for name in names)
    assert took < 4, took
    assert pod_names(core, namespace, run_id) == [] and not has_record(core, namespace, run_id)


@pytest.mark.parametrize("method, code, reason", [
    ("PATCH", 503, "ServiceUnavailable"),
    ("POST", 403, "Forbidden"),
])
def test_a_record_that_cannot_be_written_means_nothing_is_created(sandbox, make_namespace, core, run, tmp_path,
                                                                  method, code, reason):
    """The write-ahead entry is the record's POST at the run's first attempt in a namespace, a PATCH of it
    at the next ones: the refused one is the second attempt's PATCH, or the first attempt's POST."""
    namespace = make_namespace(enforce="privileged")
    run_id = run["configuration"]["kirvis_run_id"]
    records = f"/api/v1/namespaces/{namespace}/configmaps"
    first = inject_risky_pod(namespace, ["privileged"], **run)["name"] if method == "PATCH" else None

    def rule(request_method, path, query):
        if request_method == method and path.startswith(records):
            return Answer(code, status(code, reason, f"the record write was refused ({code})"))
        return None

    with FaultProxy(sandbox.sandbox, rule) as proxy:
        with pytest.raises(ActivityFailed) as failed:
            inject_risky_pod(namespace, ["privileged"], **through(proxy, run, tmp_path))
        creates = [r for r in proxy.requests if r.method == "POST" and r.path.endswith("/pods")]

    assert "could not record the run's intent" in str(failed.value) and "nothing was created" in str(failed.value)
    assert [(r.method, r.path) for r in proxy.requests if r.path.startswith(records)][-1][0] == method
    assert creates == []
    assert pod_names(core, namespace, run_id) == ([first] if first else [])


def test_cleanup_continues_past_a_failed_list_and_names_it(sandbox, make_namespace, core, run, tmp_path):
    broken, healthy = make_namespace(enforce="privileged"), make_namespace(enforce="privileged")
    run_id = run["configuration"]["kirvis_run_id"]
    stuck = inject_risky_pod(broken, ["privileged"], **run)["name"]
    inject_risky_pod(healthy, ["privileged"], **run)

    def rule(method, path, query):  # neither the labelled pods nor the records of `broken` can be listed
        lists = (f"/api/v1/namespaces/{broken}/pods", f"/api/v1/namespaces/{broken}/configmaps")
        if method == "GET" and path in lists and query.get("labelSelector"):
            return Answer(500, status(500, "InternalError", "the list failed"))
        return None

    with FaultProxy(sandbox.sandbox, rule) as proxy:
        done = kirvis(proxy.write_kubeconfig(tmp_path / "proxy.kubeconfig"),
                      "cleanup", "--run-id", run_id, "-n", broken, "-n", healthy)

    assert done.returncode == 1
    assert f"failed: cannot list pods in namespace {broken} (500 the list failed" in done.stderr
    assert f"failed: cannot list configmaps in namespace {broken} (500 the list failed" in done.stderr
    assert pod_names(core, healthy, run_id) == []
    assert pod_names(core, broken, run_id) == [stuck]
    assert has_record(core, broken, run_id) and has_record(core, healthy, run_id)  # kept: the sweep was incomplete

    again = kirvis(sandbox.kubeconfig, "cleanup", "--run-id", run_id, "-n", broken, "-n", healthy)

    assert again.returncode == 0, again.stderr
    assert pod_names(core, broken, run_id) == [] and not has_record(core, broken, run_id)
    assert not has_record(core, healthy, run_id)


def test_a_run_whose_restore_failed_is_an_error_naming_what_it_left(sandbox, make_namespace, core, tmp_path):
    """Held otherwise (the privileged pod is denied), but its record could not be deleted: error, not held."""
    namespace = make_namespace(enforce="baseline")

    def rule(method, path, query):
        if method == "DELETE" and path.startswith(f"/api/v1/namespaces/{namespace}/configmaps/kirvis-ledger-"):
            return Answer(500, status(500, "InternalError", "etcdserver: leader changed"))
        return None

    with FaultProxy(sandbox.sandbox, rule) as proxy:
        kubeconfig = proxy.write_kubeconfig(tmp_path / "proxy.kubeconfig")
        done = subprocess.run(
            [str(BIN / "kirvis"), "run", str(EXPERIMENTS / "privileged-pod-denied.yaml"), "--var",
             f"namespace={namespace}", "--journals", "journals"],
            cwd=tmp_path, env=chaos_env(kubeconfig), capture_output=True, text=True, timeout=300)
    section = json.loads((tmp_path / "journals" / "privileged-pod-denied.json").read_text())["chaoskirvis"]
    run_id = section["run_id"]
    record = f"record ConfigMap kirvis-ledger-{run_id} in namespace {namespace}"

    assert section["ledger"]["restored"] is False and section["ledger"]["left_in_cluster"] == [record]
    assert section["verdict"]["result"] == "error"
    assert section["verdict"]["reason"].startswith(
        f"the run left {record} in the cluster: run `kirvis cleanup --run-id {run_id}`; otherwise held: ")
    assert done.returncode == 2, done.stdout + done.stderr
    assert kirvis(sandbox.kubeconfig, "cleanup", "--run-id", run_id).returncode == 0
    assert not has_record(core, namespace, run_id)
