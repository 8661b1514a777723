"""What the identity a run uses must be allowed to do: the one table README's permissions section shows.

For each family of activities, the RBAC rules its requests need (API group, resource as a Role rule
names it, verbs) and where: ``namespace`` is the namespace the request names (an experiment's target
namespace, which also holds the run record; for Falco's logs, Falco's namespace; for a node fault's mirror
pod, kube-system), grantable with a Role and RoleBinding there; ``cluster`` is a cluster-scoped request, or
one across all namespaces (a ClusterRole and ClusterRoleBinding). A rule with `checked_only` is not a request
of its own: the API server checks it while authorizing another one (binding a role needs ``bind`` on it,
Kubernetes' RBAC escalation prevention). tests/test_permissions.py runs every experiment against the
sandbox and checks that each request it sent is covered here, and that README shows this table.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rule", "PERMISSIONS", "markdown_table"]

NAMESPACE, CLUSTER = "namespace", "cluster"


@dataclass(frozen=True)
class Rule:
    group: str                # "" for the core group; NONRESOURCE for a non-resource URL such as /version
    resource: str             # plural, or plural/subresource; the URL for a non-resource rule
    verbs: tuple[str, ...]
    scope: str                # NAMESPACE or CLUSTER
    note: str = ""
    checked_only: bool = False

    @property
    def qualified(self) -> str:
        """`pods`, `deployments.apps`, `/version`: the resource as `kubectl create role --resource` takes it."""
        return self.resource if self.group in ("", NONRESOURCE) else f"{self.resource}.{self.group}"


NONRESOURCE = "(non-resource URL)"

# The namespaced kinds `kirvis cleanup` sweeps by label (chaoskirvis.ledger.refs.SWEPT_KINDS); a run's own
# restore reads by name what its record names instead, so it needs no list.
_SWEPT_NAMESPACED = (("apps", "deployments"), ("apps", "daemonsets"), ("batch", "cronjobs"), ("batch", "jobs"), ("", "pods"),
                     ("", "services"), ("networking.k8s.io", "networkpolicies"),
                     ("rbac.authorization.k8s.io", "rolebindings"), ("rbac.authorization.k8s.io", "roles"),
                     ("", "secrets"))
_CHANGE = ("create", "get", "delete")  # create (dry runs too), get before each delete, delete in restore

PERMISSIONS: dict[str, tuple[Rule, ...]] = {
    "every experiment: run record, `restore_run`, evidence control": (
        Rule("", "configmaps", ("create", "patch", "get", "list", "delete"), NAMESPACE,
             "the run record `kirvis-ledger-<run id>` (list: the records of earlier runs, for their expired "
             "leftovers; get: a record changed since the run wrote it, or left by a failed restore)"),
        Rule("authentication.k8s.io", "selfsubjectreviews", ("create",), CLUSTER,
             "evidence: who we are (every authenticated user may, by default)"),
        Rule(NONRESOURCE, "/version", ("get",), CLUSTER, "evidence: cluster version (public by default)"),
    ),
    "workload (`inject_risky_pod`, `inject_risky_workload`, `risky_pod_*`, `techniques_admission`)": (
        Rule("", "pods", _CHANGE, NAMESPACE, "a controller's pods are judged by a dry-run pod"),
        Rule("apps", "deployments", _CHANGE, NAMESPACE),
        Rule("apps", "daemonsets", _CHANGE, NAMESPACE),
        Rule("batch", "cronjobs", _CHANGE, NAMESPACE),
    ),
    "exposure (`inject_exposure`, `exposure_admission`)": (
        Rule("", "services", _CHANGE, NAMESPACE),
        Rule("networking.k8s.io", "networkpolicies", _CHANGE, NAMESPACE),
        Rule("", "pods", _CHANGE, NAMESPACE, "hostPort"),
        Rule("", "namespaces", ("list",), CLUSTER, "only to draw the namespace by `opt_in_label`"),
    ),
    "rbac (`inject_rbac_grant`, `rbac_grant_admission`)": (
        Rule("rbac.authorization.k8s.io", "clusterrolebindings", _CHANGE, CLUSTER),
        Rule("rbac.authorization.k8s.io", "clusterroles", ("bind",), CLUSTER,
             "on the bound role (`resourceNames: [cluster-admin]`), unless the identity holds all it grants",
             checked_only=True),
    ),
    "identity (`inject_identity_technique`, `identity_technique_admission`; any inject action with `as_*`)": (
        Rule("", "users", ("impersonate",), CLUSTER, "`as_user` (resourceNames: the user)"),
        Rule("", "groups", ("impersonate",), CLUSTER, "`as_groups` (resourceNames: the groups)"),
        Rule("", "serviceaccounts", ("impersonate",), NAMESPACE,
             "`as_service_account` by impersonation, in the service account's namespace"),
        Rule("", "serviceaccounts/token", ("create",), NAMESPACE,
             "`identity_via: token`, in the service account's namespace"),
        Rule("", "secrets", _CHANGE, NAMESPACE,
             "`identity_via: token` and token-request: the Secret a token is bound to; "
             "service-account-token-secret"),
        Rule("rbac.authorization.k8s.io", "roles", _CHANGE, NAMESPACE),
        Rule("rbac.authorization.k8s.io", "rolebindings", _CHANGE, NAMESPACE),
        Rule("rbac.authorization.k8s.io", "clusterroles", _CHANGE, CLUSTER),
        Rule("", "configmaps", _CHANGE, NAMESPACE, "credentials-in-configmap"),
        Rule("", "pods", _CHANGE, NAMESPACE, "privileged-service-account-pod"),
        Rule("rbac.authorization.k8s.io", "clusterroles", ("escalate",), CLUSTER,
             "a runner that creates wildcard-clusterrole itself, unless it holds all it grants",
             checked_only=True),
        Rule("rbac.authorization.k8s.io", "roles", ("escalate",), NAMESPACE,
             "a runner that creates privilege-verbs-role itself, unless it holds all it grants", checked_only=True),
        Rule("rbac.authorization.k8s.io", "clusterroles", ("bind",), NAMESPACE,
             "on the role anonymous-binding binds (`resourceNames: [view]`), unless the runner holds all it grants",
             checked_only=True),
        Rule("certificates.k8s.io", "certificatesigningrequests", _CHANGE, CLUSTER,
             "csr-client-certificate (get: its certificate, when the approval's answer has none yet)"),
        Rule("certificates.k8s.io", "certificatesigningrequests/approval", ("update",), CLUSTER,
             "a runner that approves csr-client-certificate's request itself"),
        Rule("certificates.k8s.io", "signers", ("approve",), CLUSTER,
             "on the signer (`resourceNames: [kubernetes.io/kube-apiserver-client]`), for a runner that approves "
             "itself", checked_only=True),
    ),
    "guardrail (`tamper_guardrail`)": (
        Rule("", "namespaces", ("get", "patch", "update"), CLUSTER,
             "the namespace a Pod Security or exemption technique changes (get: its original; patch: the change; "
             "update: restore's put back)"),
        Rule("networking.k8s.io", "networkpolicies", ("get", "patch", "delete", "update", "create"), NAMESPACE,
             "the NetworkPolicy named (create: restore recreates a deleted one)"),
        Rule("admissionregistration.k8s.io", "validatingadmissionpolicybindings",
             ("get", "patch", "delete", "update", "create"), CLUSTER,
             "the binding named (create: restore recreates a deleted one)"),
        Rule("admissionregistration.k8s.io", "validatingwebhookconfigurations",
             ("get", "patch", "delete", "update", "create"), CLUSTER,
             "the webhook configuration named (create: restore recreates a deleted one)"),
    ),
    "posture (`who_can`, `effective_permissions`, `no_wildcard_roles_bound`, `no_anonymous_bindings`, "
    "`no_service_account_reads_secrets_cluster_wide`)": tuple(
        Rule("rbac.authorization.k8s.io", plural, ("list",), CLUSTER,
             "all namespaces, one list per kind per probe" if plural == "roles" else "")
        for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")),
    "posture guardrails (`namespaces_enforce_pod_security`, `namespaces_have_default_deny`, "
    "`security_webhooks_fail_closed`, `security_policy_bindings_deny`)": (
        Rule("", "namespaces", ("list",), CLUSTER, "paged; with a label selector too, when the check takes one"),
        Rule("networking.k8s.io", "networkpolicies", ("list",), CLUSTER, "all namespaces, paged"),
        *(Rule("admissionregistration.k8s.io", plural, ("list",), CLUSTER, "paged")
          for plural in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations",
                         "validatingadmissionpolicies", "validatingadmissionpolicybindings")),
    ),
    "runtime (`run_runtime_technique`)": (
        Rule("", "pods", _CHANGE, NAMESPACE, "the pod it execs into"),
        Rule("", "pods/exec", ("get", "create"), NAMESPACE, "a WebSocket exec is authorized as both"),
    ),
    "nodes (`inject_node_fault`, `kube_bench_detects`, `cis_checks_pass`)": (
        Rule("", "nodes", ("get",), CLUSTER, "the node named, for the gates (its opt-in and control-plane labels)"),
        Rule("", "pods", _CHANGE, NAMESPACE, "the run's agent pod (get: until it runs)"),
        Rule("", "pods/exec", ("get", "create"), NAMESPACE,
             "the agent's commands on the node's file; a WebSocket exec is authorized as both"),
        Rule("", "pods", ("get",), NAMESPACE,
             "in kube-system: the mirror pod `<component>-<node>` of a static pod whose manifest's content changes "
             "(its config hash before the change, until the kubelet restarted it, and back after the restore)"),
        Rule("batch", "jobs", _CHANGE, NAMESPACE, "the kube-bench Job (get: until it finishes)"),
        Rule("", "pods", ("list",), NAMESPACE, "the kube-bench Job's pod, by its `job-name` label"),
        Rule("", "pods/log", ("get",), NAMESPACE, "kube-bench's output"),
    ),
    "detection (`alert_in_kubernetes_events`, `alert_in_falco_logs`)": (
        Rule("", "events", ("list", "watch"), CLUSTER, "all namespaces, unless the probe names one"),
        Rule("", "pods", ("list",), NAMESPACE, "Falco's pods, in Falco's namespace"),
        Rule("", "pods/log", ("get",), NAMESPACE, "Falco's logs"),
    ),
    "`kirvis run --keep-journals-in NS`": (
        Rule("", "configmaps", ("create", "list", "delete"), NAMESPACE,
             "NS: a ConfigMap per journal; the experiment's kept journals by label; the oldest beyond --keep"),
    ),
    "`kirvis cleanup` (without `-n`: across all namespaces)": (
        *(Rule(group, plural, ("list", "get", "delete"), CLUSTER) for group, plural in _SWEPT_NAMESPACED),
        Rule("", "configmaps", ("list", "get", "delete"), CLUSTER,
             "the run records, and ConfigMaps a technique made"),
        Rule("rbac.authorization.k8s.io", "clusterrolebindings", ("list", "get", "delete"), CLUSTER),
        Rule("rbac.authorization.k8s.io", "clusterroles", ("list", "get", "delete"), CLUSTER),
        Rule("certificates.k8s.io", "certificatesigningrequests", ("list", "get", "delete"), CLUSTER),
        Rule("", "namespaces", ("get", "update"), CLUSTER, "a namespace a guardrail technique changed, put back"),
        Rule("networking.k8s.io", "networkpolicies", ("update", "create"), CLUSTER,
             "a NetworkPolicy a guardrail technique changed or deleted, put back"),
        Rule("admissionregistration.k8s.io", "validatingadmissionpolicybindings", ("get", "update", "create"), CLUSTER,
             "a binding a guardrail technique changed or deleted, put back (only with --run-id)"),
        Rule("admissionregistration.k8s.io", "validatingwebhookconfigurations", ("get", "update", "create"), CLUSTER,
             "a webhook configuration a guardrail technique changed or deleted, put back (only with --run-id)"),
        Rule("", "pods", ("create",), NAMESPACE,
             "a node file a node technique changed, put back (only with --run-id): an agent pod in the run's agent "
             "namespace, when the run's own is gone"),
        Rule("", "pods/exec", ("get", "create"), NAMESPACE,
             "the agent's commands that put the node file back (only with --run-id)"),
    ),
}


def markdown_table() -> str:
    """The table README shows (one row per rule); "namespace" is the one the request names."""
    lines = ["| needed by | resource | verbs | where | why |", "|---|---|---|---|---|"]
    for family, rules in PERMISSIONS.items():
        for index, rule in enumerate(rules):
            where = "namespace" if rule.scope == NAMESPACE else "cluster"
            note = rule.note + (" (checked, not sent)" if rule.checked_only else "")
            lines.append(f"| {family if index == 0 else ''} | `{rule.qualified}` | {', '.join(rule.verbs)} "
                         f"| {where} | {note} |")
    return "\n".join(lines)
