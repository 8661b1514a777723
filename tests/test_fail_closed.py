"""The fail-closed pair (experiments/fail-closed/), run with the real `chaos` CLI against the sandbox.

A policy engine (a Deployment and its Service, tests/webhook_server.py behind it through the sandbox's service
map) denies privileged pods through a ValidatingWebhookConfiguration naming the Service. chaostoolkit-kubernetes
scales it to zero or kills its pods; then a privileged pod is tried in a namespace that enforces no Pod
Security. kube-apiserver's webhook dispatcher, when the call fails (no ready endpoint: the ClusterIP resolver
dials the Service and kube-proxy rejects), refuses the request under `failurePolicy: Fail` with 500
``Internal error occurred: failed calling webhook "NAME": ...`` (staging/src/k8s.io/apiserver/pkg/admission/
plugin/webhook/validating/dispatcher.go, `ErrCallingWebhook` turned into `apierrors.NewInternalError`) and
skips the webhook under `Ignore`. So scenarios/fail-closed.yaml holds and scenarios/fail-open.yaml is a
weakness; after either run nothing of it is left and the engine is back at its replica count with ready
endpoints (which also shows the engine's namespace is left out of its own webhook: its replacement pods were
admitted while it was down).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from chaoskirvis.sandbox.server import Sandbox
from chaosrun import EXPERIMENTS, run_chaos
from identities import limited_user
from webhook_server import WebhookServer

ROOT = Path(__file__).resolve().parents[1]
FAIL_CLOSED = sorted((EXPERIMENTS / "fail-closed").glob("*.yaml"))
SCALED = EXPERIMENTS / "fail-closed" / "privileged-pod-denied-while-policy-engine-scaled-to-zero.yaml"
SIDES = ("closed", "open")
OPEN = {"namespace": "fail-open-target", "engine_namespace": "policy-engine-open"}
# How long a replacement engine pod takes to become ready: the outage window of a pod kill. Longer than the
# client's retries of a 500 (chaoskirvis.client.RetryPolicy: 5 attempts, waits doubling from 0.2 s, about 3 s at
# most), which retry the failed-closed answer too: a retry after the engine is back gets the engine's own denial.
START_SECONDS = 5.0


@dataclass
class Cluster:
    sandbox: Sandbox
    kubeconfig: Path
    hook: WebhookServer
    core: client.CoreV1Api
    apps: client.AppsV1Api
    admission: client.AdmissionregistrationV1Api


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """Both fail-closed scenarios applied, each engine's Service mapped to one test webhook, whose CA is
    injected into the webhook configurations (cert-manager's cainjector on a real cluster)."""
    names = [f"policy-engine.policy-engine-{side}.svc" for side in SIDES]
    with WebhookServer(dns_names=names) as hook, Sandbox(webhook_services={
            (f"policy-engine-{side}", "policy-engine"): hook.address for side in SIDES}) as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path_factory.mktemp("fail-closed") / "kubeconfig")
        api = config.new_client_from_config(str(kubeconfig))
        cluster = Cluster(sandbox, kubeconfig, hook, client.CoreV1Api(api), client.AppsV1Api(api),
                          client.AdmissionregistrationV1Api(api))
        for side in SIDES:
            sandbox.apply(ROOT / "scenarios" / f"fail-{side}.yaml")
            configuration = cluster.admission.read_validating_webhook_configuration(f"policy-engine-{side}")
            configuration.webhooks[0].client_config.ca_bundle = hook.ca_bundle
            cluster.admission.replace_validating_webhook_configuration(f"policy-engine-{side}", configuration)
            wait_for(lambda side=side: engine_ready(cluster, side), 5)
        sandbox._store.pod_start_seconds = START_SECONDS  # noqa: SLF001 (Sandbox(pod_start_seconds=...) is requested)
        yield cluster


def engine_ready(cluster: Cluster, side: str) -> bool:
    """The engine's Deployment at its 2 replicas, all ready, and its Service with a ready address."""
    deployment = cluster.apps.read_namespaced_deployment("policy-engine", f"policy-engine-{side}")
    endpoints = cluster.core.read_namespaced_endpoints("policy-engine", f"policy-engine-{side}")
    ready = [a for s in endpoints.subsets or [] for a in s.addresses or []]
    return (deployment.spec.replicas, deployment.status.ready_replicas, len(ready)) == (2, 2, 2)


def privileged_pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [
        {"name": "c", "image": "registry.k8s.io/pause:3.10", "securityContext": {"privileged": True}}]}}


def run_pods(cluster: Cluster, run_id: str) -> list[str]:
    return [f"{p.metadata.namespace}/{p.metadata.name}" for p in cluster.core.list_pod_for_all_namespaces(
        label_selector=f"chaoskirvis.io/run-id={run_id}").items]


def attempt_of(run) -> dict[str, Any]:
    (outcome,) = run.outputs("introduce-privileged-pod")
    return outcome


@pytest.mark.parametrize("side", SIDES)
def test_with_the_engine_up_it_is_the_engine_that_denies_a_privileged_pod(cluster, side):
    """The baseline both sides share: the only control in the target namespace is the engine."""
    with pytest.raises(client.ApiException) as denied:
        cluster.core.create_namespaced_pod(f"fail-{side}-target", privileged_pod("baseline"))
    assert denied.value.status == 403
    assert (f'admission webhook "validate.policy-engine-{side}.chaoskirvis.io" denied the request: privileged '
            "containers are not allowed: c") == json.loads(denied.value.body)["message"]


