"""Guardrail tampering: weaken a control that exists, instead of creating something risky.

Each unit changes an object the experiment names (a namespace, a NetworkPolicy, a
ValidatingAdmissionPolicyBinding, a ValidatingWebhookConfiguration): `apply` turns a copy of the object
as read into what the technique writes (`chaoskirvis.guardrails.actions.tamper_guardrail` sends the
difference as a merge patch); a unit without `apply` deletes the object. The run saves the original first and restore puts it back
(`chaoskirvis.ledger.changes`).

Detection: no upstream Falco rule, nor any rule of the k8saudit plugin's k8s_audit_rules.yaml (the names
pinned in detector_rules.json), looks at a namespace's labels, a NetworkPolicy, a
ValidatingAdmissionPolicyBinding or a webhook configuration; its nearest rules, 'K8s Namespace Created' and
'K8s Namespace Deleted', watch other verbs. What a detector sees is the audit event, with the fields each unit names.
"""
from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.techniques.unit import Detection, Option, Technique

__all__ = ["GUARDRAIL_TECHNIQUES", "GUARDRAIL_TARGETS", "PSA_MODES", "GATEKEEPER_IGNORE_LABEL"]

PSA_MODES = ("enforce", "warn", "audit")
GATEKEEPER_IGNORE_LABEL = "admission.gatekeeper.sh/ignore"
GUARDRAIL_TARGETS = ("namespace", "networkpolicy", "validatingadmissionpolicybinding",
                     "validatingwebhookconfiguration")
_PSA = "pod-security.kubernetes.io/"
_NO_RULE = ("no upstream Falco or k8saudit rule looks at {what} (k8saudit's 'K8s Namespace Created' and "
            "'K8s Namespace Deleted' watch other verbs)")
_NAMESPACE_RBAC = ("RBAC, when attempted as a team identity (as_user / as_service_account): patch on namespaces is "
                   "cluster-scoped, so no Role in the team's namespace can grant it, and its 403 naming that identity "
                   "is blocked")
_NAMESPACE_VAP = ("a ValidatingAdmissionPolicy matching UPDATE of namespaces that forbids the change (e.g. "
                  "oldObject's label kept: object.metadata.labels['pod-security.kubernetes.io/enforce'] == "
                  "oldObject.metadata.labels['pod-security.kubernetes.io/enforce'])")


def _modes(options: dict[str, Any]) -> list[str]:
    modes = options["modes"]
    if isinstance(modes, str):
        modes = [modes]
    if not modes or not all(m in PSA_MODES for m in modes):
        raise ActivityFailed(f"option modes must list Pod Security modes among {', '.join(PSA_MODES)}, not {modes!r}")
    return list(modes)


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].setdefault("labels", {})


def _privileged(namespace: dict[str, Any], options: dict[str, Any]) -> None:
    labels = _labels(namespace)
    for mode in _modes(options):
        labels[f"{_PSA}{mode}"] = "privileged"


def _unlabelled(namespace: dict[str, Any], options: dict[str, Any]) -> None:
    labels = _labels(namespace)
    for mode in _modes(options):
        labels.pop(f"{_PSA}{mode}", None)
        labels.pop(f"{_PSA}{mode}-version", None)


def _exempted(namespace: dict[str, Any], options: dict[str, Any]) -> None:
    _labels(namespace)[options["label"]] = options["value"]


def _opened(policy: dict[str, Any], options: dict[str, Any]) -> None:
    spec = policy.setdefault("spec", {})
    spec["ingress"] = [{}]  # one rule with no from and no ports: every source, every port
    types = list(spec.get("policyTypes") or ["Ingress"])
    spec["policyTypes"] = types if "Ingress" in types else [*types, "Ingress"]


def _not_denying(binding: dict[str, Any], options: dict[str, Any]) -> None:
    actions = options["actions"]
    if isinstance(actions, str):
        actions = [actions]
    if not actions or not all(a in ("Warn", "Audit") for a in actions):
        raise ActivityFailed(f"option actions must list Warn and/or Audit (a binding that still denies weakens "
                             f"nothing), not {actions!r}")
    binding.setdefault("spec", {})["validationActions"] = list(actions)


def _fail_open(configuration: dict[str, Any], options: dict[str, Any]) -> None:
    for webhook in configuration.get("webhooks") or []:
        webhook["failurePolicy"] = "Ignore"


