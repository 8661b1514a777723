"""Where the client takes its configuration from, and what it refuses to do."""
from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskirvis import __version__
from chaoskirvis.client import NO_CONFIGURATION_MESSAGE, kube_api
from chaoskirvis.ledger.runid import current_run_id


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for key in ("KUBECONFIG", "KUBERNETES_HOST", "KUBERNETES_API_KEY", "KUBERNETES_CONTEXT",
                "KUBERNETES_VERIFY_SSL", "CHAOSTOOLKIT_IN_POD", "KIRVIS_REQUEST_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_no_configuration_is_an_error_naming_what_to_set():
    with pytest.raises(ActivityFailed) as error:
        kube_api()
    assert str(error.value) == NO_CONFIGURATION_MESSAGE
    assert "KUBECONFIG" in str(error.value) and "KUBERNETES_HOST" in str(error.value)


def test_kubeconfig_that_does_not_exist_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ActivityFailed, match="KUBECONFIG is set to .*missing.* but no such file exists"):
        kube_api()


def test_colon_separated_kubeconfig_list_and_context(sandbox, monkeypatch, tmp_path):
    second = sandbox.sandbox.write_kubeconfig(tmp_path / "second", context="second-context")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{sandbox.kubeconfig}:{second}")
    api = kube_api(secrets={"KUBERNETES_CONTEXT": "second-context"})
    assert api.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"


def test_environment_keys_like_chaostoolkit_kubernetes(sandbox, monkeypatch):
    monkeypatch.setenv("KUBERNETES_HOST", sandbox.sandbox.url)
    monkeypatch.setenv("KUBERNETES_API_KEY", sandbox.sandbox.admin_token)
    monkeypatch.setenv("KUBERNETES_CA_CERT_FILE", str(sandbox.sandbox.ca_file))
    api = kube_api()
    assert api.get("/api/v1/namespaces/kube-system")["metadata"]["name"] == "kube-system"


def test_tls_verification_is_on_unless_explicitly_turned_off(monkeypatch):
    monkeypatch.setenv("KUBERNETES_HOST", "https://cluster.invalid:6443")
    assert kube_api().api_client.configuration.verify_ssl is True
    assert kube_api(secrets={"KUBERNETES_VERIFY_SSL": "false"}).api_client.configuration.verify_ssl is False
    monkeypatch.setenv("KUBERNETES_VERIFY_SSL", "true")
    assert kube_api().api_client.configuration.verify_ssl is True


def test_every_call_has_a_timeout(monkeypatch):
    monkeypatch.setenv("KUBERNETES_HOST", "https://cluster.invalid:6443")
    assert kube_api().timeout == 30.0
    assert kube_api(configuration={"kirvis_request_timeout": 5}).timeout == 5.0


def test_unreachable_api_server_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("KUBERNETES_HOST", "http://127.0.0.1:9")
    with pytest.raises(ActivityFailed, match=r"cannot reach the Kubernetes API server at http://127.0.0.1:9"):
        kube_api().get("/api/v1/namespaces")


def test_user_agent_carries_version_and_run_id(sandbox, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    kube_api().get("/api/v1/namespaces/default")
    agent = [r.user_agent for r in sandbox.sandbox.requests if r.path == "/api/v1/namespaces/default"][-1]
    assert agent.startswith(f"chaoskirvis/{__version__} (run {current_run_id()})")
