"""Gatekeeper ConstraintTemplates with `K8sNativeValidation` (CEL) code, and their Constraints, as the objects
Gatekeeper itself generates: the constraint kind's CRD, a ValidatingAdmissionPolicy per template and a binding
per constraint. The constraints themselves are applied as custom objects, since the policy reads them as params.

Follows open-policy-agent/gatekeeper (3.20 and later, where VAP generation is on by default):
- `pkg/drivers/k8scel/transform/make_vap_objects.go` (TemplateToPolicyDefinition, ConstraintToBinding): the
  policy `gatekeeper-<template>` with paramKind `constraints.gatekeeper.sh/v1beta1` `<Kind>`, matchConstraints
  every resource on CREATE and UPDATE, the template's matchConditions then Gatekeeper's, the variables
  `anyObject` and `params` then the template's, its validations, failurePolicy as the template says (Ignore
  when unset); the binding `gatekeeper-<constraint>` to `gatekeeper-<lowercase kind>`, paramRef the constraint
  with parameterNotFoundAction Allow, the constraint's match.labelSelector as objectSelector and
  match.namespaceSelector as namespaceSelector, and deny -> [Deny], warn -> [Warn], dryrun -> [Audit].
- `pkg/drivers/k8scel/transform/cel_snippets.go`: the match conditions for match.excludedNamespaces,
  match.namespaces, match.name and match.kinds, and the two variables, with their names and meaning
  (`_MATCH_CONDITIONS`, `_VARIABLES`; the expressions are written here, not copied).
- `pkg/drivers/k8scel/schema/schema.go`: the source (validations, variables, `matchCondition`, failurePolicy,
  generateVAP), one target per template, names starting `gatekeeper_internal_` or variables named `params` or
  `anyObject` refused.
- `pkg/controller/constraint/constraint_controller.go` (shouldGenerateVAPB) and `pkg/util`
  (GetEnforcementAction, ScopedActionForEP): enforcementAction defaults to deny; `scoped` takes the actions of
  the scopedEnforcementActions whose enforcementPoints name `vap.k8s.io` or `*` (none: no binding).
- open-policy-agent/frameworks `constraint/pkg/client/crds/crds.go` (CreateCRD): the CRD
  `<lowercase kind>.constraints.gatekeeper.sh`, cluster-scoped, v1beta1 stored and v1alpha1 served; and
  `constraint/pkg/client/client.go`: a template whose name is not its kind in lowercase is refused.

Not carried over: the scope Gatekeeper may copy from its own webhook configuration, Config excludedNamespaces
and exempt-namespace flags (`--sync-vap-enforcement-scope`), which live in the cluster, not in the policy files.
The sandbox serves each version of a CRD apart, so a constraint written at v1alpha1 is applied at v1beta1, the
version the policy's paramKind names (both versions have the same schema).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from chaoskirvis.rehearse.matrix import ManifestError

__all__ = ["TEMPLATES_GROUP", "CONSTRAINTS_GROUP", "translate_gatekeeper"]

TEMPLATES_GROUP, CONSTRAINTS_GROUP = "templates.gatekeeper.sh", "constraints.gatekeeper.sh"
_ENGINE, _RESERVED = "K8sNativeValidation", "gatekeeper_internal_"
_VAP_ENFORCEMENT_POINT, _ALL_ENFORCEMENT_POINTS = "vap.k8s.io", "*"
_ACTIONS = {"deny": "Deny", "warn": "Warn", "dryrun": "Audit"}
_CONSTRAINT_VERSIONS = ("v1beta1", "v1alpha1")

# What a constraint's spec.match becomes: the semantics of cel_snippets.go's match conditions and variables,
# written out here. Each condition holds when its field is unset; a namespace or name pattern may start or end
# with `*` (Gatekeeper's wildcard); cluster-scoped objects pass the namespace conditions; the object checked is
# the new one or the old one (on DELETE only the old one is there).
def _unless_set(field: str, test: str) -> str:
    return f"!has(params.spec) || !has(params.spec.match) || !has(params.spec.match.{field}) || ({test})"


def _on_object_or_old(test: str) -> str:
    """TEST (written with `{o}`) holds for the object or the old object."""
    return f"(object != null && ({test.format(o='object')})) || " \
           f"(oldObject != null && ({test.format(o='oldObject')}))"


def _wildcard(text: str, pattern: str) -> str:
    return f"string({text}).matches('^' + string({pattern}).replace('*', '.*') + '$')"


def _empty_star_or_in(values: str, value: str) -> str:
    return f"(size({values}) == 0 || '*' in {values} || {value} in {values})"


def _in_namespaces(field: str, negated: bool = False) -> str:
    """Cluster-scoped objects pass; a namespaced one passes when one of the patterns of match.FIELD matches its
    namespace (when none does, if negated)."""
    listed = f"params.spec.match.{field}.exists(p, {_wildcard('{o}.metadata.namespace', 'p')})"
    return _unless_set(field, _on_object_or_old(
        f"!has({{o}}.metadata.namespace) || {{o}}.metadata.namespace == '' || {'!' if negated else ''}{listed}"))


_NAME = "params.spec.match.name"
_MATCH_CONDITIONS = [
    {"name": "gatekeeper_internal_match_excluded_namespaces",
     "expression": _in_namespaces("excludedNamespaces", negated=True)},
    {"name": "gatekeeper_internal_match_namespaces", "expression": _in_namespaces("namespaces")},
    {"name": "gatekeeper_internal_match_name", "expression": _unless_set("name", _on_object_or_old(
        f"(has({{o}}.metadata.generateName) && {{o}}.metadata.generateName != '' && {_NAME}.endsWith('*') && "
        f"{_wildcard('{o}.metadata.generateName', _NAME)}) || "
        f"(has({{o}}.metadata.name) && {_wildcard('{o}.metadata.name', _NAME)})"))},
    {"name": "gatekeeper_internal_match_kinds", "expression": _unless_set("kinds", (
        f"params.spec.match.kinds.exists(gk, {_empty_star_or_in('gk.?kinds.orValue([])', 'request.kind.kind')} && "
        f"{_empty_star_or_in('gk.?apiGroups.orValue([])', 'request.kind.group')})"))},
]
_VARIABLES = [
    {"name": "anyObject", "expression": "object == null && request.operation == 'DELETE' ? oldObject : object"},
    {"name": "params", "expression": "has(params.spec) && has(params.spec.parameters) ? params.spec.parameters : null"},
]


def _name(doc: dict[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("name") or "")


def _source(template: dict[str, Any]) -> dict[str, Any] | str:
    """The template's K8sNativeValidation source, or why Gatekeeper generates no policy from it."""
    targets = (template.get("spec") or {}).get("targets") or []
    if len(targets) != 1:
        return (f"Gatekeeper generates a ValidatingAdmissionPolicy only for a template with one target; it has "
                f"{len(targets)}")
    code = [c for c in targets[0].get("code") or [] if isinstance(c, dict)]
    cel = next((c for c in code if c.get("engine") == _ENGINE), None)
    if cel is None:
        engines = [str(c.get("engine")) for c in code] + (["Rego (rego)"] if targets[0].get("rego") else [])
        return f"it has no {_ENGINE} (CEL) code, only {', '.join(engines) or 'none'}; Rego is not rehearsed offline"
    source = cel.get("source")
    if not isinstance(source, dict):
        raise ManifestError(f"ConstraintTemplate {_name(template)}: the {_ENGINE} source is not an object")
    if source.get("generateVAP") is False:
        return "generateVAP is false: Gatekeeper enforces it with its webhook, which is not rehearsed"
    return source