def _excluding(configuration: dict[str, Any], options: dict[str, Any]) -> None:
    excluded = options["exclude_namespaces"]
    if isinstance(excluded, str):
        excluded = [excluded]
    if not excluded or not all(isinstance(n, str) and n for n in excluded):
        raise ActivityFailed(f"option exclude_namespaces must list namespace names, not {excluded!r}")
    for webhook in configuration.get("webhooks") or []:
        selector = webhook.setdefault("namespaceSelector", {})
        selector.setdefault("matchExpressions", []).append(
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(excluded)})


def _guardrail(id: str, title: str, attack: tuple[str, ...], injects: str, target: str, apply, blocked_by: str,
               audit: str, what: str, **options: Option) -> Technique:
    undo = ("put the object back exactly as read before the change (an update on the version read, only while it "
            "carries the run's mark and is what the run wrote)" if apply else
            "create the object again from its original, saved in the run's record before the delete")
    return Technique(
        id=id, family="guardrail", title=title, attack=attack, injects=injects, blocked_by=blocked_by,
        pod_security_level=None, pod_security_checks=(), detection=Detection(audit_log=audit,
                                                                            note=_NO_RULE.format(what=what)),
        undo=undo, target=target, apply=apply, options=options,
    )


_MODES = Option(["enforce"], "the Pod Security modes to change: enforce, warn, audit")
_AUDIT_NAMESPACE = ("verb=patch, objectRef.resource=namespaces, objectRef.name=NAMESPACE, "
                    "requestObject.metadata.labels")
_NP_RBAC = ("RBAC, when attempted as a team identity: its 403 naming that identity is blocked (the team's app "
            "identity holds no verb on networkpolicies; note the built-in edit ClusterRole grants create, patch and "
            "delete on them, so a deployer bound to edit is allowed)")
_WEBHOOK_RBAC = ("RBAC, when attempted as a team identity: validatingwebhookconfigurations are cluster-scoped, "
                 "so only a ClusterRole can grant the verb, and its 403 naming that identity is blocked")
_AUDIT_WEBHOOK = ("objectRef.apiGroup=admissionregistration.k8s.io, "
                  "objectRef.resource=validatingwebhookconfigurations, objectRef.name")
_VAP_RBAC = ("RBAC, when attempted as a team identity: validatingadmissionpolicybindings are cluster-scoped, "
             "so only a ClusterRole can grant the verb, and its 403 naming that identity is blocked")

