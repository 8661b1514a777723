"""Restore leaves alone an object that lacks any one ownership mark (README, "Labels, the run record").

The marks restore and cleanup require: the labels app.kubernetes.io/managed-by=chaoskirvis,
chaoskirvis.io/run-id=<run id> and chaoskirvis.io/technique, and the run id in the object's name. Each
case swaps the run's own pod for a copy that differs from it only in one mark.
"""
from __future__ import annotations

import copy

import pytest

from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.workload.actions import inject_risky_pod


def without_label(key: str):
    def change(pod: dict, run_id: str) -> dict:
        del pod["metadata"]["labels"][key]
        return pod
    return change


def name_without_run_id(pod: dict, run_id: str) -> dict:
    pod["metadata"]["name"] = pod["metadata"]["name"].replace(run_id, "someone-else")
    return pod


@pytest.mark.parametrize("change", [
    pytest.param(without_label("app.kubernetes.io/managed-by"), id="no-managed-by-label"),
    pytest.param(without_label("chaoskirvis.io/run-id"), id="no-run-id-label"),
    pytest.param(without_label("chaoskirvis.io/technique"), id="no-technique-label"),
    pytest.param(name_without_run_id, id="run-id-not-in-name"),
])
def test_restore_leaves_alone_an_object_missing_one_mark(make_namespace, core, api, run, change):
    namespace = make_namespace(enforce="privileged")
    run_id = run["configuration"]["kirvis_run_id"]
    outcome = inject_risky_pod(namespace, ["privileged"], **run)
    assert outcome["outcome"] == "allowed"
    ours = api.sanitize_for_serialization(core.read_namespaced_pod(outcome["name"], namespace))
    lookalike = change(copy.deepcopy(ours), run_id)
    lookalike["metadata"] = {k: lookalike["metadata"][k] for k in ("name", "labels", "annotations")}
    lookalike.pop("status", None)
    core.delete_namespaced_pod(outcome["name"], namespace)
    core.create_namespaced_pod(namespace, lookalike)

    summary = restore_run(**run)

    assert summary["removed"] == [] and summary["failed"] == []
    survivor = core.read_namespaced_pod(lookalike["metadata"]["name"], namespace)
    assert survivor.metadata.labels == lookalike["metadata"]["labels"]
    core.delete_namespaced_pod(lookalike["metadata"]["name"], namespace)


def test_restore_removes_the_object_carrying_every_mark(make_namespace, core, api, run):
    """The control case: the same swap with nothing changed is removed."""
    namespace = make_namespace(enforce="privileged")
    outcome = inject_risky_pod(namespace, ["privileged"], **run)
    ours = api.sanitize_for_serialization(core.read_namespaced_pod(outcome["name"], namespace))
    copy_of_ours = {"apiVersion": "v1", "kind": "Pod", "spec": ours["spec"],
                    "metadata": {k: ours["metadata"][k] for k in ("name", "labels", "annotations")}}
    core.delete_namespaced_pod(outcome["name"], namespace)
    core.create_namespaced_pod(namespace, copy_of_ours)

    summary = restore_run(**run)

    assert summary["removed"] == [f"Pod {outcome['name']} in namespace {namespace}"]
