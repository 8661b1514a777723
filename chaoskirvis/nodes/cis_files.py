"""CIS 1.1.x / 4.1.x file checks (benchmark cis-1.9, as kube-bench's cfg/cis-1.9 master.yaml / node.yaml word them).

Paths are kubeadm's defaults. kube-bench's `bitmask` compare passes a mode that grants nothing beyond the
expected one (mode & ~expected == 0); ownership checks compare the owner and group exactly.
"""
from __future__ import annotations

from typing import NamedTuple

from chaoskirvis.nodes.agent_commands import FileState

__all__ = ["BENCHMARK", "FileCheck", "CONTROL_PLANE_FILES", "WORKER_FILES", "mode_passes", "owner_passes"]

BENCHMARK = "cis-1.9"


class FileCheck(NamedTuple):
    """One file's CIS permissions and ownership checks (kube-bench check ids) at its kubeadm path."""

    name: str
    path: str
    mode_check: str
    mode: str
    owner_check: str


CONTROL_PLANE_FILES: tuple[FileCheck, ...] = (
    FileCheck("apiserver-manifest", "/etc/kubernetes/manifests/kube-apiserver.yaml", "1.1.1", "600", "1.1.2"),
    FileCheck("controller-manager-manifest", "/etc/kubernetes/manifests/kube-controller-manager.yaml",
              "1.1.3", "600", "1.1.4"),
    FileCheck("scheduler-manifest", "/etc/kubernetes/manifests/kube-scheduler.yaml", "1.1.5", "600", "1.1.6"),
    FileCheck("etcd-manifest", "/etc/kubernetes/manifests/etcd.yaml", "1.1.7", "600", "1.1.8"),
    FileCheck("admin-conf", "/etc/kubernetes/admin.conf", "1.1.13", "600", "1.1.14"),
    FileCheck("scheduler-conf", "/etc/kubernetes/scheduler.conf", "1.1.15", "600", "1.1.16"),
    FileCheck("controller-manager-conf", "/etc/kubernetes/controller-manager.conf", "1.1.17", "600", "1.1.18"),
)

# CIS 4.1.x (node.yaml). The kubelet drop-in is where current kubeadm packages put it; older packages used
# /etc/systemd/system/kubelet.service.d/10-kubeadm.conf.
WORKER_FILES: tuple[FileCheck, ...] = (
    FileCheck("kubelet-service", "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", "4.1.1", "600",
              "4.1.2"),
    FileCheck("kubelet-conf", "/etc/kubernetes/kubelet.conf", "4.1.5", "600", "4.1.6"),
    FileCheck("client-ca", "/etc/kubernetes/pki/ca.crt", "4.1.7", "600", "4.1.8"),
    FileCheck("kubelet-config", "/var/lib/kubelet/config.yaml", "4.1.9", "600", "4.1.10"),
)


def mode_passes(state: FileState, expected: str) -> bool:
    """kube-bench's bitmask compare: the file's mode sets no permission bit the expected mode does not."""
    return int(state.mode, 8) & ~int(expected, 8) == 0


def owner_passes(state: FileState) -> bool:
    """root:root, by numeric id (the agent reads ids; kube-bench's %U:%G names resolve to the same on a node)."""
    return (state.uid, state.gid) == (0, 0)
