"""One of three verdicts per journal: *held*, *weakness* or *error*; stricter than `chaos run`'s exit code.

- **held**: every security fault the run introduced was blocked or detected in time.
- **weakness**: something got through (admitted, or not detected in time): Chaos Toolkit's ``deviated``.
- **error**: the test could not be carried out (bad input, unknown technique or namespace, an
  unreachable or refusing API server, the runner's own missing permission, an unreachable detector, an
  inconclusive dry run, a run that tried nothing, a method action that failed (what it should have
  set up may not have happened), a steady state already broken before the method, an
  interruption, a restore that failed or left something of the run in the cluster): Chaos Toolkit's
  ``failed`` and the like. An error never reads as a weakness, and neither ever reads as held.

A run that would otherwise be held or a weakness is an error when its ledger (the journal's
``chaoskirvis.ledger``) says it was not restored: its leftovers are named with the `kirvis cleanup`
command that removes them, and what the run found otherwise follows. That includes `--rollback-strategy
never`: skipping the restore is a deliberate choice, but the cluster is left changed, and CI must not
read that as a pass.

A run can be a *negative control*: it is expected to show a weakness (a namespace deliberately left
without the control, to prove that the test can fail). Its weakness is then as expected, and a run that
held where a weakness was expected is an error: the test may be unable to fail.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from chaoskirvis.evidence.journal import PASSING_OUTCOMES, PHASES, activity_runs, exception_summary

__all__ = ["Verdict", "verdict_of", "is_weakness", "RESULTS", "EXPECTATIONS", "WEAKNESS_OUTCOMES", "ERROR_OUTCOMES"]

# Worst first.
RESULTS = ("error", "weakness", "held")
EXPECTATIONS = ("held", "weakness")
WEAKNESS_OUTCOMES = ("allowed", "missed")
ERROR_OUTCOMES = ("error", "inconclusive")


class Verdict(NamedTuple):
    """`result` is held, weakness or error; `status` what Chaos Toolkit said; `reason` the one-line cause."""

    result: str
    reason: str
    status: str = ""
    expected: str = "held"

    @property
    def as_expected(self) -> bool:
        return self.result == self.expected

    @property
    def passed(self) -> bool:
        """True when the run gave the verdict it was expected to give (held, or a negative control's weakness)."""
        return self.as_expected

    @property
    def label(self) -> str:
        """The verdict in a few words: ``held``, ``weakness``, ``weakness (expected)``, ``error``."""
        return f"{self.result} (expected)" if self.result == "weakness" and self.as_expected else self.result

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.result, "label": self.label, "expected": self.expected, "as_expected": self.as_expected,
            "passed": self.passed, "status": self.status, "reason": self.reason,
        }


def verdict_of(
    journal: dict[str, Any], outcomes: list[dict[str, Any]], expected: str | None = None, *,
    ledger: dict[str, Any] | None = None, run_id: str | None = None,
) -> Verdict:
    """The verdict of a journal, given the security outcomes it recorded.

    `expected` (held or weakness) defaults to what the journal's evidence section recorded, else held.
    `ledger` and `run_id` default to the journal's evidence section (pass them while building it).
    """
    expected = expected or _recorded_expectation(journal)
    verdict = _raw_verdict(journal, outcomes, ledger, run_id)
    if expected not in EXPECTATIONS:
        return Verdict("error", f"unknown expectation {expected!r} (kirvis_expect): use held or weakness",
                       verdict.status, "held")
    if expected == "weakness" and verdict.result == "held":
        return Verdict(
            "error", "a weakness was expected (negative control) but the control held: the test may be unable to "
            f"fail, or the control is now in place ({verdict.reason})", verdict.status, expected,
        )
    return Verdict(verdict.result, verdict.reason, verdict.status, expected)


