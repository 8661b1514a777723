"""Guardrail techniques: a change to what exists is put back exactly, also after a SIGKILL, and never over
someone else's change; blocked by RBAC for a team identity and by a ValidatingAdmissionPolicy.

"Exactly" is checked on the stored object as the sandbox answers a GET, before and after, ignoring only what
no client can set: metadata.resourceVersion and managedFields, and for a kind that tracks it
metadata.generation (the API server adds one on every spec change, and a restore is one); a recreated object
also gets a new uid and creationTimestamp (the registry sets them on create:
k8s.io/apiserver registry/rest/create.go, FillObjectMetaSystemFields).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaoskirvis.client import kube_api
from chaoskirvis.guardrails.actions import tamper_guardrail
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.changes import CHANGED_BY_ANNOTATION, content, merge_patch, record_change
from chaoskirvis.ledger.probes import injections_blocked
from chaoskirvis.ledger.refs import NAMESPACE, ObjectRef
from chaoskirvis.ledger.runid import new_run_id
from chaoskirvis.ledger.state import RunState
from chaoskirvis.techniques import CATALOG
from chaosrun import BIN, chaos_env

KIRVIS = str(Path(sys.executable).parent / "kirvis")
GUARDRAILS = [t for t in CATALOG.values() if t.family == "guardrail"]
GROUP = "admissionregistration.k8s.io"
RESTRICTED = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}


def default_deny(name: str) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {
        "name": name, "labels": {"example.com/owner": "platform"}, "annotations": {"example.com/why": "default"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}


class Guarded:
    """The sandbox objects one test guards: a namespace, its default-deny policy, a policy and its binding."""

    def __init__(self, api: client.ApiClient, namespace: str):
        self.api, self.namespace = api, namespace
        self.core = client.CoreV1Api(api)
        self.net = client.NetworkingV1Api(api)
        self.admission = client.AdmissionregistrationV1Api(api)
        self.policy = f"guard-{uuid.uuid4().hex[:8]}"
        self.binding = f"{self.policy}-binding"
        self.core.patch_namespace(namespace, {"metadata": {"labels": RESTRICTED,
                                                           "annotations": {"example.com/team": "a"}}})
        self.net.create_namespaced_network_policy(namespace, default_deny("default-deny"))
        self.admission.create_validating_admission_policy({"metadata": {"name": self.policy}, "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                    "operations": ["CREATE"], "resources": ["services"]}]},
            "validations": [{"expression": "!has(object.spec.type) || object.spec.type != 'NodePort'",
                             "reason": "Forbidden"}]}})
        self.admission.create_validating_admission_policy_binding({"metadata": {
            "name": self.binding, "labels": {"example.com/owner": "platform"}}, "spec": {
            "policyName": self.policy, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}})
        # A policy engine's webhook, fail closed, for pod creates in this namespace only (nothing creates one
        # here: its address answers nothing)
        self.webhook = f"{self.policy}-engine"
        self.admission.create_validating_webhook_configuration({"metadata": {
            "name": self.webhook, "labels": {"example.com/owner": "platform"}}, "webhooks": [{
                "name": "pods.policy-engine.example.com", "failurePolicy": "Fail", "sideEffects": "None",
                "admissionReviewVersions": ["v1"], "clientConfig": {"url": "https://127.0.0.1:9/validate"},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}]})

    def target(self, technique) -> dict:
        """tamper_guardrail's arguments naming the object `technique` changes."""
        if technique.target == "networkpolicy":
            return {"namespace": self.namespace, "name": "default-deny"}
        if technique.target == "validatingadmissionpolicybinding":
            return {"namespace": self.namespace, "name": self.binding}
        if technique.target == "validatingwebhookconfiguration":
            return {"namespace": self.namespace, "name": self.webhook}
        return {"namespace": self.namespace}

    def stored(self, technique) -> dict | None:
        """The target as the sandbox stores it (None when absent)."""
        read = {"namespace": lambda: self.core.read_namespace(self.namespace),
                "networkpolicy": lambda: self.net.read_namespaced_network_policy("default-deny", self.namespace),
                "validatingadmissionpolicybinding":
                    lambda: self.admission.read_validating_admission_policy_binding(self.binding),
                "validatingwebhookconfiguration":
                    lambda: self.admission.read_validating_webhook_configuration(self.webhook)}[technique.target]
        try:
            return self.api.sanitize_for_serialization(read())
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def close(self) -> None:
        for delete in (lambda: self.admission.delete_validating_webhook_configuration(self.webhook),
                       lambda: self.admission.delete_validating_admission_policy_binding(self.binding),
                       lambda: self.admission.delete_validating_admission_policy(self.policy)):
            try:
                delete()
            except client.ApiException as error:
                if error.status != 404:
                    raise


