"""Kyverno CEL ClusterPolicies rehearsed through the real `kirvis rehearse` console script.

Kyverno generates, for a single-rule ClusterPolicy whose rule validates with `validate.cel`, a
ValidatingAdmissionPolicy named after the policy (expressions -> validations, matched kinds -> resourceRules)
and a binding `<policy>-binding` whose validationActions are [Deny] for Enforce and [Audit, Warn] for Audit (KDP
"Generate ValidatingAdmissionPolicies"). The hostPath check is Kyverno's own (pod-security-cel
disallow-host-path), read from ../shared/conformance/cel-policies at test time.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from chaoskirvis.rehearse.engines import translate
from tests.test_rehearse_cli import NAMESPACES, cells, rehearse

CASES = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "cel-policies" / "cases.json"


@pytest.fixture(scope="module")
def kyverno_host_path() -> dict:
    if not CASES.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CASES} is missing")
        pytest.skip(f"{CASES} is missing (Kyverno's CEL policies are read from there, not copied)")
    case = next(c for c in json.loads(CASES.read_text()) if c["id"] == "kyverno/disallow-host-path")
    return case["vap_docs"][0]


def cluster_policy(vap: dict, action: str, expression: str | None = None) -> dict:
    validation = dict(vap["spec"]["validations"][0])
    if expression is not None:
        validation["expression"] = expression
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "disallow-host-path"},
            "spec": {"validationFailureAction": action, "background": True, "rules": [
                {"name": "host-path", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                 "validate": {"cel": {"expressions": [validation]}}}]}}


PATTERN_POLICY = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "require-labels"},
                  "spec": {"validationFailureAction": "Enforce", "rules": [
                      {"name": "check-team", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                       "validate": {"message": "label team is required",
                                    "pattern": {"metadata": {"labels": {"team": "?*"}}}}}]}}


def write_repo(tmp_path: Path, *policies: dict) -> Path:
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "namespaces.yaml").write_text(NAMESPACES)
    (tmp_path / "policies" / "kyverno.yaml").write_text(yaml.safe_dump_all(policies))
    return tmp_path


def test_the_translation_is_what_kyverno_generates(kyverno_host_path: dict) -> None:
    source = Path("kyverno.yaml")
    kept, skipped = translate([(source, cluster_policy(kyverno_host_path, "Enforce"))])
    assert skipped == []
    (_, vap), (_, binding) = kept
    assert vap["kind"] == "ValidatingAdmissionPolicy" and vap["metadata"]["name"] == "disallow-host-path"
    assert vap["spec"]["matchConstraints"] == kyverno_host_path["spec"]["matchConstraints"]
    assert vap["spec"]["validations"] == kyverno_host_path["spec"]["validations"]
    assert binding["kind"] == "ValidatingAdmissionPolicyBinding"
    assert binding["metadata"]["name"] == "disallow-host-path-binding"
    assert binding["spec"] == {"policyName": "disallow-host-path", "validationActions": ["Deny"]}
    (_, audit_binding) = translate([(source, cluster_policy(kyverno_host_path, "Audit"))])[0][1]
    assert audit_binding["spec"]["validationActions"] == ["Audit", "Warn"]

    with_variables = cluster_policy(kyverno_host_path, "Enforce")
    cel = with_variables["spec"]["rules"][0]["validate"]["cel"]
    cel["variables"] = [{"name": "volumes", "expression": "object.spec.?volumes.orValue([])"}]
    cel["auditAnnotations"] = [{"key": "volumes", "valueExpression": "string(size(variables.volumes))"}]
    (_, vap), _ = translate([(source, with_variables)])[0]
    assert vap["spec"]["variables"] == cel["variables"] and vap["spec"]["auditAnnotations"] == cel["auditAnnotations"]


def test_an_enforced_kyverno_cel_policy_holds_and_audit_or_a_removed_check_does_not(
        tmp_path: Path, kyverno_host_path: dict) -> None:
    repo = write_repo(tmp_path, cluster_policy(kyverno_host_path, "Enforce"))
    done = rehearse("policies", "-t", "host-path", "--output-dir", "enforce", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert cells(repo / "enforce") == {("host-path", "team-open"): "held", ("host-path", "team-locked"): "held"}

    write_repo(tmp_path, cluster_policy(kyverno_host_path, "Audit"))  # Audit records, it does not deny
    done = rehearse("policies", "-t", "host-path", "--output-dir", "audit", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert cells(repo / "audit")[("host-path", "team-open")] == "weakness"

    write_repo(tmp_path, cluster_policy(kyverno_host_path, "Enforce", expression="true"))
    done = rehearse("policies", "-t", "host-path", "--output-dir", "removed", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert cells(repo / "removed")[("host-path", "team-open")] == "weakness"
    assert cells(repo / "removed")[("host-path", "team-locked")] == "held"  # Pod Security restricted still does


def test_a_pattern_policy_is_listed_as_not_rehearsed_with_why(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, PATTERN_POLICY)
    done = rehearse("policies", "-t", "host-path", "--output-dir", "out", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((repo / "out" / "rehearse.json").read_text())
    text = json.dumps(result)
    assert "require-labels" in text and "validates with pattern, not CEL" in text
    assert "require-labels" in done.stdout
    assert cells(repo / "out")[("host-path", "team-open")] == "weakness"  # the pattern policy enforced nothing here


def test_rego_gatekeeper_and_multi_rule_kyverno_policies_are_skipped_with_their_reasons(kyverno_host_path: dict
                                                                                       ) -> None:
    two_rules = cluster_policy(kyverno_host_path, "Enforce")
    two_rules["spec"]["rules"].append(PATTERN_POLICY["spec"]["rules"][0])
    template = {"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
                "metadata": {"name": "k8srequiredlabels"},
                "spec": {"crd": {"spec": {"names": {"kind": "K8sRequiredLabels"}}},
                         "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": "package k8srequiredlabels\n"}]}}
    kept, skipped = translate([(Path("a.yaml"), two_rules), (Path("b.yaml"), template)])
    assert kept == []
    assert skipped == [
        ("ClusterPolicy", "disallow-host-path (a.yaml)",
         "not translated: Kyverno generates a ValidatingAdmissionPolicy only for a single-rule policy; it has 2"),
        ("ConstraintTemplate", "k8srequiredlabels (b.yaml)",
         "not translated: it has no K8sNativeValidation (CEL) code, only Rego (rego); Rego is not rehearsed offline")]


def test_a_policy_a_policy_exception_names_is_not_rehearsed_without_it(kyverno_host_path: dict) -> None:
    """Rehearsed without its exception the policy would block what the cluster admits: a held cell that is not true."""
    exception = {"apiVersion": "kyverno.io/v2", "kind": "PolicyException",
                 "metadata": {"name": "allow-node-agents", "namespace": "kyverno"},
                 "spec": {"exceptions": [{"policyName": "disallow-host-path", "ruleNames": ["no-host-path"]}],
                          "match": {"any": [{"resources": {"kinds": ["Pod"], "namespaces": ["team-a"]}}]}}}
    validating = {"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy", "metadata": {"name": "labels"},
                  "spec": {"validations": [{"expression": "true"}]}}
    kept, skipped = translate([(Path("a.yaml"), cluster_policy(kyverno_host_path, "Enforce")),
                               (Path("b.yaml"), exception), (Path("c.yaml"), validating)])

    assert kept == []
    assert skipped == [
        ("ClusterPolicy", "disallow-host-path (a.yaml)",
         "not translated: PolicyException kyverno/allow-node-agents exempts resources from it, which the generated "
         "policy would not"),
        ("PolicyException", "allow-node-agents (b.yaml)",
         "only Kyverno ClusterPolicies with CEL validate rules are translated, not PolicyException"),
        ("ValidatingPolicy", "labels (c.yaml)",
         "only Kyverno ClusterPolicies with CEL validate rules are translated, not ValidatingPolicy")]
    without = translate([(Path("a.yaml"), cluster_policy(kyverno_host_path, "Enforce"))])
    assert [d["kind"] for _, d in without[0]] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
