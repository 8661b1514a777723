"""A directory tree laid out like a kubeadm node, with realistic modes and owners, for the agent's commands."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chaoskirvis.nodes.gates import NODE_OPT_IN_LABEL

KUBELET_CONFIG = b"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
readOnlyPort: 0
rotateCertificates: true
"""

APISERVER = b"""apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --anonymous-auth=false
    - --authorization-mode=Node,RBAC
    - --profiling=false
    name: kube-apiserver
"""

# kubeadm's layout and the modes a kubeadm install leaves (CIS 1.1.x / 4.1.x expect these or stricter).
FILES = {
    "etc/kubernetes/manifests/kube-apiserver.yaml": (0o600, APISERVER),
    "etc/kubernetes/admin.conf": (0o600, b"apiVersion: v1\nkind: Config\n"),
    "etc/kubernetes/scheduler.conf": (0o600, b"apiVersion: v1\nkind: Config\n"),
    "etc/kubernetes/kubelet.conf": (0o600, b"apiVersion: v1\nkind: Config\n"),
    "etc/kubernetes/pki/ca.crt": (0o644, b"-----BEGIN CERTIFICATE-----\n"),
    "var/lib/kubelet/config.yaml": (0o644, KUBELET_CONFIG),
    "usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": (0o644, b"[Service]\n"),
}


def make_node_tree(root: Path) -> Path:
    """Write the kubeadm node files under `root`, owned by root:root with kubeadm's modes."""
    for rel, (mode, content) in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chown(path, 0, 0)
        path.chmod(mode)
    return root


@contextmanager
def nodes_attached(sandbox: Any, core: Any, roots: dict[str, Path]) -> Iterator[dict[str, Path]]:
    """Each node of `roots` opted in to node faults (its label) with its tree attached as its filesystem in the
    sandbox (a `Sandbox`); label and tree taken away afterwards."""
    for node, root in roots.items():
        sandbox.attach_node_root(node, root)
        core.patch_node(node, {"metadata": {"labels": {NODE_OPT_IN_LABEL: "allowed"}}})
    try:
        yield roots
    finally:
        for node in roots:
            sandbox.attach_node_root(node, None)
            core.patch_node(node, {"metadata": {"labels": {NODE_OPT_IN_LABEL: None}}})
