"""Port injection: reproducible draws, opt-in namespaces, and the verdicts of admission."""
from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaoskirvis.exposure.actions import inject_exposure
from chaoskirvis.exposure.probes import exposure_admission




def test_same_seed_draws_the_same_port_and_namespace(sandbox, make_namespace, run):
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    label = f"opt-in-{run['configuration']['kirvis_run_id']}"
    opted = sorted(make_namespace() for _ in range(3))
    for name in opted:
        core.patch_namespace(name, {"metadata": {"labels": {label: "true"}}})

    first = exposure_admission("nodeport-service", opt_in_label=f"{label}=true", seed=1234, **run)
    second = exposure_admission("nodeport-service", opt_in_label=f"{label}=true", seed=1234, **run)
    other = [exposure_admission("nodeport-service", opt_in_label=f"{label}=true", seed=s, **run) for s in range(5)]

    assert first["draw"] == second["draw"]
    assert first["draw"]["seed"] == 1234 and first["draw"]["candidates"] == opted
    assert first["namespace"] == first["draw"]["namespace"] in opted
    assert 10000 <= first["port"] <= 65000
    assert len({o["port"] for o in other}) > 1


def test_port_range_is_respected_and_recorded(make_namespace, run):
    namespace = make_namespace()
    outcome = exposure_admission("nodeport-service", namespace=namespace, port_range="20000-20002", **run)
    assert outcome["draw"]["port_range"] == [20000, 20002] and 20000 <= outcome["port"] <= 20002


@pytest.mark.parametrize("bad", ["65000-10000", "0-10", "ten-twenty"])
def test_invalid_port_range_is_an_error(make_namespace, run, bad):
    with pytest.raises(ActivityFailed, match="invalid port range"):
        exposure_admission("nodeport-service", namespace=make_namespace(), port_range=bad, **run)


def test_no_opted_in_namespace_is_an_error(run):
    with pytest.raises(ActivityFailed, match="no namespace carries the opt-in label"):
        exposure_admission("nodeport-service", opt_in_label="chaoskirvis.io/nobody=true", **run)


def test_host_port_is_blocked_by_pod_security_baseline(make_namespace, run):
    outcome = exposure_admission("host-port", namespace=make_namespace(enforce="baseline"), seed=7, **run)
    assert outcome["outcome"] == "blocked" and "hostPort (" in outcome["message"]
    assert str(outcome["port"]) in outcome["message"]


@pytest.mark.parametrize("technique", ["nodeport-service", "open-load-balancer", "external-ips",
                                       "open-ingress-policy", "host-port"])
def test_every_exposure_is_admitted_without_a_control(make_namespace, run, technique):
    namespace = make_namespace(enforce="privileged")
    outcome = inject_exposure(technique, namespace=namespace, seed=99, **run)
    assert outcome["outcome"] == "allowed" and outcome["mode"] == "create"
    assert outcome["draw"]["seed"] == 99


def test_a_workload_technique_is_not_an_exposure(make_namespace, run):
    with pytest.raises(ActivityFailed, match="not a port-injection technique"):
        inject_exposure("privileged", namespace=make_namespace(), **run)
