"""Test identities in the sandbox: a real kubernetes client acting with a token, and a runner limited by RBAC."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from chaoskirvis.sandbox.server import Sandbox

RBAC_GROUP = "rbac.authorization.k8s.io"


def api_for(sandbox: Sandbox, token: str, impersonate: str | None = None) -> client.ApiClient:
    """The real kubernetes client with this bearer token (and an Impersonate-User header)."""
    configuration = client.Configuration()
    configuration.host = sandbox.url
    configuration.ssl_ca_cert = str(sandbox.ca_file)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    api = client.ApiClient(configuration)
    if impersonate:
        api.set_default_header("Impersonate-User", impersonate)
    return api


def limited_user(sandbox: Sandbox, admin: client.ApiClient, name: str, rules: list[dict[str, Any]],
                 kubeconfig: Path) -> Path:
    """A new sandbox user holding exactly `rules` cluster-wide (a ClusterRole and its binding, both named
    `name`): the kubeconfig written at `kubeconfig`."""
    rbac = client.RbacAuthorizationV1Api(admin)
    sandbox.add_user(name)
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding({"metadata": {"name": name}, "subjects": [
        {"kind": "User", "apiGroup": RBAC_GROUP, "name": name}],
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name}})
    return sandbox.write_kubeconfig(kubeconfig, user=name)
