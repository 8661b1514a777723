"""Node actions: change one file on a node (a CIS benchmark item) through the run's agent pod, original saved first."""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis.activity import typed_activity
from chaoskirvis.client import ApiError, KubeAPI, kube_api
from chaoskirvis.ledger.node_files import confirm_node_file, file_fields, record_node_file
from chaoskirvis.ledger.refs import Kind, ObjectRef
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import RunState, run_state
from chaoskirvis.nodes.agent import DEFAULT_IMAGE, HOST_ROOT
from chaoskirvis.nodes.agent_commands import FileState
from chaoskirvis.nodes.change import NodeChange
from chaoskirvis.nodes.gates import check_node_gates
from chaoskirvis.nodes.mirror import STATIC_COMPONENTS, config_hash, wait_component
from chaoskirvis.nodes.preview import describe_change
from chaoskirvis.nodes.restore import apply_state, identity, read_state
from chaoskirvis.nodes.session import Agent, remove_agent, start_agent
from chaoskirvis.targets import check_namespace
from chaoskirvis.techniques.nodes import node_technique

__all__ = ["inject_node_fault"]

NODE = Kind("v1", "nodes", "Node", namespaced=False)


@typed_activity
def inject_node_fault(
    technique: str,
    node: str,
    dry_run: bool = False,
    agent_image: str = DEFAULT_IMAGE,
    within: float = 120.0,
    namespace: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Make the node `technique` (e.g. ``apiserver-manifest-mode``, ``kubelet-anonymous-auth``) on `node`'s file.

    First the gates, before anything is created: `allow_node_faults: true` in the configuration, the node
    labelled ``chaoskirvis.io/node-faults=allowed``, and for a control-plane node or technique
    `allow_control_plane: true` (a node the cluster does not list, such as a managed control plane, is
    refused). The file's path is the configuration key `kirvis_node_path_<file>` when set, else the default of
    `kirvis_node_layout` (``kubeadm`` when unset, ``rke2``, ``k3s``); a file the layout lacks, such as k3s's
    static pod manifests, is refused there too, naming the option to set. Then it creates the run's agent pod
    in `namespace` (image `agent_image`, ``nodeName`` set, only the file's directory mounted from the host,
    owned by the run), waits up to `within` s for it to run, reads the file (mode, owner, content, sha256)
    through exec and writes that original into the run's record in the cluster before changing anything, makes
    the change (chmod, chown, or the new content on stdin), reads the file again and returns what it saw
    (before, after, a diff). A static pod manifest's content change is followed by a wait, up to `within` s,
    for the kubelet to restart the component (its mirror pod Running and Ready with a new config hash). The
    outcome is ``allowed`` (nothing stops a file change on a node: what counts is whether it is detected, e.g.
    `chaoskirvis.nodes.probes.kube_bench_detects`).
    The restore (`chaoskirvis.ledger.actions.restore_run`, or `kirvis cleanup --run-id`) puts the original
    back through an agent, only while the file is what the run left.
    With `dry_run` the agent's mounts are read-only: it reads the file, returns the diff the change would
    make, and is removed at once; nothing is changed or recorded as a change.
    Raises (recorded as an error outcome) on a refused gate, an unknown technique or layout, a file the layout
    lacks, a file already so (the change would test nothing), or when the agent, the record or the change fails.
    """
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    context: dict[str, Any] = {"run_id": run_id, "namespace": namespace, "techniques": [technique], "node": node,
                               "mode": "dry-run" if dry_run else "change"}
    try:
        outcome = _inject(state, technique, node, dry_run, agent_image, within, namespace, context, configuration,
                          secrets)
    except Exception as exc:
        state.add_outcome({**context, "outcome": "error", "blocked": False, "message": str(exc)})
        raise
    if not dry_run:
        state.add_outcome(outcome)
    logger.info(f"[{run_id}] {technique} on node {node}{' (dry run)' if dry_run else ''}: {outcome['outcome']}")
    return outcome


def _inject(state: RunState, technique: str, node: str, dry_run: bool, image: str, within: float, namespace: str,
            context: dict[str, Any], configuration: Configuration | None, secrets: Secrets | None) -> dict[str, Any]:
    unit = node_technique(technique)
    change = unit.node_change
    if within <= 0:
        raise ActivityFailed(f"within must be a positive number of seconds, got {within}")
    check_namespace(namespace)
    api = kube_api(configuration, secrets)
    check_node_gates(configuration or {}, _read_node(api, node), node, change.control_plane)
    try:
        path = change.resolved_path(configuration)
    except ValueError as exc:
        raise ActivityFailed(f"{technique}: {exc}") from None
    context.update(path=path, attack=list(unit.attack), cis={"benchmark": unit.cis.benchmark, "check": unit.cis.id})
    started = time.monotonic()
    agent = start_agent(api, state.run_id, technique, node, [path], namespace, image, within, configuration, state,
                        read_only=dry_run)
    context["agent"] = agent.ref.name
    if dry_run:
        try:
            before = read_state(agent.run, HOST_ROOT, path)
            diff = describe_change(path, before, _after(change, before, technique))
        finally:
            _remove_now(api, state, agent)
        return {**context, "outcome": "dry-run", "blocked": False, "changed": False, "diff": diff,
                "before": file_fields(before)}
    before = read_state(agent.run, HOST_ROOT, path)
    intended = _after(change, before, technique)
    if identity(intended) == identity(before):
        raise ActivityFailed(f"{technique} would not change {path} on node {node}: it is so already, so the "
                             "attempt would test nothing; restore it or choose another node")
    restarts = change.component in STATIC_COMPONENTS and intended.sha256 != before.sha256
    entry = {"node": node, "path": path, "technique": technique, "component": change.component,
             # the content only where the change rewrites it: admin.conf and the like hold client keys
             "original": file_fields(before, with_content=change.kind in ("flag", "config")),
             "intended": file_fields(intended),
             "agent": {"namespace": namespace, "name": agent.ref.name, "image": image},
             "mirror_hash": config_hash(api, change.component, node) if restarts else None}
    record_node_file(api, state, namespace, entry, configuration)  # before the change: a kill leaves the original
    apply_state(agent.run, HOST_ROOT, path, intended, current=before)
    at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")  # when the change was made (detection windows)
    waited = wait_component(api, change.component, node, entry["mirror_hash"], within, back=False) \
        if restarts else None
    left = read_state(agent.run, HOST_ROOT, path)
    try:
        confirm_node_file(api, state, namespace, entry, left, configuration)
    except (ApiError, ActivityFailed) as exc:  # the unconfirmed entry still names what the change was to leave
        logger.warning(f"[{state.run_id}] could not confirm the change of {path} in the run's record: {exc}")
    if identity(left) != identity(intended):
        raise ActivityFailed(f"{path} on node {node} did not read back as the change leaves it (mode {left.mode}, "
                             f"owner {left.uid}:{left.gid}, sha256 {left.sha256}); the restore compares with "
                             "what was read")
    return {**context, "kind": "NodeFile", "name": path, "at": at, "outcome": "allowed", "blocked": False,
            "answered_by": None, "message": change.describe(), "changed": True,
            "before": file_fields(before), "after": file_fields(left), "diff": describe_change(path, before, left),
            "component": waited, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def _after(change: NodeChange, before: FileState, technique: str) -> FileState:
    """What the change leaves of the file; ActivityFailed when the file is not what it can change."""
    try:
        return change.after(before)
    except ValueError as exc:
        raise ActivityFailed(f"{technique} cannot change this file: {exc}") from None


def _read_node(api: KubeAPI, node: str) -> dict[str, Any] | None:
    """The Node object, or None when the cluster lists no such node."""
    ref = ObjectRef(NODE, None, node)
    if ref.problem():
        raise ActivityFailed(f"invalid node name {node!r}: {ref.problem()}")
    try:
        return api.get(ref.path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise ActivityFailed(f"could not read node {node} ({exc.status} {exc.reason}: {exc.message}); the runner "
                             "needs get on nodes") from None


def _remove_now(api: KubeAPI, state: RunState, agent: Agent) -> None:
    """Delete the dry run's agent at once (the restore would otherwise); a failure leaves it to the restore."""
    problem = remove_agent(api, agent)
    if problem:
        logger.warning(f"[{state.run_id}] {problem}; the restore removes it")
    else:
        state.add_gone(agent.ref.path)
