"""The first experiment end to end: the real `chaos` CLI against the sandbox."""
from __future__ import annotations

import pytest
from kubernetes import client, config

from chaosrun import EXPERIMENTS, run_chaos

EXPERIMENT = EXPERIMENTS / "privileged-pod-denied.yaml"


def leftovers(kubeconfig, run_id: str) -> list[str]:
    api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    selector = f"chaoskirvis.io/run-id={run_id}"
    pods = api.list_pod_for_all_namespaces(label_selector=selector).items
    maps = api.list_config_map_for_all_namespaces(label_selector=selector).items
    return [f"{o.kind or type(o).__name__} {o.metadata.namespace}/{o.metadata.name}" for o in pods + maps]


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_holds_where_pod_security_denies_privileged_pods(sandbox, make_namespace, tmp_path, level):
    namespace = make_namespace(enforce=level)
    result = run_chaos(EXPERIMENT, tmp_path, sandbox.kubeconfig, variables={"namespace": namespace})

    assert result.exit_code == 0, result.output
    assert result.journal["status"] == "completed"
    assert result.journal["deviated"] is False
    assert result.journal["steady_states"]["after"]["steady_state_met"] is True
    injected = result.outputs("introduce-privileged-pod")[0]
    assert injected["outcome"] == "blocked" and injected["blocked"] is True
    assert injected["answered_by"] == "PodSecurity"
    assert injected["status"] == 403
    assert f'violates PodSecurity "{level}:latest": privileged (container "kirvis"' in injected["message"]
    assert injected["latency_ms"] > 0
    assert injected["techniques"] == ["privileged"] and injected["attack"] == ["T1610", "T1611"]
    dry_run = result.outputs("ask-admission-by-dry-run")[0]
    assert dry_run["outcome"] == "blocked" and dry_run["mode"] == "dry-run"
    assert result.journal["rollbacks"][0]["status"] == "succeeded"
    assert leftovers(sandbox.kubeconfig, injected["run_id"]) == []


def test_deviates_where_privileged_pods_are_admitted(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(enforce="privileged")
    result = run_chaos(EXPERIMENT, tmp_path, sandbox.kubeconfig, variables={"namespace": namespace})

    assert result.exit_code == 1, result.output
    assert result.journal["deviated"] is True
    assert result.journal["steady_states"]["before"]["steady_state_met"] is True
    assert result.journal["steady_states"]["after"]["steady_state_met"] is False
    injected = result.outputs("introduce-privileged-pod")[0]
    assert injected["outcome"] == "allowed" and injected["answered_by"] is None
    rollback = result.journal["rollbacks"][0]
    assert rollback["status"] == "succeeded"
    assert any(injected["name"] in removed for removed in rollback["output"]["removed"])
    assert leftovers(sandbox.kubeconfig, injected["run_id"]) == []


def test_deviates_where_no_pod_security_label_is_set(sandbox, make_namespace, tmp_path):
    namespace = make_namespace()
    result = run_chaos(EXPERIMENT, tmp_path, sandbox.kubeconfig, variables={"namespace": namespace})

    assert result.exit_code == 1, result.output
    assert result.journal["deviated"] is True
    assert leftovers(sandbox.kubeconfig, result.outputs("introduce-privileged-pod")[0]["run_id"]) == []


def test_warn_mode_is_evidence_not_a_block(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(warn="baseline")
    result = run_chaos(EXPERIMENT, tmp_path, sandbox.kubeconfig, variables={"namespace": namespace})

    assert result.exit_code == 1, result.output
    injected = result.outputs("introduce-privileged-pod")[0]
    assert injected["outcome"] == "allowed"
    assert any('would violate PodSecurity "baseline:latest": privileged' in w for w in injected["warnings"])


def test_run_id_from_environment_names_objects_and_user_agent(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(enforce="privileged")
    result = run_chaos(
        EXPERIMENT, tmp_path, sandbox.kubeconfig, variables={"namespace": namespace}, KIRVIS_RUN_ID="ci-run-42",
    )

    injected = result.outputs("introduce-privileged-pod")[0]
    assert injected["run_id"] == "ci-run-42"
    assert injected["name"].startswith("kirvis-ci-run-42-privileged-")
    agents = {r.user_agent for r in sandbox.sandbox.requests if namespace in r.path and r.method == "POST"}
    assert agents and all("(run ci-run-42)" in agent and agent.startswith("chaoskirvis/") for agent in agents)

