"""Posture probes that read RBAC as it is: who can do what, what a subject holds, and three checks.

Every probe sends four requests, one list per kind across all namespaces (Roles, ClusterRoles,
RoleBindings, ClusterRoleBindings of ``rbac.authorization.k8s.io/v1``, concurrently), then answers from
`chaoskirvis.posture.rbac_model` in time linear in what was read. They change nothing. The runner needs
``list`` on those four resources cluster-wide; a refused list is an error naming that permission, never
an empty answer.

Each finding is a plain dict: the subject, the binding, the role, where it grants (``scope``: ``cluster``
or a namespace) and the rule that matched. The three checks (`no_wildcard_roles_bound`,
`no_anonymous_bindings`, `no_service_account_reads_secrets_cluster_wide`) answer ``{"posture": "held" |
"violated", "ok": bool, "findings": [...], "allowed": [...], "examined": {...}}``: in a steady-state
hypothesis use the tolerance ``{type: regex, target: posture, pattern: "^held$"}``, so the findings land
in the journal with the probe's output, and play the hypothesis after the method only
(``runtime: {hypothesis: {strategy: after-method-only}}``): a posture already broken is then a deviation
(exit 1), where before the method Chaos Toolkit would end with status completed and exit 0.
"""
from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis.activity import typed_activity
from chaoskirvis.client import ApiError, KubeAPI, kube_api
from chaoskirvis.posture import guardrails
from chaoskirvis.posture.rbac_model import (ANONYMOUS, UNAUTHENTICATED, AUTHENTICATED, Identity, RbacSnapshot,
                                            Request, Subject, is_system_subject, matches_any,
                                            service_account_identity, service_accounts_covered)

__all__ = ["who_can", "effective_permissions", "no_wildcard_roles_bound", "no_anonymous_bindings",
           "no_service_account_reads_secrets_cluster_wide", "read_rbac", "namespaces_enforce_pod_security",
           "namespaces_have_default_deny", "security_webhooks_fail_closed", "security_policy_bindings_deny"]

RBAC_GROUP = "rbac.authorization.k8s.io"
_PLURALS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
# Upstream's bootstrap policy binds system:public-info-viewer (/healthz, /livez, /readyz, /version) to
# system:unauthenticated on every cluster.
DEFAULT_ANONYMOUS_BINDINGS = ["ClusterRoleBinding/system:public-info-viewer"]
# The controllers' service accounts (kube-system) read secrets cluster-wide by the bootstrap policy; anyone
# who can run a pod there holds the cluster already.
DEFAULT_SECRET_READERS = ["kube-system/*"]
_LOGGED_FINDINGS = 20
T = TypeVar("T")


def read_rbac(api: KubeAPI) -> RbacSnapshot:
    """The four RBAC lists of every namespace, one request each (sent together), indexed."""
    def read(plural: str) -> list[dict[str, Any]] | ApiError:
        try:
            return api.get(f"/apis/{RBAC_GROUP}/v1/{plural}").get("items") or []
        except ApiError as error:
            return error

    with ThreadPoolExecutor(len(_PLURALS)) as pool:
        answers = dict(zip(_PLURALS, pool.map(read, _PLURALS)))
    refused = {plural: answer for plural, answer in answers.items() if isinstance(answer, ApiError)}
    if refused:
        raise _unreadable(refused)
    return RbacSnapshot(*(answers[plural] for plural in _PLURALS))  # type: ignore[arg-type]


def _answered(configuration: Configuration, secrets: Secrets,
              question: Callable[[RbacSnapshot], T]) -> tuple[T, dict[str, int]]:
    """`question` asked of the cluster's RBAC, read now, with the cyclic garbage collector paused; and how
    many objects of each kind were read."""
    with _collector_paused():
        snapshot = read_rbac(kube_api(configuration, secrets))
        return question(snapshot), snapshot.counts


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while the lists are decoded, indexed and judged: that makes millions
    of containers and no cycle (reference counting frees them all afterwards), and each pass of the collector
    over the growing heap made the cost grow faster than the lists (measured: decoding and indexing 50,000
    objects took 5-9x as long as 10,000, and the question after it 5-10x)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _unreadable(refused: dict[str, ApiError]) -> ActivityFailed:
    answered = "; ".join(f"{plural}: {error.status} {error.reason}: {error.message}"
                         for plural, error in refused.items())
    if all(error.status == 403 for error in refused.values()):
        needed = ", ".join(refused)
        return ActivityFailed(
            f"cannot read RBAC as it is: the runner may not list {needed} ({RBAC_GROUP}) across all namespaces "
            f"(the API server answered {answered}); grant the runner `list` on {needed} in API group {RBAC_GROUP} "
            "with a ClusterRole and a ClusterRoleBinding; nothing was judged")
    return ActivityFailed(f"cannot read RBAC as it is: listing {', '.join(refused)} ({RBAC_GROUP}) across all "
                          f"namespaces failed ({answered}); nothing was judged")


