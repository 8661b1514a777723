"""Kubernetes' CEL authorizer library (apiserver `pkg/cel/library/authz.go`) for the sandbox's admission policies.

``authorizer.path(p).check(verb)``, ``authorizer.group(g).resource(r)`` with ``.subresource(s)``,
``.namespace(ns)``, ``.name(n)``, ``.fieldSelector(s)``, ``.labelSelector(s)`` and ``.check(verb)``,
``authorizer.serviceAccount(ns, name)`` (an authorizer for that service account: the user
``system:serviceaccount:NS:NAME`` with the groups ``system:serviceaccounts`` and ``system:serviceaccounts:NS``,
as ServiceAccountInfo.UserInfo gives, without ``system:authenticated``), ``authorizer.requestResource`` (the
request's group, resource, subresource, namespace and name), and the decision's ``allowed()``, ``reason()``,
``errored()``, ``error()``. Errors in upstream's words: ``path must not be empty``, ``resource must not be
empty``, ``Invalid service account name``, ``Invalid service account namespace``. A resource check asks for
API version ``*``; its selectors reach the authorizer, which (RBAC) ignores them, as upstream's does.

Two forms, because CEL C++'s Python wrapper cannot carry an opaque value through Python:

- `DECLARATIONS` and `VARIABLE_TYPES` type-check expressions with upstream's types
  (``kubernetes.authorization.Authorizer``, ``PathCheck``, ``GroupCheck``, ``ResourceCheck``, ``Decision``), so
  that ``authorizer.resource('pods')`` is refused when the policy is written, in the checker's words (but for
  ``check``, declared on dyn: CEL C++ refuses two overloads whose receivers are both opaque types, so a check
  on what is neither a PathCheck nor a ResourceCheck is refused when evaluated, ``no such overload``);
- `LIBRARY` evaluates them, each value a one-entry map from its type name to its fields in JSON (as
  `cel_kubernetes_values` carries quantities), each function checking the kind of what it is given.

The wrapper also takes function implementations when an environment is built, not per evaluation, so a check
asks the RBAC authorizer bound for the request being admitted (`answered_by`), as upstream's authorizer value
holds the API server's authorizer. Decisions are cached for the request, as the validating plugin's
caching authorizer does.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Callable, Iterator
from typing import Any

from cel_expr_python import cel

from chaoskirvis.sandbox.rbac import (
    Attributes,
    Authorizer,
    Decision,
    UserInfo,
    service_account_groups,
    service_account_user,
)
from chaoskirvis.sandbox.resources import dns_label_errors, dns_subdomain_errors

AUTHORIZER = "kubernetes.authorization.Authorizer"
PATH_CHECK = "kubernetes.authorization.PathCheck"
GROUP_CHECK = "kubernetes.authorization.GroupCheck"
RESOURCE_CHECK = "kubernetes.authorization.ResourceCheck"
DECISION = "kubernetes.authorization.Decision"

_S, _B = cel.Type.STRING, cel.Type.BOOL
_TYPES = {name: cel.Type.AbstractType(name) for name in (AUTHORIZER, PATH_CHECK, GROUP_CHECK, RESOURCE_CHECK,
                                                           DECISION)}
# What each function is declared with upstream: overload id, receiver, arguments, result.
_SIGNATURES: dict[str, list[tuple[str, str, tuple[str, ...], str]]] = {
    "path": [("authorizer_path", AUTHORIZER, ("string",), PATH_CHECK)],
    "group": [("authorizer_group", AUTHORIZER, ("string",), GROUP_CHECK)],
    "serviceAccount": [("authorizer_serviceaccount", AUTHORIZER, ("string", "string"), AUTHORIZER)],
    "resource": [("groupcheck_resource", GROUP_CHECK, ("string",), RESOURCE_CHECK)],
    "subresource": [("resourcecheck_subresource", RESOURCE_CHECK, ("string",), RESOURCE_CHECK)],
    "namespace": [("resourcecheck_namespace", RESOURCE_CHECK, ("string",), RESOURCE_CHECK)],
    "name": [("resourcecheck_name", RESOURCE_CHECK, ("string",), RESOURCE_CHECK)],
    "fieldSelector": [("authorizer_fieldselector", RESOURCE_CHECK, ("string",), RESOURCE_CHECK)],
    "labelSelector": [("authorizer_labelselector", RESOURCE_CHECK, ("string",), RESOURCE_CHECK)],
    # upstream: pathcheck_check and resourcecheck_check; CEL C++ takes any two opaque receivers for colliding
    "check": [("check", "dyn", ("string",), DECISION)],
    "errored": [("decision_errored", DECISION, (), "bool")],
    "error": [("decision_error", DECISION, (), "string")],
    "allowed": [("decision_allowed", DECISION, (), "bool")],
    "reason": [("decision_reason", DECISION, (), "string")],
}
# The variables the API server declares with the library (plugin/cel/compile.go).
VARIABLE_TYPES = {"authorizer": _TYPES[AUTHORIZER], "authorizer.requestResource": _TYPES[RESOURCE_CHECK]}


def _declared_type(name: str) -> cel.Type:
    return {"string": _S, "bool": _B, "dyn": cel.Type.DYN}.get(name) or _TYPES[name]


# Given to an environment as functions: as an extension's, the wrapper declares their results dyn.
DECLARATIONS = [
    cel.FunctionDecl(function, [cel.Overload(overload, _declared_type(result),
                                             [_declared_type(receiver), *map(_declared_type, arguments)],
                                             is_member=True)
                                for overload, receiver, arguments, result in overloads])
    for function, overloads in _SIGNATURES.items()
]


class _Checks:
    """The RBAC authorizer the checks of one request ask (found at the first check), with the decisions already
    made for it."""

    def __init__(self, authorizer: Callable[[], Authorizer]) -> None:
        self._authorizer = authorizer
        self._decisions: dict[tuple[str, str, tuple[str, ...], Attributes], Decision] = {}

    def decide(self, user: UserInfo, attributes: Attributes) -> Decision:
        key = (user.name, user.uid, user.groups, attributes)
        if key not in self._decisions:
            self._decisions[key] = self._authorizer().authorize(user, attributes)
        return self._decisions[key]


_CURRENT: contextvars.ContextVar[_Checks | None] = contextvars.ContextVar("cel_authorizer_checks", default=None)


@contextlib.contextmanager
def answered_by(authorizer: Callable[[], Authorizer]) -> Iterator[None]:
    """Within this block (one request's admission), the expressions' checks ask the authorizer `authorizer()`
    gives, called at the first check only."""
    token = _CURRENT.set(_Checks(authorizer))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _user_fields(user: UserInfo) -> dict[str, Any]:
    return {"user": user.name, "uid": user.uid, "groups": list(user.groups)}


def _encode(kind: str, fields: dict[str, Any]) -> dict[str, str]:
    return {kind: json.dumps(fields, separators=(",", ":"))}


def authorizer_value(user: UserInfo) -> dict[str, str]:
    """The `authorizer` variable for a request made by `user`."""
    return _encode(AUTHORIZER, _user_fields(user))


def request_resource_value(user: UserInfo, group: str, resource: str, subresource: str, namespace: str,
                           name: str) -> dict[str, str]:
    """The `authorizer.requestResource` variable: a ResourceCheck of the request's own resource (as
    NewResourceAuthorizerVal builds it from the admission attributes)."""
    return _encode(RESOURCE_CHECK, {**_user_fields(user), "group": group, "resource": resource,
                                    "subresource": subresource, "namespace": namespace, "name": name,
                                    "fieldSelector": "", "labelSelector": ""})


def _fields(value: Any, *kinds: str) -> tuple[str, dict[str, Any]]:
    if isinstance(value, dict) and len(value) == 1:
        kind = next(iter(value))
        if kind in kinds:
            return kind, json.loads(value[kind])
    raise ValueError("no such overload")


def _user(fields: dict[str, Any]) -> UserInfo:
    return UserInfo(fields["user"], fields["uid"], tuple(fields["groups"]))


def _path(authorizer: Any, path: str) -> dict[str, str]:
    _, fields = _fields(authorizer, AUTHORIZER)
    if not path.strip():
        raise ValueError("path must not be empty")
    return _encode(PATH_CHECK, {**fields, "path": path})


def _group(authorizer: Any, group: str) -> dict[str, str]:
    _, fields = _fields(authorizer, AUTHORIZER)
    return _encode(GROUP_CHECK, {**fields, "group": group})


def _service_account(authorizer: Any, namespace: str, name: str) -> dict[str, str]:
    _fields(authorizer, AUTHORIZER)
    if dns_subdomain_errors(name):
        raise ValueError("Invalid service account name")
    if dns_label_errors(namespace):
        raise ValueError("Invalid service account namespace")
    return authorizer_value(UserInfo(service_account_user(namespace, name), "", service_account_groups(namespace)))


def _resource(group_check: Any, resource: str) -> dict[str, str]:
    _, fields = _fields(group_check, GROUP_CHECK)
    if not resource.strip():
        raise ValueError("resource must not be empty")
    return _encode(RESOURCE_CHECK, {**fields, "resource": resource, "subresource": "", "namespace": "", "name": "",
                                    "fieldSelector": "", "labelSelector": ""})


def _setter(key: str) -> Any:
    def set_field(resource_check: Any, value: str) -> dict[str, str]:
        _, fields = _fields(resource_check, RESOURCE_CHECK)
        return _encode(RESOURCE_CHECK, {**fields, key: value})
    return set_field


def _check(target: Any, verb: str) -> dict[str, str]:
    kind, fields = _fields(target, PATH_CHECK, RESOURCE_CHECK)
    checks = _CURRENT.get()
    if checks is None:
        raise ValueError("the sandbox has no authorizer bound for this evaluation")
    if kind == PATH_CHECK:
        attributes = Attributes(verb=verb, path=fields["path"])
    else:
        attributes = Attributes(verb=verb, group=fields["group"], resource=fields["resource"],
                                subresource=fields["subresource"], namespace=fields["namespace"], name=fields["name"])
    decision = checks.decide(_user(fields), attributes)
    return _encode(DECISION, {"allowed": decision.allowed, "reason": decision.reason, "error": ""})


def _decision_field(key: str) -> Any:
    def read(decision: Any) -> Any:
        return _fields(decision, DECISION)[1][key]
    return read


def _errored(decision: Any) -> bool:
    return bool(_fields(decision, DECISION)[1]["error"])


_OPAQUE = cel.Type.Map(_S, _S)
# One overload per function at run time: receivers are maps here, so `check` tells a path from a resource itself.
_IMPLEMENTATIONS: dict[str, tuple[Any, tuple[cel.Type, ...], cel.Type]] = {
    "path": (_path, (_S,), _OPAQUE),
    "group": (_group, (_S,), _OPAQUE),
    "serviceAccount": (_service_account, (_S, _S), _OPAQUE),
    "resource": (_resource, (_S,), _OPAQUE),
    "subresource": (_setter("subresource"), (_S,), _OPAQUE),
    "namespace": (_setter("namespace"), (_S,), _OPAQUE),
    "name": (_setter("name"), (_S,), _OPAQUE),
    "fieldSelector": (_setter("fieldSelector"), (_S,), _OPAQUE),
    "labelSelector": (_setter("labelSelector"), (_S,), _OPAQUE),
    "check": (_check, (_S,), _OPAQUE),
    "errored": (_errored, (), _B),
    "error": (_decision_field("error"), (), _S),
    "allowed": (_decision_field("allowed"), (), _B),
    "reason": (_decision_field("reason"), (), _S),
}
LIBRARY = cel.CelExtension("kubernetes.authz", [
    cel.FunctionDecl(function, [cel.Overload(f"authz_{function}", result, [_OPAQUE, *arguments], is_member=True,
                                             impl=impl)])
    for function, (impl, arguments, result) in _IMPLEMENTATIONS.items()
])

__all__ = ["AUTHORIZER", "DECISION", "DECLARATIONS", "GROUP_CHECK", "LIBRARY", "PATH_CHECK", "RESOURCE_CHECK",
           "VARIABLE_TYPES", "answered_by", "authorizer_value", "request_resource_value"]
