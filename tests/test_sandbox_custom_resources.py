"""CustomResourceDefinitions in the sandbox, through the real `kubernetes` client and `kubectl`.

What a real API server does with a CRD (apiextensions-apiserver): refuses a definition whose name is not
`<plural>.<group>` or that has no storage version (422 with the field errors), then serves the resource at
/apis/GROUP/VERSION/PLURAL for every served version, lists it in discovery, and lets a
ValidatingAdmissionPolicy take it as its paramKind. Before the CRD is stored, the same paramKind is a
configuration error that refuses the request under failurePolicy Fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from chaoskirvis.sandbox.server import Sandbox

GROUP = "policies.example.org"


def crd(kind: str = "HostRule", plural: str = "hostrules", versions: tuple[str, ...] = ("v1", "v1alpha1")) -> dict:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Cluster", "names": {"kind": kind, "plural": plural},
                     "versions": [{"name": v, "served": True, "storage": i == 0,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}
                                  for i, v in enumerate(versions)]}}


@pytest.fixture
def crd_sandbox(tmp_path: Path) -> Iterator[tuple[Sandbox, Path]]:
    with Sandbox() as running:
        yield running, running.write_kubeconfig(tmp_path / "kubeconfig")


def test_a_crd_without_a_storage_version_or_named_otherwise_is_invalid(crd_sandbox: tuple[Sandbox, Path]) -> None:
    extensions = client.ApiextensionsV1Api(config.new_client_from_config(str(crd_sandbox[1])))
    wrong = crd()
    wrong["metadata"]["name"] = "hostrules"
    for version in wrong["spec"]["versions"]:
        version["storage"] = False
    with pytest.raises(client.ApiException) as refused:
        extensions.create_custom_resource_definition(wrong)
    assert refused.value.status == 422
    causes = {(c["field"], c["message"]) for c in json.loads(refused.value.body)["details"]["causes"]}
    assert ("metadata.name", 'Invalid value: "hostrules": must be spec.names.plural+"."+spec.group') in causes
    assert any(field == "spec.versions" and "exactly one version marked as storage version" in message
               for field, message in causes)
    assert extensions.list_custom_resource_definition().items == []


def test_custom_objects_are_served_at_their_version_and_in_discovery(crd_sandbox: tuple[Sandbox, Path],
                                                                             kubectl_binary: str) -> None:
    api = config.new_client_from_config(str(crd_sandbox[1]))
    custom = client.CustomObjectsApi(api)
    with pytest.raises(client.ApiException) as unserved:
        custom.list_cluster_custom_object(GROUP, "v1", "hostrules")
    assert unserved.value.status == 404
    client.ApiextensionsV1Api(api).create_custom_resource_definition(crd())
    custom.create_cluster_custom_object(GROUP, "v1", "hostrules", {
        "apiVersion": f"{GROUP}/v1", "kind": "HostRule", "metadata": {"name": "no-host-path"},
        "spec": {"forbidden": ["hostPath"]}})
    stored = custom.get_cluster_custom_object(GROUP, "v1", "hostrules", "no-host-path")
    assert stored["spec"] == {"forbidden": ["hostPath"]} and stored["metadata"]["uid"]
    assert [o["metadata"]["name"] for o in custom.list_cluster_custom_object(GROUP, "v1", "hostrules")["items"]] \
        == ["no-host-path"]
    groups = client.ApisApi(api).get_api_versions().groups
    assert [v.version for g in groups if g.name == GROUP for v in g.versions] == ["v1", "v1alpha1"]

    def kubectl(*args: str) -> str:
        done = subprocess.run([kubectl_binary, *args], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, KUBECONFIG=str(crd_sandbox[1]),
                                       KUBECACHEDIR=str(crd_sandbox[1].parent / "cache")))
        assert done.returncode == 0, done.stderr
        return done.stdout

    manifest = crd_sandbox[1].parent / "rule.yaml"
    manifest.write_text(f"apiVersion: {GROUP}/v1\nkind: HostRule\nmetadata:\n  name: no-host-port\n"
                        "spec:\n  forbidden: [hostPort]\n")
    # kubectl finds the kind in discovery and the write paths in /openapi/v3 (it leaves validation to the server)
    assert kubectl("apply", "-f", str(manifest)).split() == [f"hostrule.{GROUP}/no-host-port", "created"]
    assert kubectl("get", f"hostrules.{GROUP}", "-o", "name").split() == [
        f"hostrule.{GROUP}/no-host-path", f"hostrule.{GROUP}/no-host-port"]


def test_a_policy_takes_a_custom_resource_as_its_param_once_its_crd_is_stored(crd_sandbox: tuple[Sandbox, Path]
                                                                              ) -> None:
    api = config.new_client_from_config(str(crd_sandbox[1]))
    core, admission = client.CoreV1Api(api), client.AdmissionregistrationV1Api(api)
    core.create_namespace({"metadata": {"name": "team-a"}})
    admission.create_validating_admission_policy({
        "metadata": {"name": "host-rules"},
        "spec": {"failurePolicy": "Fail", "paramKind": {"apiVersion": f"{GROUP}/v1", "kind": "HostRule"},
                 "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                         "operations": ["CREATE"], "resources": ["pods"]}]},
                 "validations": [{"expression": "!('hostPath' in params.spec.forbidden) || !has(object.spec.volumes)"
                                                " || object.spec.volumes.all(v, !has(v.hostPath))",
                                  "message": "hostPath volumes are forbidden"}]}})
    admission.create_validating_admission_policy_binding({
        "metadata": {"name": "host-rules"},
        "spec": {"policyName": "host-rules", "validationActions": ["Deny"],
                 "paramRef": {"name": "no-host-path", "parameterNotFoundAction": "Deny"}}})
    pod = {"metadata": {"name": "host"}, "spec": {
        "containers": [{"name": "c", "image": "registry.k8s.io/pause"}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}

    with pytest.raises(client.ApiException) as unconfigured:
        core.create_namespaced_pod("team-a", pod, dry_run="All")
    assert "failed to find resource referenced by paramKind: 'policies.example.org/v1, Kind=HostRule'" in \
        json.loads(unconfigured.value.body)["message"]

    client.ApiextensionsV1Api(api).create_custom_resource_definition(crd())
    custom = client.CustomObjectsApi(api)
    rule = custom.create_cluster_custom_object(GROUP, "v1", "hostrules", {
        "apiVersion": f"{GROUP}/v1", "kind": "HostRule", "metadata": {"name": "no-host-path"},
        "spec": {"forbidden": ["hostPath"]}})
    with pytest.raises(client.ApiException) as denied:
        core.create_namespaced_pod("team-a", pod, dry_run="All")
    assert denied.value.status == 422 and "hostPath volumes are forbidden" in json.loads(denied.value.body)["message"]

    rule["spec"]["forbidden"] = []  # the param changed: the same policy now admits the pod
    custom.replace_cluster_custom_object(GROUP, "v1", "hostrules", "no-host-path", rule)
    assert core.create_namespaced_pod("team-a", pod, dry_run="All").metadata.name == "host"


def test_status_is_an_ordinary_field_without_the_status_subresource_and_server_owned_with_it(
        crd_sandbox: tuple[Sandbox, Path]) -> None:
    api = config.new_client_from_config(str(crd_sandbox[1]))
    with_status = crd("Report", "reports", versions=("v1",))
    with_status["spec"]["versions"][0]["subresources"] = {"status": {}}
    client.ApiextensionsV1Api(api).create_custom_resource_definition(crd("HostRule", "hostrules", versions=("v1",)))
    client.ApiextensionsV1Api(api).create_custom_resource_definition(with_status)
    objects = client.CustomObjectsApi(api)
    body = {"spec": {"x": 1}, "status": {"phase": "Done"}}

    plain = objects.create_cluster_custom_object(GROUP, "v1", "hostrules",
                                                 {"apiVersion": f"{GROUP}/v1", "kind": "HostRule",
                                                  "metadata": {"name": "a"}, **body})
    owned = objects.create_cluster_custom_object(GROUP, "v1", "reports",
                                                 {"apiVersion": f"{GROUP}/v1", "kind": "Report",
                                                  "metadata": {"name": "a"}, **body})
    changed = objects.patch_cluster_custom_object(GROUP, "v1", "hostrules", "a", {"status": {"phase": "Again"}})
    kept = objects.patch_cluster_custom_object(GROUP, "v1", "reports", "a", {"status": {"phase": "Again"}})

    assert plain["status"] == {"phase": "Done"} and changed["status"] == {"phase": "Again"}
    assert "status" not in owned and "status" not in kept
