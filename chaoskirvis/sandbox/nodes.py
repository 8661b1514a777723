"""The sandbox's nodes: what their Node objects say, and which of them a pod can be scheduled to.

Nothing runs on them: a node is a Node object with the labels, taints and status a kubelet registers (as
kind 1.32 shows them), and its Lease in kube-node-lease. The scheduling rules are the scheduler's filter
plugins that decide where our pods may go: NodeName, NodeUnschedulable, TaintToleration (NoSchedule and
NoExecute taints) and NodeAffinity (nodeSelector and required node affinity). Among the nodes that pass,
the pod goes to the one with the fewest pods (ties: by name), where the real scheduler would score them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaoskirvis.sandbox.resources import SERVER_VERSION

KUBELET_VERSION = SERVER_VERSION["gitVersion"].partition("-")[0]  # v1.32.0: a kubelet of the server's release
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"
_CAPACITY = {"cpu": "8", "ephemeral-storage": "102626232Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
             "memory": "16331244Ki", "pods": "110"}


@dataclass(frozen=True)
class SandboxNode:
    """One node of the sandbox: its name, its InternalIP (pods' hostIP) and what schedules pods to it.

    The i-th node of the sandbox (from 0) has the pod network 10.244.i.0/24: its pods get 10.244.i.x.
    """

    name: str
    internal_ip: str
    control_plane: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] | None = None  # None: the role's default (control plane: NoSchedule)
    unschedulable: bool = False

    def effective_taints(self) -> list[dict[str, str]]:
        if self.taints is not None:
            return [dict(taint) for taint in self.taints]
        return [{"key": CONTROL_PLANE_ROLE, "effect": "NoSchedule"}] if self.control_plane else []

    def effective_labels(self) -> dict[str, str]:
        labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux"}
        if self.control_plane:
            labels |= {CONTROL_PLANE_ROLE: "", "node.kubernetes.io/exclude-from-external-load-balancers": ""}
        return labels | dict(self.labels)


DEFAULT_NODES: tuple[SandboxNode, ...] = (
    SandboxNode("kirvis-control-plane", "172.18.0.2", control_plane=True),
    SandboxNode("kirvis-worker", "172.18.0.3"),
)


def node_object(node: SandboxNode, index: int, now: str) -> dict[str, Any]:
    """The Node a kind 1.32 kubelet registers and keeps Ready (before the API server fills in metadata)."""
    pod_cidr = f"10.244.{index}.0/24"
    spec: dict[str, Any] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr],
                            "providerID": f"kind://docker/kirvis/{node.name}"}
    if node.effective_taints():
        spec["taints"] = node.effective_taints()
    if node.unschedulable:
        spec["unschedulable"] = True
    conditions = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node.name, "labels": node.effective_labels(), "annotations": {
            "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": spec,
        "status": {
            "addresses": [{"address": node.internal_ip, "type": "InternalIP"},
                          {"address": node.name, "type": "Hostname"}],
            "allocatable": dict(_CAPACITY), "capacity": dict(_CAPACITY),
            "conditions": [{"type": kind, "status": status, "reason": reason, "message": message,
                            "lastHeartbeatTime": now, "lastTransitionTime": now}
                           for kind, status, reason, message in conditions],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [],
            "nodeInfo": {"architecture": "amd64", "bootID": str(uuid.uuid4()),
                         "containerRuntimeVersion": "containerd://1.7.24", "kernelVersion": "6.8.0-kirvis-sandbox",
                         # still reported in 1.32 (DisableNodeKubeProxyVersion is off by default until 1.33)
                         "kubeProxyVersion": KUBELET_VERSION, "kubeletVersion": KUBELET_VERSION,
                         "machineID": uuid.uuid4().hex,
                         "operatingSystem": "linux", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "systemUUID": str(uuid.uuid4())},
        },
    }


def node_lease(node: dict[str, Any], now_micro: str) -> dict[str, Any]:
    """The kubelet's heartbeat Lease in kube-node-lease, owned by its Node (deleted with it)."""
    name, uid = node["metadata"]["name"], node["metadata"]["uid"]
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease", "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}]},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro}}


# Scheduling: the filters, with the reasons the scheduler gives for a node that fails them.

_AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"
_UNSCHEDULABLE_REASON = "node(s) were unschedulable"


def filter_failure(pod: dict[str, Any], node: dict[str, Any]) -> str | None:
    """Why `pod` cannot be scheduled to `node` (the scheduler's per-node reason), or None when it can."""
    spec, node_spec = pod.get("spec") or {}, node.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    if node_spec.get("unschedulable") and not any(
            _tolerates(t, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}) for t in tolerations):
        return _UNSCHEDULABLE_REASON
    labels = node["metadata"].get("labels") or {}
    if not _matches_node_selector(spec, labels, node["metadata"]["name"]):
        return _AFFINITY_REASON
    for taint in node_spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(_tolerates(t, taint) for t in tolerations):
            return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
    return None


def unschedulable_message(failures: Sequence[str]) -> str:
    """The scheduler's FitError message: how many nodes failed for each reason, reasons sorted."""
    total = len(failures)
    if total == 0:
        return "no nodes available to schedule pods"
    counts = {reason: failures.count(reason) for reason in failures}
    reasons = ", ".join(sorted(f"{count} {reason}" for reason, count in counts.items()))
    return (f"0/{total} nodes are available: {reasons}. preemption: 0/{total} nodes are available: "
            f"{total} Preemption is not helpful for scheduling.")


def choose(feasible: Iterable[str], pods_on: Mapping[str, int]) -> str | None:
    """The feasible node with the fewest pods; the first one given among equals."""
    names = list(feasible)
    return min(names, key=lambda name: (pods_on.get(name, 0), names.index(name))) if names else None


def _tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """v1 Toleration.ToleratesTaint."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    if toleration.get("key") and toleration.get("key") != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def _matches_node_selector(spec: dict[str, Any], labels: Mapping[str, str], node_name: str) -> bool:
    if any(labels.get(key) != value for key, value in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    return any(_term_matches(term, labels, node_name) for term in terms)


def _term_matches(term: dict[str, Any], labels: Mapping[str, str], node_name: str) -> bool:
    """A node selector term: all its expressions hold; a term with none matches no node."""
    expressions = [(e, labels) for e in term.get("matchExpressions") or []]
    expressions += [(e, {"metadata.name": node_name}) for e in term.get("matchFields") or []]
    return bool(expressions) and all(_requirement_holds(e, values) for e, values in expressions)


def _requirement_holds(expression: dict[str, Any], values: Mapping[str, str]) -> bool:
    key, operator, wanted = expression.get("key", ""), expression.get("operator"), expression.get("values") or []
    present, value = key in values, values.get(key, "")
    match operator:
        case "In":
            return present and value in wanted
        case "NotIn":
            return not present or value not in wanted
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
        case "Gt" | "Lt":
            try:
                number, bound = int(value), int(wanted[0])
            except (ValueError, IndexError):
                return False
            return present and (number > bound if operator == "Gt" else number < bound)
    return False
