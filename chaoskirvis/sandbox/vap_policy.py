"""ValidatingAdmissionPolicies and their bindings as the sandbox reads them: defaults, compiled expressions, and
the validation the API server applies when they are written.

Follows kubernetes `pkg/apis/admissionregistration/validation/validation.go` (field paths and wording) and
`v1/defaults.go` (failurePolicy Fail, empty selectors, rule scope "*"; a paramRef's parameterNotFoundAction has
no default in v1, it is required). The sandbox does not store the defaults (it defaults no spec); they are
applied when a policy is read. Validation covers what policy authors get wrong: required fields, supported
values, unique qualified names of matchConditions and auditAnnotation keys, label selector operators, and every
CEL expression, compiled with the variables the API server declares for it (`params` only with a paramKind,
`variables` only where spec.variables are visible, none in matchConditions, `authorizer` everywhere but in
messageExpressions) and checked for the result type the API server requires (bool; a messageExpression string;
an auditAnnotation string or null).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chaoskirvis.sandbox.cel_eval import CelCompileError, Expression, compile_expression
from chaoskirvis.sandbox.resources import find_resource, qualified_name_errors
from chaoskirvis.sandbox.store import Cause, duplicate, forbidden, invalid, required, unsupported
from chaoskirvis.sandbox.vap_matching import MatchResources, compile_match_resources

POLICIES = find_resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies")
BINDINGS = find_resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings")

_FAILURE_POLICIES = ("Fail", "Ignore")
_REASONS = ("Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized")
_ACTIONS = ("Audit", "Deny", "Warn")
_NOT_FOUND_ACTIONS = ("Allow", "Deny")
_OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_CEL_IDENTIFIER = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_CEL_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
                           "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
                           "void", "while"})
_MAX_AUDIT_ANNOTATIONS = 20
_REQUEST_VARIABLES = ("object", "oldObject", "request", "namespaceObject")
# Declared in every expression but messageExpressions (validating/plugin.go: HasAuthorizer false for those).
_AUTHORIZER_VARIABLES = frozenset({"authorizer", "authorizer.requestResource"})


@dataclass(frozen=True)
class Validation:
    expression: Expression
    message: str
    message_expression: Expression | None
    reason: str | None


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy with its defaults applied and its expressions compiled."""

    name: str
    failure_policy: str
    match_constraints: MatchResources
    param_kind: dict[str, str] | None
    match_conditions: tuple[tuple[str, Expression], ...]
    variables: tuple[tuple[str, Expression], ...]
    validations: tuple[Validation, ...]
    audit_annotations: tuple[tuple[str, Expression], ...]


@dataclass(frozen=True)
class _ExpressionSite:
    """Where an expression is in a policy and what it may refer to."""

    path: str
    source: str
    declared: frozenset[str]
    variable_names: tuple[str, ...] = ()
    result_types: tuple[str, ...] = ()  # what the API server allows the result to be (dyn passes)
    defines: str | None = None  # the variable's name, for spec.variables


def _compile_sites(spec: dict[str, Any]) -> dict[str, Expression]:
    """Each expression of the policy compiled by path, in order, so that a variable whose value is an optional is
    known (and written out in full) where later expressions use it; raises CelCompileError."""
    compiled: dict[str, Expression] = {}
    optional_variables: dict[str, str] = {}
    for site in _expression_sites(spec):
        expression = compile_expression(site.source, site.declared, site.variable_names, site.result_types,
                                        optional_variables)
        if site.defines is not None and expression.result_type.startswith("optional_type"):
            optional_variables[site.defines] = expression.compiled_source
        compiled[site.path] = expression
    return compiled


