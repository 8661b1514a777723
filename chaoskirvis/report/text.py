"""Wording shared by the report formats: times, durations, verdict labels, one check in a few words."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any

from chaoskirvis.evidence.verdict import Verdict
from chaoskirvis.techniques.remediation import outcome_remediation

__all__ = ["VERDICT_LABELS", "VERDICT_NOTES", "HEADLINE", "verdict_counts", "headline_text", "verdict_tone",
           "label_tone", "when", "span", "check_subject", "check_timing", "check_line", "fix_text",
           "identity_text", "cluster_text", "left_text", "restore_text"]

# Keyed by `Verdict.label`.
VERDICT_LABELS = {
    "held": "Held",
    "weakness": "Weakness",
    "weakness (expected)": "Weakness (expected)",
    "error": "Error",
}
VERDICT_NOTES = {
    "held": "every security fault this run introduced was blocked or detected",
    "weakness": "a security fault got through: see the fix under the checks",
    "weakness (expected)": "weakness, as expected: the test can fail (a negative control)",
    "error": "the test could not be carried out: this is not a weakness, and it proves nothing either way",
}
# The headline counts, in this order: label -> plural wording.
HEADLINE = {"held": "held", "weakness": "weakness", "weakness (expected)": "expected weakness", "error": "error"}
_TONES = {"held": "good", "weakness": "bad", "weakness (expected)": "info", "error": "warn", "introduced": "neutral",
          "tagged": "neutral"}


def verdict_counts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """How many verdicts of each label (every label present, in HEADLINE order)."""
    counts = Counter(v.label for v in verdicts)
    return {label: counts.get(label, 0) for label in HEADLINE} | {k: n for k, n in counts.items() if k not in HEADLINE}


def headline_text(verdicts: Iterable[Verdict]) -> str:
    """``2 held, 1 weakness, 1 expected weakness, 0 error``."""
    return ", ".join(f"{n} {HEADLINE.get(label, label)}" for label, n in verdict_counts(verdicts).items())


def label_tone(label: str) -> str:
    """The tone of a verdict or check label: good, bad, info (expected weakness), warn (error), neutral."""
    return _TONES.get(label, "warn")


def verdict_tone(verdict: Verdict) -> str:
    return label_tone(verdict.label)


def when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def span(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def check_subject(outcome: dict[str, Any]) -> str:
    """What a check tested: its techniques, and for a detection the backend."""
    techniques = "+".join(outcome.get("techniques") or [])
    if outcome.get("backend"):
        return f"{outcome['backend']}: {techniques}" if techniques else str(outcome["backend"])
    return techniques or "check"


def fix_text(outcome: dict[str, Any]) -> str | None:
    """The remediation of a weakness check (allowed admission, missed detection), else None."""
    return outcome_remediation(outcome)


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
    tls = ", TLS NOT VERIFIED" if cluster.get("tls_verified") is False else ""  # anyone on the path could answer
    return f"{cluster.get('server')} ({version}{context}{tls})"


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
