"""Guardrails as the cluster stores them, judged as the API server and its admission plugins read them.

Four questions, each a pure function over the objects a list returned (plain dicts), answering
``(findings, allowed)``: a finding names the offending object (``kind``, ``name``, ``namespace`` where it
has one) and ``why``, in words a person can act on; ``allowed`` holds what was looked at and passed, with
the reason, so the evidence shows the whole picture.

- Pod Security: the level a namespace's ``pod-security.kubernetes.io/enforce`` label makes the PodSecurity
  admission plugin enforce, as upstream's ``PolicyToEvaluate`` reads it
  (``staging/src/k8s.io/pod-security-admission/api/helpers.go``): no label is the cluster's default (the
  AdmissionConfiguration's ``defaults.enforce``, ``privileged`` unless configured); a value ``ParseLevel``
  rejects (levels are exact, case-sensitive) is enforced as ``restricted``.
- NetworkPolicy: a policy denies a direction by default when its podSelector is empty (it selects every pod
  of its namespace), its policyTypes hold the direction, and it has no rule for it. policyTypes omitted
  default as ``SetDefaults_NetworkPolicy`` does (``pkg/apis/networking/v1/defaults.go``): ``[Ingress]``,
  plus ``Egress`` when the policy has egress rules. Any rule allows something (``{}`` allows every peer
  on every port: an empty or missing ``from``/``to`` matches all, empty ``ports`` all ports).
- Admission webhooks: ``failurePolicy`` unset is ``Fail`` in admissionregistration.k8s.io/v1
  (``SetDefaults_ValidatingWebhook`` / ``SetDefaults_MutatingWebhook``); ``Ignore`` admits the request
  whenever the webhook cannot be called, times out or answers garbage.
- ValidatingAdmissionPolicyBindings: only ``Deny`` in ``validationActions`` refuses a request; ``Warn``
  and ``Audit`` report it and admit it. A policy with no binding is never evaluated.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from chaoskirvis.posture.rbac_model import matches_any

Finding = dict[str, Any]

LEVELS = ("privileged", "baseline", "restricted")
ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
_DIRECTIONS = {"Ingress": "ingress", "Egress": "egress"}


def name_of(item: dict[str, Any]) -> str:
    """metadata.name of a listed object."""
    return str((item.get("metadata") or {}).get("name") or "")


def _labels(item: dict[str, Any]) -> dict[str, str]:
    return (item.get("metadata") or {}).get("labels") or {}


# --- Pod Security -------------------------------------------------------------------------------------------

def enforced_level(labels: dict[str, str], cluster_default: str = "privileged") -> tuple[str, str]:
    """The level PodSecurity enforces in a namespace with these labels, and how it follows from them."""
    if ENFORCE_LABEL not in labels:
        return cluster_default, f"no {ENFORCE_LABEL} label: the cluster's default, {cluster_default}, applies"
    value = labels[ENFORCE_LABEL]
    if value in LEVELS:
        return value, f"{ENFORCE_LABEL}={value}"
    return "restricted", (f"{ENFORCE_LABEL}={value!r} is no level (privileged, baseline, restricted): Pod Security "
                          "enforces restricted, as kube-apiserver does for an invalid value")


def pod_security_offenders(namespaces: Iterable[dict[str, Any]], minimum: str, excluded: Iterable[str],
                           excluded_by_selector: set[str], cluster_default: str = "privileged",
                           ) -> tuple[list[Finding], list[Finding]]:
    """The namespaces enforcing less than `minimum`; `excluded` are glob patterns over names, and
    `excluded_by_selector` the names the exclusion selector matched."""
    rank = LEVELS.index(minimum)
    patterns = list(excluded)
    findings, allowed = [], []
    for namespace in namespaces:
        name, labels = name_of(namespace), _labels(namespace)
        level, how = enforced_level(labels, cluster_default)
        record = {"kind": "Namespace", "name": name, "enforce": labels.get(ENFORCE_LABEL), "level": level}
        if ENFORCE_VERSION_LABEL in labels:
            record["enforce_version"] = labels[ENFORCE_VERSION_LABEL]
        if matches_any(name, patterns):
            allowed.append(record | {"allowed_as": "excluded by name"})
        elif name in excluded_by_selector:
            allowed.append(record | {"allowed_as": "excluded by label selector"})
        elif LEVELS.index(level) < rank:
            findings.append(record | {"why": f"enforces {level}, less than {minimum} ({how})"})
        else:
            allowed.append(record | {"allowed_as": how})
    return findings, allowed


# --- NetworkPolicy ------------------------------------------------------------------------------------------

def policy_types(spec: dict[str, Any]) -> list[str]:
    """spec.policyTypes, or what the API server defaults them to when they are omitted."""
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _selects_every_pod(selector: Any) -> bool:
    """An empty LabelSelector (``{}``, or without labels and expressions) selects every pod."""
    return not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions"))


def why_not_default_deny(policy: dict[str, Any], direction: str) -> str | None:
    """None when `policy` denies all `direction` (``Ingress``/``Egress``) traffic of every pod of its namespace
    that no other policy allows; else why it does not."""
    spec = policy.get("spec") or {}
    if not _selects_every_pod(spec.get("podSelector")):
        return "its podSelector selects some pods only"
    types = policy_types(spec)
    if direction not in types:
        stated = "" if spec.get("policyTypes") else " (omitted: defaulted from its rules)"
        return f"its policyTypes [{', '.join(types)}]{stated} do not include {direction}"
    rules = spec.get(_DIRECTIONS[direction]) or []
    if rules:
        open_rules = [index for index, rule in enumerate(rules) if _allows_all(rule, direction)]
        detail = (f"; rule {', '.join(map(str, open_rules))} allows every peer on every port" if open_rules else "")
        return f"it allows {direction.lower()} through {len(rules)} rule(s){detail}"
    return None


def _allows_all(rule: Any, direction: str) -> bool:
    """A rule without peers and without ports (``{}``) matches all traffic of its direction."""
    peers = "from" if direction == "Ingress" else "to"
    return not isinstance(rule, dict) or (not rule.get(peers) and not rule.get("ports"))


def default_deny_offenders(namespaces: Iterable[str], policies: Iterable[dict[str, Any]], directions: list[str],
                           ) -> tuple[list[Finding], list[Finding]]:
    """The `namespaces` where no NetworkPolicy denies each of `directions` by default (one policy may deny
    both, or one policy each: NetworkPolicies add up)."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for policy in policies:
        by_namespace.setdefault(str((policy.get("metadata") or {}).get("namespace") or ""), []).append(policy)
    findings, allowed = [], []
    for namespace in namespaces:
        present = by_namespace.get(namespace, [])
        denying: dict[str, str] = {}
        missing: list[str] = []
        for direction in directions:
            deniers = [name_of(p) for p in present if why_not_default_deny(p, direction) is None]
            if deniers:
                denying[direction] = deniers[0]
            else:
                missing.append(direction)
        if not missing:
            allowed.append({"kind": "Namespace", "name": namespace, "default_deny": denying})
            continue
        examined = [{"name": name_of(p), "why_not": "; ".join(
            f"{d}: {why}" for d in missing if (why := why_not_default_deny(p, d)))} for p in present]
        why = (f"no NetworkPolicy denies {' and '.join(d.lower() for d in missing)} by default"
               + (f" ({len(present)} polic{'y' if len(present) == 1 else 'ies'} examined)" if present
                  else " (the namespace has no NetworkPolicy)"))
        findings.append({"kind": "Namespace", "name": namespace, "why": why, "policies": examined,
                         "default_deny": denying})
    return findings, allowed


