"""Interrupts restore: Ctrl-C (SIGINT) or SIGTERM during a run leaves nothing of it behind.

Chaos Toolkit's default rollback strategy plays no rollback of an interrupted run, and ``never`` none at
all (chaoslib.run.run_rollback); the evidence control restores the run then, whatever the strategy. What
could not be restored is named with the `kirvis cleanup --run-id` command that finishes the job.
Every run also first removes the expired leftovers of earlier runs in the namespaces it targets.
"""
from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from chaoskirvis.ledger.runid import new_run_id
from chaosrun import BIN, ROOT, chaos_env
from fault_proxy import Answer, FaultProxy, forbidden_status

PRIVILEGED = ROOT / "experiments" / "privileged-pod-denied.yaml"


def left_by_run(sandbox, run_id: str) -> list[str]:
    """Every object still carrying the run id's label, of the kinds this experiment creates."""
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    selector = f"chaoskirvis.io/run-id={run_id}"
    found = core.list_pod_for_all_namespaces(label_selector=selector).items
    found += core.list_config_map_for_all_namespaces(label_selector=selector).items
    return sorted(f"{o.metadata.namespace}/{o.metadata.name}" for o in found)


def slow_experiment(tmp_path: Path, strategy: str | None) -> Path:
    """The privileged-pod experiment with a long pause after its injection, so there is time to signal."""
    experiment = yaml.safe_load(PRIVILEGED.read_text())
    experiment["method"][0]["pauses"] = {"after": 120}
    if strategy is None:
        experiment.pop("runtime")  # Chaos Toolkit's default rollback strategy
    else:
        experiment["runtime"] = {"rollbacks": {"strategy": strategy}}
    path = tmp_path / "slow-privileged.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


def interrupt_when_injected(process: subprocess.Popen, sandbox, run_id: str, signum: int) -> str:
    deadline = time.monotonic() + 60
    while not [name for name in left_by_run(sandbox, run_id) if "privileged" in name]:
        assert process.poll() is None and time.monotonic() < deadline, "the injection never happened"
        time.sleep(0.1)
    time.sleep(0.5)  # the record's "created" entry is written just after the create
    process.send_signal(signum)
    output, _ = process.communicate(timeout=90)
    return output


@pytest.mark.parametrize(("signum", "strategy"), [(signal.SIGINT, None), (signal.SIGTERM, None),
                                                  (signal.SIGINT, "never")],
                         ids=["sigint-default", "sigterm-default", "sigint-never"])
