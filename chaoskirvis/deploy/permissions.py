"""What the in-cluster runner must be allowed to do for a selection of experiments, activity by activity.

Each activity `kirvis deploy` knows says what its requests need (`ACTIVITIES`), from the same knowledge the
activity itself uses: the technique catalog says which kind of object a technique builds
(`techniques.manifests.TARGET_KINDS`, `CONTROLLERS`), the activity's own signature gives the defaults of
the arguments an experiment leaves out, and the experiment's configuration resolves ``${namespace}``.
What the ledger does for every attempt (the run record, restore's reads and deletes, the sweep of expired
leftovers of earlier runs) is `_record`'s; what `kirvis cleanup --expired -n NS --kind K...` needs is
`cleanup_grants`'s: the kinds the selection's attempts store in NS (`swept_kinds`), and the run records; what
`kirvis run --keep-journals-in NS` needs is `keep_grants`'. The evidence control asks who we are
(``selfsubjectreviews``) and the cluster version (``/version``): every authenticated identity may by
Kubernetes' default RBAC (``system:basic-user``, ``system:public-info-viewer``), so nothing is generated
for them.

An activity, control or provider this table does not know is an error (`DeployError`) naming it: a grant
guessed for it would be either too wide or, silently, too narrow. Some are refused on purpose (`REFUSED`, with
the reason in the message): acting as another identity needs `impersonate`, a binding `bind`, and granting a
CronJob those is a person's decision. tests/test_deploy_least_privilege.py proves the grants for the default
selection are enough (the suite holds as the ServiceAccount) and each rule needed (without it the job fails);
tests/test_deploy_families.py the same for detection, runtime, posture and node experiments.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from chaoslib import substitute
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.admission import CHANGE_MODES, MODES
from chaoskirvis.ledger.refs import (CONFIG_MAP, GUARDRAIL_KINDS, JOB, NAMESPACE, POD, SWEPT_KINDS, Kind,
                                    namespace_problem)
from chaoskirvis.nodes.actions import NODE
from chaoskirvis.nodes.mirror import STATIC_COMPONENTS, mirror_ref
from chaoskirvis.posture.guardrails import WEBHOOK_KINDS
from chaoskirvis.posture.probes import ADMISSION_GROUP, RBAC_GROUP
from chaoskirvis.targets import check_namespace
from chaoskirvis.techniques import lookup, lookup_all
from chaoskirvis.techniques.manifests import CONTROLLERS, TARGET_KINDS
from chaoskirvis.techniques.nodes import node_technique

__all__ = ["Grant", "Rule", "DeployError", "ACTIVITIES", "REFUSED", "experiment_grants", "swept_kinds", "cleanup_grants",
           "keep_grants", "merge"]


# What workload and exposure techniques build: namespaced objects whose create RBAC checks as it is. The
# others need more than their own verbs (a binding needs `bind` on its role, a Role `escalate`, a CSR approval
# `approve` on its signer) or are cluster-scoped; they come with the activities that use them.
_TARGETS = {target: TARGET_KINDS[target] for target in ("pod", "service", "networkpolicy")}
# What a guardrail technique changes, by its unit's target (`namespace`, `networkpolicy`...).
_GUARDRAIL_TARGETS = {kind.kind.lower(): kind for kind in GUARDRAIL_KINDS}


class DeployError(Exception):
    """The selection cannot be deployed as asked; the message says which file and activity, and why."""


@dataclass(frozen=True)
class Grant:
    """`verbs` on `resource` of API `group` ("" is core) in `namespace` (None: cluster-scoped), only on the
    objects `names` when given, and why; `stores`: the run creates objects of this kind there, marked as its
    own (what `kirvis cleanup` sweeps by label)."""

    namespace: str | None
    group: str
    resource: str
    verbs: tuple[str, ...]
    why: str
    names: tuple[str, ...] = ()
    stores: bool = False
    record: bool = False  # the run record: cleanup sweeps the namespaces that hold one


def _grant(kind: Kind, namespace: str, verbs: Iterable[str], why: str, names: tuple[str, ...] = (),
           stores: bool = False, subresource: str = "") -> Grant:
    return Grant(namespace if kind.namespaced else None, kind.api_version.rpartition("/")[0],
                 kind.plural + (f"/{subresource}" if subresource else ""), tuple(verbs), why, names, stores)


def _record(namespace: str, stores: bool) -> list[Grant]:
    """The run record `kirvis-ledger-<run id>` in `namespace`: written before each create (create, then patch
    for each further object), deleted by restore_run; read by name by restore (a record changed since, or
    one a dry run never wrote) and listed by the sweep of earlier runs' expired leftovers."""
    verbs = ("create", "patch", "get", "list", "delete") if stores else ("get", "list")
    return [replace(_grant(CONFIG_MAP, namespace, verbs, "the run record"), record=True)]


