"""Probes that ask whether a port injection would be admitted."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.exposure.draw import DEFAULT_PORT_RANGE
from chaoskirvis.exposure.run import attempt_exposure
from chaoskirvis.injection import PROBE_MODES

__all__ = ["exposure_admission"]


@typed_activity
def exposure_admission(
    technique: str = "nodeport-service",
    namespace: str | None = None,
    opt_in_label: str | None = None,
    port: int | None = None,
    port_range: str = DEFAULT_PORT_RANGE,
    seed: int | str | None = None,
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
    """Ask whether opening a random port this way would be admitted (server-side dry run by default).

    Same draws as `inject_exposure` (`seed`, `port_range`, `opt_in_label`); `mode` is ``dry-run`` or
    ``create-and-delete``. Returns the outcome with its evidence and the draws; it counts in the run's
    ledger.

    `as_user` (with `as_groups`) or `as_service_account` (``namespace/name``) makes the attempt as that
    identity (see `chaoskirvis.rbac.actions.inject_identity_technique`): RBAC's refusal of it is ``blocked``.
    """
    return attempt_exposure(
        technique, mode=mode, allowed_modes=PROBE_MODES, namespace=namespace, opt_in_label=opt_in_label,
        port=port, port_range=port_range, seed=seed, options=options,
        allow_protected_namespaces=allow_protected_namespaces,
        as_user=as_user, as_groups=as_groups, as_service_account=as_service_account, identity_via=identity_via,
        configuration=configuration, secrets=secrets,
    )