def test_an_interrupted_chaos_run_is_restored_whatever_the_rollback_strategy(
    sandbox, make_namespace, tmp_path, signum, strategy,
):
    namespace = make_namespace(enforce="privileged")
    run_id = new_run_id()
    journal = tmp_path / "journal.json"
    chaos = subprocess.Popen(
        [str(BIN / "chaos"), "--log-file", str(tmp_path / "chaos.log"), "run", str(slow_experiment(tmp_path, strategy)),
         "--var", f"namespace={namespace}", "--journal-path", str(journal)],
        cwd=tmp_path, env=chaos_env(sandbox.kubeconfig, KIRVIS_RUN_ID=run_id),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    interrupt_when_injected(chaos, sandbox, run_id, signum)
    written = json.loads(journal.read_text())
    ledger = written["chaoskirvis"]["ledger"]

    assert written["status"] == "interrupted"
    assert written.get("rollbacks", []) == []  # Chaos Toolkit played none
    assert len(ledger["created"]) == 1
    assert (ledger["restore"]["by"], ledger["restore"]["status"], ledger["restored"]) == \
        ("evidence control", "succeeded", True)
    assert left_by_run(sandbox, run_id) == []


def test_an_interrupted_kirvis_run_is_restored_and_names_the_cleanup_command_for_what_it_could_not(
    sandbox, make_namespace, tmp_path,
):
    namespace = make_namespace(enforce="privileged")
    run_id = new_run_id()

    def rule(method, path, query):  # the run's identity may create pods but not delete them
        if method == "DELETE" and path.startswith(f"/api/v1/namespaces/{namespace}/pods/"):
            return Answer(403, forbidden_status("pods", path.rsplit("/", 1)[-1], namespace, "runner", "delete"))
        return None

    with FaultProxy(sandbox.sandbox, rule) as proxy:
        kubeconfig = proxy.write_kubeconfig(tmp_path / "proxy-kubeconfig")
        kirvis = subprocess.Popen(
            [str(BIN / "kirvis"), "run", str(slow_experiment(tmp_path, None)), "--var", f"namespace={namespace}",
             "--journals", "journals"],
            cwd=tmp_path, env=chaos_env(kubeconfig, KIRVIS_RUN_ID=run_id),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        output = interrupt_when_injected(kirvis, sandbox, run_id, signal.SIGINT)
    command = f"kirvis cleanup --run-id {run_id}"
    written = json.loads((tmp_path / "journals" / "slow-privileged.json").read_text())

    assert written["status"] == "interrupted"
    assert written["chaoskirvis"]["ledger"]["restored"] is False
    assert kirvis.returncode == 2, output
    end_lines = output[output.index("ERROR    slow-privileged.yaml"):output.index("stopped by a signal")]
    assert command in end_lines, output
    log = (tmp_path / "journals" / "kirvis-run.log").read_text()
    assert "restore after the interrupted run did not complete" in log and command in log
    assert [name for name in left_by_run(sandbox, run_id) if "privileged" in name]

    done = subprocess.run(command.split(), env=chaos_env(sandbox.kubeconfig), capture_output=True, text=True,
                          timeout=60, executable=str(BIN / "kirvis"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert left_by_run(sandbox, run_id) == []


def test_an_interrupted_kirvis_run_leaves_nothing(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(enforce="privileged")
    run_id = new_run_id()
    kirvis = subprocess.Popen(
        [str(BIN / "kirvis"), "run", str(slow_experiment(tmp_path, None)), "--var", f"namespace={namespace}",
         "--journals", "journals", "--rollback-strategy", "never"],
        cwd=tmp_path, env=chaos_env(sandbox.kubeconfig, KIRVIS_RUN_ID=run_id),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = interrupt_when_injected(kirvis, sandbox, run_id, signal.SIGTERM)

    assert kirvis.returncode == 2, output
    assert "stopped by a signal" in output
    assert "kirvis cleanup" not in output
    assert left_by_run(sandbox, run_id) == []


def earlier_run_leftovers(sandbox, namespace: str, expires: str) -> str:
    """A pod and a record of an earlier run, as a run makes them (every mark), expiring at `expires`."""
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    run_id = new_run_id()
    marks = {"labels": {"app.kubernetes.io/managed-by": "chaoskirvis", "chaoskirvis.io/run-id": run_id,
                        "chaoskirvis.io/technique": "privileged"},
             "annotations": {"chaoskirvis.io/expires-at": expires, "chaoskirvis.io/experiment": "earlier"}}
    pod = f"kirvis-{run_id}-privileged-x1y2z"
    core.create_namespaced_pod(namespace, {"metadata": {"name": pod, **marks},
                                           "spec": {"containers": [{"name": "kirvis", "image": "registry.k8s.io/pause:3.10"}]}})
    entry = {"apiVersion": "v1", "plural": "pods", "kind": "Pod", "namespace": namespace, "name": pod,
             "state": "created", "at": expires, "technique": "privileged"}
    record_marks = {"labels": {**marks["labels"], "chaoskirvis.io/technique": "ledger", "chaoskirvis.io/record": "ledger"},
                    "annotations": marks["annotations"]}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": f"kirvis-ledger-{run_id}", **record_marks},
                                                  "data": {f"pods.{namespace}.{pod}": json.dumps(entry)}})
    return run_id


def test_the_next_run_removes_expired_leftovers_of_earlier_runs_in_its_namespace_and_reports_them(
    sandbox, make_namespace, tmp_path,
):
    namespace = make_namespace(enforce="baseline")
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expired, fresh = earlier_run_leftovers(sandbox, namespace, past), earlier_run_leftovers(sandbox, namespace, future)
    run_id = new_run_id()
    done = subprocess.run(
        [str(BIN / "chaos"), "--log-file", str(tmp_path / "chaos.log"), "run", str(PRIVILEGED),
         "--var", f"namespace={namespace}", "--journal-path", str(tmp_path / "journal.json")],
        cwd=tmp_path, env=chaos_env(sandbox.kubeconfig, KIRVIS_RUN_ID=run_id), capture_output=True, text=True,
        timeout=120,
    )
    written = json.loads((tmp_path / "journal.json").read_text())
    swept = written["chaoskirvis"]["ledger"]["expired_swept"]

    assert done.returncode == 0, done.stdout + done.stderr
    assert left_by_run(sandbox, expired) == []
    assert len(left_by_run(sandbox, fresh)) == 2  # not expired: left alone
    assert [s["namespace"] for s in swept] == [namespace]
    assert any(f"kirvis-{expired}-privileged-x1y2z" in r for r in swept[0]["removed"]), swept
    assert any(f"kirvis-ledger-{expired}" in r for r in swept[0]["records_removed"]), swept
    assert fresh not in json.dumps(swept)
    assert "expired" in (tmp_path / "chaos.log").read_text()
    subprocess.run([str(BIN / "kirvis"), "cleanup", "--run-id", fresh], env=chaos_env(sandbox.kubeconfig),
                   capture_output=True, timeout=60)
