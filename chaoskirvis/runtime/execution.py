"""Run a command in a pod through the exec API (the real client's websocket `stream()`: the kubernetes
package is imported here only when a command is run)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import KubeAPI, path_for

if TYPE_CHECKING:
    from kubernetes.client.rest import ApiException

__all__ = ["ExecResult", "exec_in_pod", "exit_code_of", "wait_until_running", "refusal"]


@dataclass
class ExecResult:
    exit_code: int | None
    stdout: str
    stderr: str
    latency_ms: float


def exec_in_pod(api: KubeAPI, namespace: str, pod: str, container: str | None, command: list[str], *,
                tty: bool, timeout: float) -> ExecResult:
    """Run `command`; returns its exit code and output. Raises `ApiException` when the API refuses it."""
    from kubernetes import client as k8s_client
    from kubernetes.stream import stream
    from kubernetes.stream.ws_client import ERROR_CHANNEL

    core = k8s_client.CoreV1Api(api.api_client.kubernetes_client())
    started = time.monotonic()
    kwargs = {"container": container} if container else {}
    session = stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=command, stderr=not tty,
                     stdin=False, stdout=True, tty=tty, _preload_content=False, **kwargs)
    try:
        session.run_forever(timeout=timeout)
        stdout, stderr = session.read_stdout(), "" if tty else session.read_stderr()
        exit_code = None if session.is_open() else exit_code_of(session.read_channel(ERROR_CHANNEL))
    finally:
        session.close()
    return ExecResult(exit_code, stdout or "", stderr or "", round((time.monotonic() - started) * 1000, 1))


def exit_code_of(status_text: str) -> int | None:
    """The exit code in the Status the kubelet writes on the error channel: 0 for Success, the ExitCode cause
    of a NonZeroExitCode failure; None when there is none (no status yet, or a command that could not start:
    the client's own `returncode` raises on those)."""
    try:
        status = json.loads(status_text) if status_text.strip() else None
    except ValueError:
        return None
    if not isinstance(status, dict):
        return None
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
            return int(cause["message"])
    return None


def wait_until_running(api: KubeAPI, namespace: str, pod: str, timeout: float) -> None:
    """Wait for the pod to run (its containers started), or raise naming its phase."""
    deadline = time.monotonic() + timeout
    phase = "unknown"
    while time.monotonic() < deadline:
        status = api.get(path_for("v1", "pods", namespace, pod)).get("status") or {}
        phase = status.get("phase", "Pending")
        if phase == "Running":
            return
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(0.2)
    raise ActivityFailed(f"pod {pod} in {namespace} is {phase}, not Running, after {timeout:.0f}s: cannot exec into it")


def refusal(exc: ApiException) -> str:
    """The API's answer to a refused exec; the websocket client appends the Status after "-+-+-"."""
    body = (exc.body or exc.reason or "").rsplit("-+-+-", 1)[-1]
    try:
        message = json.loads(body).get("message", body)
    except (ValueError, AttributeError):
        message = body
    return f"{message.strip()[:500]}"
