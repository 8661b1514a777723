"""Admission webhooks in the sandbox, through the real `kubernetes` client and real `kubectl`, against the test
webhook of tests/webhook_server.py (a policy engine denying privileged containers).

What Kubernetes does is taken from kube-apiserver 1.32's
staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/ (generic/webhook.go ShouldCallHook,
validating/dispatcher.go and mutating/dispatcher.go callHook, errors/statuserror.go ToStatusErr,
request/admissionreview.go CreateV1AdmissionReview and VerifyAdmissionResponse), util/webhook/error.go
(ErrCallingWebhook), pkg/apis/admissionregistration/v1/defaults.go and validation/validation.go, and the
"Dynamic Admission Control" documentation page. Webhooks apply cluster-wide, so this module runs its own
sandbox and removes every configuration after each test.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.stream import stream

from chaoskirvis.admission import answered_by
from chaoskirvis.sandbox.server import Sandbox
from tests.webhook_server import WebhookServer

PRIVILEGED = {"name": "app", "image": "registry.k8s.io/pause", "securityContext": {"privileged": True}}
PLAIN = {"name": "app", "image": "registry.k8s.io/pause"}


@pytest.fixture(scope="module")
def webhook_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    with Sandbox() as running:
        yield running, running.write_kubeconfig(tmp_path_factory.mktemp("webhooks") / "kubeconfig")


@pytest.fixture(scope="module")
def api(webhook_sandbox: tuple[Sandbox, Path]) -> client.ApiClient:
    return config.new_client_from_config(str(webhook_sandbox[1]))


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def registration(api: client.ApiClient) -> Iterator[client.AdmissionregistrationV1Api]:
    """The admissionregistration API; every webhook configuration is deleted after the test."""
    admission_api = client.AdmissionregistrationV1Api(api)
    yield admission_api
    for item in admission_api.list_validating_webhook_configuration().items:
        admission_api.delete_validating_webhook_configuration(item.metadata.name)
    for item in admission_api.list_mutating_webhook_configuration().items:
        admission_api.delete_mutating_webhook_configuration(item.metadata.name)


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with WebhookServer(dns_names=("policy-svc.policy.svc",), mutate_label=("policy.kirvis.test/seen", "yes")) as server:
        yield server


@pytest.fixture
def namespace(core: client.CoreV1Api, registration: client.AdmissionregistrationV1Api) -> Iterator[Callable[..., str]]:
    """namespace(**labels) -> name: a new namespace, deleted after the test (after its webhooks are gone)."""
    created: list[str] = []

    def make(**labels: str) -> str:
        name = f"wh-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name, "labels": labels}})
        created.append(name)
        return name

    yield make
    for item in registration.list_validating_webhook_configuration().items:
        registration.delete_validating_webhook_configuration(item.metadata.name)
    for item in registration.list_mutating_webhook_configuration().items:
        registration.delete_mutating_webhook_configuration(item.metadata.name)
    for name in created:
        core.delete_namespace(name)


def pod(name: str, container: dict[str, Any] = PRIVILEGED, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [dict(container)]}}


def refusal(call: Callable[[], Any]) -> tuple[int, dict[str, Any], Any]:
    """(status, Status body, headers) of a call that must be refused."""
    with pytest.raises(client.ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body), caught.value.headers


def configure(registration: client.AdmissionregistrationV1Api, configuration: dict[str, Any]) -> None:
    registration.create_validating_webhook_configuration(configuration)


def raw_create(sandbox: Sandbox, configuration: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST a configuration as written (the kubernetes client refuses some invalid ones before sending)."""
    request = urllib.request.Request(
        f"{sandbox.url}/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", method="POST",
        data=json.dumps(configuration).encode(),
        headers={"Authorization": f"Bearer {sandbox.admin_token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=ssl.create_default_context(cadata=sandbox.ca_pem.decode()),
                                    timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# Denial, and what answered_by makes of it.

def test_a_webhook_denial_is_its_status_with_who_denied_it(core, registration, hook, namespace):
    ns = namespace()
    configure(registration, hook.validating_configuration("deny-privileged.kirvis.test"))
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("privileged")))
    # ToStatusErr: the webhook's code (>= 400) and `admission webhook "NAME" denied the request: MESSAGE`
    assert status == 403 and body["code"] == 403
    assert body["message"] == 'admission webhook "deny-privileged.kirvis.test" denied the request: privileged ' \
                              "containers are not allowed: app"
    assert answered_by(status, body) == "admission webhook deny-privileged.kirvis.test"
    assert core.create_namespaced_pod(ns, pod("plain", PLAIN)).metadata.name == "plain"
    assert [core.list_namespaced_pod(ns).items[0].metadata.name] == ["plain"]


