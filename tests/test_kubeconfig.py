"""The kubeconfig cases chaoskirvis reads itself (chaoskirvis.kubeconfig), each against the sandbox.

As kubectl reads them (client-go clientcmd): relative paths are taken from the kubeconfig's folder,
``tokenFile`` is read from the file, ``*-data`` is base64 PEM, ``tls-server-name`` is the name the server
certificate is checked against, and an ``exec`` plugin's ExecCredential (client.authentication.k8s.io/v1)
supplies the token. Each case beside the one that differs only in the thing under test.
"""
from __future__ import annotations

import base64
import datetime
import socket
import socketserver
import stat
import sys
import threading
import uuid

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client as kube_client, config as kube_config

from chaoskirvis.client import kube_api, tls_verified

NAMESPACE = "/api/v1/namespaces/default"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for key in ("KUBECONFIG", "KUBERNETES_HOST", "KUBERNETES_API_KEY", "KUBERNETES_CONTEXT",
                "KUBERNETES_VERIFY_SSL", "CHAOSTOOLKIT_IN_POD", "KIRVIS_REQUEST_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def sandbox_config(sandbox) -> dict:
    return yaml.safe_load(sandbox.kubeconfig.read_text())


def write(path, config: dict):
    path.write_text(yaml.safe_dump(config))
    return {"KUBECONFIG": str(path)}


def users_seen(sandbox, secrets: dict) -> list[str]:
    seen = len(sandbox.sandbox.requests)
    kube_api(secrets=secrets).get(NAMESPACE)
    return [r.user for r in sandbox.sandbox.requests[seen:]]


def test_token_file_and_ca_file_relative_to_the_kubeconfig(sandbox, tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "ca.crt").write_bytes(sandbox.sandbox.ca_pem)
    (folder / "admin.token").write_text(sandbox.sandbox.admin_token + "\n")
    (folder / "viewer.token").write_text(sandbox.sandbox.viewer_token + "\n")
    config = sandbox_config(sandbox)
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    del cluster["certificate-authority-data"], user["token"]
    cluster["certificate-authority"] = "ca.crt"

    user["tokenFile"] = "admin.token"
    assert users_seen(sandbox, write(folder / "admin", config)) == ["sandbox-admin"]
    user["tokenFile"] = "viewer.token"
    assert users_seen(sandbox, write(folder / "viewer", config)) == ["sandbox-viewer"]


def test_a_missing_ca_file_is_named(sandbox, tmp_path):
    config = sandbox_config(sandbox)
    cluster = config["clusters"][0]["cluster"]
    del cluster["certificate-authority-data"]
    cluster["certificate-authority"] = "absent-ca.crt"
    with pytest.raises(ActivityFailed, match=r"unable to read certificate-authority .*absent-ca.crt"):
        kube_api(secrets=write(tmp_path / "kubeconfig", config))


def client_pair(tmp_path, name: str) -> tuple[bytes, bytes]:
    """A self-signed client certificate (CN=name) and its key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def issued_pair(sandbox, name: str) -> tuple[bytes, bytes]:
    """A client certificate (CN=name) that the sandbox's client CA issued through an approved
    CertificateSigningRequest, and its key, PEM; the user may read namespaces (the view ClusterRole)."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).sign(key, hashes.SHA256())
    admin = kube_config.new_client_from_config(str(sandbox.kubeconfig))
    certificates = kube_client.CertificatesV1Api(admin)
    csr_name = f"{name}-{uuid.uuid4().hex[:8]}"
    certificates.create_certificate_signing_request({"metadata": {"name": csr_name}, "spec": {
        "request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
        "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}})
    csr = certificates.read_certificate_signing_request(csr_name)
    csr.status.conditions = [kube_client.V1CertificateSigningRequestCondition(type="Approved", status="True")]
    certificates.replace_certificate_signing_request_approval(csr_name, csr)
    kube_client.RbacAuthorizationV1Api(admin).create_cluster_role_binding({
        "metadata": {"name": csr_name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                    "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}]})
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return base64.b64decode(certificates.read_certificate_signing_request(csr_name).status.certificate), key_pem


@pytest.mark.parametrize("form", ["data", "file"])
def test_client_certificate_and_key_are_loaded_and_a_mismatched_pair_refused(sandbox, tmp_path, form):
    # The sandbox verifies client certificates against its client CA and tries them before the token, so a
    # pair it issued is the user of the requests even beside the admin's token; a key that is not the
    # certificate's must be refused by the client before anything is sent.
    certificate, key = issued_pair(sandbox, "kirvis-client")
    _, other_key = client_pair(tmp_path, "someone-else")
    config = sandbox_config(sandbox)
    user = config["users"][0]["user"]

    def with_pair(cert_pem: bytes, key_pem: bytes, name: str) -> dict:
        if form == "data":
            user["client-certificate-data"] = base64.b64encode(cert_pem).decode()
            user["client-key-data"] = base64.b64encode(key_pem).decode()
        else:
            (tmp_path / f"{name}.crt").write_bytes(cert_pem)
            (tmp_path / f"{name}.key").write_bytes(key_pem)
            user["client-certificate"], user["client-key"] = f"{name}.crt", f"{name}.key"
        return write(tmp_path / name, config)

    assert users_seen(sandbox, with_pair(certificate, key, "right")) == ["kirvis-client"]
    with pytest.raises(ActivityFailed, match=r"cannot use kubeconfig .*wrong.*the client certificate and key are "
                                             r"not a usable pair: .*KEY_VALUES_MISMATCH"):
        kube_api(secrets=with_pair(certificate, other_key, "wrong"))


def test_insecure_skip_tls_verify_reaches_the_sandbox_unverified(sandbox, tmp_path):
    config = sandbox_config(sandbox)
    cluster = config["clusters"][0]["cluster"]
    del cluster["certificate-authority-data"]
    secure = write(tmp_path / "secure", config)
    with pytest.raises(ActivityFailed, match="failed TLS verification"):  # the sandbox CA is in no bundle
        kube_api(secrets=secure).get(NAMESPACE)

    cluster["insecure-skip-tls-verify"] = True
    insecure = write(tmp_path / "insecure", config)
    api = kube_api(secrets=insecure)
    assert tls_verified(api.api_client.configuration) is False
    assert users_seen(sandbox, insecure) == ["sandbox-admin"]


def test_tls_server_name_is_the_name_the_certificate_is_checked_against(sandbox, tmp_path):
    # The sandbox's certificate names its address and "localhost", nothing else.
    config = sandbox_config(sandbox)
    cluster = config["clusters"][0]["cluster"]
    cluster["tls-server-name"] = "localhost"
    assert users_seen(sandbox, write(tmp_path / "localhost", config)) == ["sandbox-admin"]

    cluster["tls-server-name"] = "kubernetes.default.svc"
    seen = len(sandbox.sandbox.requests)
    with pytest.raises(ActivityFailed, match=r"failed TLS verification .*(hostname|match)"):
        kube_api(secrets=write(tmp_path / "other-name", config)).get(NAMESPACE)
    assert sandbox.sandbox.requests[seen:] == []


def test_impersonation_is_refused_rather_than_dropped(sandbox, tmp_path):
    config = sandbox_config(sandbox)
    config["users"][0]["user"]["as"] = "system:serviceaccount:kube-system:default"
    with pytest.raises(ActivityFailed, match=r"impersonation .* is not supported"):
        kube_api(secrets=write(tmp_path / "kubeconfig", config))


def exec_plugin(tmp_path, token: str):
    """A credential plugin printing an ExecCredential with `token` (client.authentication.k8s.io/v1)."""
    script = tmp_path / "credential-plugin"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": token}}
    script.write_text(f"#!{sys.executable}\nimport json\nprint(json.dumps({credential!r}))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script), "interactiveMode": "Never"}


def test_exec_plugin_supplies_the_token(sandbox, tmp_path):
    config = sandbox_config(sandbox)
    user = config["users"][0]["user"]
    del user["token"]
    user["exec"] = exec_plugin(tmp_path / "", sandbox.sandbox.viewer_token)
    assert users_seen(sandbox, write(tmp_path / "viewer", config)) == ["sandbox-viewer"]

    (tmp_path / "admin").mkdir()
    user["exec"] = exec_plugin(tmp_path / "admin", sandbox.sandbox.admin_token)
    assert users_seen(sandbox, write(tmp_path / "admin.kubeconfig", config)) == ["sandbox-admin"]


def test_exec_plugin_failure_is_named(sandbox, tmp_path):
    config = sandbox_config(sandbox)
    user = config["users"][0]["user"]
    del user["token"]
    user["exec"] = {"apiVersion": "client.authentication.k8s.io/v1", "command": "false", "interactiveMode": "Never"}
    with pytest.raises(ActivityFailed, match=r"cannot use kubeconfig .*gave no credential: exec: process returned 1"):
        kube_api(secrets=write(tmp_path / "kubeconfig", config))


def test_first_file_wins_for_current_context_and_names(sandbox, tmp_path):
    # kubectl's merge: the first file to set current-context, or to define a name, wins.
    admin = sandbox_config(sandbox)
    viewer = yaml.safe_load(sandbox.sandbox.write_kubeconfig(tmp_path / "viewer-source", user="viewer").read_text())
    viewer["users"][0]["name"] = admin["users"][0]["name"]  # same names, the viewer's token
    viewer["contexts"][0]["context"]["user"] = admin["users"][0]["name"]
    write(tmp_path / "first", admin)
    write(tmp_path / "second", viewer)
    assert users_seen(sandbox, {"KUBECONFIG": f"{tmp_path / 'first'}:{tmp_path / 'second'}"}) == ["sandbox-admin"]
    assert users_seen(sandbox, {"KUBECONFIG": f"{tmp_path / 'second'}:{tmp_path / 'first'}"}) == ["sandbox-viewer"]


class ConnectProxy:
    """A forward proxy that tunnels HTTP CONNECT (as an HTTPS proxy-url is used), recording each target."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        proxy = self

        class Tunnel(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = self.rfile.readline().decode("latin-1").split()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                if len(request) < 2 or request[0] != "CONNECT":
                    self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                proxy.targets.append(request[1])
                host, port = request[1].rsplit(":", 1)
                with socket.create_connection((host, int(port))) as upstream:
                    self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    self.wfile.flush()
                    pipes = [threading.Thread(target=_pipe, args=(self.connection, upstream), daemon=True),
                             threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True)]
                    for pipe in pipes:
                        pipe.start()
                    for pipe in pipes:
                        pipe.join(10)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def test_proxy_url_tunnels_the_requests(sandbox, tmp_path):
    proxy = ConnectProxy()
    try:
        config = sandbox_config(sandbox)
        config["clusters"][0]["cluster"]["proxy-url"] = proxy.url
        assert users_seen(sandbox, write(tmp_path / "proxied", config)) == ["sandbox-admin"]
        assert proxy.targets == [sandbox.sandbox.url.removeprefix("https://")]
    finally:
        proxy.close()

    config["clusters"][0]["cluster"]["proxy-url"] = proxy.url  # the proxy is gone: nothing else is tried
    with pytest.raises(ActivityFailed, match=r"cannot reach the Kubernetes API server"):
        kube_api(secrets=write(tmp_path / "proxy-gone", config)).get(NAMESPACE)
