"""csr-client-certificate: a team identity minting itself a client certificate through a CertificateSigningRequest.

Acted against the sandbox's certificates.k8s.io (its RBAC, its CSR admission plugins, its
kubernetes.io/kube-apiserver-client signer), with the real `chaos` CLI and the activities. Kubernetes' answers
are the reference: RBAC's 403 names the identity on the create or on the approval; the CertificateApproval
plugin refuses an approver without `approve` on the signer (`user not permitted to approve requests with
signerName "..."`); CertificateSubjectRestriction refuses O=system:masters at create.
"""
from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from chaoskirvis.admission import issued_certificate
from chaoskirvis.client import kube_api
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.refs import CERTIFICATE_SIGNING_REQUEST, ObjectRef
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.rbac.actions import inject_identity_technique
from chaoskirvis.rbac.probes import identity_technique_admission
from chaoskirvis.sandbox.server import Sandbox
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos
from identities import limited_user

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = EXPERIMENTS / "identity" / "team-cannot-issue-itself-a-client-certificate.yaml"
TECHNIQUE = "csr-client-certificate"
TEAM_APP = "system:serviceaccount:team-a:app"
GRANTED_APP = "system:serviceaccount:granted-a:app"
# What would betray the key or the certificate in a journal: PEM armour, and base64 of it ("-----BEGIN").
SECRET_MARKS = ("PRIVATE KEY", "BEGIN CERTIFICATE", "LS0tLS1CRUdJTi")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[Sandbox, Path]]:
    """A sandbox of its own with both identity scenarios applied."""
    with Sandbox() as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path_factory.mktemp("csr") / "kubeconfig")
        for name in ("identity-least-privilege.yaml", "identity-over-granted.yaml"):
            sandbox.apply(ROOT / "scenarios" / name)
        yield sandbox, kubeconfig


@pytest.fixture(scope="module")
def admin(cluster) -> client.ApiClient:
    return config.new_client_from_config(str(cluster[1]))


@pytest.fixture
def activity(cluster) -> Iterator[dict]:
    """Arguments for activities called in this process as one fresh run, restored afterwards."""
    run_id = new_run_id()
    reset_run_id(run_id)
    arguments = {"configuration": {"kirvis_run_id": run_id}, "secrets": {"KUBECONFIG": str(cluster[1])}}
    yield arguments
    restore_run(**arguments)
    reset_run_id()


def csrs_of(admin: client.ApiClient, run_id: str) -> list[str]:
    listed = client.CertificatesV1Api(admin).list_certificate_signing_request(
        label_selector=f"chaoskirvis.io/run-id={run_id}")
    return [csr.metadata.name for csr in listed.items]


def attempt_of(run) -> dict:
    (outcome,) = [r["output"] for r in run.journal["run"] if r["activity"]["type"] == "action"
                  and isinstance(r.get("output"), dict)]
    return outcome


def issued(admin: client.ApiClient, name: str) -> x509.Certificate:
    csr = client.CertificatesV1Api(admin).read_certificate_signing_request(name)
    assert csr.status.certificate, csr.status
    return x509.load_pem_x509_certificate(base64.b64decode(csr.status.certificate))


def test_held_with_least_privilege_and_a_weakness_when_over_granted(cluster, admin, tmp_path):
    _, kubeconfig = cluster
    held = run_chaos(EXPERIMENT, tmp_path, kubeconfig)
    weak = run_chaos(EXPERIMENT, tmp_path, kubeconfig, variables={"namespace": "granted-a"})

    assert (held.exit_code, held.journal["status"], held.journal["deviated"]) == (0, "completed", False), held.output
    blocked = attempt_of(held)
    assert (blocked["outcome"], blocked["answered_by"], blocked["step"]) == ("blocked", "RBAC", "create"), blocked
    assert (f'User "{TEAM_APP}" cannot create resource "certificatesigningrequests" in API group '
            '"certificates.k8s.io" at the cluster scope') in blocked["message"]
    assert "certificate" not in blocked

    assert (weak.exit_code, weak.journal["deviated"]) == (1, True), weak.output
    allowed = attempt_of(weak)
    assert (allowed["outcome"], allowed["kind"], allowed["as"]["user"]) == (
        "allowed", "CertificateSigningRequest", GRANTED_APP), allowed
    run_id = weak.journal["chaoskirvis"]["run_id"]
    assert allowed["name"].startswith(f"kirvis-{run_id}-")
    assert allowed["certificate"]["subject"] == f"CN={allowed['name']}"  # CN names the run, no O by default
    assert re.fullmatch(r"[0-9a-f]+", allowed["certificate"]["serial"])
    for run in (held, weak):
        assert csrs_of(admin, run.journal["chaoskirvis"]["run_id"]) == []
        journal = json.dumps(run.journal)
        assert not [mark for mark in SECRET_MARKS if mark in journal]


