"""Pod logs: lines written with `Sandbox.append_log`, read and followed through the real client, raw HTTPS
and kubectl."""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client, config

from chaoskirvis.sandbox.server import Sandbox, SandboxError

PAUSE = "registry.k8s.io/pause"


@pytest.fixture
def pod(core, make_namespace):
    """pod(*containers) -> (namespace, name): a running pod in a new namespace."""

    def make(*containers: str) -> tuple[str, str]:
        namespace = make_namespace()
        core.create_namespaced_pod(namespace, {"metadata": {"name": "falco"}, "spec": {
            "containers": [{"name": name, "image": PAUSE} for name in containers or ("falco",)]}})
        return namespace, "falco"

    return make


def get_log(sandbox, namespace, name, **params) -> tuple[str, str]:
    """(Content-Type, body) of a log request over raw HTTPS."""
    url = f"{sandbox.url}/api/v1/namespaces/{namespace}/pods/{name}/log?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {sandbox.admin_token}"})
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=sandbox.ca_file),
                                timeout=5) as response:
        return response.headers["Content-Type"], response.read().decode()


def log_refusal(sandbox, namespace, name, **params) -> tuple[int, dict]:
    with pytest.raises(urllib.error.HTTPError) as error:
        get_log(sandbox, namespace, name, **params)
    return error.value.code, json.loads(error.value.read())


def test_lines_are_read_back_as_text(sandbox, core, pod):
    namespace, name = pod()
    alert = json.dumps({"rule": "Terminal shell in container", "priority": "Notice"})
    sandbox.sandbox.append_log(namespace, name, alert)
    sandbox.sandbox.append_log(namespace, name, "two\nthree\n")  # several lines at once
    assert core.read_namespaced_pod_log(name, namespace) == f"{alert}\ntwo\nthree\n"
    assert get_log(sandbox.sandbox, namespace, name) == ("text/plain", f"{alert}\ntwo\nthree\n")


def test_tail_lines_and_timestamps(sandbox, core, pod):
    namespace, name = pod()
    for line in ("a", "b", "c"):
        sandbox.sandbox.append_log(namespace, name, line)
    assert core.read_namespaced_pod_log(name, namespace, tail_lines=2) == "b\nc\n"
    assert core.read_namespaced_pod_log(name, namespace, tail_lines=5) == "a\nb\nc\n"
    assert core.read_namespaced_pod_log(name, namespace, tail_lines=0) == ""
    at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    sandbox.sandbox.append_log(namespace, name, "stamped", at=at)
    last = core.read_namespaced_pod_log(name, namespace, tail_lines=1, timestamps=True)
    assert last == "2030-01-02T03:04:05.678901000Z stamped\n"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z \w+", line)
               for line in core.read_namespaced_pod_log(name, namespace, timestamps=True).splitlines())


def test_since_time_and_since_seconds_filter_by_each_lines_time(sandbox, core, pod):
    namespace, name = pod()
    now = datetime.now(UTC)
    sandbox.sandbox.append_log(namespace, name, "old", at=now - timedelta(hours=1))
    sandbox.sandbox.append_log(namespace, name, "edge", at=now - timedelta(minutes=10))
    sandbox.sandbox.append_log(namespace, name, "new")
    since = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert get_log(sandbox.sandbox, namespace, name, sinceTime=since)[1] == "edge\nnew\n"  # at or after
    later_in_that_second = (now - timedelta(minutes=10)).replace(microsecond=999999).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert get_log(sandbox.sandbox, namespace, name, sinceTime=later_in_that_second)[1] == "edge\nnew\n"
    assert core.read_namespaced_pod_log(name, namespace, since_seconds=60) == "new\n"
    assert core.read_namespaced_pod_log(name, namespace, since_seconds=7200) == "old\nedge\nnew\n"


def test_each_container_has_its_own_log(sandbox, core, pod):
    namespace, name = pod("falco", "sidekick")
    sandbox.sandbox.append_log(namespace, name, "from falco", container="falco")
    sandbox.sandbox.append_log(namespace, name, "from sidekick", container="sidekick")
    assert core.read_namespaced_pod_log(name, namespace, container="sidekick") == "from sidekick\n"
    code, status = log_refusal(sandbox.sandbox, namespace, name)
    assert (code, status["message"]) == (
        400, f"a container name must be specified for pod {name}, choose one of: [falco sidekick]")
    with pytest.raises(SandboxError, match="a container name must be specified"):
        sandbox.sandbox.append_log(namespace, name, "where?")


def test_refusals_have_the_api_servers_status_bodies(sandbox, pod):
    namespace, name = pod()
    target = sandbox.sandbox
    assert log_refusal(target, namespace, "nope") == (404, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": 'pods "nope" not found',
        "reason": "NotFound", "details": {"name": "nope", "kind": "pods"}, "code": 404})
    code, status = log_refusal(target, namespace, name, container="zz")
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == f"container zz is not valid for pod {name}"
    code, status = log_refusal(target, namespace, name, tailLines="-1")
    assert (code, status["message"]) == (
        422, f'PodLogOptions "{name}" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0')
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "tailLines",
                                            "message": "Invalid value: -1: must be greater than or equal to 0"}]
    both = log_refusal(target, namespace, name, sinceSeconds="5", sinceTime="2030-01-01T00:00:00Z")[1]
    assert both["message"] == (f'PodLogOptions "{name}" is invalid: : Forbidden: at most one of `sinceTime` or '
                               "`sinceSeconds` may be specified")
    assert log_refusal(target, namespace, name, sinceSeconds="0")[0] == 422
    assert log_refusal(target, namespace, name, sinceTime="yesterday")[0] == 400
    assert log_refusal(target, namespace, name, tailLines="ten")[0] == 400


