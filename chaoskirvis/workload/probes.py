"""Probes that ask the API server whether risky workloads are admitted."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity

from chaoskirvis.workload.attempt import attempt_risky_pod
from chaoskirvis.workload.manifests import DEFAULT_IMAGE

__all__ = ["risky_pod_admission", "risky_pod_is_denied"]


@typed_activity
def risky_pod_admission(
    namespace: str,
    techniques: list[str],
    mode: str = "dry-run",
    image: str = DEFAULT_IMAGE,
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Ask the API server whether a pod carrying `techniques` would be admitted in `namespace`.

    `mode` is ``dry-run`` (server-side dry run: full admission, nothing stored; the default) or
    ``create-and-delete`` (a real create, deleted at once: for controls that cannot take part in a dry
    run). Returns the outcome (``blocked``, ``allowed`` or ``inconclusive``) with its evidence; the
    outcome also counts in the run's ledger, so `injections_blocked` is false if this one was allowed.
    """
    return attempt_risky_pod(
        namespace, techniques, mode=mode, image=image, options=options,
        allow_protected_namespaces=allow_protected_namespaces, configuration=configuration, secrets=secrets,
        allowed_modes=("dry-run", "create-and-delete"),
    )


@typed_activity
def risky_pod_is_denied(
    namespace: str,
    techniques: list[str],
    mode: str = "dry-run",
    image: str = DEFAULT_IMAGE,
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """True when an admission control denies a pod carrying `techniques` in `namespace`.

    The same check as `risky_pod_admission`, as a yes/no question for a hypothesis (tolerance: true).
    An inconclusive dry run is not a denial. Beware: in the steady state *before* the method a false
    answer does not fail `chaos run` (it exits 0); use it after an injection or in the method.
    """
    outcome = risky_pod_admission(
        namespace, techniques, mode=mode, image=image, options=options,
        allow_protected_namespaces=allow_protected_namespaces, configuration=configuration, secrets=secrets,
    )
    return outcome["outcome"] == "blocked"
