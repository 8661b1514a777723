"""Wording shared by the report formats: times, durations, verdict labels, one check in a few words."""
from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["VERDICT_LABELS", "when", "span", "check_subject", "check_timing", "check_line", "identity_text",
           "cluster_text", "left_text", "restore_text"]

VERDICT_LABELS = {
    "passed": "Passed",
    "deviated": "Deviated",
    "controls-failed": "Controls failed",
    "not-met-before": "Not met before method",
    "failed": "Failed",
    "aborted": "Aborted",
    "interrupted": "Interrupted",
}


def when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def span(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def check_subject(outcome: dict[str, Any]) -> str:
    """What a check tested: its techniques, or the detection backend."""
    return "+".join(outcome.get("techniques") or []) or str(outcome.get("backend") or "check")


def check_timing(outcome: dict[str, Any]) -> str:
    """Time to detect for a detection, the API's answer time for an admission check."""
    if outcome.get("time_to_detect_s") is not None:
        return f"detected after {outcome['time_to_detect_s']} s"
    if outcome.get("outcome") == "missed" and outcome.get("within_s") is not None:
        return f"nothing within {outcome['within_s']} s"
    if outcome.get("latency_ms") is not None:
        return f"answered in {outcome['latency_ms']} ms"
    return "—"


def check_line(outcome: dict[str, Any]) -> str:
    """One check in one line: outcome, subject, activity, who answered, timing, message."""
    who = f" by {outcome['answered_by']}" if outcome.get("answered_by") else ""
    line = (f"{outcome.get('outcome')}: {check_subject(outcome)} ({outcome.get('activity') or 'unattributed'})"
            f"{who}, {check_timing(outcome)}")
    return f"{line}: {outcome['message']}" if outcome.get("message") else line


def identity_text(identity: Any) -> str:
    if not isinstance(identity, dict) or not identity:
        return "not recorded"
    if "unavailable" in identity:
        return f"unavailable ({identity['unavailable']})"
    groups = ", ".join(identity.get("groups") or [])
    return f"{identity.get('username')}" + (f" (groups: {groups})" if groups else "") + \
        f", verified by {identity.get('verified_by')}"


def cluster_text(cluster: Any) -> str:
    if not isinstance(cluster, dict) or not cluster:
        return "not recorded"
    if "unavailable" in cluster:
        return f"unavailable ({cluster['unavailable']})"
    version = cluster.get("version")
    version = version if isinstance(version, str) else "version unknown"
    context = f", context {cluster['context']}" if cluster.get("context") else ""
    return f"{cluster.get('server')} ({version}{context})"


def left_text(left: Any) -> str:
    """What the ledger found left in the cluster after the run."""
    if isinstance(left, list):
        return ", ".join(map(str, left)) or "nothing"
    if isinstance(left, dict):
        return f"unknown ({left.get('unknown')})"
    return "not checked"


def restore_text(restore: dict[str, Any]) -> str:
    """The restore of a run's ledger in a few words."""
    if restore.get("status") == "not run":
        return "not run"
    text = (f"{restore.get('status')}: removed {len(restore.get('removed') or [])} object(s) and "
            f"{len(restore.get('records_removed') or [])} record(s)")
    return text + (f"; errors: {'; '.join(restore['errors'])}" if restore.get("errors") else "")
