"""The fix for a weakness, made from the catalog unit: what to enforce or add, and which detector rules should fire."""
from __future__ import annotations

from typing import Any

import pytest

from chaoskirvis.techniques import CATALOG
from chaoskirvis.techniques.remediation import detection_rules, outcome_remediation, remediation


class Unit:
    """A catalog unit as remediation reads it: only its summary()."""

    def __init__(self, **summary: Any) -> None:
        self._summary = {"id": "fake", "title": "Fake technique", "injects": "something", "blocked_by": "",
                         "pod_security_level": None, "pod_security_checks": [], "detection": {}, **summary}

    def summary(self) -> dict[str, Any]:
        return self._summary


def test_a_pod_security_technique_gets_the_label_to_enforce():
    assert remediation("privileged", "team-a") == (
        "Enforce Pod Security 'baseline' on namespace team-a: kubectl label --overwrite namespace team-a "
        "pod-security.kubernetes.io/enforce=baseline (check 'privileged'); or a policy-engine rule with the same intent"
    )
    assert "pod-security.kubernetes.io/enforce=restricted" in remediation(CATALOG["run-as-root"], "team-b")
    assert "kubectl label --overwrite namespace NAMESPACE " in remediation("host-pid")


def test_a_policy_only_technique_gets_its_blocked_by_as_an_instruction():
    fix = remediation("untrusted-registry", "team-a")
    assert fix.startswith("Block 'untrusted-registry' (Image from an untrusted registry) in namespace team-a: add ")
    assert CATALOG["untrusted-registry"].blocked_by in fix
    assert "kubectl label" not in fix


NEEDS = {"name": "Rule B", "source": "k8saudit", "file": "k8s_audit_rules.yaml", "needs": ["an audit policy"]}


@pytest.mark.parametrize("detection, needs", [
    (["Rule A", "Rule B"], False),
    ([{"name": "Rule A", "source": "falco"}, NEEDS], True),
    ({"falco_rules": ["Rule A", "Rule B"], "rules": [NEEDS], "audit_log": "verb=create", "note": ""}, True),
    ({"falco_rules": ["Rule A", "Rule B"], "audit_log": "verb=create"}, False),
], ids=["names", "dicts", "names-and-dicts", "falco-rules"])
def test_a_missed_detection_names_the_rules_that_should_fire_whatever_the_catalog_shape(detection, needs):
    fix = remediation(Unit(detection=detection), detector="falco", within=5)

    assert fix.startswith("falco saw no alert on 'fake' (Fake technique) within 5 s: one of the detector rules ")
    assert fix.count("'Rule A'") == 1 and fix.count("'Rule B'") == 1  # a rule named twice is shown once
    assert sorted(r["name"] for r in detection_rules(detection)) == ["Rule A", "Rule B"]
    assert ("'Rule B' (k8s_audit_rules.yaml; needs: an audit policy)" in fix) is needs


def test_a_technique_without_rules_says_so_and_points_at_the_audit_log():
    fix = remediation(Unit(detection={"falco_rules": [], "audit_log": "verb=create, objectRef.resource=services"}),
                      detector="alertmanager")
    assert "names no detector rule" in fix and "verb=create, objectRef.resource=services" in fix


def test_every_catalog_technique_has_a_fix_for_admission_and_detection():
    for technique in CATALOG.values():
        assert technique.id in remediation(technique, "team-a") or "Pod Security" in remediation(technique, "team-a")
        assert f"'{technique.id}'" in remediation(technique.id, detector="falco")


def test_outcomes_get_the_fix_of_their_weakness_only():
    allowed = {"outcome": "allowed", "techniques": ["privileged", "host-pid"], "namespace": "team-x"}
    assert outcome_remediation(allowed) == f"{remediation('privileged', 'team-x')}; {remediation('host-pid', 'team-x')}"
    missed = {"outcome": "missed", "backend": "falco", "within_s": 30.0, "techniques": ["privileged"]}
    assert outcome_remediation(missed) == remediation("privileged", detector="falco", within=30.0)
    assert outcome_remediation({"outcome": "blocked", "techniques": ["privileged"]}) is None
    assert outcome_remediation({"outcome": "error", "techniques": ["privileged"]}) is None
    assert "not in the technique catalog" in remediation("no-such-technique")
