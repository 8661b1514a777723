"""Least privilege for the families `kirvis deploy` grants beyond the default selection, proven on the sandbox
as tests/test_deploy_least_privilege.py proves it for that one: a selection of each family is rendered and
applied, the CronJob's commands run as its ServiceAccount with the detector or node players the experiments
need, and the suite holds with no request outside the generated rules; then each rule the family brings is
removed alone and the job fails (an experiment ending `error`, and the cleanup step too where it sweeps that
kind). The run records' and kept journals' ConfigMaps rules are that test's. The families: detection (Falco's
logs in Falco's namespace, Events of every namespace, Alertmanager: nothing of Kubernetes), runtime with Events
of one namespace, posture (a ClusterRole of lists only, and no cleanup step: a selection that only reads keeps
no record), and a node fault on the control plane that restarts the API server (the mirror pod in kube-system)
judged by kube-bench."""
from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chaoskirvis.cli import main
from chaoskirvis.deploy.apply import apply_all
from chaosrun import EXPERIMENTS
from detector import Detector
from test_deploy_least_privilege import (Deployed, deploy, granted, leftovers, needs_of, rules_of, run_job,
                                         sa_requests, swept_by_job, undeploy)
from tests.node_players import KubeBench, Kubelet
from tests.node_tree import make_node_tree, nodes_attached

NODE_WORKER, NODE_CONTROL = "kirvis-worker", "kirvis-control-plane"


def selection(folder: Path, *experiments: tuple[str, dict]) -> list[Path]:
    """Copies of the shipped experiments with `changes` over their configuration (a shorter wait, where the
    detector is); an `arguments` key instead sets arguments of the activity named."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, changes in experiments:
        experiment = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())
        for activity, arguments in changes.pop("arguments", {}).items():
            found = next(a for a in experiment["method"] if a["name"] == activity)
            found["provider"]["arguments"].update(arguments)
        experiment["configuration"].update(changes)
        paths.append(folder / f"{Path(name).name}.yaml")
        paths[-1].write_text(yaml.safe_dump(experiment, sort_keys=False))
    return paths


def rule_of(manifests: list[dict], kind: str, namespace: str | None, resource: str) -> dict:
    (rule,) = [rule for m in manifests if m["kind"] == kind and m["metadata"].get("namespace") == namespace
               for rule in m["rules"] if rule["resources"] == [resource]]
    return rule


def holds_and_each_new_rule_is_needed(deployed: Deployed, scenarios, tmp_path: Path, monkeypatch, capsys,
                                      verdict: str = "HELD") -> list[str]:
    """The job's verdicts all `verdict` with nothing asked beyond the rules; then without each rule but the
    ConfigMaps' (the records and the kept journals), the job fails. The rules removed, as `resource in where`."""
    seen = len(scenarios.sandbox.requests)
    job = run_job(deployed, tmp_path / "whole", monkeypatch, capsys)
    assert (job.cleanup, job.run) == (0, 0), job.cleanup_err + job.output
    experiments = {p.name for p in (tmp_path / "whole" / "experiments").iterdir()}
    assert job.verdicts == dict.fromkeys(experiments, verdict), job.output
    needs = needs_of(sa_requests(scenarios.sandbox, seen, deployed.namespace))
    assert needs <= granted(deployed.manifests), needs - granted(deployed.manifests)
    swept = swept_by_job(deployed) if "initContainers" in job_pod(deployed) else set()  # posture: none
    removed, run_ids = [], []
    try:
        for attempt, (index, rule_index) in enumerate(rules_of(deployed.manifests)):
            role = copy.deepcopy(deployed.manifests[index])
            rule = role["rules"][rule_index]
            if rule["resources"] == ["configmaps"]:
                continue
            del role["rules"][rule_index]
            list(apply_all(deployed.api, [role]))
            try:
                with monkeypatch.context() as patched:
                    job = run_job(deployed, tmp_path / str(attempt), patched, capsys)
            finally:
                list(apply_all(deployed.api, [deployed.manifests[index]]))
            group, resource, where = rule["apiGroups"][0], rule["resources"][0], role["metadata"].get("namespace")
            what = f"{resource} in {where or 'the cluster'}"
            removed.append(what)
            run_ids += job.run_ids
            assert job.run == 2 and "ERROR" in job.verdicts.values(), f"the job still passes without {what}:\n" \
                                                                      f"{job.output}"
            denied = rf'cannot [a-z]+ resource \\?"{re.escape(resource)}\\?" in API group \\?"{re.escape(group)}\\?"'
            assert re.search(denied, job.output), f"{what}:\n{job.output}"  # the runner's own 403 (an exec's: JSON)
            if (where, group, resource) in swept:
                assert job.cleanup == 1 and f"cannot list {resource} in namespace {where} (403" in job.cleanup_err
            else:
                assert job.cleanup == 0, f"{what}: {job.cleanup_err}"
    finally:
        list(apply_all(deployed.api, deployed.manifests))
    finish_restores(deployed, scenarios, run_ids, monkeypatch, capsys)
    return removed


