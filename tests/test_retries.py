"""Retries and lost answers, through the fault-injecting proxy in front of the sandbox.

What Kubernetes documents and client-go does: 429 TooManyRequests and 5xx are answers to retry later,
honouring Retry-After; a create is not idempotent, so when its answer is lost (a timeout, a dropped
connection) the object may exist all the same and must be looked up by name; 409 AlreadyExists on a
create means an object of that name is stored, which is ours only if it carries our marks.
"""
from __future__ import annotations

import time

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaoskirvis.client import ApiError, kube_api
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.state import run_state
from chaoskirvis.workload.actions import inject_risky_pod
from fault_proxy import Answer, Delay, Drop, FaultProxy, Lost, Twice, sequence, status_body

TOO_MANY = Answer(429, status_body(429, "TooManyRequests", "too many requests, please try again later"),
                  {"Retry-After": "1"})
UNAVAILABLE = Answer(503, status_body(503, "ServiceUnavailable", "the server is currently unable to handle the request"))
GATEWAY_TIMEOUT = Answer(504, status_body(504, "Timeout", "the request did not complete in time"))


def proxied(proxy: FaultProxy, run: dict, tmp_path) -> dict:
    kubeconfig = proxy.write_kubeconfig(tmp_path / "proxy-kubeconfig")
    return {"configuration": run["configuration"], "secrets": {"KUBECONFIG": str(kubeconfig)}}


def ledger_path(namespace: str, run: dict) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/kirvis-ledger-{run['configuration']['kirvis_run_id']}"


def run_pods(sandbox, namespace: str, run: dict) -> list[str]:
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    selector = f"chaoskirvis.io/run-id={run['configuration']['kirvis_run_id']}"
    return [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=selector).items]


def pod_creates(proxy: FaultProxy, namespace: str) -> list:
    return [r for r in proxy.requests if r.method == "POST" and r.path == f"/api/v1/namespaces/{namespace}/pods"
            and "dryRun" not in r.query]


def test_a_429_on_the_ledger_write_is_retried_and_the_denial_stays_blocked(sandbox, make_namespace, run, tmp_path):
    namespace = make_namespace(enforce="baseline")
    records = f"/api/v1/namespaces/{namespace}/configmaps"
    rule = sequence(lambda m, p, q: m == "POST" and p == records, [TOO_MANY])
    with FaultProxy(sandbox.sandbox, rule) as proxy:
        outcome = inject_risky_pod(namespace, ["privileged"], **proxied(proxy, run, tmp_path))
    assert (outcome["outcome"], outcome["answered_by"]) == ("blocked", "PodSecurity")
    posts = [r for r in proxy.requests if r.method == "POST" and r.path == records]
    assert len(posts) == 2  # the 429 and its retry: the write-ahead entry, the record's only write


def test_a_503_then_success_on_a_get_is_retried(sandbox, tmp_path):
    rule = sequence(lambda m, p, q: p == "/api/v1/namespaces/default", [UNAVAILABLE, UNAVAILABLE])
    with FaultProxy(sandbox.sandbox, rule) as proxy:
        api = kube_api(secrets={"KUBECONFIG": str(proxy.write_kubeconfig(tmp_path / "kubeconfig"))})
        assert api.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
    assert [r.path for r in proxy.requests].count("/api/v1/namespaces/default") == 3


def test_retry_after_beyond_the_budget_gives_up_at_once_with_a_clear_error(sandbox, tmp_path):
    slow_down = Answer(429, status_body(429, "TooManyRequests", "slow down"), {"Retry-After": "100"})
    with FaultProxy(sandbox.sandbox, lambda m, p, q: slow_down if p == "/api/v1/namespaces/default" else None) as proxy:
        api = kube_api(configuration={"kirvis_request_timeout": 10},
                       secrets={"KUBECONFIG": str(proxy.write_kubeconfig(tmp_path / "kubeconfig"))})
        started = time.monotonic()
        with pytest.raises(ApiError) as failed:
            api.get("/api/v1/namespaces/default")
    assert time.monotonic() - started < 5
    assert failed.value.status == 429
    assert "Retry-After 100 s" in str(failed.value) and "10 s" in str(failed.value)


def test_a_server_that_keeps_failing_is_given_up_within_the_request_timeout(sandbox, tmp_path):
    with FaultProxy(sandbox.sandbox, lambda m, p, q: UNAVAILABLE if p == "/api/v1/namespaces/default" else None) as proxy:
        api = kube_api(configuration={"kirvis_request_timeout": 3},
                       secrets={"KUBECONFIG": str(proxy.write_kubeconfig(tmp_path / "kubeconfig"))})
        started = time.monotonic()
        with pytest.raises(ApiError, match="503 ServiceUnavailable.*gave up after [0-9]+ attempts"):
            api.get("/api/v1/namespaces/default")
    assert time.monotonic() - started < 5
    assert [r.path for r in proxy.requests].count("/api/v1/namespaces/default") >= 2


def test_a_delayed_answer_ends_the_request_within_its_timeout(sandbox, tmp_path):
    rule = lambda m, p, q: Delay(30) if p == "/api/v1/namespaces/default" else None  # noqa: E731
    with FaultProxy(sandbox.sandbox, rule) as proxy:
        api = kube_api(configuration={"kirvis_request_timeout": 2},
                       secrets={"KUBECONFIG": str(proxy.write_kubeconfig(tmp_path / "kubeconfig"))})
        started = time.monotonic()
        with pytest.raises(ActivityFailed, match="GET /api/v1/namespaces/default"):
            api.get("/api/v1/namespaces/default")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("lost", [GATEWAY_TIMEOUT, Drop()], ids=["504", "dropped"])