@pytest.fixture
def guarded(api, make_namespace):
    made = Guarded(api, make_namespace())
    yield made
    made.close()


def comparable(obj: dict, recreated: bool = False) -> dict:
    """`obj` without what only the API server sets (see the module docstring)."""
    ignored = {"resourceVersion", "managedFields", "generation"}
    if recreated:
        ignored |= {"uid", "creationTimestamp"}
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k not in ignored}}


def guarded_ref(technique, guarded: Guarded) -> str:
    """How the tool names the target in its output (ObjectRef's str)."""
    if technique.target == "networkpolicy":
        return f"NetworkPolicy default-deny in namespace {guarded.namespace}"
    if technique.target == "validatingadmissionpolicybinding":
        return f"ValidatingAdmissionPolicyBinding {guarded.binding}"
    if technique.target == "validatingwebhookconfiguration":
        return f"ValidatingWebhookConfiguration {guarded.webhook}"
    return f"Namespace {guarded.namespace}"


def records(core, namespace: str, run_id: str) -> list[str]:
    return [m.metadata.name for m in core.list_namespaced_config_map(
        namespace, label_selector=f"chaoskirvis.io/run-id={run_id}").items]


def after_namespace(configuration: dict) -> str:
    """The namespace a test's webhook is for (its namespaceSelector's matchLabels)."""
    return configuration["webhooks"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]


