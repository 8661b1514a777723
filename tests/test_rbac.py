"""RBAC grants: a cluster-scoped object recorded in the run's namespace, restored like any other."""
from __future__ import annotations

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.rbac.actions import inject_rbac_grant
from chaoskirvis.rbac.probes import rbac_grant_admission




def test_cluster_admin_binding_is_created_recorded_and_restored(sandbox, make_namespace, run):
    rbac = client.RbacAuthorizationV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    namespace = make_namespace()
    outcome = inject_rbac_grant(namespace, **run)

    binding = rbac.read_cluster_role_binding(outcome["name"])
    assert outcome["outcome"] == "allowed" and outcome["kind"] == "ClusterRoleBinding"
    assert binding.role_ref.name == "cluster-admin"
    assert binding.subjects[0].namespace == namespace and binding.subjects[0].name == outcome["name"]
    assert outcome["attack"] == ["T1078.004", "T1098.006"]

    summary = restore_run(**run)

    assert summary["removed"] == [f"ClusterRoleBinding {outcome['name']}"]
    with pytest.raises(ApiException) as gone:
        rbac.read_cluster_role_binding(outcome["name"])
    assert gone.value.status == 404


def test_dry_run_stores_nothing(sandbox, make_namespace, run):
    rbac = client.RbacAuthorizationV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    outcome = rbac_grant_admission(make_namespace(), **run)
    assert outcome["outcome"] == "allowed" and outcome["mode"] == "dry-run"
    assert outcome["name"] not in [b.metadata.name for b in rbac.list_cluster_role_binding().items]
