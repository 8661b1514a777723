"""Guardrail experiments (experiments/guardrails/), run with the real `chaos` CLI against the sandbox.

Each holds where the team has least privilege and the Pod Security labels are guarded by a
ValidatingAdmissionPolicy (scenarios/guardrails-team-guarded.yaml, gr-team) and shows a weakness where the team's
workload identity was over-granted and nothing guards the labels (scenarios/guardrails-team-open.yaml,
gr-granted). There the change is really made (mode change) and the rollback puts the guardrail back exactly:
the stored object is compared before and after, ignoring only what the API server sets on every write
(resourceVersion, managedFields, generation; a deleted object recreated also gets a new uid and
creationTimestamp: docs/guardrails.md "Restore"). Kubernetes' answers are the reference: RBAC's 403 names the
requesting user (`User "system:serviceaccount:NS:NAME" cannot patch resource ...`, the authorizer's
`forbiddenMessage` in staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go), a
ValidatingAdmissionPolicy's denial is ``ValidatingAdmissionPolicy 'POLICY' with binding 'BINDING' denied
request: MESSAGE`` (staging/src/k8s.io/apiserver/pkg/admission/plugin/policy/validating/dispatcher.go).
"""
from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from chaoskirvis.sandbox.server import Sandbox
from chaoskirvis.techniques import CATALOG
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos
from identities import limited_user

ROOT = Path(__file__).resolve().parents[1]
GUARDRAIL_EXPERIMENTS = sorted((EXPERIMENTS / "guardrails").glob("*.yaml"))
TEAM_EXPERIMENTS = [p for p in GUARDRAIL_EXPERIMENTS if p.stem.startswith("team-cannot-")]
POLICY_EXPERIMENT = EXPERIMENTS / "guardrails" / "pod-security-labels-guarded-by-policy.yaml"
OPEN = {"namespace": "gr-granted"}
# Set by the API server on every write (and, for an object created again, uid and creationTimestamp).
SERVER_SET = ("resourceVersion", "managedFields", "generation")
RECREATED = ("uid", "creationTimestamp")
PATHS = {
    "namespace": "/api/v1/namespaces/{namespace}",
    "networkpolicy": "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}",
    "validatingadmissionpolicybinding": "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/{name}",
    "validatingwebhookconfiguration":
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[Sandbox, Path]]:
    """A sandbox of its own with both guardrail team scenarios applied (their namespaces differ)."""
    with Sandbox() as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path_factory.mktemp("guardrails") / "kubeconfig")
        for name in ("guardrails-team-guarded.yaml", "guardrails-team-open.yaml"):
            sandbox.apply(ROOT / "scenarios" / name)
        yield sandbox, kubeconfig


def targets_of(path: Path, namespace: str) -> list[tuple[str, str]]:
    """(technique, API path) of each guardrail the experiment's actions change, for `namespace`."""
    found = []
    for activity in yaml.safe_load(path.read_text())["method"]:
        arguments = activity["provider"]["arguments"]
        name = arguments.get("name", "").replace("${namespace}", namespace)
        target = CATALOG[arguments["technique"]].target
        found.append((arguments["technique"], PATHS[target].format(namespace=namespace, name=name)))
    return found


def stored(kubeconfig: Path, path: str) -> dict[str, Any] | None:
    """The object at `path` as the API server stores it (None: not there)."""
    api = config.new_client_from_config(str(kubeconfig))
    response = api.call_api(*api.param_serialize("GET", path, auth_settings=["BearerToken"]))
    response.read()
    if response.status == 404:
        return None
    assert response.status == 200, (path, response.status, response.data)
    return json.loads(response.data)


def comparable(obj: dict[str, Any] | None, recreated: bool = False) -> dict[str, Any] | None:
    if obj is None:
        return None
    obj = copy.deepcopy(obj)
    for field in SERVER_SET + (RECREATED if recreated else ()):
        obj["metadata"].pop(field, None)
    return obj