def test_a_denial_without_a_code_is_400_and_warnings_reach_the_client(core, registration, hook, namespace):
    ns = namespace()
    hook.denial_code, hook.warnings = None, ["privileged containers are deprecated here"]
    configure(registration, hook.validating_configuration("deny-privileged.kirvis.test"))
    status, body, headers = refusal(lambda: core.create_namespaced_pod(ns, pod("privileged")))
    assert status == 400 and body["code"] == 400  # ToStatusErr: a code under 400 becomes 400
    assert headers["Warning"] == '299 - "privileged containers are deprecated here"'
    _, headers = core.create_namespaced_pod_with_http_info(ns, pod("plain", PLAIN))[1:]
    assert headers["Warning"] == '299 - "privileged containers are deprecated here"'


# failurePolicy: every way a call can fail, under Fail and under Ignore.

def _break(hook: WebhookServer, how: str) -> None:
    if how == "unreachable":
        hook.stop()
    elif how == "timeout":
        hook.delay = 3
    else:
        hook.answer = how  # type: ignore[assignment]


_FAILURES = {
    "unreachable": r'Post "https://127\.0\.0\.1:\d+/validate\?timeout=1s": dial tcp 127\.0\.0\.1:\d+: connect: '
                   r"connection refused$",
    "timeout": r'Post "https://127\.0\.0\.1:\d+/validate\?timeout=1s": context deadline exceeded$',
    "500": r'an error on the server \("policy engine unavailable"\) has prevented the request from succeeding$',
    "garbage": r"couldn't get version/kind; json parse error: invalid character '<' looking for beginning of value$",
}


@pytest.mark.parametrize("how", ["unreachable", "timeout", "500", "garbage", "wrong-uid", "wrong-kind"])
def test_a_failed_call_refuses_under_fail_and_admits_under_ignore(core, registration, hook, namespace, how):
    ns = namespace()
    configure(registration, hook.validating_configuration("fail.kirvis.test", timeout_seconds=1))
    registration.create_validating_webhook_configuration(
        hook.validating_configuration("ignore.kirvis.test", failure_policy="Ignore", timeout_seconds=1,
                                      webhook={"namespaceSelector": {"matchLabels": {"policy": "ignore"}}}))
    _break(hook, how)
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("plain", PLAIN)))
    # apierrors.NewInternalError(ErrCallingWebhook): 500, "Internal error occurred: failed calling webhook ..."
    assert status == 500 and body["reason"] == "InternalError"
    prefix = 'Internal error occurred: failed calling webhook "fail.kirvis.test": '
    assert body["message"].startswith(prefix)
    reason = body["message"].removeprefix(prefix)
    assert body["details"] == {"causes": [{"message": 'failed calling webhook "fail.kirvis.test": ' + reason}]}
    if how in _FAILURES:
        assert re.match(r"failed to call webhook: " + _FAILURES[how], reason), reason
    elif how == "wrong-uid":
        assert re.match(r'received invalid webhook response: expected response\.uid="[0-9a-f-]{36}", got '
                        r'"00000000-0000-0000-0000-000000000000"$', reason), reason
    else:
        assert reason == ("received invalid webhook response: expected webhook response of admission.k8s.io/v1, "
                          "Kind=AdmissionReview, got admission.k8s.io/v1, Kind=Status")
    # refused because failurePolicy is Fail: the control failed closed (not a decision of the webhook)
    assert answered_by(status, body) == "admission webhook fail.kirvis.test (failed closed)"
    # The same failure under failurePolicy Ignore admits: the fail-open webhook is the only one matching here.
    open_ns = namespace(policy="ignore")
    registration.delete_validating_webhook_configuration("fail.kirvis.test")
    started = time.monotonic()
    assert core.create_namespaced_pod(open_ns, pod("privileged")).metadata.name == "privileged"
    assert time.monotonic() - started < 2.5  # timeoutSeconds (1) bounded the wait


