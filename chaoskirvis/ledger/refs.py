"""References to API objects, and the kinds of objects a run can create.

A path is built only from validated parts: a namespace must be a DNS label (RFC 1123, at most 63
characters) and a name valid for its kind (a DNS subdomain, or for a Service a DNS-1035 label), so
``..``, ``.``, ``a/b`` or an empty name never reach a URL. Names and namespaces come from record entries,
which are data from the cluster; `InvalidRef` says which part was refused.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import path_for

__all__ = [
    "ObjectRef", "Kind", "POD", "CONFIG_MAP", "SERVICE", "NETWORK_POLICY", "DEPLOYMENT", "DAEMON_SET", "CRON_JOB",
    "JOB", "CLUSTER_ROLE_BINDING", "CLUSTER_ROLE", "ROLE", "ROLE_BINDING", "SECRET", "CERTIFICATE_SIGNING_REQUEST",
    "NAMESPACE", "VALIDATING_ADMISSION_POLICY_BINDING", "VALIDATING_WEBHOOK_CONFIGURATION", "SWEPT_KINDS", "GUARDRAIL_KINDS", "InvalidRef", "namespace_problem", "name_problem",
]

# Compiled on first use (by `re`, which keeps them, one for the modules that share a pattern).
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_DNS_1035_LABEL = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"


class InvalidRef(ActivityFailed):
    """A namespace or name that no path may be built from."""


def namespace_problem(namespace: object) -> str | None:
    """Why `namespace` is not a valid namespace name (a DNS label), or None when it is."""
    if not isinstance(namespace, str) or not re.fullmatch(_DNS_LABEL, namespace):
        return f"namespace {namespace!r} is not a DNS label"
    return None


def name_problem(kind: "Kind", name: object) -> str | None:
    """Why `name` is not a valid name for `kind` (Kubernetes' name rules), or None when it is."""
    if not isinstance(name, str) or not name:
        return f"name {name!r} is empty or not a string"
    if kind.plural == "services":
        ok = bool(re.fullmatch(_DNS_1035_LABEL, name))
        rule = "a DNS-1035 label"
    else:
        ok = len(name) <= 253 and bool(re.fullmatch(_DNS_SUBDOMAIN, name))
        rule = "a DNS subdomain"
    return None if ok else f"name {name!r} is not {rule}, as a {kind.kind} name must be"


class Kind(NamedTuple):
    api_version: str
    plural: str
    kind: str
    namespaced: bool = True

    def collection_path(self, namespace: str | None = None) -> str:
        namespace = namespace if self.namespaced else None
        if namespace is not None and namespace_problem(namespace):
            raise InvalidRef(f"refusing to build a path for {self.plural}: {namespace_problem(namespace)}")
        return path_for(self.api_version, self.plural, namespace)


class ObjectRef(NamedTuple):
    """An object; `home` is the namespace whose run record names it (its own, unless cluster-scoped)."""

    kind: Kind
    namespace: str | None
    name: str
    home: str | None = None

    @property
    def record_namespace(self) -> str | None:
        return self.namespace or self.home

    def problem(self) -> str | None:
        """Why no path may be built for this reference, or None when every part is valid."""
        if self.kind.namespaced and self.namespace is None:
            return f"a {self.kind.kind} needs a namespace"
        if not self.kind.namespaced and self.namespace is not None:
            return f"a {self.kind.kind} is cluster-scoped, yet a namespace {self.namespace!r} was given"
        if self.namespace is not None and namespace_problem(self.namespace):
            return namespace_problem(self.namespace)
        if self.home is not None and namespace_problem(self.home):
            return f"home {namespace_problem(self.home)}"
        return name_problem(self.kind, self.name)

    @property
    def path(self) -> str:
        """The object's REST path, built only from validated parts (else `InvalidRef`)."""
        problem = self.problem()
        if problem:
            raise InvalidRef(f"refusing to build a path for {self.kind.kind} {self.name!r}: {problem}")
        return path_for(self.kind.api_version, self.kind.plural, self.namespace, self.name)

    @property
    def key(self) -> str:
        """A ConfigMap-data-safe key naming the object."""
        return ".".join([self.kind.plural, self.namespace or "_cluster", self.name])

    def __str__(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.kind.kind} {self.name}{where}"


POD = Kind("v1", "pods", "Pod")
CONFIG_MAP = Kind("v1", "configmaps", "ConfigMap")
SERVICE = Kind("v1", "services", "Service")
NETWORK_POLICY = Kind("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy")
DEPLOYMENT = Kind("apps/v1", "deployments", "Deployment")
DAEMON_SET = Kind("apps/v1", "daemonsets", "DaemonSet")
CRON_JOB = Kind("batch/v1", "cronjobs", "CronJob")
JOB = Kind("batch/v1", "jobs", "Job")  # the kube-bench Job of a node fault's benchmark probe
CLUSTER_ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding",
                            namespaced=False)
CLUSTER_ROLE = Kind("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", namespaced=False)
ROLE = Kind("rbac.authorization.k8s.io/v1", "roles", "Role")
ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding")
SECRET = Kind("v1", "secrets", "Secret")
CERTIFICATE_SIGNING_REQUEST = Kind("certificates.k8s.io/v1", "certificatesigningrequests", "CertificateSigningRequest",
                                   namespaced=False)
NAMESPACE = Kind("v1", "namespaces", "Namespace", namespaced=False)
VALIDATING_ADMISSION_POLICY_BINDING = Kind("admissionregistration.k8s.io/v1", "validatingadmissionpolicybindings",
                                           "ValidatingAdmissionPolicyBinding", namespaced=False)
VALIDATING_WEBHOOK_CONFIGURATION = Kind("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations",
                                        "ValidatingWebhookConfiguration", namespaced=False)

# Kinds of existing objects a guardrail technique changes or deletes (chaoskirvis.ledger.changes): never swept,
# only restored from the run's record.
GUARDRAIL_KINDS: tuple[Kind, ...] = (NAMESPACE, NETWORK_POLICY, VALIDATING_ADMISSION_POLICY_BINDING,
                                     VALIDATING_WEBHOOK_CONFIGURATION)

# Kinds that techniques create; restore and cleanup sweep them by ownership labels.
# Controllers come first so that the pods they own are not recreated while we delete them; bindings
# before the roles they name; a CertificateSigningRequest owns nothing and goes last. (A ConfigMap a
# technique creates is not swept: the run records are ConfigMaps too, and a label sweep would take them
# for objects.)
SWEPT_KINDS: tuple[Kind, ...] = (
    DEPLOYMENT, DAEMON_SET, CRON_JOB, JOB, POD, SERVICE, NETWORK_POLICY, CLUSTER_ROLE_BINDING, ROLE_BINDING,
    CLUSTER_ROLE, ROLE, SECRET, CERTIFICATE_SIGNING_REQUEST,
)
