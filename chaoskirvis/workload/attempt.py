"""One attempt at admitting a risky pod, shared by the action and the probes of this domain."""
from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis.admission import MODES, attempt_create
from chaoskirvis.client import kube_api
from chaoskirvis.ledger.refs import POD, ObjectRef
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.targets import check_namespace, require_namespace
from chaoskirvis.techniques import lookup_all
from chaoskirvis.workload.manifests import DEFAULT_IMAGE, build_risky_pod

__all__ = ["attempt_risky_pod"]


def attempt_risky_pod(
    namespace: str,
    techniques: list[str],
    *,
    mode: str,
    image: str = DEFAULT_IMAGE,
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    allowed_modes: tuple[str, ...] = MODES,
) -> dict[str, Any]:
    """Attempt the pod, record the outcome in the run's ledger (errors too), return the evidence."""
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    evidence = {"namespace": namespace, "techniques": list(techniques) if techniques else [], "mode": mode}
    try:
        if mode not in allowed_modes:
            raise ActivityFailed(f"unknown mode {mode!r}: use one of {', '.join(allowed_modes)}")
        check_namespace(namespace, allow_protected_namespaces)
        units = lookup_all(techniques)
        api = kube_api(configuration, secrets)
        require_namespace(api, namespace)
        pod = build_risky_pod(
            units, namespace=namespace, run_id=run_id, image=image, options=options, configuration=configuration,
        )
        ref = ObjectRef(POD, namespace, pod["metadata"]["name"])
        outcome = attempt_create(
            api, ref, pod, mode=mode, state=state, configuration=configuration, run_id=run_id,
            techniques=[t.id for t in units], attack=sorted({a for t in units for a in t.attack}),
        )
    except ActivityFailed as exc:
        state.add_outcome({**evidence, "outcome": "error", "blocked": False, "message": str(exc)})
        raise
    state.add_outcome(outcome)
    logger.info(
        f"[{run_id}] {'+'.join(outcome['techniques'])} pod in {namespace} ({mode}): {outcome['outcome']}"
        + (f" by {outcome['answered_by']}" if outcome.get("answered_by") else "")
        + f" in {outcome['latency_ms']} ms"
    )
    return outcome
