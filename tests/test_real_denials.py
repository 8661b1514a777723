"""Only real denials are blocks: the status code and the Status body must both say "admission denied".

What the API server answers, from kubernetes/kubernetes (staging/src/k8s.io/...):

- Pod Security Admission (`pod-security-admission/admission/response.go`, forbiddenResponse):
  apierrors.NewForbidden: 403, reason Forbidden, ``pods "NAME" is forbidden: violates PodSecurity "LEVEL:VERSION": ...``.
- A ValidatingAdmissionPolicy (`apiserver/pkg/admission/plugin/policy/validating/dispatcher.go`):
  admission.NewForbidden, then the validation's reason (Invalid when unset) and reasonToCode's code for it
  (Forbidden 403, Unauthorized 401, RequestEntityTooLarge 413, Invalid 422):
  ``pods "NAME" is forbidden: ValidatingAdmissionPolicy 'P' with binding 'B' denied request: ...``.
- A validating webhook (`apiserver/pkg/admission/plugin/webhook/errors/statuserror.go`, ToStatusErr): the
  webhook's own code (403 when it gave none), ``admission webhook "NAME" denied the request: ...``; a webhook
  answering 500 makes it ``Internal error occurred: ...`` with reason InternalError.

Anything else (a 500 whose text reads as a denial, a 200, RBAC's 403, a schema 422) is an error.
Forged answers come from tests/fault_proxy.py in front of the sandbox; real ones from the sandbox.
"""
from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaoskirvis.ledger.state import run_state
from chaoskirvis.runtime.actions import run_runtime_technique
from chaoskirvis.workload.actions import inject_risky_pod
from chaosrun import EXPERIMENTS, run_chaos
from fault_proxy import Answer, FaultProxy

PSA_TEXT = ('violates PodSecurity "restricted:latest": privileged (container "kirvis" must not set '
            'securityContext.privileged=true)')
VAP_TEXT = "ValidatingAdmissionPolicy 'deny-privileged' with binding 'deny-privileged-binding' denied request: no"
WEBHOOK_TEXT = 'admission webhook "validation.gatekeeper.sh" denied the request: [psp-privileged-container] no'