def _attempt(namespace: Any, techniques: Any, mode: str, controller: str | None, where: str) -> list[Grant]:
    """An attempt (`chaoskirvis.injection.attempt_techniques`) at the object carrying `techniques`."""
    if not isinstance(namespace, str) or namespace_problem(namespace):
        raise DeployError(f"{where}: namespace {namespace!r} is not a namespace name; give the experiment's "
                          "configuration a fixed namespace (a Role is granted there)")
    try:
        check_namespace(namespace, False)
        units = lookup_all(techniques)
    except ActivityFailed as exc:
        raise DeployError(f"{where}: {exc}") from None
    if mode not in MODES:
        raise DeployError(f"{where}: unknown mode {mode!r}: use one of {', '.join(MODES)}")
    targets = {unit.target for unit in units}
    target = targets.pop() if len(targets) == 1 else None
    if target not in _TARGETS or (controller and target != "pod"):
        raise DeployError(f"{where}: kirvis deploy does not compute the permissions of techniques "
                          f"{', '.join(u.id for u in units)} (target {target or 'mixed'}) yet")
    if controller is not None and controller not in CONTROLLERS:
        raise DeployError(f"{where}: unknown controller {controller!r}: use one of {', '.join(CONTROLLERS)}")
    kind = CONTROLLERS[controller] if controller else _TARGETS[target]
    stores = mode != "dry-run"
    # create (a dry run is a create too); restore reads by name what the run stored, then deletes it
    grants = [_grant(kind, namespace, ("create", "get", "delete") if stores else ("create",),
                     f"{'+'.join(u.id for u in units)} ({mode})", stores=stores)]
    if controller:
        grants.append(_grant(POD, namespace, ("create",), f"{controller}'s pod template, by dry run"))
    return grants + _record(namespace, stores)


def _pod_attempt(mode: str | None = None) -> Callable[[dict[str, Any], str], list[Grant]]:
    return lambda a, where: _attempt(a["namespace"], a["techniques"], mode or a["mode"], None, where)


def _workload(a: dict[str, Any], where: str) -> list[Grant]:
    return _attempt(a["namespace"], a["techniques"], "create", a["controller"], where)


def _techniques_admission(a: dict[str, Any], where: str) -> list[Grant]:
    return [grant for technique in a["techniques"] or []
            for grant in _attempt(a["namespace"], [technique], a["mode"], None, where)]


def _exposure(mode: str | None = None) -> Callable[[dict[str, Any], str], list[Grant]]:
    def needs(a: dict[str, Any], where: str) -> list[Grant]:
        if a.get("opt_in_label") or a.get("namespace") is None:
            raise DeployError(f"{where}: a namespace drawn by opt_in_label is not known before the run; give "
                              "the experiment a fixed namespace (a Role is granted there)")
        if _family(a["technique"], where) != "exposure":
            raise DeployError(f"{where}: technique {a['technique']} is not a port-injection technique")
        return _attempt(a["namespace"], [a["technique"]], mode or a["mode"], None, where)
    return needs


