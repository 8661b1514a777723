"""One attempt at introducing techniques, shared by every inject action and admission probe.

The attempt is recorded in the run's ledger whatever happens (an error too), so the hypothesis over
what the run introduced can never pass on an attempt that went wrong.
Before the process's first attempt in a namespace, the expired leftovers of earlier runs there are
removed (`chaoskirvis.ledger.expiry`, reported in the journal). A missing namespace is read from the
attempt's own answer (`targets.missing_namespace`), not asked beforehand.

An attempt may be made *as an identity* (`as_user`, `as_groups`, `as_service_account`): the attempt's own
request carries Impersonate-* headers, or with ``identity_via: token`` a TokenRequest token of that
service account, bound to a Secret the run creates and restores (the token dies with it). Everything
else (the record, reads of our marks, deletes, restore) stays the runner's. Without an identity nothing
is added, not even a request.

A guardrail technique (`attempt_guardrail`) changes an object the experiment names instead of creating
one: the runner reads it, the technique's unit says what it becomes, and `admission.attempt_change` records
the original and sends the change (as the identity, when given).
"""
from __future__ import annotations

import copy
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis.admission import CHANGE_MODES, MODES, attempt_change, attempt_create, attempt_csr, attempt_request
from chaoskirvis.client import ApiError, Identity, KubeAPI, kube_api
from chaoskirvis.ledger import record
from chaoskirvis.ledger.expiry import sweep_expired
from chaoskirvis.ledger.refs import (CERTIFICATE_SIGNING_REQUEST, NAMESPACE, NETWORK_POLICY, POD, SECRET,
                                     VALIDATING_ADMISSION_POLICY_BINDING, VALIDATING_WEBHOOK_CONFIGURATION, ObjectRef)
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import RunState, run_state
from chaoskirvis.targets import check_namespace
from chaoskirvis.techniques import lookup, lookup_all
from chaoskirvis.techniques.unit import unknown_options
from chaoskirvis.techniques.manifests import build_manifest, build_token_secret

__all__ = ["attempt_techniques", "attempt_guardrail", "PROBE_MODES", "IDENTITY_VIA", "TOKEN_SECONDS"]

PROBE_MODES = ("dry-run", "create-and-delete")
IDENTITY_VIA = ("impersonation", "token")
TOKEN_SECONDS = 600