def test_the_viewer_may_read_logs(sandbox, pod, tmp_path):
    namespace, name = pod()
    sandbox.sandbox.append_log(namespace, name, "visible")
    viewer = client.CoreV1Api(config.new_client_from_config(
        str(sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer"))))
    assert viewer.read_namespaced_pod_log(name, namespace) == "visible\n"


def test_append_log_refuses_what_it_cannot_place(sandbox, pod):
    namespace, name = pod()
    with pytest.raises(SandboxError, match=f'cannot log to {namespace}/nope: pods "nope" not found'):
        sandbox.sandbox.append_log(namespace, "nope", "lost")
    with pytest.raises(SandboxError, match=f"container zz is not valid for pod {name}"):
        sandbox.sandbox.append_log(namespace, name, "lost", container="zz")
    with pytest.raises(ValueError, match="aware datetime"):
        sandbox.sandbox.append_log(namespace, name, "lost", at=datetime.now())


def test_a_pod_created_again_starts_with_an_empty_log(sandbox, core, pod):
    namespace, name = pod()
    sandbox.sandbox.append_log(namespace, name, "first life")
    core.delete_namespaced_pod(name, namespace)
    core.create_namespaced_pod(namespace, {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "falco", "image": PAUSE}]}})
    assert core.read_namespaced_pod_log(name, namespace) == ""


# Following.

def test_follow_gets_an_appended_line_at_once_and_ends_when_the_pod_is_deleted(sandbox, core, pod):
    namespace, name = pod()
    sandbox.sandbox.append_log(namespace, name, "before")
    sandbox.sandbox.append_log(namespace, name, "too old", at=datetime.now(UTC) - timedelta(hours=1))
    response = core.read_namespaced_pod_log(name, namespace, follow=True, since_seconds=60, _preload_content=False)
    appended: list[float] = []

    def append() -> None:
        appended.append(time.monotonic())
        sandbox.sandbox.append_log(namespace, name, "alert")

    started = time.monotonic()
    threading.Timer(0.3, append).start()
    chunks = response.stream(4096)
    assert next(chunks) == b"before\n"
    assert next(chunks) == b"alert\n"
    arrived = time.monotonic()
    assert arrived - started >= 0.29  # it did come later...
    assert arrived - appended[0] < 0.1  # ...and at once

    core.delete_namespaced_pod(name, namespace)
    assert list(chunks) == []  # the stream ended
    assert time.monotonic() - arrived < 2


def test_follow_ends_when_the_client_disconnects(sandbox, core, pod):
    namespace, name = pod()
    sandbox.sandbox.append_log(namespace, name, "one")
    response = core.read_namespaced_pod_log(name, namespace, follow=True, _preload_content=False)
    chunks = response.stream(4096)
    assert next(chunks) == b"one\n"
    uid = core.read_namespaced_pod(name, namespace).metadata.uid
    all_followers = sandbox.sandbox._handler.pod_logs._followers  # no API shows followers: look inside

    def followers() -> list:
        return [queue for (pod_uid, _), queues in list(all_followers.items()) if pod_uid == uid for queue in queues]

    assert len(followers()) == 1
    response.close()  # the connection
    deadline = time.monotonic() + 2
    while followers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not followers()


def test_follow_ends_when_the_sandbox_stops(tmp_path):
    with Sandbox() as own:
        core = client.CoreV1Api(config.new_client_from_config(str(own.write_kubeconfig(tmp_path / "kubeconfig"))))
        core.create_namespaced_pod("default", {"metadata": {"name": "falco"}, "spec": {
            "containers": [{"name": "falco", "image": PAUSE}]}})
        own.append_log("default", "falco", "up")
        response = core.read_namespaced_pod_log("falco", "default", follow=True, _preload_content=False)
        chunks = response.stream(4096)
        assert next(chunks) == b"up\n"
        stopping = time.monotonic()
        own.stop()
        assert time.monotonic() - stopping < 1  # the stream ended by itself, not at the shutdown timeout
        assert list(chunks) == []


def test_kubectl_logs_follows(sandbox, core, pod, tmp_path):
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH (.ci/run installs it)"
    namespace, name = pod()
    sandbox.sandbox.append_log(namespace, name, "first")
    env = dict(os.environ, KUBECONFIG=str(sandbox.kubeconfig), KUBECACHEDIR=str(tmp_path / "cache"))
    follower = subprocess.Popen([binary, "logs", "-f", "-n", namespace, name], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout.readline() == "first\n"
        sandbox.sandbox.append_log(namespace, name, "second")
        assert follower.stdout.readline() == "second\n"
        core.delete_namespaced_pod(name, namespace)
        assert follower.wait(timeout=10) == 0
    finally:
        follower.kill()
        follower.communicate()
