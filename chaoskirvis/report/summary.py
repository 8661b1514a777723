"""The JSON summary of a set of journals; the other formats show the same facts."""
from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

from chaoskirvis import __version__
from chaoskirvis.report.attack import technique_name
from chaoskirvis.report.model import ExperimentView

__all__ = ["summary", "render_json", "attack_matrix", "OUTCOME_FIELDS"]

# The evidence of one check that every format shows.
OUTCOME_FIELDS = (
    "activity", "phase", "outcome", "techniques", "attack", "mode", "backend", "kind", "namespace", "name",
    "answered_by", "status", "latency_ms", "time_to_detect_s", "within_s", "message",
)


def attack_matrix(views: list[ExperimentView]) -> dict[str, dict[str, str]]:
    """ATT&CK id -> {experiment name: worst outcome or ``tagged``}, ids sorted."""
    matrix: dict[str, dict[str, str]] = {}
    for view in views:
        for technique, result in view.attack_results().items():
            matrix.setdefault(technique, {})[view.name] = result
    return dict(sorted(matrix.items()))


def summary(views: list[ExperimentView], generated_at: dt.datetime) -> dict[str, Any]:
    checks: Counter[str] = Counter()
    for view in views:
        checks.update(view.counts())
    return {
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "generator": f"chaoskirvis {__version__}",
        "passed": all(view.verdict.passed for view in views),
        "totals": {
            "experiments": len(views),
            "verdicts": dict(Counter(view.verdict.result for view in views)),
            "checks": dict(checks),
            "journals": dict(Counter(view.integrity.state for view in views)),
        },
        "attack_coverage": {
            technique: {"name": technique_name(technique), "experiments": results}
            for technique, results in attack_matrix(views).items()
        },
        "experiments": [_experiment(view) for view in views],
    }


def render_json(views: list[ExperimentView], generated_at: dt.datetime) -> str:
    return json.dumps(summary(views, generated_at), indent=2, ensure_ascii=False) + "\n"


def _experiment(view: ExperimentView) -> dict[str, Any]:
    section = view.section
    return {
        "name": view.name,
        "journal": str(view.path),
        "title": view.title,
        "verdict": view.verdict.result,
        "passed": view.verdict.passed,
        "reason": view.verdict.reason,
        "status": view.status,
        "deviated": view.deviated,
        "started": view.started.isoformat() if view.started else None,
        "duration_s": round(view.duration, 3) if view.duration is not None else None,
        "run_id": view.run_id,
        "checks": view.counts(),
        "attack": view.attack,
        "integrity": view.integrity.state,
        "digest": view.integrity.sealed,
        "experiment": section.get("experiment"),
        "cluster": section.get("cluster"),
        "identity": section.get("identity"),
        "ledger": section.get("ledger"),
        "outcomes": [{k: o.get(k) for k in OUTCOME_FIELDS if k in o} for o in view.outcomes],
    }
