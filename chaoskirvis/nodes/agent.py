"""The node agent pod: pinned to one node, mounting only the host directories its technique touches."""
from __future__ import annotations

import posixpath
from typing import Any, Iterable

from chaoskirvis.ledger.ownership import object_name, ownership_metadata

__all__ = ["DEFAULT_IMAGE", "HOST_ROOT", "agent_pod"]

DEFAULT_IMAGE = "busybox:1.36"  # has sh, stat, chmod, chown, sha256sum, base64, cat
HOST_ROOT = "/host"


def agent_pod(run_id: str, technique: str, node_name: str, paths: Iterable[str], namespace: str,
              suffix: str, image: str = DEFAULT_IMAGE, configuration: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """The agent Pod body: nodeName set, one hostPath (type Directory) per parent directory of `paths`."""
    dirs = sorted({posixpath.dirname(p) for p in paths})
    volumes = [{"name": f"host-{i}", "hostPath": {"path": d, "type": "Directory"}} for i, d in enumerate(dirs)]
    mounts = [{"name": f"host-{i}", "mountPath": HOST_ROOT + d} for i, d in enumerate(dirs)]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": object_name(run_id, "node-agent", suffix), "namespace": namespace,
                     **ownership_metadata(run_id, technique, configuration)},
        "spec": {
            "nodeName": node_name,  # bypasses the scheduler: the agent runs exactly where the files are
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "tolerations": [{"operator": "Exists"}],  # control-plane and other taints must not keep it off
            "containers": [{
                "name": "agent", "image": image, "command": ["sleep", "3600"],
                "securityContext": {"runAsUser": 0},  # chown and reading root-only files need uid 0
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        },
    }