def attempt_techniques(
    namespace: str,
    techniques: list[str],
    *,
    mode: str,
    allowed_modes: tuple[str, ...] = MODES,
    image: str | None = None,
    options: dict[str, Any] | None = None,
    controller: str | None = None,
    allow_protected_namespaces: bool = False,
    evidence: dict[str, Any] | None = None,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Attempt an object (or the request) carrying `techniques`, as the runner or as the identity given;
    record the outcome (errors too); return its evidence."""
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    context = {"namespace": namespace, "techniques": list(techniques or []), "mode": mode, **(evidence or {})}
    try:
        if mode not in allowed_modes:
            raise ActivityFailed(f"unknown mode {mode!r}: use one of {', '.join(allowed_modes)}")
        check_namespace(namespace, allow_protected_namespaces)
        units = lookup_all(techniques)
        wanted = _wanted_identity(as_user, as_groups, as_service_account, identity_via)
        if wanted:
            context["as"] = {"user": wanted[0], "groups": list(wanted[1]), "via": identity_via}
        api = kube_api(configuration, secrets)
        if any(unit.target == "request" for unit in units):
            outcome = _attempt_request(api, state, units, namespace, options, wanted, identity_via, context,
                                       allow_protected_namespaces, configuration)
            state.add_outcome(outcome)
            _log(run_id, namespace, "request", outcome)
            return outcome
        kind, manifest = build_manifest(
            units, namespace=namespace, run_id=run_id, options=options, controller=controller,
            configuration=configuration, **({"image": image} if image is not None else {}),
        )
        ref = ObjectRef(kind, namespace if kind.namespaced else None, manifest["metadata"]["name"], home=namespace)
        context.update(run_id=run_id, techniques=[t.id for t in units],
                       attack=sorted({a for t in units for a in t.attack}))
        details = {k: v for k, v in context.items() if k not in ("namespace", "mode")}
        with state.lock:  # from here a write may happen: restore must look here even if interrupted mid-way
            state.namespaces.add(ref.record_namespace or namespace)
        sweep_expired(api, state, namespace)  # once per process and namespace: earlier runs' expired leftovers
        identity = wanted and _identity(api, state, wanted, identity_via, configuration)
        attempt = attempt_csr if kind == CERTIFICATE_SIGNING_REQUEST else attempt_create
        outcome = attempt(api, ref, manifest, mode=mode, state=state, configuration=configuration,
                          identity=identity or None, **details)
        if controller and outcome["outcome"] == "allowed":
            outcome = _judge_template(api, state, manifest, outcome, configuration)
    except Exception as exc:
        state.add_outcome({**context, "outcome": "error", "blocked": False, "message": str(exc)})
        raise
    state.add_outcome(outcome)
    _log(run_id, namespace, mode, outcome)
    return outcome


_GUARDRAIL_KINDS = {"namespace": NAMESPACE, "networkpolicy": NETWORK_POLICY,
                    "validatingadmissionpolicybinding": VALIDATING_ADMISSION_POLICY_BINDING,
                    "validatingwebhookconfiguration": VALIDATING_WEBHOOK_CONFIGURATION}


def attempt_guardrail(
    technique: str,
    *,
    namespace: str,
    name: str | None = None,
    mode: str = "dry-run",
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Attempt the guardrail `technique` on the object the experiment names (the namespace itself, or `name`
    in it, or the cluster-scoped `name` whose original the record in `namespace` keeps); record the outcome
    (errors too); return its evidence."""
    from chaoskirvis.ledger.changes import CHANGED_BY_ANNOTATION, content  # guardrails only: not at every start

    run_id = current_run_id(configuration)
    state = run_state(run_id)
    context: dict[str, Any] = {"namespace": namespace, "techniques": [technique], "mode": mode}
    try:
        if mode not in CHANGE_MODES:
            raise ActivityFailed(f"unknown mode {mode!r}: use one of {', '.join(CHANGE_MODES)}")
        unit = lookup(technique)
        if unit.family != "guardrail":
            raise ActivityFailed(f"{technique} is a {unit.family} technique, not a guardrail one: use the "
                                 f"{unit.family} actions")
        unknown_options([unit], options)
        resolved = unit.resolve_options(options)
        check_namespace(namespace, allow_protected_namespaces)
        if "exclude_namespaces" in resolved and resolved["exclude_namespaces"] is None:
            resolved["exclude_namespaces"] = [namespace]  # its default: the experiment's namespace
        ref = _guardrail_ref(unit.target, namespace, name)
        wanted = _wanted_identity(as_user, as_groups, as_service_account, identity_via)
        if wanted:
            context["as"] = {"user": wanted[0], "groups": list(wanted[1]), "via": identity_via}
        context.update(run_id=run_id, attack=list(unit.attack), target=str(ref))
        api = kube_api(configuration, secrets)
        original = _read_target(api, ref)
        intended = None
        if unit.apply is not None:
            intended = copy.deepcopy(original)
            unit.apply(intended, resolved)
            if content(intended) == content(original):
                raise ActivityFailed(f"{technique} would not change {ref}: it is weakened that way already, so "
                                     "the attempt would test nothing; restore it or target a guarded object")
            intended["metadata"].setdefault("annotations", {})[CHANGED_BY_ANNOTATION] = run_id
        with state.lock:  # from here a write may happen: restore must look here even if interrupted mid-way
            state.namespaces.add(namespace)
        sweep_expired(api, state, namespace)
        identity = wanted and _identity(api, state, wanted, identity_via, configuration)
        outcome = attempt_change(api, ref, original, intended, mode=mode, state=state, configuration=configuration,
                                 identity=identity or None,
                                 **{k: v for k, v in context.items() if k not in ("namespace", "mode", "as")})
    except Exception as exc:
        state.add_outcome({**context, "outcome": "error", "blocked": False, "message": str(exc)})
        raise
    state.add_outcome(outcome)
    _log(run_id, namespace, mode, outcome)
    return outcome


def _guardrail_ref(target: str, namespace: str, name: str | None) -> ObjectRef:
    """The object a guardrail technique targets, named by the experiment (never guessed)."""
    kind = _GUARDRAIL_KINDS[target]
    if kind == NAMESPACE:
        if name not in (None, namespace):
            raise ActivityFailed(f"a namespace technique changes the namespace given ({namespace}); name {name!r} "
                                 "is not that namespace")
        return ObjectRef(NAMESPACE, None, namespace, home=namespace)
    if not name:
        raise ActivityFailed(f"name the {kind.kind} to change (argument name): it is never guessed")
    ref = ObjectRef(kind, namespace if kind.namespaced else None, name, home=namespace)
    if ref.problem():
        raise ActivityFailed(f"invalid {kind.kind} name {name!r}: {ref.problem()}")
    return ref


def _read_target(api: KubeAPI, ref: ObjectRef) -> dict[str, Any]:
    """The target as the runner reads it; it must exist and hold nothing a restore would refuse."""
    try:
        original = api.get(ref.path)
    except ApiError as exc:
        if exc.status == 404:
            raise ActivityFailed(f"{ref} does not exist on {api.host}: name an existing object") from None
        raise ActivityFailed(f"could not read {ref} before changing it ({exc.status} {exc.reason}: {exc.message}); "
                             f"the runner needs get on {ref.kind.plural}") from None
    metadata = original.get("metadata") or {}
    held = [f for f in ("ownerReferences", "finalizers", "deletionTimestamp") if metadata.get(f)]
    if held:
        raise ActivityFailed(f"{ref} carries metadata.{held[0]}: a restore could not put it back from the run's "
                             "record (which never recreates those), so it is not changed")
    return original


def _log(run_id: str, namespace: str, mode: str, outcome: dict[str, Any]) -> None:
    acting = f" as {outcome['as']['user']}" if outcome.get("as") else ""
    logger.info(
        f"[{run_id}] {'+'.join(outcome['techniques'])} {outcome['kind']} in {namespace} ({mode}){acting}: "
        f"{outcome['outcome']}" + (f" by {outcome['answered_by']}" if outcome.get("answered_by") else "")
        + f" in {outcome['latency_ms']} ms"
    )


def _wanted_identity(as_user: str | None, as_groups: list[str] | None, as_service_account: str | None,
                     via: str) -> tuple[str, tuple[str, ...], str | None] | None:
    """(user name, groups, "namespace/name" of the service account or None) to act as; None for the runner."""
    if via not in IDENTITY_VIA:
        raise ActivityFailed(f"unknown identity_via {via!r}: use one of {', '.join(IDENTITY_VIA)}")
    if isinstance(as_groups, str):
        as_groups = [as_groups]
    groups = tuple(as_groups or ())
    if not all(isinstance(g, str) and g for g in groups):
        raise ActivityFailed(f"as_groups must be a list of group names, not {as_groups!r}")
    if as_user and as_service_account:
        raise ActivityFailed("give as_user or as_service_account, not both: a request has one user")
    if as_service_account:
        from chaoskirvis.techniques.identity import split_namespaced  # the identity family: only when asked for

        sa_namespace, sa_name = split_namespaced(as_service_account, "as_service_account")
        return f"system:serviceaccount:{sa_namespace}:{sa_name}", groups, as_service_account
    if groups and not as_user:
        raise ActivityFailed("as_groups needs as_user (or as_service_account): Kubernetes impersonates groups "
                             "only together with a user")
    if via == "token":
        raise ActivityFailed("identity_via: token needs as_service_account: only a service account's token can be "
                             "requested")
    return (as_user, groups, None) if as_user else None


def _identity(api: KubeAPI, state: RunState, wanted: tuple[str, tuple[str, ...], str | None], via: str,
              configuration: Configuration | None) -> Identity:
    """The identity to act as: impersonated, or with a TokenRequest token bound to a Secret of the run."""
    user, groups, service_account = wanted
    if via != "token":
        return Identity(user, groups)
    if groups:
        raise ActivityFailed("as_groups cannot go with identity_via: token: a token carries its service "
                             "account's own groups")
    if api.api_client.configuration.cert_file:
        raise ActivityFailed("identity_via: token cannot be used by a runner that authenticates with a client "
                             "certificate: the API server reads the certificate first and would answer as the "
                             "runner; use identity_via: impersonation or a token-authenticated runner")
    from chaoskirvis.techniques.identity import split_namespaced

    sa_namespace, sa_name = split_namespaced(service_account, "as_service_account")
    secret = _token_binding(api, state, sa_namespace, configuration)
    token = _request_token(api, sa_namespace, sa_name, secret, f"to act as {user}")
    return Identity(user, (), via="token", token=token, bound_to=f"{sa_namespace}/{secret['name']}")


def _token_binding(api: KubeAPI, state: RunState, namespace: str,
                   configuration: Configuration | None) -> dict[str, Any]:
    """Create the run's Secret a token is bound to (recorded first, restored like any object): name and uid."""
    check_namespace(namespace)
    manifest = build_token_secret(namespace=namespace, run_id=state.run_id, configuration=configuration)
    ref = ObjectRef(SECRET, namespace, manifest["metadata"]["name"])
    with state.lock:
        state.namespaces.add(namespace)
    try:
        record.write_intent(api, state, ref, configuration, technique="token-binding")
        created = api.create(SECRET.collection_path(namespace), manifest).body
    except ApiError as exc:
        raise ActivityFailed(
            f"could not create the Secret {ref.name} in namespace {namespace} that a token is bound to "
            f"({exc.status} {exc.reason}: {exc.message}); the runner needs create on secrets there"
        ) from None
    state.add_created(ref)
    return {"name": ref.name, "uid": (created.get("metadata") or {}).get("uid")}


def _request_token(api: KubeAPI, namespace: str, name: str, secret: dict[str, Any], why: str) -> str:
    """A TokenRequest token for service account `name`, bound to `secret`, made by the runner."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [], "expirationSeconds": TOKEN_SECONDS,
                     "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", **secret}}}
    try:
        answer = api.create(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
    except ApiError as exc:
        raise ActivityFailed(
            f"could not request a token for service account {name} in namespace {namespace} {why} "
            f"({exc.status} {exc.reason}: {exc.message}); the runner needs create on serviceaccounts/token there, "
            "and the service account must exist"
        ) from None
    token = ((answer.body.get("status") or {}).get("token"))
    if not isinstance(token, str) or not token:
        raise ActivityFailed(f"the TokenRequest for service account {name} in namespace {namespace} answered "
                             f"{answer.status} without a token")
    return token


def _attempt_request(
    api: KubeAPI, state: RunState, units: list, namespace: str, options: dict[str, Any] | None,
    wanted: tuple[str, tuple[str, ...], str | None] | None, via: str, context: dict[str, Any],
    allow_protected_namespaces: bool, configuration: Configuration | None,
) -> dict[str, Any]:
    """A request technique: its token binding first (if it issues a token), then the request as the identity."""
    if len(units) != 1:
        raise ActivityFailed(f"{', '.join(u.id for u in units)}: a request technique is attempted alone")
    unit = units[0]
    unknown_options(units, options)
    resolved = unit.resolve_options(options)
    context.update(run_id=state.run_id, techniques=[unit.id], attack=list(unit.attack), mode="request")
    with state.lock:
        state.namespaces.add(namespace)
    sweep_expired(api, state, namespace)
    bound = None
    if unit.binds_token:
        from chaoskirvis.techniques.identity import split_namespaced

        sa_namespace, _ = split_namespaced(resolved["service_account"], "option service_account")
        check_namespace(sa_namespace, allow_protected_namespaces)
        bound = _token_binding(api, state, sa_namespace, configuration)
    identity = wanted and _identity(api, state, wanted, via, configuration)
    request = unit.request(resolved, namespace, bound)
    return attempt_request(api, request, identity=identity or None,
                           **{k: v for k, v in context.items() if k != "mode"})


def _judge_template(
    api: KubeAPI, state: RunState, controller: dict[str, Any], outcome: dict[str, Any],
    configuration: Configuration | None,
) -> dict[str, Any]:
    """A controller was admitted: would the pods it creates be? Asked by dry run of its pod template.

    Pod Security only warns on templates and enforces when the controller creates the pods, so the
    pods' admission decides whether the technique is blocked.
    """
    spec = controller["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if controller["kind"] == "CronJob" else spec["template"]
    metadata = controller["metadata"]
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
           "metadata": {**template["metadata"], "name": f"{metadata['name']}-pod", "namespace": metadata["namespace"]}}
    pod_outcome = attempt_create(
        api, ObjectRef(POD, metadata["namespace"], pod["metadata"]["name"]), pod, mode="dry-run", state=state,
        configuration=configuration,
    )
    return {
        **outcome, "outcome": pod_outcome["outcome"], "blocked": pod_outcome["blocked"],
        "answered_by": pod_outcome["answered_by"] and f"{pod_outcome['answered_by']} (its pods)",
        "pod_admission": {k: pod_outcome.get(k) for k in ("outcome", "status", "message", "latency_ms")},
    }