def _policy(template: dict[str, Any], kind: str, source: dict[str, Any]) -> dict[str, Any]:
    name = _name(template)
    conditions = source.get("matchCondition") or []
    variables = source.get("variables") or []
    for condition in conditions:
        if str(condition.get("name", "")).startswith(_RESERVED):
            raise ManifestError(f"ConstraintTemplate {name}: match condition {condition.get('name')!r} may not start "
                                f"with {_RESERVED!r} (Gatekeeper refuses the template)")
    for variable in variables:
        if str(variable.get("name", "")).startswith(_RESERVED) or variable.get("name") in ("params", "anyObject"):
            raise ManifestError(f"ConstraintTemplate {name}: variable {variable.get('name')!r} is reserved by "
                                "Gatekeeper (params, anyObject, gatekeeper_internal_*); Gatekeeper refuses the "
                                "template")
    failure_policy = source.get("failurePolicy", "Ignore")
    if failure_policy not in ("Fail", "Ignore"):
        raise ManifestError(f"ConstraintTemplate {name}: unrecognized failurePolicy {failure_policy!r} "
                            "(Fail or Ignore)")
    validations = [{k: v[k] for k in ("expression", "message", "messageExpression") if v.get(k)}
                   for v in source.get("validations") or []]
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": f"gatekeeper-{name}"},
            "spec": {"paramKind": {"apiVersion": f"{CONSTRAINTS_GROUP}/v1beta1", "kind": kind},
                     "matchConstraints": {"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"],
                                                             "operations": ["CREATE", "UPDATE"], "resources": ["*"]}]},
                     "matchConditions": [*conditions, *_MATCH_CONDITIONS],
                     "validations": validations, "failurePolicy": failure_policy,
                     "variables": [*_VARIABLES, *variables]}}


