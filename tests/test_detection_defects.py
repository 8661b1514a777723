"""Detection probes where the backend answers badly or the probe starts late (issue 8, parts 4 and 5).

An alert counts at its own time on every backend, a watch that expires is resumed from a fresh list as
client-go's reflector does, and a Falco log that cannot be read is an error, never a silent `missed`.
Faults the sandbox has no cause to make (a 403 from RBAC it does not have, a watch ERROR 500) come from a
fault-injecting proxy between the probe and the sandbox; the 410 Expired is the sandbox's own answer.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaoskirvis.detection.probes import (
    alert_in_alertmanager, alert_in_falco_logs, alert_in_http_query, alert_in_kubernetes_events,
)
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.probes import injections_detected
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.sandbox.server import Sandbox
from chaoskirvis.workload.actions import inject_risky_pod
from fault_proxy import Answer, Cut, FaultProxy, Stream, forbidden_status
from test_detection import (
    TOLERANCE_S, falco_line, falcosidekick_alert, post_to_alertmanager, time_since_injection,
)


@pytest.fixture
def injected(run, make_namespace):
    return run, inject_risky_pod(make_namespace(enforce="privileged"), ["privileged"], **run)


def wait_until_late(outcome, seconds: float) -> None:
    """Sleep until `seconds` after the injection: the probe starts late, as after a slow step before it."""
    time.sleep(max(0.0, seconds - time_since_injection(outcome)))


def in_thread(call):
    """Run `call` in a thread; the returned function joins it and returns (or raises) what it did."""
    box: dict = {}

    def target():
        try:
            box["result"] = call()
        except BaseException as error:  # handed to the test's thread
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def result(timeout: float = 20):
        thread.join(timeout)
        assert not thread.is_alive(), "the probe did not end"
        if "error" in box:
            raise box["error"]
        return box["result"]

    return result


def recorded_outcome(arguments) -> str:
    """The outcome the probe recorded in the run's ledger (what the hypothesis probe reads)."""
    return run_state(arguments["configuration"]["kirvis_run_id"]).detections[-1]["outcome"]


def proxied(proxy: FaultProxy, arguments: dict, tmp_path) -> dict:
    return {**arguments, "secrets": {"KUBECONFIG": str(proxy.write_kubeconfig(tmp_path / "proxy-kubeconfig"))}}


# a. An alert already there when the probe starts late counts at its own time.

def test_alertmanager_alert_in_time_counts_at_its_start_when_the_probe_starts_late(alertmanager, injected):
    arguments, outcome = injected
    wait_until_late(outcome, 0.3)
    raised = time_since_injection(outcome)
    post_to_alertmanager(alertmanager, falcosidekick_alert(outcome["name"], outcome["namespace"]))
    wait_until_late(outcome, 1.3)  # the deadline (1 s) has passed when the probe first asks

    result = alert_in_alertmanager(alertmanager.url, within=1, **arguments)

    assert result["outcome"] == "detected", result
    assert abs(result["time_to_detect_s"] - raised) < TOLERANCE_S
    assert result["alert"]["seen_at"] > result["alert"]["detected_at"]  # when asked, and when it counts
    assert injections_detected(**arguments) is True


def test_http_query_item_counts_at_its_time_path_when_the_probe_starts_late(alertmanager, injected):
    arguments, outcome = injected
    wait_until_late(outcome, 0.3)
    raised = time_since_injection(outcome)
    post_to_alertmanager(alertmanager, falcosidekick_alert(outcome["name"], outcome["namespace"]))
    wait_until_late(outcome, 1.3)
    query = {"url": f"{alertmanager.url}/api/v2/alerts", "within": 1, "match_regex": outcome["name"]}

    timed = alert_in_http_query(**query, time_path="$.startsAt", **arguments)
    untimed = alert_in_http_query(**query, **arguments)

    assert timed["outcome"] == "detected" and abs(timed["time_to_detect_s"] - raised) < TOLERANCE_S
    # Without time_path an item counts when the probe first sees it (documented): here, after the deadline.
    assert untimed["outcome"] == "missed" and untimed["alerts_of_run_not_counted"] == 1


def test_falco_line_in_time_counts_at_its_time_when_the_probe_starts_late(falco, injected):
    arguments, outcome = injected
    wait_until_late(outcome, 0.3)
    raised = time_since_injection(outcome)
    falco(falco_line("Launch Privileged Container", outcome["name"], outcome["namespace"]))
    wait_until_late(outcome, 1.3)

    result = alert_in_falco_logs(within=1, rule="^Launch Privileged Container$", **arguments)

    assert result["outcome"] == "detected", result
    assert abs(result["time_to_detect_s"] - raised) < TOLERANCE_S


