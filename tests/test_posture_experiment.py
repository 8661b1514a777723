"""experiments/posture/no-wildcard-clusterrole-bound.yaml with the real `chaos` CLI: it holds on a fresh cluster,
deviates once a wildcard ClusterRole is bound to a user, and is an error when RBAC cannot be read.

A sandbox of its own (not the session's, where other tests bind roles): fresh, it holds what a new
cluster holds (upstream's bootstrap policy) and one thing more, the sandbox's own read-everything user
(`sandbox-viewer`, bound to the wildcard ClusterRole kirvis:sandbox-viewer), which the runs allow by the
experiment's `allowed_subjects` setting, as an operator would allow a known exception, in a --var-file.
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chaoskirvis.sandbox.server import Sandbox
from chaosrun import BIN, EXPERIMENTS, ChaosRun, chaos_env

EXPERIMENT = EXPERIMENTS / "posture" / "no-wildcard-clusterrole-bound.yaml"
RBAC = "rbac.authorization.k8s.io"
WILDCARD_GRANT = f"""
apiVersion: {RBAC}/v1
kind: ClusterRole
metadata: {{name: everything}}
rules: [{{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}}]
---
apiVersion: {RBAC}/v1
kind: ClusterRoleBinding
metadata: {{name: everything-to-mallory}}
roleRef: {{apiGroup: {RBAC}, kind: ClusterRole, name: everything}}
subjects: [{{kind: User, name: mallory, apiGroup: {RBAC}}}]
"""


@pytest.fixture
def fresh(tmp_path) -> Iterator[tuple[Sandbox, Path]]:
    with Sandbox() as sandbox:
        yield sandbox, sandbox.write_kubeconfig(tmp_path / "fresh.kubeconfig")


def run_posture(workdir: Path, kubeconfig: Path, allowed_subjects: list[str],
                experiment: Path = EXPERIMENT) -> ChaosRun:
    """`chaos run` of the experiment with `allowed_subjects` given in a --var-file."""
    workdir.mkdir(exist_ok=True)
    var_file = workdir / "allowed.yaml"
    var_file.write_text(yaml.safe_dump({"configuration": {"allowed_subjects": allowed_subjects}}))
    journal = workdir / "journal.json"
    done = subprocess.run([str(BIN / "chaos"), "--log-file", str(workdir / "chaos.log"), "run", str(experiment),
                           "--journal-path", str(journal), "--var-file", str(var_file)],
                          cwd=workdir, env=chaos_env(kubeconfig), capture_output=True, text=True, timeout=120)
    return ChaosRun(done.returncode, json.loads(journal.read_text()), done.stdout + done.stderr)


VIEWER = ["User:sandbox-viewer"]


def hypothesis_output(journal: dict) -> dict:
    (probe,) = journal["steady_states"]["after"]["probes"]
    return probe["output"]


def test_the_experiment_holds_on_a_fresh_cluster_and_deviates_after_a_wildcard_binding(fresh, tmp_path):
    sandbox, kubeconfig = fresh

    held = run_posture(tmp_path / "held", kubeconfig, VIEWER)
    nothing_allowed = run_posture(tmp_path / "nothing-allowed", kubeconfig, [])
    sandbox.apply(WILDCARD_GRANT)
    weak = run_posture(tmp_path / "open", kubeconfig, VIEWER)

    assert (held.exit_code, held.journal["status"], held.journal["deviated"]) == (0, "completed", False), held.output
    assert hypothesis_output(held.journal)["posture"] == "held"
    assert hypothesis_output(held.journal)["findings"] == []
    assert held.journal["chaoskirvis"]["verdict"]["result"] == "held"
    assert held.journal["chaoskirvis"]["verdict"]["reason"] == "1 posture check(s) held"
    allowed = hypothesis_output(held.journal)["allowed"]
    assert {(f["subject"]["name"], f["role"]["name"], f["allowed_as"]) for f in allowed} == {
        ("system:masters", "cluster-admin", "system subject"),
        ("sandbox-viewer", "kirvis:sandbox-viewer", "allowed_subjects")}
    # not allowed, the sandbox's viewer is what it is: a user bound to a wildcard ClusterRole
    assert (nothing_allowed.exit_code, nothing_allowed.journal["deviated"]) == (1, True), nothing_allowed.output
    assert [f["subject"]["name"] for f in hypothesis_output(nothing_allowed.journal)["findings"]] == ["sandbox-viewer"]
    assert (weak.exit_code, weak.journal["deviated"]) == (1, True), weak.output
    output = hypothesis_output(weak.journal)
    assert output["posture"] == "violated"
    assert output["findings"] == [{
        "subject": {"kind": "User", "name": "mallory"},
        "binding": {"kind": "ClusterRoleBinding", "name": "everything-to-mallory"},
        "role": {"kind": "ClusterRole", "name": "everything"}, "scope": "cluster",
        "rule": {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        "wildcards": ["verbs", "apiGroups", "resources"]}]
    assert "User:mallory through ClusterRoleBinding everything-to-mallory" in weak.output
    assert weak.journal["chaoskirvis"]["verdict"]["result"] == "weakness"
    assert weak.journal["chaoskirvis"]["verdict"]["reason"] == (
        "posture check no-wildcard-roles-bound violated: 1 finding(s)")


def test_a_wildcard_grant_to_an_allowed_subject_holds(fresh, tmp_path):
    sandbox, kubeconfig = fresh
    sandbox.apply(WILDCARD_GRANT)

    done = run_posture(tmp_path, kubeconfig, [*VIEWER, "User:mall*"])

    assert (done.exit_code, done.journal["deviated"]) == (0, False), done.output
    assert "mallory" in [f["subject"]["name"] for f in hypothesis_output(done.journal)["allowed"]]


def test_a_runner_that_may_not_list_clusterrolebindings_is_an_error_not_a_pass(fresh, tmp_path):
    sandbox, _ = fresh
    sandbox.add_user("auditor")
    sandbox.apply(f"""
apiVersion: {RBAC}/v1
kind: ClusterRole
metadata: {{name: rbac-lister}}
rules: [{{apiGroups: [{RBAC}], resources: [roles, clusterroles, rolebindings], verbs: [list]}}]
---
apiVersion: {RBAC}/v1
kind: ClusterRoleBinding
metadata: {{name: rbac-lister}}
roleRef: {{apiGroup: {RBAC}, kind: ClusterRole, name: rbac-lister}}
subjects: [{{kind: User, name: auditor, apiGroup: {RBAC}}}]
""")

    done = run_posture(tmp_path, sandbox.write_kubeconfig(tmp_path / "auditor.kubeconfig", user="auditor"), VIEWER)

    assert (done.exit_code, done.journal["status"]) == (1, "failed"), done.output  # failed, not "deviated" only
    (probe,) = done.journal["steady_states"]["after"]["probes"]
    assert probe["status"] == "failed"
    assert "the runner may not list clusterrolebindings" in probe["exception"][-1]
    assert 'User \\"auditor\\" cannot list resource \\"clusterrolebindings\\"' in json.dumps(probe["exception"][-1])
    assert done.journal["chaoskirvis"]["verdict"]["result"] == "error"
