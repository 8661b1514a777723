"""The mutating admission plugins kube-apiserver 1.32 enables by default that change pods.

They come first in the sandbox's AdmissionChain, in the API server's order (ServiceAccount, Priority,
DefaultTolerationSeconds), so Pod Security and ValidatingAdmissionPolicies see the pod they made. They
mutate `request.object` in place: the handler stores the very object it passed to the chain, as the API
server stores the object its mutating admission changed.

- `ServiceAccountAdmission` (plugin/pkg/admission/serviceaccount/admission.go): on create, a pod with no
  `serviceAccountName` gets `default`; the service account is looked up, and a missing one is refused
  with 403 `error looking up service account NS/NAME: serviceaccount "NAME" not found`, as upstream does
  once its retries (ten, for `default`) have failed. A missing `default` account is taken to exist: the
  service account controller (`controllers`) creates it with the namespace, and recreates a deleted one
  before upstream's retries end, which the sandbox does not. Unless the pod's (or else the account's)
  `automountServiceAccountToken` is false, every container and init container that mounts nothing at
  /var/run/secrets/kubernetes.io/serviceaccount gets the `kube-api-access-XXXXX` volume, a projected
  token, `kube-root-ca.crt` and namespace, mounted read-only there. Pods without `imagePullSecrets` get
  the account's.
- `PriorityAdmission` (plugin/pkg/admission/priority/admission.go): on create, `priority` and
  `preemptionPolicy` from the pod's PriorityClass: a stored one, or `system-node-critical` and
  `system-cluster-critical`, which every API server creates at start; with no class named, the
  globalDefault class of lowest value (its name is set on the pod), else 0 and PreemptLowerPriority. A
  class that does not exist is refused (403 `no PriorityClass with name NAME was found`), as is a
  `priority` or `preemptionPolicy` that differs. On update the old values are kept.
- `DefaultTolerationSecondsAdmission` (plugin/pkg/admission/defaulttolerationseconds/admission.go): on
  create and update, the `node.kubernetes.io/not-ready` and `node.kubernetes.io/unreachable` NoExecute
  tolerations for 300 seconds, unless the pod tolerates those taints already.
"""

from __future__ import annotations

import secrets
from typing import Any

from chaoskirvis.sandbox.admission import ALLOWED, AdmissionRequest, AdmissionResult, Denial
from chaoskirvis.sandbox.resources import PODS, SERVICE_ACCOUNTS, find_resource
from chaoskirvis.sandbox.store import Store

PRIORITY_CLASSES = find_resource("scheduling.k8s.io", "v1", "priorityclasses")
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
# serviceaccount.WarnOnlyBoundTokenExpirationSeconds: 1 hour and 7 seconds, so the kubelet's
# refreshing of the token can be told from a client that never refreshes it.
TOKEN_EXPIRATION_SECONDS = 3607
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # names.SimpleNameGenerator's
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
DEFAULT_PREEMPTION_POLICY = "PreemptLowerPriority"
TOLERATION_SECONDS = 300
_NODE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _pod_spec(request: AdmissionRequest) -> dict[str, Any] | None:
    """The spec of a pod being written (not a subresource), which these plugins may change."""
    if request.resource != PODS or request.subresource or request.object is None:
        return None
    spec = request.object.get("spec")
    return spec if isinstance(spec, dict) else None


def _forbidden(request: AdmissionRequest, reason: str) -> AdmissionResult:
    """admission.NewForbidden: `pods "NAME" is forbidden: REASON`."""
    return AdmissionResult(denial=Denial(403, "Forbidden", f'pods "{request.name}" is forbidden: {reason}'))


class ServiceAccountAdmission:
    """The ServiceAccount admission plugin's Admit; see the module docstring."""

    name = "ServiceAccount"

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        spec = _pod_spec(request)
        if spec is None or request.operation != "CREATE":
            return ALLOWED
        annotations = (request.object or {}).get("metadata", {}).get("annotations") or {}
        if "kubernetes.io/config.mirror" in annotations:
            return ALLOWED  # mirror pods are not changed (upstream validates them instead)
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = spec["serviceAccount"] = "default"
        account_name = spec["serviceAccountName"]
        account = store.get(SERVICE_ACCOUNTS, request.namespace, account_name)
        if account is None and account_name != "default":
            return _forbidden(request, f"error looking up service account {request.namespace}/{account_name}: "
                                       f'serviceaccount "{account_name}" not found')
        account = account or {}
        if _should_automount(account, spec):
            _mount_token(spec)
        if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in account["imagePullSecrets"]]
        return ALLOWED


