"""The bootstrap RBAC policy a fresh cluster has (data/rbac-bootstrap.yaml), as stored objects.

kube-apiserver's RBAC post-start hook writes the default ClusterRoles and ClusterRoleBindings labelled
`kubernetes.io/bootstrapping: rbac-defaults` and annotated `rbac.authorization.kubernetes.io/autoupdate:
"true"`; admin, edit and view carry an aggregationRule and get their rules from the aggregation controller.
"""

from __future__ import annotations

import functools
from importlib import resources as package_files
from typing import Any

import yaml

from chaoskirvis.sandbox.rbac import RBAC_GROUP

_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
_API_VERSION = f"{RBAC_GROUP}/v1"


@functools.cache
def _policy() -> dict[str, Any]:
    text = package_files.files("chaoskirvis.sandbox").joinpath("data/rbac-bootstrap.yaml").read_text()
    return yaml.safe_load(text)


def _metadata(entry: dict[str, Any]) -> dict[str, Any]:
    if entry.get("sandbox"):  # the sandbox's own: not part of upstream's defaults
        return {"name": entry["name"], "labels": {"app.kubernetes.io/managed-by": "kirvis-sandbox"}}
    return {"name": entry["name"], "labels": _BOOTSTRAP_LABELS | (entry.get("labels") or {}),
            "annotations": dict(_AUTOUPDATE)}


def cluster_roles() -> list[dict[str, Any]]:
    """The bootstrap ClusterRoles, as manifests (aggregated ones with `rules: []` until aggregated)."""
    roles = []
    for entry in _policy()["clusterRoles"]:
        role: dict[str, Any] = {"apiVersion": _API_VERSION, "kind": "ClusterRole", "metadata": _metadata(entry)}
        if entry.get("aggregateFrom"):
            role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {entry["aggregateFrom"]: "true"}}]}
        role["rules"] = [dict(rule) for rule in entry.get("rules") or []]
        roles.append(role)
    return roles


def cluster_role_bindings() -> list[dict[str, Any]]:
    """The bootstrap ClusterRoleBindings, as manifests."""
    return [{"apiVersion": _API_VERSION, "kind": "ClusterRoleBinding", "metadata": _metadata(entry),
             "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": entry["role"]},
             "subjects": [dict(subject, apiGroup=RBAC_GROUP) for subject in entry["subjects"]]}
            for entry in _policy()["clusterRoleBindings"]]