def compile_policy(policy: dict[str, Any]) -> CompiledPolicy:
    """The policy ready to evaluate. Raises CelCompileError for a policy that `validate_policy` refuses."""
    spec = policy.get("spec") or {}
    compiled = _compile_sites(spec)
    validations = spec.get("validations") or []
    return CompiledPolicy(
        name=policy["metadata"]["name"],
        failure_policy=spec.get("failurePolicy") or "Fail",
        match_constraints=compile_match_resources(spec.get("matchConstraints") or {}),
        param_kind=spec.get("paramKind"),
        match_conditions=tuple((condition["name"], compiled[f"spec.matchConditions[{index}].expression"])
                               for index, condition in enumerate(spec.get("matchConditions") or [])),
        variables=tuple((variable["name"], compiled[f"spec.variables[{index}].expression"])
                        for index, variable in enumerate(spec.get("variables") or [])),
        validations=tuple(
            Validation(
                expression=compiled[f"spec.validations[{index}].expression"],
                message=validation.get("message") or "",
                message_expression=compiled.get(f"spec.validations[{index}].messageExpression"),
                reason=validation.get("reason"),
            )
            for index, validation in enumerate(validations)
        ),
        audit_annotations=tuple((annotation.get("key", ""), compiled[f"spec.auditAnnotations[{index}].valueExpression"])
                                for index, annotation in enumerate(spec.get("auditAnnotations") or [])),
    )


def _expression_sites(spec: dict[str, Any]) -> list[_ExpressionSite]:
    """Every non-blank expression of a policy spec, with the variables the API server declares for it.

    `params` only with a paramKind; `variables` in validations, messageExpressions, auditAnnotations and
    later variables when the policy defines any, but not in matchConditions (evaluated before them);
    `authorizer` and `authorizer.requestResource` everywhere but in messageExpressions.
    """
    base = frozenset({*_REQUEST_VARIABLES, *_AUTHORIZER_VARIABLES,
                      *(("params",) if spec.get("paramKind") is not None else ())})
    names = tuple(str(variable.get("name", "")) for variable in spec.get("variables") or [])
    composed = base | {"variables"} if names else base
    sites = [_ExpressionSite(f"spec.matchConditions[{index}].expression", (condition.get("expression") or "").strip(),
                             base, result_types=("bool",))
             for index, condition in enumerate(spec.get("matchConditions") or [])]
    sites += [_ExpressionSite(f"spec.variables[{index}].expression", variable.get("expression") or "", composed,
                              names[:index], defines=names[index])
              for index, variable in enumerate(spec.get("variables") or [])]
    for index, validation in enumerate(spec.get("validations") or []):
        path = f"spec.validations[{index}]"
        sites.append(_ExpressionSite(f"{path}.expression", validation.get("expression") or "", composed, names,
                                     ("bool",)))
        # messageExpression is compiled as written, so that error columns match the source
        sites.append(_ExpressionSite(f"{path}.messageExpression", validation.get("messageExpression") or "",
                                     composed - _AUTHORIZER_VARIABLES, names, ("string",)))
    sites += [_ExpressionSite(f"spec.auditAnnotations[{index}].valueExpression",
                              (annotation.get("valueExpression") or "").strip(), composed, names,
                              ("string", "null_type"))
              for index, annotation in enumerate(spec.get("auditAnnotations") or [])]
    return [site for site in sites if site.source.strip()]  # blank ones are reported as missing


def _expression_errors(spec: dict[str, Any]) -> list[Cause]:
    causes = []
    for site in _expression_sites(spec):
        try:
            compile_expression(site.source, site.declared, site.variable_names, site.result_types)
        except CelCompileError as error:
            causes.append(invalid(site.path, site.source, error.detail))
    return causes


