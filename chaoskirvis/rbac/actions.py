"""Actions that grant privilege through RBAC."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.injection import attempt_techniques

__all__ = ["inject_rbac_grant"]


@typed_activity
def inject_rbac_grant(
    namespace: str,
    technique: str = "cluster-admin-binding",
    options: dict[str, Any] | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Try to create a binding that grants cluster-wide power (default: cluster-admin to a service account).

    The service account is named after the run and lives in `namespace` (which also holds the run's
    record); it is never created. The binding really is created and stays, owned by the run, until
    restore; a denial by an admission control is the outcome ``blocked``.
    """
    return attempt_techniques(namespace, [technique], mode="create", options=options,
                              configuration=configuration, secrets=secrets)
