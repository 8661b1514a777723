"""Privilege through RBAC: bindings that hand out cluster-wide power."""
from __future__ import annotations

from typing import Any

from chaoskirvis.techniques.unit import Detection, Option, Rule, Technique

__all__ = ["RBAC_TECHNIQUES"]


def _bind_cluster_role(binding: dict[str, Any], options: dict[str, Any]) -> None:
    binding["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": options["role"]}


RBAC_TECHNIQUES: tuple[Technique, ...] = (
    Technique(
        id="cluster-admin-binding", family="rbac", title="cluster-admin bound to a service account",
        attack=("T1098.006", "T1078.004"),
        injects="a ClusterRoleBinding granting cluster-admin to a service account named after the run "
                "(the account is never created, so no token can use the binding)",
        blocked_by="a ValidatingAdmissionPolicy (or policy engine rule) forbidding cluster-admin bindings; "
                   "RBAC, when attempted as a team identity (as_user / as_service_account): its 403 naming that "
                   "identity (no create on clusterrolebindings, or the escalation check: no bind on cluster-admin "
                   "nor all it grants) is blocked; the same refusal of the runner itself is an error",
        pod_security_level=None, pod_security_checks=(),
        detection=Detection(
            rules=(Rule("Attach to cluster-admin Role", "k8saudit", needs=(
                "an audit policy logging clusterrolebinding creates at level Request or RequestResponse (the "
                "condition reads the request's roleRef; the alert names the subject, a service account named "
                "after the run)",
                "option role left at cluster-admin")),),
            audit_log="verb=create, objectRef.resource=clusterrolebindings, requestObject.roleRef.name=cluster-admin"),
        undo="delete the ClusterRoleBinding (it carries the run's ownership labels)", target="clusterrolebinding",
        apply=_bind_cluster_role, options={"role": Option("cluster-admin", "the ClusterRole to bind")},
    ),
)
