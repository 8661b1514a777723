"""Pods that run (as clients can tell) and the exec subresource, through the real client's `stream()`,
raw WebSockets and kubectl. Nothing runs in the sandbox: exec answers what the test scripted."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime

import pytest
import websocket
from kubernetes import client, config, watch
from kubernetes.stream import stream

from chaoskirvis.sandbox.exec_ws import require_running
from chaoskirvis.sandbox.status import StatusError

PAUSE = "registry.k8s.io/pause"
SUCCESS = '{"metadata":{},"status":"Success"}'


@pytest.fixture
def running_pod(core, make_namespace):
    """running_pod(*containers, **spec) -> (namespace, name): a pod in a new namespace."""

    def make(*containers: str, **spec) -> tuple[str, str]:
        namespace = make_namespace()
        containers = containers or ("c",)
        core.create_namespaced_pod(namespace, {"metadata": {"name": "target"}, "spec": {
            "containers": [{"name": name, "image": PAUSE} for name in containers], **spec}})
        return namespace, "target"

    return make


def run(core, namespace, pod, command, *, tty=False, **kwargs):
    """stdout, stderr, returncode and the raw status of `command` through the client's stream()."""
    session = stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=command, stdout=True,
                     stderr=not tty, stdin=False, tty=tty, _preload_content=False, **kwargs)
    session.run_forever(timeout=5)
    assert session.subprotocol == "v5.channel.k8s.io"
    raw_status = session.peek_channel(3)
    return session.read_stdout(), session.read_stderr(), session.returncode, raw_status


def refusal(call) -> tuple[int, dict]:
    """The HTTP status and Status body of an exec the API server refused before the WebSocket upgrade."""
    with pytest.raises(client.ApiException) as error:
        call()
    reason = error.value.reason
    code = int(re.match(r"Handshake status (\d+)", reason).group(1))
    body = reason.rsplit(" -+-+- ", 1)[1]
    body = ast.literal_eval(body).decode() if body.startswith("b'") else body
    return code, json.loads(body)


def exec_url(sandbox, namespace, pod, command, **params) -> str:
    query = [("command", argument) for argument in command] + list(params.items())
    return f"{sandbox.url}/api/v1/namespaces/{namespace}/pods/{pod}/exec?{urllib.parse.urlencode(query)}"


def raw_exec(sandbox, namespace, pod, command, protocols):
    """(negotiated subprotocol, [(channel, payload), ...]) of an exec over a plain WebSocket."""
    ws = websocket.WebSocket(sslopt={"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": str(sandbox.ca_file)})
    url = exec_url(sandbox, namespace, pod, command, stdout="true", stderr="true").replace("https://", "wss://")
    ws.connect(url, header=[f"Authorization: Bearer {sandbox.admin_token}"], subprotocols=protocols or None)
    frames = []
    try:
        while (frame := ws.recv_data_frame(True))[0] != websocket.ABNF.OPCODE_CLOSE:
            frames.append((frame[1].data[0], frame[1].data[1:].decode()))
    finally:
        ws.close()
    return ws.subprotocol, frames


def http_refusal(sandbox, url, method="GET", headers=None) -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, headers={
        "Authorization": f"Bearer {sandbox.admin_token}", **(headers or {})})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, context=ssl.create_default_context(cafile=sandbox.ca_file), timeout=5)
    return error.value.code, json.loads(error.value.read())


# Pods run.

def test_a_created_pod_is_running_at_once_as_a_kubelet_would_report(core, make_namespace):
    namespace = make_namespace()
    before = datetime.now(UTC).replace(microsecond=0)
    created = core.create_namespaced_pod(namespace, {"metadata": {"name": "web"}, "spec": {
        "containers": [{"name": "app", "image": PAUSE}, {"name": "side", "image": "busybox:1.36"}]}})
    assert created.status.phase == "Pending"  # the registry's answer; the kubelet's status is a second change

    status = core.read_namespaced_pod("web", namespace).status
    assert status.phase == "Running"
    assert {c.type: c.status for c in status.conditions} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True", "ContainersReady": "True",
        "PodScheduled": "True"}
    assert [(s.name, s.image, s.ready, s.started, s.restart_count) for s in status.container_statuses] == [
        ("app", PAUSE, True, True, 0), ("side", "busybox:1.36", True, True, 0)]
    assert all(before <= s.state.running.started_at <= datetime.now(UTC) for s in status.container_statuses)
    node = core.read_node(core.read_namespaced_pod("web", namespace).spec.node_name)
    assert status.host_ip == next(a.address for a in node.status.addresses if a.type == "InternalIP")
    assert re.fullmatch(r"10\.244\.\d+\.\d+", status.pod_ip)
    assert [ip.ip for ip in status.pod_ips] == [status.pod_ip]
    assert before <= status.start_time <= datetime.now(UTC)

    events = watch.Watch().stream(core.list_namespaced_pod, namespace,
                                  resource_version=created.metadata.resource_version, timeout_seconds=1)
    event = next(events)
    assert (event["type"], event["object"].status.phase) == ("MODIFIED", "Running")