def test_the_certificate_is_the_identitys_own_request_and_restore_deletes_it(admin, activity):
    """The CSR carries the run's marks and the identity as its requester; the serial in the outcome is the
    certificate the signer issued; restore deletes the request."""
    outcome = inject_identity_technique("granted-a", TECHNIQUE, options={"organizations": ["kirvis-auditors"]},
                                        as_service_account="granted-a/app", **activity)
    run_id = activity["configuration"]["kirvis_run_id"]
    assert outcome["outcome"] == "allowed", outcome
    csr = client.CertificatesV1Api(admin).read_certificate_signing_request(outcome["name"])
    assert csr.metadata.labels["chaoskirvis.io/run-id"] == run_id
    assert csr.metadata.labels["app.kubernetes.io/managed-by"] == "chaoskirvis"
    assert csr.spec.username == GRANTED_APP  # the registry writes who created it
    assert (csr.spec.signer_name, csr.spec.usages, csr.spec.expiration_seconds) == (
        "kubernetes.io/kube-apiserver-client", ["client auth"], 600)
    assert [(c.type, c.status) for c in csr.status.conditions] == [("Approved", "True")]
    certificate = issued(admin, outcome["name"])
    assert f"{certificate.serial_number:x}" == outcome["certificate"]["serial"]
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "kirvis-auditors"
    assert outcome["certificate"]["subject"] == certificate.subject.rfc4514_string()
    assert not [mark for mark in SECRET_MARKS if mark in json.dumps(outcome)]

    restore_run(**activity)

    assert csrs_of(admin, run_id) == []
    with pytest.raises(ApiException) as gone:
        client.CertificatesV1Api(admin).read_certificate_signing_request(outcome["name"])
    assert gone.value.status == 404