def _guardrail(a: dict[str, Any], where: str) -> list[Grant]:
    """`tamper_guardrail` as the runner: it reads the object the experiment names, then patches it (or deletes
    it, for a technique that deletes); in ``change`` mode restore puts it back (update on the version read, or
    create for a deleted one). Granted on that object alone (resourceNames): in its namespace for a
    NetworkPolicy and for the namespace itself (kube-apiserver authorizes a request on namespace N as one in
    N, so a RoleBinding there grants it); cluster-wide only for a ValidatingAdmissionPolicyBinding or a
    ValidatingWebhookConfiguration."""
    namespace, mode = a["namespace"], a["mode"]
    if _family(a["technique"], where) != "guardrail":
        raise DeployError(f"{where}: technique {a['technique']} is not a guardrail technique")
    if mode not in CHANGE_MODES:
        raise DeployError(f"{where}: unknown mode {mode!r}: use one of {', '.join(CHANGE_MODES)}")
    if not isinstance(namespace, str) or namespace_problem(namespace):
        raise DeployError(f"{where}: namespace {namespace!r} is not a namespace name; give the experiment's "
                          "configuration a fixed namespace")
    unit = lookup(a["technique"])
    kind = _GUARDRAIL_TARGETS[unit.target]
    name = namespace if kind == NAMESPACE else a["name"]
    if not isinstance(name, str) or not name:
        raise DeployError(f"{where}: name the {kind.kind} the technique changes (argument name)")
    changes = unit.apply is not None
    verbs = ("get", "patch", *(("update",) if mode == "change" else ())) if changes else ("get", "delete")
    why = f"{unit.id} ({mode}) of {name}"
    if kind == NAMESPACE:  # a request on a namespace is in that namespace for RBAC (as RequestInfo reads the URL)
        grants = [Grant(namespace, "", NAMESPACE.plural, verbs, why, (name,))]
    else:
        grants = [_grant(kind, namespace, verbs, why, (name,))]
    if mode == "change" and not changes:  # restore recreates what was deleted: a create names no object, so
        grants.append(_grant(kind, namespace, ("create",), f"{why}: put back"))  # resourceNames cannot hold it
    return [*grants, *_record(namespace, mode == "change")]


def _family(technique: Any, where: str) -> str:
    try:
        return lookup(technique).family
    except ActivityFailed as exc:
        raise DeployError(f"{where}: {exc}") from None


def _nothing(a: dict[str, Any], where: str) -> list[Grant]:
    """No Kubernetes request: the run's own state (restore_run's requests are the attempts' and _record's)."""
    return []


def _http_poll(a: dict[str, Any], where: str) -> list[Grant]:
    """`alert_in_alertmanager`, `alert_in_http_query`: HTTP to the alerting system, no Kubernetes request. A
    `token_secret` or `ca_file` would have to be in the job's pod, which kirvis deploy gives neither."""
    given = [argument for argument in ("token_secret", "ca_file") if a.get(argument)]
    if given:
        raise DeployError(f"{where}: {' and '.join(given)} would have to be in the job's pod (an environment "
                          "variable, a mounted file), which kirvis deploy does not render; leave them out, or add "
                          "them to the rendered CronJob yourself")
    return []


def _fixed_namespace(namespace: Any, where: str, argument: str = "namespace") -> str:
    if not isinstance(namespace, str) or namespace_problem(namespace):
        raise DeployError(f"{where}: {argument} {namespace!r} is not a namespace name; give the experiment's "
                          "configuration a fixed one (a Role is granted there)")
    return namespace


def _writable_namespace(namespace: Any, where: str) -> str:
    try:
        return check_namespace(_fixed_namespace(namespace, where))
    except ActivityFailed as exc:
        raise DeployError(f"{where}: {exc}") from None


def _events(a: dict[str, Any], where: str) -> list[Grant]:
    """`alert_in_kubernetes_events`: a list then watches of the Events in the namespace it names, or, naming
    none, of every namespace's (a ClusterRole: the only cluster-wide read of this family)."""
    namespace = a["namespace"] and _fixed_namespace(a["namespace"], where)
    return [Grant(namespace or None, "", "events", ("list", "watch"),
                  f"Kubernetes Events {'in ' + namespace if namespace else 'of every namespace'}")]


def _falco(a: dict[str, Any], where: str) -> list[Grant]:
    """`alert_in_falco_logs`: Falco's pods listed by label in Falco's namespace, and their logs followed."""
    namespace = _fixed_namespace(a["namespace"], where)
    return [_grant(POD, namespace, ("list",), "Falco's pods"),
            _grant(POD, namespace, ("get",), "Falco's logs", subresource="log")]


