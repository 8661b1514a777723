"""One attempt at introducing techniques, shared by every inject action and admission probe.

The attempt is recorded in the run's ledger whatever happens (an error too), so the hypothesis over
what the run introduced can never pass on an attempt that went wrong.
Before the process's first attempt in a namespace, the expired leftovers of earlier runs there are
removed (`chaoskirvis.ledger.expiry`, reported in the journal). A missing namespace is read from the
attempt's own answer (`targets.missing_namespace`), not asked beforehand.
"""
from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis.admission import MODES, attempt_create
from chaoskirvis.client import KubeAPI, kube_api
from chaoskirvis.ledger.expiry import sweep_expired
from chaoskirvis.ledger.refs import POD, ObjectRef
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import RunState, run_state
from chaoskirvis.targets import check_namespace
from chaoskirvis.techniques import lookup_all
from chaoskirvis.techniques.manifests import build_manifest

__all__ = ["attempt_techniques", "PROBE_MODES"]

PROBE_MODES = ("dry-run", "create-and-delete")


def attempt_techniques(
    namespace: str,
    techniques: list[str],
    *,
    mode: str,
    allowed_modes: tuple[str, ...] = MODES,
    image: str | None = None,
    options: dict[str, Any] | None = None,
    controller: str | None = None,
    allow_protected_namespaces: bool = False,
    evidence: dict[str, Any] | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Attempt an object carrying `techniques`; record the outcome (errors too); return its evidence."""
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    context = {"namespace": namespace, "techniques": list(techniques or []), "mode": mode, **(evidence or {})}
    try:
        if mode not in allowed_modes:
            raise ActivityFailed(f"unknown mode {mode!r}: use one of {', '.join(allowed_modes)}")
        check_namespace(namespace, allow_protected_namespaces)
        units = lookup_all(techniques)
        api = kube_api(configuration, secrets)
        kind, manifest = build_manifest(
            units, namespace=namespace, run_id=run_id, options=options, controller=controller,
            configuration=configuration, **({"image": image} if image is not None else {}),
        )
        ref = ObjectRef(kind, namespace if kind.namespaced else None, manifest["metadata"]["name"], home=namespace)
        context.update(run_id=run_id, techniques=[t.id for t in units],
                       attack=sorted({a for t in units for a in t.attack}))
        details = {k: v for k, v in context.items() if k not in ("namespace", "mode")}
        with state.lock:  # from here a write may happen: restore must look here even if interrupted mid-way
            state.namespaces.add(ref.record_namespace or namespace)
        sweep_expired(api, state, namespace)  # once per process and namespace: earlier runs' expired leftovers
        outcome = attempt_create(api, ref, manifest, mode=mode, state=state, configuration=configuration, **details)
        if controller and outcome["outcome"] == "allowed":
            outcome = _judge_template(api, state, manifest, outcome, configuration)
    except Exception as exc:
        state.add_outcome({**context, "outcome": "error", "blocked": False, "message": str(exc)})
        raise
    state.add_outcome(outcome)
    logger.info(
        f"[{run_id}] {'+'.join(outcome['techniques'])} {outcome['kind']} in {namespace} ({mode}): "
        f"{outcome['outcome']}" + (f" by {outcome['answered_by']}" if outcome.get("answered_by") else "")
        + f" in {outcome['latency_ms']} ms"
    )
    return outcome


def _judge_template(
    api: KubeAPI, state: RunState, controller: dict[str, Any], outcome: dict[str, Any],
    configuration: Configuration | None,
) -> dict[str, Any]:
    """A controller was admitted: would the pods it creates be? Asked by dry run of its pod template.

    Pod Security only warns on templates and enforces when the controller creates the pods, so the
    pods' admission decides whether the technique is blocked.
    """
    spec = controller["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if controller["kind"] == "CronJob" else spec["template"]
    metadata = controller["metadata"]
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
           "metadata": {**template["metadata"], "name": f"{metadata['name']}-pod", "namespace": metadata["namespace"]}}
    pod_outcome = attempt_create(
        api, ObjectRef(POD, metadata["namespace"], pod["metadata"]["name"]), pod, mode="dry-run", state=state,
        configuration=configuration,
    )
    return {
        **outcome, "outcome": pod_outcome["outcome"], "blocked": pod_outcome["blocked"],
        "answered_by": pod_outcome["answered_by"] and f"{pod_outcome['answered_by']} (its pods)",
        "pod_admission": {k: pod_outcome.get(k) for k in ("outcome", "status", "message", "latency_ms")},
    }
