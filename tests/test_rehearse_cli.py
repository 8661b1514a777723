"""`kirvis rehearse` as CI runs it: the real console script over an organisation's policy files.

The policy repository is written here: a Pod Security `privileged` namespace (so only the organisation's own
ValidatingAdmissionPolicy stands between a pod and a hostPath volume) and a guarded `restricted` one. Opening
the hole (the VAP's hostPath check removed) must turn the cell into a weakness, break the expectation, show as
a regression against the previous result, and fail the run; reverting it passes again.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KIRVIS = Path(sys.executable).parent / "kirvis"

NAMESPACES = """\
apiVersion: v1
kind: Namespace
metadata:
  name: team-open
  labels:
    pod-security.kubernetes.io/enforce: privileged
---
apiVersion: v1
kind: Namespace
metadata:
  name: team-locked
  labels:
    pod-security.kubernetes.io/enforce: restricted
"""

HOST_PATH_CHECK = "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))"
POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: deny-host-path
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["pods"]
  validations:
  - expression: "{check}"
    message: hostPath volumes are not allowed
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: deny-host-path-binding
spec:
  policyName: deny-host-path
  validationActions: [Deny]
"""

EXPECTATIONS = """\
out_of_scope: [kube-system]
expectations:
- namespaces: "team-*"
  hold: [host-path]
"""


def rehearse(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KIRVIS), "rehearse", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def cells(out: Path) -> dict[tuple[str, str], str]:
    result = json.loads((out / "rehearse.json").read_text())
    assert result["kind"] == "kirvis-rehearse"
    return {(c["technique"], c["namespace"]): c["verdict"] for c in result["cells"]}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "namespaces.yaml").write_text(NAMESPACES)
    (policies / "host-path.yaml").write_text(POLICY.format(check=HOST_PATH_CHECK))
    (tmp_path / "kirvis-expectations.yaml").write_text(EXPECTATIONS)
    return tmp_path


def test_a_policy_change_that_opens_a_hole_fails_the_run_and_reverting_it_passes(repo: Path) -> None:
    common = ("-t", "host-path", "-t", "privileged", "--expectations", "kirvis-expectations.yaml")
    guarded = rehearse("policies", *common, "--output-dir", "before", cwd=repo)
    assert guarded.returncode == 0, guarded.stdout + guarded.stderr
    assert cells(repo / "before") == {("host-path", "team-open"): "held", ("host-path", "team-locked"): "held",
                                      ("privileged", "team-open"): "weakness", ("privileged", "team-locked"): "held"}

    (repo / "policies" / "host-path.yaml").write_text(POLICY.format(check="true"))
    opened = rehearse("policies", *common, "--baseline", "before/rehearse.json", "--output-dir", "after", cwd=repo)
    assert opened.returncode == 1, opened.stdout + opened.stderr
    assert cells(repo / "after")[("host-path", "team-open")] == "weakness"
    assert cells(repo / "after")[("host-path", "team-locked")] == "held"  # Pod Security still blocks it there
    result = json.loads((repo / "after" / "rehearse.json").read_text())
    assert [(c["technique"], c["namespace"]) for c in result["broken"]] == [("host-path", "team-open")]
    first = result["changes"][0]
    assert (first["technique"], first["namespace"], first["before"], first["after"]) == \
        ("host-path", "team-open", "held", "weakness")
    markdown = (repo / "after" / "rehearse.md").read_text()
    assert "host-path" in markdown and "team-open" in markdown
    assert markdown.index("regression") < markdown.index("| technique |")  # regressions come before the matrix

    (repo / "policies" / "host-path.yaml").write_text(POLICY.format(check=HOST_PATH_CHECK))
    reverted = rehearse("policies", *common, "--baseline", "after/rehearse.json", "--output-dir", "reverted", cwd=repo)
    assert reverted.returncode == 0, reverted.stdout + reverted.stderr
    assert cells(repo / "reverted")[("host-path", "team-open")] == "held"


