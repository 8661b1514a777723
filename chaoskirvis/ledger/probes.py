"""Hypothesis probes over what this run has introduced and checked.

Both probes hold at their first evaluation when nothing was tried yet: that is the steady state before
the method (and it checks that a cluster configuration exists, so a run without one fails at once).
Every later evaluation proves something only if the run did something: a run that introduced nothing,
or checked nothing, never passes.
"""
from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis.activity import typed_activity
from chaoskirvis.client import kube_api
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state

__all__ = ["injections_blocked", "injections_detected"]


@typed_activity
def injections_blocked(configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when every security fault this run tried to introduce was blocked (use tolerance: true).

    Before the method (nothing tried yet) it holds, once a cluster configuration is found. After it:
    false (a weakness: Chaos Toolkit's ``deviated``) when any attempt was admitted; raises (an error:
    ``failed``, with the cause) when no attempt was made, or an attempt could not be carried out or was
    inconclusive and none was admitted; true only when every attempt and admission check was ``blocked``.
    """
    run_id, first, outcomes, _ = _evaluate("injections_blocked", configuration)
    if not outcomes:
        return _baseline(run_id, first, configuration, secrets)
    for outcome in outcomes:
        logger.info(
            f"[{run_id}] {'+'.join(outcome.get('techniques', []))} in {outcome.get('namespace')}: "
            f"{outcome['outcome']}" + (f" by {outcome['answered_by']}" if outcome.get("answered_by") else "")
        )
    if any(outcome["outcome"] == "allowed" for outcome in outcomes):
        return False
    _raise_if_untested(run_id, outcomes, "attempt")
    return all(outcome["outcome"] == "blocked" for outcome in outcomes)


@typed_activity
def injections_detected(configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when every detection check of this run found its alert in time (use tolerance: true).

    Before the method (nothing tried yet) it holds, once a cluster configuration is found. After it:
    raises (an error: ``failed``, with the cause) when the run introduced nothing, an injection failed,
    no detection backend was checked, or a check could not be carried out and none missed; false (a
    weakness: ``deviated``) when a check missed its alert; true only when every check ended ``detected``.
    """
    run_id, first, outcomes, detections = _evaluate("injections_detected", configuration)
    if not outcomes and not detections:
        return _baseline(run_id, first, configuration, secrets)
    if not outcomes:
        raise ActivityFailed(f"run {run_id} checked a detector but introduced nothing: it proved nothing")
    _raise_if_untested(run_id, [o for o in outcomes if o["outcome"] == "error"], "injection")
    if not detections:
        raise ActivityFailed(
            f"run {run_id} introduced something but checked no detection backend: put a detection probe "
            "(e.g. alert_in_alertmanager) in the method after the inject action"
        )
    for detection in detections:
        logger.info(f"[{run_id}] {detection['backend']}: {detection['outcome']}")
    if any(detection["outcome"] == "missed" for detection in detections):
        return False
    _raise_if_untested(run_id, detections, "detection check")
    return all(detection["outcome"] == "detected" for detection in detections)


def _raise_if_untested(run_id: str, outcomes: list[dict[str, Any]], what: str) -> None:
    """Raise with the causes when some of `outcomes` could not be carried out (error, inconclusive)."""
    broken = [o for o in outcomes if o["outcome"] in ("error", "inconclusive")]
    if not broken:
        return
    causes = "; ".join(
        f"{o.get('backend') or '+'.join(o.get('techniques') or []) or 'check'}"
        + (f" in {o['namespace']}" if o.get("namespace") else "") + f": {o['outcome']}"
        + (f" ({o['message']})" if o.get("message") else "")
        for o in broken
    )
    raise ActivityFailed(f"run {run_id}: {len(broken)} {what}(s) could not be carried out, so nothing was tested: {causes}")


def _evaluate(
    probe: str, configuration: Configuration | None,
) -> tuple[str, bool, list[dict[str, Any]], list[dict[str, Any]]]:
    """The run's outcomes so far, and whether this is the probe's first evaluation in the run."""
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    with state.lock:
        count = state.hypothesis_evaluations[probe] = state.hypothesis_evaluations.get(probe, 0) + 1
        return run_id, count == 1, list(state.outcomes), list(state.detections)


def _baseline(run_id: str, first: bool, configuration: Configuration | None, secrets: Secrets | None) -> bool:
    if not first:
        raise ActivityFailed(
            f"run {run_id} tried to introduce nothing, so it proved nothing: put an inject action in the method"
        )
    kube_api(configuration, secrets)
    logger.info(f"[{run_id}] nothing introduced yet: steady state before the method holds")
    return True