GUARDRAIL_TECHNIQUES: tuple[Technique, ...] = (
    _guardrail("pod-security-privileged", "Pod Security label downgraded to privileged", ("T1562.001",),
               "the namespace's pod-security.kubernetes.io/enforce label (and those of the modes given) set to "
               "privileged, so Pod Security admits any pod there", "namespace", _privileged,
               f"{_NAMESPACE_RBAC}; {_NAMESPACE_VAP}",
               _AUDIT_NAMESPACE + '["pod-security.kubernetes.io/enforce"]=privileged (at level Request)',
               "namespace labels", modes=_MODES),
    _guardrail("pod-security-label-removed", "Pod Security label removed", ("T1562.001",),
               "the namespace's pod-security.kubernetes.io/enforce label (and its -version; and those of the modes "
               "given) removed, so the cluster's default level (privileged unless configured) applies", "namespace",
               _unlabelled, f"{_NAMESPACE_RBAC}; {_NAMESPACE_VAP}",
               _AUDIT_NAMESPACE + '["pod-security.kubernetes.io/enforce"]=null (the merge patch removing it, at '
               "level Request)", "namespace labels", modes=_MODES),
    _guardrail("policy-engine-exemption-label", "Namespace labelled exempt from the policy engine", ("T1562.001",),
               "the namespace labelled admission.gatekeeper.sh/ignore, which Gatekeeper's webhook configurations "
               "exclude by namespaceSelector (Gatekeeper docs, Exempting Namespaces: the label exempts a namespace "
               "from the webhook; the value is ignored)", "namespace", _exempted,
               f"{_NAMESPACE_RBAC}; Gatekeeper's own namespace-label webhook, which denies the label on a namespace "
               "not exempted by --exempt-namespace; or a ValidatingAdmissionPolicy forbidding it",
               _AUDIT_NAMESPACE + '["admission.gatekeeper.sh/ignore"] (at level Request)', "namespace labels",
               label=Option(GATEKEEPER_IGNORE_LABEL, "the exemption label a policy engine honours"),
               value=Option("kirvis", "its value (Gatekeeper ignores it)")),
    _guardrail("network-policy-deleted", "NetworkPolicy deleted", ("T1562.007",),
               "the NetworkPolicy named by the experiment (a default-deny, say) deleted, so the pods it selected "
               "accept traffic again", "networkpolicy", None,
               f"{_NP_RBAC}; a ValidatingAdmissionPolicy matching DELETE of networkpolicies",
               "verb=delete, objectRef.resource=networkpolicies, objectRef.namespace, objectRef.name",
               "NetworkPolicies"),
    _guardrail("network-policy-opened", "NetworkPolicy opened to every source", ("T1562.007",),
               "the NetworkPolicy named by the experiment given an ingress rule with no from and no ports, which "
               "admits every source on every port to the pods it selects", "networkpolicy", _opened,
               f"{_NP_RBAC}; a ValidatingAdmissionPolicy matching UPDATE of networkpolicies",
               "verb=patch, objectRef.resource=networkpolicies, objectRef.name, requestObject.spec.ingress=[{}] "
               "(at level Request)", "NetworkPolicies"),
    _guardrail("vap-binding-not-denying", "ValidatingAdmissionPolicyBinding switched to Warn/Audit",
               ("T1562.001",),
               "the binding named by the experiment given validationActions without Deny, so its policy's failures "
               "only warn or reach the audit log", "validatingadmissionpolicybinding", _not_denying,
               f"{_VAP_RBAC}; a ValidatingAdmissionPolicy matching UPDATE of validatingadmissionpolicybindings",
               "verb=patch, objectRef.apiGroup=admissionregistration.k8s.io, objectRef.resource="
               "validatingadmissionpolicybindings, objectRef.name, requestObject.spec.validationActions (at level "
               "Request)", "ValidatingAdmissionPolicyBindings",
               actions=Option(["Warn"], "the validationActions to set: Warn and/or Audit")),
    _guardrail("vap-binding-deleted", "ValidatingAdmissionPolicyBinding deleted", ("T1562.001",),
               "the binding named by the experiment deleted, so its policy is enforced nowhere",
               "validatingadmissionpolicybinding", None,
               f"{_VAP_RBAC}; a ValidatingAdmissionPolicy matching DELETE of validatingadmissionpolicybindings",
               "verb=delete, objectRef.apiGroup=admissionregistration.k8s.io, objectRef.resource="
               "validatingadmissionpolicybindings, objectRef.name", "ValidatingAdmissionPolicyBindings"),
    _guardrail("webhook-fail-open", "Admission webhook set to fail open", ("T1562.001",),
               "every webhook of the ValidatingWebhookConfiguration named by the experiment given failurePolicy "
               "Ignore, so the API server admits what the webhook would deny whenever it cannot be reached or "
               "times out", "validatingwebhookconfiguration", _fail_open,
               f"{_WEBHOOK_RBAC}; a ValidatingAdmissionPolicy matching UPDATE of validatingwebhookconfigurations "
               "(webhooks are never called for webhook configurations, so the policy engine cannot guard its own)",
               f"verb=patch, {_AUDIT_WEBHOOK}, requestObject.webhooks[*].failurePolicy=Ignore (at level Request)",
               "webhook configurations"),
    _guardrail("webhook-namespace-exclusion", "Admission webhook told to skip namespaces", ("T1562.001",),
               "every webhook of the ValidatingWebhookConfiguration named by the experiment given a "
               "namespaceSelector expression kubernetes.io/metadata.name NotIn the namespaces given, so it is "
               "never called for requests there", "validatingwebhookconfiguration", _excluding,
               f"{_WEBHOOK_RBAC}; a ValidatingAdmissionPolicy matching UPDATE of validatingwebhookconfigurations",
               f"verb=patch, {_AUDIT_WEBHOOK}, requestObject.webhooks[*].namespaceSelector (at level Request)",
               "webhook configurations",
               exclude_namespaces=Option(None, "the namespaces the webhooks should skip; default the experiment's "
                                               "namespace")),
    _guardrail("webhook-configuration-deleted", "Admission webhook configuration deleted", ("T1562.001",),
               "the ValidatingWebhookConfiguration named by the experiment deleted, so the API server calls none "
               "of its webhooks", "validatingwebhookconfiguration", None,
               f"{_WEBHOOK_RBAC}; a ValidatingAdmissionPolicy matching DELETE of validatingwebhookconfigurations",
               f"verb=delete, {_AUDIT_WEBHOOK}", "webhook configurations"),
)
