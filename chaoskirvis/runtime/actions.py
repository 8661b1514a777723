"""Actions that run benign suspicious commands in a pod, for runtime detectors to catch."""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes.client.rest import ApiException
from logzero import logger

from chaoskirvis.activity import typed_activity
from chaoskirvis.admission import answered_by, attempt_create, not_a_denial_hint
from chaoskirvis.client import KubeAPI, kube_api
from chaoskirvis.ledger.refs import POD, ObjectRef
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import RunState, run_state
from chaoskirvis.runtime.execution import exec_in_pod, refusal, wait_until_running
from chaoskirvis.targets import check_namespace
from chaoskirvis.techniques import lookup
from chaoskirvis.techniques.manifests import SHELL_IMAGE, build_runtime_pod

__all__ = ["run_runtime_technique"]


@typed_activity
def run_runtime_technique(
    technique: str,
    namespace: str,
    pod: str | None = None,
    container: str | None = None,
    image: str = SHELL_IMAGE,
    run_as_root: bool = False,
    ready_timeout: float = 120.0,
    exec_timeout: float = 30.0,
    allow_protected_namespaces: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Run a runtime technique (e.g. ``terminal-shell``, ``read-sensitive-file``) through the exec API.

    Without `pod`, the run creates its own pod (image `image`, owned by the run, removed at restore)
    and waits until it runs; name `pod` only to target an existing pod on purpose. File-based
    techniques need `run_as_root: true` to succeed (and so to be seen by Falco's rules). Returns the
    outcome (``allowed`` when the command ran, ``blocked`` when an admission control refused the exec)
    with the command, exit code and output; the technique's undo command runs afterwards.
    """
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    context = {"namespace": namespace, "techniques": [technique], "mode": "exec", "run_id": run_id}
    try:
        unit = lookup(technique)
        if unit.target != "exec":
            raise ActivityFailed(f"technique {technique} is not a runtime technique: use inject_risky_pod")
        check_namespace(namespace, allow_protected_namespaces)
        api = kube_api(configuration, secrets)
        target = pod or _runtime_pod(api, state, namespace, image, run_as_root, ready_timeout, configuration)
        outcome = _execute(api, unit, namespace, target, container, exec_timeout, context)
    except Exception as exc:
        state.add_outcome({**context, "outcome": "error", "blocked": False, "message": str(exc)})
        raise
    state.add_outcome(outcome)
    logger.info(f"[{run_id}] {technique} in {namespace}/{outcome['name']}: {outcome['outcome']}")
    return outcome


_HANDSHAKE = re.compile(r"Handshake status (\d{3})\b")


def _refused_with(exc: ApiException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and Status body of a refused exec.

    The websocket client raises ApiException(status=0) with the handshake's status line, headers and body in
    its reason (``Handshake status 403 Forbidden -+-+- {headers} -+-+- {body}``).
    """
    status = exc.status or 0
    if not status:
        handshake = _HANDSHAKE.match(str(exc.reason or ""))
        status = int(handshake.group(1)) if handshake else 0
    raw = str(exc.body or exc.reason or "").rsplit("-+-+-", 1)[-1].strip()
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    return status, body if isinstance(body, dict) else {}


def _runtime_pod(api: KubeAPI, state: RunState, namespace: str, image: str, run_as_root: bool, timeout: float,
                 configuration: Configuration | None) -> str:
    manifest = build_runtime_pod(namespace=namespace, run_id=state.run_id, image=image, run_as_root=run_as_root,
                                 configuration=configuration)
    ref = ObjectRef(POD, namespace, manifest["metadata"]["name"])
    created = attempt_create(api, ref, manifest, mode="create", state=state, configuration=configuration)
    if created["outcome"] != "allowed":
        raise ActivityFailed(f"the pod to run the technique in was refused: {created['message']}")
    wait_until_running(api, namespace, ref.name, timeout)
    return ref.name


def _execute(api: KubeAPI, unit, namespace: str, pod: str, container: str | None, timeout: float,
             context: dict[str, Any]) -> dict[str, Any]:
    options = {"run_id": context["run_id"]}
    command = unit.command(options)
    evidence = {**context, "kind": "Pod", "name": pod, "command": command, "attack": list(unit.attack),
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")}
    try:
        result = exec_in_pod(api, namespace, pod, container, command, tty=unit.tty, timeout=timeout)
    except ApiException as exc:
        answer = refusal(exc)
        status, body = _refused_with(exc)
        denier = answered_by(status, body)
        if not denier:
            raise ActivityFailed(f"could not exec into {namespace}/{pod}: {f'{status} ' if status else ''}{answer}"
                                 f"{not_a_denial_hint(status, body, answer)}") from None
        return {**evidence, "outcome": "blocked", "blocked": True, "answered_by": denier, "status": status,
                "reason": body.get("reason"), "message": answer, "latency_ms": None}
    if unit.undo_command:
        exec_in_pod(api, namespace, pod, container, unit.undo_command(options), tty=False, timeout=timeout)
    return {**evidence, "outcome": "allowed", "blocked": False, "answered_by": None, "exit_code": result.exit_code,
            "stdout": result.stdout[-500:], "stderr": result.stderr[-500:], "latency_ms": result.latency_ms,
            "message": f"ran {' '.join(command)} in {namespace}/{pod}: exit code {result.exit_code}"}
