"""Actions that introduce risky workloads."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity

from chaoskirvis.workload.attempt import attempt_risky_pod
from chaoskirvis.workload.manifests import DEFAULT_IMAGE

__all__ = ["inject_risky_pod"]


@typed_activity
def inject_risky_pod(
    namespace: str,
    techniques: list[str],
    image: str = DEFAULT_IMAGE,
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Try to introduce a pod that carries the given techniques (e.g. ``[privileged]``) in `namespace`.

    The pod is really created: if the cluster admits it, it stays (recorded in the run's ledger, owned
    by the run) until the run is restored. A denial by an admission control is a successful attempt
    whose outcome is ``blocked``. Returns the outcome with its evidence: who answered, the message, the
    warnings and the latency. Raises when the attempt itself went wrong (invalid manifest, unknown
    namespace, no permission, unreachable API); the run's hypothesis then fails too.
    """
    return attempt_risky_pod(
        namespace, techniques, mode="create", image=image, options=options,
        allow_protected_namespaces=allow_protected_namespaces, configuration=configuration, secrets=secrets,
    )