def leftovers(kubeconfig: Path, run_id: str) -> list[str]:
    """The run's records (ConfigMaps labelled with its id) and objects still carrying its mark."""
    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    found = [f"configmap {c.metadata.namespace}/{c.metadata.name}" for c in
             core.list_config_map_for_all_namespaces(label_selector=f"chaoskirvis.io/run-id={run_id}").items]
    for path in PATHS.values():
        for namespace in ("gr-team", "gr-granted"):
            for name in (namespace, "default-deny", f"{namespace}-deny-host-network", f"{namespace}-policy-engine"):
                obj = stored(kubeconfig, path.format(namespace=namespace, name=name)) or {"metadata": {}}
                if run_id in json.dumps(obj["metadata"].get("annotations") or {}):
                    found.append(path.format(namespace=namespace, name=name))
    return found


def attempts_of(run) -> list[dict[str, Any]]:
    return [r["output"] for r in run.journal["run"] if r["activity"]["type"] == "action"
            and isinstance(r.get("output"), dict)]


def test_every_guardrail_technique_has_an_experiment_and_every_experiment_validates():
    used = {technique for path in GUARDRAIL_EXPERIMENTS for technique, _ in targets_of(path, "gr-team")}
    assert used == {t.id for t in CATALOG.values() if t.family == "guardrail"}
    for path in GUARDRAIL_EXPERIMENTS:
        experiment = yaml.safe_load(path.read_text())
        techniques = {a["provider"]["arguments"]["technique"] for a in experiment["method"]}
        assert {f"technique:{t}" for t in techniques} <= set(experiment["tags"]), path.name
        assert {f"attack:{a}" for t in techniques for a in CATALOG[t].attack} <= set(experiment["tags"]), path.name
        assert experiment["rollbacks"][-1]["provider"]["func"] == "restore_run"
        assert experiment["runtime"] == {"rollbacks": {"strategy": "always"}}
        assert experiment["configuration"]["kirvis_experiment"] == path.stem
        done = subprocess.run([str(BIN / "chaos"), "--no-log-file", "validate", str(path)], env=chaos_env(None),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{path.name}: {done.stdout}{done.stderr}"


@pytest.mark.parametrize("path", TEAM_EXPERIMENTS, ids=lambda p: p.stem)
def test_a_team_is_refused_by_rbac_and_an_over_granted_team_is_a_weakness_put_back_exactly(cluster, tmp_path, path):
    _, kubeconfig = cluster
    before = {ns: [stored(kubeconfig, p) for _, p in targets_of(path, ns)] for ns in ("gr-team", "gr-granted")}

    held = run_chaos(path, tmp_path, kubeconfig)
    weak = run_chaos(path, tmp_path, kubeconfig, variables=OPEN)

    assert (held.exit_code, held.journal["status"], held.journal["deviated"]) == (0, "completed", False), held.output
    (blocked,) = attempts_of(held)
    assert (blocked["outcome"], blocked["answered_by"], blocked["status"]) == ("blocked", "RBAC", 403), blocked
    assert 'User "system:serviceaccount:gr-team:app" cannot ' in blocked["message"], blocked
    assert (weak.exit_code, weak.journal["deviated"]) == (1, True), weak.output
    (allowed,) = attempts_of(weak)
    assert allowed["outcome"] == "allowed" and allowed["as"]["user"] == "system:serviceaccount:gr-granted:app"
    deletes = CATALOG[blocked["techniques"][0]].apply is None
    for namespace, run in (("gr-team", held), ("gr-granted", weak)):
        after = [stored(kubeconfig, p) for _, p in targets_of(path, namespace)]
        recreated = deletes and namespace == "gr-granted"
        assert [comparable(o, recreated) for o in after] == [comparable(o, recreated) for o in before[namespace]]
        assert leftovers(kubeconfig, run.journal["chaoskirvis"]["run_id"]) == []
    if deletes:  # really deleted, then created again from the record: a new object with the old content
        assert after[0]["metadata"]["uid"] != before["gr-granted"][0]["metadata"]["uid"]


def test_a_policy_guarding_the_pod_security_labels_refuses_the_runner_itself(cluster, tmp_path):
    """The runner may patch namespaces (RBAC allows it); the VAP refuses it in gr-team, and in gr-granted,
    where nothing guards the labels, both changes are made and the namespace is put back exactly."""
    _, kubeconfig = cluster
    before = {ns: stored(kubeconfig, f"/api/v1/namespaces/{ns}") for ns in ("gr-team", "gr-granted")}

    held = run_chaos(POLICY_EXPERIMENT, tmp_path, kubeconfig)
    weak = run_chaos(POLICY_EXPERIMENT, tmp_path, kubeconfig, variables=OPEN)

    assert (held.exit_code, held.journal["deviated"]) == (0, False), held.output
    for outcome in attempts_of(held):
        assert (outcome["outcome"], outcome["status"]) == ("blocked", 403), outcome
        assert outcome["answered_by"] == "ValidatingAdmissionPolicy gr-team-keep-pod-security", outcome
        assert ("ValidatingAdmissionPolicy 'gr-team-keep-pod-security' with binding 'gr-team-keep-pod-security' "
                "denied request: the namespace's Pod Security labels may not be changed") in outcome["message"]
    assert (weak.exit_code, weak.journal["deviated"]) == (1, True), weak.output
    assert [o["outcome"] for o in attempts_of(weak)] == ["allowed", "allowed"]
    for namespace, run in (("gr-team", held), ("gr-granted", weak)):
        after = stored(kubeconfig, f"/api/v1/namespaces/{namespace}")
        assert comparable(after) == comparable(before[namespace])
        assert after["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert leftovers(kubeconfig, run.journal["chaoskirvis"]["run_id"]) == []


@pytest.fixture(scope="module")
def runner_without_patch(cluster, tmp_path_factory) -> Path:
    """A runner that may read namespaces, impersonate and keep its record, but not patch namespaces."""
    sandbox, kubeconfig = cluster
    return limited_user(sandbox, config.new_client_from_config(str(kubeconfig)), "kirvis-runner-no-patch", [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch", "update", "get", "list",
                                                                   "delete"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}],
        tmp_path_factory.mktemp("runner") / "kubeconfig")


@pytest.fixture(scope="module")
def runner_without_impersonate(cluster, tmp_path_factory) -> Path:
    """A runner that may read and patch namespaces and keep its record, but not impersonate."""
    sandbox, kubeconfig = cluster
    return limited_user(sandbox, config.new_client_from_config(str(kubeconfig)), "kirvis-runner-no-impersonate", [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch", "update", "get", "list",
                                                                   "delete"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "patch", "update"]}],
        tmp_path_factory.mktemp("runner") / "kubeconfig")


