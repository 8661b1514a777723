"""Probes that ask whether an RBAC grant, or an identity technique, would be admitted."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.injection import PROBE_MODES, attempt_techniques

__all__ = ["rbac_grant_admission", "identity_technique_admission"]


@typed_activity
def rbac_grant_admission(
    namespace: str,
    technique: str = "cluster-admin-binding",
    mode: str = "dry-run",
    options: dict[str, Any] | None = None,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Ask whether the binding would be admitted (server-side dry run by default, or create-and-delete),
    as the runner or as the identity given (see `chaoskirvis.rbac.actions.inject_identity_technique`)."""
    return attempt_techniques(namespace, [technique], mode=mode, allowed_modes=PROBE_MODES, options=options,
                              as_user=as_user, as_groups=as_groups, as_service_account=as_service_account,
                              identity_via=identity_via, configuration=configuration, secrets=secrets)


@typed_activity
def identity_technique_admission(
    namespace: str,
    technique: str,
    mode: str = "dry-run",
    options: dict[str, Any] | None = None,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    allow_protected_namespaces: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Ask whether the identity may carry out the technique, as `inject_identity_technique` classifies it.

    An object technique is asked by server-side dry run (RBAC authorizes a dry run like the real create)
    or create-and-delete; a request technique (a read, a TokenRequest, an exec) makes its request, which
    stores nothing (a TokenRequest's token is bound to a Secret of the run and dies at restore).
    ``csr-client-certificate`` cannot be dry run (only a stored request can be approved): use create-and-delete.
    """
    return attempt_techniques(namespace, [technique], mode=mode, allowed_modes=PROBE_MODES, options=options,
                              as_user=as_user, as_groups=as_groups, as_service_account=as_service_account,
                              identity_via=identity_via, allow_protected_namespaces=allow_protected_namespaces,
                              configuration=configuration, secrets=secrets)