def _raw_verdict(
    journal: dict[str, Any], outcomes: list[dict[str, Any]], ledger: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> Verdict:
    verdict = _security_verdict(journal, outcomes)
    section = journal.get("chaoskirvis") if isinstance(journal.get("chaoskirvis"), dict) else {}
    ledger = ledger if ledger is not None else section.get("ledger")
    if verdict.result == "error" or not isinstance(ledger, dict) or ledger.get("restored") is not False:
        return verdict
    run_id = run_id or section.get("run_id") or "ID"
    left = ledger.get("left_in_cluster")
    if isinstance(left, list) and left:
        what = f"the run left {', '.join(map(str, left[:5]))}{f' and {len(left) - 5} more' if len(left) > 5 else ''} in the cluster"
    elif isinstance(left, dict) and left.get("unknown"):
        what = f"what the run left in the cluster could not be checked ({left['unknown']})"
    else:
        restore = ledger.get("restore") if isinstance(ledger.get("restore"), dict) else {}
        errors = [*(restore.get("failed") or []), *(restore.get("errors") or [])]
        what = "the run's restore failed" + (f" ({'; '.join(map(str, errors[:3]))})" if errors else "")
    return Verdict("error", f"{what}: run `kirvis cleanup --run-id {run_id}`; otherwise {verdict.result}: "
                            f"{verdict.reason}", verdict.status)


def _security_verdict(journal: dict[str, Any], outcomes: list[dict[str, Any]]) -> Verdict:
    status = str(journal.get("status") or "unknown")
    states = journal.get("steady_states") or {}
    section = journal.get("chaoskirvis") if isinstance(journal.get("chaoskirvis"), dict) else {}
    if section.get("not_run"):
        return Verdict("error", f"not run: {section['not_run']}", "invalid")
    weak = [o for o in outcomes if is_weakness(o, outcomes)]
    broken = [o for o in outcomes if o.get("outcome") in ERROR_OUTCOMES]
    if status == "interrupted":
        return Verdict("error", f"{_interruption(journal)}; what the run changed may not have been restored", status)
    if status == "aborted":
        return Verdict("error", "the run aborted on an unexpected error outside any activity", status)
    if status == "failed":
        return Verdict("error", _first_failure(journal), status)
    postures = _posture_checks(journal)
    violated = [p for p in postures if p["posture"] == "violated"]
    if journal.get("deviated"):
        if broken and not weak:
            return Verdict("error", f"{_listed(broken)}; so the hypothesis could not be judged", "deviated")
        cause = (_listed(weak) if weak else _violations(violated) if violated
                 else f"steady state not met after the method: {_out_of_tolerance(states.get('after'))}")
        return Verdict("weakness", cause, "deviated")
    before = states.get("before")
    if isinstance(before, dict) and before.get("steady_state_met") is False:
        return Verdict(
            "error", f"steady state not met before the method: {_out_of_tolerance(before)} "
            "(chaos run exits 0 here, but nothing was tested)", "not-met-before",
        )
    if status != "completed":
        return Verdict("error", f"the run did not complete (status {status!r})", status)
    if weak:
        return Verdict("weakness", _listed(weak), "controls-failed")
    if broken:
        return Verdict("error", _listed(broken), "controls-failed")
    if violated:
        return Verdict("weakness", _violations(violated), "controls-failed")
    failed = [played for played in activity_runs(journal) if played.phase == PHASES[1] and played.status == "failed"]
    if failed:
        # Chaos Toolkit plays the rest of the method after a failed action, so a fault the method should have
        # set up (an engine scaled to zero, a label removed) may never have happened: a block is no proof.
        played = failed[0]
        return Verdict("error", f"{played.type} {played.name!r} (method) failed: "
                                f"{exception_summary(played.run) or 'no message'}; what the method should have set up "
                                "may not have happened, so nothing that blocked it proves the hypothesis", "completed")
    checks = [o for o in outcomes if o.get("outcome") in PASSING_OUTCOMES]
    if not checks and not postures:
        return Verdict("error", "the run made no security check, so it proved nothing", "completed")
    held = [f"{len(checks)} security check(s) blocked or detected"] if checks else []
    held += [f"{len(postures)} posture check(s) held"] if postures else []
    return Verdict("held", ", ".join(held), "completed")


def _posture_checks(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """The answers of posture checks (chaoskirvis.posture.probes) that the run played to the end."""
    return [played.output for played in activity_runs(journal)
            if played.status == "succeeded" and isinstance(played.output, dict) and "check" in played.output
            and played.output.get("posture") in ("held", "violated")]


def _violations(violated: list[dict[str, Any]]) -> str:
    return "; ".join(f"posture check {p['check']} violated: {len(p.get('findings') or [])} finding(s)"
                     for p in violated)


def is_weakness(outcome: dict[str, Any], outcomes: list[dict[str, Any]]) -> bool:
    """An admitted attempt is a weakness unless it was introduced on purpose for a detector to see."""
    if outcome.get("outcome") == "missed":
        return True
    detection_run = any(o.get("backend") for o in outcomes)
    return outcome.get("outcome") == "allowed" and not detection_run


def _listed(outcomes: list[dict[str, Any]]) -> str:
    parts = []
    for outcome in outcomes[:3]:
        what = outcome.get("backend") or "+".join(outcome.get("techniques") or []) or outcome.get("activity") or "check"
        where = f" in {outcome['namespace']}" if outcome.get("namespace") else ""
        message = str(outcome.get("message") or "").strip()
        parts.append(f"{what}{where}: {outcome.get('outcome')}" + (f" ({message})" if message else ""))
    more = f" and {len(outcomes) - 3} more" if len(outcomes) > 3 else ""
    return "; ".join(parts) + more


def _recorded_expectation(journal: dict[str, Any]) -> str:
    section = journal.get("chaoskirvis")
    expected = section.get("expected") if isinstance(section, dict) else None
    return str(expected) if expected is not None else "held"


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
