"""Detection experiments hold with a detector and deviate without one, leaving nothing behind."""
from __future__ import annotations

import socket

import pytest

from chaosrun import EXPERIMENTS, run_chaos
from detector import Detector
from test_experiments import run_objects


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def detection_output(result, name):
    return result.outputs(name)[0]


def cases(alertmanager_url: str, port: int, falco_log, execs, token_file):
    return {
        "privileged-pod-detected-by-falco": ({"within": "3"}, {"falco_log": falco_log}, "falco-alert"),
        "terminal-shell-detected-by-falco": (
            {"within": "3"}, {"falco_log": falco_log, "execs": execs}, "falco-alert"),
        "privileged-pod-alerted-in-alertmanager": (
            {"alertmanager_url": alertmanager_url, "within": "3"}, {"alertmanager": alertmanager_url},
            "alert-reaches-alertmanager"),
        "nodeport-alerted-at-webhook": (  # the detector sends the run's token, as Falcosidekick's customheaders
            {"receiver_port": str(port), "within": "3", "receiver_auth_file": str(token_file)},
            {"webhook": f"http://127.0.0.1:{port}/", "webhook_token": token_file.read_text},
            "alert-posted-to-receiver"),
        "privileged-pod-policy-violation-event": (
            {"within": "3"}, {"events": True}, "policy-violation-event"),
        "cluster-admin-binding-alerted-in-alertmanager": (
            {"alertmanager_url": alertmanager_url, "within": "3"}, {"alertmanager": alertmanager_url},
            "alert-reaches-alertmanager"),
    }


@pytest.mark.parametrize("name", ["privileged-pod-alerted-in-alertmanager", "nodeport-alerted-at-webhook",
                                  "privileged-pod-policy-violation-event",
                                  "cluster-admin-binding-alerted-in-alertmanager",
                                  "privileged-pod-detected-by-falco", "terminal-shell-detected-by-falco"])
def test_detection_experiment(scenarios, alertmanager, falco, make_namespace, tmp_path, name):
    execs = lambda: scenarios.sandbox.execs  # noqa: E731
    variables, detector_options, probe = cases(alertmanager.url, free_port(), falco, execs,
                                               tmp_path / "receiver.token")[name]
    experiment = EXPERIMENTS / f"{name}.yaml"
    with Detector(scenarios.kubeconfig, delay=0.3, **detector_options) as detector:
        watched = run_chaos(experiment, tmp_path, scenarios.kubeconfig,
                            variables={**variables, "namespace": make_namespace(enforce="privileged")})
    unwatched = run_chaos(experiment, tmp_path, scenarios.kubeconfig,
                          variables={**variables, "namespace": make_namespace(enforce="privileged")})

    assert (watched.exit_code, watched.journal["deviated"]) == (0, False), watched.output
    found = detection_output(watched, probe)
    assert found["outcome"] == "detected" and 0.2 < found["time_to_detect_s"] < 3, found
    assert detector.raised
    assert (unwatched.exit_code, unwatched.journal["deviated"]) == (1, True), unwatched.output
    assert detection_output(unwatched, probe)["outcome"] == "missed"
    run_ids = {o["output"]["run_id"] for r in (watched, unwatched) for o in r.journal["run"]
               if isinstance(o.get("output"), dict) and "run_id" in o["output"]}
    assert len(run_ids) == 2 and run_objects(scenarios.kubeconfig, run_ids) == []