def test_a_dry_run_pod_is_not_started(core, make_namespace):
    namespace = make_namespace()
    answer = core.create_namespaced_pod(namespace, {"metadata": {"name": "dry"}, "spec": {
        "containers": [{"name": "c", "image": PAUSE}]}}, dry_run="All")
    assert answer.status.phase == "Pending" and core.list_namespaced_pod(namespace).items == []


def test_pods_get_their_own_ip_and_host_network_pods_the_host_ip(core, running_pod):
    first, second, host = running_pod(), running_pod(), running_pod(hostNetwork=True)
    ips = [core.read_namespaced_pod(name, namespace).status.pod_ip for namespace, name in (first, second, host)]
    assert ips[0] != ips[1] and ips[2] == core.read_namespaced_pod(host[1], host[0]).status.host_ip


def test_init_containers_have_completed_and_sidecars_run(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, {"metadata": {"name": "web"}, "spec": {
        "initContainers": [{"name": "setup", "image": PAUSE},
                           {"name": "proxy", "image": PAUSE, "restartPolicy": "Always"}],
        "containers": [{"name": "app", "image": PAUSE}]}})
    setup, proxy = core.read_namespaced_pod("web", namespace).status.init_container_statuses
    assert (setup.state.terminated.exit_code, setup.state.terminated.reason, setup.started) == (0, "Completed", False)
    assert proxy.state.running.started_at and proxy.started


def test_exec_refuses_a_pod_that_is_not_running():
    with pytest.raises(StatusError) as refused:
        require_running({"metadata": {"name": "web"}, "status": {"phase": "Succeeded"}})
    assert (refused.value.status, refused.value.message) == (
        400, "pod web is not running (phase Succeeded): cannot exec into it")
    require_running({"metadata": {"name": "web"}, "status": {"phase": "Running"}})


# Exec through the client's stream().