# --- Admission webhooks -------------------------------------------------------------------------------------

def webhook_offenders(configurations: dict[str, list[dict[str, Any]]], patterns: list[str],
                      ) -> tuple[list[Finding], list[Finding]]:
    """Each webhook of the configurations named by `patterns` (every one when empty) whose failurePolicy is
    not Fail; a configuration with no webhook; and, for each pattern, the configurations it names or that
    none does. `configurations` maps a kind to its listed items."""
    findings, allowed = [], []
    matched: set[str] = set()
    for kind, items in configurations.items():
        for item in items:
            name = name_of(item)
            if patterns and not matches_any(name, patterns):
                continue
            matched.update(p for p in patterns if fnmatch.fnmatchcase(name, p))
            webhooks = [w for w in item.get("webhooks") or () if isinstance(w, dict)]
            if not webhooks:
                findings.append({"kind": kind, "name": name, "why": "it holds no webhook: it guards nothing"})
            for webhook in webhooks:
                policy = webhook.get("failurePolicy")
                record = {"kind": kind, "name": name, "webhook": str(webhook.get("name") or ""),
                          "failurePolicy": policy}
                if policy in (None, "Fail"):
                    allowed.append(record | {"allowed_as": "failurePolicy Fail" + ("" if policy else " (the default)")})
                else:
                    findings.append(record | {"why": f"failurePolicy {policy}: when the webhook cannot be called, "
                                                     "times out or answers garbage, the request is admitted"})
    kinds = " or ".join(configurations)
    for pattern in patterns:
        if pattern not in matched:
            findings.append({"kind": kinds, "name": pattern,
                             "why": f"no {kinds} is named like {pattern!r}: the security webhook is missing"})
    return findings, allowed


# --- ValidatingAdmissionPolicyBindings ---------------------------------------------------------------------

def binding_offenders(policies: list[dict[str, Any]], bindings: list[dict[str, Any]], patterns: list[str],
                      ) -> tuple[list[Finding], list[Finding]]:
    """The bindings (of the policies `patterns` name, every binding when empty) without Deny or whose policy
    does not exist; with `patterns`, also each policy they name that no binding binds, and each pattern
    that names no policy."""
    policy_names = {name_of(p) for p in policies}
    bound: set[str] = set()
    findings, allowed = [], []
    for binding in bindings:
        spec = binding.get("spec") or {}
        policy = str(spec.get("policyName") or "")
        if patterns and not matches_any(policy, patterns):
            continue
        actions = list(spec.get("validationActions") or [])
        record = {"kind": "ValidatingAdmissionPolicyBinding", "name": name_of(binding), "policy": policy,
                  "validationActions": actions}
        if policy not in policy_names:
            findings.append(record | {"why": f"its policy {policy} does not exist: the binding enforces nothing"})
        elif "Deny" not in actions:
            bound.add(policy)
            listed = ", ".join(actions)
            findings.append(record | {"why": f"validationActions [{listed}] lack Deny: a request the policy rejects "
                                             "is admitted (only warned about or audited)"})
        else:
            bound.add(policy)
            allowed.append(record | {"allowed_as": "validationActions hold Deny"})
    named_any: set[str] = set()
    for pattern in patterns:
        named = {p for p in policy_names if fnmatch.fnmatchcase(p, pattern)}
        if not named:
            findings.append({"kind": "ValidatingAdmissionPolicy", "name": pattern,
                             "why": f"no ValidatingAdmissionPolicy is named like {pattern!r}: the policy is missing"})
        named_any |= named
    findings.extend({"kind": "ValidatingAdmissionPolicy", "name": name,
                     "why": "no binding binds it: the policy is never evaluated"} for name in sorted(named_any - bound))
    return findings, allowed