def test_without_expectations_weaknesses_are_shown_and_the_run_passes(repo: Path) -> None:
    done = rehearse("policies", "-t", "privileged", "--output-dir", "out", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert cells(repo / "out") == {("privileged", "team-open"): "weakness", ("privileged", "team-locked"): "held"}
    junit = (repo / "out" / "rehearse.xml").read_text()
    assert "<testsuite" in junit and "failure" in junit  # the weakness is a failed case in CI's view


def test_a_typo_in_the_expectations_is_an_error_not_a_smaller_check(repo: Path) -> None:
    (repo / "kirvis-expectations.yaml").write_text(EXPECTATIONS.replace("host-path", "host-pth"))
    done = rehearse("policies", "--expectations", "kirvis-expectations.yaml", "--output-dir", "out", cwd=repo)
    assert done.returncode == 2
    assert "host-pth" in done.stderr and not (repo / "out").exists()


def test_a_manifest_that_does_not_apply_is_an_error_naming_it(repo: Path) -> None:
    (repo / "policies" / "broken.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {}\n")
    done = rehearse("policies", "-t", "privileged", "--output-dir", "out", cwd=repo)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "broken.yaml" in done.stderr


def test_a_baseline_that_is_not_a_rehearse_result_is_an_error(repo: Path) -> None:
    (repo / "journal.json").write_text(json.dumps({"status": "completed"}))
    done = rehearse("policies", "-t", "privileged", "--baseline", "journal.json", "--output-dir", "out", cwd=repo)
    assert done.returncode == 2 and "not a kirvis rehearse result" in done.stderr


def test_scenarios_rehearsed_as_the_demo_applies_them() -> None:
    out = ROOT / ".kirvis" / "test-rehearse-scenarios"
    done = rehearse("scenarios", "-t", "privileged", "-t", "nodeport-service", "--output-dir", out, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    matrix = cells(out)
    # scenarios/namespaces.yaml: restricted and baseline enforce Pod Security, privileged does not;
    # scenarios/policies.yaml's VAPs guard only the namespaces labelled chaoskirvis.io/guarded.
    assert matrix[("privileged", "team-restricted")] == matrix[("privileged", "team-baseline")] == "held"
    assert matrix[("privileged", "team-privileged")] == "weakness"
    assert matrix[("nodeport-service", "team-restricted")] == "held"
    assert matrix[("nodeport-service", "team-privileged")] == "weakness"


def test_a_policy_engine_policy_is_listed_as_not_rehearsed_never_dropped(repo: Path) -> None:
    (repo / "policies" / "kyverno.yaml").write_text(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: disallow-host-path\nspec:\n"
        "  validationFailureAction: Enforce\n  rules: []\n")
    done = rehearse("policies", "-t", "host-path", "--output-dir", "out", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((repo / "out" / "rehearse.json").read_text())
    assert [(s["kind"], s["name"].split()[0]) for s in result["skipped"]] == [("ClusterPolicy", "disallow-host-path")]
    assert "not translated" in result["skipped"][0]["reason"]
    assert "disallow-host-path" in (repo / "out" / "rehearse.md").read_text()
    assert cells(repo / "out")[("host-path", "team-open")] == "held"  # the VAP beside it was still rehearsed


def test_a_kyverno_failure_action_typo_is_an_error_not_an_audit_only_policy(repo: Path) -> None:
    (repo / "policies" / "host-path.yaml").unlink()
    (repo / "policies" / "kyverno.yaml").write_text(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: disallow-host-path\nspec:\n"
        "  validationFailureAction: Enfroce\n  rules:\n  - name: host-path\n    match:\n      any:\n"
        "      - resources:\n          kinds: [Pod]\n    validate:\n      cel:\n        expressions:\n"
        f"        - expression: \"{HOST_PATH_CHECK}\"\n")
    done = rehearse("policies", "-t", "host-path", "--output-dir", "out", cwd=repo)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'Enfroce'" in done.stderr and "disallow-host-path" in done.stderr
    assert not (repo / "out").exists()
    (repo / "policies" / "kyverno.yaml").write_text(
        (repo / "policies" / "kyverno.yaml").read_text().replace("Enfroce", "Enforce"))
    fixed = rehearse("policies", "-t", "host-path", "--output-dir", "out", cwd=repo)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert cells(repo / "out")[("host-path", "team-open")] == "held"
