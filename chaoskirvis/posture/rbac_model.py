"""RBAC as it is, read once and indexed, with the Kubernetes RBAC authorizer's matching.

A `RbacSnapshot` is built from the four lists (Roles, ClusterRoles, RoleBindings, ClusterRoleBindings of
all namespaces) in one pass: roles by (namespace, name), RoleBindings by namespace, every binding by
subject. Each question then costs what it reads (the bindings that can apply, each role looked up by key
and its rules matched once per question), never roles × bindings.

Matching follows kube-apiserver (k8s.io/kubernetes ``pkg/apis/rbac/v1/evaluation_helpers.go`` and
``pkg/registry/rbac/validation/rule.go``):

- a rule matches when its verbs (``*`` or the verb), apiGroups (``*`` or the group, ``""`` for core),
  resources (``*``, ``resource``, ``resource/subresource``, or ``*/subresource`` for a subresource) and
  resourceNames (empty: any name; else the request's name, so a request without a name, such as a list,
  is never matched by a rule that names objects) all match;
- a ClusterRoleBinding grants its role everywhere; a RoleBinding grants its Role, or the ClusterRole it
  names, in its own namespace only;
- a subject applies by name (User), by membership (Group), or (ServiceAccount) as the user
  ``system:serviceaccount:NS:NAME``, NS defaulting to the RoleBinding's namespace; a ServiceAccount
  subject of a ClusterRoleBinding without a namespace applies to nobody;
- a ClusterRole with an ``aggregationRule`` is read with the ``rules`` the API server's aggregation
  controller filled in, as the authorizer reads it; a binding to a missing role grants nothing.
"""
from __future__ import annotations

import fnmatch
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Subject", "Binding", "Role", "Request", "Identity", "RbacSnapshot", "rule_matches", "wildcard_fields",
           "is_system_subject", "service_accounts_covered", "matches_any", "service_account_identity",
           "SERVICE_ACCOUNT_PREFIX", "ANONYMOUS", "AUTHENTICATED", "UNAUTHENTICATED"]

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
AUTHENTICATED, UNAUTHENTICATED, ANONYMOUS = "system:authenticated", "system:unauthenticated", "system:anonymous"
_ALL = "*"


@dataclass(frozen=True)
class Subject:
    """A binding's subject; a ServiceAccount's namespace is resolved (a RoleBinding's by default)."""

    kind: str
    name: str
    namespace: str = ""

    @property
    def applies(self) -> bool:
        """Whether the subject can match anyone: a known kind, and a ServiceAccount with a namespace."""
        return bool(self.name) and (self.kind in ("User", "Group") or
                                    (self.kind == "ServiceAccount" and bool(self.namespace)))

    @property
    def key(self) -> tuple[str, ...]:
        return (self.kind, self.namespace, self.name) if self.kind == "ServiceAccount" else (self.kind, self.name)

    @property
    def label(self) -> str:
        """``User:alice``, ``Group:team``, ``ServiceAccount:team-a/builder``: what allow lists match."""
        name = f"{self.namespace}/{self.name}" if self.kind == "ServiceAccount" else self.name
        return f"{self.kind}:{name}"

    def as_dict(self) -> dict[str, str]:
        subject = {"kind": self.kind, "name": self.name}
        if self.kind == "ServiceAccount":
            subject["namespace"] = self.namespace
        return subject


@dataclass(frozen=True)
class Role:
    kind: str  # Role or ClusterRole
    namespace: str  # "" for a ClusterRole
    name: str
    rules: tuple[dict[str, Any], ...]
    aggregated: bool = False

    def as_dict(self) -> dict[str, Any]:
        role: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.namespace:
            role["namespace"] = self.namespace
        if self.aggregated:
            role["aggregated"] = True
        return role


@dataclass(frozen=True)
class Binding:
    kind: str  # RoleBinding or ClusterRoleBinding
    namespace: str  # "" for a ClusterRoleBinding
    name: str
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]

    @property
    def role_key(self) -> tuple[str, str]:
        """Where the referenced role is stored: a Role in the binding's namespace, a ClusterRole at ("", name)."""
        return (self.namespace if self.role_kind == "Role" else "", self.role_name)

    @property
    def scope(self) -> str:
        """Where it grants: ``cluster`` (a ClusterRoleBinding) or the RoleBinding's namespace."""
        return self.namespace or "cluster"

    def as_dict(self) -> dict[str, str]:
        binding = {"kind": self.kind, "name": self.name}
        if self.namespace:
            binding["namespace"] = self.namespace
        return binding


