"""The gates a node fault passes before anything is created: experiment opt-in, node opt-in, control plane."""
from __future__ import annotations

from typing import Any, Mapping

from chaoslib.exceptions import ActivityFailed

__all__ = ["NODE_OPT_IN_LABEL", "NODE_OPT_IN_VALUE", "CONTROL_PLANE_LABEL", "check_node_gates"]

NODE_OPT_IN_LABEL = "chaoskirvis.io/node-faults"
NODE_OPT_IN_VALUE = "allowed"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def check_node_gates(configuration: Mapping[str, Any], node: Mapping[str, Any] | None, node_name: str,
                     control_plane_technique: bool) -> None:
    """Refuse (ActivityFailed) unless the experiment and the node both opted in; pure, sends no request.

    `node` is the Node object as read, or None when the cluster has no such node (a managed control plane
    lists no control-plane nodes: its files are not reachable from the cluster).
    """
    if configuration.get("allow_node_faults") is not True:
        raise ActivityFailed("node faults are refused: set `allow_node_faults: true` in the experiment's "
                             "configuration to allow changing files on a node")
    if node is None:
        if control_plane_technique:
            raise ActivityFailed(f"node {node_name!r} not found: a managed control plane (no control-plane "
                                 "nodes in the cluster) cannot be changed from inside it; refused")
        raise ActivityFailed(f"node {node_name!r} not found; refused")
    labels = (node.get("metadata") or {}).get("labels") or {}
    if labels.get(NODE_OPT_IN_LABEL) != NODE_OPT_IN_VALUE:
        raise ActivityFailed(f"node {node_name!r} has not opted in: label it "
                             f"`{NODE_OPT_IN_LABEL}={NODE_OPT_IN_VALUE}` to allow node faults on it")
    if CONTROL_PLANE_LABEL in labels and configuration.get("allow_control_plane") is not True:
        raise ActivityFailed(f"node {node_name!r} is a control-plane node: set `allow_control_plane: true` "
                             "in the experiment's configuration as well")
    if control_plane_technique and CONTROL_PLANE_LABEL not in labels:
        raise ActivityFailed(f"node {node_name!r} is not a control-plane node (no {CONTROL_PLANE_LABEL} "
                             "label): this technique changes control-plane files; refused")
