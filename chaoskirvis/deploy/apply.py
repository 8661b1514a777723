"""Apply the rendered manifests with the project's client, idempotently: create what is missing, replace what
exists (on the version read, so a change made in between is refused, not overwritten blindly)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chaoskirvis.client import ApiError, KubeAPI, path_for

__all__ = ["apply_all", "PLURALS"]

# The kinds `render` produces, by (apiVersion, kind): their plural and whether they are namespaced.
PLURALS = {("v1", "Namespace"): ("namespaces", False), ("v1", "ServiceAccount"): ("serviceaccounts", True),
           ("v1", "ConfigMap"): ("configmaps", True), ("batch/v1", "CronJob"): ("cronjobs", True),
           ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
           ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
           ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
           ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False)}


def apply_all(api: KubeAPI, manifests: list[dict[str, Any]]) -> Iterator[str]:
    """Create or replace each manifest in order, saying so as each is done ("created ...", "configured ...").
    An API error stops there (`ApiError`, naming the request and the API's answer)."""
    for manifest in manifests:
        yield _apply(api, manifest)


def _apply(api: KubeAPI, manifest: dict[str, Any]) -> str:
    plural, namespaced = PLURALS[(manifest["apiVersion"], manifest["kind"])]
    metadata = manifest["metadata"]
    namespace = metadata.get("namespace") if namespaced else None
    collection = path_for(manifest["apiVersion"], plural, namespace)
    name = f"{manifest['kind']} {namespace + '/' if namespace else ''}{metadata['name']}"
    path = path_for(manifest["apiVersion"], plural, namespace, metadata["name"])
    try:
        current = api.get(path)
    except ApiError as exc:
        if exc.status != 404:
            raise
        api.create(collection, manifest)
        return f"created {name}"
    replacement = {**manifest, "metadata": {**metadata, "resourceVersion": current["metadata"]["resourceVersion"]}}
    api.request("PUT", path, body=replacement)
    return f"configured {name}"
