"""Hypothesis probes over what this run has introduced."""
from __future__ import annotations

from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis.activity import typed_activity
from chaoskirvis.client import kube_api
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state

__all__ = ["injections_blocked"]


@typed_activity
def injections_blocked(configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when every security fault this run tried to introduce was blocked (use tolerance: true).

    Its first evaluation, before anything was tried, is the steady state before the method: true, once
    the cluster configuration is usable (no configuration raises, which fails the run). Every later
    evaluation is false unless at least one attempt was made and every attempt and admission check of
    the run ended ``blocked``: an allowed, inconclusive or failed attempt, or a run that tried nothing,
    never passes.
    """
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    with state.lock:
        state.hypothesis_evaluations += 1
        first = state.hypothesis_evaluations == 1
        outcomes = list(state.outcomes)
    if not outcomes:
        if first:
            kube_api(configuration, secrets)
            logger.info(f"[{run_id}] nothing introduced yet: steady state before the method holds")
            return True
        logger.error(f"[{run_id}] this run tried to introduce nothing, so it proved nothing")
        return False
    for outcome in outcomes:
        logger.info(
            f"[{run_id}] {'+'.join(outcome.get('techniques', []))} in {outcome.get('namespace')}: "
            f"{outcome['outcome']}" + (f" by {outcome['answered_by']}" if outcome.get("answered_by") else "")
        )
    return all(outcome["outcome"] == "blocked" for outcome in outcomes)
