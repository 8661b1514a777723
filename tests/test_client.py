"""Where the client takes its configuration from, and what it refuses to do."""
from __future__ import annotations

import datetime
import socket

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

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


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_colon_separated_kubeconfig_list_and_context(sandbox, monkeypatch, tmp_path):
    # Context dead-context points at a closed port, second-context at the sandbox as its viewer; both
    # files name dead-context as current (kubectl takes the first file's current-context, the Python
    # client the last one's: either way it is dead-context). So only KUBERNETES_CONTEXT=second-context
    # can reach the sandbox, and the sandbox must see the viewer, not another user.
    port = closed_port()
    dead = tmp_path / "dead"
    dead.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead-context",
        "clusters": [{"name": "dead-cluster", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "dead-user", "user": {"token": "not-a-token"}}],
        "contexts": [{"name": "dead-context", "context": {"cluster": "dead-cluster", "user": "dead-user"}}],
    }))
    second = sandbox.sandbox.write_kubeconfig(tmp_path / "second", user="viewer", context="second-context")
    second.write_text(second.read_text().replace("current-context: second-context", "current-context: dead-context"))
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{dead}:{second}")

    with pytest.raises(ActivityFailed, match=rf"cannot reach the Kubernetes API server at https://127.0.0.1:{port}"):
        kube_api().get("/api/v1/namespaces/default")

    seen = len(sandbox.sandbox.requests)
    api = kube_api(secrets={"KUBERNETES_CONTEXT": "second-context"})
    assert api.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
    answered = [(r.path, r.user, r.status) for r in sandbox.sandbox.requests[seen:]]
    assert answered == [("/api/v1/namespaces/default", "sandbox-viewer", 200)]


def other_ca_pem(like: bytes) -> bytes:
    """A new self-signed CA certificate with the same subject as `like`, but a key of its own."""
    subject = x509.load_pem_x509_certificate(like).subject
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def kubeconfig_with_ca(sandbox, path, ca_file):
    """The sandbox's admin kubeconfig, its cluster trusting the CA in `ca_file` (certificate-authority)."""
    config = yaml.safe_load(sandbox.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    del cluster["certificate-authority-data"]
    cluster["certificate-authority"] = str(ca_file)
    path.write_text(yaml.safe_dump(config))
    return path


def test_kubeconfig_trusting_another_ca_is_refused_with_a_clear_error(sandbox, monkeypatch, tmp_path):
    # Two kubeconfigs that differ only in the CA file: the sandbox's own, and a different CA bearing the
    # same name. TLS verification must refuse the second (and tell us why), never fall back to no checks.
    right = tmp_path / "right-ca.crt"
    right.write_bytes(sandbox.sandbox.ca_pem)
    wrong = tmp_path / "wrong-ca.crt"
    wrong.write_bytes(other_ca_pem(sandbox.sandbox.ca_pem))

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_with_ca(sandbox, tmp_path / "right", right)))
    assert kube_api().get("/api/v1/namespaces/default")["metadata"]["name"] == "default"

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_with_ca(sandbox, tmp_path / "wrong", wrong)))
    seen = len(sandbox.sandbox.requests)
    with pytest.raises(ActivityFailed) as error:
        kube_api().get("/api/v1/namespaces/default")
    assert str(error.value).startswith(
        f"the Kubernetes API server at {sandbox.sandbox.url} failed TLS verification (GET /api/v1/namespaces/default): ")
    assert "CERTIFICATE_VERIFY_FAILED" in str(error.value) or "certificate verify failed" in str(error.value)
    assert sandbox.sandbox.requests[seen:] == []  # nothing was sent over the unverified connection


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
