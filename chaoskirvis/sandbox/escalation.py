"""RBAC escalation prevention, as the role and binding registries of kube-apiserver apply it.

A user may write a Role or ClusterRole only with rules it already holds there (`pkg/registry/rbac/validation`
ConfirmNoEscalation, `component-helpers/auth/rbac/validation` Covers), unless it may `escalate` it; a
binding only to a role whose rules it holds, unless it may `bind` that role. Members of system:masters
skip both (EscalationAllowed). The refusal is the registries' 403 with upstream's wording.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from chaoskirvis.sandbox.rbac import MASTERS, RBAC_GROUP, Attributes, Authorizer, UserInfo
from chaoskirvis.sandbox.status import StatusError, status_error

_ROLE_PLURALS = {"Role": "roles", "ClusterRole": "clusterroles"}
_FULL_AUTHORITY = ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                   {"verbs": ["*"], "nonResourceURLs": ["*"]})


def _go_quote_list(values: Sequence[str]) -> str:
    """A []string printed with Go's %q: ["a" "b"]."""
    return "[" + " ".join(json.dumps(value) for value in values) + "]"


def _breakdown(rule: Mapping[str, Any]) -> list[dict[str, list[str]]]:
    """BreakdownRule: one rule per group, resource, verb (and resource name), then per URL and verb."""
    verbs = list(rule.get("verbs") or [])
    names = list(rule.get("resourceNames") or [])
    atoms: list[dict[str, list[str]]] = []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for verb in verbs:
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                atoms.extend([dict(base, resourceNames=[name]) for name in names] if names else [base])
    for url in rule.get("nonResourceURLs") or []:
        atoms.extend({"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs)
    return atoms


def _resources_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    if "*" in owned:
        return True
    for path in wanted:
        if path in owned:
            continue
        if "/" not in path or f"*/{path.split('/', 1)[1]}" not in owned:
            return False
    return True


def _urls_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    return all(any(url == path or url == "*" or (url.endswith("*") and path.startswith(url[:-1]))
                   for url in owned) for path in wanted)


def _rule_covers(owner: Mapping[str, Any], atom: Mapping[str, Sequence[str]]) -> bool:
    owned_verbs, owned_groups = owner.get("verbs") or [], owner.get("apiGroups") or []
    owned_names = owner.get("resourceNames") or []
    return (("*" in owned_verbs or all(v in owned_verbs for v in atom.get("verbs", [])))
            and ("*" in owned_groups or all(g in owned_groups for g in atom.get("apiGroups", [])))
            and _resources_cover(owner.get("resources") or [], atom.get("resources", []))
            and _urls_cover(owner.get("nonResourceURLs") or [], atom.get("nonResourceURLs", []))
            and (not owned_names or bool(atom.get("resourceNames"))
                 and all(n in owned_names for n in atom.get("resourceNames", []))))


def missing_rules(owned: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The atomic rules of `wanted` that no rule of `owned` covers (Covers' missing rights)."""
    return [atom for rule in wanted for atom in _breakdown(rule)
            if not any(_rule_covers(owner, atom) for owner in owned)]


def _compact(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CompactRules: simple rules (one group, one resource, no names) of the same resource merge their verbs."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    compacted: list[dict[str, Any]] = []
    for rule in rules:
        if rule.get("resources") and not rule.get("resourceNames"):
            key = (rule["apiGroups"][0], rule["resources"][0])
            if key in merged:
                merged[key]["verbs"] += [v for v in rule["verbs"] if v not in merged[key]["verbs"]]
                continue
            merged[key] = dict(rule, verbs=list(rule["verbs"]))
            compacted.append(merged[key])
        else:
            compacted.append(rule)
    return compacted


def _compact_string(rule: Mapping[str, Any]) -> str:
    parts = [f"{label}:{_go_quote_list(rule[key])}" for key, label in
             (("apiGroups", "APIGroups"), ("resources", "Resources"), ("nonResourceURLs", "NonResourceURLs"),
              ("resourceNames", "ResourceNames"), ("verbs", "Verbs")) if rule.get(key)]
    return "{" + ", ".join(parts) + "}"


def _refusal(plural: str, name: str, message: str) -> StatusError:
    return status_error(403, "Forbidden", f'{plural}.{RBAC_GROUP} "{name}" is forbidden: {message}',
                        {"name": name, "group": RBAC_GROUP, "kind": plural})


def _no_escalation(authorizer: Authorizer, user: UserInfo, namespace: str,
                   rules: Sequence[Mapping[str, Any]]) -> str | None:
    """ConfirmNoEscalation: None when the user holds every rule in `namespace`, else upstream's message."""
    missing = missing_rules(authorizer.policy_rules(user, namespace), rules)
    if not missing:
        return None
    descriptions = sorted({_compact_string(rule) for rule in _compact(missing)})
    return (f'user "{user.name}" (groups={_go_quote_list(user.groups)}) is attempting to grant RBAC permissions '
            f"not currently held:\n" + "\n".join(descriptions))


def check_role_write(authorizer: Authorizer, user: UserInfo, kind: str, namespace: str, name: str,
                     obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """Refuse (403) a create or update of a Role or ClusterRole whose rules the user does not hold."""
    if MASTERS in user.groups:
        return
    plural = _ROLE_PLURALS[kind]
    if old is not None and _only_gc_fields_change(obj, old):
        return
    escalate = Attributes("escalate", RBAC_GROUP, plural, namespace=namespace, name=name if old else "")
    if authorizer.authorize(user, escalate).allowed:
        return
    problem = _no_escalation(authorizer, user, namespace, obj.get("rules") or [])
    if problem is not None:
        raise _refusal(plural, name, problem)
    # an aggregationRule can gather anything (and, taken away, stop gathering): it needs * on everything
    if kind == "ClusterRole" and (obj.get("aggregationRule") or (old or {}).get("aggregationRule")):
        if _no_escalation(authorizer, user, "", _FULL_AUTHORITY) is not None:
            raise _refusal(plural, name, "must have cluster-admin privileges to use the aggregationRule")


def check_binding_write(authorizer: Authorizer, user: UserInfo, kind: str, namespace: str, name: str,
                        obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """Refuse (403) a create or update of a (Cluster)RoleBinding to a role whose rules the user does not hold,
    unless the user may `bind` that role (in the binding's namespace; the cluster for a ClusterRoleBinding)."""
    if MASTERS in user.groups:
        return
    plural = "rolebindings" if kind == "RoleBinding" else "clusterrolebindings"
    if old is not None and _only_gc_fields_change(obj, old):
        return
    role_ref = obj.get("roleRef") or {}
    role_kind, role_name = str(role_ref.get("kind", "")), str(role_ref.get("name", ""))
    role_plural = _ROLE_PLURALS.get(role_kind)
    if role_plural is None:
        raise _refusal(plural, name, f'unsupported role reference kind: "{role_kind}"')
    bind = Attributes("bind", str(role_ref.get("apiGroup", RBAC_GROUP)), role_plural, namespace=namespace,
                      name=role_name)
    if authorizer.authorize(user, bind).allowed:
        return
    rules = authorizer.role_rules(role_kind, namespace, role_name)
    if rules is None:  # the rule resolver's lister error, which names the kind in the singular
        singular = role_kind.lower()
        raise status_error(404, "NotFound", f'{singular}.{RBAC_GROUP} "{role_name}" not found',
                           {"name": role_name, "group": RBAC_GROUP, "kind": singular})
    problem = _no_escalation(authorizer, user, namespace, rules)
    if problem is not None:
        raise _refusal(plural, name, problem)


def _only_gc_fields_change(obj: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """IsOnlyMutatingGCFields: only finalizers and ownerReferences differ."""
    def without_gc(o: Mapping[str, Any]) -> dict[str, Any]:
        metadata = {k: v for k, v in (o.get("metadata") or {}).items()
                    if k not in ("finalizers", "ownerReferences", "resourceVersion", "managedFields")}
        return {**{k: v for k, v in o.items() if k != "metadata"}, "metadata": metadata}
    return without_gc(obj) == without_gc(old)
