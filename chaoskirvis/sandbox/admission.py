"""Validating admission: a chain of plugins that see every write before anything is stored.

A plugin is any object with a `name` and `admit(request, store) -> AdmissionResult`. It gets the request
(operation, resource, namespace, name, object, old object, dry run, user) and the store (read only: to
look up namespace labels or existing pods), and answers with warnings or a denial. A plugin that must wait
(an admission webhook's HTTP call) answers with an awaitable of its result instead, so that the sandbox's
event loop serves other requests meanwhile; `AdmissionChain.admit` is a coroutine for that reason. The
chain runs the plugins in order, keeps every warning and stops at the first denial (whose result carries
the warnings so far, which the API server sends with the refusal too). The sandbox's chain (server.py) is
the pods' mutating plugins, `webhooks.MutatingWebhookAdmission`, `ServiceAllocation`,
`PodSecurityAdmission` (here), `vap.ValidatingAdmissionPolicyAdmission`, then
`webhooks.ValidatingWebhookAdmission`: kube-apiserver's order (every mutating plugin, ending with the
mutating webhooks, then the validating ones, ending with ValidatingAdmissionPolicy and the validating
webhooks).

The first plugin is `PodSecurityAdmission`, which follows kubernetes/pod-security-admission
(`admission/admission.go`, `api/helpers.go`) with the default configuration (no exemptions, every mode
privileged unless a namespace label says otherwise):

- Namespaces: on create, invalid `pod-security.kubernetes.io/{enforce,warn,audit}[-version]` labels are
  rejected (422 Invalid); on update only when they changed. Making `enforce` stricter is allowed but
  answered with warnings naming the existing pods that violate the new level.
- Pods: on create, and on updates that change what the checks read (container images, the number of
  containers, ephemeral containers, seccomp annotations), the `enforce` level denies (403 Forbidden) and
  the `warn` level warns. A denied request gets no warnings.
- Workloads (the resources with a pod template): never denied; their template is checked at the `warn`
  level only, as upstream does (enforce applies to the pods a controller would create).

Every `-version` label is treated as `latest`: the checks are those of
`chaoskirvis.sandbox.podsecurity`. An unparsable enforce level counts as `restricted` and an unparsable
warn level as `privileged`, as upstream fails closed and open respectively. Audit mode has no effect:
the sandbox keeps no audit log.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chaoskirvis.sandbox import podsecurity
from chaoskirvis.sandbox.resources import NAMESPACES, PODS, ResourceType
from chaoskirvis.sandbox.store import Cause, Store, invalid, pod_template

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


@dataclass(frozen=True)
class AdmissionRequest:
    operation: Operation
    resource: ResourceType
    namespace: str | None
    name: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    dry_run: bool
    user: str
    subresource: str | None = None
    groups: tuple[str, ...] = ()
    uid: str = ""


@dataclass(frozen=True)
class Denial:
    """A refusal as the API answers it: HTTP code, Status reason, message, and field causes if any."""

    code: int
    reason: str
    message: str
    causes: tuple[Cause, ...] = ()
    # The Status details exactly as sent (a webhook's own, or none), instead of the resource's name and kind.
    own_details: bool = False
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class AdmissionResult:
    warnings: tuple[str, ...] = ()
    denial: Denial | None = None
    mutated: bool = False  # a mutating webhook changed request.object (the handler validates it again)


ALLOWED = AdmissionResult()


class AdmissionPlugin(Protocol):
    name: str

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult | Awaitable[AdmissionResult]: ...


@dataclass
class AdmissionChain:
    plugins: Sequence[AdmissionPlugin] = field(default_factory=list)

    async def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        """Each plugin in turn (awaiting those that answer with an awaitable), until the first denial."""
        warnings: list[str] = []
        mutated = False
        for plugin in self.plugins:
            answer = plugin.admit(request, store)
            result = await answer if inspect.isawaitable(answer) else answer
            assert isinstance(result, AdmissionResult)
            warnings.extend(result.warnings)
            mutated = mutated or result.mutated
            if result.denial is not None:
                return AdmissionResult(tuple(warnings), result.denial, mutated)
        return AdmissionResult(tuple(warnings), mutated=mutated)


LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
_LEVEL_ERROR = f"must be one of {', '.join(podsecurity.LEVELS)}"
_VERSION_ERROR = 'must be "latest" or "v1.x"'
_IGNORED_POD_SUBRESOURCES = {"exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"}
_STRICTNESS = {level: rank for rank, level in enumerate(podsecurity.LEVELS)}


@dataclass(frozen=True)
class Policy:
    """The level of each mode for a namespace (versions are always `latest` here)."""

    enforce: str = "privileged"
    audit: str = "privileged"
    warn: str = "privileged"


def policy_from_labels(labels: dict[str, str] | None) -> tuple[Policy, list[Cause]]:
    """Upstream's PolicyToEvaluate: the namespace's policy, and the label errors (the policy is still valid)."""
    labels = labels or {}
    levels = {mode: "privileged" for mode in MODES}
    errors: list[Cause] = []
    for mode in MODES:
        level_key, version_key = f"{LABEL_PREFIX}{mode}", f"{LABEL_PREFIX}{mode}-version"
        if level_key in labels:
            level = labels[level_key]
            if level in podsecurity.LEVELS:
                levels[mode] = level
            else:
                errors.append(invalid(f"metadata.labels[{level_key}]", level, _LEVEL_ERROR))
                levels[mode] = "restricted" if mode == "enforce" else "privileged"
        if version_key in labels and not _valid_version(labels[version_key]):
            errors.append(invalid(f"metadata.labels[{version_key}]", labels[version_key], _VERSION_ERROR))
    return Policy(**levels), errors


def _valid_version(value: str) -> bool:
    if value == "latest":
        return True
    minor = value.removeprefix("v1.")
    return value.startswith("v1.") and minor.isdigit() and (minor == "0" or not minor.startswith("0"))


class PodSecurityAdmission:
    """Pod Security Admission by namespace labels; see the module docstring."""

    name = "PodSecurity"

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        if request.operation not in ("CREATE", "UPDATE") or request.object is None:
            return ALLOWED
        if request.resource == NAMESPACES:
            return self._admit_namespace(request, store)
        if request.resource == PODS:
            return self._admit_pod(request, store)
        if request.resource.pod_template_path is not None and not request.subresource:
            return self._admit_workload(request, store)
        return ALLOWED

    def _namespace_policy(self, request: AdmissionRequest, store: Store) -> Policy:
        namespace = store.get(NAMESPACES, None, request.namespace or "") or {}
        return policy_from_labels(namespace.get("metadata", {}).get("labels"))[0]

    def _admit_namespace(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        if request.subresource:
            return ALLOWED
        new_policy, new_errors = policy_from_labels(_labels(request.object))
        if request.operation == "CREATE":
            return _invalid_namespace(request, new_errors) if new_errors else ALLOWED
        old_policy, old_errors = policy_from_labels(_labels(request.old_object))
        if new_errors and (not old_errors or new_errors != old_errors):
            return _invalid_namespace(request, new_errors)
        tightened = _STRICTNESS[new_policy.enforce] > _STRICTNESS[old_policy.enforce]
        if not tightened:
            return ALLOWED
        return AdmissionResult(warnings=tuple(_existing_pod_warnings(store, request.name, new_policy.enforce)))

    def _admit_pod(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        if request.subresource in _IGNORED_POD_SUBRESOURCES:
            return ALLOWED
        policy = self._namespace_policy(request, store)
        if policy == Policy():
            return ALLOWED
        pod = request.object or {}
        if request.operation == "UPDATE" and not _significant_pod_update(pod, request.old_object or {}):
            return ALLOWED
        metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        enforced = podsecurity.check_pod(metadata, spec, policy.enforce)
        if enforced:
            message = podsecurity.forbidden_message("pods", request.name, policy.enforce, enforced)
            return AdmissionResult(denial=Denial(403, "Forbidden", message))
        return _warn(metadata, spec, policy.warn)

    def _admit_workload(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        policy = self._namespace_policy(request, store)
        template = pod_template(request.resource, request.object or {})
        if policy.warn == "privileged" or template is None:
            return ALLOWED
        return _warn(template.get("metadata") or {}, template.get("spec") or {}, policy.warn)


def _labels(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _warn(metadata: dict[str, Any], spec: dict[str, Any], level: str) -> AdmissionResult:
    violations = podsecurity.check_pod(metadata, spec, level)
    return AdmissionResult(warnings=(podsecurity.warning_message(level, violations),)) if violations else ALLOWED


def _invalid_namespace(request: AdmissionRequest, errors: list[Cause]) -> AdmissionResult:
    details = errors[0] if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    message = f'{request.resource.kind} "{request.name}" is invalid: {details}'
    return AdmissionResult(denial=Denial(422, "Invalid", message, tuple(errors)))


def _existing_pod_warnings(store: Store, namespace: str, level: str) -> list[str]:
    """Upstream's EvaluatePodsInNamespace: which existing pods the new enforce level would deny."""
    pods_by_reason: dict[str, list[str]] = {}
    for pod in store.list(PODS, namespace):
        violations = podsecurity.check_pod(pod["metadata"], pod.get("spec") or {}, level)
        if violations:
            reasons = ", ".join(v.check for v in violations)
            pods_by_reason.setdefault(reasons, []).append(pod["metadata"]["name"])
    if not pods_by_reason:
        return []
    per_reason = []
    for reasons, names in pods_by_reason.items():
        others = len(names) - 1
        suffix = "" if not others else f" (and {others} other pod{'s' if others > 1 else ''})"
        per_reason.append(f"{min(names)}{suffix}: {reasons}")
    header = f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level "{level}:latest"'
    return [header, *sorted(per_reason)]