def changed_as_the_technique_says(technique, before: dict, after: dict | None, run_id: str) -> None:
    if technique.apply is None:
        assert after is None
        return
    assert after["metadata"]["annotations"][CHANGED_BY_ANNOTATION] == run_id
    labels, spec = after["metadata"].get("labels") or {}, after.get("spec") or {}
    hook = (after.get("webhooks") or [{}])[0]
    expected = {
        "pod-security-privileged": lambda: labels["pod-security.kubernetes.io/enforce"] == "privileged"
        and labels["pod-security.kubernetes.io/warn"] == "restricted",
        "pod-security-label-removed": lambda: "pod-security.kubernetes.io/enforce" not in labels
        and labels["pod-security.kubernetes.io/audit"] == "restricted",
        "policy-engine-exemption-label": lambda: labels["admission.gatekeeper.sh/ignore"] == "kirvis",
        "network-policy-opened": lambda: spec["ingress"] == [{}] and spec["policyTypes"] == ["Ingress", "Egress"],
        "vap-binding-not-denying": lambda: spec["validationActions"] == ["Warn"],
        "webhook-fail-open": lambda: hook["failurePolicy"] == "Ignore",
        "webhook-namespace-exclusion": lambda: hook["namespaceSelector"]["matchExpressions"] == [{
            "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [after_namespace(after)]}],
    }[technique.id]
    assert expected(), after
    assert after["metadata"]["uid"] == before["metadata"]["uid"]


@pytest.mark.parametrize("technique", GUARDRAILS, ids=lambda t: t.id)
def test_every_guardrail_technique_is_put_back_exactly_and_idempotently(guarded, core, run, technique):
    before = guarded.stored(technique)
    run_id = run["configuration"]["kirvis_run_id"]

    outcome = tamper_guardrail(technique.id, mode="change", **guarded.target(technique), **run)

    assert outcome["outcome"] == "allowed" and outcome["techniques"] == [technique.id]
    changed_as_the_technique_says(technique, before, guarded.stored(technique), run_id)
    assert injections_blocked(**run) is False  # the weakening got through: a weakness
    done = restore_run(**run)
    assert done["restored"] == [outcome["target"]] and done["conflicts"] == [] and done["failed"] == []
    after = guarded.stored(technique)
    assert comparable(after, recreated=technique.apply is None) == comparable(before, recreated=technique.apply is None)
    assert records(core, guarded.namespace, run_id) == []
    assert restore_run(**run)["restored"] == []  # idempotent: nothing is sent twice


def test_a_dry_run_changes_nothing_and_records_nothing(guarded, core, run):
    technique = CATALOG["pod-security-privileged"]
    before = guarded.stored(technique)
    outcome = tamper_guardrail(technique.id, **guarded.target(technique), **run)
    assert outcome["outcome"] == "allowed" and outcome["mode"] == "dry-run"
    assert guarded.stored(technique) == before
    assert records(core, guarded.namespace, run["configuration"]["kirvis_run_id"]) == []


def test_the_target_is_named_never_guessed_and_an_unchanged_weakening_tests_nothing(guarded, make_namespace, run):
    with pytest.raises(ActivityFailed, match="name the NetworkPolicy"):
        tamper_guardrail("network-policy-deleted", guarded.namespace, mode="change", **run)
    with pytest.raises(ActivityFailed, match="does not exist"):
        tamper_guardrail("network-policy-deleted", guarded.namespace, name="absent", mode="change", **run)
    with pytest.raises(ActivityFailed, match="protected"):
        tamper_guardrail("pod-security-privileged", "kube-system", mode="change", **run)
    with pytest.raises(ActivityFailed, match="weakened that way already"):
        tamper_guardrail("pod-security-privileged", make_namespace(enforce="privileged"), mode="change", **run)
    with pytest.raises(ActivityFailed, match="not a guardrail one"):
        tamper_guardrail("privileged", guarded.namespace, **run)


def test_two_changes_of_one_object_are_put_back_to_the_first_original(guarded, run):
    technique = CATALOG["pod-security-privileged"]
    before = guarded.stored(technique)
    tamper_guardrail("pod-security-privileged", guarded.namespace, mode="change", **run)
    tamper_guardrail("policy-engine-exemption-label", guarded.namespace, mode="change", **run)
    restore_run(**run)
    assert comparable(guarded.stored(technique)) == comparable(before)


def slow_experiment(tmp_path: Path, technique, target: dict) -> Path:
    """A chaos experiment whose method changes the guardrail, then pauses (to be killed during the pause)."""
    path = tmp_path / f"{technique.id}.json"
    path.write_text(json.dumps({
        "title": f"{technique.id} is put back after a kill", "description": "killed during its pause",
        "method": [{"type": "action", "name": "tamper", "pauses": {"after": 120}, "provider": {
            "type": "python", "module": "chaoskirvis.guardrails.actions", "func": "tamper_guardrail",
            "arguments": {"technique": technique.id, "mode": "change", **target}}}],
        "rollbacks": [{"type": "action", "name": "restore", "provider": {
            "type": "python", "module": "chaoskirvis.ledger.actions", "func": "restore_run"}}]}))
    return path


@pytest.mark.parametrize("technique", GUARDRAILS, ids=lambda t: t.id)
def test_a_run_killed_right_after_the_change_is_put_back_by_cleanup_from_another_process(
        sandbox, guarded, core, technique, tmp_path):
    before = guarded.stored(technique)
    run_id = new_run_id()
    chaos = subprocess.Popen(
        [str(BIN / "chaos"), "run", str(slow_experiment(tmp_path, technique, guarded.target(technique))),
         "--journal-path", str(tmp_path / "journal.json")],
        cwd=tmp_path, env=chaos_env(sandbox.kubeconfig, KIRVIS_RUN_ID=run_id),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while guarded.stored(technique) == before:
            assert chaos.poll() is None and time.monotonic() < deadline, "the change never happened"
            time.sleep(0.05)
    finally:
        os.kill(chaos.pid, signal.SIGKILL)
        chaos.wait()
    assert records(core, guarded.namespace, run_id) == [f"kirvis-ledger-{run_id}"]
    changed = guarded.stored(technique)
    listing = subprocess.run([KIRVIS, "cleanup", "--run-id", run_id, "--dry-run"], env=chaos_env(sandbox.kubeconfig),
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and f"would put back {guarded_ref(technique, guarded)}" in listing.stdout
    assert guarded.stored(technique) == changed  # a dry run puts nothing back

    done = subprocess.run([KIRVIS, "cleanup", "--run-id", run_id], env=chaos_env(sandbox.kubeconfig),
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"putting back {guarded_ref(technique, guarded)} as the run found it" in done.stdout
    assert f"put back: {guarded_ref(technique, guarded)}" in done.stdout
    recreated = technique.apply is None
    assert comparable(guarded.stored(technique), recreated) == comparable(before, recreated)
    assert records(core, guarded.namespace, run_id) == []


def test_a_change_someone_made_after_the_run_is_reported_and_not_overwritten(sandbox, guarded, core, run):
    namespace, run_id = guarded.namespace, run["configuration"]["kirvis_run_id"]
    tamper_guardrail("pod-security-privileged", namespace, mode="change", **run)
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    theirs = core.read_namespace(namespace).metadata

    with pytest.raises(ActivityFailed, match="someone changed it since the run did"):
        restore_run(**run)

    now = core.read_namespace(namespace).metadata
    assert now.labels == theirs.labels and now.resource_version == theirs.resource_version
    assert records(core, namespace, run_id) == [f"kirvis-ledger-{run_id}"]
    done = subprocess.run([KIRVIS, "cleanup", "--run-id", run_id], env=chaos_env(sandbox.kubeconfig),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"conflict: Namespace {namespace}: someone changed it since the run did" in done.stderr
    wrote = json.loads(done.stderr.split("  run_wrote: ", 1)[1].splitlines()[0])
    current = json.loads(done.stderr.split("  current: ", 1)[1].splitlines()[0])
    assert wrote["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert current["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert core.read_namespace(namespace).metadata.resource_version == theirs.resource_version
    core.delete_namespaced_config_map(f"kirvis-ledger-{run_id}", namespace)  # the person decided


def test_a_deleted_object_someone_created_again_is_reported_and_not_overwritten(sandbox, guarded, core, run):
    namespace, run_id = guarded.namespace, run["configuration"]["kirvis_run_id"]
    tamper_guardrail("network-policy-deleted", namespace, name="default-deny", mode="change", **run)
    theirs = default_deny("default-deny")
    theirs["spec"]["policyTypes"] = ["Ingress"]
    guarded.net.create_namespaced_network_policy(namespace, theirs)

    with pytest.raises(ActivityFailed, match="another object of that name was created since the run deleted it"):
        restore_run(**run)

    assert guarded.net.read_namespaced_network_policy("default-deny", namespace).spec.policy_types == ["Ingress"]
    done = subprocess.run([KIRVIS, "cleanup", "--run-id", run_id], env=chaos_env(sandbox.kubeconfig),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "conflict: NetworkPolicy default-deny" in done.stderr
    core.delete_namespaced_config_map(f"kirvis-ledger-{run_id}", namespace)


def test_a_change_undone_by_someone_else_needs_nothing_more(guarded, core, run):
    """Someone put the label back and dropped our mark: nothing of the run's is left, so no conflict either."""
    namespace = guarded.namespace
    before = guarded.stored(CATALOG["pod-security-privileged"])
    tamper_guardrail("pod-security-privileged", namespace, mode="change", **run)
    core.replace_namespace(namespace, {**before, "metadata": {
        **before["metadata"], "resourceVersion": core.read_namespace(namespace).metadata.resource_version}})
    done = restore_run(**run)
    assert done["unchanged"] == [f"Namespace {namespace}"] and done["restored"] == [] and done["conflicts"] == []


@pytest.mark.parametrize("technique", ["pod-security-privileged", "network-policy-deleted", "vap-binding-deleted",
                                       "webhook-fail-open"])
@pytest.mark.parametrize("mode", ["dry-run", "change"])
def test_a_team_identity_is_refused_by_rbac(scenarios, api, core, technique, mode, run):
    """identity-least-privilege: team-a's app service account holds a Role in team-a on pods, configmaps,
    services and deployments only; namespaces, bindings and webhook configurations are cluster-scoped,
    beyond any Role."""
    net = client.NetworkingV1Api(api)
    admission = client.AdmissionregistrationV1Api(api)
    name = f"deny-{uuid.uuid4().hex[:6]}"
    net.create_namespaced_network_policy("team-a", default_deny(name))
    admission.create_validating_webhook_configuration({"metadata": {"name": name}, "webhooks": [{
        "name": "pods.policy-engine.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "clientConfig": {"url": "https://127.0.0.1:9/validate"}, "rules": [{
            "operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nowhere"}}}]})
    try:
        target = {"pod-security-privileged": {}, "network-policy-deleted": {"name": name},
                  "vap-binding-deleted": {"name": "deny-nodeport-binding"},
                  "webhook-fail-open": {"name": name}}[technique]
        before = core.read_namespace("team-a").metadata.resource_version
        outcome = tamper_guardrail(technique, "team-a", mode=mode, as_service_account="team-a/app", **target, **run)
        assert outcome["outcome"] == "blocked" and outcome["answered_by"] == "RBAC", outcome
        assert outcome["status"] == 403 and "system:serviceaccount:team-a:app" in outcome["message"]
        assert core.read_namespace("team-a").metadata.resource_version == before
        assert injections_blocked(**run) is True
    finally:
        net.delete_namespaced_network_policy(name, "team-a")
        admission.delete_validating_webhook_configuration(name)


def test_the_built_in_edit_role_lets_a_deployer_delete_a_network_policy(scenarios, api, run):
    """Kubernetes' edit ClusterRole grants create, delete, patch... on networkpolicies
    (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go, edit's networking rule): the deployer bound
    to it in team-a may delete the namespace's default-deny. Asked by dry run: nothing is deleted."""
    net = client.NetworkingV1Api(api)
    name = f"deny-{uuid.uuid4().hex[:6]}"
    net.create_namespaced_network_policy("team-a", default_deny(name))
    try:
        outcome = tamper_guardrail("network-policy-deleted", "team-a", name=name,
                                   as_service_account="team-a/deployer", **run)
        assert outcome["outcome"] == "allowed" and outcome["mode"] == "dry-run"
        assert net.read_namespaced_network_policy(name, "team-a").metadata.name == name
    finally:
        net.delete_namespaced_network_policy(name, "team-a")


def test_a_policy_guarding_the_label_blocks_the_runner_too(guarded, core, run):
    """A ValidatingAdmissionPolicy on UPDATE of namespaces that keeps the enforce label as it was (oldObject
    is the stored namespace on an update: the admission docs, "Variables"). The runner may patch namespaces,
    so this is the control that holds; the refused change's record entry is withdrawn, so restore has no change
    to put back (only the record to remove)."""
    admission = guarded.admission
    policy = f"keep-enforce-{uuid.uuid4().hex[:6]}"
    key = "pod-security.kubernetes.io/enforce"
    admission.create_validating_admission_policy({"metadata": {"name": policy}, "spec": {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
                                                "resources": ["namespaces"]}]},
        "validations": [{"expression": f"!has(oldObject.metadata.labels) || !('{key}' in oldObject.metadata.labels) "
                                       f"|| (has(object.metadata.labels) && '{key}' in object.metadata.labels && "
                                       f"object.metadata.labels['{key}'] == oldObject.metadata.labels['{key}'])",
                         "message": "the Pod Security enforce label may not change", "reason": "Forbidden"}]}})
    admission.create_validating_admission_policy_binding({"metadata": {"name": policy}, "spec": {
        "policyName": policy, "validationActions": ["Deny"],
        "matchResources": {"objectSelector": {"matchLabels": {"kubernetes.io/metadata.name": guarded.namespace}}}}})
    try:
        before = guarded.stored(CATALOG["pod-security-privileged"])
        for technique in ("pod-security-privileged", "pod-security-label-removed"):
            outcome = tamper_guardrail(technique, guarded.namespace, mode="change", **run)
            assert outcome["outcome"] == "blocked", outcome
            assert outcome["answered_by"] == f"ValidatingAdmissionPolicy {policy}"
        # the same policy lets an unrelated label through: it guards the label, not the namespace
        allowed = tamper_guardrail("policy-engine-exemption-label", guarded.namespace, mode="dry-run", **run)
        assert allowed["outcome"] == "allowed"
        assert guarded.stored(CATALOG["pod-security-privileged"]) == before
        record = core.read_namespaced_config_map(f"kirvis-ledger-{run['configuration']['kirvis_run_id']}",
                                                 guarded.namespace)
        assert not record.data  # both entries withdrawn
        done = restore_run(**run)
        assert done["restored"] == done["unchanged"] == [] and len(done["records_removed"]) == 1
    finally:
        admission.delete_validating_admission_policy_binding(policy)
        admission.delete_validating_admission_policy(policy)


def test_a_webhook_set_to_fail_open_admits_what_it_denied_until_restore(guarded, core, run):
    """A webhook that cannot be reached fails the request with failurePolicy Fail and is skipped with
    Ignore (k8s.io/apiserver pkg/admission/plugin/webhook/validating/dispatcher.go: an unreachable webhook's
    error is ignored only when its failurePolicy is Ignore)."""
    pod = {"metadata": {"name": "app"}, "spec": {  # restricted-compliant: Pod Security, which runs first, admits it
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}

    def admitted() -> bool:
        try:
            core.create_namespaced_pod(guarded.namespace, pod, dry_run="All")
        except client.ApiException as error:
            assert error.status == 500 and "failed calling webhook" in error.body, error.body
            return False
        return True

    assert not admitted()
    tamper_guardrail("webhook-fail-open", guarded.namespace, name=guarded.webhook, mode="change", **run)
    assert admitted()
    restore_run(**run)
    assert not admitted()


@pytest.mark.parametrize("applied", [False, True], ids=["killed-before-the-patch", "killed-before-its-confirmation"])
def test_every_kill_point_of_a_change_is_recovered_by_cleanup(sandbox, guarded, core, applied):
    """The two points a SIGKILL can fall between the run's writes, made deterministic: the original recorded
    and no patch sent yet (nothing to put back), or the patch (carrying the mark) stored and the entry not yet
    confirmed (put back, judged by what the run intended)."""
    run_id = new_run_id()
    api = kube_api(secrets={"KUBECONFIG": str(sandbox.kubeconfig)})
    ref = ObjectRef(NAMESPACE, None, guarded.namespace, home=guarded.namespace)
    before = guarded.stored(CATALOG["pod-security-privileged"])
    original = api.get(ref.path)
    intended = json.loads(json.dumps(original))
    intended["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    intended["metadata"].setdefault("annotations", {})[CHANGED_BY_ANNOTATION] = run_id
    record_change(api, RunState(run_id), ref, original, intended, technique="pod-security-privileged")
    if applied:
        api.merge_patch(ref.path, merge_patch(content(original), content(intended)))

    done = subprocess.run([KIRVIS, "cleanup", "--run-id", run_id], env=chaos_env(sandbox.kubeconfig),
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stdout + done.stderr
    assert (f"put back: Namespace {guarded.namespace}" if applied
            else f"nothing to put back: Namespace {guarded.namespace}") in done.stdout
    assert comparable(guarded.stored(CATALOG["pod-security-privileged"])) == comparable(before)
    assert records(core, guarded.namespace, run_id) == []


def test_an_expired_runs_change_is_put_back_by_the_next_run_before_its_record_goes(guarded, core, sandbox, run):
    """A killed run's record expires; the next run's sweep in that namespace removes expired records of other
    runs (chaoskirvis.ledger.expiry): the original it holds is put back first, never lost with it."""
    technique = CATALOG["pod-security-privileged"]
    before = guarded.stored(technique)
    killed = {"configuration": {"kirvis_run_id": new_run_id()}, "secrets": run["secrets"]}
    tamper_guardrail(technique.id, guarded.namespace, mode="change", **killed)  # and never restored
    record = f"kirvis-ledger-{killed['configuration']['kirvis_run_id']}"
    core.patch_namespaced_config_map(record, guarded.namespace, {"metadata": {"annotations": {
        "chaoskirvis.io/expires-at": "2000-01-01T00:00:00Z"}}})

    # the next run is another process (a process sweeps a namespace once): a dry run of another technique
    script = ("import sys; from chaoskirvis.guardrails.actions import tamper_guardrail; "
              "tamper_guardrail('network-policy-opened', sys.argv[1], name='default-deny', "
              "configuration={'kirvis_run_id': sys.argv[2]})")
    done = subprocess.run([sys.executable, "-c", script, guarded.namespace, new_run_id()],
                          env=chaos_env(sandbox.kubeconfig), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    assert comparable(guarded.stored(technique)) == comparable(before)
    assert record not in [m.metadata.name for m in core.list_namespaced_config_map(guarded.namespace).items]
