"""Policy engines' documents for the rehearsal: Kyverno CEL ClusterPolicies become the ValidatingAdmissionPolicy
and binding Kyverno itself would generate, Gatekeeper CEL ConstraintTemplates and their Constraints what
Gatekeeper generates (`gatekeeper`); every other Kyverno or Gatekeeper document is listed as not rehearsed,
and so is a ClusterPolicy a PolicyException among the manifests names (rehearsed without its exception, it would
block what the cluster admits: a held cell that is not true).

Mirrors Kyverno's VAP generation (KDP "Generate ValidatingAdmissionPolicies", pkg/validatingadmissionpolicy):
the VAP is named after the policy, the binding `<policy>-binding`; `validate.cel.expressions` become
`validations`, `cel.variables` `variables`, `cel.auditAnnotations` `auditAnnotations`; the matched kinds become
`matchConstraints.resourceRules`; failure action Enforce binds with [Deny], Audit with [Audit, Warn] (as in
Kyverno 1.13's release notes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from chaoskirvis.rehearse.gatekeeper import translate_gatekeeper
from chaoskirvis.rehearse.matrix import ManifestError

__all__ = ["ENGINE_GROUPS", "translate"]

ENGINE_GROUPS = {"kyverno.io": "Kyverno", "policies.kyverno.io": "Kyverno", **{
    f"{group}.gatekeeper.sh": "Gatekeeper"
    for group in ("templates", "constraints", "mutations", "externaldata", "config", "expansion", "syncset")}}

# Kind -> (group, version, resource) for the kinds a translated policy may match; another kind is skipped
# rather than guessed, since a wrong resource name would silently match nothing.
_KINDS = {
    "Pod": ("", "v1", "pods"), "Service": ("", "v1", "services"), "Namespace": ("", "v1", "namespaces"),
    "ServiceAccount": ("", "v1", "serviceaccounts"), "ConfigMap": ("", "v1", "configmaps"),
    "Secret": ("", "v1", "secrets"), "Deployment": ("apps", "v1", "deployments"),
    "DaemonSet": ("apps", "v1", "daemonsets"), "StatefulSet": ("apps", "v1", "statefulsets"),
    "ReplicaSet": ("apps", "v1", "replicasets"), "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles"),
    "ClusterRole": ("rbac.authorization.k8s.io", "v1", "clusterroles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
}
_ACTIONS = {"enforce": ["Deny"], "audit": ["Audit", "Warn"]}
_RULE_TYPES = ("pattern", "anyPattern", "deny", "podSecurity", "manifests", "foreach", "assert")


def translate(documents: list[tuple[Path, dict[str, Any]]]
              ) -> tuple[list[tuple[Path, dict[str, Any]]], list[tuple[str, str, str]]]:
    """The documents the sandbox can enforce, and (kind, name (file), reason) for each engine document it cannot."""
    kept: list[tuple[Path, dict[str, Any]]] = []
    skipped: list[tuple[str, str, str]] = []
    gatekeeper: list[tuple[Path, dict[str, Any]]] = []
    excepted = _excepted_policies(documents)
    for file, doc in documents:
        engine = ENGINE_GROUPS.get(str(doc.get("apiVersion", "")).split("/")[0])
        if engine is None:
            kept.append((file, doc))
            continue
        name = (doc.get("metadata") or {}).get("name")
        kind = str(doc.get("kind"))
        if engine == "Kyverno" and kind == "ClusterPolicy" and name in excepted:
            # A VAP made from the policy would not carry the exception, so it would block what the cluster admits.
            skipped.append((kind, f"{name} ({file})", f"not translated: PolicyException {excepted[name]} exempts "
                                                      "resources from it, which the generated policy would not"))
        elif engine == "Kyverno" and kind == "ClusterPolicy":
            generated = _kyverno_vap(doc)
            if isinstance(generated, str):
                skipped.append((kind, f"{name} ({file})", f"not translated: {generated}"))
            else:
                kept.extend((file, d) for d in generated)
        elif engine == "Kyverno":
            skipped.append((kind, f"{name} ({file})",
                            f"only Kyverno ClusterPolicies with CEL validate rules are translated, not {kind}"))
        else:
            gatekeeper.append((file, doc))
    generated, not_generated = translate_gatekeeper(gatekeeper)
    return kept + generated, skipped + not_generated


def _excepted_policies(documents: list[tuple[Path, dict[str, Any]]]) -> dict[str, str]:
    """ClusterPolicy name -> the PolicyException (kyverno.io, any version) that names it."""
    excepted: dict[str, str] = {}
    for _, doc in documents:
        if str(doc.get("apiVersion", "")).split("/")[0] != "kyverno.io" or doc.get("kind") != "PolicyException":
            continue
        metadata = doc.get("metadata") or {}
        label = "/".join(str(part) for part in (metadata.get("namespace"), metadata.get("name")) if part)
        for exception in (doc.get("spec") or {}).get("exceptions") or []:
            if isinstance(exception, dict) and isinstance(exception.get("policyName"), str):
                excepted.setdefault(exception["policyName"], label)
    return excepted


def _kyverno_vap(policy: dict[str, Any]) -> list[dict[str, Any]] | str:
    """The VAP and binding Kyverno would generate for `policy`, or why it generates none."""
    name = policy["metadata"]["name"]
    spec = policy.get("spec") or {}
    rules = spec.get("rules") or []
    if len(rules) != 1:
        return f"Kyverno generates a ValidatingAdmissionPolicy only for a single-rule policy; it has {len(rules)}"
    rule = rules[0]
    validate = rule.get("validate") or {}
    for other in ("mutate", "generate", "verifyImages"):
        if other in rule:
            return f"rule {rule.get('name')!r} is a {other} rule; only CEL validate rules are translated"
    cel = validate.get("cel")
    if not isinstance(cel, dict):
        used = [t for t in _RULE_TYPES if t in validate] or ["no cel"]
        return f"rule {rule.get('name')!r} validates with {', '.join(used)}, not CEL; only CEL rules are translated"
    if cel.get("paramKind") or cel.get("paramRef"):
        return "the rule uses CEL parameters (paramKind/paramRef)"
    if rule.get("exclude") or rule.get("preconditions") or rule.get("context"):
        return "the rule has exclude, preconditions or context, which the generated policy would not carry"
    given = str(validate.get("failureAction") or spec.get("validationFailureAction") or "Audit")
    action = given.lower()
    if action not in _ACTIONS:
        # Kyverno's CRD admits only Audit or Enforce: a typo must not rehearse as an audit-only policy.
        raise ManifestError(f"ClusterPolicy {name}: failure action {given!r} is neither Audit nor Enforce")
    resource_rules = _resource_rules(rule.get("match") or {})
    if isinstance(resource_rules, str):
        return resource_rules
    vap_spec: dict[str, Any] = {"failurePolicy": spec.get("failurePolicy", "Fail"),
                                "matchConstraints": {"resourceRules": resource_rules},
                                "validations": cel.get("expressions") or []}
    if cel.get("variables"):
        vap_spec["variables"] = cel["variables"]
    if cel.get("auditAnnotations"):
        vap_spec["auditAnnotations"] = cel["auditAnnotations"]
    vap = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
           "metadata": {"name": name}, "spec": vap_spec}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": f"{name}-binding"},
               "spec": {"policyName": name, "validationActions": _ACTIONS[action]}}
    return [vap, binding]


def _resource_rules(match: dict[str, Any]) -> list[dict[str, Any]] | str:
    filters = [f.get("resources") or {} for f in match.get("any") or []]
    if match.get("resources"):
        filters.append(match["resources"])
    if match.get("all") or not filters:
        return "the rule's match has `all` or no resources; only `any`/`resources` kinds are translated"
    rules = []
    for resources in filters:
        extra = sorted(set(resources) - {"kinds", "operations"})
        if extra:
            return f"the rule matches on {', '.join(extra)}; only kinds and operations are carried over"
        for kind in resources.get("kinds") or []:
            if kind not in _KINDS:
                return f"kind {kind!r} is not one this version maps to a resource"
            group, version, resource = _KINDS[kind]
            rules.append({"apiGroups": [group], "apiVersions": [version],
                          "operations": resources.get("operations") or ["CREATE", "UPDATE"],
                          "resources": [resource]})
    return rules or "the rule matches no kinds"