def _should_automount(account: dict[str, Any], spec: dict[str, Any]) -> bool:
    """shouldAutomount: the pod's preference, then the account's, then true."""
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"])
    return True


def _mount_token(spec: dict[str, Any]) -> None:
    """mountServiceAccountToken: an existing kube-api-access-* volume is reused, else one is added if a
    container mounts it."""
    volumes = spec.get("volumes") or []
    existing = next((v["name"] for v in volumes if isinstance(v, dict)
                     and str(v.get("name", "")).startswith(TOKEN_VOLUME_PREFIX)), None)
    volume_name = existing or TOKEN_VOLUME_PREFIX + "".join(secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))
    mount = {"name": volume_name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
    needs_volume = False
    for list_name in ("initContainers", "containers"):
        for container in spec.get(list_name) or []:
            if not isinstance(container, dict):
                continue
            mounts = container.get("volumeMounts") or []
            if not any(isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                container["volumeMounts"] = [*mounts, dict(mount)]
                needs_volume = True
    if existing is None and needs_volume:
        spec["volumes"] = [*volumes, token_volume(volume_name)]


def token_volume(name: str) -> dict[str, Any]:
    """TokenVolumeSource, with the defaultMode upstream sets explicitly (420, 0644)."""
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


class PriorityAdmission:
    """The Priority admission plugin's admitPod; see the module docstring."""

    name = "Priority"

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        spec = _pod_spec(request)
        if spec is None or request.operation not in ("CREATE", "UPDATE"):
            return ALLOWED
        if request.operation == "UPDATE":
            old_spec = (request.old_object or {}).get("spec") or {}
            for key in ("priority", "preemptionPolicy"):
                if spec.get(key) is None and old_spec.get(key) is not None:
                    spec[key] = old_spec[key]
            return ALLOWED
        class_name = spec.get("priorityClassName") or ""
        if class_name:
            priority_class = _priority_class(store, class_name)
            if priority_class is None:
                return _forbidden(request, f"no PriorityClass with name {class_name} was found")
        else:
            priority_class = _global_default_class(store)
            if priority_class is not None:
                spec["priorityClassName"] = priority_class["metadata"]["name"]
        priority = int((priority_class or {}).get("value", 0))
        policy = (priority_class or {}).get("preemptionPolicy") or DEFAULT_PREEMPTION_POLICY
        if spec.get("priority") is not None and spec["priority"] != priority:
            return _forbidden(request, f"the integer value of priority ({spec['priority']}) must not be provided "
                                       f"in pod spec; priority admission controller computed {priority} from the "
                                       "given PriorityClass name")
        if spec.get("preemptionPolicy") is not None and spec["preemptionPolicy"] != policy:
            return _forbidden(request, f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) must not "
                                       f"be provided in pod spec; priority admission controller computed {policy} "
                                       "from the given PriorityClass name")
        spec["priority"], spec["preemptionPolicy"] = priority, policy
        return ALLOWED


def _priority_class(store: Store, name: str) -> dict[str, Any] | None:
    """A stored PriorityClass, or one of the two the API server creates at start (its bootstrap hook)."""
    stored = store.get(PRIORITY_CLASSES, None, name)
    if stored is None and name in SYSTEM_PRIORITY_CLASSES:
        return {"metadata": {"name": name}, "value": SYSTEM_PRIORITY_CLASSES[name]}
    return stored


def _global_default_class(store: Store) -> dict[str, Any] | None:
    """getDefaultPriorityClass: of the classes with globalDefault, the one of lowest value."""
    defaults = [c for c in store.list(PRIORITY_CLASSES) if c.get("globalDefault")]
    return min(defaults, key=lambda c: int(c.get("value", 0))) if defaults else None


class DefaultTolerationSecondsAdmission:
    """The DefaultTolerationSeconds admission plugin's Admit; see the module docstring."""

    name = "DefaultTolerationSeconds"

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        spec = _pod_spec(request)
        if spec is None or request.operation not in ("CREATE", "UPDATE"):
            return ALLOWED
        tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
        added = [{"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": TOLERATION_SECONDS}
                 for taint in _NODE_TAINTS if not any(_tolerates(t, taint) for t in tolerations)]
        if added:
            spec["tolerations"] = [*(spec.get("tolerations") or []), *added]
        return ALLOWED


def _tolerates(toleration: dict[str, Any], taint: str) -> bool:
    return toleration.get("key", "") in (taint, "") and toleration.get("effect", "") in ("NoExecute", "")


MUTATING_POD_PLUGINS = (ServiceAccountAdmission, PriorityAdmission, DefaultTolerationSecondsAdmission)
