"""Hypothesis probes over what this run has introduced and checked.

Both probes hold at their first evaluation when nothing was tried yet: that is the steady state before
the method (and it checks that a cluster configuration exists, so a run without one fails at once).
Every later evaluation proves something only if the run did something: a run that introduced nothing,
or checked nothing, never passes.
"""
from __future__ import annotations

from typing import Any

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

    False once the method has run unless at least one attempt was made and every attempt and
    admission check of the run ended ``blocked``: an allowed, inconclusive or failed attempt never passes.
    """
    run_id, first, outcomes, _ = _evaluate("injections_blocked", configuration)
    if not outcomes:
        return _baseline(run_id, first, configuration, secrets)
    for outcome in outcomes:
        logger.info(
            f"[{run_id}] {'+'.join(outcome.get('techniques', []))} in {outcome.get('namespace')}: "
            f"{outcome['outcome']}" + (f" by {outcome['answered_by']}" if outcome.get("answered_by") else "")
        )
    return all(outcome["outcome"] == "blocked" for outcome in outcomes)


@typed_activity
def injections_detected(configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when every detection check of this run found its alert in time (use tolerance: true).

    False once the method has run unless the run introduced something, checked at least one detection
    backend, and every check ended ``detected``: a missed alert or a failed check never passes.
    """
    run_id, first, outcomes, detections = _evaluate("injections_detected", configuration)
    if not outcomes and not detections:
        return _baseline(run_id, first, configuration, secrets)
    if not outcomes or not detections:
        logger.error(f"[{run_id}] the run introduced nothing or checked no detection backend: it proved nothing")
        return False
    for detection in detections:
        logger.info(f"[{run_id}] {detection['backend']}: {detection['outcome']}")
    return all(detection["outcome"] == "detected" for detection in detections)


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
        logger.error(f"[{run_id}] this run tried to introduce nothing, so it proved nothing")
        return False
    kube_api(configuration, secrets)
    logger.info(f"[{run_id}] nothing introduced yet: steady state before the method holds")
    return True