def finish_restores(deployed: Deployed, scenarios, run_ids: list[str], monkeypatch, capsys) -> None:
    """A run short of a permission leaves no object, at most its record (restore could not read what it meant to
    create), kept for `kirvis cleanup --run-id`: done here with the admin's rights, so that no later run's sweep
    of earlier records reads it."""
    namespaces = {m["metadata"]["namespace"] for m in deployed.manifests if m["kind"] == "Role"} - {deployed.namespace}
    left = leftovers(deployed.api, run_ids, namespaces)
    assert {plural for _, plural, _ in left} <= {"configmaps"}, left
    monkeypatch.setenv("KUBECONFIG", str(scenarios.kubeconfig))
    for run_id in {name.removeprefix("kirvis-ledger-") for _, _, name in left}:
        assert main(["cleanup", "--run-id", run_id]) == 0, capsys.readouterr()
    assert leftovers(deployed.api, run_ids, namespaces) == []


def job_pod(deployed: Deployed) -> dict:
    job = deployed.api.get(f"/apis/batch/v1/namespaces/{deployed.namespace}/cronjobs/kirvis")
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.fixture
def detector(scenarios, alertmanager, falco) -> Iterator[str]:
    """Falco (its log), a policy engine in audit mode (Events) and Falcosidekick to Alertmanager, played for each
    privileged pod and terminal shell; Alertmanager's URL."""
    with Detector(scenarios.kubeconfig, delay=0.1, alertmanager=alertmanager.url, events=True, falco_log=falco,
                  execs=lambda: scenarios.sandbox.execs):
        yield alertmanager.url


def test_detection_reads_falco_s_logs_there_and_events_everywhere_and_asks_alertmanager_nothing(
        scenarios, detector, tmp_path, monkeypatch, capsys):
    paths = selection(tmp_path / "selection", ("privileged-pod-detected-by-falco", {"within": 3}),
                      ("privileged-pod-policy-violation-event", {"within": 3}),
                      ("privileged-pod-alerted-in-alertmanager", {"within": 3, "alertmanager_url": detector}))
    deployed = deploy(scenarios, paths, tmp_path)
    try:
        assert rule_of(deployed.manifests, "ClusterRole", None, "events")["verbs"] == ["list", "watch"]
        assert rule_of(deployed.manifests, "Role", "falco", "pods")["verbs"] == ["list"]
        removed = holds_and_each_new_rule_is_needed(deployed, scenarios, tmp_path, monkeypatch, capsys)
    finally:
        undeploy(deployed)
    assert sorted(removed) == ["events in the cluster", "pods in falco", "pods in team-privileged",
                               "pods/log in falco"]


