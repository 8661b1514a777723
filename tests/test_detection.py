"""Detection probes against a real Alertmanager, the webhook receiver and the sandbox's Events."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.request

import pytest
from kubernetes import client, config

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.detection.actions import start_alert_receiver, stop_alert_receiver
from chaoskirvis.detection.probes import (
    alert_at_receiver, alert_in_alertmanager, alert_in_falco_logs, alert_in_http_query, alert_in_kubernetes_events,
)
from chaoskirvis.ledger.probes import injections_detected
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.workload.actions import inject_risky_pod

TOLERANCE_S = 0.15
WITH_INCUBATING = ["falco_rules.yaml", "falco-incubating_rules.yaml"]


@pytest.fixture
def injected(run, make_namespace):
    """A privileged pod injected (and admitted) by a fresh run: the run's arguments and the outcome."""
    return run, inject_risky_pod(make_namespace(enforce="privileged"), ["privileged"], **run)


def later(delay: float, action) -> threading.Thread:
    thread = threading.Timer(delay, action)
    thread.start()
    return thread


def post_json(url: str, payload, token: str | None = None) -> None:
    bearer = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **bearer})
    urllib.request.urlopen(request, timeout=5).read()


def falcosidekick_alert(pod: str, namespace: str, at: dt.datetime | None = None) -> dict:
    """An alert as Falcosidekick's Alertmanager output posts it."""
    at = at or dt.datetime.now(dt.UTC)
    return {
        "labels": {"alertname": "Launch Privileged Container", "rule": "Launch Privileged Container",
                   "priority": "Critical", "source": "syscall", "k8s_pod_name": pod, "k8s_ns_name": namespace},
        "annotations": {"info": f"Privileged container started (pod={pod})"},
        "startsAt": at.isoformat(), "endsAt": (at + dt.timedelta(minutes=5)).isoformat(),
    }


def post_to_alertmanager(alertmanager, *alerts) -> None:
    post_json(f"{alertmanager.url}/api/v2/alerts", list(alerts))


def time_since_injection(outcome) -> float:
    return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(outcome["at"])).total_seconds()


def test_alertmanager_alert_in_time_is_detected_with_its_time_to_detect(alertmanager, injected):
    arguments, outcome = injected
    delay = 0.4
    offset = time_since_injection(outcome)
    later(delay, lambda: post_to_alertmanager(alertmanager, falcosidekick_alert(outcome["name"], outcome["namespace"])))

    result = alert_in_alertmanager(alertmanager.url, within=5, matchers=['priority="Critical"'], **arguments)

    assert result["outcome"] == "detected" and result["detected"] is True
    assert result["alert"]["name"] == "Launch Privileged Container"
    assert abs(result["time_to_detect_s"] - (offset + delay)) < TOLERANCE_S
    assert injections_detected(**arguments) is True


def test_alertmanager_alert_after_within_is_missed(alertmanager, injected):
    arguments, outcome = injected
    timer = later(1.2, lambda: post_to_alertmanager(alertmanager, falcosidekick_alert(outcome["name"], "x")))
    started = time.monotonic()

    result = alert_in_alertmanager(alertmanager.url, within=0.8, **arguments)

    assert result["outcome"] == "missed" and result["time_to_detect_s"] is None
    assert time.monotonic() - started < 1.1
    timer.join()


def test_alertmanager_alerts_of_another_run_or_from_before_do_not_count(alertmanager, injected):
    arguments, outcome = injected
    other_run = outcome["name"].replace(arguments["configuration"]["kirvis_run_id"], "rotherrun0")
    before = dt.datetime.fromisoformat(outcome["at"]) - dt.timedelta(seconds=30)
    post_to_alertmanager(alertmanager, falcosidekick_alert(other_run, "x"),
                         falcosidekick_alert(outcome["name"], "before", at=before))

    result = alert_in_alertmanager(alertmanager.url, within=0.5, **arguments)

    assert result["outcome"] == "missed"
    assert result["alerts_of_run_not_counted"] == 1
    assert injections_detected(**arguments) is False


