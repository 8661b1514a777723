"""Which requests a ValidatingAdmissionPolicy (matchConstraints) or a binding (matchResources) applies to.

Follows kubernetes `staging/src/k8s.io/apiserver/pkg/admission/plugin/policy/matching/matching.go` and the
predicates it uses (`webhook/predicates/rules`, `namespace`, `object`): the namespace selector, then the
object selector, then excludeResourceRules, then resourceRules (any rule, and its resourceNames). The
sandbox serves each resource in one version, so matchPolicy Equivalent and Exact match alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaoskirvis.sandbox.admission import AdmissionRequest
from chaoskirvis.sandbox.resources import NAMESPACES
from chaoskirvis.sandbox.selectors import LabelSelector, label_selector_from_object
from chaoskirvis.sandbox.store import Store


@dataclass(frozen=True)
class MatchResources:
    """MatchResources with its selectors parsed, read once per policy or binding version."""

    namespace_selector: LabelSelector
    object_selector: LabelSelector
    resource_rules: tuple[dict[str, Any], ...]
    exclude_resource_rules: tuple[dict[str, Any], ...]


def compile_match_resources(match_resources: dict[str, Any]) -> MatchResources:
    return MatchResources(label_selector_from_object(match_resources.get("namespaceSelector") or {}),
                          label_selector_from_object(match_resources.get("objectSelector") or {}),
                          tuple(match_resources.get("resourceRules") or ()),
                          tuple(match_resources.get("excludeResourceRules") or ()))


def attribute_namespace(request: AdmissionRequest) -> str:
    """The request's namespace as admission attributes carry it: a Namespace object's own name, "" if cluster-scoped."""
    return request.name if request.resource == NAMESPACES else request.namespace or ""


def matches(match_resources: MatchResources, request: AdmissionRequest, store: Store) -> bool:
    """Whether the request is selected by these MatchResources (an empty resourceRules selects every resource)."""
    return (_namespace_selected(match_resources.namespace_selector, request, store)
            and _object_selected(match_resources.object_selector, request)
            and not _any_rule_matches(match_resources.exclude_resource_rules, request)
            and (not match_resources.resource_rules or _any_rule_matches(match_resources.resource_rules, request)))


def _namespace_selected(parsed: LabelSelector, request: AdmissionRequest, store: Store) -> bool:
    """Cluster-scoped objects other than namespaces are always selected; a namespace is judged by its own labels."""
    if (request.resource != NAMESPACES and not request.namespace) or parsed.empty:
        return True
    if request.resource == NAMESPACES and request.operation in ("CREATE", "UPDATE"):
        labels = _labels(request.object)
    else:
        labels = _labels(store.get(NAMESPACES, None, attribute_namespace(request)))
    return parsed.matches(labels)


def _object_selected(parsed: LabelSelector, request: AdmissionRequest) -> bool:
    """Selected when the new or the old object matches; a missing object matches nothing."""
    if parsed.empty:
        return True
    return any(obj is not None and parsed.matches(_labels(obj)) for obj in (request.object, request.old_object))


def _any_rule_matches(rules: tuple[dict[str, Any], ...], request: AdmissionRequest) -> bool:
    for rule in rules:
        names = rule.get("resourceNames") or []
        if _rule_matches(rule, request) and (not names or request.name in names):
            return True
    return False


def _rule_matches(rule: dict[str, Any], request: AdmissionRequest) -> bool:
    resource = request.resource
    return (_scope_matches(rule.get("scope") or "*", request)
            and _listed(rule.get("operations") or [], request.operation)
            and _listed(rule.get("apiGroups") or [], resource.group)
            and _listed(rule.get("apiVersions") or [], resource.version)
            and any(_resource_matches(entry, resource.plural, request.subresource or "")
                    for entry in rule.get("resources") or []))


def _scope_matches(scope: str, request: AdmissionRequest) -> bool:
    if scope == "Namespaced":
        return request.resource != NAMESPACES and bool(attribute_namespace(request))
    if scope == "Cluster":
        return request.resource == NAMESPACES or not attribute_namespace(request)
    return scope == "*"


def _listed(items: list[str], requested: str) -> bool:
    return "*" in items or requested in items


def _resource_matches(entry: str, plural: str, subresource: str) -> bool:
    """`pods` is the resource only, `pods/*` its subresources, `*` every resource, `*/*` everything."""
    name, _, sub = entry.partition("/")
    return name in ("*", plural) and sub in ("*", subresource)


def _labels(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


__all__ = ["MatchResources", "attribute_namespace", "compile_match_resources", "matches"]