def test_timeout_is_enforced_while_other_requests_are_served(core, registration, hook, namespace):
    ns = namespace()
    configure(registration, hook.validating_configuration("slow.kirvis.test", timeout_seconds=3))
    hook.delay = 1.5
    outcome: dict[str, Any] = {}

    def slow_create() -> None:
        started = time.monotonic()
        outcome["name"] = core.create_namespaced_pod(ns, pod("slow", PLAIN)).metadata.name
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=slow_create)
    thread.start()
    while not hook.received:
        time.sleep(0.01)  # the slow request is now waiting on the webhook
    started = time.monotonic()
    assert core.read_namespace(ns).metadata.name == ns
    assert core.create_namespaced_config_map(ns, {"metadata": {"name": "meanwhile"}}).metadata.name == "meanwhile"
    assert time.monotonic() - started < 0.5  # answered while the webhook call was in flight
    thread.join()
    assert outcome["name"] == "slow" and outcome["seconds"] >= 1.4


def test_a_ca_bundle_that_did_not_sign_the_certificate_fails_the_call(core, registration, hook, namespace):
    ns = namespace()
    with WebhookServer() as other:  # a CA of its own: not the one that signed `hook`'s certificate
        configuration = hook.validating_configuration("wrong-ca.kirvis.test")
        configuration["webhooks"][0]["clientConfig"]["caBundle"] = other.ca_bundle
        configure(registration, configuration)
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("plain", PLAIN)))
    assert status == 500
    assert body["message"].endswith("tls: failed to verify certificate: x509: certificate signed by unknown "
                                    "authority"), body["message"]
    assert not hook.received  # the TLS handshake failed: nothing was sent


def test_a_service_reference_is_called_at_its_mapped_address(webhook_sandbox, core, registration, hook, namespace):
    """kube-apiserver's default service resolver (ClusterIP) and kube-proxy: the Service must exist, and with no
    ready endpoint the connection to its cluster IP is refused, as when the policy engine's pods are gone."""
    sandbox = webhook_sandbox[0]
    ns, policy = namespace(), namespace()
    configuration = hook.validating_configuration("by-service.kirvis.test")
    configuration["webhooks"][0]["clientConfig"] = {
        "service": {"namespace": policy, "name": "policy-svc", "path": "/validate"}, "caBundle": hook.ca_bundle}
    configuration["webhooks"][0]["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": ns}}
    configure(registration, configuration)
    stored = registration.read_validating_webhook_configuration("by-service.kirvis.test")
    assert stored.webhooks[0].client_config.service.port == 443  # SetDefaults_ServiceReference
    url = f"https://policy-svc.{policy}.svc:443/validate?timeout=10s"
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("privileged")))
    assert status == 500 and body["message"].endswith(f'failed to call webhook: Post "{url}": service "policy-svc" '
                                                      "not found")
    service = core.create_namespaced_service(policy, {"metadata": {"name": "policy-svc"}, "spec": {
        "ports": [{"name": "https", "port": 443, "targetPort": 9443}]}})
    core.create_namespaced_endpoints(policy, {"metadata": {"name": "policy-svc"}, "subsets": [
        {"addresses": [{"ip": "10.244.1.7"}], "ports": [{"name": "https", "port": 9443}]}]})
    sandbox.map_webhook_service(policy, "policy-svc", hook.address)  # its certificate is for another namespace
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("privileged")))
    assert status == 500 and body["message"].endswith(f"x509: certificate is not valid for policy-svc.{policy}.svc")
    engine = WebhookServer(dns_names=(f"policy-svc.{policy}.svc",)).start()
    try:
        configuration["webhooks"][0]["clientConfig"]["caBundle"] = engine.ca_bundle
        registration.patch_validating_webhook_configuration("by-service.kirvis.test",
                                                            {"webhooks": configuration["webhooks"]})
        sandbox.map_webhook_service(policy, "policy-svc", engine.address)
        status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("privileged")))
        assert status == 403 and "privileged containers are not allowed" in body["message"], body["message"]
        assert engine.paths == ["/validate?timeout=10s"]
    finally:
        engine.stop()
    # the policy engine's pods are gone: no ready address left
    core.patch_namespaced_endpoints("policy-svc", policy, {"subsets": [
        {"notReadyAddresses": [{"ip": "10.244.1.7"}], "ports": [{"name": "https", "port": 9443}]}]})
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("plain", PLAIN)))
    assert status == 500 and body["message"].endswith(
        f'failed to call webhook: Post "{url}": dial tcp {service.spec.cluster_ip}:443: connect: connection refused')
    assert len(engine.received) == 1 and not hook.received


