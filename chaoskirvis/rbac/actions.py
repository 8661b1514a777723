"""Actions that grant privilege through RBAC, or try what an identity should not be allowed to do."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.injection import attempt_techniques

__all__ = ["inject_rbac_grant", "inject_identity_technique"]


@typed_activity
def inject_rbac_grant(
    namespace: str,
    technique: str = "cluster-admin-binding",
    options: dict[str, Any] | None = None,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Try to create a binding that grants cluster-wide power (default: cluster-admin to a service account).

    The service account is named after the run and lives in `namespace` (which also holds the run's
    record); it is never created. The binding really is created and stays, owned by the run, until
    restore; a denial by an admission control is the outcome ``blocked``. Acting as an identity
    (`as_user` with `as_groups`, or `as_service_account` ``namespace/name``; `identity_via`
    ``impersonation`` or ``token``), RBAC's refusal of that identity is ``blocked`` too (see
    `inject_identity_technique`).
    """
    return attempt_techniques(namespace, [technique], mode="create", options=options, as_user=as_user,
                              as_groups=as_groups, as_service_account=as_service_account,
                              identity_via=identity_via, configuration=configuration, secrets=secrets)


@typed_activity
def inject_identity_technique(
    namespace: str,
    technique: str,
    options: dict[str, Any] | None = None,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    allow_protected_namespaces: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Try an identity technique (`kirvis catalog`, chaoskirvis.techniques.identity) as a team identity, in `namespace`.

    The attempt's one request is made as `as_user` (with `as_groups`) or as `as_service_account`
    (``namespace/name``): by impersonation (Impersonate-User / Impersonate-Group headers; the runner needs
    the impersonate verb) or, `identity_via: token`, with a TokenRequest token of that service account
    (expirationSeconds 600) bound to a Secret the run creates, so restore's delete of the Secret kills the
    token. The run's record, the reads of our marks and restore stay the runner's.

    Outcome ``blocked`` by ``RBAC``: a 403 naming that identity (``User "..." cannot VERB ...``, or the
    escalation check's ``is attempting to grant RBAC permissions not currently held``); by an admission
    control: its denial. ``allowed``: the object was created (it stays, owned by the run, until restore) or
    the request answered (a read's answer is never kept). ``csr-client-certificate`` makes two requests as the
    identity, the CertificateSigningRequest's create and its approval: ``blocked`` at either (the outcome's
    `step`), ``allowed`` once the signer issued the certificate (the outcome keeps its subject and serial
    only). Raises when the runner may not impersonate the
    identity, when RBAC refused the runner itself, or when the attempt went wrong otherwise: an error,
    never ``blocked``. Without an identity the attempt is the runner's, and RBAC's 403 is an error.
    """
    return attempt_techniques(namespace, [technique], mode="create", options=options, as_user=as_user,
                              as_groups=as_groups, as_service_account=as_service_account,
                              identity_via=identity_via, allow_protected_namespaces=allow_protected_namespaces,
                              configuration=configuration, secrets=secrets)
