"""References to API objects, and the kinds of objects a run can create."""
from __future__ import annotations

from dataclasses import dataclass

from chaoskirvis.client import path_for

__all__ = [
    "ObjectRef", "Kind", "POD", "CONFIG_MAP", "SERVICE", "NETWORK_POLICY", "DEPLOYMENT", "DAEMON_SET", "CRON_JOB",
    "CLUSTER_ROLE_BINDING",
    "SWEPT_KINDS",
]


@dataclass(frozen=True)
class Kind:
    api_version: str
    plural: str
    kind: str
    namespaced: bool = True

    def collection_path(self, namespace: str | None = None) -> str:
        return path_for(self.api_version, self.plural, namespace if self.namespaced else None)


@dataclass(frozen=True)
class ObjectRef:
    """An object; `home` is the namespace whose run record names it (its own, unless cluster-scoped)."""

    kind: Kind
    namespace: str | None
    name: str
    home: str | None = None

    @property
    def record_namespace(self) -> str | None:
        return self.namespace or self.home

    @property
    def path(self) -> str:
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
CLUSTER_ROLE_BINDING = Kind("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding",
                            namespaced=False)

# Kinds that techniques create; restore and cleanup sweep them by ownership labels.
# Controllers come first so that the pods they own are not recreated while we delete them.
SWEPT_KINDS: tuple[Kind, ...] = (
    DEPLOYMENT, DAEMON_SET, CRON_JOB, POD, SERVICE, NETWORK_POLICY, CLUSTER_ROLE_BINDING,
)