def test_runtime_execs_in_its_own_pod_and_events_of_the_namespace_named_are_read_there(
        scenarios, detector, tmp_path, monkeypatch, capsys):
    paths = selection(tmp_path / "selection", ("terminal-shell-detected-by-falco", {"within": 3}),
                      ("privileged-pod-policy-violation-event",
                       {"within": 3, "arguments": {"policy-violation-event": {"namespace": "${namespace}"}}}))
    deployed = deploy(scenarios, paths, tmp_path)
    try:
        assert "ClusterRole" not in {m["kind"] for m in deployed.manifests}
        removed = holds_and_each_new_rule_is_needed(deployed, scenarios, tmp_path, monkeypatch, capsys)
    finally:
        undeploy(deployed)
    assert sorted(removed) == ["events in team-privileged", "pods in falco", "pods in team-privileged",
                               "pods/exec in team-privileged", "pods/log in falco"]


def test_posture_lists_cluster_wide_and_nothing_else(scenarios, tmp_path, monkeypatch, capsys):
    """The sandbox's viewer holds a wildcard ClusterRole and team-privileged enforces nothing: weaknesses, as
    tests/test_permissions.py plays them."""
    paths = selection(tmp_path / "selection", ("posture/no-wildcard-clusterrole-bound", {"kirvis_expect": "weakness"}),
                      ("posture/namespaces-enforce-pod-security", {"kirvis_expect": "weakness"}))
    deployed = deploy(scenarios, paths, tmp_path)
    try:
        (cluster_role,) = [m for m in deployed.manifests if m["kind"] == "ClusterRole"]
        assert {verb for rule in cluster_role["rules"] for verb in rule["verbs"]} == {"list"}
        roles = [m for m in deployed.manifests if m["kind"] == "Role"]
        assert [m["metadata"]["namespace"] for m in roles] == [deployed.namespace]  # the kept journals' only
        assert "initContainers" not in job_pod(deployed)
        removed = holds_and_each_new_rule_is_needed(deployed, scenarios, tmp_path, monkeypatch, capsys,
                                                    verdict="WEAKNESS (EXPECTED)")
    finally:
        undeploy(deployed)
    assert sorted(removed) == [f"{plural} in the cluster" for plural in (
        "clusterrolebindings", "clusterroles", "namespaces", "rolebindings", "roles")]


@pytest.fixture
def nodes(scenarios, core, api, tmp_path) -> Iterator[None]:
    """Both nodes opted in, with kubeadm trees (as tests/test_nodes_experiments.py), kube-bench and the control
    plane's kubelet played."""
    roots = {node: make_node_tree(tmp_path / "nodes" / node) for node in (NODE_WORKER, NODE_CONTROL)}
    with nodes_attached(scenarios.sandbox, core, roots):
        bench = KubeBench(api, scenarios.sandbox, "default", roots[NODE_CONTROL], roots[NODE_WORKER])
        kubelet = Kubelet(core, roots[NODE_CONTROL], "kube-apiserver", NODE_CONTROL)
        try:
            yield
        finally:
            bench.close()
            kubelet.close()


def test_a_node_fault_judged_by_kube_bench(scenarios, nodes, tmp_path, monkeypatch, capsys):
    paths = selection(tmp_path / "selection", ("nodes/apiserver-profiling-detected-by-kube-bench", {"within": 5}))
    deployed = deploy(scenarios, paths, tmp_path)
    try:
        assert rule_of(deployed.manifests, "ClusterRole", None, "nodes")["resourceNames"] == [NODE_CONTROL]
        assert rule_of(deployed.manifests, "Role", "kube-system", "pods") == {
            "apiGroups": [""], "resources": ["pods"], "resourceNames": [f"kube-apiserver-{NODE_CONTROL}"],
            "verbs": ["get"]}
        removed = holds_and_each_new_rule_is_needed(deployed, scenarios, tmp_path, monkeypatch, capsys)
    finally:
        undeploy(deployed)
    assert sorted(removed) == ["jobs in default", "nodes in the cluster", "pods in default", "pods in kube-system",
                               "pods/exec in default", "pods/log in default"]
