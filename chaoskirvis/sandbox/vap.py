"""ValidatingAdmissionPolicy admission: the policies and bindings stored in the sandbox, enforced with CEL.

Follows kubernetes `staging/src/k8s.io/apiserver/pkg/admission/plugin/policy/validating/` (`dispatcher.go`,
`validator.go`) and `generic/policy_dispatcher.go` (`CollectParams`):

- For each policy with bindings (by name) whose matchConstraints select the request, each binding (by name)
  whose matchResources select it, and each param the binding selects: the matchConditions (any false: skip;
  an error and none false: failurePolicy), then the validations. Variables are evaluated in order; one that
  fails only fails the expressions that use it.
- A validation that is not true is a failure with its message: messageExpression (a trimmed one-line
  string), else message, else ``failed expression: EXPR``. An expression error is a failure with
  ``expression 'EXPR' resulted in error: ERROR`` under failurePolicy Fail, and nothing under Ignore.
- A failure is enforced by the binding's validationActions: Deny refuses the request, Warn adds the warning
  ``Validation failed for ValidatingAdmissionPolicy 'P' with binding 'B': MESSAGE``, Audit does nothing
  here (the sandbox keeps no audit log).
- auditAnnotations are evaluated too (the sandbox keeps no audit log, so their values go nowhere): under
  failurePolicy Fail, one that errors, or gives neither a string nor null (``valueExpression 'EXPR' resulted
  in unsupported return type: TYPE. Return type must be either string or null.``), refuses the request
  whatever the actions.
- The expressions see `authorizer` and `authorizer.requestResource` (not in messageExpressions): their checks
  ask RBAC as the request's user (or a service account), answered by the plugin's authorizer (`cel_authorizer`).
- A configuration error (a paramKind the sandbox does not serve, neither built in nor by a stored CRD
  (`custom_resources`); a missing param with parameterNotFoundAction Deny) refuses the request under
  failurePolicy Fail, whatever the actions.
- The first refusal answers: ``RESOURCE "NAME" is forbidden: ValidatingAdmissionPolicy 'P' with binding 'B'
  denied request: MESSAGE``, with the validation's reason (Invalid, 422, when unset; Forbidden 403,
  Unauthorized 401, RequestEntityTooLarge 413) and that message as the Status's one cause.

Policies and bindings themselves are never subject to policies; when they are written, this plugin
validates them instead (`vap_policy`), answering 422 Invalid with the field errors.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from chaoskirvis.sandbox import cel_authorizer, custom_resources
from chaoskirvis.sandbox.admission import ALLOWED, AdmissionRequest, AdmissionResult, Denial
from chaoskirvis.sandbox.cel_eval import Activation, CelEvaluationError, Expression, activation, cel_type_name
from chaoskirvis.sandbox.rbac import Authorizer, UserInfo
from chaoskirvis.sandbox.resources import NAMESPACES, ResourceType, find_by_kind
from chaoskirvis.sandbox.selectors import label_selector_from_object
from chaoskirvis.sandbox.store import Cause, Store, apply_events
from chaoskirvis.sandbox.vap_matching import MatchResources, attribute_namespace, compile_match_resources, matches
from chaoskirvis.sandbox.vap_policy import (
    BINDINGS,
    POLICIES,
    CompiledPolicy,
    Validation,
    compile_policy,
    validate_binding,
    validate_policy,
)

_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}
_MAX_MESSAGE_BYTES = 5 * 1024  # celconfig.MaxEvaluatedMessageExpressionSizeBytes
# The namespace fields a policy sees as namespaceObject (CreateNamespaceObject).
_NAMESPACE_METADATA = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation",
                       "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
                       "annotations")


@dataclass(frozen=True)
class _Failure:
    """A refusal by one policy (and binding): its message and Status reason."""

    policy: str
    binding: str | None
    message: str
    reason: str = "Invalid"

    @property
    def text(self) -> str:
        by = f"with binding '{self.binding}' " if self.binding else ""
        return f"ValidatingAdmissionPolicy '{self.policy}' {by}denied request: {self.message}"


@dataclass(frozen=True)
class _Binding:
    """A binding as the dispatcher reads it: its name, spec and parsed matchResources."""

    name: str
    spec: dict[str, Any]
    match_resources: MatchResources

    @classmethod
    def of(cls, binding: dict[str, Any]) -> _Binding:
        spec = binding.get("spec") or {}
        return cls(binding["metadata"]["name"], spec, compile_match_resources(spec.get("matchResources") or {}))


class _ConfigurationError(Exception):
    """A binding whose params cannot be collected; the message is upstream's."""


