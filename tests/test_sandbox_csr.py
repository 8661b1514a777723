"""CertificateSigningRequests and client-certificate authentication, through the real kubernetes client and
kubectl: what kube-apiserver's registry, its CSR admission plugins, kube-controller-manager's
kubernetes.io/kube-apiserver-client signer and its x509 authenticator do (Kubernetes 1.32)."""

from __future__ import annotations

import base64
import datetime
import json
import os
import ssl
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import urllib3
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client, config

SIGNER = "kubernetes.io/kube-apiserver-client"


@pytest.fixture(scope="module")
def certificates(sandbox) -> client.CertificatesV1Api:
    return client.CertificatesV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _request(key: ec.EllipticCurvePrivateKey, common_name: str, *organizations: str) -> str:
    """A PEM certificate request for CN=common_name, O=each organization, base64 as spec.request carries it."""
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject = x509.Name([*names, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    pem = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)
    return base64.b64encode(pem).decode()


def _csr(name: str, request: str, usages: tuple[str, ...] = ("client auth",), signer: str = SIGNER,
         **spec: object) -> dict:
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
            "spec": {"request": request, "signerName": signer, "usages": list(usages), **spec}}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _certificate_kubeconfig(sandbox, path: Path, certificate_pem: bytes, key_pem: bytes) -> Path:
    """A kubeconfig whose user is a client certificate and key (client-certificate-data), and no token."""
    user = {"client-certificate-data": base64.b64encode(certificate_pem).decode(),
            "client-key-data": base64.b64encode(key_pem).decode()}
    cluster = {"server": sandbox.sandbox.url,
               "certificate-authority-data": base64.b64encode(sandbox.sandbox.ca_pem).decode()}
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": "cert-user", "user": user}],
        "contexts": [{"name": "cert", "context": {"cluster": "sandbox", "user": "cert-user"}}],
        "current-context": "cert"}))
    path.chmod(0o600)
    return path


def _message(error: client.ApiException) -> str:
    return json.loads(error.body)["message"]


def _issued(certificates: client.CertificatesV1Api, name: str) -> bytes:
    status = certificates.read_certificate_signing_request(name).status
    assert status.certificate, f"no certificate issued for {name}: {status.conditions}"
    return base64.b64decode(status.certificate)


def test_an_approved_request_is_issued_and_its_certificate_authenticates_as_its_subject_under_rbac(
        sandbox, certificates, kubectl, make_namespace, tmp_path):
    namespace = make_namespace()
    key, name, user = _key(), _name("alice"), _name("alice")
    created = certificates.create_certificate_signing_request(_csr(
        name, _request(key, user, "team-a", "team-b"), ("digital signature", "client auth"),
        expirationSeconds=3600, username="someone-else", groups=["system:masters"]))
    # the registry writes who asked, whatever the client sent, and an empty status
    assert created.spec.username == "sandbox-admin"
    assert created.spec.groups == ["system:masters", "system:authenticated"]
    assert not created.status.conditions and not created.status.certificate
    assert kubectl("get", "csr", name).stdout.split("\n")[1].split()[2:] == [SIGNER, "sandbox-admin", "60m",
                                                                             "Pending"]

    approved = kubectl("certificate", "approve", name)
    assert f"certificatesigningrequest.certificates.k8s.io/{name} approved" in approved.stdout
    condition = certificates.read_certificate_signing_request(name).status.conditions[0]
    assert (condition.type, condition.status, condition.reason) == ("Approved", "True", "KubectlApprove")
    assert condition.last_update_time is not None and condition.last_transition_time is not None
    assert kubectl("get", "csr", name).stdout.split("\n")[1].split()[-1] == "Approved,Issued"

    certificate = x509.load_pem_x509_certificate(_issued(certificates, name))
    client_ca = x509.load_pem_x509_certificate(sandbox.sandbox.client_ca_pem)
    certificate.verify_directly_issued_by(client_ca)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    assert certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.CLIENT_AUTH])
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment
    # an hour is under the signer's 8h horizon: not backdated, valid exactly the requested duration
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == datetime.timedelta(hours=1)

    as_user = _certificate_kubeconfig(sandbox, tmp_path / "alice", certificate.public_bytes(
        serialization.Encoding.PEM), _pem_key(key))
    whoami = yaml.safe_load(kubectl("auth", "whoami", "-o", "yaml", kubeconfig=as_user).stdout)
    assert whoami["status"]["userInfo"]["username"] == user
    assert whoami["status"]["userInfo"]["groups"] == ["team-a", "team-b", "system:authenticated"]
    denied = kubectl("get", "pods", "-n", namespace, kubeconfig=as_user, check=False)
    assert denied.returncode == 1
    assert (f'pods is forbidden: User "{user}" cannot list resource "pods" in API group "" in the namespace '
            f'"{namespace}"') in denied.stderr
    kubectl("create", "rolebinding", "team-a-views", "--clusterrole=view", "--group=team-a", "-n", namespace)
    assert kubectl("get", "pods", "-n", namespace, kubeconfig=as_user).returncode == 0
    assert kubectl("auth", "can-i", "create", "pods", "-n", namespace, kubeconfig=as_user, check=False
                   ).stdout.strip() == "no"