_POSTURE_RBAC = [Grant(None, RBAC_GROUP, plural, ("list",), "posture: every RBAC object, one list each")
                 for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")]


def _posture_rbac(a: dict[str, Any], where: str) -> list[Grant]:
    """The RBAC posture probes read the four RBAC lists of the whole cluster, whatever they ask."""
    return list(_POSTURE_RBAC)


def _cluster_lists(*resources: tuple[str, str]) -> list[Grant]:
    return [Grant(None, group, plural, ("list",), f"posture: every {plural}") for group, plural in resources]


def _namespaces_pod_security(a: dict[str, Any], where: str) -> list[Grant]:
    return _cluster_lists(("", "namespaces"))


def _namespaces_default_deny(a: dict[str, Any], where: str) -> list[Grant]:
    return _cluster_lists(("", "namespaces"), ("networking.k8s.io", "networkpolicies"))


def _webhooks_fail_closed(a: dict[str, Any], where: str) -> list[Grant]:
    chosen = a["kinds"] or list(WEBHOOK_KINDS)
    unknown = sorted(set(chosen) - set(WEBHOOK_KINDS)) if isinstance(chosen, list) else [chosen]
    if unknown:
        raise DeployError(f"{where}: unknown webhook kind(s) {', '.join(map(str, unknown))}: use "
                          f"{', '.join(WEBHOOK_KINDS)}")
    return _cluster_lists(*((ADMISSION_GROUP, kind.lower() + "s") for kind in WEBHOOK_KINDS if kind in chosen))


def _policy_bindings_deny(a: dict[str, Any], where: str) -> list[Grant]:
    return _cluster_lists((ADMISSION_GROUP, "validatingadmissionpolicies"),
                          (ADMISSION_GROUP, "validatingadmissionpolicybindings"))


def _exec_pod(namespace: str, why: str) -> list[Grant]:
    """A pod of the run's own (created, read until it runs, deleted by restore) and commands run in it (a
    WebSocket exec is authorized as get and as create)."""
    return [_grant(POD, namespace, ("create", "get", "delete"), why, stores=True),
            _grant(POD, namespace, ("get", "create"), f"{why}: exec", subresource="exec")]


def _runtime(a: dict[str, Any], where: str) -> list[Grant]:
    """`run_runtime_technique` in a pod of the run's own (an existing `pod` is not granted: its name is the
    experiment's, and exec into it is a grant over that workload)."""
    if a["pod"]:
        raise DeployError(f"{where}: kirvis deploy grants exec only into the run's own pod; leave pod out")
    namespace = _writable_namespace(a["namespace"], where)
    try:
        unit = lookup(a["technique"])
    except ActivityFailed as exc:
        raise DeployError(f"{where}: {exc}") from None
    if unit.target != "exec":
        raise DeployError(f"{where}: technique {unit.id} is not a runtime technique")
    return [*_exec_pod(namespace, f"{unit.id}: the run's pod"), *_record(namespace, True)]


def _node_fault(a: dict[str, Any], where: str) -> list[Grant]:
    """`inject_node_fault`: the node named (its gates' labels), the run's agent pod and its commands in
    `namespace`, and for a static pod manifest's content change the mirror pod kube-system/<component>-<node>
    (its config hash, until the kubelet restarted the component)."""
    namespace, node = _writable_namespace(a["namespace"], where), a["node"]
    if not isinstance(node, str) or not node:
        raise DeployError(f"{where}: name the node (argument node)")
    try:
        change = node_technique(a["technique"]).node_change
    except ActivityFailed as exc:
        raise DeployError(f"{where}: {exc}") from None
    grants = [Grant(None, "", NODE.plural, ("get",), f"{a['technique']}: node {node}'s gates", (node,)),
              *_exec_pod(namespace, f"{a['technique']}: the run's agent on {node}"), *_record(namespace, True)]
    if not a["dry_run"] and change.kind in ("flag", "config") and change.component in STATIC_COMPONENTS:
        mirror = mirror_ref(change.component, node)
        grants.append(_grant(POD, mirror.namespace, ("get",), f"{a['technique']}: the mirror pod's config hash",
                             (mirror.name,)))
    return grants


def _kube_bench(a: dict[str, Any], where: str) -> list[Grant]:
    """`kube_bench_detects` / `cis_checks_pass`: the run's kube-bench Job in `namespace` (read until it finishes,
    deleted by restore), its pod found by the `job-name` label, that pod's log."""
    namespace = _writable_namespace(a["namespace"], where)
    return [_grant(JOB, namespace, ("create", "get", "delete"), "the kube-bench Job", stores=True),
            _grant(POD, namespace, ("list",), "the kube-bench Job's pod"),
            _grant(POD, namespace, ("get",), "kube-bench's output", subresource="log"),
            *_record(namespace, True)]


# (module, function) -> what its requests need, given its arguments (defaults filled in) and where it is used.
ACTIVITIES: dict[tuple[str, str], Callable[[dict[str, Any], str], list[Grant]]] = {
    ("chaoskirvis.ledger.probes", "injections_blocked"): _nothing,
    ("chaoskirvis.ledger.probes", "injections_detected"): _nothing,
    ("chaoskirvis.ledger.actions", "restore_run"): _nothing,
    ("chaoskirvis.workload.actions", "inject_risky_pod"): _pod_attempt("create"),
    ("chaoskirvis.workload.actions", "inject_risky_workload"): _workload,
    ("chaoskirvis.workload.probes", "risky_pod_admission"): _pod_attempt(),
    ("chaoskirvis.workload.probes", "risky_pod_is_denied"): _pod_attempt(),
    ("chaoskirvis.workload.probes", "techniques_admission"): _techniques_admission,
    ("chaoskirvis.exposure.actions", "inject_exposure"): _exposure("create"),
    ("chaoskirvis.exposure.probes", "exposure_admission"): _exposure(),
    ("chaoskirvis.guardrails.actions", "tamper_guardrail"): _guardrail,
    ("chaoskirvis.detection.probes", "alert_in_kubernetes_events"): _events,
    ("chaoskirvis.detection.probes", "alert_in_falco_logs"): _falco,
    ("chaoskirvis.detection.probes", "alert_in_alertmanager"): _http_poll,
    ("chaoskirvis.detection.probes", "alert_in_http_query"): _http_poll,
    ("chaoskirvis.posture.probes", "who_can"): _posture_rbac,
    ("chaoskirvis.posture.probes", "effective_permissions"): _posture_rbac,
    ("chaoskirvis.posture.probes", "no_wildcard_roles_bound"): _posture_rbac,
    ("chaoskirvis.posture.probes", "no_anonymous_bindings"): _posture_rbac,
    ("chaoskirvis.posture.probes", "no_service_account_reads_secrets_cluster_wide"): _posture_rbac,
    ("chaoskirvis.posture.probes", "namespaces_enforce_pod_security"): _namespaces_pod_security,
    ("chaoskirvis.posture.probes", "namespaces_have_default_deny"): _namespaces_default_deny,
    ("chaoskirvis.posture.probes", "security_webhooks_fail_closed"): _webhooks_fail_closed,
    ("chaoskirvis.posture.probes", "security_policy_bindings_deny"): _policy_bindings_deny,
    ("chaoskirvis.runtime.actions", "run_runtime_technique"): _runtime,
    ("chaoskirvis.nodes.actions", "inject_node_fault"): _node_fault,
    ("chaoskirvis.nodes.probes", "kube_bench_detects"): _kube_bench,
    ("chaoskirvis.nodes.probes", "cis_checks_pass"): _kube_bench,
}
_IMPERSONATION = ("runs as another identity (impersonation, or a service account's token): the CronJob would "
                  "need `impersonate` on users, groups or service accounts (or create on serviceaccounts/token), "
                  "and so could act as them on every run; that is a privilege decision for a person to make, so "
                  "kirvis deploy does not generate it: run this experiment from a workstation or CI, or grant "
                  "the ServiceAccount the impersonation yourself")
_IDENTITY = f"makes identity objects (roles, bindings, tokens, certificate requests) or {_IMPERSONATION}"
_BIND = ("creates role bindings or roles: the CronJob would need `bind` on the bound role (`escalate` for a "
         "role), with which a ServiceAccount can grant itself anything that role holds; that is a privilege "
         "decision for a person to make, so kirvis deploy does not generate it")
# (module, function) kirvis deploy refuses on purpose -> why; a module prefix for another extension's.
REFUSED: dict[tuple[str, str], str] = {
    ("chaoskirvis.rbac.actions", "inject_rbac_grant"): _BIND,
    ("chaoskirvis.rbac.probes", "rbac_grant_admission"): _BIND,
    ("chaoskirvis.rbac.actions", "inject_identity_technique"): _IDENTITY,
    ("chaoskirvis.rbac.probes", "identity_technique_admission"): _IDENTITY,
    ("chaoskirvis.detection.actions", "start_alert_receiver"): (
        "listens for alerts in the run's process: in the job's pod nothing outside can reach it (no Service, a "
        "new pod address every run, and its token would have to be a Secret the alerting side shares); poll "
        "the alerting system instead (alert_in_alertmanager, alert_in_http_query)"),
}
_REFUSED_MODULES = {"chaosk8s.": ("is an activity of chaostoolkit-kubernetes: what it may scale, delete or read is "
                                  "its own (any workload it names), not computed here")}
# Controls whose requests every authenticated identity may make (see the module docstring).
CONTROLS = {"chaoskirvis.controls.evidence"}
_IDENTITY_ARGUMENTS = ("as_user", "as_groups", "as_service_account")


def _arguments(module: str, func: str, given: dict[str, Any], where: str) -> dict[str, Any]:
    """`given` over the activity's own defaults (its signature: the knowledge lives with the activity)."""
    parameters = inspect.signature(getattr(importlib.import_module(module), func)).parameters
    unknown = sorted(set(given) - set(parameters) - {"configuration", "secrets"})
    if unknown:
        raise DeployError(f"{where}: unknown argument(s) {', '.join(unknown)}; it takes "
                          f"{', '.join(name for name in parameters if name not in ('configuration', 'secrets'))}")
    return {**{name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty},
            **given}


def _provider(activity: Any) -> dict[str, Any]:
    provider = activity.get("provider") if isinstance(activity, dict) else None
    return provider if isinstance(provider, dict) else {}


def _name(activity: Any) -> Any:
    return activity.get("name") if isinstance(activity, dict) else activity


def _label(activity: Any) -> str:
    provider = _provider(activity)
    if provider.get("type") != "python":
        return f"a {provider.get('type')} provider"
    return f"{provider.get('module')}.{provider.get('func')}"


def _refusal(provider: dict[str, Any]) -> str | None:
    """Why kirvis deploy refuses this activity on purpose, or None."""
    module, func = provider.get("module"), provider.get("func")
    if provider.get("type") != "python" or not isinstance(module, str):
        return None
    return REFUSED.get((module, func)) or next(
        (why for prefix, why in _REFUSED_MODULES.items() if module.startswith(prefix)), None)


def experiment_grants(name: str, experiment: dict[str, Any]) -> list[Grant]:
    """What the runner needs for every activity of `experiment` (file `name`), or `DeployError`: naming every
    activity (or the control) whose permissions are not known here, else the first activity whose arguments
    cannot be granted exactly. A `ref` to an activity declared earlier is that activity, counted once."""
    configuration = {k: v for k, v in (experiment.get("configuration") or {}).items() if not isinstance(v, dict)}
    for control in experiment.get("controls") or []:
        module = _provider(control).get("module")
        if module not in CONTROLS:
            label = control.get("name") if isinstance(control, dict) else control
            raise DeployError(f"{name}: control {label!r} ({module}) is not one kirvis deploy knows the "
                              "permissions of")
    activities = [activity for activity in (*((experiment.get("steady-state-hypothesis") or {}).get("probes") or []),
                                            *(experiment.get("method") or []), *(experiment.get("rollbacks") or []))
                  if not (isinstance(activity, dict) and "ref" in activity)]
    refused: dict[str, list[Any]] = {}
    for activity in activities:
        if why := _refusal(_provider(activity)):
            refused.setdefault(why, []).append(activity)
    if refused:
        raise DeployError(f"{name}: kirvis deploy does not grant " + "; nor ".join(
            f"{', '.join(f'activity {_name(a)!r} ({_label(a)})' for a in refusing)}: "
            f"{'it' if len(refusing) == 1 else 'each'} {why}" for why, refusing in refused.items()))
    unknown = [activity for activity in activities if _provider(activity).get("type") != "python"
               or (_provider(activity).get("module"), _provider(activity).get("func")) not in ACTIVITIES]
    if unknown:
        raise DeployError(
            f"{name}: the permissions of {', '.join(f'activity {_name(a)!r} ({_label(a)})' for a in unknown)} "
            f"are not known; those of {', '.join(f'{m}.{f}' for m, f in ACTIVITIES)} are")
    grants = []
    for activity in activities:
        provider = _provider(activity)
        where = f"{name}: activity {_name(activity)!r} ({_label(activity)})"
        needs = ACTIVITIES[(provider["module"], provider["func"])]
        arguments = _arguments(provider["module"], provider["func"],
                               substitute(provider.get("arguments") or {}, configuration, {}), where)
        if any(arguments.get(argument) for argument in _IDENTITY_ARGUMENTS):
            raise DeployError(f"{where}: kirvis deploy does not grant an activity that {_IMPERSONATION}")
        grants += [replace(grant, why=f"{provider['func']} in {name}: {grant.why}")
                   for grant in needs(arguments, where)]
    return grants


def swept_kinds(grants: Iterable[Grant]) -> dict[str, tuple[Kind, ...]]:
    """Each namespace `grants` name -> the kinds the run stores there (in `SWEPT_KINDS`' order, controllers
    first), which `kirvis cleanup --expired --kind` sweeps; a namespace where it stores nothing (dry runs, a
    guardrail change) maps to no kind: there cleanup reads the run records only. Only the namespaces that hold a
    run record: where a run only reads (Falco's, kube-system's mirror pod, Events), there is nothing to sweep."""
    grants = list(grants)
    stored = {(grant.namespace, grant.group, grant.resource) for grant in grants if grant.stores}
    return {namespace: tuple(kind for kind in SWEPT_KINDS
                             if (namespace, kind.api_version.rpartition("/")[0], kind.plural) in stored)
            for namespace in sorted({grant.namespace for grant in grants if grant.record})}


def cleanup_grants(sweeps: dict[str, tuple[Kind, ...]]) -> list[Grant]:
    """`kirvis cleanup --expired -n NS --kind K...` for each namespace of `sweeps` and its kinds: it lists
    those kinds and the run records (ConfigMaps) by the ownership labels, reads what a record names (kinds the
    run stores), deletes what carries every mark of an expired run."""
    return [_grant(kind, namespace, ("list", "get", "delete"), "kirvis cleanup --expired")
            for namespace, kinds in sweeps.items() for kind in (*kinds, CONFIG_MAP)]


def keep_grants(namespace: str) -> list[Grant]:
    """`kirvis run --keep-journals-in NS` (chaoskirvis.run.keep): creates a ConfigMap per journal, lists the
    experiment's kept journals by label, deletes the oldest by name."""
    return [_grant(CONFIG_MAP, namespace, ("create", "list", "delete"), "kirvis run --keep-journals-in")]


_VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete")


Rule = tuple[str | None, str, str, tuple[str, ...]]  # (namespace or None, group, resource, resource names)


def merge(grants: Iterable[Grant]) -> dict[Rule, tuple[tuple[str, ...], list[str]]]:
    """(namespace, group, resource, names) -> (verbs, sorted; the reasons): one RBAC rule each, and one per
    named object (a rule's verbs apply to each name it lists: two objects may need different ones)."""
    merged: dict[Rule, tuple[set[str], list[str]]] = {}
    for grant in grants:
        key = (grant.namespace, grant.group, grant.resource, grant.names)
        verbs, why = merged.setdefault(key, (set(), []))
        verbs.update(grant.verbs)
        if grant.why not in why:
            why.append(grant.why)
    return {key: (tuple(sorted(verbs, key=lambda v: (_VERB_ORDER.index(v) if v in _VERB_ORDER else 99, v))), why)
            for key, (verbs, why) in sorted(merged.items(), key=lambda item: (item[0][0] or "", *item[0][1:]))}
