"""The node-fault gates: both opt-ins required, control plane needs its own, managed control plane refused."""
from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.nodes.gates import CONTROL_PLANE_LABEL, NODE_OPT_IN_LABEL, check_node_gates


def node(*labels: str) -> dict:
    values = {NODE_OPT_IN_LABEL: "allowed", CONTROL_PLANE_LABEL: ""}
    return {"metadata": {"name": "n1", "labels": {k: values[k] for k in labels}}}


def test_worker_with_both_opt_ins_passes():
    check_node_gates({"allow_node_faults": True}, node(NODE_OPT_IN_LABEL), "n1", False)


@pytest.mark.parametrize("config,obj,cp,message", [
    ({}, node(NODE_OPT_IN_LABEL), False, "allow_node_faults"),
    ({"allow_node_faults": "true"}, node(NODE_OPT_IN_LABEL), False, "allow_node_faults"),  # a string is no opt-in
    ({"allow_node_faults": True}, node(), False, "chaoskirvis.io/node-faults=allowed"),
    ({"allow_node_faults": True}, node(NODE_OPT_IN_LABEL, CONTROL_PLANE_LABEL), True, "allow_control_plane"),
    ({"allow_node_faults": True, "allow_control_plane": True}, node(NODE_OPT_IN_LABEL), True,
     "not a control-plane node"),
    ({"allow_node_faults": True, "allow_control_plane": True}, None, True, "managed control plane"),
])
def test_refusals(config, obj, cp, message):
    with pytest.raises(ActivityFailed, match=message):
        check_node_gates(config, obj, "n1", cp)


def test_control_plane_with_all_opt_ins_passes():
    check_node_gates({"allow_node_faults": True, "allow_control_plane": True},
                     node(NODE_OPT_IN_LABEL, CONTROL_PLANE_LABEL), "n1", True)
