"""The resource types the sandbox serves, the discovery documents built from them, and naming rules.

Add a resource by adding a `ResourceType` to `RESOURCES`; discovery (/api, /apis, /openapi/v3), routing,
validation and Pod Security Admission of pod templates all read this table.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

NameRule = Literal["dns-subdomain", "dns-label", "dns-1035-label", "path-segment"]

READ_VERBS = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-kirvis-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}


# One instance per resource (RESOURCES), so compared and hashed by identity: thirty times cheaper than by
# fields, and the store's indexes hash resources on every write.
@dataclass(frozen=True, eq=False)
class ResourceType:
    """One served resource: what discovery says about it and the rules the API server applies to it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    name_rule: NameRule = "dns-subdomain"
    # Path from the object to its PodTemplateSpec, for workload validation and Pod Security Admission.
    pod_template_path: tuple[str, ...] | None = None
    # Restart policies a pod template may use (None: any).
    template_restart_policies: tuple[str, ...] | None = None
    # Workloads whose spec.selector must select the pod template's labels.
    requires_selector: bool = False
    tracks_generation: bool = False
    # Whether DELETE answers with the deleted object (as the real registry does for these) or a Status.
    returns_deleted_object: bool = False
    # Fields besides metadata.name and metadata.namespace that fieldSelector accepts.
    selectable_fields: tuple[str, ...] = ()
    # What discovery offers; a create-only resource (a review) is answered, never stored.
    verbs: tuple[str, ...] = ALL_VERBS
    # Whether status is written only through /status (every built-in here, a CRD that declares the
    # subresource): a create drops the body's status and an update keeps the stored one. Without it (a CRD
    # without subresources.status) status is an ordinary field, stored as sent.
    status_subresource: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_resource(self) -> str:
        """The resource as RBAC and error messages name it: `pods`, `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_WORKLOAD = dict(categories=("all",), tracks_generation=True, pod_template_path=("spec", "template"))
_EVENT_FIELDS = (
    "involvedObject.apiVersion", "involvedObject.fieldPath", "involvedObject.kind", "involvedObject.name",
    "involvedObject.namespace", "involvedObject.resourceVersion", "involvedObject.uid", "reason",
    "reportingComponent", "source", "type",
)
_POD_FIELDS = (
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
    "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
)

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, ("ns",), name_rule="dns-label",
                 returns_deleted_object=True, selectable_fields=("status.phase",)),
    ResourceType("", "v1", "pods", "Pod", True, ("po",), ("all",), returns_deleted_object=True,
                 selectable_fields=_POD_FIELDS),
    ResourceType("", "v1", "services", "Service", True, ("svc",), ("all",), name_rule="dns-1035-label",
                 returns_deleted_object=True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "secrets", "Secret", True, selectable_fields=("type",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",), returns_deleted_object=True),
    ResourceType("", "v1", "events", "Event", True, ("ev",), selectable_fields=_EVENT_FIELDS),
    ResourceType("", "v1", "nodes", "Node", False, ("no",), selectable_fields=("spec.unschedulable",)),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",),
                 returns_deleted_object=True),
    ResourceType("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), returns_deleted_object=True),
    ResourceType("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    ResourceType("", "v1", "limitranges", "LimitRange", True, ("limits",)),
    ResourceType("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",)),
    ResourceType("", "v1", "replicationcontrollers", "ReplicationController", True, ("rc",), ("all",),
                 tracks_generation=True, pod_template_path=("spec", "template"), template_restart_policies=("Always",)),
    ResourceType("", "v1", "podtemplates", "PodTemplate", True, pod_template_path=("template",),
                 template_restart_policies=("Always", "OnFailure", "Never")),
    ResourceType("apps", "v1", "deployments", "Deployment", True, ("deploy",), requires_selector=True,
                 template_restart_policies=("Always",), **_WORKLOAD),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), requires_selector=True,
                 template_restart_policies=("Always",), **_WORKLOAD),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), requires_selector=True,
                 template_restart_policies=("Always",), **_WORKLOAD),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), requires_selector=True,
                 template_restart_policies=("Always",), **_WORKLOAD),
    ResourceType("batch", "v1", "jobs", "Job", True, template_restart_policies=("OnFailure", "Never"),
                 **_WORKLOAD),
    ResourceType("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("all",), tracks_generation=True,
                 pod_template_path=("spec", "jobTemplate", "spec", "template"),
                 template_restart_policies=("OnFailure", "Never")),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True, name_rule="path-segment"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True,
                 name_rule="path-segment"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False,
                 name_rule="path-segment"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False,
                 name_rule="path-segment"),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",),
                 tracks_generation=True),
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), tracks_generation=True),
    ResourceType("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",),
                 tracks_generation=True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",),
                 returns_deleted_object=True),
    ResourceType("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)),
    ResourceType("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False),
    ResourceType("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies",
                 "ValidatingAdmissionPolicy", False, tracks_generation=True),
    ResourceType("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
                 "ValidatingAdmissionPolicyBinding", False, tracks_generation=True),
    ResourceType("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
                 "ValidatingWebhookConfiguration", False, categories=("api-extensions",)),
    ResourceType("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
                 "MutatingWebhookConfiguration", False, categories=("api-extensions",)),
    ResourceType("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
                 verbs=("create",)),
    ResourceType("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False,
                 verbs=("create",)),
    ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False,
                 verbs=("create",)),
    ResourceType("authorization.k8s.io", "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", True,
                 verbs=("create",)),
    ResourceType("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False,
                 verbs=("create",)),
    ResourceType("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", False,
                 ("csr",), name_rule="path-segment", selectable_fields=("spec.signerName",)),
    # What the CRDs stored here add to the API is served by `custom_resources`.
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
                 ("crd", "crds"), ("api-extensions",)),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}

NAMESPACES = _BY_PATH["", "v1", "namespaces"]
PODS = _BY_PATH["", "v1", "pods"]
SERVICES = _BY_PATH["", "v1", "services"]
ENDPOINTS = _BY_PATH["", "v1", "endpoints"]
CONFIG_MAPS = _BY_PATH["", "v1", "configmaps"]
SERVICE_ACCOUNTS = _BY_PATH["", "v1", "serviceaccounts"]
SECRETS = _BY_PATH["", "v1", "secrets"]
EVENTS = _BY_PATH["", "v1", "events"]
NODES = _BY_PATH["", "v1", "nodes"]
LEASES = _BY_PATH["coordination.k8s.io", "v1", "leases"]
SELF_SUBJECT_REVIEWS = _BY_PATH["authentication.k8s.io", "v1", "selfsubjectreviews"]
CERTIFICATE_SIGNING_REQUESTS = _BY_PATH["certificates.k8s.io", "v1", "certificatesigningrequests"]


def find_resource(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource served at /api[s]/GROUP/VERSION/PLURAL, if any."""
    return _BY_PATH.get((group, version, plural))