def test_the_real_client_authenticates_with_the_issued_certificate_and_no_token(sandbox, certificates, kubectl,
                                                                             tmp_path):
    key, name, user = _key(), _name("bob"), _name("bob")
    certificates.create_certificate_signing_request(_csr(name, _request(key, user, "auditors")))
    csr = certificates.read_certificate_signing_request(name)
    csr.status.conditions = [client.V1CertificateSigningRequestCondition(
        type="Approved", status="True", reason="TestApprove", message="approved by the test")]
    certificates.replace_certificate_signing_request_approval(name, csr)
    (tmp_path / "bob.crt").write_bytes(_issued(certificates, name))
    (tmp_path / "bob.key").write_bytes(_pem_key(key))
    configuration = client.Configuration()
    configuration.host = sandbox.sandbox.url
    configuration.ssl_ca_cert = str(sandbox.sandbox.ca_file)
    configuration.cert_file, configuration.key_file = str(tmp_path / "bob.crt"), str(tmp_path / "bob.key")
    with client.ApiClient(configuration) as as_bob:
        review = client.AuthenticationV1Api(as_bob).create_self_subject_review({"apiVersion":
                                                                                "authentication.k8s.io/v1"})
        assert review.status.user_info.username == user
        assert review.status.user_info.groups == ["auditors", "system:authenticated"]
        assert review.status.user_info.extra["authentication.kubernetes.io/credential-id"][0].startswith(
            "X509SHA256=")
        with pytest.raises(client.ApiException) as refused:
            client.CoreV1Api(as_bob).list_namespace()
        assert refused.value.status == 403
    # kubectl's flags over the admin's kubeconfig send the certificate and the admin's token: as kube-apiserver
    # tries the x509 authenticator first, the request is the certificate's user
    flags = (f"--client-certificate={tmp_path / 'bob.crt'}", f"--client-key={tmp_path / 'bob.key'}")
    whoami = yaml.safe_load(kubectl("auth", "whoami", "-o", "yaml", *flags).stdout)
    assert whoami["status"]["userInfo"]["username"] == user
    assert kubectl("get", "namespaces", *flags, check=False).returncode == 1


