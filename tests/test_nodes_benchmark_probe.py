"""kube_bench_detects over real HTTP: the test plays the Job controller and kube-bench (the sandbox has
neither): it makes the Job's pod as the controller would (template labels, job-name, ownerReference),
writes kube-bench's --json output to its log, and marks pod Succeeded and Job Complete (or Failed) with
`chaoskirvis.sandbox.jobs.finish_job`."""
import json
import threading
import time
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaoskirvis.ledger.probes import injections_detected
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.nodes import probes
from chaoskirvis.nodes.probes import cis_checks_pass, kube_bench_detects
from chaoskirvis.sandbox.jobs import finish_job
from chaoskirvis.workload.actions import inject_risky_pod

SAMPLE = (Path(__file__).parent / "benchmark_samples" / "kube_bench_node_fail.json").read_text()


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setattr(probes, "POLL_S", 0.1)


def _finish(core, batch, sandbox, namespace, output, job_condition="Complete"):
    """Wait for the probe's Job, then do what the Job controller and kube-bench would."""
    for _ in range(100):
        jobs = batch.list_namespaced_job(namespace).items
        if jobs:
            break
        time.sleep(0.05)
    job = jobs[0]
    template = job.spec.template
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{job.metadata.name}-x1", "labels": {**(template.metadata.labels or {}),
                                                                   "job-name": job.metadata.name},
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job.metadata.name,
                                          "uid": job.metadata.uid, "controller": True}]},
        "spec": client.ApiClient().sanitize_for_serialization(template.spec),
    }
    core.create_namespaced_pod(namespace, pod)
    if output is not None:
        sandbox.sandbox.append_log(namespace, pod["metadata"]["name"], output)
    finish_job(sandbox.sandbox, namespace, job.metadata.name, pod["metadata"]["name"],
               succeeded=job_condition == "Complete")


def _probe(api, core, sandbox, make_namespace, run, checks, output, job_condition="Complete",
           probe=kube_bench_detects):
    namespace = make_namespace()
    batch = client.BatchV1Api(api)
    player = threading.Thread(target=_finish, args=(core, batch, sandbox, namespace, output, job_condition))
    player.start()
    try:
        return namespace, probe(checks, "worker-1", within=10, namespace=namespace, **run)
    finally:
        player.join()


def test_fail_is_detected_with_time_and_counted(api, core, sandbox, make_namespace, run):
    namespace, outcome = _probe(api, core, sandbox, make_namespace, run, ["4.1.1"], SAMPLE)
    assert outcome["outcome"] == "detected" and outcome["detected"] is True
    assert 0 < outcome["time_to_detect_s"] < 10
    assert outcome["checks"] == {"4.1.1": "FAIL"}
    detections = run_state(current_run_id(run["configuration"])).detections
    assert [d["outcome"] for d in detections] == ["detected"]


def test_pass_is_missed(api, core, sandbox, make_namespace, run):
    _, outcome = _probe(api, core, sandbox, make_namespace, run, ["4.2.1"], SAMPLE)
    assert outcome["outcome"] == "missed" and outcome["detected"] is False
    assert outcome["time_to_detect_s"] is None


def test_one_pass_among_fails_is_missed(api, core, sandbox, make_namespace, run):
    _, outcome = _probe(api, core, sandbox, make_namespace, run, ["4.1.1", "4.2.1"], SAMPLE)
    assert outcome["outcome"] == "missed"


@pytest.mark.parametrize("checks, output, condition, message", [
    (["4.1.1"], SAMPLE, "Failed", "failed"),
    (["4.1.1"], "Error: config file not found\n", "Complete", "not JSON"),
    (["9.9.9"], SAMPLE, "Complete", "did not report"),
    (["4.2.6"], SAMPLE, "Complete", "could not decide"),
])
def test_benchmark_that_could_not_answer_is_an_error(api, core, sandbox, make_namespace, run, checks, output,
                                                      condition, message):
    with pytest.raises(ActivityFailed, match=message):
        _probe(api, core, sandbox, make_namespace, run, checks, output, condition)
    detections = run_state(current_run_id(run["configuration"])).detections
    assert [d["outcome"] for d in detections] == ["error"]


def test_job_without_pod_is_an_error_when_time_runs_out(api, make_namespace, run):
    namespace = make_namespace()
    with pytest.raises(ActivityFailed, match="did not finish within 1 s"):
        kube_bench_detects(["4.1.1"], "worker-1", within=1, namespace=namespace, **run)


def test_restore_removes_the_job(api, core, sandbox, make_namespace, run):
    from chaoskirvis.ledger.actions import restore_run
    namespace, _ = _probe(api, core, sandbox, make_namespace, run, ["4.1.1"], SAMPLE)
    batch = client.BatchV1Api(api)
    assert len(batch.list_namespaced_job(namespace).items) == 1
    summary = restore_run(**run)
    assert batch.list_namespaced_job(namespace).items == []
    assert not summary.get("left_alone") and not summary.get("invalid"), summary  # the record's Job is one it knows
    for _ in range(50):  # the garbage collector removes the Job's pod after it (Background propagation)
        if not core.list_namespaced_pod(namespace).items:
            break
        time.sleep(0.1)
    assert core.list_namespaced_pod(namespace).items == []


def test_cleanup_of_a_run_that_never_restored_removes_its_job(api, core, sandbox, make_namespace, run, capsys,
                                                              monkeypatch):
    from chaoskirvis.cli import main
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    namespace, _ = _probe(api, core, sandbox, make_namespace, run, ["4.1.1"], SAMPLE)
    batch = client.BatchV1Api(api)
    run_id = current_run_id(run["configuration"])

    assert main(["cleanup", "--run-id", run_id]) == 0
    said = capsys.readouterr().out
    assert "removing Job kirvis-" in said and f"in namespace {namespace}" in said and "left alone" not in said, said
    assert batch.list_namespaced_job(namespace).items == []


def test_injections_detected_counts_the_benchmark(api, core, sandbox, make_namespace, run):
    inject_risky_pod(make_namespace(enforce="privileged"), ["privileged"], **run)
    _probe(api, core, sandbox, make_namespace, run, ["4.1.1"], SAMPLE)
    assert injections_detected(**run) is True
    _probe(api, core, sandbox, make_namespace, run, ["4.2.1"], SAMPLE)
    assert injections_detected(**run) is False  # one benchmark check passed: the change went unnoticed


def test_benchmark_without_injection_proves_nothing(api, core, sandbox, make_namespace, run):
    _probe(api, core, sandbox, make_namespace, run, ["4.1.1"], SAMPLE)
    with pytest.raises(ActivityFailed, match="introduced nothing"):
        injections_detected(**run)


@pytest.mark.parametrize("checks, passes", [(["4.2.1"], True), (["4.1.1"], False), (["4.2.1", "4.1.1"], False)])
def test_posture_holds_only_when_every_check_passes(api, core, sandbox, make_namespace, run, checks, passes):
    _, answer = _probe(api, core, sandbox, make_namespace, run, checks, SAMPLE, probe=cis_checks_pass)
    assert answer is passes
    assert run_state(current_run_id(run["configuration"])).detections == []


@pytest.mark.parametrize("checks, output, condition", [
    (["4.2.1"], SAMPLE, "Failed"), (["4.2.6"], SAMPLE, "Complete"), (["4.2.1"], "{}", "Complete"),
])
def test_posture_that_could_not_be_read_is_an_error(api, core, sandbox, make_namespace, run, checks, output,
                                                     condition):
    with pytest.raises(ActivityFailed):
        _probe(api, core, sandbox, make_namespace, run, checks, output, condition, probe=cis_checks_pass)