def validate_policy(policy: dict[str, Any]) -> list[Cause]:
    """Field errors of a ValidatingAdmissionPolicy, in the API server's words (empty when it is valid)."""
    spec = policy.get("spec") or {}
    causes: list[Cause] = []
    failure_policy = spec.get("failurePolicy")
    if failure_policy is not None and failure_policy not in _FAILURE_POLICIES:
        causes.append(unsupported("spec.failurePolicy", failure_policy, _FAILURE_POLICIES))
    param_kind = spec.get("paramKind")
    if param_kind is not None:
        causes += [required(f"spec.paramKind.{key}") for key in ("apiVersion", "kind") if not param_kind.get(key)]
    constraints = spec.get("matchConstraints")
    if constraints is None:
        causes.append(required("spec.matchConstraints"))
    else:
        causes += _match_resources_errors(constraints, "spec.matchConstraints")
        if not constraints.get("resourceRules"):
            causes.append(required("spec.matchConstraints.resourceRules"))
    causes += match_condition_errors(spec.get("matchConditions") or [])
    for index, variable in enumerate(spec.get("variables") or []):
        causes += _variable_errors(variable, f"spec.variables[{index}]")
    validations, annotations = spec.get("validations") or [], spec.get("auditAnnotations") or []
    if not validations and not annotations:
        detail = "validations or auditAnnotations must contain at least one item"
        causes += [required("spec.validations", detail), required("spec.auditAnnotations", detail)]
    for index, validation in enumerate(validations):
        causes += _validation_errors(validation, f"spec.validations[{index}]")
    causes += _audit_annotation_errors(str((policy.get("metadata") or {}).get("name") or ""), annotations)
    return causes + _expression_errors(spec)


def validate_binding(binding: dict[str, Any]) -> list[Cause]:
    """Field errors of a ValidatingAdmissionPolicyBinding, in the API server's words (empty when it is valid)."""
    spec = binding.get("spec") or {}
    causes: list[Cause] = [] if spec.get("policyName") else [required("spec.policyName")]
    param_ref = spec.get("paramRef")
    if param_ref is not None:
        causes += _param_ref_errors(param_ref)
    if spec.get("matchResources") is not None:
        causes += _match_resources_errors(spec["matchResources"], "spec.matchResources")
    actions = spec.get("validationActions") or []
    for index, action in enumerate(actions):
        if action not in _ACTIONS:
            causes.append(unsupported(f"spec.validationActions[{index}]", action, _ACTIONS))
        if action in actions[:index]:
            causes.append(duplicate(f"spec.validationActions[{index}]", action))
    if "Deny" in actions and "Warn" in actions:
        causes.append(invalid("spec.validationActions", actions, "must not contain both Deny and Warn (repeating the "
                              "same validation failure information in the API response and headers serves no "
                              "purpose)"))
    if not actions:
        causes.append(required("spec.validationActions", "at least one validation action is required"))
    return causes


def match_condition_errors(conditions: list[dict[str, Any]]) -> list[Cause]:
    """Each needs an expression and a unique qualified name."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for index, condition in enumerate(conditions):
        path, name = f"spec.matchConditions[{index}]", str(condition.get("name") or "")
        if not str(condition.get("expression") or "").strip():
            causes.append(required(f"{path}.expression"))
        if not name:
            causes.append(required(f"{path}.name"))
        causes += [invalid(f"{path}.name", name, message) for message in (qualified_name_errors(name) if name else [])]
        if name in seen:
            causes.append(duplicate(f"{path}.name", name))
        seen.add(name)
    return causes


def _audit_annotation_errors(policy_name: str, annotations: list[dict[str, Any]]) -> list[Cause]:
    """At most 20; each key unique and, after the policy's name and a slash, a qualified name; a valueExpression."""
    causes: list[Cause] = []
    if len(annotations) > _MAX_AUDIT_ANNOTATIONS:
        causes.append(invalid("spec.auditAnnotations", annotations,
                              f"must not have more than {_MAX_AUDIT_ANNOTATIONS} auditAnnotations"))
    seen: set[str] = set()
    for index, annotation in enumerate(annotations):
        path, key = f"spec.auditAnnotations[{index}]", str(annotation.get("key") or "")
        if policy_name:
            causes += [invalid(f"{path}.key", f"{policy_name}/{key}", message)
                       for message in qualified_name_errors(f"{policy_name}/{key}")]
        else:
            causes.append(invalid(f"{path}.key", key, "requires metadata.name be non-empty"))
        if not str(annotation.get("valueExpression") or "").strip():
            causes.append(required(f"{path}.valueExpression", "valueExpression is not specified"))
        if key in seen:
            causes.append(duplicate(f"{path}.key", key))
        seen.add(key)
    return causes