@pytest.mark.parametrize("path", FAIL_CLOSED, ids=lambda p: p.stem)
def test_holds_when_the_webhook_fails_closed_and_is_a_weakness_when_it_fails_open(cluster, tmp_path, path):
    webhooks = {side: cluster.admission.read_validating_webhook_configuration(f"policy-engine-{side}").to_dict()
                for side in SIDES}

    held = run_chaos(path, tmp_path, cluster.kubeconfig)
    wait_for(lambda: engine_ready(cluster, "closed"), START_SECONDS + 3)
    weak = run_chaos(path, tmp_path, cluster.kubeconfig, variables=OPEN)
    wait_for(lambda: engine_ready(cluster, "open"), START_SECONDS + 3)

    assert (held.exit_code, held.journal["status"], held.journal["deviated"]) == (0, "completed", False), held.output
    blocked = attempt_of(held)
    assert (blocked["outcome"], blocked["status"]) == ("blocked", 500), blocked
    assert blocked["answered_by"] == "admission webhook validate.policy-engine-closed.chaoskirvis.io (failed closed)"
    assert ('Internal error occurred: failed calling webhook "validate.policy-engine-closed.chaoskirvis.io": '
            "failed to call webhook") in blocked["message"], blocked
    assert (weak.exit_code, weak.journal["deviated"]) == (1, True), weak.output
    assert attempt_of(weak)["outcome"] == "allowed"
    for run in (held, weak):
        assert [r["status"] for r in run.journal["rollbacks"]] == ["succeeded", "succeeded"], run.output
        assert run_pods(cluster, run.journal["chaoskirvis"]["run_id"]) == []
    for side in SIDES:  # the guardrail itself untouched; the engine denies again
        current = cluster.admission.read_validating_webhook_configuration(f"policy-engine-{side}").to_dict()
        for obj in (current, webhooks[side]):
            for field in ("resource_version", "managed_fields", "generation"):
                obj["metadata"].pop(field)
        assert current == webhooks[side]
    test_with_the_engine_up_it_is_the_engine_that_denies_a_privileged_pod(cluster, "closed")


def test_a_pod_kill_is_an_outage_only_while_the_replacements_start(cluster):
    """What the pods-restart experiment relies on: just after the kill no endpoint is ready (the webhook
    fails), and the Deployment's replacements are ready again after pod_start_seconds."""
    pods = cluster.core.list_namespaced_pod("policy-engine-closed").items
    for pod in pods:
        cluster.core.delete_namespaced_pod(pod.metadata.name, "policy-engine-closed", grace_period_seconds=0)

    assert not cluster.sandbox._store.has_ready_endpoint("policy-engine-closed", "policy-engine")  # noqa: SLF001
    wait_for(lambda: engine_ready(cluster, "closed"), START_SECONDS + 3)
    assert {p.metadata.name for p in cluster.core.list_namespaced_pod("policy-engine-closed").items}.isdisjoint(
        {p.metadata.name for p in pods})


@pytest.fixture(scope="module")
def runner_without_pods(cluster, tmp_path_factory) -> Path:
    """A runner that may scale the engine and keep its record, but not create pods."""
    return limited_user(cluster.sandbox, cluster.core.api_client, "kirvis-runner-no-pods", [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch", "update", "get", "list",
                                                                   "delete"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}],
        tmp_path_factory.mktemp("runner") / "kubeconfig")


def test_a_runner_that_may_not_create_pods_makes_the_run_an_error_never_held(cluster, runner_without_pods,
                                                                             tmp_path):
    """RBAC refusing the runner's own pod create is its missing permission: an error, never a block, and
    the rollbacks still bring the engine back."""
    run = run_chaos(SCALED, tmp_path, runner_without_pods)
    wait_for(lambda: engine_ready(cluster, "closed"), START_SECONDS + 3)

    assert run.exit_code == 1 and run.journal["status"] == "failed", run.output
    assert run.journal["chaoskirvis"]["verdict"]["result"] == "error", run.journal["chaoskirvis"]["verdict"]
    outcomes = run.journal["chaoskirvis"]["outcomes"]
    assert [o["outcome"] for o in outcomes] == ["error"], outcomes
    assert 'User "kirvis-runner-no-pods" cannot create resource "pods"' in outcomes[0]["message"], outcomes
    assert run_pods(cluster, run.journal["chaoskirvis"]["run_id"]) == []


def test_a_run_whose_outage_did_not_happen_is_never_held(cluster, tmp_path):
    """chaosk8s's scale of a Deployment that does not exist fails, Chaos Toolkit goes on, and the engine, up,
    denies the pod itself: nothing about failing closed was tested."""
    run = run_chaos(SCALED, tmp_path, cluster.kubeconfig, variables={"engine_deployment": "no-such-engine"})

    assert attempt_of(run)["answered_by"] == "admission webhook validate.policy-engine-closed.chaoskirvis.io"
    assert run.journal["chaoskirvis"]["verdict"]["result"] == "error", run.output
