"""experiments/no-wildcard-clusterrole-bound.yaml with the real `chaos` CLI: it holds on a fresh cluster,
deviates once a wildcard ClusterRole is bound to a user, and is an error when RBAC cannot be read.

A sandbox of its own (not the session's, where other tests bind roles): fresh, it holds only what a new
cluster holds.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chaoskirvis.sandbox.server import Sandbox
from chaosrun import EXPERIMENTS, run_chaos
from fault_proxy import Answer, FaultProxy

EXPERIMENT = EXPERIMENTS / "no-wildcard-clusterrole-bound.yaml"
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


def hypothesis_output(journal: dict) -> dict:
    (probe,) = journal["steady_states"]["after"]["probes"]
    return probe["output"]


def test_the_experiment_holds_on_a_fresh_cluster_and_deviates_after_a_wildcard_binding(fresh, tmp_path):
    sandbox, kubeconfig = fresh
    (tmp_path / "held").mkdir()
    (tmp_path / "open").mkdir()

    held = run_chaos(EXPERIMENT, tmp_path / "held", kubeconfig)
    sandbox.apply(WILDCARD_GRANT)
    weak = run_chaos(EXPERIMENT, tmp_path / "open", kubeconfig)

    assert (held.exit_code, held.journal["status"], held.journal["deviated"]) == (0, "completed", False), held.output
    assert hypothesis_output(held.journal)["posture"] == "held"
    assert hypothesis_output(held.journal)["findings"] == []
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


def test_a_wildcard_grant_to_an_allowed_subject_holds(fresh, tmp_path):
    sandbox, kubeconfig = fresh
    sandbox.apply(WILDCARD_GRANT)
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    experiment["configuration"]["allowed_subjects"] = ["User:mallory"]
    allowing = tmp_path / "allowing.yaml"
    allowing.write_text(yaml.safe_dump(experiment))

    done = run_chaos(allowing, tmp_path, kubeconfig)

    assert (done.exit_code, done.journal["deviated"]) == (0, False), done.output
    assert [f["subject"]["name"] for f in hypothesis_output(done.journal)["allowed"]] == ["mallory"]


def test_a_runner_that_may_not_list_clusterrolebindings_is_an_error_not_a_pass(fresh, tmp_path):
    sandbox, _ = fresh
    message = (f'clusterrolebindings.{RBAC} is forbidden: User "auditor" cannot list resource "clusterrolebindings" '
               f'in API group "{RBAC}" at the cluster scope')

    def refuse(method: str, path: str, query: dict[str, str]) -> Answer | None:
        if path == f"/apis/{RBAC}/v1/clusterrolebindings":
            return Answer(403, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": message, "reason": "Forbidden", "code": 403})
        return None

    with FaultProxy(sandbox, refuse) as proxy:
        done = run_chaos(EXPERIMENT, tmp_path, proxy.write_kubeconfig(tmp_path / "proxied.kubeconfig"))

    assert (done.exit_code, done.journal["status"]) == (1, "failed"), done.output  # failed, not "deviated" only
    (probe,) = done.journal["steady_states"]["after"]["probes"]
    assert probe["status"] == "failed"
    assert "the runner may not list clusterrolebindings" in probe["exception"][-1]
    assert done.journal["chaoskirvis"]["verdict"]["result"] == "error"
