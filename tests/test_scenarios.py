"""The scenario manifests: valid for a real cluster's API schema, applied by the sandbox, and enforced there."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes import client, config

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))
DOCUMENTS = [(path, doc) for path in SCENARIOS for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_there_are_namespace_and_policy_scenarios():
    assert {path.name for path in SCENARIOS} >= {"namespaces.yaml", "policies.yaml"}


@pytest.mark.parametrize("path, document", DOCUMENTS,
                         ids=[f"{path.stem}:{doc['kind']}/{doc['metadata']['name']}" for path, doc in DOCUMENTS])
def test_every_document_validates_against_the_kubernetes_schema(path, document):
    kubernetes_validate.validate(document, "1.32", strict=True)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_the_sandbox_applies_every_scenario(scenarios, path):
    stored = scenarios.sandbox.apply(path)  # applied once by the fixture: this replaces each object

    expected = [(doc["kind"], doc["metadata"]["name"]) for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in stored] == expected


@pytest.fixture
def core(scenarios) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(scenarios.kubeconfig)))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def nodeport_service(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}


def restricted_pod(name: str, image: str) -> dict[str, Any]:
    """A pod that Pod Security admits at restricted, with CPU and memory limits."""
    return {"metadata": {"name": name}, "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65535, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "image": image,
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        "resources": {"limits": {"cpu": "10m", "memory": "16Mi"}}}]}}


def test_a_nodeport_service_is_denied_in_a_guarded_namespace_and_admitted_without_controls(core):
    name = unique("np")
    with pytest.raises(client.ApiException) as error:
        core.create_namespaced_service("team-baseline", nodeport_service(name))
    assert error.value.status == 403
    assert json.loads(error.value.body)["message"] == (
        f'services "{name}" is forbidden: ValidatingAdmissionPolicy \'deny-nodeport\' with binding '
        "'deny-nodeport-binding' denied request: NodePort services are not allowed")

    admitted = core.create_namespaced_service("team-privileged", nodeport_service(name))
    core.delete_namespaced_service(name, "team-privileged")
    assert admitted.spec.type == "NodePort"


def test_a_latest_image_is_denied_and_a_pinned_trusted_image_with_limits_admitted(core):
    name = unique("pod")
    with pytest.raises(client.ApiException) as error:
        core.create_namespaced_pod("team-restricted", restricted_pod(name, "registry.k8s.io/pause:latest"))
    assert json.loads(error.value.body)["message"] == (
        f'pods "{name}" is forbidden: ValidatingAdmissionPolicy \'deny-mutable-image-tags\' with binding '
        "'deny-mutable-image-tags-binding' denied request: images must be pinned to a tag other than latest, or to "
        "a digest: registry.k8s.io/pause:latest")

    admitted = core.create_namespaced_pod("team-restricted", restricted_pod(name, "registry.k8s.io/pause:3.10"))
    core.delete_namespaced_pod(name, "team-restricted")
    assert admitted.metadata.name == name
