"""Runtime techniques run through the real client's exec `stream()` against the sandbox."""
from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaoskirvis.runtime.actions import run_runtime_technique
from chaoskirvis.techniques import CATALOG

RUNTIME = [t for t in CATALOG.values() if t.target == "exec"]


@pytest.mark.parametrize("technique", RUNTIME, ids=lambda t: t.id)
def test_technique_runs_in_a_pod_the_run_created(sandbox, make_namespace, run, technique):
    namespace = make_namespace(enforce="restricted")
    sandbox.sandbox.script_exec(lambda e: e.namespace == namespace)  # its commands succeed (no output)
    outcome = run_runtime_technique(technique.id, namespace, **run)

    run_id = run["configuration"]["kirvis_run_id"]
    assert outcome["outcome"] == "allowed" and outcome["exit_code"] == 0
    assert outcome["name"].startswith(f"kirvis-{run_id}-runtime-")
    ran = [e for e in sandbox.sandbox.execs if e.namespace == namespace]
    expected = [technique.command({"run_id": run_id})]
    if technique.undo_command:
        expected.append(technique.undo_command({"run_id": run_id}))
    assert [list(e.command) for e in ran] == expected
    assert ran[0].tty is technique.tty
    assert outcome["command"] == expected[0]


def test_exit_code_and_output_come_back_through_stream(sandbox, make_namespace, run):
    namespace = make_namespace()
    sandbox.sandbox.script_exec(lambda e: e.namespace == namespace, stdout="uid=0(root)\n", stderr="oops\n",
                                exit_code=3)
    outcome = run_runtime_technique("read-sensitive-file", namespace, **run)
    assert outcome["exit_code"] == 3 and outcome["stdout"] == "uid=0(root)\n" and outcome["stderr"] == "oops\n"


def test_a_policy_denying_exec_is_a_block(sandbox, make_namespace, run):
    namespace = make_namespace()
    admission = client.AdmissionregistrationV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    policy = f"deny-exec-{namespace}"
    admission.create_validating_admission_policy({
        "metadata": {"name": policy},
        "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CONNECT"], "resources": ["pods/exec"]}]},
            "validations": [{"expression": "false", "message": "exec is not allowed here", "reason": "Forbidden"}]}})
    admission.create_validating_admission_policy_binding({
        "metadata": {"name": policy},
        "spec": {"policyName": policy, "validationActions": ["Deny"], "matchResources": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}})
    try:
        outcome = run_runtime_technique("terminal-shell", namespace, **run)
    finally:
        admission.delete_validating_admission_policy_binding(policy)
        admission.delete_validating_admission_policy(policy)
    assert outcome["outcome"] == "blocked"
    assert outcome["answered_by"] == f"ValidatingAdmissionPolicy {policy}"
    assert "exec is not allowed here" in outcome["message"]


def app_pod(sandbox, namespace: str) -> client.CoreV1Api:
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    core.create_namespaced_pod(namespace, {"metadata": {"name": "app"}, "spec": {
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}})
    return core


def test_the_viewer_cannot_exec_and_that_is_an_error_not_a_block(sandbox, make_namespace, run, tmp_path):
    namespace = make_namespace()
    app_pod(sandbox, namespace)
    viewer = sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer")
    with pytest.raises(ActivityFailed, match='User "sandbox-viewer" cannot create resource "pods/exec"'):
        run_runtime_technique("terminal-shell", namespace, pod="app", configuration=run["configuration"],
                              secrets={"KUBECONFIG": str(viewer)})


def test_an_existing_pod_is_only_touched_when_named(sandbox, make_namespace, run):
    namespace = make_namespace()
    core = app_pod(sandbox, namespace)
    outcome = run_runtime_technique("write-below-etc", namespace, pod="app", **run)
    assert outcome["name"] == "app"
    commands = [list(e.command) for e in sandbox.sandbox.execs if e.namespace == namespace]
    assert commands[1][-1].startswith("rm -f /etc/kirvis-")
    assert core.read_namespaced_pod("app", namespace).metadata.name == "app"


def test_the_exit_code_is_read_from_the_kubelets_status_and_a_command_that_could_not_start_has_none():
    from chaoskirvis.runtime.execution import exit_code_of

    assert exit_code_of('{"metadata":{},"status":"Success"}') == 0
    assert exit_code_of('{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: '
                        'error executing command [false], exit code 1","reason":"NonZeroExitCode","details":'
                        '{"causes":[{"reason":"ExitCode","message":"1"}]}}') == 1
    # containerd's answer when the executable is missing: a Failure with no exit code (the kubernetes
    # client's own returncode raises KeyError on it)
    assert exit_code_of('{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing '
                        'command in container: failed to exec in container: exec: \\"nope\\": executable file '
                        'not found in $PATH: unknown","reason":"InternalError","code":500}') is None
    assert exit_code_of("") is None