class ValidatingAdmissionPolicyAdmission:
    """The admission plugin; see the module docstring."""

    name = "ValidatingAdmissionPolicy"

    def __init__(self, authorizer: Authorizer) -> None:
        """`authorizer` answers the expressions' authorizer checks: the API server's own."""
        self._authorizer = authorizer
        self._informer: _Informer | None = None
        self._compiled: dict[tuple[str, str], CompiledPolicy | _Binding] = {}
        self._bound: list[tuple[CompiledPolicy, list[_Binding]]] = []

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        if request.resource in (POLICIES, BINDINGS):
            return _validate_configuration(request)
        failures: list[_Failure] = []
        warnings: list[str] = []
        variables: _RequestVariables | None = None
        with cel_authorizer.answered_by(lambda: self._authorizer):
            for policy, bindings in self._bound_policies(store):
                if matches(policy.match_constraints, request, store):
                    variables = variables or _RequestVariables(request, store)
                    policy_failures, policy_warnings = _dispatch(policy, bindings, request, store, variables)
                    failures += policy_failures
                    warnings += policy_warnings
        if not failures:
            return AdmissionResult(warnings=tuple(warnings))
        first = failures[0]
        message = f'{request.resource.group_resource} "{_subject_name(request)}" is forbidden: {first.text}'
        return AdmissionResult(tuple(warnings), Denial(_CODES.get(first.reason, 422), first.reason, message,
                                                       (Cause("", "", first.text),)))

    def _bound_policies(self, store: Store) -> list[tuple[CompiledPolicy, list[_Binding]]]:
        """Each stored policy that has bindings, compiled once per resourceVersion, with its bindings by name.

        Recomputed only when a policy or binding changed since the last request (the informer says so)."""
        if self._informer is None or self._informer.store is not store:
            self._informer = _Informer(store)
        if not self._informer.refresh():
            return self._bound
        compiled: dict[tuple[str, str], CompiledPolicy | _Binding] = {}

        def read(obj: dict[str, Any], build: Any) -> Any:
            key = (obj["metadata"]["uid"], obj["metadata"]["resourceVersion"])
            compiled[key] = self._compiled.get(key) or build(obj)
            return compiled[key]

        bindings_by_policy: dict[str, list[_Binding]] = {}
        for binding in self._informer.objects(BINDINGS):
            bindings_by_policy.setdefault((binding.get("spec") or {}).get("policyName", ""), []).append(
                read(binding, _Binding.of))
        self._bound = [(read(policy, compile_policy), bindings_by_policy[policy["metadata"]["name"]])
                       for policy in self._informer.objects(POLICIES)
                       if policy["metadata"]["name"] in bindings_by_policy]
        self._compiled = compiled
        return self._bound


