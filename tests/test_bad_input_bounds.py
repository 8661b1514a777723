"""Bad numbers and strings get one clear line before anything is sent, and the sandbox refuses what a real
API server refuses for the fields our techniques set.

Literal values are refused by `chaos validate` (Chaos Toolkit binds the arguments to the activity's
signature there); values that come through ``${...}`` substitution, and the configuration settings the
extension reads as numbers, are refused when the activity runs, as a one-line ActivityFailed. The
sandbox's answers are the API server's: 422 Invalid with the field path and the wording of
k8s.io/kubernetes pkg/apis/core/validation (``must be between 1 and 65535, inclusive``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaoskirvis.exposure.actions import inject_exposure
from chaoskirvis.targets import check_namespace
from chaoskirvis.workload.actions import inject_risky_pod
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos


def experiment_with(tmp_path: Path, name: str, activity: str, arguments: dict[str, Any] | None = None,
                    configuration: dict[str, Any] | None = None) -> Path:
    """`name`'s experiment with the arguments of activity `activity` and the configuration updated (as JSON,
    so that numbers stay numbers)."""
    experiment = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())
    experiment["configuration"].update(configuration or {})
    for step in experiment["method"]:
        if step["name"] == activity:
            step["provider"]["arguments"].update(arguments or {})
            break
    else:
        raise AssertionError(f"{name} has no activity {activity}")
    path = tmp_path / f"{name}-edited.json"
    path.write_text(json.dumps(experiment))
    return path


def validate(path: Path, tmp_path: Path) -> tuple[int, str]:
    done = subprocess.run([str(BIN / "chaos"), "--no-version-check", "validate", str(path)], cwd=tmp_path,
                          env=chaos_env(None, HOME=str(tmp_path)), capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "ERROR" in line]


def run_objects(kubeconfig: Path, run_id: str) -> list[str]:
    api = config.new_client_from_config(str(kubeconfig))
    core = client.CoreV1Api(api)
    selector = f"chaoskirvis.io/run-id={run_id}"
    found = [*core.list_pod_for_all_namespaces(label_selector=selector).items,
             *core.list_service_for_all_namespaces(label_selector=selector).items,
             *core.list_config_map_for_all_namespaces(label_selector=selector).items]
    return [o.metadata.name for o in found]


# --- chaos validate: literal values -----------------------------------------------------------------------

VALIDATION_CASES = {
    "within-1e12": ("privileged-pod-alerted-in-alertmanager", "alert-reaches-alertmanager", {"within": 1e12},
                    "argument within of alert_in_alertmanager must be more than 0 and at most 86400 seconds, "
                    "got 1000000000000.0"),
    "within-0": ("privileged-pod-alerted-in-alertmanager", "alert-reaches-alertmanager", {"within": 0},
                 "argument within of alert_in_alertmanager must be more than 0 and at most 86400 seconds, got 0"),
    "poll-interval-negative": ("privileged-pod-alerted-in-alertmanager", "alert-reaches-alertmanager",
                               {"poll_interval": -1},
                               "argument poll_interval of alert_in_alertmanager must be more than 0 and at most "
                               "3600 seconds, got -1"),
    "url-not-http": ("privileged-pod-alerted-in-alertmanager", "alert-reaches-alertmanager",
                     {"url": "alertmanager:9093"},
                     "argument url of alert_in_alertmanager must be an http:// or https:// URL with a host, "
                     "got 'alertmanager:9093'"),
    "exec-timeout-0": ("terminal-shell-detected-by-falco", "spawn-shell-in-container", {"exec_timeout": 0},
                       "argument exec_timeout of run_runtime_technique must be more than 0 and at most 3600 "
                       "seconds, got 0"),
    "service-port-70000": ("nodeport-service-blocked", "open-port-with-nodeport-service", {"port": 70000},
                           "argument port of inject_exposure must be at least 1 and at most 65535, got 70000"),
    "service-port-negative": ("nodeport-service-blocked", "open-port-with-nodeport-service", {"port": -1},
                              "argument port of inject_exposure must be at least 1 and at most 65535, got -1"),
    "option-port-70000": ("nodeport-service-blocked", "open-port-with-nodeport-service",
                          {"options": {"port": 70000}},
                          "option port of inject_exposure must be at least 1 and at most 65535, got 70000"),
    "option-path-123": ("host-path-denied", "introduce-host-path-pod", {"options": {"path": 123}},
                        "option path of inject_risky_pod must be an absolute path on the node such as '/var/log', "
                        "got 123"),
    "option-path-relative": ("host-path-denied", "introduce-host-path-pod", {"options": {"path": "etc"}},
                             "option path of inject_risky_pod must be an absolute path on the node such as "
                             "'/var/log', got 'etc'"),
    "namespace-newline": ("privileged-pod-denied", "introduce-privileged-pod", {"namespace": "team-a\n"},
                          "argument namespace of inject_risky_pod must be a DNS label such as 'team-a' (lowercase "
                          "letters, digits and '-'), got 'team-a\\n'"),
}


@pytest.mark.parametrize("case", sorted(VALIDATION_CASES))
def test_chaos_validate_refuses_in_one_line(tmp_path, case):
    name, activity, arguments, message = VALIDATION_CASES[case]
    code, output = validate(experiment_with(tmp_path, name, activity, arguments), tmp_path)
    assert code == 1, output
    assert "Traceback" not in output
    assert [line.split("] ", 1)[1] for line in error_lines(output)] == [message], output


def test_chaos_validate_accepts_the_bounds_themselves(tmp_path):
    path = experiment_with(tmp_path, "privileged-pod-alerted-in-alertmanager", "alert-reaches-alertmanager",
                           {"within": 86400, "poll_interval": 0.01, "url": "https://admin:pw@am.example:9093"})
    code, output = validate(path, tmp_path)
    assert code == 0, output
    for port in (1, 65535):
        path = experiment_with(tmp_path, "nodeport-service-blocked", "open-port-with-nodeport-service",
                               {"port": port, "options": {"port": port}})
        code, output = validate(path, tmp_path)
        assert code == 0, output


# --- chaos run: substituted values and configuration settings ---------------------------------------------

RUN_CASES = {
    "within-1e12-substituted": ("privileged-pod-alerted-in-alertmanager", {"within": "1e12"},
                                "argument within of alert_in_alertmanager must be more than 0 and at most 86400 "
                                "seconds, got 1000000000000.0"),
    "within-abc-substituted": ("privileged-pod-alerted-in-alertmanager", {"within": "abc"},
                               "argument within of alert_in_alertmanager must be float, got 'abc'"),
    "ttl-1e12": ("privileged-pod-denied", {"kirvis_ttl_seconds": 1e12},
                 "setting kirvis_ttl_seconds must be at least 0 and at most 2592000 seconds, got 1000000000000.0"),
    "ttl-abc": ("privileged-pod-denied", {"kirvis_ttl_seconds": "abc"},
                "setting kirvis_ttl_seconds must be a number at least 0 and at most 2592000 seconds, got 'abc'"),
    "ttl-negative": ("privileged-pod-denied", {"kirvis_ttl_seconds": -1},
                     "setting kirvis_ttl_seconds must be at least 0 and at most 2592000 seconds, got -1"),
    "request-timeout-abc": ("privileged-pod-denied", {"kirvis_request_timeout": "abc"},
                            "setting kirvis_request_timeout must be a number more than 0 and at most 3600 seconds, "
                            "got 'abc'"),
    "request-timeout-negative": ("privileged-pod-denied", {"kirvis_request_timeout": -1},
                                 "setting kirvis_request_timeout must be more than 0 and at most 3600 seconds, "
                                 "got -1"),
    "request-timeout-0": ("privileged-pod-denied", {"kirvis_request_timeout": 0},
                          "setting kirvis_request_timeout must be more than 0 and at most 3600 seconds, got 0"),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_chaos_run_refuses_in_one_line_and_sends_nothing(scenarios, make_namespace, tmp_path, case):
    name, configuration, message = RUN_CASES[case]
    namespace = make_namespace(enforce="restricted")
    substituted = {k: v for k, v in configuration.items() if k == "within"}
    settings = {k: v for k, v in configuration.items() if k != "within"}
    first = {"privileged-pod-denied": "introduce-privileged-pod",
             "privileged-pod-alerted-in-alertmanager": "alert-reaches-alertmanager"}[name]
    path = experiment_with(tmp_path, name, first, configuration=settings)
    run_id = f"bad-{case[:14].rstrip('-')}"
    result = run_chaos(path, tmp_path, scenarios.kubeconfig, variables={"namespace": namespace, **substituted},
                       KIRVIS_RUN_ID=run_id)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "OverflowError" not in result.output and "ValueError" not in result.output
    assert any(line.endswith(message) for line in error_lines(result.output)), result.output
    assert run_objects(scenarios.kubeconfig, run_id) == []


# --- the activity functions ---------------------------------------------------------------------------------

def test_a_namespace_with_a_trailing_newline_is_not_a_dns_label():
    assert check_namespace("team-a") == "team-a"
    with pytest.raises(ActivityFailed, match=r"invalid namespace 'team-a\\n'"):
        check_namespace("team-a\n")


def test_activities_refuse_substituted_values_out_of_bounds_before_sending(scenarios, make_namespace, run):
    namespace = make_namespace(enforce="privileged")
    with pytest.raises(ActivityFailed, match="^option port of inject_exposure must be at least 1 and at most 65535, "
                                             "got 70000$"):
        inject_exposure(technique="nodeport-service", namespace=namespace, options={"port": "70000"}, **run)
    with pytest.raises(ActivityFailed, match="^argument port of inject_exposure must be at least 1 and at most "
                                             "65535, got 0$"):
        inject_exposure(technique="nodeport-service", namespace=namespace, port="0", **run)
    with pytest.raises(ActivityFailed, match="^option path of inject_risky_pod must be an absolute path"):
        inject_risky_pod(namespace=namespace, techniques=["host-path"], options={"path": "../etc"}, **run)
    run_id = run["configuration"]["kirvis_run_id"]
    assert run_objects(scenarios.kubeconfig, run_id) == []
    opened = inject_exposure(technique="nodeport-service", namespace=namespace, options={"port": "30080"}, **run)
    assert opened["outcome"] == "allowed", opened


# --- the sandbox refuses what the API server refuses ----------------------------------------------------------

def service(name: str, port: Any, target: Any = None, node_port: Any = None, kind: str = "NodePort") -> dict:
    entry = {"port": port, **({"targetPort": target} if target is not None else {}),
             **({"nodePort": node_port} if node_port is not None else {})}
    return {"metadata": {"name": name}, "spec": {"type": kind, "ports": [entry]}}


@pytest.mark.parametrize("port,target,node_port,message", [
    # without a targetPort the registry defaults it to the port (SetDefaults_Service) before validation, which
    # then refuses both, in validateServicePort's order
    (70000, None, None, 'Service "x" is invalid: [spec.ports[0].port: Invalid value: 70000: must be between 1 and '
                        '65535, inclusive, spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and '
                        '65535, inclusive]'),
    (-1, None, None, 'Service "x" is invalid: [spec.ports[0].port: Invalid value: -1: must be between 1 and 65535, '
                     'inclusive, spec.ports[0].targetPort: Invalid value: -1: must be between 1 and 65535, '
                     'inclusive]'),
    (70000, 8080, None, 'Service "x" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and '
                        '65535, inclusive'),
    (80, 70000, None, 'Service "x" is invalid: spec.ports[0].targetPort: Invalid value: 70000: must be between 1 '
                      'and 65535, inclusive'),
    (80, "Web_Port", None, 'Service "x" is invalid: spec.ports[0].targetPort: Invalid value: "Web_Port": must '
                           'contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'),
    (80, None, 80, 'Service "x" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the '
                   'valid range. The range of valid ports is 30000-32767'),
])
def test_the_sandbox_refuses_service_ports_as_the_api_server_does(sandbox, make_namespace, port, target, node_port,
                                                                  message):
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    namespace = make_namespace()
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_service(namespace, service("x", port, target, node_port))
    status = json.loads(refused.value.body)
    assert (refused.value.status, status["reason"], status["message"]) == (422, "Invalid", message)
    assert status["details"]["kind"] == "Service" and status["details"]["name"] == "x"
    assert core.list_namespaced_service(namespace).items == []
    created = core.create_namespaced_service(namespace, service("ok", 65535, 1, 32767))
    assert created.spec.ports[0].port == 65535


@pytest.mark.parametrize("field,value,path", [
    ("containerPort", 70000, "spec.containers[0].ports[0].containerPort"),
    ("containerPort", -1, "spec.containers[0].ports[0].containerPort"),
    ("hostPort", 65536, "spec.containers[0].ports[0].hostPort"),
    ("hostPort", -1, "spec.containers[0].ports[0].hostPort"),
])
def test_the_sandbox_refuses_container_and_host_ports_out_of_range(sandbox, make_namespace, field, value, path):
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    namespace = make_namespace()
    port = {"containerPort": 8080, field: value}
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                                               "ports": [port]}]}}
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod(namespace, pod)
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["message"] == (
        f'Pod "p" is invalid: {path}: Invalid value: {value}: must be between 1 and 65535, inclusive')


def test_kubectl_sees_the_same_refusal(sandbox, make_namespace, tmp_path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    namespace = make_namespace()
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Service", **service("big", 70000)}))
    done = subprocess.run([kubectl, "--kubeconfig", str(sandbox.kubeconfig), "-n", namespace, "apply", "-f",
                           str(manifest)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert ('* spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive\n'
            '* spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive') in done.stderr


def test_a_run_id_with_a_trailing_newline_is_refused():
    from chaoskirvis.ledger.runid import validate_run_id

    assert validate_run_id("r1abc") == "r1abc"
    with pytest.raises(ActivityFailed, match=r"invalid run id 'r1abc\\n'"):
        validate_run_id("r1abc\n")
