"""Probes that ask the API server whether risky workloads are admitted."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.injection import PROBE_MODES, attempt_techniques
from chaoskirvis.techniques import lookup, lookup_all
from chaoskirvis.techniques.manifests import DEFAULT_IMAGE
from chaoskirvis.techniques.unit import unknown_options

__all__ = ["risky_pod_admission", "risky_pod_is_denied", "techniques_admission"]


@typed_activity
def risky_pod_admission(
    namespace: str,
    techniques: list[str],
    mode: str = "dry-run",
    image: str = DEFAULT_IMAGE,
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Ask the API server whether a pod carrying all `techniques` together would be admitted.

    `mode` is ``dry-run`` (server-side dry run: full admission, nothing stored; the default) or
    ``create-and-delete`` (a real create, deleted at once: for controls that cannot take part in a dry
    run). Returns the outcome (``blocked``, ``allowed`` or ``inconclusive``) with its evidence; the
    outcome also counts in the run's ledger, so `injections_blocked` is false if this one was allowed.

    `as_user` (with `as_groups`) or `as_service_account` (``namespace/name``) makes the attempt as that
    identity (see `chaoskirvis.rbac.actions.inject_identity_technique`): RBAC's refusal of it is ``blocked``.
    """
    return attempt_techniques(
        namespace, techniques, mode=mode, allowed_modes=PROBE_MODES, image=image, options=options,
        allow_protected_namespaces=allow_protected_namespaces,
        as_user=as_user, as_groups=as_groups, as_service_account=as_service_account, identity_via=identity_via,
        configuration=configuration, secrets=secrets,
    )


@typed_activity
def risky_pod_is_denied(
    namespace: str,
    techniques: list[str],
    mode: str = "dry-run",
    image: str = DEFAULT_IMAGE,
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """True when an admission control denies a pod carrying `techniques` in `namespace`.

    The same check as `risky_pod_admission`, as a yes/no question (tolerance: true). An inconclusive
    dry run is not a denial. Beware: in the steady state *before* the method a false answer does not
    fail `chaos run` (it exits 0); use it after an injection, in the method, or use `injections_blocked`.

    `as_user` (with `as_groups`) or `as_service_account` (``namespace/name``) makes the attempt as that
    identity (see `chaoskirvis.rbac.actions.inject_identity_technique`): RBAC's refusal of it is ``blocked``.
    """
    outcome = risky_pod_admission(
        namespace, techniques, mode=mode, image=image, options=options,
        allow_protected_namespaces=allow_protected_namespaces,
        as_user=as_user, as_groups=as_groups, as_service_account=as_service_account, identity_via=identity_via,
        configuration=configuration, secrets=secrets,
    )
    return outcome["outcome"] == "blocked"


@typed_activity
def techniques_admission(
    namespace: str,
    techniques: list[str],
    mode: str = "dry-run",
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Ask, technique by technique, whether each would be admitted (one object per technique).

    Returns ``{"all_blocked": bool, "outcomes": {technique id: outcome with evidence}}``; each outcome
    counts in the run's ledger. Works for every family (pods, Services, NetworkPolicies).

    `as_user` (with `as_groups`) or `as_service_account` (``namespace/name``) makes the attempt as that
    identity (see `chaoskirvis.rbac.actions.inject_identity_technique`): RBAC's refusal of it is ``blocked``.
    """
    unknown_options(lookup_all(techniques), options)
    outcomes = {
        technique: attempt_techniques(
            namespace, [technique], mode=mode, allowed_modes=PROBE_MODES,
            options={k: v for k, v in (options or {}).items() if k in lookup(technique).options},
            allow_protected_namespaces=allow_protected_namespaces,
        as_user=as_user, as_groups=as_groups, as_service_account=as_service_account, identity_via=identity_via,
        configuration=configuration, secrets=secrets,
        )
        for technique in techniques
    }
    return {"all_blocked": all(o["outcome"] == "blocked" for o in outcomes.values()), "outcomes": outcomes}
