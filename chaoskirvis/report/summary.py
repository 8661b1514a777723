"""The JSON summary of a set of journals; the other formats show the same facts.

Experiments are keyed by run id (`ExperimentView.key`), never by file name: the ATT&CK coverage maps
each technique to {key: that experiment's own result}.
"""
from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

from chaoskirvis import __version__
from chaoskirvis.report.attack import technique_name
from chaoskirvis.report.fleet import fleet_of
from chaoskirvis.report.model import AttackCell, ExperimentView, name_views
from chaoskirvis.report.text import fix_text, verdict_counts

__all__ = ["summary", "render_json", "attack_matrix", "OUTCOME_FIELDS"]

# The evidence of one check that every format shows.
OUTCOME_FIELDS = (
    "activity", "phase", "outcome", "techniques", "attack", "mode", "backend", "kind", "namespace", "name",
    "answered_by", "status", "latency_ms", "time_to_detect_s", "within_s", "message",
)


def attack_matrix(views: list[ExperimentView]) -> dict[str, dict[str, AttackCell]]:
    """ATT&CK id -> {experiment key (run id): its own result for that technique}, ids sorted."""
    name_views(views)
    matrix: dict[str, dict[str, AttackCell]] = {}
    for view in views:
        for technique, cell in view.attack_results().items():
            matrix.setdefault(technique, {})[view.key] = cell
    return dict(sorted(matrix.items()))


def summary(views: list[ExperimentView], generated_at: dt.datetime) -> dict[str, Any]:
    name_views(views)
    checks: Counter[str] = Counter()
    for view in views:
        checks.update(view.counts())
    names = {view.key: view.name for view in views}
    fleet = fleet_of(views)
    return {
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "generator": f"chaoskirvis {__version__}",
        "passed": all(view.verdict.as_expected for view in views),
        "totals": {
            "experiments": len(views),
            "verdicts": verdict_counts(view.verdict for view in views),
            "checks": dict(checks),
            "journals": dict(Counter(view.integrity.state for view in views)),
        },
        "attack_coverage": {
            technique: {
                "name": technique_name(technique),
                "experiments": {
                    key: {"experiment": names[key], "outcome": cell.outcome, "label": cell.label}
                    for key, cell in results.items()
                },
            }
            for technique, results in attack_matrix(views).items()
        },
        **({"fleet": fleet.as_dict()} if fleet is not None else {}),
        "experiments": [_experiment(view) for view in views],
    }


def render_json(views: list[ExperimentView], generated_at: dt.datetime) -> str:
    return json.dumps(summary(views, generated_at), indent=2, ensure_ascii=False) + "\n"


def _experiment(view: ExperimentView) -> dict[str, Any]:
    section = view.section
    verdict = view.verdict
    return {
        "key": view.key,
        "run_id": view.run_id,
        "name": view.name,
        "journal": str(view.path),
        "title": view.title,
        "verdict": verdict.result,
        "label": verdict.label,
        "expected": verdict.expected,
        "as_expected": verdict.as_expected,
        "passed": verdict.passed,
        "status": verdict.status,
        "reason": verdict.reason,
        "journal_status": view.status,
        "deviated": view.deviated,
        "started": view.started.isoformat() if view.started else None,
        "duration_s": round(view.duration, 3) if view.duration is not None else None,
        "checks": view.counts(),
        "attack": view.attack,
        "integrity": view.integrity.state,
        "digest": view.integrity.sealed,
        "experiment": section.get("experiment"),
        "cluster": section.get("cluster"),
        "identity": section.get("identity"),
        "ledger": section.get("ledger"),
        "outcomes": [_outcome(view, o) for o in view.outcomes],
    }


def _outcome(view: ExperimentView, outcome: dict[str, Any]) -> dict[str, Any]:
    shown = {k: outcome.get(k) for k in OUTCOME_FIELDS if k in outcome}
    shown.setdefault("techniques", [])
    shown.setdefault("namespace", None)
    shown["label"] = view.check_label(outcome)
    if shown["label"].startswith("weakness"):
        shown["remediation"] = fix_text(outcome)
    return shown