# Dry run and sideEffects.

def test_dry_run_calls_only_webhooks_without_side_effects(webhook_sandbox, core, registration, hook, namespace):
    sandbox = webhook_sandbox[0]
    ns = namespace()
    configure(registration, hook.validating_configuration("no-side-effects.kirvis.test"))
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("privileged"), dry_run="All"))
    assert status == 403 and hook.received[-1]["request"]["dryRun"] is True
    assert hook.received[-1]["request"]["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                                                       "dryRun": ["All"]}
    # v1 refuses to create a webhook with side effects; an upgraded cluster may still hold one.
    legacy = hook.validating_configuration("side-effects.kirvis.test", failure_policy="Ignore",
                                           webhook={"sideEffects": "Unknown"})
    status, body, _ = refusal(lambda: configure(registration, legacy))
    assert status == 422 and 'webhooks[0].sideEffects: Unsupported value: "Unknown": supported values: "None", ' \
                             '"NoneOnDryRun"' in body["message"]
    sandbox.store_legacy(legacy)
    called = len(hook.received)
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("plain", PLAIN), dry_run="All"))
    # NewDryRunUnsupportedErr: 400 BadRequest whatever the failurePolicy, and no webhook is called
    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"] == 'admission webhook "side-effects.kirvis.test" does not support dry run'
    assert len(hook.received) == called
    assert core.create_namespaced_pod(ns, pod("plain", PLAIN)).metadata.name == "plain"  # not a dry run: called


# Matching.