def _significant_pod_update(pod: dict[str, Any], old_pod: dict[str, Any]) -> bool:
    """Upstream's isSignificantPodUpdate: did anything change that the checks could judge differently?"""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    old_annotations = (old_pod.get("metadata") or {}).get("annotations") or {}
    seccomp_pod_key = "seccomp.security.alpha.kubernetes.io/pod"
    if annotations.get(seccomp_pod_key) != old_annotations.get(seccomp_pod_key):
        return True
    spec, old_spec = pod.get("spec") or {}, old_pod.get("spec") or {}
    for list_name in ("containers", "initContainers"):
        containers, old_containers = spec.get(list_name) or [], old_spec.get(list_name) or []
        if len(containers) != len(old_containers):
            return True
        if any(_significant_container_update(c, o, annotations, old_annotations)
               for c, o in zip(containers, old_containers, strict=True)):
            return True
    old_ephemeral = {c.get("name"): c for c in old_spec.get("ephemeralContainers") or []}
    for container in spec.get("ephemeralContainers") or []:
        old = old_ephemeral.get(container.get("name"))
        if old is None or _significant_container_update(container, old, annotations, old_annotations):
            return True
    return False


def _significant_container_update(container: dict[str, Any], old: dict[str, Any],
                                  annotations: dict[str, str], old_annotations: dict[str, str]) -> bool:
    if container.get("image") != old.get("image"):
        return True
    seccomp_key = f"container.seccomp.security.alpha.kubernetes.io/{container.get('name', '')}"
    return annotations.get(seccomp_key) != old_annotations.get(seccomp_key)
