"""`kirvis rehearse` of the policy repository in tests/rehearse-fixtures/policy-repo, through its console script.

The repository (written for these tests) guards three namespaces with every kind of policy the rehearsal reads:
- team-a (Pod Security enforce privileged): the VAP tenant-no-host-path, Kyverno's pod hardening, Gatekeeper's
  trusted registries;
- team-b (Pod Security baseline): the same VAP, Kyverno, and Gatekeeper's trusted registries in dryrun only;
- payments (Pod Security enforce privileged): Kyverno, and Gatekeeper's PCI host access and trusted registries;
- everywhere but kube-system: the VAP no-node-ports.
Each change below is made to a copy of the repository, then reverted.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_rehearse_cli import rehearse

FIXTURE = Path(__file__).resolve().parent / "rehearse-fixtures" / "policy-repo"
VAP_HOST_PATH = "variables.volumes.all(v, !has(v.hostPath))"
GATEKEEPER_HOST_PATH = \
    "variables.volumes.all(v, !has(v.hostPath) || variables.allowed.exists(p, v.hostPath.path.startsWith(p)))"
HOST_PATH_CELLS = ("host-path", "runtime-socket")  # both mount a hostPath volume


def run(repo: Path, output: str, *extra: str) -> tuple[int, dict]:
    done = rehearse("manifests", "--expectations", "kirvis-expectations.yaml", "--output-dir", output, *extra, cwd=repo)
    result_file = repo / output / "rehearse.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return done.returncode, result | {"stderr": done.stderr, "stdout": done.stdout}


def matrix(result: dict) -> dict[tuple[str, str], str]:
    return {(c["technique"], c["namespace"]): c["verdict"] for c in result["cells"] if c["identity"] is None}


def detail(result: dict, technique: str, namespace: str) -> str:
    return next(c["detail"] for c in result["cells"] if (c["technique"], c["namespace"]) == (technique, namespace))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "repo"))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The unchanged repository's result (rehearse.json), the previous run the changes are compared with."""
    repo = Path(shutil.copytree(FIXTURE, tmp_path_factory.mktemp("baseline") / "repo"))
    code, result = run(repo, "out")
    assert code == 0, result["stdout"] + result["stderr"]
    return result | {"file": str(repo / "out" / "rehearse.json")}


@pytest.mark.parametrize(("technique", "cells"), [
    # technique: (team-a, team-b, payments), each "verdict: who blocked it"
    ("host-path", ("held: ValidatingAdmissionPolicy tenant-no-host-path", "held: PodSecurity",
                   "held: ValidatingAdmissionPolicy gatekeeper-k8spcihostaccess")),
    ("runtime-socket", ("held: ValidatingAdmissionPolicy tenant-no-host-path", "held: PodSecurity",
                        "held: ValidatingAdmissionPolicy gatekeeper-k8spcihostaccess")),
    ("host-port", ("weakness", "held: PodSecurity", "held: ValidatingAdmissionPolicy gatekeeper-k8spcihostaccess")),
    ("privileged", ("held: ValidatingAdmissionPolicy no-privileged-containers", "held: PodSecurity",
                    "held: ValidatingAdmissionPolicy no-privileged-containers")),
    ("host-network", ("held: ValidatingAdmissionPolicy no-host-namespaces", "held: PodSecurity",
                      "held: ValidatingAdmissionPolicy no-host-namespaces")),
    # dryrun in team-b: Gatekeeper binds it with [Audit], which blocks nothing
    ("untrusted-registry", ("held: ValidatingAdmissionPolicy gatekeeper-k8strustedregistries", "weakness",
                            "held: ValidatingAdmissionPolicy gatekeeper-k8strustedregistries")),
    ("latest-tag", ("held: ValidatingAdmissionPolicy pinned-image-tags",) * 3),
    ("no-resource-limits", ("weakness",) * 3),  # Kyverno Audit: [Audit, Warn]
    ("nodeport-service", ("held: ValidatingAdmissionPolicy no-node-ports",) * 3),
    ("added-capabilities", ("weakness", "held: PodSecurity", "weakness")),
])
def test_the_matrix_shows_which_policy_holds_each_cell(baseline: dict, technique: str, cells: tuple[str, ...]) -> None:
    for namespace, expected in zip(("team-a", "team-b", "payments"), cells):
        verdict, _, blocker = expected.partition(": ")
        assert matrix(baseline)[technique, namespace] == verdict, (technique, namespace)
        if blocker:
            assert detail(baseline, technique, namespace) == f"blocked by {blocker}"


