"""The node experiments (experiments/nodes/), run with the real `chaos` CLI against the sandbox, each node's
filesystem a kubeadm-shaped tree (`Sandbox.attach_node_root`). The test plays what is not in the sandbox
(`node_players`): kube-bench, judging the injected check from the tree, and the kubelet's mirror pod.

Each experiment holds when kube-bench reports the injected check FAIL after the change and PASS before and
after the restore, and is a weakness (exit 1, deviated) when kube-bench reports PASS after the change (a
benchmark that does not see it). Either way the file is back as it was (mode, owner, sha256) and the agent
pod is gone.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from chaoskirvis.evidence.journal import recorded_outcomes
from chaoskirvis.evidence.verdict import verdict_of
from chaoskirvis.techniques import CATALOG
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos
from tests.node_players import KubeBench, Kubelet
from tests.node_tree import make_node_tree, nodes_attached

NODE_EXPERIMENTS = sorted((EXPERIMENTS / "nodes").glob("*.yaml"))
WORKER, CONTROL = "kirvis-worker", "kirvis-control-plane"
UNREGISTERED = "kubelet-anonymous-auth" not in CATALOG


def plan(path: Path) -> tuple[str, str, str, str]:
    """(technique, node, CIS check, file on the node) of a node experiment."""
    experiment = yaml.safe_load(path.read_text())
    inject = next(a for a in experiment["method"] if a["provider"]["func"] == "inject_node_fault")
    detect = next(a for a in experiment["method"] if a["provider"]["func"] == "kube_bench_detects")
    technique = inject["provider"]["arguments"]["technique"]
    from chaoskirvis.techniques.nodes import node_technique
    return (technique, experiment["configuration"]["node"], detect["provider"]["arguments"]["checks"][0],
            node_technique(technique).node_change.path)


def seen(root: Path, path: str) -> tuple[int, int, int, str]:
    file = root / path.lstrip("/")
    st = os.stat(file)
    return st.st_mode & 0o7777, st.st_uid, st.st_gid, hashlib.sha256(file.read_bytes()).hexdigest()


@pytest.fixture
def nodes(sandbox, core, tmp_path):
    roots = {node: make_node_tree(tmp_path / node) for node in (WORKER, CONTROL)}
    with nodes_attached(sandbox.sandbox, core, roots):
        yield roots


def test_there_are_node_experiments_for_the_main_items():
    assert {plan(p)[0] for p in NODE_EXPERIMENTS} == {"apiserver-manifest-mode", "kubelet-anonymous-auth",
                                                      "apiserver-profiling"}
    for path in NODE_EXPERIMENTS:
        experiment = yaml.safe_load(path.read_text())
        technique, node, check, _ = plan(path)
        from chaoskirvis.techniques.nodes import node_technique
        unit = node_technique(technique)
        assert unit.cis.id == check and experiment["configuration"]["allow_node_faults"] is True
        assert (experiment["configuration"].get("allow_control_plane") is True) == unit.node_change.control_plane
        assert {f"technique:{technique}", *(f"attack:{a}" for a in unit.attack)} <= set(experiment["tags"])
        assert experiment["configuration"]["kirvis_experiment"] == path.stem
        assert experiment["rollbacks"][-1]["provider"]["func"] == "restore_run"
        assert experiment["runtime"] == {"rollbacks": {"strategy": "always"}}


@pytest.mark.xfail(UNREGISTERED, strict=True, reason="the node techniques are not yet in chaoskirvis.techniques."
                                                     "CATALOG, which validation looks technique ids up in")
@pytest.mark.parametrize("path", NODE_EXPERIMENTS, ids=lambda p: p.stem)
def test_node_experiment_validates(path):
    import subprocess
    done = subprocess.run([str(BIN / "chaos"), "--no-log-file", "validate", str(path)], env=chaos_env(None),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("blind", [False, True], ids=["fail-reported-held", "pass-reported-weakness"])
@pytest.mark.parametrize("path", NODE_EXPERIMENTS, ids=lambda p: p.stem)
def test_node_experiment_holds_on_fail_and_is_a_weakness_on_pass(api, core, sandbox, nodes, tmp_path, path, blind):
    technique, node, check, file = plan(path)
    root = nodes[node]
    before = seen(root, file)
    bench = KubeBench(api, sandbox.sandbox, "default", nodes[CONTROL], nodes[WORKER], blind=blind)
    kubelet = Kubelet(core, nodes[CONTROL], "kube-apiserver", CONTROL) if technique == "apiserver-profiling" else None
    try:
        done = run_chaos(path, tmp_path, sandbox.kubeconfig, variables={"within:int": "10"}, timeout=180,
                         no_validation=UNREGISTERED)
    finally:
        bench.close()
        if kubelet:
            kubelet.close()
    # kube-bench ran before the change, after it, and after the restore
    expected = ["PASS", "PASS" if blind else "FAIL", "PASS"]
    assert [answer[check] for answer in bench.answered] == expected, done.output
    if blind:
        assert (done.exit_code, done.journal["deviated"]) == (1, True), done.output
    else:
        assert (done.exit_code, done.journal["status"], done.journal["deviated"]) == (0, "completed", False), \
            done.output
    (injected,) = done.outputs(next(a["name"] for a in yaml.safe_load(path.read_text())["method"]
                                    if a["provider"]["func"] == "inject_node_fault"))
    assert injected["outcome"] == "allowed" and injected["path"] == file
    assert seen(root, file) == before
    agents = [p.metadata.name for p in core.list_namespaced_pod("default").items if "-node-agent-" in p.metadata.name
              and not p.metadata.deletion_timestamp]
    assert agents == []


@pytest.mark.parametrize("cause", ["node-not-opted-in", "kube-bench-cannot-run"])
def test_a_node_experiment_that_cannot_be_carried_out_is_an_error(api, core, sandbox, nodes, tmp_path, cause):
    """Never held and never a weakness: a node without the opt-in label refuses the fault (nothing changed), and a
    benchmark whose Job never finishes answers nothing."""
    path = EXPERIMENTS / "nodes" / "kubelet-anonymous-auth-detected-by-kube-bench.yaml"
    technique, node, check, file = plan(path)
    before = seen(nodes[node], file)
    if cause == "node-not-opted-in":
        core.patch_node(node, {"metadata": {"labels": {"chaoskirvis.io/node-faults": None}}})
    bench = KubeBench(api, sandbox.sandbox, "default", nodes[CONTROL], nodes[WORKER]) \
        if cause == "node-not-opted-in" else None
    try:
        done = run_chaos(path, tmp_path, sandbox.kubeconfig, variables={"within:int": "3"}, timeout=180,
                         no_validation=UNREGISTERED)
    finally:
        if bench:
            bench.close()
    verdict = verdict_of(done.journal, recorded_outcomes(done.journal))  # as kirvis report reads the journal
    assert verdict.result == "error", (verdict, done.output)
    assert (done.exit_code, done.journal["status"]) == (1, "failed"), done.output
    assert ("has not opted in" if cause == "node-not-opted-in" else "did not finish within 3 s") in verdict.reason
    assert seen(nodes[node], file) == before
    left = [p.metadata.name for p in core.list_namespaced_pod("default", label_selector="chaoskirvis.io/run-id").items
            if not p.metadata.deletion_timestamp]
    assert left == [] and client.BatchV1Api(api).list_namespaced_job("default").items == []
