"""What a report shows of one journal, read from any Chaos Toolkit 1.21 journal (with or without evidence).

Views are keyed by run id (or, for a journal without one, its resolved path), never by file name: two
journals called ``host-path-denied.json`` from two folders are two experiments, and where their names
collide each is shown with its folder (`name_views`).

A detection check that names no technique (a detector's outcome records the backend, not what was
introduced) is attributed the techniques, ATT&CK ids and namespace of the run's own injections, so the
matrix and the fix can say what went undetected; a check that names techniques but no ATT&CK id (an
attempt that errored) gets theirs from the catalog.
"""
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
from chaoskirvis.evidence.verdict import ERROR_OUTCOMES, Verdict, is_weakness, verdict_of
from chaoskirvis.techniques import CATALOG

__all__ = ["ReportError", "TimelineEntry", "ExperimentView", "AttackCell", "load_view", "name_views",
           "worst_outcome", "CHECK_LABELS"]

# Worst first, for summarising several outcomes of one ATT&CK technique.
_SEVERITY = ("allowed", "missed", "error", "inconclusive", "blocked", "detected")
# What one check means for its run's verdict, worst first. "introduced": admitted on purpose, for a
# detector to see (a detection run); "tagged": an ATT&CK id the experiment names but no check exercised.
CHECK_LABELS = ("weakness", "weakness (expected)", "error", "held", "introduced", "tagged")


class ReportError(Exception):
    """A journal cannot be read."""


@dataclass(frozen=True)
class AttackCell:
    """One experiment's result for one ATT&CK technique: the outcome word and what it means for the run."""

    outcome: str
    label: str


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
    label: str | None = None  # what its check means for the run (CHECK_LABELS), when it made one


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
    key: str = ""  # the run id, else the resolved journal path (unique among the views: see name_views)
    display: str = ""  # the file stem, or folder/file.json where two journals share a name
    qualified: bool = False  # True when `display` carries the folder

    @property
    def name(self) -> str:
        return self.display or self.path.stem

    @property
    def junit_name(self) -> str:
        """A dotted name for a JUnit classname: ``stem``, or ``folder.stem`` where names collide."""
        return f"{self.path.parent.name}.{self.path.stem}" if self.qualified else self.path.stem

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

    def check_label(self, outcome: dict[str, Any]) -> str:
        """What one check means for this run (see CHECK_LABELS); agrees with the run's verdict.

        In a negative control (a weakness expected), an admitted fault is an expected weakness and a
        blocked one an error: the test could not show it can fail.
        """
        word = outcome.get("outcome")
        expected = self.verdict.expected
        if word in PASSING_OUTCOMES:
            return "held" if expected == "held" else "error"
        if word in ERROR_OUTCOMES:
            return "error"
        if is_weakness(outcome, self.outcomes):
            return "weakness (expected)" if expected == "weakness" else "weakness"
        if word == "allowed":
            return "introduced"
        return "error"

    def weaknesses(self) -> list[dict[str, Any]]:
        """The checks that are a weakness (expected or not): an admitted fault, a missed detection."""
        return [o for o in self.outcomes if self.check_label(o).startswith("weakness")]

    def attack_results(self) -> dict[str, AttackCell]:
        """Per ATT&CK id: this experiment's own result for it (its worst check), or ``tagged``."""
        results = {}
        for technique in self.attack:
            seen = [o for o in self.outcomes if technique in (o.get("attack") or [])]
            judged = [o for o in seen if self.check_label(o) != "introduced"] or seen
            if not judged:  # in a run that errored, a technique it never got to test is part of the error
                results[technique] = AttackCell("tagged", "error" if self.verdict.result == "error" else "tagged")
                continue
            worst = min(judged, key=lambda o: (CHECK_LABELS.index(self.check_label(o)), _rank(o.get("outcome"))))
            results[technique] = AttackCell(str(worst.get("outcome")), self.check_label(worst))
        return results

    def detections(self) -> list[dict[str, Any]]:
        return [o for o in self.outcomes if o.get("outcome") in ("detected", "missed")]


def worst_outcome(outcomes: list[str]) -> str | None:
    ranked = [o for o in _SEVERITY if o in outcomes]
    return ranked[0] if ranked else None


def _rank(outcome: Any) -> int:
    return _SEVERITY.index(outcome) if outcome in _SEVERITY else len(_SEVERITY)