# b. A watch that expires (410) is resumed from a fresh list; other watch errors are errors.

@pytest.fixture(scope="module")
def short_history(tmp_path_factory):
    """A sandbox that keeps the last 10 changes for watches (a real API server's compaction window, made short)."""
    with Sandbox(history_limit=10) as running:
        yield running, running.write_kubeconfig(tmp_path_factory.mktemp("short-history") / "kubeconfig")


@pytest.fixture
def short_history_run(short_history, tmp_path):
    sandbox, kubeconfig = short_history
    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": namespace}})
    run_id = new_run_id()
    reset_run_id(run_id)
    arguments = {"configuration": {"kirvis_run_id": run_id}, "secrets": {"KUBECONFIG": str(kubeconfig)}}
    outcome = inject_risky_pod(namespace, ["privileged"], **arguments)
    yield sandbox, core, arguments, outcome
    restore_run(**arguments)
    reset_run_id()


def policy_event(outcome, name: str, at: dt.datetime | None = None) -> dict:
    event = {"metadata": {"name": f"{outcome['name']}.{name}", "namespace": outcome["namespace"]},
             "involvedObject": {"kind": "Pod", "name": outcome["name"], "namespace": outcome["namespace"]},
             "reason": "PolicyViolation", "message": "privileged containers are not allowed", "type": "Warning",
             "source": {"component": "policy-engine"}, "reportingComponent": "policy-engine",
             "reportingInstance": "policy-engine-0"}
    if at:
        event |= {"eventTime": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "action": "Audit"}
    return event


def hold_first_events_watch(namespace: str):
    """A rule holding the probe's first watch of Events until `release` is set (`held` says it arrived)."""
    held, release = threading.Event(), threading.Event()
    path = f"/api/v1/namespaces/{namespace}/events"

    def rule(method, request_path, query):
        if request_path == path and query.get("watch") and not held.is_set():
            held.set()
            return release
        return None

    return rule, held, release


def compact_history(core, namespace: str) -> None:
    """More changes than the sandbox keeps, so the probe's listed resourceVersion is compacted away."""
    for index in range(15):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"filler-{index}"}})


def events_watches(proxy: FaultProxy, namespace: str) -> list:
    return [r for r in proxy.requests if r.path == f"/api/v1/namespaces/{namespace}/events" and r.query.get("watch")]


def test_event_after_a_410_expired_watch_is_detected_and_the_probe_does_not_loop(short_history_run, tmp_path):
    sandbox, core, arguments, outcome = short_history_run
    namespace = outcome["namespace"]
    rule, held, release = hold_first_events_watch(namespace)
    with FaultProxy(sandbox, rule) as proxy:
        result = in_thread(lambda: alert_in_kubernetes_events(
            within=4, reason="^PolicyViolation$", namespace=namespace, **proxied(proxy, arguments, tmp_path)))
        assert held.wait(5)
        compact_history(core, namespace)
        release.set()  # the sandbox answers this watch with ERROR 410 Expired
        time.sleep(0.5)
        raised = time_since_injection(outcome)
        core.create_namespaced_event(namespace, policy_event(outcome, "after"))
        detected = result()
        watches = events_watches(proxy, namespace)

    assert detected["outcome"] == "detected", detected
    assert abs(detected["time_to_detect_s"] - raised) < TOLERANCE_S
    expired = [r for r in sandbox.requests if r.path.endswith(f"/{namespace}/events") and r.query.get("watch")]
    assert expired and expired[0].query["resourceVersion"] == watches[0].query["resourceVersion"]
    # one expired watch, then one resumed from a fresh list: no hot loop
    assert len(watches) == 2 and watches[1].query["resourceVersion"] != watches[0].query["resourceVersion"]
    lists = [r for r in proxy.requests if r.path.endswith(f"/{namespace}/events") and not r.query.get("watch")]
    assert len(lists) == 2


def test_event_raised_while_the_watch_was_expiring_is_not_lost(short_history_run, tmp_path):
    sandbox, core, arguments, outcome = short_history_run
    namespace = outcome["namespace"]
    rule, held, release = hold_first_events_watch(namespace)
    with FaultProxy(sandbox, rule) as proxy:
        result = in_thread(lambda: alert_in_kubernetes_events(
            within=4, reason="^PolicyViolation$", namespace=namespace, **proxied(proxy, arguments, tmp_path)))
        assert held.wait(5)
        raised_at = dt.datetime.now(dt.UTC)
        core.create_namespaced_event(namespace, policy_event(outcome, "gap", at=raised_at))
        compact_history(core, namespace)  # the event's change is compacted away with the rest
        time.sleep(0.3)
        release.set()
        detected = result()

    assert detected["outcome"] == "detected", detected
    assert detected["alert"]["name"] == "PolicyViolation"
    injected_at = dt.datetime.fromisoformat(outcome["at"])
    assert abs(detected["time_to_detect_s"] - (raised_at - injected_at).total_seconds()) < TOLERANCE_S


