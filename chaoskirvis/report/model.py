"""What a report shows of one journal, read from any Chaos Toolkit 1.21 journal (with or without evidence)."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoskirvis.evidence.digest import Verification, verify
from chaoskirvis.evidence.journal import (
    PASSING_OUTCOMES, activity_runs, attack_ids, exception_summary, is_outcome, parse_time, recorded_outcomes,
)
from chaoskirvis.evidence.verdict import Verdict, verdict_of

__all__ = ["ReportError", "TimelineEntry", "ExperimentView", "load_view", "worst_outcome"]

# Worst first, for summarising several outcomes of one ATT&CK technique.
_SEVERITY = ("allowed", "missed", "error", "inconclusive", "blocked", "detected")


class ReportError(Exception):
    """A journal cannot be read."""


@dataclass(frozen=True)
class TimelineEntry:
    phase: str
    name: str
    type: str
    status: str
    start: dt.datetime | None
    end: dt.datetime | None
    outcome: str | None
    detail: str | None


@dataclass
class ExperimentView:
    """One journal, as the reports show it."""

    path: Path
    title: str
    status: str
    deviated: bool
    verdict: Verdict
    integrity: Verification
    started: dt.datetime | None
    ended: dt.datetime | None
    run_id: str | None
    outcomes: list[dict[str, Any]]
    attack: list[str]
    timeline: list[TimelineEntry]
    section: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def duration(self) -> float | None:
        return (self.ended - self.started).total_seconds() if self.started and self.ended else None

    @property
    def targets(self) -> list[str]:
        """The namespaces the checks were made in."""
        return sorted({str(o["namespace"]) for o in self.outcomes if o.get("namespace")})

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[str(outcome.get("outcome"))] = counts.get(str(outcome.get("outcome")), 0) + 1
        return counts

    def passing_checks(self) -> int:
        return sum(1 for o in self.outcomes if o.get("outcome") in PASSING_OUTCOMES)

    def attack_results(self) -> dict[str, str]:
        """Per ATT&CK id: the worst outcome of the checks that exercised it, or ``tagged``."""
        results = {}
        for technique in self.attack:
            seen = [str(o.get("outcome")) for o in self.outcomes if technique in (o.get("attack") or [])]
            results[technique] = worst_outcome(seen) or "tagged"
        return results

    def detections(self) -> list[dict[str, Any]]:
        return [o for o in self.outcomes if o.get("outcome") in ("detected", "missed")]


def worst_outcome(outcomes: list[str]) -> str | None:
    ranked = [o for o in _SEVERITY if o in outcomes]
    return ranked[0] if ranked else None


def load_view(path: Path) -> ExperimentView:
    """Read a journal file into a view; raises `ReportError` when it is not a journal."""
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReportError(f"cannot read journal {path}: {exc}") from None
    if not isinstance(journal, dict) or not isinstance(journal.get("experiment"), dict):
        raise ReportError(f"{path} is not a Chaos Toolkit journal (no experiment in it)")
    section = journal.get("chaoskirvis") if isinstance(journal.get("chaoskirvis"), dict) else {}
    outcomes = recorded_outcomes(journal)
    tagged = attack_ids(journal["experiment"].get("tags"))
    exercised = sorted({a for o in outcomes for a in o.get("attack") or [] if isinstance(a, str)})
    return ExperimentView(
        path=path,
        title=str(journal["experiment"].get("title") or path.stem),
        status=str(journal.get("status") or "unknown"),
        deviated=bool(journal.get("deviated")),
        verdict=verdict_of(journal, outcomes),
        integrity=verify(journal),
        started=parse_time(journal.get("start")),
        ended=parse_time(journal.get("end")),
        run_id=section.get("run_id") or next((o["run_id"] for o in outcomes if o.get("run_id")), None),
        outcomes=outcomes,
        attack=[*tagged, *(a for a in exercised if a not in tagged)],
        timeline=_timeline(journal, outcomes),
        section=section,
    )


def _timeline(journal: dict[str, Any], outcomes: list[dict[str, Any]]) -> list[TimelineEntry]:
    by_activity: dict[tuple[str, str], dict[str, Any]] = {}
    for outcome in outcomes:
        by_activity.setdefault((str(outcome.get("phase")), str(outcome.get("activity"))), outcome)
    entries = []
    for played in activity_runs(journal):
        outcome = by_activity.get((played.phase, played.name))
        if outcome is None and is_outcome(played.output):
            outcome = played.output
        detail = exception_summary(played.run) or (outcome or {}).get("message")
        entries.append(TimelineEntry(
            phase=played.phase, name=played.name, type=played.type, status=played.status,
            start=played.start, end=played.end, outcome=(outcome or {}).get("outcome"),
            detail=str(detail) if detail else None,
        ))
    return entries