def test_out_of_scope_namespaces_are_not_rehearsed_and_what_cannot_be_is_listed(baseline: dict) -> None:
    assert {ns for _, ns in matrix(baseline)} == {"team-a", "team-b", "payments"}
    assert baseline["broken"] == [] and not any(c["verdict"] == "error" for c in baseline["cells"])
    skipped = {(s["kind"], s["name"].split()[0]): s["reason"] for s in baseline["skipped"]}
    assert set(skipped) == {("ClusterPolicy", "require-team-label"), ("ConstraintTemplate", "k8suniqueingresshost"),
                            ("K8sUniqueIngressHost", "unique-ingress-host"), ("Assign", "default-seccomp")}
    assert "validates with pattern, not CEL" in skipped["ClusterPolicy", "require-team-label"]
    assert "Rego is not rehearsed" in skipped["ConstraintTemplate", "k8suniqueingresshost"]
    assert "its ConstraintTemplate is not translated" in skipped["K8sUniqueIngressHost", "unique-ingress-host"]


@pytest.mark.parametrize(("file", "check", "opened"), [
    ("manifests/vap/tenant-host-access.yaml", VAP_HOST_PATH, "team-a"),
    ("manifests/gatekeeper/pci-host-access.yaml", GATEKEEPER_HOST_PATH, "payments"),
])
def test_removing_a_host_path_check_weakens_exactly_its_cells_fails_the_run_and_reverting_passes(
        repo: Path, baseline: dict, file: str, check: str, opened: str) -> None:
    original = (repo / file).read_text()
    edit(repo / file, check, "true")
    code, result = run(repo, "opened", "--baseline", baseline["file"])
    assert code == 1, result["stdout"] + result["stderr"]
    expected = {(technique, opened) for technique in HOST_PATH_CELLS}
    before, after = matrix(baseline), matrix(result)
    assert {cell for cell in after if after[cell] != before[cell]} == expected
    assert all(after[cell] == "weakness" for cell in expected)
    assert {(c["technique"], c["namespace"]) for c in result["broken"]} == expected
    assert [(c["technique"], c["namespace"], c["before"], c["after"]) for c in result["changes"]] == \
        [(technique, opened, "held", "weakness") for technique in HOST_PATH_CELLS]
    markdown = (repo / "opened" / "rehearse.md").read_text()
    assert markdown.index("regression") < markdown.index("| technique |") and opened in markdown

    (repo / file).write_text(original)
    code, reverted = run(repo, "reverted", "--baseline", str(repo / "opened" / "rehearse.json"))
    assert code == 0, reverted["stdout"] + reverted["stderr"]
    assert matrix(reverted) == before
    assert [(c["technique"], c["before"], c["after"]) for c in reverted["changes"]] == \
        [(technique, "weakness", "held") for technique in HOST_PATH_CELLS]  # an improvement, not a regression


def test_the_constraints_parameters_reach_the_generated_policy(repo: Path, baseline: dict) -> None:
    edit(repo / "manifests/gatekeeper/pci-host-access.yaml", "allowedHostPaths: [/var/run/hsm/]",
         "allowedHostPaths: [/]")  # the template unchanged: only its param now allows every path
    code, result = run(repo, "out", "-t", "host-path", "-t", "host-port")
    assert code == 1, result["stdout"] + result["stderr"]
    assert matrix(result) == {("host-path", "team-a"): "held", ("host-path", "team-b"): "held",
                              ("host-path", "payments"): "weakness", ("host-port", "team-a"): "weakness",
                              ("host-port", "team-b"): "held", ("host-port", "payments"): "held"}


def test_an_expectation_a_weakness_breaks_fails_the_run_without_a_baseline(repo: Path) -> None:
    edit(repo / "kirvis-expectations.yaml", "- namespaces: [team-a, payments]", "- namespaces: [team-*, payments]")
    code, result = run(repo, "out", "-t", "untrusted-registry")
    assert code == 1, result["stdout"] + result["stderr"]
    assert [(c["technique"], c["namespace"]) for c in result["broken"]] == [("untrusted-registry", "team-b")]


@pytest.mark.parametrize(("file", "old", "new", "named"), [
    ("manifests/gatekeeper/trusted-registries.yaml", "enforcementAction: dryrun", "enforcementAction: dry-run",
     "'dry-run'"),
    ("manifests/gatekeeper/pci-host-access.yaml", "- name: allowed", "- name: anyObject", "'anyObject' is reserved"),
    ("manifests/namespaces.yaml", "  name: payments\n", "  name: Payments\n", "namespaces.yaml"),
])
def test_a_manifest_error_exits_2_naming_it_and_writes_no_result(repo: Path, file: str, old: str, new: str,
                                                                 named: str) -> None:
    edit(repo / file, old, new)
    code, result = run(repo, "out")
    assert code == 2, result["stdout"] + result["stderr"]
    assert named in result["stderr"] and "cells" not in result
