"""One verdict per journal, stricter than `chaos run`'s exit code.

`chaos run` exits 0 when the steady state is not met *before* the method (status "completed", not
deviated); here that is ``not-met-before``, a failure. Likewise a run whose security checks did not
all pass (an admission that allowed the fault, a detector that missed it, an inconclusive or failed
attempt) never passes, whatever its hypothesis said.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaoskirvis.evidence.journal import PASSING_OUTCOMES, activity_runs, exception_summary

__all__ = ["Verdict", "verdict_of", "RESULTS"]

# Worst first: the first that applies is the verdict.
RESULTS = ("interrupted", "aborted", "failed", "deviated", "not-met-before", "controls-failed", "passed")


@dataclass(frozen=True)
class Verdict:
    result: str
    reason: str

    @property
    def passed(self) -> bool:
        return self.result == "passed"

    def as_dict(self) -> dict[str, Any]:
        return {"result": self.result, "passed": self.passed, "reason": self.reason}


def verdict_of(journal: dict[str, Any], outcomes: list[dict[str, Any]]) -> Verdict:
    """The verdict of a journal, given the security outcomes it recorded."""
    status = journal.get("status")
    states = journal.get("steady_states") or {}
    if status == "interrupted":
        return Verdict("interrupted", f"{_interruption(journal)}; what the run changed may not have been restored")
    if status == "aborted":
        return Verdict("aborted", "the run aborted on an unexpected error outside any activity")
    if status == "failed":
        return Verdict("failed", _first_failure(journal))
    if journal.get("deviated"):
        return Verdict("deviated", f"steady state not met after the method: {_out_of_tolerance(states.get('after'))}")
    before = states.get("before")
    if isinstance(before, dict) and before.get("steady_state_met") is False:
        return Verdict(
            "not-met-before",
            f"steady state not met before the method: {_out_of_tolerance(before)} "
            "(chaos run exits 0 here; the experiment proved nothing)",
        )
    if status != "completed":
        return Verdict("failed", f"the run did not complete (status {status!r})")
    failing = [o for o in outcomes if o.get("outcome") not in PASSING_OUTCOMES]
    if failing:
        listed = ", ".join(
            f"{o.get('outcome')} ({o.get('activity') or '+'.join(o.get('techniques') or []) or 'check'})"
            for o in failing
        )
        return Verdict("controls-failed", f"{len(failing)} security check(s) did not pass: {listed}")
    checks = f"; {len(outcomes)} security check(s) blocked or detected" if outcomes else ""
    return Verdict("passed", f"steady state met before and after the method{checks}")


def _interruption(journal: dict[str, Any]) -> str:
    interruption = journal.get("interruption") or {}
    if interruption.get("reason"):
        return f"the run was interrupted: {interruption['reason']}"
    for played in activity_runs(journal):
        if played.status == "unfinished":
            return f"the run was interrupted while {played.type} {played.name!r} ({played.phase}) played"
    return "the run was interrupted (by an activity, a control or a signal)"


def _first_failure(journal: dict[str, Any]) -> str:
    for played in activity_runs(journal):
        if played.status == "failed":
            message = exception_summary(played.run) or "no message"
            return f"{played.type} {played.name!r} ({played.phase}) failed: {message}"
    return "the run failed"


def _out_of_tolerance(state: Any) -> str:
    probes = state.get("probes") or [] if isinstance(state, dict) else []
    names = [str((p.get("activity") or {}).get("name")) for p in probes if p.get("tolerance_met") is False]
    return f"probe(s) {', '.join(names)} out of tolerance" if names else "hypothesis not met"