def error_of(run) -> dict[str, Any]:
    assert run.exit_code == 1 and run.journal["status"] == "failed", run.output
    assert run.journal["chaoskirvis"]["verdict"]["result"] == "error", run.journal["chaoskirvis"]["verdict"]
    outcomes = run.journal["chaoskirvis"]["outcomes"]
    assert outcomes and {o["outcome"] for o in outcomes} == {"error"}, outcomes
    return outcomes[0]


@pytest.mark.parametrize("namespace", ["gr-team", "gr-granted"])
def test_rbac_refusing_the_runner_itself_is_an_error_never_held(cluster, runner_without_patch, tmp_path, namespace):
    """Without an identity the patch is the runner's own: RBAC's 403 naming the runner is its missing
    permission (an error), in the guarded namespace as in the open one, never a block."""
    _, kubeconfig = cluster
    before = stored(kubeconfig, f"/api/v1/namespaces/{namespace}")

    run = run_chaos(POLICY_EXPERIMENT, tmp_path, runner_without_patch, variables={"namespace": namespace})

    message = error_of(run)["message"]
    assert f'User "kirvis-runner-no-patch" cannot patch resource "namespaces"' in message, message
    assert comparable(stored(kubeconfig, f"/api/v1/namespaces/{namespace}")) == comparable(before)
    assert leftovers(kubeconfig, run.journal["chaoskirvis"]["run_id"]) == []


def test_a_runner_that_may_not_impersonate_the_team_makes_the_run_an_error(cluster, runner_without_impersonate,
                                                                           tmp_path):
    _, kubeconfig = cluster
    run = run_chaos(EXPERIMENTS / "guardrails" / "team-cannot-lower-pod-security.yaml", tmp_path,
                    runner_without_impersonate)

    message = error_of(run)["message"]
    assert 'User "kirvis-runner-no-impersonate" cannot impersonate resource "serviceaccounts"' in message, message
    assert leftovers(kubeconfig, run.journal["chaoskirvis"]["run_id"]) == []
