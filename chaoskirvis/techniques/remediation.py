"""What to do about a weakness: the fix for an admitted technique or a missed detection, from the catalog unit.

The text is made only from the unit's data (`blocked_by`, `pod_security_level`, `pod_security_checks`, what
a detector should see), read through `Technique.summary()`, so a change to the catalog's shape shows here
as plain data, never as an attribute error. The detection part accepts every shape the catalog has used:
``{"falco_rules": [...], "audit_log": "..."}``, a list of rule names, or a list of
``{"name", "source", "needs"}`` dicts (alone or under a ``rules`` key, beside ``falco_rules``; a rule
named twice is shown once, with its richest entry).
"""
from __future__ import annotations

from typing import Any

from chaoskirvis.techniques import CATALOG, Technique

__all__ = ["remediation", "outcome_remediation", "detection_rules"]

_PSA_LABEL = "pod-security.kubernetes.io/enforce"


def remediation(technique_id_or_unit: Any, namespace: str | None = None, *, detector: str | None = None,
                within: float | None = None) -> str:
    """The fix for one technique that got through, in text a person can act on.

    Without `detector`: how to make admission deny the technique in `namespace` (the Pod Security label to
    enforce, or the policy to add). With `detector` (the backend that saw nothing, e.g. ``falco``): which
    detector rules should fire on it.
    """
    unit = _unit(technique_id_or_unit)
    if unit is None:
        return (f"{technique_id_or_unit!r} is not in the technique catalog: `kirvis catalog` lists what blocks "
                "and what detects each technique")
    if isinstance(unit.get("cis"), dict):
        return _node_fix(unit, detector, within)
    if detector is not None:
        return _detection_fix(unit, detector, within)
    return _admission_fix(unit, namespace)


def outcome_remediation(outcome: dict[str, Any]) -> str | None:
    """The fix for a weakness outcome (``allowed`` admission, ``missed`` detection), else None.

    Uses the outcome's `techniques` (ids) and `namespace`; a detection outcome also its `backend` and
    `within_s`. An outcome that names no technique gets a generic fix.
    """
    kind = outcome.get("outcome")
    if kind not in ("allowed", "missed"):
        return None
    techniques = [t for t in outcome.get("techniques") or [] if isinstance(t, str)]
    namespace = outcome.get("namespace") if isinstance(outcome.get("namespace"), str) else None
    if kind == "missed":
        backend = str(outcome.get("backend") or "the detector")
        if not techniques:
            rule = f" (rule {outcome['rule']})" if outcome.get("rule") else ""
            return (f"{backend} saw no alert{rule}: check that the detector's rules are loaded and enabled, "
                    f"and that its alerts reach {backend}")
        return "; ".join(remediation(t, detector=backend, within=outcome.get("within_s")) for t in techniques)
    if not techniques:
        what = outcome.get("kind") or "the object"
        where = f" in namespace {namespace}" if namespace else ""
        return f"{what} was admitted{where}: add an admission control (Pod Security or a policy) that denies it"
    return "; ".join(remediation(t, namespace) for t in techniques)


def detection_rules(detection: Any) -> list[dict[str, str]]:
    """The detector rules that should fire, as ``{"name", "source", "file", "needs"}`` dicts (each may be "")."""
    rules: dict[str, dict[str, str]] = {}

    def add(entry: Any, source: str = "") -> None:
        if isinstance(entry, str) and entry.strip():
            rules.setdefault(entry.strip(), {"name": entry.strip(), "source": source, "file": "", "needs": ""})
        elif isinstance(entry, dict) and entry.get("name"):
            needs = entry.get("needs") or ""
            if isinstance(needs, (list, tuple)):
                needs = "; ".join(map(str, needs))
            rules[str(entry["name"])] = {
                "name": str(entry["name"]), "source": str(entry.get("source") or source),
                "file": str(entry.get("file") or ""), "needs": str(needs),
            }

    if isinstance(detection, (list, tuple)):
        for entry in detection:
            add(entry)
    elif isinstance(detection, dict):
        for entry in detection.get("rules") or ():
            add(entry)
        for entry in detection.get("falco_rules") or ():
            add(entry, "falco")
    return list(rules.values())