@pytest.mark.parametrize("rules, refusal", [
    ([{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create"]}],
     'User "kirvis-csr-maker" cannot update resource "certificatesigningrequests/approval" in API group '
     '"certificates.k8s.io" at the cluster scope'),
    ([{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create"]},
      {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"],
       "verbs": ["update"]}],
     'is forbidden: user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client"'),
], ids=["no-update-on-approval", "no-approve-on-the-signer"])
def test_an_approval_refused_to_the_identity_is_blocked_and_its_request_restored(admin, activity, rules, refusal):
    rbac = client.RbacAuthorizationV1Api(admin)
    name = "kirvis-csr-maker"
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding({"metadata": {"name": name}, "subjects": [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}})
    try:
        outcome = inject_identity_technique("team-a", TECHNIQUE, as_user=name, **activity)
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)
    assert (outcome["outcome"], outcome["answered_by"], outcome["step"]) == ("blocked", "RBAC", "approval"), outcome
    assert outcome["status"] == 403 and refusal in outcome["message"], outcome["message"]
    assert "certificate" not in outcome
    run_id = activity["configuration"]["kirvis_run_id"]
    assert csrs_of(admin, run_id) == [outcome["name"]]  # created, not approved: restore's to delete

    restore_run(**activity)

    assert csrs_of(admin, run_id) == []


def test_system_masters_is_refused_by_the_subject_restriction(admin, activity):
    outcome = inject_identity_technique("granted-a", TECHNIQUE, options={"organizations": ["system:masters"]},
                                        as_service_account="granted-a/app", **activity)
    assert (outcome["outcome"], outcome["answered_by"], outcome["step"]) == (
        "blocked", "CertificateSubjectRestriction", "create"), outcome
    assert outcome["message"].endswith(
        "is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed")
    assert csrs_of(admin, activity["configuration"]["kirvis_run_id"]) == []


@pytest.fixture(scope="module")
def limited_runner(cluster, admin, tmp_path_factory) -> Path:
    """The kubeconfig of a runner that may write its record and manage CSRs, but not impersonate."""
    sandbox, _ = cluster
    return limited_user(sandbox, admin, "kirvis-csr-runner-no-impersonate", [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch", "get", "list", "delete"]},
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
         "verbs": ["create", "get", "delete"]}], tmp_path_factory.mktemp("csr-runner") / "kubeconfig")


def test_an_impersonation_the_runner_may_not_make_is_an_error(admin, limited_runner, tmp_path):
    done = run_chaos(EXPERIMENT, tmp_path, limited_runner)

    assert done.exit_code == 1 and done.journal["status"] == "failed", done.output
    assert done.journal["chaoskirvis"]["verdict"]["result"] == "error", done.journal["chaoskirvis"]["verdict"]
    (outcome,) = done.journal["chaoskirvis"]["outcomes"]
    assert outcome["outcome"] == "error", outcome
    assert ('User "kirvis-csr-runner-no-impersonate" cannot impersonate resource "serviceaccounts"'
            in outcome["message"]), outcome["message"]
    assert csrs_of(admin, done.journal["chaoskirvis"]["run_id"]) == []


def test_kirvis_cleanup_deletes_the_request_of_a_run_never_restored(cluster, admin, tmp_path):
    """As a run killed before its rollback: its CSR stays until `kirvis cleanup --run-id` finds it (by label)."""
    _, kubeconfig = cluster
    run_id = new_run_id()
    reset_run_id(run_id)
    try:
        outcome = inject_identity_technique("granted-a", TECHNIQUE, as_service_account="granted-a/app",
                                            configuration={"kirvis_run_id": run_id},
                                            secrets={"KUBECONFIG": str(kubeconfig)})
    finally:
        reset_run_id()
    assert outcome["outcome"] == "allowed" and csrs_of(admin, run_id) == [outcome["name"]]

    done = subprocess.run([str(BIN / "kirvis"), "cleanup", "--run-id", run_id], cwd=tmp_path,
                          env=chaos_env(kubeconfig), capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"removing CertificateSigningRequest {outcome['name']}" in done.stdout.splitlines(), done.stdout
    assert csrs_of(admin, run_id) == []


def test_a_probe_cannot_dry_run_an_approval_and_create_and_delete_leaves_nothing(admin, activity):
    with pytest.raises(Exception, match="only a stored request can be approved; use mode create-and-delete"):
        identity_technique_admission("granted-a", TECHNIQUE, as_service_account="granted-a/app", **activity)
    outcome = identity_technique_admission("granted-a", TECHNIQUE, mode="create-and-delete",
                                           as_service_account="granted-a/app", **activity)
    assert (outcome["outcome"], outcome["mode"]) == ("allowed", "create-and-delete"), outcome
    assert csrs_of(admin, activity["configuration"]["kirvis_run_id"]) == []  # before any restore


def test_organizations_must_be_group_names(activity):
    with pytest.raises(Exception, match=r"option organizations must be a list of group names, not \['team', ''\]"):
        inject_identity_technique("granted-a", TECHNIQUE, options={"organizations": ["team", ""]},
                                  as_service_account="granted-a/app", **activity)


def test_the_runner_refused_the_approval_itself_is_an_error_not_a_block(admin, limited_runner, activity):
    """Without an identity the attempt is the runner's: RBAC refusing it the approval is its own missing
    permission; the request it did create is restored all the same."""
    runner = {**activity, "secrets": {"KUBECONFIG": str(limited_runner)}}
    with pytest.raises(Exception, match=r"could not attempt to approve CertificateSigningRequest kirvis-.*: the API "
                                        r"answered 403 Forbidden: .*User \"kirvis-csr-runner-no-impersonate\" cannot "
                                        r"update resource \"certificatesigningrequests/approval\"") as refused:
        inject_identity_technique("team-a", TECHNIQUE, **runner)
    assert "the run's identity lacks permission" in str(refused.value)
    run_id = activity["configuration"]["kirvis_run_id"]
    assert len(csrs_of(admin, run_id)) == 1

    restore_run(**runner)

    assert csrs_of(admin, run_id) == []


def _approved_csr(admin: client.ApiClient, signer: str) -> str:
    """A CSR for `signer`, created and approved by the admin: its name."""
    name = f"kirvis-read-back-{new_run_id()}"
    request = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).sign(
        ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    certificates = client.CertificatesV1Api(admin)
    certificates.create_certificate_signing_request({"metadata": {"name": name}, "spec": {
        "request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
        "signerName": signer, "usages": ["client auth"]}})
    csr = certificates.read_certificate_signing_request(name)
    csr.status.conditions = [client.V1CertificateSigningRequestCondition(type="Approved", status="True")]
    certificates.replace_certificate_signing_request_approval(name, csr)
    return name


def test_a_certificate_the_approval_did_not_carry_is_read_back_until_the_signer_wrote_it(cluster, admin):
    """On a real cluster the signer is a controller: the approval's answer has no certificate yet, and the runner
    reads the request back; a request no signer serves is an error after the wait, never allowed."""
    api = kube_api(None, {"KUBECONFIG": str(cluster[1])})
    signed, pending = (_approved_csr(admin, signer) for signer in ("kubernetes.io/kube-apiserver-client",
                                                                   "example.com/no-signer-runs"))
    try:
        found = issued_certificate(api, ObjectRef(CERTIFICATE_SIGNING_REQUEST, None, signed), {"status": {}})
        assert found == {"subject": f"CN={signed}",
                         "serial": f"{issued(admin, signed).serial_number:x}"}
        with pytest.raises(Exception, match=rf"CertificateSigningRequest {pending} was approved but no certificate "
                                            r"was issued within 0.3 s"):
            issued_certificate(api, ObjectRef(CERTIFICATE_SIGNING_REQUEST, None, pending), {"status": {}},
                               wait_seconds=0.3)
    finally:
        for name in (signed, pending):
            client.CertificatesV1Api(admin).delete_certificate_signing_request(name)