def test_approval_needs_approve_on_the_signer_not_only_update_on_approval(sandbox, certificates, kubectl, tmp_path):
    approver = _name("approver")
    sandbox.sandbox.add_user(approver)
    kubeconfig = sandbox.sandbox.write_kubeconfig(tmp_path / "approver", user=approver)
    role = _name("csr-approval")
    kubectl("create", "clusterrole", role, "--verb=get,list,watch,update",
            "--resource=certificatesigningrequests,certificatesigningrequests/approval")
    kubectl("create", "clusterrolebinding", role, f"--clusterrole={role}", f"--user={approver}")
    name = _name("pending")
    certificates.create_certificate_signing_request(_csr(name, _request(_key(), "carol")))

    refused = kubectl("certificate", "approve", name, kubeconfig=kubeconfig, check=False)
    assert refused.returncode == 1
    assert (f'certificatesigningrequests.certificates.k8s.io "{name}" is forbidden: user not permitted to approve '
            f'requests with signerName "{SIGNER}"') in refused.stderr
    assert not certificates.read_certificate_signing_request(name).status.conditions

    signers = _name("approve-signers")  # signers is no served resource: kubectl create clusterrole refuses it
    rbac = client.RbacAuthorizationV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    rbac.create_cluster_role({"metadata": {"name": signers}, "rules": [{
        "apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"],
        "resourceNames": ["kubernetes.io/*"]}]})  # the DOMAIN/* form the plugin also checks
    kubectl("create", "clusterrolebinding", signers, f"--clusterrole={signers}", f"--user={approver}")
    kubectl("certificate", "approve", name, kubeconfig=kubeconfig)
    assert _issued(certificates, name)


def test_a_denied_request_is_never_issued(certificates, kubectl):
    name = _name("denied")
    certificates.create_certificate_signing_request(_csr(name, _request(_key(), "mallory")))
    denied = kubectl("certificate", "deny", name)
    assert f"certificatesigningrequest.certificates.k8s.io/{name} denied" in denied.stdout
    status = certificates.read_certificate_signing_request(name).status
    assert [(c.type, c.reason) for c in status.conditions] == [("Denied", "KubectlDeny")]
    assert not status.certificate
    assert kubectl("get", "csr", name).stdout.split("\n")[1].split()[-1] == "Denied"
    assert "is already Denied" in kubectl("certificate", "approve", name, check=False).stderr  # kubectl's own check
    csr = certificates.read_certificate_signing_request(name)  # past kubectl, the API server refuses it too
    csr.status.conditions.append(client.V1CertificateSigningRequestCondition(type="Approved", status="True"))
    with pytest.raises(client.ApiException) as refused:
        certificates.replace_certificate_signing_request_approval(name, csr)
    assert refused.value.status == 422
    # kube-apiserver prefixes the qualified kind (CertificateSigningRequest.certificates.k8s.io); the field error:
    assert _message(refused.value).endswith(
        f'"{name}" is invalid: status.conditions[1].type: Invalid value: "Approved": '
        "Approved and Denied conditions are mutually exclusive")
    csr.status.conditions = []
    with pytest.raises(client.ApiException) as removed:
        certificates.replace_certificate_signing_request_approval(name, csr)
    assert 'status.conditions: Forbidden: updates may not remove a condition of type "Denied"' in _message(
        removed.value)


def test_requests_are_validated_as_the_registry_does(certificates):
    cases = [
        (_csr(_name("bad-pem"), base64.b64encode(b"not a certificate request").decode()),
         "spec.request: Invalid value: []byte{0x6e, 0x6f, 0x74, ", "PEM block type must be CERTIFICATE REQUEST"),
        (_csr(_name("no-signer"), _request(_key(), "x"), signer=""), "spec.signerName: Required value", ""),
        (_csr(_name("short-signer"), _request(_key(), "x"), signer="example/x"),
         'spec.signerName: Invalid value: "example": should be a domain with at least two segments separated by dots',
         ""),
        (_csr(_name("legacy"), _request(_key(), "x"), signer="kubernetes.io/legacy-unknown"),
         'spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is not allowed via '
         "this API version", ""),
        (_csr(_name("short"), _request(_key(), "x"), expirationSeconds=599),
         "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)",
         ""),
        (_csr(_name("bad-usage"), _request(_key(), "x"), ("client auth", "flying")),
         'spec.usages[1]: Unsupported value: "flying": supported values: "any", "cert sign", ', ""),
        (_csr(_name("no-usage"), _request(_key(), "x"), ()), "spec.usages: Required value", ""),
    ]
    for body, expected, detail in cases:
        with pytest.raises(client.ApiException) as refused:
            certificates.create_certificate_signing_request(body)
        assert refused.value.status == 422, body["metadata"]["name"]
        assert refused.value.reason == "Unprocessable Entity"
        assert expected in _message(refused.value) and detail in _message(refused.value)
    names = {item.metadata.name for item in certificates.list_certificate_signing_request().items}
    assert not names & {body["metadata"]["name"] for body, _, _ in cases}