def _validation_errors(validation: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not str(validation.get("expression", "")).strip():
        causes.append(required(f"{path}.expression", "expression is not specified"))
    message_expression = validation.get("messageExpression")
    if message_expression and not message_expression.strip():
        causes.append(invalid(f"{path}.messageExpression", message_expression, "must be non-empty if specified"))
    message = validation.get("message")
    if message and not message.strip():
        causes.append(invalid(f"{path}.message", message, "message must be non-empty if specified"))
    elif message and re.search(r"[\n\r]", message.strip()):
        causes.append(invalid(f"{path}.message", message, "message must not contain line breaks"))
    reason = validation.get("reason")
    if reason is not None and reason not in _REASONS:
        causes.append(unsupported(f"{path}.reason", reason, _REASONS))
    return causes


def _variable_errors(variable: dict[str, Any], path: str) -> list[Cause]:
    name = str(variable.get("name", ""))
    causes: list[Cause] = []
    if not name.strip():
        causes.append(required(f"{path}.name", "name is not specified"))
    elif not _CEL_IDENTIFIER.fullmatch(name) or name in _CEL_RESERVED:
        causes.append(invalid(f"{path}.name", name, "name is not a valid CEL identifier"))
    if not str(variable.get("expression", "")).strip():
        causes.append(required(f"{path}.expression", "expression is not specified"))
    return causes


def _match_resources_errors(match_resources: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for selector_name in ("namespaceSelector", "objectSelector"):
        selector = match_resources.get(selector_name) or {}
        for index, expression in enumerate(selector.get("matchExpressions") or []):
            causes += _selector_requirement_errors(expression, f"{path}.{selector_name}.matchExpressions[{index}]")
    for rules_name in ("resourceRules", "excludeResourceRules"):
        for index, rule in enumerate(match_resources.get(rules_name) or []):
            rule_path = f"{path}.{rules_name}[{index}]"
            causes += [required(f"{rule_path}.{key}") for key in ("operations", "apiGroups", "apiVersions", "resources")
                       if not rule.get(key)]
            causes += [unsupported(f"{rule_path}.operations[{i}]", operation, _OPERATIONS)
                       for i, operation in enumerate(rule.get("operations") or []) if operation not in _OPERATIONS]
    return causes


def _selector_requirement_errors(requirement: dict[str, Any], path: str) -> list[Cause]:
    """metav1validation.ValidateLabelSelectorRequirement."""
    operator, values = requirement.get("operator"), requirement.get("values") or []
    if operator in ("In", "NotIn") and not values:
        return [required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")]
    if operator in ("Exists", "DoesNotExist") and values:
        return [forbidden(f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")]
    if operator not in _SELECTOR_OPERATORS:
        return [invalid(f"{path}.operator", operator, "not a valid selector operator")]
    return []


def _param_ref_errors(param_ref: dict[str, Any]) -> list[Cause]:
    path = "spec.paramRef"
    causes: list[Cause] = []
    if param_ref.get("name") and param_ref.get("selector") is not None:
        causes += [forbidden(f"{path}.{key}", "name and selector are mutually exclusive")
                   for key in ("name", "selector")]
    if not param_ref.get("name") and param_ref.get("selector") is None:
        causes.append(required(path, "one of name or selector must be specified"))
    action = param_ref.get("parameterNotFoundAction")
    if not action:
        causes.append(required(f"{path}.parameterNotFoundAction"))
    elif action not in _NOT_FOUND_ACTIONS:
        causes.append(unsupported(f"{path}.parameterNotFoundAction", action, _NOT_FOUND_ACTIONS))
    return causes


__all__ = ["BINDINGS", "POLICIES", "CompiledPolicy", "Validation", "compile_policy",
           "validate_binding", "validate_policy", "match_condition_errors"]