def find_by_kind(api_version: str, kind: str) -> ResourceType | None:
    """The resource whose objects have this apiVersion and kind (as in a manifest)."""
    for resource in RESOURCES:
        if resource.api_version == api_version and resource.kind == kind:
            return resource
    return None


def group_versions() -> dict[str, list[str]]:
    """Served API groups (without the core group) and their versions, in table order."""
    groups: dict[str, list[str]] = {}
    for resource in RESOURCES:
        if resource.group and resource.version not in groups.setdefault(resource.group, []):
            groups[resource.group].append(resource.version)
    return groups


def core_versions() -> dict[str, Any]:
    """GET /api."""
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}


def _group_document(name: str, versions: Iterable[str]) -> dict[str, Any]:
    version_entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": version_entries, "preferredVersion": version_entries[0]}


def group_list() -> dict[str, Any]:
    """GET /apis."""
    groups = [_group_document(name, versions) for name, versions in group_versions().items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group_document(group: str) -> dict[str, Any] | None:
    """GET /apis/GROUP, or None for an unknown group."""
    versions = group_versions().get(group)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_document(group, versions)}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """GET /api/v1 or /apis/GROUP/VERSION, or None when nothing is served there."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": served[0].api_version,
        "resources": [_resource_entry(r) for r in served],
    }


def _resource_entry(resource: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


# Naming rules, with the API server's own error wording (k8s.io/apimachinery/pkg/util/validation).

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"
_DNS_1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = rf"({_QUALIFIED_NAME})?"

_DNS_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    f"'{_DNS_LABEL}')"
)
_DNS_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{_DNS_SUBDOMAIN}')"
)
_DNS_1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    f"validation is '{_DNS_1035_LABEL}')"
)
_QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    f"'{_QUALIFIED_NAME}')"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    f"for validation is '{_LABEL_VALUE}')"
)


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def dns_label_errors(value: str) -> list[str]:
    errors = [] if len(value) <= 63 else ["must be no more than 63 characters"]
    return errors + ([] if _matches(_DNS_LABEL, value) else [_DNS_LABEL_MESSAGE])


def dns_subdomain_errors(value: str) -> list[str]:
    errors = [] if len(value) <= 253 else ["must be no more than 253 characters"]
    return errors + ([] if _matches(_DNS_SUBDOMAIN, value) else [_DNS_SUBDOMAIN_MESSAGE])


def name_errors(rule: NameRule, name: str) -> list[str]:
    """Why `name` is not a valid object name under `rule` (empty when it is)."""
    if rule == "dns-label":
        return dns_label_errors(name)
    if rule == "dns-subdomain":
        return dns_subdomain_errors(name)
    if rule == "dns-1035-label":
        errors = [] if len(name) <= 63 else ["must be no more than 63 characters"]
        return errors + ([] if _matches(_DNS_1035_LABEL, name) else [_DNS_1035_MESSAGE])
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in name]


def qualified_name_errors(value: str) -> list[str]:
    """Why `value` is not a valid label or annotation key: an optional DNS subdomain prefix, '/', a name."""
    prefix, slash, name = value.rpartition("/")
    if slash and not prefix:
        return ["prefix part must be non-empty"]
    errors = [f"prefix part {message}" for message in dns_subdomain_errors(prefix)] if slash else []
    if not name:
        return [*errors, "name part must be non-empty"]
    if len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not _matches(_QUALIFIED_NAME, name):
        errors.append(_QUALIFIED_NAME_MESSAGE)
    return errors


def label_value_errors(value: str) -> list[str]:
    errors = [] if len(value) <= 63 else ["must be no more than 63 characters"]
    return errors + ([] if _matches(_LABEL_VALUE, value) else [_LABEL_VALUE_MESSAGE])


# OpenAPI v3: just enough for kubectl to see that every resource takes the `fieldValidation` query
# parameter, so that it leaves validation to the server (as with any API server since 1.27) instead of
# downloading the OpenAPI v2 schemas for client-side validation. No schemas are published.

_WRITE_PARAMETERS = [
    {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in ("dryRun", "fieldManager", "fieldValidation")
]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_document(group: str, version: str) -> dict[str, Any] | None:
    """GET /openapi/v3/api/v1 or /openapi/v3/apis/GROUP/VERSION, or None when nothing is served there."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    return openapi_v3_paths(group, version, served) if served else None


