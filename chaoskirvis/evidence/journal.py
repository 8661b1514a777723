"""Reading Chaos Toolkit 1.21 journals, whatever state the run ended in.

A journal of an interrupted, aborted or failed run may lack the steady state after the method, the
rollbacks, an activity's status or end time; every reader here tolerates that.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = [
    "PHASES", "ActivityRun", "activity_runs", "attack_ids", "is_outcome", "recorded_outcomes", "OUTCOMES",
    "PASSING_OUTCOMES", "parse_time", "exception_summary",
]

# The order a run plays them in.
PHASES = ("steady state before", "method", "steady state during", "steady state after", "rollback")
OUTCOMES = ("blocked", "allowed", "detected", "missed", "inconclusive")
PASSING_OUTCOMES = ("blocked", "detected")
# "chaoslib.exceptions.ActivityFailed: chaoslib.exceptions.ActivityFailed: message" -> "message"
_EXCEPTION_NAMES = r"^(?:(?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*: |[A-Za-z_]\w*(?:Error|Exception): )+"  # compiled on first use
_ATTACK_TAG = r"(?i)^attack:(T\d{4}(?:\.\d{3})?)$"


class ActivityRun(NamedTuple):
    """One played activity of a journal, with the phase it was played in."""

    phase: str
    run: dict[str, Any]

    @property
    def activity(self) -> dict[str, Any]:
        return self.run.get("activity") or {}

    @property
    def name(self) -> str:
        return str(self.activity.get("name") or self.activity.get("ref") or "unnamed activity")

    @property
    def type(self) -> str:
        return str(self.activity.get("type") or "activity")

    @property
    def status(self) -> str:
        """``succeeded``, ``failed``, or ``unfinished`` when the run stopped while it played."""
        return str(self.run.get("status") or "unfinished")

    @property
    def output(self) -> Any:
        return self.run.get("output")

    @property
    def start(self) -> dt.datetime | None:
        return parse_time(self.run.get("start"))

    @property
    def end(self) -> dt.datetime | None:
        return parse_time(self.run.get("end"))

    @property
    def provider_function(self) -> str:
        provider = self.activity.get("provider") or {}
        return f"{provider.get('module', '')}.{provider.get('func', '')}".strip(".")


def activity_runs(journal: dict[str, Any]) -> Iterator[ActivityRun]:
    """Every played activity in phase order (the continuous hypothesis after the method it ran beside)."""
    states = journal.get("steady_states") or {}
    for run in _probes(states.get("before")):
        yield ActivityRun(PHASES[0], run)
    for run in journal.get("run") or []:
        if isinstance(run, dict):
            yield ActivityRun(PHASES[1], run)
    for state in states.get("during") or []:
        for run in _probes(state):
            yield ActivityRun(PHASES[2], run)
    for run in _probes(states.get("after")):
        yield ActivityRun(PHASES[3], run)
    for run in journal.get("rollbacks") or []:
        if isinstance(run, dict):
            yield ActivityRun(PHASES[4], run)


def attack_ids(tags: Any) -> list[str]:
    """The ATT&CK technique ids of ``attack:Txxxx`` tags, in tag order."""
    found = []
    for tag in tags or []:
        match = re.match(_ATTACK_TAG, str(tag).strip())
        if match and match.group(1).upper() not in found:
            found.append(match.group(1).upper())
    return found


def is_outcome(value: Any) -> bool:
    """True for a chaoskirvis security outcome (an activity's evidence dict)."""
    return isinstance(value, dict) and value.get("outcome") in (*OUTCOMES, "error")


def recorded_outcomes(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """The security outcomes of a journal: its evidence section's, else those its activities returned."""
    section = journal.get("chaoskirvis")
    if isinstance(section, dict) and isinstance(section.get("outcomes"), list):
        return [outcome for outcome in section["outcomes"] if isinstance(outcome, dict)]
    return [
        {"activity": played.name, "phase": played.phase, **played.output}
        for played in activity_runs(journal) if is_outcome(played.output)
    ]


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def exception_summary(run: dict[str, Any]) -> str | None:
    """The message of an activity's recorded exception (its last line, without exception class names)."""
    lines = [line.strip() for line in run.get("exception") or [] if isinstance(line, str) and line.strip()]
    return re.sub(_EXCEPTION_NAMES, "", lines[-1]) or lines[-1] if lines else None


def _probes(state: Any) -> list[dict[str, Any]]:
    if not isinstance(state, dict):
        return []
    return [run for run in state.get("probes") or [] if isinstance(run, dict)]
