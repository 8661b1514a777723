"""One run that changes the same guardrail twice, restoring in between, leaves it as it was.

The first restore recreates a deleted NetworkPolicy (a new uid); the run's second change of it must record that
object as its original, so the second restore puts it back instead of refusing the entry and dropping the record.
"""
from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client, config

from chaoskirvis.guardrails.actions import tamper_guardrail
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
SERVER_SET = ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp")


def stored(api: client.NetworkingV1Api) -> dict:
    policy = api.api_client.sanitize_for_serialization(api.read_namespaced_network_policy("default-deny", "gr-granted"))
    policy["metadata"] = {k: v for k, v in policy["metadata"].items() if k not in SERVER_SET}
    return policy


def test_a_second_change_after_a_restore_is_put_back_too(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    with Sandbox() as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
        sandbox.apply(ROOT / "scenarios" / "guardrails-team-open.yaml")
        api = client.NetworkingV1Api(config.new_client_from_config(str(kubeconfig)))
        before = stored(api)
        run = new_run_id()
        reset_run_id(run)
        activity = {"configuration": {"kirvis_run_id": run}, "secrets": {"KUBECONFIG": str(kubeconfig)}}

        tamper_guardrail("network-policy-deleted", "gr-granted", name="default-deny", mode="change", **activity)
        first = restore_run(**activity)
        assert first["restored"] == ["NetworkPolicy default-deny in namespace gr-granted"]
        tamper_guardrail("network-policy-opened", "gr-granted", name="default-deny", mode="change", **activity)
        assert stored(api)["spec"]["ingress"] == [{}]
        second = restore_run(**activity)

        assert second["restored"] == ["NetworkPolicy default-deny in namespace gr-granted"]
        assert second["left_alone"] == [] and second["conflicts"] == []
        assert stored(api) == before
        records = client.CoreV1Api(api.api_client).list_namespaced_config_map(
            "gr-granted", label_selector=f"chaoskirvis.io/run-id={run}").items
        assert records == []
