"""The node agent at work: its pod started on the node, waited for, exec'd into, removed.

The agent's commands are the fixed argv lists of `agent_commands`, sent through the pods/exec subresource
with the `kubernetes` client's WebSocket stream. A command that reads stdin (the write) needs the v5
channel protocol (Kubernetes 1.30 and later), the only one that can say "stdin is closed": with an older
one the exec is refused before anything is sent.
"""
from __future__ import annotations

import secrets as random
import time
from dataclasses import dataclass
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration
from logzero import logger

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger import record
from chaoskirvis.ledger.ownership import is_owned
from chaoskirvis.ledger.refs import POD, ObjectRef
from chaoskirvis.ledger.state import RunState
from chaoskirvis.nodes.agent import agent_pod

__all__ = ["Agent", "start_agent", "existing_agent", "remove_agent", "PROGRESS_EVERY_S", "POLL_S", "EXEC_TIMEOUT_S"]

POLL_S = 1.0
PROGRESS_EVERY_S = 10.0
EXEC_TIMEOUT_S = 60.0
CONTAINER = "agent"


@dataclass(frozen=True)
class Agent:
    """A running agent pod; `run` is a `chaoskirvis.nodes.restore.Runner`."""

    api: KubeAPI
    ref: ObjectRef
    node: str
    image: str

    def run(self, argv: list[str], stdin: bytes) -> str:
        """Exec `argv` in the agent with `stdin`; its stdout, or ActivityFailed with its stderr and exit code."""
        from kubernetes import client as k8s_client
        from kubernetes.stream import stream
        from kubernetes.stream.ws_client import ERROR_CHANNEL, V5_CHANNEL_PROTOCOL

        from chaoskirvis.runtime.execution import exit_code_of

        core = k8s_client.CoreV1Api(self.api.api_client.kubernetes_client())
        session = stream(core.connect_get_namespaced_pod_exec, self.ref.name, self.ref.namespace, command=argv,
                         container=CONTAINER, stdin=bool(stdin), stdout=True, stderr=True, tty=False,
                         _preload_content=False)
        try:
            if stdin:
                if session.subprotocol != V5_CHANNEL_PROTOCOL:
                    raise ActivityFailed(f"the API server answered exec with {session.subprotocol!r}, not "
                                         f"{V5_CHANNEL_PROTOCOL}: the agent cannot end a write's stdin (Kubernetes "
                                         "1.30 or later is needed); nothing was written")
                session.write_stdin(stdin)
                session.close_channel(0)
            session.run_forever(timeout=EXEC_TIMEOUT_S)
            stdout, stderr = session.read_stdout() or "", session.read_stderr() or ""
            code = None if session.is_open() else exit_code_of(session.read_channel(ERROR_CHANNEL))
        finally:
            session.close()
        if code != 0:
            why = "did not finish" if code is None else f"exited {code}"
            raise ActivityFailed(f"agent {self.ref.name} on node {self.node}: {argv[0]} {argv[-1]} {why}: "
                                 f"{stderr.strip()[:300] or 'no error output'}")
        return stdout


def start_agent(api: KubeAPI, run_id: str, technique: str, node: str, paths: list[str], namespace: str, image: str,
                within: float, configuration: Configuration | None = None, state: RunState | None = None,
                read_only: bool = False) -> Agent:
    """Create run `run_id`'s agent pod on `node`, mounting the directories of `paths` (read-only if asked),
    recorded in the run's record first when `state` is given (a cleanup's agent is found by its labels), and
    wait up to `within` s until it runs."""
    body = agent_pod(run_id, technique, node, paths, namespace, random.token_hex(3), image, configuration)
    if read_only:
        for mount in body["spec"]["containers"][0]["volumeMounts"]:
            mount["readOnly"] = True
    ref = ObjectRef(POD, namespace, body["metadata"]["name"])
    try:
        if state is not None:
            with state.lock:
                state.namespaces.add(namespace)
            record.write_intent(api, state, ref, configuration, technique=technique)
        api.create(POD.collection_path(namespace), body)
    except ApiError as exc:
        raise ActivityFailed(f"could not create the node agent pod {ref.name} in namespace {namespace} "
                             f"({exc.status} {exc.reason}: {exc.message}); the runner needs create on pods "
                             "there, and Pod Security must allow hostPath and root (privileged level)") from None
    if state is not None:
        state.add_created(ref)
    _wait_running(api, ref, node, within)
    return Agent(api, ref, node, image)


def existing_agent(api: KubeAPI, ref: ObjectRef, node: str, image: str, run_id: str) -> Agent | None:
    """The run's agent pod `ref`, when it is still there, ours, on `node` and Running; else None."""
    try:
        pod = api.get(ref.path)
    except (ApiError, ActivityFailed):
        return None  # gone, or unreadable: the restore starts its own
    running = (pod.get("status") or {}).get("phase") == "Running" and not (pod.get("metadata") or {}).get(
        "deletionTimestamp")
    if not running or not is_owned(pod, run_id) or (pod.get("spec") or {}).get("nodeName") != node:
        return None
    return Agent(api, ref, node, image)


def remove_agent(api: KubeAPI, agent: Agent) -> str | None:
    """Delete the agent pod (no grace: it only sleeps); None, or why it could not be deleted."""
    try:
        api.request("DELETE", agent.ref.path, body={"kind": "DeleteOptions", "apiVersion": "v1",
                                                    "gracePeriodSeconds": 0})
    except ApiError as exc:
        if exc.status != 404:
            return f"could not delete the node agent pod {agent.ref} ({exc.status} {exc.message})"
    except ActivityFailed as exc:
        return f"could not delete the node agent pod {agent.ref}: {exc}"
    return None


def _wait_running(api: KubeAPI, ref: ObjectRef, node: str, within: float) -> None:
    """Until the agent pod is Running; ActivityFailed when it ended, or is not Running after `within` s."""
    started = logged = time.monotonic()
    phase, why = "unknown", ""
    while True:
        try:
            pod: dict[str, Any] = api.get(ref.path)
        except ApiError as exc:
            raise ActivityFailed(f"could not read the node agent pod {ref.name} while waiting for it "
                                 f"({exc.status} {exc.reason}: {exc.message})") from None
        status = pod.get("status") or {}
        phase = status.get("phase") or "Pending"
        if phase == "Running":
            return
        waiting = [(c.get("state") or {}).get("waiting") or {} for c in status.get("containerStatuses") or []]
        why = "; ".join(f"{w.get('reason')}: {w.get('message', '')}".strip(": ") for w in waiting if w) or why
        if phase in ("Succeeded", "Failed"):
            break
        elapsed = time.monotonic() - started
        if elapsed >= within:
            break
        if time.monotonic() - logged >= PROGRESS_EVERY_S:
            logged = time.monotonic()
            logger.info(f"node agent {ref.name} on {node}: {phase}{f' ({why})' if why else ''}, "
                        f"{within - elapsed:.0f} s left")
        time.sleep(min(POLL_S, max(0.0, within - elapsed)))
    raise ActivityFailed(f"the node agent pod {ref.name} on node {node} is {phase}, not Running, after "
                         f"{within:g} s{f' ({why})' if why else ''}: check the image can be pulled and the node "
                         "is Ready")