def test_namespace_selector_reads_the_namespace_labels_and_a_namespace_its_own(core, registration, hook, namespace):
    guarded, open_ns = namespace(policy="enforced"), namespace()
    configure(registration, hook.validating_configuration(
        "selected.kirvis.test", webhook={"namespaceSelector": {"matchLabels": {"policy": "enforced"}},
                                         "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                                    "resources": ["pods", "namespaces", "persistentvolumes"]}]}))
    assert core.create_namespaced_pod(open_ns, pod("privileged")).metadata.name == "privileged"
    assert refusal(lambda: core.create_namespaced_pod(guarded, pod("privileged")))[0] == 403
    assert [r["request"]["namespace"] for r in hook.received] == [guarded]
    labelled = namespace(policy="enforced")  # a Namespace is judged by its own labels on its create
    assert hook.received[-1]["request"]["kind"]["kind"] == "Namespace"
    assert hook.received[-1]["request"]["name"] == labelled
    namespace()
    assert hook.received[-1]["request"]["name"] == labelled
    # a cluster-scoped object other than a namespace is never excluded by the namespaceSelector
    core.create_persistent_volume({"metadata": {"name": f"pv-{uuid.uuid4().hex[:6]}"},
                                   "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                            "hostPath": {"path": "/tmp"}}})
    assert hook.received[-1]["request"]["resource"]["resource"] == "persistentvolumes"
    core.delete_persistent_volume(hook.received[-1]["request"]["name"])


def test_object_selector_matches_the_new_or_the_old_labels(core, registration, hook, namespace):
    ns = namespace()
    configure(registration, hook.validating_configuration(
        "labelled.kirvis.test", webhook={"objectSelector": {"matchLabels": {"guarded": "true"}},
                                         "rules": [{"operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [""],
                                                    "apiVersions": ["v1"], "resources": ["configmaps"]}]}))
    core.create_namespaced_config_map(ns, {"metadata": {"name": "plain"}})
    assert not hook.received
    core.create_namespaced_config_map(ns, {"metadata": {"name": "guarded", "labels": {"guarded": "true"}}})
    core.patch_namespaced_config_map("guarded", ns, {"metadata": {"labels": {"guarded": None}}})  # old labels match
    core.delete_namespaced_config_map("guarded", ns)  # neither labels match now: not called
    assert [r["request"]["operation"] for r in hook.received] == ["CREATE", "UPDATE"]
    update = hook.received[1]["request"]
    assert update["oldObject"]["metadata"]["labels"] == {"guarded": "true"}
    assert "labels" not in update["object"]["metadata"]
    assert update["options"] == {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}


def test_rules_match_operations_subresources_and_scope(core, registration, hook, namespace):
    ns = namespace()
    core.create_namespaced_pod(ns, pod("target", PLAIN))
    configure(registration, hook.validating_configuration(
        "rules.kirvis.test", webhook={"rules": [
            {"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]},
            {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"}]}))
    core.create_namespaced_config_map(ns, {"metadata": {"name": "not-matched"}})  # namespaced: scope Cluster
    core.patch_namespace(ns, {"metadata": {"labels": {"touched": "yes"}}})  # a namespace is cluster-scoped
    core.delete_namespaced_pod("target", ns)
    seen = [(r["request"]["operation"], r["request"]["resource"]["resource"]) for r in hook.received]
    assert seen == [("UPDATE", "namespaces"), ("DELETE", "pods")]
    delete = hook.received[1]["request"]
    assert delete["object"] is None and delete["oldObject"]["metadata"]["name"] == "target"
    assert delete["options"] == {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}


def test_a_subresource_rule_matches_only_that_subresource(core, registration, hook, namespace):
    ns = namespace()
    core.create_namespaced_pod(ns, pod("target", PLAIN))
    configure(registration, hook.validating_configuration(
        "scale.kirvis.test", webhook={"rules": [{"operations": ["UPDATE"], "apiGroups": ["apps"],
                                                 "apiVersions": ["v1"], "resources": ["deployments/scale"]}]}))
    apps = client.AppsV1Api(core.api_client)
    deployment = {"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [PLAIN]}}}}
    apps.create_namespaced_deployment(ns, deployment)
    apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"x": "y"}}})
    assert not hook.received  # deployments/scale does not match the deployment itself
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})
    request = hook.received[0]["request"]
    assert (request["resource"]["resource"], request["subResource"], request["requestSubResource"]) == \
        ("deployments", "scale", "scale")
    assert request["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}


def test_match_conditions_skip_on_false_and_fail_closed_on_error(core, registration, hook, namespace):
    ns = namespace()
    condition = {"name": "not-kube-system", "expression": "request.namespace != 'kube-system' && "
                                                          "object.metadata.name.startsWith('checked-')"}
    configure(registration, hook.validating_configuration("conditions.kirvis.test",
                                                          webhook={"matchConditions": [condition]}))
    assert core.create_namespaced_pod(ns, pod("unchecked")).metadata.name == "unchecked"  # false: skipped
    assert refusal(lambda: core.create_namespaced_pod(ns, pod("checked-one")))[0] == 403
    registration.delete_validating_webhook_configuration("conditions.kirvis.test")
    erring = {"name": "errs", "expression": "object.metadata.labels['team'] == 'a'"}  # no such key: an error
    configure(registration, hook.validating_configuration("erring.kirvis.test", webhook={"matchConditions": [erring]}))
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("checked-two", PLAIN)))
    # ShouldCallHook: a matchCondition error under Fail is 403 Forbidden with the expression's error
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"].startswith('pods "checked-two" is forbidden: expression '
                                      "'object.metadata.labels['team'] == 'a'' resulted in error: ")
    registration.delete_validating_webhook_configuration("erring.kirvis.test")
    configure(registration, hook.validating_configuration("erring.kirvis.test", failure_policy="Ignore",
                                                          webhook={"matchConditions": [erring]}))
    assert core.create_namespaced_pod(ns, pod("checked-three")).metadata.name == "checked-three"  # skipped


def test_webhook_configurations_are_never_sent_to_webhooks(registration, hook, namespace):
    namespace()
    configure(registration, hook.validating_configuration(
        "everything.kirvis.test", webhook={"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"],
                                                      "resources": ["*"]}]}))
    hook.stop()  # any call would now fail closed
    configure(registration, hook.validating_configuration("second.kirvis.test"))
    registration.delete_validating_webhook_configuration("second.kirvis.test")
    registration.delete_validating_webhook_configuration("everything.kirvis.test")
    assert not hook.received


# Mutation, the order of the stages, and the AdmissionReview sent.

def test_a_mutating_webhook_patch_is_stored_and_seen_by_the_validating_stage(core, registration, hook, namespace):
    ns = namespace()
    mutating = hook.validating_configuration("label.kirvis.test", webhook={
        "clientConfig": {"url": hook.url("/mutate"), "caBundle": hook.ca_bundle},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]})
    mutating["kind"] = "MutatingWebhookConfiguration"
    registration.create_mutating_webhook_configuration(mutating)
    configure(registration, hook.validating_configuration(
        "deny-privileged.kirvis.test", webhook={"objectSelector": {"matchLabels": {"policy.kirvis.test/seen": "yes"}}}))
    stored = registration.read_mutating_webhook_configuration("label.kirvis.test").webhooks[0]
    assert stored.reinvocation_policy == "Never"  # SetDefaults_MutatingWebhook
    created = core.create_namespaced_pod(ns, pod("plain", PLAIN, {"app": "web"}))
    assert created.metadata.labels == {"app": "web", "policy.kirvis.test/seen": "yes"}
    assert core.read_namespaced_pod("plain", ns).metadata.labels["policy.kirvis.test/seen"] == "yes"
    # the validating webhook selected the pod by the label the mutating webhook added
    assert refusal(lambda: core.create_namespaced_pod(ns, pod("privileged")))[0] == 403
    assert hook.paths[:3] == ["/mutate?timeout=10s", "/validate?timeout=10s", "/mutate?timeout=10s"]
    review = hook.received[0]
    request = review["request"]
    assert (review["apiVersion"], review["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    assert set(request) == {"uid", "kind", "resource", "requestKind", "requestResource", "name", "namespace",
                            "operation", "userInfo", "object", "oldObject", "dryRun", "options"}
    assert request["kind"] == request["requestKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert request["resource"] == request["requestResource"] == {"group": "", "version": "v1", "resource": "pods"}
    assert (request["name"], request["namespace"], request["operation"]) == ("plain", ns, "CREATE")
    assert request["userInfo"] == {"username": "sandbox-admin", "groups": ["system:masters", "system:authenticated"]}
    assert request["oldObject"] is None and request["dryRun"] is False
    assert request["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    metadata = request["object"]["metadata"]
    assert "uid" not in metadata and metadata["creationTimestamp"] is None  # filled in after mutating admission
    # the built-in mutating plugins ran first: ServiceAccount gave the pod its account
    assert request["object"]["spec"]["serviceAccountName"] == "default"
    # the validating webhook saw the mutated object
    assert hook.received[1]["request"]["object"]["metadata"]["labels"]["policy.kirvis.test/seen"] == "yes"


def test_a_mutation_that_breaks_the_object_is_refused_by_validation(core, registration, namespace, hook):
    ns = namespace()
    hook.mutate_label = ("bad label!", "yes")
    mutating = hook.validating_configuration("label.kirvis.test", webhook={
        "clientConfig": {"url": hook.url("/mutate"), "caBundle": hook.ca_bundle}})
    mutating["kind"] = "MutatingWebhookConfiguration"
    registration.create_mutating_webhook_configuration(mutating)
    status, body, _ = refusal(lambda: core.create_namespaced_pod(ns, pod("plain", PLAIN)))
    assert (status, body["reason"]) == (422, "Invalid") and "metadata.labels: Invalid value: \"bad label!\"" in \
        body["message"]
    assert core.list_namespaced_pod(ns).items == []


# The configurations themselves: defaults and validation.

def test_configurations_are_stored_with_upstream_defaults(registration, hook):
    configuration = hook.validating_configuration("defaults.kirvis.test")
    hook_fields = configuration["webhooks"][0]
    for key in ("failurePolicy", "timeoutSeconds"):
        del hook_fields[key]
    configure(registration, configuration)
    stored = registration.read_validating_webhook_configuration("defaults.kirvis.test").webhooks[0]
    assert (stored.failure_policy, stored.match_policy, stored.timeout_seconds) == ("Fail", "Equivalent", 10)
    assert stored.namespace_selector.to_dict() == stored.object_selector.to_dict() == \
        {"match_expressions": None, "match_labels": None}
    assert [rule.scope for rule in stored.rules] == ["*"]


@pytest.mark.parametrize(("change", "error"), [
    ({"sideEffects": None}, 'webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun'),
    ({"admissionReviewVersions": None},
     "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1"),
    ({"admissionReviewVersions": ["v2"]},
     'webhooks[0].admissionReviewVersions: Invalid value: []string{"v2"}: must include at least one of v1, v1beta1'),
    ({"timeoutSeconds": 31}, "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and "
                             "30 seconds"),
    ({"failurePolicy": "Sometimes"}, 'webhooks[0].failurePolicy: Unsupported value: "Sometimes": supported values: '
                                     '"Fail", "Ignore"'),
    ({"clientConfig": {"url": "http://127.0.0.1:1/validate"}},
     "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme"),
    ({"clientConfig": {"url": "https://127.0.0.1:1/", "service": {"namespace": "a", "name": "b"}}},
     "webhooks[0].clientConfig: Required value: exactly one of url or service is required"),
    ({"name": "short.name"}, 'webhooks[0].name: Invalid value: "short.name": should be a domain with at least three '
                             "segments separated by dots"),
])
def test_invalid_configurations_are_refused_as_the_api_server_words_it(webhook_sandbox, registration, hook, change,
                                                                        error):
    configuration = hook.validating_configuration("invalid.kirvis.test")
    configuration["webhooks"][0] |= change
    configuration["webhooks"][0] = {k: v for k, v in configuration["webhooks"][0].items() if v is not None}
    status, body = raw_create(webhook_sandbox[0], configuration)
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"] == f'ValidatingWebhookConfiguration.admissionregistration.k8s.io "invalid.kirvis.test" ' \
                              f"is invalid: {error}"


def test_webhook_names_are_unique_in_a_configuration(webhook_sandbox, registration, hook):
    configuration = hook.validating_configuration("twice.kirvis.test")
    configuration["webhooks"].append(dict(configuration["webhooks"][0]))
    status, body = raw_create(webhook_sandbox[0], configuration)
    assert status == 422 and body["details"]["causes"] == [
        {"reason": "FieldValueDuplicate", "message": 'Duplicate value: "twice.kirvis.test"', "field": "webhooks[1].name"}]


# kubectl.

def test_kubectl_gets_applies_and_deletes_configurations_and_sees_denials(webhook_sandbox, kubectl, hook, namespace,
                                                                         tmp_path, registration):
    kubeconfig = webhook_sandbox[1]
    ns = namespace()
    manifest = tmp_path / "webhook.json"
    manifest.write_text(json.dumps(hook.validating_configuration("kubectl.kirvis.test")))
    kubectl("apply", "-f", str(manifest), kubeconfig=kubeconfig)
    listed = kubectl("get", "validatingwebhookconfigurations", kubeconfig=kubeconfig).stdout.splitlines()
    assert listed[0].split() == ["NAME", "WEBHOOKS", "AGE"] and listed[1].split()[:2] == ["kubectl.kirvis.test", "1"]
    pod_file = tmp_path / "pod.json"
    pod_file.write_text(json.dumps(pod("privileged")))
    denied = kubectl("create", "-n", ns, "-f", str(pod_file), kubeconfig=kubeconfig, check=False)
    assert denied.returncode == 1
    assert 'admission webhook "kubectl.kirvis.test" denied the request: privileged containers are not allowed: app' \
        in denied.stderr
    hook.stop()
    failed = kubectl("create", "-n", ns, "-f", str(pod_file), "--dry-run=server", kubeconfig=kubeconfig, check=False)
    assert failed.returncode == 1 and 'failed calling webhook "kubectl.kirvis.test"' in failed.stderr
    kubectl("delete", "validatingwebhookconfiguration", "kubectl.kirvis.test", kubeconfig=kubeconfig)
    assert registration.list_validating_webhook_configuration().items == []


def test_pods_exec_is_sent_as_a_connect_of_pod_exec_options(core, registration, hook, namespace):
    ns = namespace()
    core.create_namespaced_pod(ns, pod("target", PLAIN))
    configure(registration, hook.validating_configuration(
        "exec.kirvis.test", webhook={"rules": [{"operations": ["CONNECT"], "apiGroups": [""], "apiVersions": ["v1"],
                                                "resources": ["pods/exec"]}]}))
    session = stream(core.connect_get_namespaced_pod_exec, "target", ns, command=["id"], stdout=True, stderr=True,
                     stdin=False, tty=False, _preload_content=False)
    session.run_forever(timeout=5)
    request = hook.received[0]["request"]
    assert (request["operation"], request["subResource"], request["name"]) == ("CONNECT", "exec", "target")
    assert request["kind"] == {"group": "", "version": "v1", "kind": "PodExecOptions"}
    assert request["object"]["command"] == ["id"] and request["options"] is None
    hook.stop()  # failurePolicy Fail: the exec is now refused before the upgrade
    with pytest.raises(client.ApiException) as refused:
        stream(core.connect_get_namespaced_pod_exec, "target", ns, command=["id"], stdout=True, stderr=True,
               stdin=False, tty=False, _preload_content=False)
    assert "Handshake status 500" in str(refused.value.reason)


def test_an_if_needed_webhook_is_reinvoked_after_a_later_one_changed_the_object(core, registration, namespace):
    """Reinvocation (mutating/dispatcher.go, webhookReinvokeContext): a webhook with reinvocationPolicy IfNeeded
    is called again when a webhook after it changed the object; one with Never is not."""
    ns = namespace()
    with WebhookServer(mutate_label=("first", "yes")) as first, WebhookServer(mutate_label=("second", "yes")) as second, \
            WebhookServer(mutate_label=("third", "yes")) as third:
        for name, server, policy in (("a.kirvis.test", first, "IfNeeded"), ("b.kirvis.test", second, "Never"),
                                     ("c.kirvis.test", third, "IfNeeded")):
            mutating = server.validating_configuration(name, webhook={
                "clientConfig": {"url": server.url("/mutate"), "caBundle": server.ca_bundle},
                "reinvocationPolicy": policy})
            mutating["kind"] = "MutatingWebhookConfiguration"
            registration.create_mutating_webhook_configuration(mutating)
        created = core.create_namespaced_pod(ns, pod("plain", PLAIN))
        assert created.metadata.labels == {"first": "yes", "second": "yes", "third": "yes"}
        assert len(first.received) == 2 and len(second.received) == 1
        assert first.received[1]["request"]["object"]["metadata"]["labels"] == created.metadata.labels
        assert len(third.received) == 1  # nothing changed the object after it


def test_a_patch_that_lost_a_race_during_admission_is_applied_to_the_new_version(core, registration, hook,
                                                                                 namespace):
    """GuaranteedUpdate: a PATCH whose object changed in storage while its admission waited is tried again on the
    new version (and admitted again); a PUT with the old resourceVersion is refused 409 Conflict."""
    ns = namespace()
    core.create_namespaced_config_map(ns, {"metadata": {"name": "shared"}, "data": {"a": "1"}})
    configure(registration, hook.validating_configuration(
        "slow-updates.kirvis.test", webhook={"objectSelector": {"matchLabels": {"slow": "true"}},
                                             "rules": [{"operations": ["UPDATE"], "apiGroups": [""],
                                                        "apiVersions": ["v1"], "resources": ["configmaps"]}]}))
    hook.delay = 1.0
    stale = core.read_namespaced_config_map("shared", ns)
    outcome: dict[str, Any] = {}

    def slow_patch() -> None:
        outcome["patched"] = core.patch_namespaced_config_map("shared", ns, {"metadata": {"labels": {"slow": "true"}}})

    thread = threading.Thread(target=slow_patch)
    thread.start()
    while not hook.received:
        time.sleep(0.01)
    core.patch_namespaced_config_map("shared", ns, {"data": {"b": "2"}})  # not selected: written at once
    thread.join()
    assert outcome["patched"].data == {"a": "1", "b": "2"} and outcome["patched"].metadata.labels == {"slow": "true"}
    assert len(hook.received) == 2  # admitted again on the new version
    stale.metadata.labels = {"slow": "true"}
    stale.data = {"c": "3"}
    hook.delay = 0
    status, body, _ = refusal(lambda: core.replace_namespaced_config_map("shared", ns, stale))
    assert (status, body["reason"]) == (409, "Conflict")


def test_the_first_review_version_the_api_server_speaks_is_sent(core, registration, hook, namespace):
    """CreateAdmissionObjects: the first of admissionReviewVersions that is v1 or v1beta1; v1beta1 answers are
    not checked for uid and kind (VerifyAdmissionResponse)."""
    ns = namespace()
    hook.answer = "wrong-uid"
    configure(registration, hook.validating_configuration(
        "beta.kirvis.test", webhook={"admissionReviewVersions": ["v2", "v1beta1", "v1"]}))
    assert core.create_namespaced_pod(ns, pod("plain", PLAIN)).metadata.name == "plain"
    assert hook.received[0]["apiVersion"] == "admission.k8s.io/v1beta1"
    assert refusal(lambda: core.create_namespaced_pod(ns, pod("privileged")))[0] == 403
