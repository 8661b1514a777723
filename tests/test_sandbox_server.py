"""Hosting the sandbox: TLS, kubeconfigs, applying manifests, ports, and the `kirvis sandbox` foreground run."""

from __future__ import annotations

import base64
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest
import urllib3
import yaml
from cryptography import x509
from kubernetes import client, config

from chaoskirvis.sandbox.server import Sandbox, SandboxError

FOREGROUND = "import sys; from pathlib import Path; from chaoskirvis.sandbox.server import run_foreground; " \
             "sys.exit(run_foreground(int(sys.argv[1]), Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]))"


@pytest.fixture(scope="module")
def foreign_ca() -> bytes:
    """Another sandbox's CA: a valid CA, but not the one that signed the session sandbox's certificate."""
    with Sandbox() as other:
        return other.ca_pem


def trusting(kubeconfig: Path, ca_pem: bytes, path: Path) -> Path:
    """A copy of `kubeconfig` whose cluster trusts `ca_pem` instead."""
    written = yaml.safe_load(kubeconfig.read_text())
    written["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    path.write_text(yaml.safe_dump(written))
    return path


def handshake(sandbox: Sandbox, context: ssl.SSLContext, server_hostname: str) -> ssl.SSLSocket:
    """A TLS connection to the sandbox (the caller closes it)."""
    connection = socket.create_connection((sandbox.host, sandbox.port), timeout=10)
    try:
        return context.wrap_socket(connection, server_hostname=server_hostname)
    except ssl.SSLError:
        connection.close()
        raise


def test_kubeconfig_names_the_context_and_is_private(sandbox, tmp_path):
    path = sandbox.sandbox.write_kubeconfig(tmp_path / "nested" / "kubeconfig", user="viewer", context="ctx")
    written = yaml.safe_load(path.read_text())
    assert written["current-context"] == "ctx"
    assert written["users"][0]["user"]["token"] == sandbox.sandbox.viewer_token
    assert path.read_text().count(sandbox.sandbox.viewer_token) == 1  # in the user only, never in a URL
    assert path.stat().st_mode & 0o777 == 0o600


def test_kubeconfig_trusts_the_sandbox_ca_over_https(sandbox):
    cluster = yaml.safe_load(sandbox.kubeconfig.read_text())["clusters"][0]["cluster"]
    assert cluster == {"server": f"https://127.0.0.1:{sandbox.sandbox.port}",
                       "certificate-authority-data": base64.b64encode(sandbox.sandbox.ca_pem).decode()}
    assert sandbox.sandbox.url == cluster["server"]


def test_server_certificate_is_for_the_loopback_address_and_signed_by_the_sandbox_ca(sandbox):
    running = sandbox.sandbox
    ca = x509.load_pem_x509_certificate(running.ca_pem)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name in ("127.0.0.1", "localhost"):  # both are checked against the certificate's names
        context = ssl.create_default_context(cadata=running.ca_pem.decode())
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        with handshake(running, context, name) as connection:
            assert connection.version() in ("TLSv1.2", "TLSv1.3")
            served = x509.load_der_x509_certificate(connection.getpeercert(binary_form=True))
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert served.issuer == ca.subject and not served.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(running, ssl.create_default_context(cadata=running.ca_pem.decode()), "kubernetes.default")


def test_tls_older_than_1_2_is_refused(sandbox):
    context = ssl.create_default_context(cadata=sandbox.sandbox.ca_pem.decode())
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client itself would speak TLS 1.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        handshake(sandbox.sandbox, context, "127.0.0.1")


def test_ca_file_is_private_holds_no_key_and_is_removed_at_stop(sandbox):
    with Sandbox() as running:
        ca_file = running.ca_file
        assert ca_file.read_bytes() == running.ca_pem != sandbox.sandbox.ca_pem  # a CA per sandbox
        assert ca_file.stat().st_mode & 0o777 == 0o600 and ca_file.parent.stat().st_mode & 0o777 == 0o700
        assert os.listdir(ca_file.parent) == ["ca.crt"]  # the server key is not left on disk
    assert not ca_file.parent.exists()
    with pytest.raises(SandboxError, match="no certificate authority until it starts"):
        running.ca_pem


def test_kubernetes_client_verifies_the_server_certificate(sandbox, foreign_ca, tmp_path):
    trusted = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    assert trusted.read_namespace("default").metadata.name == "default"
    foreign = trusting(sandbox.kubeconfig, foreign_ca, tmp_path / "foreign")
    untrusted = client.CoreV1Api(config.new_client_from_config(str(foreign)))
    with pytest.raises(urllib3.exceptions.MaxRetryError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusted.read_namespace("default", _request_timeout=10)


def test_kubectl_verifies_the_server_certificate(sandbox, foreign_ca, tmp_path):
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is not on PATH (.ci/run installs it)"

    def get_default_namespace(kubeconfig: Path) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBECACHEDIR=str(tmp_path / "cache"))
        return subprocess.run([kubectl, "get", "namespace", "default", "-o", "name"], env=env,
                              capture_output=True, text=True, timeout=60)

    assert get_default_namespace(sandbox.kubeconfig).stdout == "namespace/default\n"
    refused = get_default_namespace(trusting(sandbox.kubeconfig, foreign_ca, tmp_path / "foreign"))
    assert refused.returncode == 1
    assert "x509: certificate signed by unknown authority" in refused.stderr


def test_apply_creates_then_replaces(sandbox, make_namespace):
    namespace = make_namespace()
    manifest = f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {namespace}}}
