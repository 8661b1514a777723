"""Probes that ask whether an RBAC grant would be admitted."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.injection import PROBE_MODES, attempt_techniques

__all__ = ["rbac_grant_admission"]


@typed_activity
def rbac_grant_admission(
    namespace: str,
    technique: str = "cluster-admin-binding",
    mode: str = "dry-run",
    options: dict[str, Any] | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Ask whether the binding would be admitted (server-side dry run by default, or create-and-delete)."""
    return attempt_techniques(namespace, [technique], mode=mode, allowed_modes=PROBE_MODES, options=options,
                              configuration=configuration, secrets=secrets)