def openapi_v3_paths(group: str, version: str, served: list[ResourceType]) -> dict[str, Any]:
    """The OpenAPI v3 document of the resources `served` at GROUP/VERSION: their write paths, no schemas."""
    paths: dict[str, Any] = {}
    for resource in served:
        gvk = {"group": group, "version": version, "kind": resource.kind}
        collection = f"/{_gv_path(group, version)}"
        collection += f"/namespaces/{{namespace}}/{resource.plural}" if resource.namespaced else f"/{resource.plural}"

        def operation(verb: str) -> dict[str, Any]:
            return {"x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk,  # noqa: B023
                    "parameters": _WRITE_PARAMETERS, "responses": {"200": {"description": "OK"}}}

        paths[collection] = {"post": operation("post")}
        paths[f"{collection}/{{name}}"] = {"put": operation("put"), "patch": operation("patch")}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}


def _served_group_versions() -> list[tuple[str, str]]:
    return list(dict.fromkeys((r.group, r.version) for r in RESOURCES))


def openapi_v3_index() -> dict[str, Any]:
    """GET /openapi/v3: where each group version's document is."""
    return {"paths": {_gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}?hash={_hash(g, v)}"}
                      for g, v in _served_group_versions()}}


def openapi_v3_document_at(gv_path: str) -> dict[str, Any] | None:
    """The document at /openapi/v3/GV_PATH (GV_PATH as in the index: `api/v1`, `apis/apps/v1`)."""
    for group, version in _served_group_versions():
        if _gv_path(group, version) == gv_path:
            return openapi_v3_document(group, version)
    return None


def _hash(group: str, version: str) -> str:
    document = json.dumps(openapi_v3_document(group, version), sort_keys=True)
    return hashlib.sha512(document.encode()).hexdigest()[:32].upper()