def name_views(views: list[ExperimentView]) -> list[ExperimentView]:
    """Give every view a unique key (its run id) and a display name (with its folder where names collide)."""
    by_name: dict[str, int] = {}
    for view in views:
        by_name[view.path.name] = by_name.get(view.path.name, 0) + 1
    qualified = [f"{v.path.parent.name}/{v.path.name}" for v in views]
    seen_keys: dict[str, int] = {}
    for view, folder_name in zip(views, qualified):
        view.qualified = by_name[view.path.name] > 1
        view.display = view.path.stem
        if view.qualified:
            view.display = folder_name if qualified.count(folder_name) == 1 else str(view.path.resolve())
        key = view.run_id or str(view.path.resolve())
        seen_keys[key] = seen_keys.get(key, 0) + 1
        view.key = key if seen_keys[key] == 1 else f"{key}#{seen_keys[key]}"
        if seen_keys[key] > 1:  # the same journal (or a copy of it) given twice
            view.display = f"{view.display} #{seen_keys[key]}"
    return views


_MAPPING_PARTS = ("experiment", "tools", "ledger", "cluster", "identity", "verdict")


def load_view(path: Path) -> ExperimentView:
    """Read a journal file into a view; raises `ReportError` when it is not a journal."""
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReportError(f"cannot read journal {path}: {exc}") from None
    if not isinstance(journal, dict) or not isinstance(journal.get("experiment"), dict):
        raise ReportError(f"{path} is not a Chaos Toolkit journal (no experiment in it)")
    section = journal.get("chaoskirvis") if isinstance(journal.get("chaoskirvis"), dict) else {}
    # An edited journal (its digest check says so) must still render: the parts read as mappings are dropped
    # when they are not one.
    section = {k: v for k, v in section.items() if k not in _MAPPING_PARTS or isinstance(v, dict)}
    outcomes = recorded_outcomes(journal)
    verdict = verdict_of(journal, outcomes)
    run_id = section.get("run_id") or next((o["run_id"] for o in outcomes if o.get("run_id")), None)
    outcomes = _attributed(outcomes)
    tagged = attack_ids(journal["experiment"].get("tags"))
    exercised = sorted({a for o in outcomes for a in o.get("attack") or [] if isinstance(a, str)})
    view = ExperimentView(
        path=path,
        title=str(journal["experiment"].get("title") or path.stem),
        status=str(journal.get("status") or "unknown"),
        deviated=bool(journal.get("deviated")),
        verdict=verdict,
        integrity=verify(journal),
        started=parse_time(journal.get("start")),
        ended=parse_time(journal.get("end")),
        run_id=run_id,
        outcomes=outcomes,
        attack=[*tagged, *(a for a in exercised if a not in tagged)],
        timeline=[],
        section=section,
        key=run_id or str(path.resolve()),
        display=path.stem,
    )
    view.timeline = _timeline(journal, outcomes, view)
    return view


def _attributed(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of `outcomes`, attributed what they test (see the module's docstring)."""
    attributed = []
    for outcome in outcomes:
        outcome = dict(outcome)
        techniques = [t for t in outcome.get("techniques") or [] if isinstance(t, str)]
        if techniques and not outcome.get("attack"):
            outcome["attack"] = list(dict.fromkeys(a for t in techniques if t in CATALOG for a in CATALOG[t].attack))
        attributed.append(outcome)
    injected = [o for o in attributed if not o.get("backend")]
    techniques = list(dict.fromkeys(t for o in injected for t in o.get("techniques") or [] if isinstance(t, str)))
    attack = list(dict.fromkeys(a for o in injected for a in o.get("attack") or [] if isinstance(a, str)))
    namespaces = list(dict.fromkeys(o["namespace"] for o in injected if isinstance(o.get("namespace"), str)))
    for outcome in attributed:
        if outcome.get("backend") and not outcome.get("techniques") and techniques:
            outcome["techniques"] = techniques
            outcome.setdefault("attack", attack)
            if len(namespaces) == 1:
                outcome.setdefault("namespace", namespaces[0])
    return attributed


def _timeline(journal: dict[str, Any], outcomes: list[dict[str, Any]], view: ExperimentView) -> list[TimelineEntry]:
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
            detail=str(detail) if detail else None, label=view.check_label(outcome) if outcome else None,
        ))
    return entries