def test_a_kube_apiserver_client_request_may_not_ask_for_system_masters(certificates):
    name = _name("masters")
    with pytest.raises(client.ApiException) as refused:
        certificates.create_certificate_signing_request(_csr(name, _request(_key(), "eve", "system:masters")))
    assert refused.value.status == 403
    assert _message(refused.value) == (f'certificatesigningrequests.certificates.k8s.io "{name}" is forbidden: use '
                                       f"of {SIGNER} signer with system:masters group is not allowed")


def test_usages_the_signer_does_not_issue_fail_and_other_signers_stay_pending(certificates, kubectl):
    server_auth, custom = _name("server-auth"), _name("custom")
    certificates.create_certificate_signing_request(_csr(server_auth, _request(_key(), "x"),
                                                         ("client auth", "server auth")))
    certificates.create_certificate_signing_request(_csr(custom, _request(_key(), "x"),
                                                         signer="example.com/custom"))
    kubectl("certificate", "approve", server_auth, custom)
    failed = certificates.read_certificate_signing_request(server_auth).status
    assert [(c.type, c.reason, c.message) for c in failed.conditions][1:] == [
        ("Failed", "SignerValidationFailure", "invalid usage for client certificate: server auth")]
    assert not failed.certificate
    assert kubectl("get", "csr", server_auth).stdout.split("\n")[1].split()[-1] == "Approved,Failed"
    pending = certificates.read_certificate_signing_request(custom).status
    assert [c.type for c in pending.conditions] == ["Approved"] and not pending.certificate


def test_a_certificate_from_another_ca_is_not_accepted(sandbox, tmp_path):
    """Signed by a CA of its own for the admin's name and system:masters: the handshake refuses it (Python's
    ssl verifies the certificates it asks for; kube-apiserver would answer 401), so no request is served."""
    impostor_key, key = _key(), _key()
    now = datetime.datetime.now(datetime.UTC)
    forged = (x509.CertificateBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
        x509.NameAttribute(NameOID.COMMON_NAME, "sandbox-admin")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kirvis-sandbox-client-ca")]))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(impostor_key, hashes.SHA256()))
    (tmp_path / "forged.crt").write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "forged.key").write_bytes(_pem_key(key))
    seen = len(sandbox.sandbox.requests)
    configuration = client.Configuration()
    configuration.host = sandbox.sandbox.url
    configuration.ssl_ca_cert = str(sandbox.sandbox.ca_file)
    configuration.cert_file, configuration.key_file = str(tmp_path / "forged.crt"), str(tmp_path / "forged.key")
    configuration.retries = False
    with client.ApiClient(configuration) as forged_client:
        with pytest.raises(urllib3.exceptions.HTTPError):  # the TLS alert or the closed connection, never an answer
            client.CoreV1Api(forged_client).list_namespace()
    context = ssl.create_default_context(cafile=sandbox.sandbox.ca_file)
    context.load_cert_chain(tmp_path / "forged.crt", tmp_path / "forged.key")
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(sandbox.sandbox.url + "/api/v1/namespaces", timeout=10, context=context).read()
    assert [entry for entry in sandbox.sandbox.requests[seen:] if entry.path == "/api/v1/namespaces"] == []