@dataclass(frozen=True)
class Request:
    """What the authorizer is asked: `namespace` "" is a cluster-scoped request (or one across all namespaces)."""

    verb: str
    resource: str
    api_group: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def as_dict(self) -> dict[str, str]:
        return {"verb": self.verb, "apiGroup": self.api_group, "resource": self.combined_resource,
                "name": self.name, "namespace": self.namespace}


@dataclass(frozen=True)
class Identity:
    """Who asks: a user name and its groups, as the authenticator hands them to the authorizer."""

    user: str
    groups: tuple[str, ...] = ()

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) when the user is a service account's ``system:serviceaccount:NS:NAME``."""
        if not self.user.startswith(SERVICE_ACCOUNT_PREFIX):
            return None
        namespace, _, name = self.user[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
        return (namespace, name) if namespace and name and ":" not in name else None

    def subject_keys(self) -> list[tuple[str, ...]]:
        """Every subject key that applies to this identity (User, each Group, its ServiceAccount)."""
        keys: list[tuple[str, ...]] = [("User", self.user), *(("Group", group) for group in self.groups)]
        account = self.service_account
        if account:
            keys.append(("ServiceAccount", *account))
        return keys

    def as_dict(self) -> dict[str, Any]:
        return {"user": self.user, "groups": list(self.groups)}


def service_account_identity(namespace: str, name: str) -> Identity:
    """A service account as kube-apiserver authenticates its tokens: its user name and its three groups."""
    return Identity(f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
                    (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}", AUTHENTICATED))


def rule_matches(rule: dict[str, Any], request: Request) -> bool:
    """Whether one PolicyRule allows `request`, as the RBAC authorizer's RuleAllows decides."""
    verbs = rule.get("verbs") or ()
    if _ALL not in verbs and request.verb not in verbs:
        return False
    groups = rule.get("apiGroups") or ()
    if _ALL not in groups and request.api_group not in groups:
        return False
    if not _resource_matches(rule.get("resources") or (), request):
        return False
    names = rule.get("resourceNames") or ()
    return not names or request.name in names


def _resource_matches(resources: Iterable[str], request: Request) -> bool:
    combined, subresource = request.combined_resource, request.subresource
    for resource in resources:
        if resource == _ALL or resource == combined:
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def wildcard_fields(rule: dict[str, Any]) -> list[str]:
    """The fields of a rule that hold a wildcard: ``verbs``/``apiGroups``/``resources`` with ``*`` (a
    resource ``*/subresource`` counts: it reaches that subresource of every resource)."""
    fields = [field for field in ("verbs", "apiGroups") if _ALL in (rule.get(field) or ())]
    if any(r == _ALL or r.startswith("*/") for r in rule.get("resources") or () if isinstance(r, str)):
        fields.append("resources")
    return fields


_BROAD_GROUPS = {AUTHENTICATED, UNAUTHENTICATED, SERVICE_ACCOUNTS_GROUP}
_SYSTEM_NAMESPACE = "kube-system"


def is_system_subject(subject: Subject) -> bool:
    """A subject the cluster itself uses: a ``system:`` user or group (system:masters, system:kube-scheduler,
    system:nodes...) or a service account of kube-system. Not system subjects, although named ``system:``:
    system:anonymous, system:authenticated, system:unauthenticated, system:serviceaccounts, and the service
    accounts (and their groups) of any other namespace."""
    if subject.kind == "ServiceAccount":
        return subject.namespace == _SYSTEM_NAMESPACE
    name = subject.name
    if not name.startswith("system:"):
        return False
    if subject.kind == "User":
        if name.startswith(SERVICE_ACCOUNT_PREFIX):
            return name.startswith(f"{SERVICE_ACCOUNT_PREFIX}{_SYSTEM_NAMESPACE}:")
        return name != ANONYMOUS
    if name in _BROAD_GROUPS:
        return False
    if name.startswith(f"{SERVICE_ACCOUNTS_GROUP}:"):
        return name == f"{SERVICE_ACCOUNTS_GROUP}:{_SYSTEM_NAMESPACE}"
    return subject.kind == "Group"


def service_accounts_covered(subject: Subject) -> str | None:
    """Which service accounts a subject reaches, as ``NS/NAME``, ``NS/*`` or ``*/*``; None for none."""
    if subject.kind == "ServiceAccount":
        return f"{subject.namespace}/{subject.name}"
    if subject.kind == "User":
        account = Identity(subject.name).service_account
        return f"{account[0]}/{account[1]}" if account else None
    if subject.kind == "Group":
        if subject.name in (SERVICE_ACCOUNTS_GROUP, AUTHENTICATED):
            return "*/*"
        if subject.name.startswith(f"{SERVICE_ACCOUNTS_GROUP}:"):
            return f"{subject.name[len(SERVICE_ACCOUNTS_GROUP) + 1:]}/*"
    return None


def matches_any(text: str, patterns: Iterable[str]) -> bool:
    """Whether `text` matches one of the glob `patterns` (``*`` in the text only matches a ``*`` there)."""
    return any(fnmatch.fnmatchcase(text, pattern) for pattern in patterns)


class RbacSnapshot:
    """The four RBAC kinds of a cluster as read, indexed once (see the module docstring)."""

    def __init__(self, roles: list[dict[str, Any]], cluster_roles: list[dict[str, Any]],
                 role_bindings: list[dict[str, Any]], cluster_role_bindings: list[dict[str, Any]]) -> None:
        self.roles: dict[tuple[str, str], Role] = {}
        for kind, items in (("Role", roles), ("ClusterRole", cluster_roles)):
            for item in items:
                role = _role(kind, item)
                self.roles[(role.namespace, role.name)] = role
        self.cluster_bindings = [_binding("ClusterRoleBinding", item) for item in cluster_role_bindings]
        self.bindings_in: dict[str, list[Binding]] = defaultdict(list)
        for item in role_bindings:
            binding = _binding("RoleBinding", item)
            self.bindings_in[binding.namespace].append(binding)
        self.counts = {"roles": len(roles), "clusterroles": len(cluster_roles), "rolebindings": len(role_bindings),
                       "clusterrolebindings": len(cluster_role_bindings)}

    @functools.cached_property
    def by_subject(self) -> dict[tuple[str, ...], list[Binding]]:
        """Every binding by the key of each subject it names (built on first use: who_can needs none)."""
        index: dict[tuple[str, ...], list[Binding]] = defaultdict(list)
        for binding in self.all_bindings():
            for subject in binding.subjects:
                if subject.applies:
                    index[subject.key].append(binding)
        return index

    def all_bindings(self) -> Iterable[Binding]:
        yield from self.cluster_bindings
        for bindings in self.bindings_in.values():
            yield from bindings

    def bindings_applying_in(self, namespace: str) -> Iterable[Binding]:
        """The bindings the authorizer visits for a request in `namespace` ("" for cluster scope)."""
        yield from self.cluster_bindings
        if namespace:
            yield from self.bindings_in.get(namespace, ())

    def role_of(self, binding: Binding) -> Role | None:
        return self.roles.get(binding.role_key)

    def who_can(self, request: Request) -> list[dict[str, Any]]:
        """Every (subject, binding, role, first matching rule) that allows `request`."""
        matched: dict[tuple[str, str], dict[str, Any] | None] = {}
        findings = []
        for binding in self.bindings_applying_in(request.namespace):
            key = binding.role_key
            if key not in matched:
                role = self.roles.get(key)
                matched[key] = next((r for r in role.rules if rule_matches(r, request)), None) if role else None
            rule = matched[key]
            if rule is None:
                continue
            role_dict = self.roles[key].as_dict()
            for subject in binding.subjects:
                if subject.applies:
                    findings.append(_finding(subject, binding, role_dict, rule))
        return findings

    def grants_of(self, identity: Identity, namespace: str = "") -> list[dict[str, Any]]:
        """The bindings that apply to `identity` (in `namespace` and cluster-wide, or everywhere when ""),
        each with its role and the rules it grants there."""
        seen: set[int] = set()
        grants = []
        for key in identity.subject_keys():
            for binding in self.by_subject.get(key, ()):
                if id(binding) in seen or (namespace and binding.namespace not in ("", namespace)):
                    continue
                seen.add(id(binding))
                role = self.role_of(binding)
                grants.append({
                    "scope": binding.scope, "binding": binding.as_dict(),
                    "subject": next(s.as_dict() for s in binding.subjects if s.key == key),
                    "role": role.as_dict() if role else {"kind": binding.role_kind, "name": binding.role_name,
                                                         "missing": True},
                    "rules": list(role.rules) if role else [],
                })
        grants.sort(key=lambda g: (g["scope"] != "cluster", g["scope"], g["binding"]["kind"], g["binding"]["name"]))
        return grants

    def wildcard_grants(self, role_kinds: Iterable[str]) -> list[dict[str, Any]]:
        """Every (subject, binding, role, rule) binding a role that has a wildcard rule."""
        kinds = set(role_kinds)
        wildcards: dict[tuple[str, str], list[tuple[dict[str, Any], list[str]]]] = {}
        for key, role in self.roles.items():
            if role.kind in kinds:
                rules = [(rule, fields) for rule in role.rules if (fields := wildcard_fields(rule))]
                if rules:
                    wildcards[key] = rules
        findings = []
        for binding in self.all_bindings():
            rules = wildcards.get(binding.role_key)
            if not rules:
                continue
            role_dict = self.roles[binding.role_key].as_dict()
            for subject in binding.subjects:
                if subject.applies:
                    for rule, fields in rules:
                        findings.append(_finding(subject, binding, role_dict, rule) | {"wildcards": fields})
        return findings

    def bindings_to(self, subjects: Iterable[Subject]) -> list[dict[str, Any]]:
        """Every (subject, binding, role) binding one of `subjects`, whatever the role grants."""
        findings = []
        for subject in subjects:
            for binding in self.by_subject.get(subject.key, ()):
                role = self.role_of(binding)
                role_dict = role.as_dict() if role else {"kind": binding.role_kind, "name": binding.role_name,
                                                         "missing": True}
                findings.append({"subject": subject.as_dict(), "binding": binding.as_dict(), "role": role_dict,
                                 "scope": binding.scope, "rules": list(role.rules) if role else []})
        return findings

    def cluster_wide_grants_of(self, requests: list[Request]) -> list[dict[str, Any]]:
        """Every (subject, ClusterRoleBinding, role) allowing one of `requests` (cluster scope), with the
        verbs of `requests` it allows and the first rule matching each."""
        matched: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        findings = []
        for binding in self.cluster_bindings:
            key = binding.role_key
            if key not in matched:
                role = self.roles.get(key)
                matched[key] = {} if role is None else {
                    request.verb: rule for request in requests
                    if (rule := next((r for r in role.rules if rule_matches(r, request)), None)) is not None}
            verbs = matched[key]
            if not verbs:
                continue
            role_dict = self.roles[key].as_dict()
            for subject in binding.subjects:
                if subject.applies:
                    findings.append({"subject": subject.as_dict(), "binding": binding.as_dict(), "role": role_dict,
                                     "scope": binding.scope, "verbs": sorted(verbs),
                                     "rules": _unique(verbs.values())})
        return findings


def _finding(subject: Subject, binding: Binding, role: dict[str, Any], rule: dict[str, Any]) -> dict[str, Any]:
    return {"subject": subject.as_dict(), "binding": binding.as_dict(), "role": role, "scope": binding.scope,
            "rule": rule}


def _unique(rules: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules, each once (one rule may allow several verbs)."""
    return list({id(rule): rule for rule in rules}.values())


def _role(kind: str, item: dict[str, Any]) -> Role:
    metadata = item.get("metadata") or {}
    rules = tuple(rule for rule in item.get("rules") or () if isinstance(rule, dict))
    return Role(kind, (metadata.get("namespace") or "") if kind == "Role" else "", metadata.get("name") or "", rules,
                aggregated=bool(item.get("aggregationRule")))


def _binding(kind: str, item: dict[str, Any]) -> Binding:
    metadata = item.get("metadata") or {}
    namespace = (metadata.get("namespace") or "") if kind == "RoleBinding" else ""
    role_ref = item.get("roleRef") or {}
    subjects = tuple(
        Subject(str(s.get("kind") or ""), str(s.get("name") or ""),
                str(s.get("namespace") or namespace) if s.get("kind") == "ServiceAccount" else "")
        for s in item.get("subjects") or () if isinstance(s, dict)
    )
    return Binding(kind, namespace, metadata.get("name") or "", str(role_ref.get("kind") or ""),
                   str(role_ref.get("name") or ""), subjects)