class _Informer:
    """The policies and bindings of a store, kept current from its watch events, as the API server's informers
    keep them: listed once, then each write of a policy or binding arrives as an event (objects read, never
    changed), so that a request costs nothing when none changed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._subscriptions = [store.subscribe(POLICIES), store.subscribe(BINDINGS)]  # before listing: none missed
        self._objects = {resource: {obj["metadata"]["name"]: obj for obj in store.list(resource)}
                         for resource in (POLICIES, BINDINGS)}
        self._changed = True

    def refresh(self) -> bool:
        """Apply the events that arrived; whether anything changed since the last refresh."""
        changed, self._changed = self._changed, False
        return bool(apply_events(self._subscriptions, self._objects)) or changed

    def objects(self, resource: ResourceType) -> list[dict[str, Any]]:
        """The current objects of the resource, by name."""
        return [self._objects[resource][name] for name in sorted(self._objects[resource])]


class _RequestVariables:
    """What every policy sees of one request (object, oldObject, request, namespaceObject, authorizer and
    authorizer.requestResource), built once."""

    def __init__(self, request: AdmissionRequest, store: Store) -> None:
        namespace = attribute_namespace(request)
        namespace_object = store.get(NAMESPACES, None, namespace) if namespace and request.resource != NAMESPACES \
            else None
        self.values = {
            "object": request.object,
            "oldObject": request.old_object,
            "request": admission_request(request),
            "namespaceObject": _namespace_object(namespace_object),
            **authorizer_variables(request),
        }
        self._without_params: Activation | None = None

    def bound(self, param: dict[str, Any] | None) -> Activation:
        """The variables (and params) bound for evaluation; without params, bound once for every policy."""
        if param is not None:
            return activation({**self.values, "params": param})
        if self._without_params is None:
            self._without_params = activation({**self.values, "params": None})
        return self._without_params


def _dispatch(policy: CompiledPolicy, bindings: list[_Binding], request: AdmissionRequest, store: Store,
              variables: _RequestVariables) -> tuple[list[_Failure], list[str]]:
    """The refusals and warnings of one matching policy through each of its bindings that selects the request."""
    fail_closed = policy.failure_policy == "Fail"
    param_resource = None
    if policy.param_kind is not None:
        api_version, kind = policy.param_kind.get("apiVersion", ""), policy.param_kind.get("kind", "")
        param_resource = find_by_kind(api_version, kind) or custom_resources.find_kind(store, api_version, kind)
        if param_resource is None:
            message = f"failed to configure policy: failed to find resource referenced by paramKind: " \
                      f"'{_gvk(policy.param_kind)}'"
            return ([_Failure(policy.name, None, message)] if fail_closed else []), []
    failures: list[_Failure] = []
    warnings: list[str] = []
    evaluator = _Evaluator(policy, variables)
    for binding in bindings:
        spec, binding_name = binding.spec, binding.name
        if not matches(binding.match_resources, request, store):
            continue
        try:
            params = _collect_params(param_resource, spec.get("paramRef"), request, store)
        except _ConfigurationError as error:
            if fail_closed:
                failures.append(_Failure(policy.name, binding_name, f"failed to configure binding: {error}"))
            continue
        actions = spec.get("validationActions") or []
        for param in params:
            validation_failures, audit_errors = evaluator.judge(param)
            for message, reason in validation_failures:
                if "Deny" in actions:
                    failures.append(_Failure(policy.name, binding_name, message, reason))
                if "Warn" in actions:
                    warnings.append(f"Validation failed for ValidatingAdmissionPolicy '{policy.name}' with binding "
                                    f"'{binding_name}': {message}")
            failures += [_Failure(policy.name, binding_name, message) for message in audit_errors]
    return failures, warnings


class _Evaluator:
    """Evaluates one policy for one request, with each param in turn."""

    def __init__(self, policy: CompiledPolicy, variables: _RequestVariables) -> None:
        self.policy = policy
        self.request = variables

    def judge(self, param: dict[str, Any] | None) -> tuple[list[tuple[str, str]], list[str]]:
        """(message, reason) of each failed validation (or of the failed matchConditions), and the errors of the
        auditAnnotations, which deny under failurePolicy Fail whatever the binding's validationActions."""
        context = self.request.bound(param)
        fail_closed = self.policy.failure_policy == "Fail"
        errors = []
        for _, condition in self.policy.match_conditions:
            try:
                if condition.evaluate(context) is False:
                    return [], []
            except CelEvaluationError as error:
                errors.append(_error_message(condition, error.message))
        if errors:
            return ([((errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"), "Invalid")] if fail_closed
                    else []), []
        variable_errors, context = self._bind_variables(param, context)
        failures = []
        for validation in self.policy.validations:
            try:
                valid = validation.expression.evaluate(context) is True
            except CelEvaluationError as error:
                if fail_closed:
                    cause = _cause(validation.expression, error, variable_errors)
                    failures.append((_error_message(validation.expression, cause), "Invalid"))
                continue
            if not valid:
                failures.append((_failure_message(validation, context), validation.reason or "Invalid"))
        audit_errors = [error for _, expression in self.policy.audit_annotations
                        if (error := _audit_annotation_error(expression, context, variable_errors))] if fail_closed \
            else []
        return failures, audit_errors

    def _bind_variables(self, param: dict[str, Any] | None, context: Activation) -> tuple[dict[str, str], Activation]:
        """Evaluate spec.variables in order into `variables`: the errors of those that failed, and the context
        with them bound."""
        if not self.policy.variables:
            return {}, context
        values = {**self.request.values, "params": param}
        variables: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, expression in self.policy.variables:
            if expression.result_type.startswith("optional_type"):
                continue  # written out in full where it is used (cel_eval.compile_expression)
            try:
                variables[name] = expression.evaluate(activation({**values, "variables": variables}))
            except CelEvaluationError as error:
                errors[name] = _cause(expression, error, errors)
        return errors, activation({**values, "variables": variables})


def _audit_annotation_error(expression: Expression, context: Activation, variable_errors: dict[str, str]) -> str:
    """Why an auditAnnotation's value cannot be published ("" when it can: a string, or null to omit it)."""
    try:
        value = expression.evaluate(context)
    except CelEvaluationError as error:
        return _error_message(expression, _cause(expression, error, variable_errors))
    if value is None or isinstance(value, str):
        return ""
    return (f"valueExpression '{expression.source}' resulted in unsupported return type: {cel_type_name(value)}. "
            "Return type must be either string or null.")


def _cause(expression: Expression, error: CelEvaluationError, variable_errors: dict[str, str]) -> str:
    """The error's message, or, when it is a variable that failed, that variable's error (as lazy evaluation gives)."""
    key = error.missing_key
    if key in variable_errors and re.search(rf"\bvariables\s*\.\s*{re.escape(key)}\b", expression.source):
        return variable_errors[key]
    return error.message


def _error_message(expression: Expression, error: str) -> str:
    return f"expression '{expression.source}' resulted in error: {error}"


def _failure_message(validation: Validation, context: Activation) -> str:
    """messageExpression's result when it is a usable string, else the message, else the expression."""
    if validation.message_expression is not None:
        try:
            result = validation.message_expression.evaluate(context)
        except CelEvaluationError:
            result = None  # the API server logs it and falls back
        if isinstance(result, str):
            text = result.strip()
            if text and "\n" not in text and len(text.encode()) <= _MAX_MESSAGE_BYTES:
                return text
    return validation.message.strip() or f"failed expression: {validation.expression.source.strip()}"


def _collect_params(resource: ResourceType | None, param_ref: dict[str, Any] | None, request: AdmissionRequest,
                    store: Store) -> list[dict[str, Any] | None]:
    """The params a binding selects ([None] without paramKind or paramRef); raises _ConfigurationError."""
    if resource is None or param_ref is None:
        return [None]
    namespace = param_ref.get("namespace") or ""
    if resource.namespaced:
        namespace = namespace or attribute_namespace(request)
        if not namespace:
            raise _ConfigurationError("cannot use namespaced paramRef in policy binding that matches cluster-scoped "
                                      "resources")
    elif namespace:
        raise _ConfigurationError("paramRef.namespace must not be provided for a cluster-scoped `paramKind`")
    if param_ref.get("name"):
        found = store.get(resource, namespace or None, param_ref["name"])
        params = [found] if found is not None else []
    else:
        selector = label_selector_from_object(param_ref.get("selector") or {})
        params = [obj for obj in store.list(resource, namespace or None)
                  if selector.matches((obj.get("metadata") or {}).get("labels"))]
    if not params and param_ref.get("parameterNotFoundAction") == "Deny":
        raise _ConfigurationError("no params found for policy binding with `Deny` parameterNotFoundAction")
    return [{"apiVersion": resource.api_version, "kind": resource.kind, **param} for param in params]


def admission_request(request: AdmissionRequest) -> dict[str, Any]:
    """The `request` variable: the AdmissionRequest a webhook would get, without the objects and the uid (which
    Kubernetes' declared type for it omits)."""
    resource = request.resource
    kind = {"group": resource.group, "version": resource.version, "kind": resource.kind}
    gvr = {"group": resource.group, "version": resource.version, "resource": resource.plural}
    admission_request: dict[str, Any] = {
        "kind": kind, "resource": gvr, "requestKind": dict(kind),
        "requestResource": dict(gvr), "operation": request.operation, "userInfo": _user_info(request),
        "dryRun": request.dry_run,
    }
    if request.subresource:
        admission_request["subResource"] = admission_request["requestSubResource"] = request.subresource
    if request.name:
        admission_request["name"] = request.name
    if attribute_namespace(request):
        admission_request["namespace"] = attribute_namespace(request)
    return admission_request


def authorizer_variables(request: AdmissionRequest) -> dict[str, Any]:
    """`authorizer` (checks as the request's user) and `authorizer.requestResource` (the request's resource, as
    admission attributes carry it: the name may be empty on a create)."""
    user = UserInfo(request.user, request.uid, request.groups)
    resource = request.resource
    return {"authorizer": cel_authorizer.authorizer_value(user),
            "authorizer.requestResource": cel_authorizer.request_resource_value(
                user, resource.group, resource.plural, request.subresource or "", attribute_namespace(request),
                request.name)}


def _user_info(request: AdmissionRequest) -> dict[str, Any]:
    """authentication/v1 UserInfo as the authenticator filled it in (uid and groups are omitempty)."""
    info: dict[str, Any] = {"username": request.user}
    if request.uid:
        info["uid"] = request.uid
    if request.groups:
        info["groups"] = list(request.groups)
    return info


def _namespace_object(namespace: dict[str, Any] | None) -> dict[str, Any] | None:
    if namespace is None:
        return None
    metadata = {key: value for key, value in namespace["metadata"].items() if key in _NAMESPACE_METADATA}
    return {"metadata": metadata, "spec": copy.deepcopy(namespace.get("spec") or {}),
            "status": copy.deepcopy(namespace.get("status") or {})}


def _subject_name(request: AdmissionRequest) -> str:
    """admission.NewForbidden's name: the request's, else the object's generateName, else "Unknown"."""
    if request.name:
        return request.name
    return ((request.object or {}).get("metadata") or {}).get("generateName") or "Unknown"


def _gvk(param_kind: dict[str, str]) -> str:
    """schema.GroupVersionKind.String(): 'GROUP/VERSION, Kind=KIND'."""
    group, _, version = param_kind.get("apiVersion", "").rpartition("/")
    return f"{group}/{version}, Kind={param_kind.get('kind', '')}"


def _validate_configuration(request: AdmissionRequest) -> AdmissionResult:
    if request.operation == "DELETE" or request.object is None:
        return ALLOWED
    causes = validate_policy(request.object) if request.resource == POLICIES else validate_binding(request.object)
    if not causes:
        return ALLOWED
    summary = str(causes[0]) if len(causes) == 1 else "[" + ", ".join(str(c) for c in causes) + "]"
    message = f'{request.resource.kind} "{request.name}" is invalid: {summary}'
    return AdmissionResult(denial=Denial(422, "Invalid", message, tuple(causes)))


__all__ = ["ValidatingAdmissionPolicyAdmission", "admission_request", "authorizer_variables"]
