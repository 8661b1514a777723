"""Manifests that carry one or more techniques, marked as the run's own.

The base pod complies with the ``restricted`` Pod Security level and has resource limits, so that a
verdict is about the injected technique and nothing else.
"""
from __future__ import annotations

import copy
import secrets
import string
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

from chaoskirvis.ledger.ownership import TECHNIQUES_ANNOTATION, object_name, ownership_metadata
from chaoskirvis.ledger.refs import (
    CERTIFICATE_SIGNING_REQUEST, CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CONFIG_MAP, CRON_JOB, DAEMON_SET, DEPLOYMENT,
    NETWORK_POLICY, POD, ROLE, ROLE_BINDING, SECRET, SERVICE, Kind,
)
from chaoskirvis.techniques.unit import Technique, unknown_options

__all__ = ["DEFAULT_IMAGE", "SHELL_IMAGE", "CONTROLLERS", "build_manifest", "build_runtime_pod", "build_token_secret"]

# Harmless by design: the pause container does nothing.
DEFAULT_IMAGE = "registry.k8s.io/pause:3.10"
# Runtime techniques need a shell: Kubernetes' own busybox test image, from the same trusted registry.
SHELL_IMAGE = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1"
TARGET_KINDS = {"pod": POD, "service": SERVICE, "networkpolicy": NETWORK_POLICY,
                "clusterrolebinding": CLUSTER_ROLE_BINDING, "clusterrole": CLUSTER_ROLE, "role": ROLE,
                "rolebinding": ROLE_BINDING, "secret": SECRET, "configmap": CONFIG_MAP,
                "csr": CERTIFICATE_SIGNING_REQUEST}
_RBAC_API = "rbac.authorization.k8s.io/v1"
CONTROLLERS = {"Deployment": DEPLOYMENT, "DaemonSet": DAEMON_SET, "CronJob": CRON_JOB}
_APP_LABEL = "chaoskirvis.io/app"


def build_manifest(
    techniques: list[Technique],
    *,
    namespace: str,
    run_id: str,
    options: dict[str, Any] | None = None,
    image: str = DEFAULT_IMAGE,
    controller: str | None = None,
    configuration: Configuration | None = None,
) -> tuple[Kind, dict[str, Any]]:
    """The object carrying every technique (optionally a pod inside a controller's template)."""
    targets = {t.target for t in techniques}
    if len(targets) != 1:
        raise ActivityFailed(
            f"techniques {', '.join(t.id for t in techniques)} cannot share one object: "
            f"they target {', '.join(sorted(targets))}"
        )
    unknown_options(techniques, options)
    if any(t.family == "guardrail" for t in techniques):
        raise ActivityFailed(f"{', '.join(t.id for t in techniques)} change an object that exists: use "
                             "chaoskirvis.guardrails.actions.tamper_guardrail")
    target = targets.pop()
    if target == "exec":
        raise ActivityFailed(f"{', '.join(t.id for t in techniques)} run through exec: use run_runtime_technique")
    if target not in TARGET_KINDS:
        raise ActivityFailed(f"{', '.join(t.id for t in techniques)} make a request, not an object: "
                             "use chaoskirvis.rbac.actions.inject_identity_technique")
    if controller and target != "pod":
        raise ActivityFailed(f"controller {controller} carries pods; {target} techniques cannot go in it")
    slug = "-".join(t.id for t in techniques)
    metadata = ownership_metadata(run_id, ".".join(t.id for t in techniques)[:63].strip(".-"), configuration)
    metadata["annotations"][TECHNIQUES_ANNOTATION] = ",".join(t.id for t in techniques)
    name = object_name(run_id, slug, _suffix())
    manifest = _base(target, name, namespace, metadata, image)
    for technique in techniques:
        technique.apply(manifest, technique.resolve_options(options))
    if controller:
        return _in_controller(controller, manifest)
    return TARGET_KINDS[target], manifest


def build_runtime_pod(
    *, namespace: str, run_id: str, image: str = SHELL_IMAGE, run_as_root: bool = False,
    configuration: Configuration | None = None,
) -> dict[str, Any]:
    """A pod that sleeps, for runtime techniques to exec into (restricted-compliant unless `run_as_root`)."""
    metadata = ownership_metadata(run_id, "runtime", configuration)
    name = object_name(run_id, "runtime", _suffix())
    pod = _base("pod", name, namespace, metadata, image)
    pod["spec"]["containers"][0]["command"] = ["sleep", "3600"]
    if run_as_root:
        pod["spec"]["securityContext"].update(runAsNonRoot=False, runAsUser=0)
    return pod


def build_token_secret(*, namespace: str, run_id: str, configuration: Configuration | None = None) -> dict[str, Any]:
    """An empty Secret of the run, for a token to be bound to (deleting it kills the token)."""
    metadata = ownership_metadata(run_id, "token-binding", configuration)
    return _base("secret", object_name(run_id, "token-binding", _suffix()), namespace, metadata, DEFAULT_IMAGE)


def _suffix() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))


def _base(target: str, name: str, namespace: str, metadata: dict[str, Any], image: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace, **copy.deepcopy(metadata)}
    if target == "pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": _restricted_pod_spec(image)}
    if target == "service":
        return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
                "spec": {"selector": {_APP_LABEL: name}}}
    if target == "clusterrolebinding":
        del meta["namespace"]
        return {"apiVersion": _RBAC_API, "kind": "ClusterRoleBinding", "metadata": meta,
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]}
    if target in ("clusterrole", "role"):
        if target == "clusterrole":
            del meta["namespace"]
        return {"apiVersion": _RBAC_API, "kind": TARGET_KINDS[target].kind, "metadata": meta, "rules": []}
    if target == "rolebinding":
        return {"apiVersion": _RBAC_API, "kind": "RoleBinding", "metadata": meta, "subjects": []}
    if target == "secret":
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque"}
    if target == "configmap":
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}}
    if target == "csr":  # the technique's apply adds spec.request
        del meta["namespace"]
        return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": meta,
                "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"],
                         "expirationSeconds": 600}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta,
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def _restricted_pod_spec(image: str) -> dict[str, Any]:
    limits = {"cpu": "10m", "memory": "16Mi"}
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65535, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "kirvis",
            "image": image,
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            "resources": {"limits": dict(limits), "requests": dict(limits)},
        }],
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 0,
    }


def _in_controller(controller: str, pod: dict[str, Any]) -> tuple[Kind, dict[str, Any]]:
    try:
        kind = CONTROLLERS[controller]
    except KeyError:
        raise ActivityFailed(f"unknown controller {controller!r}: use one of {', '.join(CONTROLLERS)}") from None
    metadata = pod["metadata"]
    labels = {**metadata["labels"], _APP_LABEL: metadata["name"]}
    template = {"metadata": {"labels": labels, "annotations": dict(metadata["annotations"])}, "spec": pod["spec"]}
    if controller == "CronJob":
        template["spec"]["restartPolicy"] = "Never"
        spec = {"schedule": "0 0 31 2 *", "suspend": True,
                "jobTemplate": {"spec": {"backoffLimit": 0, "template": template}}}
    else:
        template["spec"]["restartPolicy"] = "Always"
        spec = {"selector": {"matchLabels": {_APP_LABEL: metadata["name"]}}, "template": template}
        if controller == "Deployment":
            spec["replicas"] = 1
    manifest = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": metadata, "spec": spec}
    return kind, manifest
