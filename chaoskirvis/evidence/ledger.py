"""The ledger part of the evidence: what a run created, what was denied, what was restored, what is left."""
from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.evidence.journal import activity_runs, exception_summary
from chaoskirvis.ledger.restore import find_known
from chaoskirvis.ledger.state import RunState

__all__ = ["ledger_evidence", "RESTORE_FUNCTION"]

RESTORE_FUNCTION = "chaoskirvis.ledger.actions.restore_run"
_REPORT_KEYS = ("removed", "already_gone", "left_alone", "failed", "records_removed")


def ledger_evidence(
    journal: dict[str, Any], state: RunState, outcomes: list[dict[str, Any]], api: KubeAPI | None,
    fallback_restore: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Created and denied objects (run state), the restore (rollback runs), and what the cluster still holds.

    ``restored`` is true only when every restore run succeeded and nothing of the run is left in the
    cluster: objects or records still carrying the run's marks after the rollbacks. What is left is
    confirmed by name from what the run wrote (its record and state), never by a sweep: what the API
    server already showed absent (a create denied, a restore's delete or read) is not asked again, every
    other object the record names and the record itself are read. `fallback_restore`
    is the restore the evidence control made when Chaos Toolkit played no rollback of a failed run.
    """
    restore = _restore_runs(journal) if fallback_restore is None else _fallback(fallback_restore)
    left = _left_in_cluster(api, state)
    nothing_left = isinstance(left, list) and not left
    restore_ok = restore["status"] in ("succeeded", "not run") and not restore["failed"]
    return {
        "created": [str(ref) for ref in state.created],
        "denied": [
            f"{o.get('kind')} {o.get('name')} in namespace {o.get('namespace')}"
            for o in outcomes if o.get("outcome") == "blocked" and o.get("mode") != "dry-run"
        ],
        "dry_run_checks": sum(1 for o in outcomes if o.get("mode") == "dry-run"),
        "restore": restore,
        "left_in_cluster": left,
        "restored": restore_ok and nothing_left,
    }


def _fallback(report: dict[str, Any]) -> dict[str, Any]:
    merged = {key: list(report.get(key) or []) for key in _REPORT_KEYS}
    errors = [report["error"]] if report.get("error") else []
    return {"status": "failed" if errors else "succeeded", "by": report.get("by"), **merged, "errors": errors}


def _restore_runs(journal: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {key: [] for key in _REPORT_KEYS}
    statuses, errors = [], []
    for played in activity_runs(journal):
        if played.phase != "rollback" or played.provider_function != RESTORE_FUNCTION:
            continue
        statuses.append(played.status)
        if isinstance(played.output, dict):
            for key in _REPORT_KEYS:
                merged[key].extend(played.output.get(key) or [])
        if played.status != "succeeded":
            errors.append(exception_summary(played.run) or f"{played.name}: {played.status}")
    if not statuses:
        status = "not run"
    elif all(s == "succeeded" for s in statuses):
        status = "succeeded"
    else:
        status = "failed"
    return {"status": status, **merged, "errors": errors}


def _left_in_cluster(api: KubeAPI | None, state: RunState) -> list[str] | dict[str, str]:
    if not state.namespaces:
        return []
    if api is None:
        return {"unknown": "no usable cluster configuration to look with"}
    try:
        leftovers = find_known(api, state, read_records=True)
    except (ActivityFailed, ApiError) as exc:
        return {"unknown": str(exc)}
    if leftovers.failed:  # a list or read failed: what is left there is unknown
        return {"unknown": "; ".join(leftovers.failed)}
    return [str(ref) for ref, _ in leftovers.objects] + [f"record {ref}" for ref, _ in leftovers.records]