data: {{mode: "1"}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: runner, namespace: {namespace}}}
"""
    created = sandbox.sandbox.apply(manifest)
    assert [obj["kind"] for obj in created] == ["ConfigMap", "ServiceAccount"]
    replaced = sandbox.sandbox.apply(manifest.replace('mode: "1"', 'mode: "2"'))
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    assert core.read_namespaced_config_map("settings", namespace).data == {"mode": "2"}
    assert replaced[0]["metadata"]["uid"] == created[0]["metadata"]["uid"]


def test_apply_goes_through_admission(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(enforce="baseline")
    manifest = tmp_path / "priv.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "priv", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "i", "securityContext": {"privileged": True}}]},
    }))
    with pytest.raises(SandboxError, match=r'pods "priv" is forbidden: violates PodSecurity "baseline:latest"'):
        sandbox.sandbox.apply(manifest)
    with pytest.raises(SandboxError, match=r"Widget in example\.com/v1 is not served by the sandbox"):
        sandbox.sandbox.apply("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")


def test_only_loopback_addresses(sandbox):
    with pytest.raises(ValueError, match="loopback"):
        Sandbox(host="0.0.0.0")
    with pytest.raises(SandboxError, match=rf"^port {sandbox.sandbox.port} on 127.0.0.1 is already in use$"):
        Sandbox(port=sandbox.sandbox.port).start()


def test_foreground_run_serves_until_sigterm(tmp_path):
    namespace = f"scenario-{uuid.uuid4().hex[:6]}"
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n")
    kubeconfig = tmp_path / "sandbox.kubeconfig"
    process = subprocess.Popen([sys.executable, "-c", FOREGROUND, "0", str(kubeconfig), str(scenario)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = [process.stdout.readline() for _ in range(4)]
        assert banner[0].startswith("kirvis sandbox: Kubernetes API emulator at https://127.0.0.1:")
        assert banner[1] == f"kubeconfig: {kubeconfig}\n"
        assert banner[3] == f"  export KUBECONFIG={kubeconfig}\n"
        core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        assert core.read_namespace(namespace).metadata.name == namespace
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert stdout.endswith("kirvis sandbox: stopped\n")
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    assert token not in stdout + stderr


def test_foreground_run_with_a_busy_port_fails_in_one_line(sandbox, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", FOREGROUND, str(sandbox.sandbox.port), str(tmp_path / "kubeconfig")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == f"kirvis sandbox: port {sandbox.sandbox.port} on 127.0.0.1 is already in use\n"


def test_the_collector_is_paced_for_a_large_store_while_sandboxes_run_and_put_back_after():
    import gc

    from chaoskirvis.sandbox.gc_tuning import SANDBOX_GEN0_THRESHOLD

    before = gc.get_threshold()
    first, second = Sandbox().start(), Sandbox().start()
    try:
        assert gc.get_threshold()[0] == max(before[0], SANDBOX_GEN0_THRESHOLD)
        first.stop()
        assert gc.get_threshold()[0] == max(before[0], SANDBOX_GEN0_THRESHOLD)  # one still runs
    finally:
        first.stop()
        second.stop()
    assert gc.get_threshold() == before