def test_a_create_stored_but_answered_lost_is_found_by_name_recorded_and_restored(
    sandbox, make_namespace, run, tmp_path, lost,
):
    namespace = make_namespace(enforce="privileged")
    rule = sequence(lambda m, p, q: m == "POST" and p == f"/api/v1/namespaces/{namespace}/pods"
                    and "dryRun" not in q, [Lost(lost)])
    with FaultProxy(sandbox.sandbox, rule) as proxy:
        arguments = proxied(proxy, run, tmp_path)
        outcome = inject_risky_pod(namespace, ["privileged"], **arguments)
        assert len(pod_creates(proxy, namespace)) == 1  # found by name: not created again
    assert outcome["outcome"] == "allowed"
    assert run_pods(sandbox, namespace, run) == [outcome["name"]]
    assert [ref.name for ref in run_state(run["configuration"]["kirvis_run_id"]).created] == [outcome["name"]]
    restore_run(**run)
    assert run_pods(sandbox, namespace, run) == []


def test_409_already_exists_on_our_own_intended_object_is_the_created_answer(sandbox, make_namespace, run, tmp_path):
    namespace = make_namespace(enforce="privileged")
    rule = sequence(lambda m, p, q: m == "POST" and p == f"/api/v1/namespaces/{namespace}/pods"
                    and "dryRun" not in q, [Twice()])
    with FaultProxy(sandbox.sandbox, rule) as proxy:
        outcome = inject_risky_pod(namespace, ["privileged"], **proxied(proxy, run, tmp_path))
    assert outcome["outcome"] == "allowed"
    assert run_pods(sandbox, namespace, run) == [outcome["name"]]
    restore_run(**run)
    assert run_pods(sandbox, namespace, run) == []


def test_409_on_an_object_that_is_not_ours_stays_an_error(sandbox, make_namespace, run):
    namespace = make_namespace()
    api = kube_api(**run)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "taken", "namespace": namespace},
           "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}
    api.create(f"/api/v1/namespaces/{namespace}/pods", pod)
    ours = {**pod, "metadata": {**pod["metadata"], "labels": {
        "app.kubernetes.io/managed-by": "chaoskirvis", "chaoskirvis.io/run-id": run["configuration"]["kirvis_run_id"],
        "chaoskirvis.io/technique": "privileged"}}}
    with pytest.raises(ApiError) as failed:
        api.create(f"/api/v1/namespaces/{namespace}/pods", ours)
    assert (failed.value.status, failed.value.reason) == (409, "AlreadyExists")


def test_after_a_real_denial_nothing_more_is_written_to_the_record(sandbox, make_namespace, run, tmp_path):
    """The intent is written before the attempt; what the attempt came to is the outcome's, not the record's,
    so a ledger that fails after the denial (503 on every write) cannot touch the block."""
    namespace = make_namespace(enforce="baseline")
    denied = {"seen": False}

    def rule(method, path, query):  # every ledger write after the pod's denial answers 503
        if method == "POST" and path == f"/api/v1/namespaces/{namespace}/pods":
            denied["seen"] = True
        if denied["seen"] and method in ("PATCH", "POST") and "configmaps" in path:
            return UNAVAILABLE
        return None

    with FaultProxy(sandbox.sandbox, rule) as proxy:
        outcome = inject_risky_pod(namespace, ["privileged"],
                                   configuration={**run["configuration"], "kirvis_request_timeout": 3},
                                   secrets=proxied(proxy, run, tmp_path)["secrets"])
        sent = [(r.method, r.path) for r in proxy.requests]
    assert (outcome["outcome"], outcome["blocked"], outcome["answered_by"]) == ("blocked", True, "PodSecurity")
    assert "record_error" not in outcome
    after = sent[sent.index(("POST", f"/api/v1/namespaces/{namespace}/pods")) + 1:]
    assert [request for request in after if "configmaps" in request[1]] == []


FAILED_CLOSED = Answer(500, status_body(
    500, "InternalError", 'Internal error occurred: failed calling webhook "validate.kyverno.svc-fail": failed to call '
    'webhook: Post "https://kyverno-svc.kyverno.svc:443/validate/fail?timeout=10s": dial tcp 10.96.0.12:443: connect: '
    "connection refused"))


def test_a_webhook_that_failed_closed_is_not_retried_into_an_admission(sandbox, make_namespace, run, tmp_path):
    # The API server's answer when a failurePolicy: Fail webhook cannot be called is admission's verdict; a retry
    # (here the proxy lets the retry through to a namespace nothing guards) would turn it into "allowed".
    namespace = make_namespace()
    rule = sequence(lambda m, p, q: m == "POST" and p == f"/api/v1/namespaces/{namespace}/pods", [FAILED_CLOSED])
    with FaultProxy(sandbox.sandbox, rule) as proxy:
        outcome = inject_risky_pod(namespace, ["privileged"], **proxied(proxy, run, tmp_path))
        assert (outcome["outcome"], outcome["answered_by"]) == (
            "blocked", "admission webhook validate.kyverno.svc-fail (failed closed)")
        assert len(pod_creates(proxy, namespace)) == 1
    assert run_pods(sandbox, namespace, run) == []
