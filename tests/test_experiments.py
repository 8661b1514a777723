"""Every shipped experiment holds where its control is, deviates where it is not, and leaves nothing."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from chaoskirvis.techniques import CATALOG
from chaosrun import EXPERIMENTS, run_chaos

EXPERIMENT_FILES = sorted(EXPERIMENTS.glob("*.yaml"))
BLOCKING = [p for p in EXPERIMENT_FILES if "injections_blocked" in p.read_text()]
NO_CONTROLS = "team-privileged"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def techniques_of(experiment: dict) -> set[str]:
    used = set()
    for activity in experiment["method"]:
        arguments = activity["provider"].get("arguments", {})
        used.update(arguments.get("techniques", []))
        if "technique" in arguments:
            used.add(arguments["technique"])
    return used


def run_objects(kubeconfig: Path, run_ids: set[str]) -> list[str]:
    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    apps = client.AppsV1Api(core.api_client)
    batch = client.BatchV1Api(core.api_client)
    networking = client.NetworkingV1Api(core.api_client)
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    found = []
    for run_id in run_ids:
        selector = f"chaoskirvis.io/run-id={run_id}"
        for lister in (core.list_pod_for_all_namespaces, core.list_config_map_for_all_namespaces,
                       core.list_service_for_all_namespaces, apps.list_deployment_for_all_namespaces,
                       batch.list_cron_job_for_all_namespaces, networking.list_network_policy_for_all_namespaces,
                       rbac.list_cluster_role_binding):
            found += [f"{o.metadata.namespace}/{o.metadata.name}" for o in lister(label_selector=selector).items]
    return found


def test_there_are_at_least_twelve_experiments():
    assert len(EXPERIMENT_FILES) >= 12


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.stem)
def test_experiment_is_tagged_with_the_attack_ids_of_its_techniques(path):
    experiment = load(path)
    used = techniques_of(experiment)
    assert used, "an experiment must introduce at least one technique"
    tags = set(experiment["tags"])
    for technique in used:
        assert f"technique:{technique}" in tags
        assert {f"attack:{a}" for a in CATALOG[technique].attack} <= tags
    assert any(r["provider"]["func"] == "restore_run" for r in experiment["rollbacks"])


@pytest.mark.parametrize("path", BLOCKING, ids=lambda p: p.stem)
def test_experiment_holds_with_its_control_and_deviates_without(scenarios, tmp_path, path):
    guarded = run_chaos(path, tmp_path, scenarios.kubeconfig)
    open_run = run_chaos(path, tmp_path, scenarios.kubeconfig, variables={"namespace": NO_CONTROLS})

    assert (guarded.exit_code, guarded.journal["deviated"]) == (0, False), guarded.output
    assert (open_run.exit_code, open_run.journal["deviated"]) == (1, True), open_run.output
    outcomes = [o for r in (guarded, open_run) for o in r.journal["run"] if isinstance(o.get("output"), dict)]
    run_ids = {o["output"]["run_id"] for o in outcomes if "run_id" in o["output"]}
    assert len(run_ids) == 2
    assert run_objects(scenarios.kubeconfig, run_ids) == []