def test_stream_reads_the_scripted_output_and_exit_code(sandbox, core, running_pod):
    namespace, pod = running_pod()
    sandbox.sandbox.script_exec(lambda r: r.namespace == namespace and r.command[0] == "cat",
                                stdout="root:x:0:0\n", stderr="cat: warning\n", exit_code=3)

    stdout, stderr, returncode, raw = run(core, namespace, pod, ["cat", "/etc/shadow"])

    assert (stdout, stderr, returncode) == ("root:x:0:0\n", "cat: warning\n", 3)
    assert json.loads(raw) == {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": "command terminated with non-zero exit code: command terminated with exit code 3",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}


def test_an_unscripted_command_did_not_run_and_says_so(core, running_pod):
    namespace, pod = running_pod()
    stdout, stderr, returncode, raw = run(core, namespace, pod, ["id", "-u"])
    assert (stdout, returncode) == ("", 127)
    assert stderr == ("kirvis sandbox: id -u: not run: the sandbox runs no processes (tests script an answer with "
                      "Sandbox.script_exec)\n")
    assert json.loads(raw)["details"] == {"causes": [{"reason": "ExitCode", "message": "127"}]}


def test_with_a_tty_stderr_goes_to_stdout_with_terminal_line_endings(sandbox, core, running_pod):
    namespace, pod = running_pod()
    sandbox.sandbox.script_exec(lambda r: r.namespace == namespace, stdout="one\ntwo\n", stderr="warn\n", exit_code=1)
    stdout, stderr, returncode, _ = run(core, namespace, pod, ["sh"], tty=True)
    assert (stdout, stderr, returncode) == ("one\r\ntwo\r\nwarn\r\n", "", 1)


def test_every_exec_is_recorded(sandbox, core, running_pod):
    namespace, pod = running_pod("app", "side")
    before = datetime.now(UTC)
    run(core, namespace, pod, ["sh", "-c", "id"], container="side")
    run(core, namespace, pod, ["ls"], container="app", tty=True)
    records = [r for r in sandbox.sandbox.execs if r.namespace == namespace]
    assert [(r.pod, r.container, r.command, r.tty, r.user) for r in records] == [
        (pod, "side", ("sh", "-c", "id"), False, "sandbox-admin"), (pod, "app", ("ls",), True, "sandbox-admin")]
    assert before <= records[0].at <= records[1].at <= datetime.now(UTC)


def test_scripts_match_a_command_prefix_or_a_predicate_and_the_latest_wins(sandbox, core, running_pod):
    namespace, pod = running_pod()
    marker = uuid.uuid4().hex
    sandbox.sandbox.script_exec(f"echo {marker}", stdout="string prefix\n")
    sandbox.sandbox.script_exec(["printf", marker], stdout="list prefix\n")
    assert run(core, namespace, pod, ["echo", marker, "more"])[0] == "string prefix\n"
    assert run(core, namespace, pod, ["printf", marker])[0] == "list prefix\n"
    assert run(core, namespace, pod, ["echo", "other", marker])[0] == ""
    sandbox.sandbox.script_exec(lambda r: marker in r.command, stdout="latest\n")
    assert run(core, namespace, pod, ["echo", marker])[0] == "latest\n"
    with pytest.raises(ValueError):
        sandbox.sandbox.script_exec([], stdout="everything")
    with pytest.raises(ValueError):
        sandbox.sandbox.script_exec("x", exit_code=256)


# Refusals, before the WebSocket upgrade, with the API server's Status bodies.

def test_the_viewer_may_not_exec(sandbox, running_pod, tmp_path):
    namespace, pod = running_pod()
    viewer = client.CoreV1Api(config.new_client_from_config(
        str(sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer"))))
    code, status = refusal(lambda: run(viewer, namespace, pod, ["id"]))
    assert (code, status["reason"], status["message"]) == (403, "Forbidden", (
        f'pods "{pod}" is forbidden: User "sandbox-viewer" cannot create resource "pods/exec" in API group "" '
        f'in the namespace "{namespace}"'))
    assert not [r for r in sandbox.sandbox.execs if r.namespace == namespace]


def test_a_missing_pod_or_container_is_refused(core, running_pod):
    namespace, pod = running_pod("app", "side")
    assert refusal(lambda: run(core, namespace, "nope", ["id"]))[1]["message"] == 'pods "nope" not found'
    code, status = refusal(lambda: run(core, namespace, pod, ["id"], container="zz"))
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == f"container zz is not valid for pod {pod}"
    assert refusal(lambda: run(core, namespace, pod, ["id"]))[1]["message"] == (
        f"a container name must be specified for pod {pod}, choose one of: [app side]")


def test_requests_that_cannot_run_a_command_are_bad_requests(sandbox, running_pod):
    namespace, pod = running_pod()
    target = sandbox.sandbox
    cases = [
        (exec_url(target, namespace, pod, [], stdout="true"), "GET", {},
         "you must specify at least one command for the container"),
        (exec_url(target, namespace, pod, ["id"]), "GET", {}, "you must specify at least 1 of stdin, stdout, stderr"),
        (exec_url(target, namespace, pod, ["id"], stdout="maybe"), "GET", {},
         'strconv.ParseBool: parsing "maybe": invalid syntax'),
        (exec_url(target, namespace, pod, ["id"], stdout="true", dryRun="All"), "GET", {}, "dryRun is not supported"),
        (exec_url(target, namespace, pod, ["id"], stdout="true"), "GET", {}, "Upgrade request required"),
        (exec_url(target, namespace, pod, ["id"], stdout="true"), "POST",
         {"Upgrade": "SPDY/3.1", "Connection": "Upgrade"},
         "the sandbox serves exec over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io), not SPDY/3.1"),
    ]
    for url, method, headers, message in cases:
        assert http_refusal(target, url, method, headers) == (400, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "BadRequest", "code": 400})
    assert not [r for r in target.execs if r.namespace == namespace]


def test_a_validating_admission_policy_on_connect_can_deny_exec(sandbox, core, running_pod):
    namespace, pod = running_pod()
    admission = client.AdmissionregistrationV1Api(core.api_client)
    name = f"no-shells-{namespace}"
    admission.create_validating_admission_policy({"metadata": {"name": name}, "spec": {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CONNECT"],
                                                "resources": ["pods/exec"]}]},
        "validations": [{"expression": "!object.command.exists(c, c == 'sh')", "message": "no shells",
                         "reason": "Forbidden"}]}})
    admission.create_validating_admission_policy_binding({"metadata": {"name": name}, "spec": {
        "policyName": name, "validationActions": ["Deny"],
        "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}})
    try:
        code, status = refusal(lambda: run(core, namespace, pod, ["sh", "-c", "id"]))
        assert code == 403
        assert status["message"] == (f"pods \"{pod}\" is forbidden: ValidatingAdmissionPolicy '{name}' with binding "
                                     f"'{name}' denied request: no shells")
        assert run(core, namespace, pod, ["id"])[2] == 127  # admitted, and answered as unscripted
        assert [r.command for r in sandbox.sandbox.execs if r.namespace == namespace] == [("id",)]
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


# The protocol itself, over raw WebSockets.

def test_v5_is_chosen_whenever_offered_and_the_first_frame_is_empty(sandbox, running_pod):
    namespace, pod = running_pod()
    sandbox.sandbox.script_exec(lambda r: r.namespace == namespace, stdout="out", stderr="err")
    protocol, frames = raw_exec(sandbox.sandbox, namespace, pod, ["id"], ["v4.channel.k8s.io", "v5.channel.k8s.io"])
    assert protocol == "v5.channel.k8s.io"
    assert frames == [(1, ""), (1, "out"), (2, "err"), (3, SUCCESS)]


def test_older_subprotocols_carry_the_kubelets_exit_status(sandbox, running_pod):
    namespace, pod = running_pod()
    sandbox.sandbox.script_exec(lambda r: r.namespace == namespace and r.command[0] == "false", exit_code=2)
    sandbox.sandbox.script_exec(lambda r: r.namespace == namespace and r.command[0] == "true")
    failure = "command terminated with non-zero exit code: error executing command [false --now], exit code 2"
    protocol, frames = raw_exec(sandbox.sandbox, namespace, pod, ["false", "--now"], ["v4.channel.k8s.io"])
    assert protocol == "v4.channel.k8s.io" and json.loads(frames[-1][1])["message"] == failure
    for offered in (["channel.k8s.io"], []):  # the first protocol, and none: failures as text, success silent
        assert raw_exec(sandbox.sandbox, namespace, pod, ["false", "--now"], offered)[1] == [(1, ""), (3, failure)]
        assert raw_exec(sandbox.sandbox, namespace, pod, ["true"], offered)[1] == [(1, "")]
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        raw_exec(sandbox.sandbox, namespace, pod, ["id"], ["base64.channel.k8s.io"])
    assert refused.value.status_code == 403


# kubectl, which tries a v5 WebSocket first.

def test_kubectl_exec_prints_the_scripted_output_and_exits_with_its_code(sandbox, running_pod, tmp_path):
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH (.ci/run installs it)"
    namespace, pod = running_pod()
    sandbox.sandbox.script_exec(lambda r: r.namespace == namespace and r.command == ("echo", "hi"), stdout="hi\n")
    sandbox.sandbox.script_exec(lambda r: r.namespace == namespace and r.command == ("false",), stderr="no\n",
                                exit_code=4)
    env = dict(os.environ, KUBECONFIG=str(sandbox.kubeconfig), KUBECACHEDIR=str(tmp_path / "cache"))

    def kubectl(*args):
        return subprocess.run([binary, "exec", "-n", namespace, pod, "--", *args], env=env, capture_output=True,
                              text=True, timeout=30)

    echoed, failed, unscripted = kubectl("echo", "hi"), kubectl("false"), kubectl("id")
    assert (echoed.returncode, echoed.stdout, echoed.stderr) == (0, "hi\n", "")
    assert (failed.returncode, failed.stdout, failed.stderr) == (4, "", "no\ncommand terminated with exit code 4\n")
    assert (unscripted.returncode, unscripted.stdout) == (127, "")  # not a silent success
    assert unscripted.stderr == ("kirvis sandbox: id: not run: the sandbox runs no processes (tests script an answer "
                                 "with Sandbox.script_exec)\ncommand terminated with exit code 127\n")
    assert [r.command for r in sandbox.sandbox.execs if r.namespace == namespace] == [("echo", "hi"), ("false",),
                                                                                      ("id",)]
