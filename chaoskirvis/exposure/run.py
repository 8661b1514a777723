"""Draw the target, then attempt the exposure: shared by the action and the probe."""
from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaoskirvis.client import kube_api
from chaoskirvis.exposure.draw import draw_target
from chaoskirvis.injection import attempt_techniques
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.techniques import lookup

__all__ = ["attempt_exposure"]


def attempt_exposure(
    technique: str,
    *,
    mode: str,
    allowed_modes: tuple[str, ...],
    namespace: str | None,
    opt_in_label: str | None,
    port: int | None,
    port_range: str,
    seed: int | str | None,
    options: dict[str, Any] | None,
    allow_protected_namespaces: bool,
    configuration: Configuration | None,
    secrets: Secrets | None,
    **acting_as: Any,
) -> dict[str, Any]:
    """Draw the target (namespace, port), then attempt the exposure there (as `acting_as`: as_user...)."""
    try:
        if lookup(technique).family != "exposure":
            raise ActivityFailed(f"technique {technique} is not a port-injection technique")
        draw = draw_target(kube_api(configuration, secrets), namespace=namespace, opt_in_label=opt_in_label,
                           port=port, port_range=port_range, seed=seed)
    except ActivityFailed as exc:
        run_state(current_run_id(configuration)).add_outcome(
            {"namespace": namespace, "techniques": [technique], "mode": mode, "outcome": "error", "blocked": False,
             "message": str(exc)}
        )
        raise
    return attempt_techniques(
        draw["namespace"], [technique], mode=mode, allowed_modes=allowed_modes,
        options={**(options or {}), "port": draw["port"]}, allow_protected_namespaces=allow_protected_namespaces,
        evidence={"draw": draw, "port": draw["port"]}, configuration=configuration, secrets=secrets, **acting_as,
    )