def _crd(template: dict[str, Any], kind: str) -> dict[str, Any]:
    names = ((template.get("spec") or {}).get("crd") or {}).get("spec", {}).get("names") or {}
    plural = kind.lower()
    labels = dict((template.get("metadata") or {}).get("labels") or {}, **{"gatekeeper.sh/constraint": "yes"})
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{CONSTRAINTS_GROUP}", "labels": labels},
            "spec": {"group": CONSTRAINTS_GROUP, "scope": "Cluster",
                     "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": plural,
                               "categories": ["constraint", "constraints"],
                               **({"shortNames": names["shortNames"]} if names.get("shortNames") else {})},
                     "versions": [{"name": "v1beta1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}},
                                  {"name": "v1alpha1", "served": True, "storage": False,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def _actions(constraint: dict[str, Any]) -> list[str]:
    """The binding's validationActions, [] when Gatekeeper generates no binding for the constraint."""
    spec = constraint.get("spec") or {}
    action = str(spec.get("enforcementAction") or "deny")
    if action == "scoped":
        chosen = [str(scoped.get("action")) for scoped in spec.get("scopedEnforcementActions") or []
                  if any(point.get("name") in (_VAP_ENFORCEMENT_POINT, _ALL_ENFORCEMENT_POINTS)
                         for point in scoped.get("enforcementPoints") or [])]
    else:
        chosen = [action]
    unknown = [a for a in chosen if a not in _ACTIONS]
    if unknown:
        raise ManifestError(f"{constraint.get('kind')} {_name(constraint)}: enforcement action {unknown[0]!r} is "
                            f"none of {', '.join(_ACTIONS)}; Gatekeeper would enforce nothing with it")
    return [_ACTIONS[a] for a in chosen]


def _binding(constraint: dict[str, Any], actions: list[str]) -> dict[str, Any]:
    match = (constraint.get("spec") or {}).get("match") or {}
    resources = {key: match[selector] for key, selector in (("objectSelector", "labelSelector"),
                                                           ("namespaceSelector", "namespaceSelector"))
                 if selector in match}
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": f"gatekeeper-{_name(constraint)}"},
            "spec": {"policyName": f"gatekeeper-{str(constraint.get('kind')).lower()}",
                     "paramRef": {"name": _name(constraint), "parameterNotFoundAction": "Allow"},
                     "matchResources": resources, "validationActions": actions}}


def translate_gatekeeper(documents: list[tuple[Path, dict[str, Any]]]
                         ) -> tuple[list[tuple[Path, dict[str, Any]]], list[tuple[str, str, str]]]:
    """What Gatekeeper generates from the templates and constraints among `documents` (all Gatekeeper documents),
    and (kind, name (file), reason) for each it generates nothing from."""
    kept: list[tuple[Path, dict[str, Any]]] = []
    skipped: list[tuple[str, str, str]] = []
    translated: dict[str, str] = {}  # constraint kind -> template name
    untranslated: dict[str, str] = {}  # constraint kind -> why its template is not
    for file, doc in documents:
        if doc.get("kind") != "ConstraintTemplate" or not str(doc.get("apiVersion")).startswith(TEMPLATES_GROUP + "/"):
            continue
        name = _name(doc)
        kind = str((((doc.get("spec") or {}).get("crd") or {}).get("spec") or {}).get("names", {}).get("kind") or "")
        if not kind or name != kind.lower():
            raise ManifestError(f"{file}: ConstraintTemplate {name}: its name must be the lowercase of its "
                                f"spec.crd.spec.names.kind ({kind or 'missing'}); Gatekeeper refuses it")
        source = _source(doc)
        if isinstance(source, str):
            untranslated[kind] = source
            skipped.append(("ConstraintTemplate", f"{name} ({file})", f"not translated: {source}"))
            continue
        kept += [(file, _crd(doc, kind)), (file, _policy(doc, kind, source))]
        translated[kind] = name
    for file, doc in documents:
        group, _, version = str(doc.get("apiVersion")).partition("/")
        kind, name = str(doc.get("kind")), f"{_name(doc)} ({file})"
        if group == TEMPLATES_GROUP and kind == "ConstraintTemplate":
            continue
        if group != CONSTRAINTS_GROUP:
            skipped.append((kind, name, "Gatekeeper mutation, external data and configuration objects are not "
                                        "rehearsed (only CEL templates and their constraints are)"))
        elif kind in untranslated:
            skipped.append((kind, name, f"its ConstraintTemplate is not translated: {untranslated[kind]}"))
        elif kind not in translated:
            skipped.append((kind, name, f"no ConstraintTemplate for kind {kind} among the manifests"))
        elif version not in _CONSTRAINT_VERSIONS:
            raise ManifestError(f"{file}: {kind} {_name(doc)}: {CONSTRAINTS_GROUP}/{version} is not served; "
                                f"Gatekeeper serves {', '.join(_CONSTRAINT_VERSIONS)}")
        elif not (actions := _actions(doc)):
            skipped.append((kind, name, f"enforcementAction scoped names no {_VAP_ENFORCEMENT_POINT} enforcement "
                                        "point: Gatekeeper generates no binding (its webhook is not rehearsed)"))
        else:
            kept += [(file, dict(doc, apiVersion=f"{CONSTRAINTS_GROUP}/v1beta1")), (file, _binding(doc, actions))]
    return kept, skipped