def status(code: int, reason: str, message: str) -> dict:
    """A Status body as the API server writes one (apimachinery's metav1.Status)."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": {"name": "p", "kind": "pods"}, "code": code}


def forbidden(text: str) -> str:
    return f'pods "p" is forbidden: {text}'


def internal(text: str) -> str:
    return f"Internal error occurred: {text}"


FORGED = {
    # The case: a 500 whose message contains a Pod Security denial.
    "500-with-podsecurity-text": Answer(500, status(500, "InternalError", internal(forbidden(PSA_TEXT)))),
    "500-with-vap-text": Answer(500, status(500, "InternalError", internal(forbidden(VAP_TEXT)))),
    # ToStatusErr's own 500 shape: a webhook that answered 500 has not denied by policy, it failed.
    "500-with-webhook-text": Answer(500, status(500, "InternalError", internal(WEBHOOK_TEXT))),
    "503-with-webhook-text": Answer(503, status(503, "ServiceUnavailable", forbidden(WEBHOOK_TEXT))),
    # A success code never carries a denial: the API server answers a create with the object.
    "200-with-podsecurity-status": Answer(200, status(403, "Forbidden", forbidden(PSA_TEXT))),
    "201-with-vap-status": Answer(201, status(403, "Forbidden", forbidden(VAP_TEXT))),
    # Code and body disagree.
    "403-whose-status-says-500": Answer(403, status(500, "Forbidden", forbidden(PSA_TEXT))),
    "psa-text-on-422-invalid": Answer(422, status(422, "Invalid", forbidden(PSA_TEXT))),
    "psa-text-with-reason-internal": Answer(403, status(403, "InternalError", forbidden(PSA_TEXT))),
    # A VAP's reason and code always agree (reasonToCode): Invalid is 422, Forbidden 403.
    "vap-reason-invalid-on-403": Answer(403, status(403, "Invalid", forbidden(VAP_TEXT))),
    "vap-reason-forbidden-on-422": Answer(422, status(422, "Forbidden", forbidden(VAP_TEXT))),
    # A denial text that is not where the API server puts it (inside another error).
    "rbac-403-quoting-a-denial": Answer(403, status(403, "Forbidden", 'pods is forbidden: User "x" cannot create '
                                                    f'resource "pods" ({PSA_TEXT})')),
}

REAL = {
    "podsecurity-403": (Answer(403, status(403, "Forbidden", forbidden(PSA_TEXT))), "PodSecurity"),
    "vap-forbidden-403": (Answer(403, status(403, "Forbidden", forbidden(VAP_TEXT))),
                          "ValidatingAdmissionPolicy deny-privileged"),
    "vap-invalid-422": (Answer(422, status(422, "Invalid", forbidden(VAP_TEXT))),
                        "ValidatingAdmissionPolicy deny-privileged"),
    "webhook-default-403": (Answer(403, status(403, "Forbidden", forbidden(WEBHOOK_TEXT))),
                            "admission webhook validation.gatekeeper.sh"),
    "webhook-own-code-400-older-servers": (Answer(400, status(400, "", WEBHOOK_TEXT)),
                                           "admission webhook validation.gatekeeper.sh"),
}


def pods_create_answers(namespace: str, answer: Answer):
    def rule(method, path, query):
        return answer if method == "POST" and path == f"/api/v1/namespaces/{namespace}/pods" else None
    return rule


def proxied(proxy: FaultProxy, run: dict, tmp_path) -> dict:
    return {**run, "secrets": {"KUBECONFIG": str(proxy.write_kubeconfig(tmp_path / "proxy-kubeconfig"))}}


def recorded(run: dict) -> list[str]:
    return [o["outcome"] for o in run_state(run["configuration"]["kirvis_run_id"]).outcomes]


@pytest.mark.parametrize("forged", FORGED.values(), ids=FORGED.keys())
def test_a_forged_or_misplaced_denial_is_an_error_not_a_block(sandbox, make_namespace, run, tmp_path, forged):
    namespace = make_namespace(enforce="privileged")
    with FaultProxy(sandbox.sandbox, pods_create_answers(namespace, forged)) as proxy:
        with pytest.raises(ActivityFailed, match=f"{forged.status}"):
            inject_risky_pod(namespace, ["privileged"], **proxied(proxy, run, tmp_path))
    assert recorded(run) == ["error"]


@pytest.mark.parametrize("answer, denier", REAL.values(), ids=REAL.keys())
def test_a_denial_as_the_api_server_words_it_is_a_block(sandbox, make_namespace, run, tmp_path, answer, denier):
    namespace = make_namespace(enforce="privileged")
    with FaultProxy(sandbox.sandbox, pods_create_answers(namespace, answer)) as proxy:
        outcome = inject_risky_pod(namespace, ["privileged"], **proxied(proxy, run, tmp_path))
    assert (outcome["outcome"], outcome["blocked"], outcome["answered_by"]) == ("blocked", True, denier)
    assert outcome["status"] == answer.status
    assert recorded(run) == ["blocked"]


def test_the_privileged_pod_experiment_is_an_error_when_the_denial_is_a_forged_500(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(enforce="privileged")
    forged = FORGED["500-with-podsecurity-text"]
    with FaultProxy(sandbox.sandbox, pods_create_answers(namespace, forged)) as proxy:
        kubeconfig = proxy.write_kubeconfig(tmp_path / "proxy-kubeconfig")
        result = run_chaos(EXPERIMENTS / "privileged-pod-denied.yaml", tmp_path, kubeconfig,
                           variables={"namespace": namespace})
    verdict = result.journal["chaoskirvis"]["verdict"]
    assert verdict["result"] == "error", verdict
    assert result.exit_code != 0, result.output
    assert result.journal["status"] == "failed"  # the hypothesis probe raised: nothing was tested
    injected = next(r for r in result.journal["run"] if r["activity"]["name"] == "introduce-privileged-pod")
    assert injected["status"] == "failed" and "500" in injected["exception"][-1]
    outcomes = [o["outcome"] for o in result.journal["chaoskirvis"]["outcomes"]]
    assert "blocked" not in outcomes and "error" in outcomes


def deny_with_policy(sandbox, namespace: str, reason: str | None) -> tuple[str, callable]:
    """A ValidatingAdmissionPolicy in the sandbox denying privileged pods in `namespace` with `reason`."""
    admission = client.AdmissionregistrationV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    policy = f"deny-privileged-{namespace}"
    validation = {"expression": "!object.spec.containers.exists(c, has(c.securityContext) && "
                                "has(c.securityContext.privileged) && c.securityContext.privileged)",
                  "message": "privileged containers are not allowed", **({"reason": reason} if reason else {})}
    admission.create_validating_admission_policy({"metadata": {"name": policy}, "spec": {
        "failurePolicy": "Fail", "validations": [validation], "matchConstraints": {"resourceRules": [
            {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]}}})
    admission.create_validating_admission_policy_binding({"metadata": {"name": policy}, "spec": {
        "policyName": policy, "validationActions": ["Deny"], "matchResources": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}})

    def remove():
        admission.delete_validating_admission_policy_binding(policy)
        admission.delete_validating_admission_policy(policy)
    return policy, remove


@pytest.mark.parametrize("reason, code", [
    (None, 422), ("Invalid", 422), ("Forbidden", 403), ("Unauthorized", 401), ("RequestEntityTooLarge", 413),
])
def test_a_sandbox_policy_denial_is_a_block_whatever_its_reason(sandbox, make_namespace, run, reason, code):
    namespace = make_namespace()
    policy, remove = deny_with_policy(sandbox, namespace, reason)
    try:
        outcome = inject_risky_pod(namespace, ["privileged"], **run)
    finally:
        remove()
    assert (outcome["outcome"], outcome["answered_by"]) == ("blocked", f"ValidatingAdmissionPolicy {policy}")
    assert (outcome["status"], outcome["reason"]) == (code, reason or "Invalid")


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_a_sandbox_pod_security_denial_is_a_block(make_namespace, run, level):
    outcome = inject_risky_pod(make_namespace(enforce=level), ["privileged"], **run)
    assert (outcome["outcome"], outcome["answered_by"], outcome["status"]) == ("blocked", "PodSecurity", 403)


def test_rbac_refusing_the_runner_is_an_error_not_a_block(sandbox, make_namespace, run, tmp_path):
    viewer = sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer")
    with pytest.raises(ActivityFailed, match="403"):
        inject_risky_pod(make_namespace(enforce="restricted"), ["privileged"], configuration=run["configuration"],
                         secrets={"KUBECONFIG": str(viewer)})
    assert recorded(run)[-1] == "error"


def exec_answers(namespace: str, answer: Answer):
    def rule(method, path, query):
        return answer if path.startswith(f"/api/v1/namespaces/{namespace}/pods/") and path.endswith("/exec") else None
    return rule


def app_pod(sandbox, namespace: str) -> None:
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    core.create_namespaced_pod(namespace, {"metadata": {"name": "app"}, "spec": {
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}})


EXEC_VAP_TEXT = "ValidatingAdmissionPolicy 'deny-exec' with binding 'deny-exec' denied request: exec is not allowed"


@pytest.mark.parametrize("forged", [
    Answer(500, status(500, "InternalError", internal(forbidden(EXEC_VAP_TEXT)))),
    Answer(403, status(403, "Invalid", forbidden(EXEC_VAP_TEXT))),
    Answer(500, status(500, "InternalError", internal(WEBHOOK_TEXT))),
], ids=["500-vap-text", "vap-reason-code-mismatch", "500-webhook-text"])
def test_a_forged_exec_denial_is_an_error_not_a_block(sandbox, make_namespace, run, tmp_path, forged):
    namespace = make_namespace()
    app_pod(sandbox, namespace)
    with FaultProxy(sandbox.sandbox, exec_answers(namespace, forged)) as proxy:
        with pytest.raises(ActivityFailed, match="could not exec"):
            run_runtime_technique("terminal-shell", namespace, pod="app", **proxied(proxy, run, tmp_path))
    assert recorded(run) == ["error"]


def test_an_exec_denial_as_the_api_server_words_it_is_a_block(sandbox, make_namespace, run, tmp_path):
    namespace = make_namespace()
    app_pod(sandbox, namespace)
    answer = Answer(403, status(403, "Forbidden", forbidden(EXEC_VAP_TEXT)))
    with FaultProxy(sandbox.sandbox, exec_answers(namespace, answer)) as proxy:
        outcome = run_runtime_technique("terminal-shell", namespace, pod="app", **proxied(proxy, run, tmp_path))
    assert (outcome["outcome"], outcome["answered_by"], outcome["status"]) == (
        "blocked", "ValidatingAdmissionPolicy deny-exec", 403)