def _unit(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        technique = CATALOG.get(value)
        return technique.summary() if technique else None
    if isinstance(value, Technique) or hasattr(value, "summary"):
        return value.summary()
    return value if isinstance(value, dict) and value.get("id") else None


def _admission_fix(unit: dict[str, Any], namespace: str | None) -> str:
    level = unit.get("pod_security_level")
    checks = [str(c) for c in unit.get("pod_security_checks") or []]
    target = namespace or "NAMESPACE"
    if level:
        check = f" (check{'s' if len(checks) > 1 else ''} {', '.join(repr(c) for c in checks)})" if checks else ""
        return (f"Enforce Pod Security '{level}' on namespace {target}: kubectl label --overwrite namespace "
                f"{target} {_PSA_LABEL}={level}{check}; or a policy-engine rule with the same intent")
    where = f" in namespace {namespace}" if namespace else ""
    blocked_by = str(unit.get("blocked_by") or "an admission policy that forbids it").strip().rstrip(".")
    return f"Block '{unit['id']}' ({unit.get('title') or unit.get('injects')}){where}: add {blocked_by}"


def _detection_fix(unit: dict[str, Any], detector: str, within: float | None) -> str:
    detection = unit.get("detection")
    shown = detection_rules(detection)
    limit = f" within {within:g} s" if isinstance(within, (int, float)) else ""
    subject = f"'{unit['id']}' ({unit.get('title') or unit.get('injects')})"
    if shown:
        names = " or ".join(_rule_text(r) for r in shown)
        rules = "the detector rule" if len(shown) == 1 else "one of the detector rules"
        return (f"{detector} saw no alert on {subject}{limit}: {rules} {names} should fire on it; check that it "
                f"is loaded and enabled and that its alerts reach {detector}")
    audit = _detection_text(detection, "audit_log")
    note = _detection_text(detection, "note")
    hint = f" (the API audit log shows it as: {audit})" if audit else ""
    return (f"{detector} saw no alert on {subject}{limit}, and the catalog names no detector rule for it"
            f"{f' ({note})' if note else ''}: add one{hint}")


def _node_fix(unit: dict[str, Any], detector: str | None, within: float | None) -> str:
    """A node file change: the CIS fix on the node; for a missed detection, which benchmark check reports it."""
    cis = unit["cis"]
    subject = f"'{unit['id']}' ({unit.get('title') or unit.get('injects')})"
    check = f"CIS {cis.get('id')} ({cis.get('benchmark')}, kube-bench --targets {','.join(cis.get('targets') or [])})"
    remedy = str(cis.get("remediation") or "").strip().rstrip(".")
    fix = f"the fix on the node: {remedy}"
    if detector is None:
        return (f"Undo {subject} on the node: {remedy}, as {check} asks; and keep node files out of reach: Pod Security baseline "
                "denies the hostPath volumes a pod needs to change them")
    limit = f" within {within:g} s" if isinstance(within, (int, float)) else ""
    warn = "" if cis.get("scored", True) else ", which kube-bench reports as WARN when it fails (unscored)"
    if detector in ("kube-bench", "trivy-operator"):
        return (f"{detector} did not report {subject} as failing {check}{limit}{warn}: check that the change took "
                f"effect on the node it scanned (a manifest change restarts its static pod; a kubelet change is "
                f"read from its config file) and that the scan ran after it; {fix}")
    return (f"{detector} saw no alert on {subject}{limit}: no detector rule sees a node file change; {check} "
            f"reports it{warn}; {fix}")


def _rule_text(rule: dict[str, str]) -> str:
    text = f"'{rule['name']}'"
    details = [d for d in (rule["file"] or rule["source"], f"needs: {rule['needs']}" if rule["needs"] else "") if d]
    return text + (f" ({'; '.join(details)})" if details else "")


def _detection_text(detection: Any, key: str) -> str:
    if isinstance(detection, dict) and isinstance(detection.get(key), str):
        return detection[key].strip().rstrip(".")
    return ""
