"""Actions that open a port: ChaoSlingr's PortChange, for Kubernetes."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.exposure.draw import DEFAULT_PORT_RANGE
from chaoskirvis.exposure.run import attempt_exposure

__all__ = ["inject_exposure"]


@typed_activity
def inject_exposure(
    technique: str = "nodeport-service",
    namespace: str | None = None,
    opt_in_label: str | None = None,
    port: int | None = None,
    port_range: str = DEFAULT_PORT_RANGE,
    seed: int | str | None = None,
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Try to open a random port: NodePort, open LoadBalancer, externalIPs, hostPort or open NetworkPolicy.

    `technique` is one of nodeport-service, open-load-balancer, external-ips, host-port,
    open-ingress-policy. The port is drawn from `port_range` (default 10000-65000) unless `port` is
    given; without `namespace`, the target is drawn among the namespaces carrying `opt_in_label`
    (e.g. ``chaoskirvis.io/opt-in=true``). `seed` makes the draws reproducible; the seed and the draws
    are in the returned evidence. The object is really created and stays, owned by the run, until
    restore; a denial by an admission control is the outcome ``blocked``.

    `as_user` (with `as_groups`) or `as_service_account` (``namespace/name``) makes the attempt as that
    identity (see `chaoskirvis.rbac.actions.inject_identity_technique`): RBAC's refusal of it is ``blocked``.
    """
    return attempt_exposure(
        technique, mode="create", allowed_modes=("create",), namespace=namespace, opt_in_label=opt_in_label,
        port=port, port_range=port_range, seed=seed, options=options,
        allow_protected_namespaces=allow_protected_namespaces,
        as_user=as_user, as_groups=as_groups, as_service_account=as_service_account, identity_via=identity_via,
        configuration=configuration, secrets=secrets,
    )
