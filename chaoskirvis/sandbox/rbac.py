"""The sandbox's RBAC authorizer: Roles, ClusterRoles and their bindings as stored, decided as kube-apiserver does.

Rule matching follows `k8s.io/kubernetes/pkg/apis/rbac/v1` (evaluation_helpers.go) and the rule resolver of
`pkg/registry/rbac/validation` (rule.go): ClusterRoleBindings first, then the RoleBindings of the request's
namespace; a RoleBinding to a ClusterRole grants its rules in that namespace only; a ServiceAccount subject
is the user `system:serviceaccount:NS:NAME` (NS defaulting to the binding's namespace).

`Authorizer` keeps the roles and bindings from the store's watch (listed once, then each change applied to
an index of bindings by subject), so a request costs the bindings of its user and groups, never all of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chaoskirvis.sandbox.resources import find_resource
from chaoskirvis.sandbox.status import StatusError, status_error
from chaoskirvis.sandbox.store import Store, Subscription

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLES = find_resource(RBAC_GROUP, "v1", "roles")
ROLE_BINDINGS = find_resource(RBAC_GROUP, "v1", "rolebindings")
CLUSTER_ROLES = find_resource(RBAC_GROUP, "v1", "clusterroles")
CLUSTER_ROLE_BINDINGS = find_resource(RBAC_GROUP, "v1", "clusterrolebindings")
assert ROLES and ROLE_BINDINGS and CLUSTER_ROLES and CLUSTER_ROLE_BINDINGS
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
MASTERS = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or impersonated) user, as `k8s.io/apiserver/pkg/authentication/user.Info`."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Attributes:
    """What a request asks: a resource request (`resource` set) or a non-resource one (`path`)."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def resource_request(self) -> bool:
        return bool(self.resource)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def service_account_user(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_service_account(user_name: str) -> tuple[str, str] | None:
    """(namespace, name) of a `system:serviceaccount:NS:NAME` user name, or None."""
    if not user_name.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = user_name.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    return (namespace, name) if sep and namespace and name and ":" not in name else None


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")


# Rule evaluation (pkg/apis/rbac/v1/evaluation_helpers.go).

def _verb_matches(rule: Mapping[str, Any], verb: str) -> bool:
    verbs = rule.get("verbs") or ()
    return "*" in verbs or verb in verbs


def _group_matches(rule: Mapping[str, Any], group: str) -> bool:
    groups = rule.get("apiGroups") or ()
    return "*" in groups or group in groups


def _resource_matches(rule: Mapping[str, Any], combined: str, subresource: str) -> bool:
    for resource in rule.get("resources") or ():
        if resource == "*" or resource == combined:
            return True
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def _name_matches(rule: Mapping[str, Any], name: str) -> bool:
    names = rule.get("resourceNames") or ()
    return not names or name in names


def _url_matches(rule: Mapping[str, Any], path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(attributes: Attributes, rule: Mapping[str, Any]) -> bool:
    """Whether one PolicyRule allows the request (RuleAllows)."""
    if attributes.resource_request:
        combined = (f"{attributes.resource}/{attributes.subresource}" if attributes.subresource
                    else attributes.resource)
        return (_verb_matches(rule, attributes.verb) and _group_matches(rule, attributes.group)
                and _resource_matches(rule, combined, attributes.subresource)
                and _name_matches(rule, attributes.name))
    return _verb_matches(rule, attributes.verb) and _url_matches(rule, attributes.path)


# Bindings and their subjects.

@dataclass(frozen=True)
class _Binding:
    """A stored binding as the index holds it: what it refers to and which subject it reaches a user by."""

    kind: str  # RoleBinding or ClusterRoleBinding
    name: str
    namespace: str  # "" for a ClusterRoleBinding
    role_kind: str
    role_name: str

    def describe(self, subject: Mapping[str, Any]) -> str:
        """As the rule resolver's describers word it (the reason of an allowed decision)."""
        if self.kind == "ClusterRoleBinding":
            head = f'ClusterRoleBinding "{self.name}"'
        else:
            head = f'RoleBinding "{self.name}/{self.namespace}"'
        return f'{head} of {self.role_kind} "{self.role_name}" to {_describe_subject(subject, self.namespace)}'


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def _subject_key(subject: Mapping[str, Any], binding_namespace: str) -> tuple[str, str] | None:
    """The key a subject is indexed under: ("user", NAME) or ("group", NAME); None for one matching nobody."""
    kind, name = subject.get("kind"), subject.get("name") or ""
    if kind == "User":
        return "user", name
    if kind == "Group":
        return "group", name
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return ("user", service_account_user(namespace, name)) if namespace else None
    return None


def _user_keys(user: UserInfo) -> Iterator[tuple[str, str]]:
    yield "user", user.name
    for group in user.groups:
        yield "group", group


class Authorizer:
    """RBAC over a store's Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, kept current from its watch.

    The indexes: rules by role, bindings by (subject key, namespace) where a ClusterRoleBinding's namespace is
    "". Each store change of an RBAC object costs its own subjects; a decision costs the user's bindings.
    """

    def __init__(self, store: Store) -> None:
        resources = (ROLES, CLUSTER_ROLES, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS)
        self._subscriptions: list[Subscription] = [store.subscribe(r) for r in resources]  # before listing
        self._rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}  # (kind, namespace, name) -> rules
        self._binding_subjects: dict[tuple[str, str, str], list[tuple[tuple[str, str], dict[str, Any]]]] = {}
        self._by_subject: dict[tuple[tuple[str, str], str], dict[tuple[str, str, str], _Binding]] = {}
        for resource in resources:
            for obj in store.list(resource):
                self._apply(resource.kind, obj, deleted=False)

    def _refresh(self) -> None:
        for subscription in self._subscriptions:
            queue = subscription.queue
            while not queue.empty():
                event = queue.get_nowait()
                if event is not None:
                    self._apply(event.resource.kind, event.object, deleted=event.type == "DELETED")

    def _apply(self, kind: str, obj: Mapping[str, Any], *, deleted: bool) -> None:
        metadata = obj.get("metadata") or {}
        key = (kind, metadata.get("namespace") or "", metadata.get("name") or "")
        if kind in ("Role", "ClusterRole"):
            if deleted:
                self._rules.pop(key, None)
            else:
                self._rules[key] = [rule for rule in obj.get("rules") or [] if isinstance(rule, dict)]
            return
        for subject_key, _ in self._binding_subjects.pop(key, []):
            entries = self._by_subject.get((subject_key, key[1]))
            if entries is not None:
                entries.pop(key, None)
                if not entries:
                    del self._by_subject[(subject_key, key[1])]
        if deleted:
            return
        role_ref = obj.get("roleRef") or {}
        binding = _Binding(kind, key[2], key[1], str(role_ref.get("kind", "")), str(role_ref.get("name", "")))
        subjects = []
        for subject in obj.get("subjects") or []:
            subject_key = _subject_key(subject, key[1]) if isinstance(subject, dict) else None
            if subject_key is None:
                continue
            entries = self._by_subject.setdefault((subject_key, key[1]), {})
            if key not in entries:  # the first subject that applies describes the binding, as upstream
                entries[key] = binding
                subjects.append((subject_key, subject))
        self._binding_subjects[key] = subjects

    def _role_rules(self, binding: _Binding) -> list[dict[str, Any]]:
        if binding.role_kind == "ClusterRole":
            return self._rules.get(("ClusterRole", "", binding.role_name), [])
        if binding.role_kind == "Role" and binding.namespace:
            return self._rules.get(("Role", binding.namespace, binding.role_name), [])
        return []

    def _visit(self, user: UserInfo, namespace: str) -> Iterator[tuple[_Binding, Mapping[str, Any]]]:
        """The user's bindings that apply in `namespace`: ClusterRoleBindings, then that namespace's
        RoleBindings (each once, with the subject that reaches the user), in name order as listers give them."""
        for scope in ("", namespace) if namespace else ("",):
            found: dict[tuple[str, str, str], tuple[_Binding, Mapping[str, Any]]] = {}
            for subject_key in _user_keys(user):
                for key, binding in self._by_subject.get((subject_key, scope), {}).items():
                    if key not in found:
                        subject = next(s for k, s in self._binding_subjects[key] if k == subject_key)
                        found[key] = (binding, subject)
            for key in sorted(found):
                yield found[key]

    def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        """Allowed, with the binding that allows it in the RBAC authorizer's words, or denied (reason "").

        Members of system:masters are allowed first, with no reason, as kube-apiserver's privileged-groups
        authorizer (ahead of RBAC in its chain) allows them."""
        if MASTERS in user.groups:
            return Decision(True, "")
        self._refresh()
        for binding, subject in self._visit(user, attributes.namespace):
            for rule in self._role_rules(binding):
                if rule_allows(attributes, rule):
                    return Decision(True, f"RBAC: allowed by {binding.describe(subject)}")
        return Decision(False, "")

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(resourceRules, nonResourceRules) the user holds in `namespace`, as SelfSubjectRulesReview lists them."""
        resource_rules, non_resource_rules = [], []
        for rule in self.policy_rules(user, namespace):
            if rule.get("resources"):  # ResourceRule: verbs always, the rest omitempty
                resource_rules.append({"verbs": list(rule.get("verbs") or [])} | {
                    key: list(rule[key]) for key in ("apiGroups", "resources", "resourceNames") if rule.get(key)})
            if rule.get("nonResourceURLs"):
                non_resource_rules.append({"verbs": list(rule.get("verbs") or []),
                                           "nonResourceURLs": list(rule["nonResourceURLs"])})
        return resource_rules, non_resource_rules

    def policy_rules(self, user: UserInfo, namespace: str) -> list[dict[str, Any]]:
        """Every PolicyRule the user holds in `namespace` (cluster-wide ones included): RulesFor."""
        self._refresh()
        return [rule for binding, _ in self._visit(user, namespace) for rule in self._role_rules(binding)]

    def role_rules(self, kind: str, namespace: str, name: str) -> list[dict[str, Any]] | None:
        """The rules of a stored Role (in `namespace`) or ClusterRole; None when it does not exist."""
        self._refresh()
        return self._rules.get((kind, namespace if kind == "Role" else "", name))


def forbidden_error(user: UserInfo, attributes: Attributes, reason: str = "") -> StatusError:
    """The 403 of a denied request, worded as the API server's responsewriters.Forbidden words it."""
    if not attributes.resource_request:
        message = f'forbidden: User "{user.name}" cannot {attributes.verb} path "{attributes.path}"'
        return status_error(403, "Forbidden", message + (f": {reason}" if reason else ""), {})
    target = f"{attributes.resource}/{attributes.subresource}" if attributes.subresource else attributes.resource
    scope = (f'in the namespace "{attributes.namespace}"' if attributes.namespace else "at the cluster scope")
    why = (f'User "{user.name}" cannot {attributes.verb} resource "{target}" in API group "{attributes.group}" '
           f"{scope}" + (f": {reason}" if reason else ""))
    qualified = f"{attributes.resource}.{attributes.group}" if attributes.group else attributes.resource
    subject = f'{qualified} "{attributes.name}"' if attributes.name else qualified
    details: dict[str, Any] = {"name": attributes.name} if attributes.name else {}
    if attributes.group:
        details["group"] = attributes.group
    return status_error(403, "Forbidden", f"{subject} is forbidden: {why}", details | {"kind": attributes.resource})