@typed_activity
def who_can(
    verb: str,
    resource: str,
    namespace: str | None = None,
    api_group: str = "",
    name: str = "",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Who may `verb` the `resource` (``pods``, ``pods/log``) of `api_group` ("" for core) in `namespace`.

    Without `namespace`, a cluster-scoped request (or one across all namespaces): only ClusterRoleBindings
    grant it. With `name`, rules limited to resourceNames count when they name it; without, they never do
    (a list or a request for any object, as the authorizer decides it). Answers ``{question, subjects,
    findings, examined}``: each finding names the subject, the binding, the role and the rule that matched.
    Groups are answered as groups (who is in them is the authenticator's business, not RBAC's).
    """
    plural, _, subresource = resource.partition("/")
    request = Request(verb, plural, api_group, subresource, name, namespace or "")
    findings, examined = _answered(configuration, secrets, lambda snapshot: snapshot.who_can(request))
    subjects = _distinct_subjects(findings)
    logger.info(f"who can {verb} {resource} in {namespace or 'the cluster scope'}: {len(subjects)} subject(s)")
    return {"question": request.as_dict(), "subjects": subjects, "findings": findings, "examined": examined}


@typed_activity
def effective_permissions(
    user: str | None = None,
    groups: list[str] | None = None,
    service_account: str | None = None,
    namespace: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """What RBAC grants one subject: every binding that applies, its role and the rules it grants where.

    Name a `user` (with the `groups` its authenticator gives it; ``system:authenticated`` is added, or
    ``system:unauthenticated`` for ``system:anonymous``), or a `service_account` as ``NAMESPACE/NAME``
    (its user ``system:serviceaccount:NAMESPACE:NAME`` and groups system:serviceaccounts,
    system:serviceaccounts:NAMESPACE, system:authenticated, as its tokens authenticate). With `namespace`,
    only what applies there (ClusterRoleBindings and that namespace's RoleBindings), as ``kubectl auth can-i
    --list -n NAMESPACE`` would show it. Answers ``{identity, namespace, grants, examined}``.
    """
    identity = _identity(user, groups or [], service_account)
    grants, examined = _answered(configuration, secrets,
                                 lambda snapshot: snapshot.grants_of(identity, namespace or ""))
    logger.info(f"{identity.user} holds {len(grants)} binding(s)" + (f" in {namespace}" if namespace else ""))
    return {"identity": identity.as_dict(), "namespace": namespace, "grants": grants, "examined": examined}


def _identity(user: str | None, groups: list[str], service_account: str | None) -> Identity:
    if bool(user) == bool(service_account):
        raise ActivityFailed("effective_permissions needs either user or service_account (NAMESPACE/NAME), not "
                             f"{'both' if user else 'neither'}")
    if service_account:
        namespace, _, name = service_account.partition("/")
        if not namespace or not name or "/" in name:
            raise ActivityFailed(
                f"service_account must be NAMESPACE/NAME such as team-a/builder, got {service_account!r}")
        return service_account_identity(namespace, name)
    implied = UNAUTHENTICATED if user == ANONYMOUS else AUTHENTICATED
    return Identity(str(user), tuple(dict.fromkeys([*groups, implied])))


@typed_activity
def no_wildcard_roles_bound(
    allowed_subjects: list[str] | None = None,
    role_kinds: list[str] | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Held when no role with a wildcard rule (``*`` in verbs, apiGroups or resources, or a ``*/subresource``)
    is bound to a subject other than a system one or one of `allowed_subjects`.

    System subjects are always allowed: ``system:`` users and groups (system:masters holds cluster-admin on
    every cluster) and kube-system's service accounts; system:anonymous, system:authenticated,
    system:unauthenticated, system:serviceaccounts and other namespaces' service accounts are not system
    subjects. `allowed_subjects` are glob patterns over ``User:NAME``, ``Group:NAME`` and
    ``ServiceAccount:NAMESPACE/NAME`` (e.g. ``Group:platform-admins``, ``ServiceAccount:argocd/*``).
    `role_kinds` limits the check to ``ClusterRole`` or ``Role`` (default both). Answers ``{posture, ok,
    findings, allowed, examined}`` (see the module docstring for the tolerance); each finding names the
    wildcard fields.
    """
    kinds = role_kinds or ["Role", "ClusterRole"]
    unknown = sorted(set(kinds) - {"Role", "ClusterRole"})
    if unknown:
        raise ActivityFailed(f"role_kinds may hold Role and ClusterRole only, got {', '.join(unknown)}")
    patterns = allowed_subjects or []
    found, examined = _answered(configuration, secrets, lambda snapshot: snapshot.wildcard_grants(kinds))
    findings, allowed = [], []
    for finding in found:
        subject = _subject(finding["subject"])
        if is_system_subject(subject):
            allowed.append(finding | {"allowed_as": "system subject"})
        elif matches_any(subject.label, patterns):
            allowed.append(finding | {"allowed_as": "allowed_subjects"})
        else:
            findings.append(finding)
    return _posture("no-wildcard-roles-bound", findings, allowed, examined,
                    lambda f: f"{f['role']['kind']} {f['role']['name']} ({', '.join(f['wildcards'])} *)")


@typed_activity
def no_anonymous_bindings(
    allowed_bindings: list[str] | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Held when no binding names the user system:anonymous or the group system:unauthenticated (whatever
    it grants: requests without credentials get it), except `allowed_bindings`.

    `allowed_bindings` are glob patterns over ``ClusterRoleBinding/NAME`` and ``RoleBinding/NAMESPACE/NAME``;
    default ``ClusterRoleBinding/system:public-info-viewer``, which upstream's bootstrap policy creates on
    every cluster (health and version endpoints). Answers ``{posture, ok, findings, allowed, examined}``.
    """
    patterns = DEFAULT_ANONYMOUS_BINDINGS if allowed_bindings is None else allowed_bindings
    anonymous = [Subject("User", ANONYMOUS), Subject("Group", UNAUTHENTICATED)]
    found, examined = _answered(configuration, secrets, lambda snapshot: snapshot.bindings_to(anonymous))
    findings, allowed = [], []
    for finding in found:
        binding = finding["binding"]
        label = "/".join(filter(None, (binding["kind"], binding.get("namespace"), binding["name"])))
        (allowed if matches_any(label, patterns) else findings).append(finding)
    return _posture("no-anonymous-bindings", findings, allowed, examined,
                    lambda f: f"{f['role']['kind']} {f['role']['name']}")


_SECRET_READS = [Request(verb, "secrets") for verb in ("get", "list", "watch")]


@typed_activity
def no_service_account_reads_secrets_cluster_wide(
    allowed_service_accounts: list[str] | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Held when no service account outside `allowed_service_accounts` may get, list or watch secrets in
    every namespace (a ClusterRoleBinding to a role allowing it, for any object: rules limited to
    resourceNames do not count).

    A service account holds it as a ServiceAccount subject, as the user ``system:serviceaccount:NS:NAME``, or
    through the groups system:serviceaccounts, system:serviceaccounts:NS or system:authenticated (all
    service accounts, or all of NS). `allowed_service_accounts` are glob patterns over ``NAMESPACE/NAME``
    (default ``kube-system/*``: the controllers' accounts hold it by the bootstrap policy); a group is
    allowed only by a pattern covering all it reaches (``NS/*``, or ``*`` for every service account).
    Answers ``{posture, ok, findings, allowed, examined}``; each finding names the verbs and the rules.
    """
    patterns = DEFAULT_SECRET_READERS if allowed_service_accounts is None else allowed_service_accounts
    found, examined = _answered(configuration, secrets,
                                lambda snapshot: snapshot.cluster_wide_grants_of(_SECRET_READS))
    findings, allowed = [], []
    for finding in found:
        covered = service_accounts_covered(_subject(finding["subject"]))
        if covered is None:
            continue
        finding = finding | {"service_accounts": covered}
        (allowed if matches_any(covered, patterns) else findings).append(finding)
    return _posture("no-service-account-reads-secrets-cluster-wide", findings, allowed, examined,
                    lambda f: f"{'/'.join(f['verbs'])} secrets for {f['service_accounts']}")


def _subject(found: dict[str, str]) -> Subject:
    return Subject(found["kind"], found["name"], found.get("namespace", ""))


def _distinct_subjects(findings: list[dict[str, Any]]) -> list[dict[str, str]]:
    subjects = {_subject(f["subject"]).label: f["subject"] for f in findings}
    return [subjects[label] for label in sorted(subjects)]


def _posture(check: str, findings: list[dict[str, Any]], allowed: list[dict[str, Any]], examined: dict[str, int],
             what: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """A check's answer, with its findings logged (the first few) so that the run's log shows them too."""
    ok = not findings
    logger.info(f"{check}: {'held' if ok else 'violated'} ({len(findings)} finding(s), {len(allowed)} allowed)")
    for finding in findings[:_LOGGED_FINDINGS]:
        subject, binding = finding["subject"], finding["binding"]
        where = f"{binding['namespace']}/" if binding.get("namespace") else ""
        logger.info(f"{check}: {_subject(subject).label} through {binding['kind']} {where}{binding['name']}: "
                    f"{what(finding)}")
    if len(findings) > _LOGGED_FINDINGS:
        logger.info(f"{check}: and {len(findings) - _LOGGED_FINDINGS} more finding(s) in the probe's output")
    return {"check": check, "posture": "held" if ok else "violated", "ok": ok, "findings": findings,
            "allowed": allowed, "examined": examined}


# --- Guardrails: Pod Security labels, default-deny NetworkPolicies, webhooks, VAP bindings ----------------------
#
# Each guardrail check lists what it judges across all namespaces, in pages of `LIST_PAGE` items (`limit` and
# `continue`, as kubectl reads lists in chunks), the lists of one check sent together, then answers from
# `chaoskirvis.posture.guardrails`. A refused list is an error naming the permission to grant.

LIST_PAGE = 500
_CORE = '"" (core)'
ADMISSION_GROUP = "admissionregistration.k8s.io"


class Listed(NamedTuple):
    """One list a guardrail check reads: a resource of `group` ("" for core) v1, maybe by label selector."""

    group: str
    plural: str
    label_selector: str | None = None

    @property
    def path(self) -> str:
        return f"/apis/{self.group}/v1/{self.plural}" if self.group else f"/api/v1/{self.plural}"

    def describe(self) -> str:
        group = f" ({self.group})" if self.group else ""
        return self.plural + group + (f" with labelSelector {self.label_selector!r}" if self.label_selector else "")


def read_lists(api: KubeAPI, lists: dict[str, Listed]) -> dict[str, list[dict[str, Any]]]:
    """Every item of each list, page after page, the lists read together; raises `ActivityFailed` naming
    every list the API server refused."""
    def read(listed: Listed) -> list[dict[str, Any]] | ApiError:
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": LIST_PAGE, "labelSelector": listed.label_selector}
        try:
            while True:
                page = api.get(listed.path, **query)
                items.extend(page.get("items") or [])
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    return items
                query["continue"] = token
        except ApiError as error:
            return error

    with ThreadPoolExecutor(len(lists)) as pool:
        answers = dict(zip(lists, pool.map(read, lists.values())))
    refused = {lists[key]: answer for key, answer in answers.items() if isinstance(answer, ApiError)}
    if refused:
        raise _unlistable(refused)
    return answers  # type: ignore[return-value]


def _unlistable(refused: dict[Listed, ApiError]) -> ActivityFailed:
    answered = "; ".join(f"{listed.describe()}: {error.status} {error.reason}: {error.message}"
                         for listed, error in refused.items())
    if all(error.status == 403 for error in refused.values()):
        grants = ", ".join(f"{listed.plural} in API group {listed.group or '\"\" (core)'}" for listed in refused)
        return ActivityFailed(f"cannot read the guardrails: the runner may not list {grants} (the API server "
                              f"answered {answered}); grant the runner `list` on them with a ClusterRole and a "
                              "ClusterRoleBinding; nothing was judged")
    if all(error.status == 404 for error in refused.values()):
        return ActivityFailed(f"cannot read the guardrails: the API server does not serve "
                              f"{', '.join(listed.describe() for listed in refused)} ({answered}); nothing was judged")
    return ActivityFailed(f"cannot read the guardrails: listing failed ({answered}); nothing was judged")


def _guardrail_posture(check: str, findings: list[dict[str, Any]], allowed: list[dict[str, Any]],
                       examined: dict[str, int]) -> dict[str, Any]:
    """A guardrail check's answer, in the shape of the RBAC checks', its first findings logged."""
    ok = not findings
    logger.info(f"{check}: {'held' if ok else 'violated'} ({len(findings)} finding(s), {len(allowed)} allowed)")
    for finding in findings[:_LOGGED_FINDINGS]:
        where = f"{finding['namespace']}/" if finding.get("namespace") else ""
        logger.info(f"{check}: {finding['kind']} {where}{finding['name']}: {finding['why']}")
    if len(findings) > _LOGGED_FINDINGS:
        logger.info(f"{check}: and {len(findings) - _LOGGED_FINDINGS} more finding(s) in the probe's output")
    return {"check": check, "posture": "held" if ok else "violated", "ok": ok, "findings": findings,
            "allowed": allowed, "examined": examined}


@typed_activity
def namespaces_enforce_pod_security(
    minimum_level: str = "baseline",
    exclude_namespaces: list[str] | None = None,
    exclude_selector: str | None = None,
    cluster_default_level: str = "privileged",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Held when every namespace not excluded enforces at least `minimum_level` (``baseline`` or
    ``restricted``) by its ``pod-security.kubernetes.io/enforce`` label, as the PodSecurity admission plugin
    reads it: no label enforces `cluster_default_level` (the API server's AdmissionConfiguration
    ``defaults.enforce``: ``privileged`` unless configured); a value that is no level (``Baseline``,
    ``strict``) enforces ``restricted``, as kube-apiserver does, and is reported in ``allowed`` with that
    reason.

    `exclude_namespaces` are glob patterns over names (default kube-system, kube-public, kube-node-lease; a
    list given replaces it, so name them again to keep them out); `exclude_selector` is a label selector
    (``team in (platform)``, ``!chaoskirvis.io/judged``) whose namespaces are left out, evaluated by the API
    server. Sends ``GET /api/v1/namespaces`` (paged; once more with the selector, when given). Answers
    ``{check, posture, ok, findings, allowed, examined}``: each finding names the namespace, its label and
    the level enforced.
    """
    if minimum_level not in guardrails.LEVELS[1:]:
        raise ActivityFailed(f"minimum_level must be baseline or restricted, got {minimum_level!r}")
    if cluster_default_level not in guardrails.LEVELS:
        raise ActivityFailed("cluster_default_level must be privileged, baseline or restricted (the "
                             f"AdmissionConfiguration's defaults.enforce), got {cluster_default_level!r}")
    lists = {"namespaces": Listed("", "namespaces")}
    if exclude_selector:
        lists["excluded"] = Listed("", "namespaces", exclude_selector)
    read = read_lists(kube_api(configuration, secrets), lists)
    patterns = list(guardrails.SYSTEM_NAMESPACES) if exclude_namespaces is None else exclude_namespaces
    findings, allowed = guardrails.pod_security_offenders(
        read["namespaces"], minimum_level, patterns, {guardrails.name_of(n) for n in read.get("excluded", [])},
        cluster_default_level)
    return _guardrail_posture("namespaces-enforce-pod-security", findings, allowed,
                              {"namespaces": len(read["namespaces"])})


@typed_activity
def namespaces_have_default_deny(
    namespace_selector: str | None = None,
    namespaces: list[str] | None = None,
    egress: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Held when every namespace that must have one holds a default-deny NetworkPolicy: one whose podSelector
    is empty (every pod), whose policyTypes include Ingress and which has no ingress rule; with `egress`,
    Egress too and no egress rule (one policy for both, or one for each).

    Which namespaces: those `namespace_selector` (a label selector, evaluated by the API server) selects
    and those `namespaces` names (glob patterns); at least one of them. policyTypes omitted are read as the
    API server defaults them (Ingress, and Egress only with egress rules); a rule ``{}`` (or one without
    peers and ports) allows everything. A named namespace that does not exist, or no namespace selected,
    is an error: nothing would be judged. Sends ``GET /api/v1/namespaces`` (with the selector, and without
    when names are given) and ``GET /apis/networking.k8s.io/v1/networkpolicies``, paged. Answers ``{check,
    posture, ok, findings, allowed, examined}``: each finding names the namespace and why each of its
    policies is no default deny.
    """
    if not namespace_selector and not namespaces:
        raise ActivityFailed("namespaces_have_default_deny needs namespace_selector (a label selector such as "
                             "chaoskirvis.io/default-deny=required) or namespaces (names or glob patterns)")
    lists = {"policies": Listed("networking.k8s.io", "networkpolicies")}
    if namespace_selector:
        lists["selected"] = Listed("", "namespaces", namespace_selector)
    if namespaces:
        lists["namespaces"] = Listed("", "namespaces")
    read = read_lists(kube_api(configuration, secrets), lists)
    targets = {guardrails.name_of(n) for n in read.get("selected", [])}
    if namespaces:
        existing = {guardrails.name_of(n) for n in read["namespaces"]}
        absent = [p for p in namespaces if not any(guardrails.matches_any(name, [p]) for name in existing)]
        if absent:
            raise ActivityFailed(f"no namespace is named like {', '.join(absent)}: check the namespaces argument; "
                                 "nothing was judged")
        targets |= {name for name in existing if guardrails.matches_any(name, namespaces)}
    if not targets:
        raise ActivityFailed(f"no namespace matches the label selector {namespace_selector!r}: nothing was judged "
                             "(label the namespaces that must have a default-deny NetworkPolicy, or name them)")
    directions = ["Ingress", "Egress"] if egress else ["Ingress"]
    findings, allowed = guardrails.default_deny_offenders(sorted(targets), read["policies"], directions)
    return _guardrail_posture("namespaces-have-default-deny", findings, allowed,
                              {"namespaces": len(targets), "networkpolicies": len(read["policies"])})


@typed_activity
def security_webhooks_fail_closed(
    configurations: list[str] | None = None,
    kinds: list[str] | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Held when every webhook of the security webhook configurations fails closed: its ``failurePolicy`` is
    ``Fail`` (unset is Fail in admissionregistration.k8s.io/v1), so a request is refused, not admitted,
    when the webhook cannot be called, times out or answers garbage.

    `configurations` are glob patterns over the configurations' names (``kyverno-*``, ``gatekeeper-*``);
    empty or unset, every configuration is judged. A pattern that names no configuration is a finding (the
    security webhook is missing), and so is a configuration without webhooks. `kinds`:
    ValidatingWebhookConfiguration and/or MutatingWebhookConfiguration (default both). Sends one paged list
    per kind, ``GET /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations`` and
    ``.../mutatingwebhookconfigurations``. Answers ``{check, posture, ok, findings, allowed, examined}``:
    each finding names the configuration, the webhook and its failurePolicy.
    """
    chosen = kinds or list(guardrails.WEBHOOK_KINDS)
    unknown = sorted(set(chosen) - set(guardrails.WEBHOOK_KINDS))
    if unknown:
        raise ActivityFailed(f"kinds may hold {' and '.join(guardrails.WEBHOOK_KINDS)} only, got {', '.join(unknown)}")
    lists = {kind: Listed(ADMISSION_GROUP, kind.lower() + "s") for kind in guardrails.WEBHOOK_KINDS if kind in chosen}
    read = read_lists(kube_api(configuration, secrets), lists)
    findings, allowed = guardrails.webhook_offenders(read, configurations or [])
    return _guardrail_posture("security-webhooks-fail-closed", findings, allowed,
                              {lists[kind].plural: len(items) for kind, items in read.items()})


@typed_activity
def security_policy_bindings_deny(
    policies: list[str] | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Held when every ValidatingAdmissionPolicyBinding of the security policies has ``Deny`` among its
    ``validationActions`` (``[Deny]``, ``[Deny, Audit]``): ``Warn`` and ``Audit`` alone report a violation
    and admit the request.

    `policies` are glob patterns over policy names; empty or unset, every binding is judged. With
    `policies`, each policy they name that no binding binds is a finding (it is never evaluated), and so is
    a pattern naming no policy (it is missing). A binding whose policy does not exist is a finding (it
    enforces nothing). Sends ``GET /apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies`` and
    ``.../validatingadmissionpolicybindings``, paged. Answers ``{check, posture, ok, findings, allowed,
    examined}``: each finding names the binding (or policy), the policy and the actions.
    """
    lists = {"policies": Listed(ADMISSION_GROUP, "validatingadmissionpolicies"),
             "bindings": Listed(ADMISSION_GROUP, "validatingadmissionpolicybindings")}
    read = read_lists(kube_api(configuration, secrets), lists)
    findings, allowed = guardrails.binding_offenders(read["policies"], read["bindings"], policies or [])
    return _guardrail_posture("security-policy-bindings-deny", findings, allowed,
                              {"validatingadmissionpolicies": len(read["policies"]),
                               "validatingadmissionpolicybindings": len(read["bindings"])})
