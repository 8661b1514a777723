"""Actions that introduce risky workloads."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.injection import attempt_techniques
from chaoskirvis.techniques.manifests import DEFAULT_IMAGE

__all__ = ["inject_risky_pod", "inject_risky_workload"]


@typed_activity
def inject_risky_pod(
    namespace: str,
    techniques: list[str],
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
    """Try to introduce a pod that carries the given techniques (e.g. ``[privileged, host-pid]``).

    The pod is really created: if the cluster admits it, it stays (recorded in the run's ledger, owned
    by the run) until the run is restored. A denial by an admission control is a successful attempt
    whose outcome is ``blocked``. Returns the outcome with its evidence: who answered, the message, the
    warnings and the latency. Raises when the attempt itself went wrong (invalid manifest, unknown
    namespace, no permission, unreachable API); the run's hypothesis then fails too. `options` sets
    technique options (see `kirvis catalog`), e.g. ``{path: /etc}`` for host-path.

    `as_user` (with `as_groups`) or `as_service_account` (``namespace/name``) makes the attempt as that
    identity (see `chaoskirvis.rbac.actions.inject_identity_technique`): RBAC's refusal of it is ``blocked``.
    """
    return attempt_techniques(
        namespace, techniques, mode="create", image=image, options=options,
        allow_protected_namespaces=allow_protected_namespaces,
        as_user=as_user, as_groups=as_groups, as_service_account=as_service_account, identity_via=identity_via,
        configuration=configuration, secrets=secrets,
    )


@typed_activity
def inject_risky_workload(
    namespace: str,
    techniques: list[str],
    controller: str = "Deployment",
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
    """Try to introduce a Deployment, DaemonSet or CronJob whose pod template carries the techniques.

    Pod Security Admission only warns on pod templates (the warnings are in the evidence) and enforces
    when the controller creates the pods; so when the controller object is admitted, its pod template
    is judged by server-side dry run, and that answer is the outcome (``blocked`` by ``PodSecurity
    (its pods)``, or ``allowed``). A CronJob is created suspended; a Deployment with one replica.

    `as_user` (with `as_groups`) or `as_service_account` (``namespace/name``) makes the attempt as that
    identity (see `chaoskirvis.rbac.actions.inject_identity_technique`): RBAC's refusal of it is ``blocked``.
    """
    return attempt_techniques(
        namespace, techniques, mode="create", image=image, options=options, controller=controller,
        allow_protected_namespaces=allow_protected_namespaces,
        as_user=as_user, as_groups=as_groups, as_service_account=as_service_account, identity_via=identity_via,
        configuration=configuration, secrets=secrets,
    )