def test_a_signer_writes_the_certificate_through_status_with_sign_on_the_signer_and_only_once(
        sandbox, certificates, kubectl, tmp_path):
    """An external signer (example.com/custom: none runs in the sandbox) issues through the status subresource."""
    name, key = _name("external"), _key()
    certificates.create_certificate_signing_request(_csr(name, _request(key, "dave"), signer="example.com/custom"))
    kubectl("certificate", "approve", name)
    csr = certificates.read_certificate_signing_request(name)
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(x509.load_pem_x509_certificate(
        sandbox.sandbox.client_ca_pem).public_bytes(serialization.Encoding.DER)) + b"-----END CERTIFICATE-----\n"
    csr.status.certificate = base64.b64encode(pem).decode()

    signer_user = _name("signer")
    sandbox.sandbox.add_user(signer_user)
    role = _name("csr-status")
    kubectl("create", "clusterrole", role, "--verb=get,update",
            "--resource=certificatesigningrequests,certificatesigningrequests/status")
    kubectl("create", "clusterrolebinding", role, f"--clusterrole={role}", f"--user={signer_user}")
    as_signer = client.CertificatesV1Api(config.new_client_from_config(str(
        sandbox.sandbox.write_kubeconfig(tmp_path / "signer", user=signer_user))))
    with pytest.raises(client.ApiException) as refused:
        as_signer.replace_certificate_signing_request_status(name, csr)
    assert refused.value.status == 403
    assert _message(refused.value) == (f'certificatesigningrequests.certificates.k8s.io "{name}" is forbidden: user '
                                       'not permitted to sign requests with signerName "example.com/custom"')

    written = certificates.replace_certificate_signing_request_status(name, csr)  # the admin may sign anything
    assert base64.b64decode(written.status.certificate) == pem
    assert [c.type for c in written.status.conditions] == ["Approved"]  # status keeps the approval as it was
    assert kubectl("get", "csr", name).stdout.split("\n")[1].split()[-1] == "Approved,Issued"
    csr = certificates.read_certificate_signing_request(name)
    csr.status.certificate = base64.b64encode(pem + pem).decode()
    with pytest.raises(client.ApiException) as again:
        certificates.replace_certificate_signing_request_status(name, csr)
    assert _message(again.value).endswith(
        "status.certificate: Forbidden: updates may not modify existing certificate content")
    csr.status.certificate = None
    csr.status.conditions = []
    csr.spec.username = "someone-else"
    kept = certificates.replace_certificate_signing_request(name, csr)  # the main resource changes metadata only
    assert kept.spec.username == "sandbox-admin" and kept.status.certificate and kept.status.conditions


def test_csrs_are_listed_by_signer_and_discovered_with_their_subresources(certificates, kubectl):
    mine, other = _name("by-signer"), _name("by-signer")
    certificates.create_certificate_signing_request(_csr(mine, _request(_key(), "x"), signer="example.com/listed"))
    certificates.create_certificate_signing_request(_csr(other, _request(_key(), "x")))
    selected = kubectl("get", "csr", "--field-selector", "spec.signerName=example.com/listed", "-o", "name")
    assert selected.stdout.split() == [f"certificatesigningrequest.certificates.k8s.io/{mine}"]
    resources = json.loads(kubectl("get", "--raw", "/apis/certificates.k8s.io/v1").stdout)["resources"]
    assert [(r["name"], r["namespaced"], r["kind"]) for r in resources] == [
        (f"certificatesigningrequests{sub}", False, "CertificateSigningRequest")
        for sub in ("", "/approval", "/status")]
    assert [r["verbs"] for r in resources[1:]] == [["get", "patch", "update"]] * 2
    assert resources[0]["shortNames"] == ["csr"]
    assert {"create", "delete", "get", "list", "patch", "update", "watch"} <= set(resources[0]["verbs"])