def test_watch_error_other_than_expired_is_an_error_naming_the_status(sandbox, injected, tmp_path):
    arguments, outcome = injected
    failure = {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "InternalError",
        "message": "Internal error occurred: etcdserver: request timed out", "code": 500}}

    def rule(method, path, query):
        return Stream([failure]) if path.endswith("/events") and query.get("watch") else None

    started = time.monotonic()
    with FaultProxy(sandbox.sandbox, rule) as proxy:
        with pytest.raises(ActivityFailed, match="500 InternalError.*etcdserver: request timed out"):
            alert_in_kubernetes_events(within=3, namespace=outcome["namespace"], **proxied(proxy, arguments, tmp_path))
        assert len(events_watches(proxy, outcome["namespace"])) == 1
    assert time.monotonic() - started < 2
    assert recorded_outcome(arguments) == "error"


# c. A Falco log that cannot be followed is an error, never `missed`.

def test_falco_log_refused_by_rbac_is_an_error_naming_pod_namespace_and_answer(sandbox, falco, injected, tmp_path):
    arguments, _ = injected
    denial = forbidden_status("pods/log", "falco-x1", "falco", "system:serviceaccount:chaos:runner")

    def rule(method, path, query):
        return Answer(403, denial) if path.endswith("/log") else None

    with FaultProxy(sandbox.sandbox, rule) as proxy:
        started = time.monotonic()
        with pytest.raises(ActivityFailed) as failed:
            alert_in_falco_logs(within=3, rule="^Launch Privileged Container$", **proxied(proxy, arguments, tmp_path))
    message = str(failed.value)
    assert "falco-x1" in message and "namespace falco" in message
    assert "403 Forbidden" in message and 'cannot get resource "pods/log"' in message
    assert time.monotonic() - started < 2
    assert recorded_outcome(arguments) == "error"


def test_falco_log_follow_cut_mid_stream_is_an_error_not_a_miss(sandbox, falco, injected, tmp_path):
    arguments, _ = injected

    def rule(method, path, query):  # the backlog reads fine; the followed log is cut by the network
        return Cut([]) if path.endswith("/log") and query.get("follow") == "true" else None

    with FaultProxy(sandbox.sandbox, rule) as proxy:
        started = time.monotonic()
        with pytest.raises(ActivityFailed) as failed:
            alert_in_falco_logs(within=5, rule="^Launch Privileged Container$", **proxied(proxy, arguments, tmp_path))
    message = str(failed.value)
    assert "falco-x1" in message and "namespace falco" in message and "was cut" in message
    assert time.monotonic() - started < 3  # at once, not after waiting out the window as a miss
    assert recorded_outcome(arguments) == "error"


def two_container_falco_pod(sandbox, namespace: str, first: str) -> None:
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    core.create_namespaced_pod(namespace, {  # as the Falco Helm chart deploys it: Falco and falcoctl
        "metadata": {"name": "falco-two", "labels": {"app.kubernetes.io/name": "falco"}},
        "spec": {"containers": [{"name": first, "image": "docker.io/falcosecurity/falco:0.39.2"},
                                {"name": "falcoctl-artifact-follow",
                                 "image": "docker.io/falcosecurity/falcoctl:0.10.0"}]}})


def test_falco_pod_with_two_containers_none_named_falco_and_no_container_given_is_an_error(
        sandbox, injected, make_namespace):
    arguments, _ = injected
    namespace = make_namespace()
    two_container_falco_pod(sandbox, namespace, first="detector")

    with pytest.raises(ActivityFailed) as failed:
        alert_in_falco_logs(within=3, namespace=namespace, **arguments)

    message = str(failed.value)
    assert "falco-two" in message and f"namespace {namespace}" in message
    assert "400" in message and "a container name must be specified" in message
    assert recorded_outcome(arguments) == "error"


def test_falco_pod_as_the_helm_chart_deploys_it_is_read_from_its_falco_container(sandbox, injected, make_namespace):
    arguments, _ = injected
    namespace = make_namespace()
    two_container_falco_pod(sandbox, namespace, first="falco")

    result = alert_in_falco_logs(within=1, namespace=namespace, rule="Launch Privileged Container", **arguments)

    assert result["outcome"] == "missed"  # read without error: the sandbox's Falco logs nothing