def test_silenced_alert_counts_only_when_asked(alertmanager, injected):
    arguments, outcome = injected
    now = dt.datetime.now(dt.UTC)
    post_json(f"{alertmanager.url}/api/v2/silences", {
        "matchers": [{"name": "k8s_pod_name", "value": outcome["name"], "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(minutes=10)).isoformat(),
        "createdBy": "test", "comment": "silenced on purpose",
    })
    post_to_alertmanager(alertmanager, falcosidekick_alert(outcome["name"], outcome["namespace"]))

    silenced = alert_in_alertmanager(alertmanager.url, within=0.5, **arguments)
    asked = alert_in_alertmanager(alertmanager.url, within=2, include_silenced=True, **arguments)

    assert silenced["outcome"] == "missed"
    assert asked["outcome"] == "detected" and asked["alert"]["state"] == "suppressed"


def test_unreachable_alertmanager_fails_and_the_run_cannot_pass(injected):
    arguments, _ = injected
    with pytest.raises(Exception, match="cannot reach http://127.0.0.1:9"):
        alert_in_alertmanager("http://127.0.0.1:9", within=1, **arguments)
    with pytest.raises(ActivityFailed, match=r"1 detection check\(s\) could not be carried out.*alertmanager: error"):
        injections_detected(**arguments)  # an error (the run fails), never a weakness nor a pass


def test_webhook_receiver_detects_a_falcosidekick_post_on_arrival(injected):
    arguments, outcome = injected
    started = start_alert_receiver(**arguments)
    url, token = started["url"], open(started["token_file"]).read()  # as Falcosidekick sends it (customheaders)
    try:
        offset = time_since_injection(outcome)
        payload = {"output": f"Privileged container started (k8s.pod.name={outcome['name']})",
                   "priority": "Critical", "rule": "Launch Privileged Container", "source": "syscall",
                   "time": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                   "output_fields": {"k8s.pod.name": outcome["name"], "k8s.ns.name": outcome["namespace"]}}
        later(0.3, lambda: post_json(url, {**payload, "output_fields": {"k8s.pod.name": "kirvis-rotherrun0-x"},
                                           "output": "another run"}, token))
        later(0.5, lambda: post_json(url, payload, token))

        result = alert_at_receiver(within=5, name="Privileged", **arguments)
    finally:
        summary = stop_alert_receiver(**arguments)

    assert result["outcome"] == "detected" and result["alert"]["priority"] == "Critical"
    assert abs(result["time_to_detect_s"] - (offset + 0.5)) < TOLERANCE_S
    assert summary["received"] == 2


def test_kubernetes_event_is_detected_through_the_watch(sandbox, injected):
    arguments, outcome = injected
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    offset = time_since_injection(outcome)
    event = {"metadata": {"name": f"{outcome['name']}.policy", "namespace": outcome["namespace"]},
             "involvedObject": {"kind": "Pod", "name": outcome["name"], "namespace": outcome["namespace"]},
             "reason": "PolicyViolation", "message": "privileged containers are not allowed", "type": "Warning",
             "source": {"component": "policy-engine"}}
    later(0.4, lambda: core.create_namespaced_event(outcome["namespace"], event))

    result = alert_in_kubernetes_events(within=5, reason="^PolicyViolation$", namespace=outcome["namespace"],
                                        **arguments)

    assert result["outcome"] == "detected"
    assert result["alert"]["involved_object"]["name"] == outcome["name"]
    assert abs(result["time_to_detect_s"] - (offset + 0.4)) < TOLERANCE_S


def test_the_scheduler_and_kubelet_events_of_the_injected_pod_are_no_detection(sandbox, run, make_namespace):
    """A real cluster records Scheduled, Pulled, Created and Started for the pod an injection let through: they
    name the run's pod, yet no detector raised them, so without a reason pattern the probe still misses."""
    outcome = inject_risky_pod(make_namespace(enforce="privileged"), ["privileged"], **run)
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    reasons = {e.reason for e in core.list_namespaced_event(outcome["namespace"]).items
               if e.involved_object.name == outcome["name"]}
    assert {"Scheduled", "Started"} <= reasons

    assert alert_in_kubernetes_events(within=1, namespace=outcome["namespace"], **run)["outcome"] == "missed"


def test_detection_needs_an_injection_first(sandbox):
    reset_run_id(new_run_id())
    with pytest.raises(Exception, match="has introduced nothing yet"):
        alert_in_kubernetes_events(within=1, secrets={"KUBECONFIG": str(sandbox.kubeconfig)})
    reset_run_id()


def falco_line(rule: str, pod: str, namespace: str, at: dt.datetime | None = None) -> str:
    at = at or dt.datetime.now(dt.UTC)
    return json.dumps({
        "hostname": "node-1", "priority": "Critical", "rule": rule, "source": "syscall", "tags": ["container"],
        "time": at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z",
        "output": f"{at.isoformat()}: Critical {rule} (k8s.pod.name={pod} k8s.ns.name={namespace})",
        "output_fields": {"k8s.pod.name": pod, "k8s.ns.name": namespace, "container.id": "abc123"}})


def test_falco_alert_in_its_pod_logs_is_detected_on_arrival(falco, injected):
    arguments, outcome = injected
    offset = time_since_injection(outcome)
    later(0.2, lambda: falco("not json: Falco initialized"))
    later(0.3, lambda: falco(falco_line("Launch Privileged Container", "kirvis-rotherrun0-privileged-x", "x")))
    later(0.5, lambda: falco(falco_line("Launch Privileged Container", outcome["name"], outcome["namespace"])))

    result = alert_in_falco_logs(within=5, technique="privileged", rules_files=WITH_INCUBATING, **arguments)

    assert result["outcome"] == "detected"
    assert result["alert"]["name"] == "Launch Privileged Container" and result["alert"]["priority"] == "Critical"
    assert result["alert"]["output_fields"]["k8s.pod.name"] == outcome["name"]
    assert result["rule"] == "^Launch\\ Privileged\\ Container$"
    assert result["rules_not_loaded"] == ["Create Privileged Pod"]
    assert abs(result["time_to_detect_s"] - (offset + 0.5)) < TOLERANCE_S


def test_falco_alerts_of_another_rule_or_from_before_do_not_count(falco, injected):
    arguments, outcome = injected
    before = dt.datetime.fromisoformat(outcome["at"]) - dt.timedelta(seconds=5)
    falco(falco_line("Launch Privileged Container", outcome["name"], outcome["namespace"], at=before))
    falco(falco_line("Terminal shell in container", outcome["name"], outcome["namespace"]))

    result = alert_in_falco_logs(within=0.6, technique="privileged", rules_files=WITH_INCUBATING, **arguments)

    assert result["outcome"] == "missed"


def test_a_technique_whose_rules_this_falco_does_not_load_is_an_error_at_once(falco, injected):
    """'Launch Privileged Container' is an incubating rule, 'Create Privileged Pod' a k8saudit one: a default
    Falco loads neither, so waiting would end in a 'missed' that says nothing about the cluster."""
    arguments, outcome = injected
    falco(falco_line("Launch Privileged Container", outcome["name"], outcome["namespace"]))
    started = time.monotonic()
    with pytest.raises(ActivityFailed, match=r"technique privileged's rules are not loaded by this detector "
                                             r"\(rules_files: falco_rules.yaml\): 'Launch Privileged Container' "
                                             r"\(falco-incubating_rules.yaml\): load falco-incubating_rules.yaml"):
        alert_in_falco_logs(within=30, technique="privileged", **arguments)
    assert time.monotonic() - started < 5
    with pytest.raises(ActivityFailed, match=r"falco: error \(technique privileged's rules are not loaded"):
        injections_detected(**arguments)  # an error (the run fails), not a miss (a weakness)


def test_a_rule_shipped_disabled_counts_only_when_enabled(falco, run, make_namespace):
    outcome = inject_risky_pod(make_namespace(enforce="privileged"), ["run-as-root"], **run)
    sandbox_file = ["falco_rules.yaml", "falco-sandbox_rules.yaml"]
    with pytest.raises(ActivityFailed, match=r"'Container Run as Root User' \(falco-sandbox_rules.yaml, enabled: "
                                             r"false\): enable it"):
        alert_in_falco_logs(within=30, technique="run-as-root", rules_files=sandbox_file, **run)
    later(0.2, lambda: falco(falco_line("Container Run as Root User", outcome["name"], outcome["namespace"])))
    result = alert_in_falco_logs(within=5, technique="run-as-root", rules_files=sandbox_file,
                                 enabled_rules=["Container Run as Root User"], **run)
    assert result["outcome"] == "detected"


def test_k8saudit_rules_count_where_the_plugin_runs(falco, injected):
    arguments, outcome = injected
    later(0.2, lambda: falco(falco_line("Launch Privileged Container", outcome["name"], outcome["namespace"])))
    later(0.4, lambda: falco(falco_line("Create Privileged Pod", outcome["name"], outcome["namespace"])))

    result = alert_in_falco_logs(within=5, technique="privileged", rules_files=["k8s_audit_rules.yaml"], **arguments)

    assert result["outcome"] == "detected" and result["alert"]["name"] == "Create Privileged Pod"
    assert result["rule"] == "^Create\\ Privileged\\ Pod$"


def test_a_technique_naming_no_rule_needs_an_explicit_one(falco, run, make_namespace):
    outcome = inject_risky_pod(make_namespace(enforce="privileged"), ["seccomp-unconfined"], **run)
    with pytest.raises(ActivityFailed, match="technique seccomp-unconfined names no detector rule that fires for it"):
        alert_in_falco_logs(within=30, technique="seccomp-unconfined", **run)
    later(0.2, lambda: falco(falco_line("My seccomp rule", outcome["name"], outcome["namespace"])))
    result = alert_in_falco_logs(within=5, technique="seccomp-unconfined", rule="^My seccomp rule$", **run)
    assert result["outcome"] == "detected"


def test_no_falco_pod_is_one_clear_error(injected):
    arguments, _ = injected
    with pytest.raises(Exception, match="no Falco pod matches app.kubernetes.io/name=nothing-here in namespace"):
        alert_in_falco_logs(within=1, label_selector="app.kubernetes.io/name=nothing-here", namespace="default",
                            **arguments)


def test_http_json_query_finds_the_runs_item_by_jsonpath_and_regex(alertmanager, injected):
    arguments, outcome = injected
    offset = time_since_injection(outcome)
    before = dt.datetime.fromisoformat(outcome["at"]) - dt.timedelta(seconds=30)
    post_to_alertmanager(alertmanager, falcosidekick_alert(outcome["name"], "before", at=before))
    later(0.4, lambda: post_to_alertmanager(alertmanager, falcosidekick_alert(outcome["name"], outcome["namespace"])))

    result = alert_in_http_query(f"{alertmanager.url}/api/v2/alerts", within=5, items_path="$[*]",
                                 match_regex="Launch Privileged", time_path="$.startsAt",
                                 name_path="$.labels.alertname", poll_interval=0.05, **arguments)

    assert result["outcome"] == "detected" and result["alert"]["name"] == "Launch Privileged Container"
    assert result["alerts_of_run_not_counted"] == 1
    assert abs(result["time_to_detect_s"] - (offset + 0.4)) < TOLERANCE_S


def test_http_json_query_with_an_invalid_jsonpath_is_one_clear_error(alertmanager, injected):
    arguments, _ = injected
    with pytest.raises(Exception, match="invalid JSONPath in items_path"):
        alert_in_http_query(f"{alertmanager.url}/api/v2/alerts", within=1, items_path="$[", **arguments)
    with pytest.raises(ActivityFailed, match=r"could not be carried out.*http-query: error"):
        injections_detected(**arguments)


@pytest.mark.parametrize("value, expected", [
    ("1764230400000000000", "2025-11-27T08:00:00+00:00"),  # Loki: nanoseconds as text
    (1764230400000, "2025-11-27T08:00:00+00:00"),          # milliseconds
    (1764230400, "2025-11-27T08:00:00+00:00"),             # seconds
    ("2025-11-27T08:00:00.123456789Z", "2025-11-27T08:00:00.123456+00:00"),
])
def test_http_query_item_times(value, expected):
    from chaoskirvis.detection.http_query import _time
    assert _time(value).isoformat() == expected
