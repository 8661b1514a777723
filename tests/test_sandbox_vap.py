"""ValidatingAdmissionPolicy in the sandbox, through the real `kubernetes` client (and `kubectl` once).

Policies apply cluster-wide, so this module runs its own sandbox; each test binds its policies to its own
namespaces and removes them afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from chaoskirvis.sandbox.server import Sandbox


@pytest.fixture(scope="module")
def vap_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, str]]:
    with Sandbox() as running:
        yield running, str(running.write_kubeconfig(tmp_path_factory.mktemp("vap") / "kubeconfig"))


@pytest.fixture(scope="module")
def api(vap_sandbox: tuple[Sandbox, str]) -> client.ApiClient:
    return config.new_client_from_config(vap_sandbox[1])


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def admission(api: client.ApiClient, namespace: Callable[..., str]) -> Iterator[client.AdmissionregistrationV1Api]:
    """The admissionregistration API; every policy and binding a test creates is deleted after it (and before
    the test's namespaces, which a policy may judge too)."""
    admission_api = client.AdmissionregistrationV1Api(api)
    yield admission_api
    for binding in admission_api.list_validating_admission_policy_binding().items:
        admission_api.delete_validating_admission_policy_binding(binding.metadata.name)
    for policy in admission_api.list_validating_admission_policy().items:
        admission_api.delete_validating_admission_policy(policy.metadata.name)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[Callable[..., str]]:
    """namespace(**labels) -> name: a new namespace, deleted after the test."""
    created: list[str] = []

    def make(**labels: str) -> str:
        name = f"vap-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name, "labels": labels}})
        created.append(name)
        return name

    yield make
    for name in created:
        core.delete_namespace(name)


SERVICE_RULES = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                  "resources": ["services"]}]


def policy(name: str, expression: str, rules: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    validation = {"expression": expression}
    validation.update(spec.pop("validation", {}))
    return {"metadata": {"name": name},
            "spec": {"matchConstraints": {"resourceRules": rules or SERVICE_RULES}, "validations": [validation],
                     **spec}}


def binding(name: str, policy_name: str, namespace: str | None, actions: tuple[str, ...] = ("Deny",),
            **spec: Any) -> dict[str, Any]:
    """A binding; with a namespace, only that namespace is selected."""
    if namespace is not None:
        spec.setdefault("matchResources", {})["namespaceSelector"] = {
            "matchLabels": {"kubernetes.io/metadata.name": namespace}}
    return {"metadata": {"name": name}, "spec": {"policyName": policy_name, "validationActions": list(actions), **spec}}


def service(name: str, service_type: str = "ClusterIP", **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **metadata}, "spec": {"type": service_type, "ports": [{"port": 80}]}}


def refusal(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and Status body of a call that must be refused."""
    with pytest.raises(client.ApiException) as error:
        call()
    return error.value.status, json.loads(error.value.body)


NO_NODEPORT = "object.spec.type != 'NodePort'"


def test_deny_answers_as_the_api_server_and_stores_nothing(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy("deny-nodeport", NO_NODEPORT, validation={
        "message": "NodePort services are not allowed", "reason": "Forbidden"}))
    admission.create_validating_admission_policy_binding(binding("deny-nodeport-binding", "deny-nodeport", ns))

    code, status = refusal(lambda: core.create_namespaced_service(ns, service("x", "NodePort")))

    cause = ("ValidatingAdmissionPolicy 'deny-nodeport' with binding 'deny-nodeport-binding' denied request: "
             "NodePort services are not allowed")
    assert (code, status["reason"], status["message"]) == (403, "Forbidden", f'services "x" is forbidden: {cause}')
    assert status["details"] == {"name": "x", "kind": "services", "causes": [{"message": cause}]}
    assert core.list_namespaced_service(ns).items == []
    assert core.create_namespaced_service(ns, service("y")).metadata.name == "y"


def test_without_reason_or_message_the_denial_is_invalid_and_names_the_expression(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy("p", f"  {NO_NODEPORT}  "))
    admission.create_validating_admission_policy_binding(binding("b", "p", ns))

    code, status = refusal(lambda: core.create_namespaced_service(ns, service("x", "NodePort")))

    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == ('services "x" is forbidden: ValidatingAdmissionPolicy \'p\' with binding \'b\' '
                                 f"denied request: failed expression: {NO_NODEPORT}")


def test_warn_admits_with_a_warning_header(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy("p", NO_NODEPORT, validation={"message": "no NodePort"}))
    admission.create_validating_admission_policy_binding(binding("b", "p", ns, actions=("Warn", "Audit")))

    created, code, headers = core.create_namespaced_service_with_http_info(ns, service("x", "NodePort"))

    assert (code, created.metadata.name) == (201, "x")
    assert headers["Warning"] == ('299 - "Validation failed for ValidatingAdmissionPolicy \'p\' with binding \'b\': '
                                  'no NodePort"')


def test_match_constraints_select_by_resource_and_operation(core, admission, namespace):
    ns = namespace()
    updates_only = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["services"]}]
    admission.create_validating_admission_policy(policy("no-service-updates", "false", updates_only))
    deletes = [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["DELETE"], "resources": ["*"]}]
    admission.create_validating_admission_policy(policy("no-deletes", "false", deletes, matchConstraints={
        "resourceRules": deletes,
        "excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"],
                                  "resources": ["configmaps"]}]}))
    for name in ("no-service-updates", "no-deletes"):
        admission.create_validating_admission_policy_binding(binding(name, name, ns))

    core.create_namespaced_service(ns, service("s"))
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}})
    assert refusal(lambda: core.patch_namespaced_service("s", ns, {"metadata": {"labels": {"a": "b"}}}))[0] == 422
    core.patch_namespaced_config_map("c", ns, {"metadata": {"labels": {"a": "b"}}})
    status = refusal(lambda: core.delete_namespaced_service("s", ns))[1]
    assert "ValidatingAdmissionPolicy 'no-deletes'" in status["message"]
    core.delete_namespaced_config_map("c", ns)  # excluded


def test_namespace_selectors_of_policy_and_binding_both_apply(core, admission, namespace):
    judged, other_team, unguarded = namespace(team="a", guarded="yes"), namespace(team="b", guarded="yes"), \
        namespace(team="a")
    admission.create_validating_admission_policy(policy("p", NO_NODEPORT, matchConstraints={
        "resourceRules": SERVICE_RULES,
        "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}}))
    admission.create_validating_admission_policy_binding(binding("b", "p", None, matchResources={
        "namespaceSelector": {"matchLabels": {"guarded": "yes"}}}))

    assert refusal(lambda: core.create_namespaced_service(judged, service("x", "NodePort")))[0] == 422
    for ns in (other_team, unguarded):
        assert core.create_namespaced_service(ns, service("x", "NodePort")).metadata.namespace == ns


def test_object_selector_judges_only_labelled_objects(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy("p", NO_NODEPORT))
    admission.create_validating_admission_policy_binding(binding("b", "p", ns, matchResources={
        "objectSelector": {"matchLabels": {"checked": "true"}}}))

    assert refusal(lambda: core.create_namespaced_service(ns, service("x", "NodePort", labels={"checked": "true"})))
    assert core.create_namespaced_service(ns, service("y", "NodePort")).metadata.name == "y"


def test_match_conditions_skip_requests_that_do_not_meet_them(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy("p", NO_NODEPORT, matchConditions=[
        {"name": "only-checked", "expression": "object.metadata.name.startsWith('checked-')"}]))
    admission.create_validating_admission_policy_binding(binding("b", "p", ns))

    assert refusal(lambda: core.create_namespaced_service(ns, service("checked-x", "NodePort")))[0] == 422
    assert core.create_namespaced_service(ns, service("other", "NodePort")).metadata.name == "other"


def test_params_come_from_a_configmap_and_a_missing_one_fails_the_binding(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy(
        "forbidden-types", "!(object.spec.type in params.data.types.split(','))",
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
        validation={"messageExpression": "'type ' + object.spec.type + ' is one of ' + params.data.types"}))
    admission.create_validating_admission_policy_binding(binding("b", "forbidden-types", ns, paramRef={
        "name": "service-rules", "namespace": ns, "parameterNotFoundAction": "Deny"}))

    status = refusal(lambda: core.create_namespaced_service(ns, service("x")))[1]
    assert status["message"].endswith("denied request: failed to configure binding: no params found for policy "
                                      "binding with `Deny` parameterNotFoundAction")

    core.create_namespaced_config_map(ns, {"metadata": {"name": "service-rules"},
                                           "data": {"types": "NodePort,LoadBalancer"}})
    status = refusal(lambda: core.create_namespaced_service(ns, service("x", "NodePort")))[1]
    assert status["message"].endswith("denied request: type NodePort is one of NodePort,LoadBalancer")
    assert core.create_namespaced_service(ns, service("y")).metadata.name == "y"


def test_failure_policy_decides_what_an_erroring_expression_does(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy("p", "object.spec.missing == 'x'"))
    admission.create_validating_admission_policy_binding(binding("b", "p", ns))

    code, status = refusal(lambda: core.create_namespaced_service(ns, service("x")))
    assert code == 422 and status["message"].endswith(
        "denied request: expression 'object.spec.missing == 'x'' resulted in error: no such key: missing")

    admission.patch_validating_admission_policy("p", {"spec": {"failurePolicy": "Ignore"}})
    assert core.create_namespaced_service(ns, service("x")).metadata.name == "x"


def test_variables_and_message_expression(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy(
        "p", "!variables.exposed",
        variables=[{"name": "type", "expression": "has(object.spec.type) ? object.spec.type : 'ClusterIP'"},
                   {"name": "exposed", "expression": "variables.type in ['NodePort', 'LoadBalancer']"}],
        validation={"messageExpression": "'service ' + object.metadata.name + ' is exposed as ' + variables.type",
                    "message": "exposed services are not allowed"}))
    admission.create_validating_admission_policy_binding(binding("b", "p", ns))

    status = refusal(lambda: core.create_namespaced_service(ns, service("web", "LoadBalancer")))[1]
    assert status["message"].endswith("denied request: service web is exposed as LoadBalancer")

    blank_message_expression = {"expression": "!variables.exposed", "messageExpression": "'  '",
                                "message": "exposed services are not allowed"}
    admission.patch_validating_admission_policy("p", {"spec": {"validations": [blank_message_expression]}})
    status = refusal(lambda: core.create_namespaced_service(ns, service("web", "LoadBalancer")))[1]
    assert status["message"].endswith("denied request: exposed services are not allowed")  # blank: the message


def test_server_side_dry_run_is_judged_too(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy("p", NO_NODEPORT))
    admission.create_validating_admission_policy_binding(binding("b", "p", ns))

    real = refusal(lambda: core.create_namespaced_service(ns, service("x", "NodePort")))
    dry = refusal(lambda: core.create_namespaced_service(ns, service("x", "NodePort"), dry_run="All"))

    assert dry == real
    assert core.list_namespaced_service(ns).items == []


def test_pod_security_answers_before_policies(core, admission, namespace):
    ns = namespace(**{"pod-security.kubernetes.io/enforce": "baseline"})
    pod_rules = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]
    admission.create_validating_admission_policy(policy("no-pods", "false", pod_rules))
    admission.create_validating_admission_policy_binding(binding("b", "no-pods", ns))

    def pod(name: str, **security: Any) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"containers": [
            {"name": "c", "image": "registry.k8s.io/pause:3.10", "securityContext": security}]}}

    privileged = refusal(lambda: core.create_namespaced_pod(ns, pod("priv", privileged=True)))[1]
    plain = refusal(lambda: core.create_namespaced_pod(ns, pod("plain")))[1]
    assert 'violates PodSecurity "baseline:latest"' in privileged["message"]
    assert "ValidatingAdmissionPolicy 'no-pods'" in plain["message"]


def test_optional_field_syntax_is_evaluated(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy(
        "optional", "object.spec.?type.orValue('ClusterIP') != 'NodePort' && "
                    "!object.metadata.?labels[?'exposed'].hasValue()"))
    admission.create_validating_admission_policy_binding(binding("b", "optional", ns))

    assert refusal(lambda: core.create_namespaced_service(ns, service("x", "NodePort")))[0] == 422
    assert refusal(lambda: core.create_namespaced_service(ns, service("y", labels={"exposed": "yes"})))[0] == 422
    assert core.create_namespaced_service(ns, service("z")).metadata.name == "z"


def test_kubernetes_libraries_and_the_strings_extension(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy(
        "libraries", "object.metadata.name.find('[0-9]+') == '' && [80, 443].indexOf(object.spec.ports[0].port) >= 0"
                     " && object.spec.ports.map(p, p.port).isSorted()",
        validation={"messageExpression": "'%s has digits %s'.format([object.metadata.name, "
                                         "object.metadata.name.findAll('[0-9]')])"}))
    admission.create_validating_admission_policy_binding(binding("b", "libraries", ns))

    status = refusal(lambda: core.create_namespaced_service(ns, service("web12")))[1]
    assert status["message"].endswith("denied request: web12 has digits [1, 2]")
    assert core.create_namespaced_service(ns, service("web")).metadata.name == "web"


def test_kubernetes_quantity_url_ip_and_cidr_libraries(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy(
        "values", "(quantity(object.data.memory).isLessThan(quantity('1Gi')) || "
                  "url(object.data.endpoint).getHostname() == 'internal.example' && "
                  "cidr('10.0.0.0/8').containsIP(object.data.ip) && !ip(object.data.ip).isLoopback()) && "
                  "quantity(object.data.memory).add(quantity('512Mi')) != quantity('1.5Gi')",
        rules=[{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}],
        validation={"messageExpression": "'not allowed: ' + string(ip(object.data.ip)) + ' ' + "
                                         "url(object.data.endpoint).getHost()"}))
    admission.create_validating_admission_policy_binding(binding("b", "values", ns))

    def config(name: str, memory: str, endpoint: str, address: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "data": {"memory": memory, "endpoint": endpoint, "ip": address}}

    assert core.create_namespaced_config_map(ns, config("small", "512Mi", "https://x.example", "1.2.3.4")).metadata
    assert core.create_namespaced_config_map(ns, config("near", "2Gi", "https://internal.example:8443/p",
                                                        "10.1.2.3")).metadata
    status = refusal(lambda: core.create_namespaced_config_map(ns, config("far", "2Gi", "https://x.example:8443",
                                                                          "2001:DB8::1")))[1]
    assert status["message"].endswith("denied request: not allowed: 2001:db8::1 x.example:8443")
    status = refusal(lambda: core.create_namespaced_config_map(ns, config("exact", "1024Mi", "https://internal.example",
                                                                          "10.0.0.9")))[1]
    assert status["message"].endswith("denied request: not allowed: 10.0.0.9 internal.example")  # 1Gi + 512Mi
    status = refusal(lambda: core.create_namespaced_config_map(ns, config("bad", "lots", "x", "1.2.3.4")))[1]
    assert status["message"].endswith("resulted in error: quantities must match the regular expression "
                                      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def test_what_the_sandbox_cannot_evaluate_is_refused_when_the_policy_is_created(admission):
    for expression, what in (("!format.dns1123Label().validate(object.metadata.name).hasValue()",
                              "the Kubernetes CEL format library (format.dns1123Label(), format.named())"),):
        code, status = refusal(lambda: admission.create_validating_admission_policy(policy("limit", expression)))
        [cause] = status["details"]["causes"]
        assert (code, cause["field"]) == (422, "spec.validations[0].expression")
        assert f"{what} is not available in the sandbox" in cause["message"]
        assert "This is a sandbox limit" in cause["message"]
    assert admission.list_validating_admission_policy().items == []


def test_expressions_are_type_checked_when_the_policy_is_created(admission):
    status = refusal(lambda: admission.create_validating_admission_policy(policy(
        "typed", "object.metadata.name.startsWith(1)", validation={"messageExpression": "size(object) + 1"})))[1]

    assert [(cause["field"], cause["message"]) for cause in status["details"]["causes"]] == [
        ("spec.validations[0].expression",
         "Invalid value: \"object.metadata.name.startsWith(1)\": compilation failed: ERROR: <input>:1:32: found no "
         "matching overload for 'startsWith' applied to 'dyn.(int)'\n | object.metadata.name.startsWith(1)\n"
         " | ...............................^"),
        ("spec.validations[0].messageExpression",
         'Invalid value: "size(object) + 1": must evaluate to string but got int')]


def test_expressions_that_do_not_compile_are_refused(admission):
    status = refusal(lambda: admission.create_validating_admission_policy(policy("broken", "object.spec.type ==")))[1]
    assert status["details"]["causes"][0]["message"].startswith(
        'Invalid value: "object.spec.type ==": compilation failed: ERROR: <input>:1:20: Syntax error: ')

    status = refusal(lambda: admission.create_validating_admission_policy(policy("no-params", "params.x == 1")))[1]
    assert status["details"]["causes"][0]["message"] == (
        "Invalid value: \"params.x == 1\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' "
        "(in container '')\n | params.x == 1\n | ^")


def test_binding_to_a_missing_policy_does_nothing(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy_binding(binding("b", "no-such-policy", ns))
    assert core.create_namespaced_service(ns, service("x", "NodePort")).metadata.name == "x"


def test_deleting_the_binding_lifts_the_denial(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy("p", NO_NODEPORT))
    admission.create_validating_admission_policy_binding(binding("b", "p", ns))
    assert refusal(lambda: core.create_namespaced_service(ns, service("x", "NodePort")))[0] == 422

    admission.delete_validating_admission_policy_binding("b")
    assert core.create_namespaced_service(ns, service("x", "NodePort")).metadata.name == "x"


def test_kubectl_prints_the_denial(vap_sandbox, admission, namespace, tmp_path):
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH (.ci/run installs it)"
    ns = namespace()
    admission.create_validating_admission_policy(policy("deny-nodeport", NO_NODEPORT, validation={
        "message": "NodePort services are not allowed", "reason": "Forbidden"}))
    admission.create_validating_admission_policy_binding(binding("deny-nodeport-binding", "deny-nodeport", ns))
    manifest = tmp_path / "service.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  namespace: {ns}\n"
                        "spec:\n  type: NodePort\n  ports:\n  - port: 80\n")

    env = dict(os.environ, KUBECONFIG=vap_sandbox[1], KUBECACHEDIR=str(tmp_path / "cache"))
    result = subprocess.run([binary, "create", "-f", str(manifest)], env=env, capture_output=True, text=True,
                            timeout=60)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server (Forbidden): error when creating "{manifest}": services "x" is forbidden: '
        "ValidatingAdmissionPolicy 'deny-nodeport' with binding 'deny-nodeport-binding' denied request: "
        "NodePort services are not allowed")


def test_audit_annotation_errors_deny_under_fail_whatever_the_actions(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy("audited", "true", auditAnnotations=[
        {"key": "owner", "valueExpression": "object.metadata.labels.owner"},
        {"key": "type", "valueExpression": "has(object.spec.type) ? object.spec.type : null"}]))
    admission.create_validating_admission_policy_binding(binding("b", "audited", ns, actions=("Audit",)))

    code, status = refusal(lambda: core.create_namespaced_service(ns, service("x")))
    assert (code, status["message"]) == (422, 'services "x" is forbidden: ValidatingAdmissionPolicy \'audited\' with '
                                              "binding 'b' denied request: expression 'object.metadata.labels.owner' "
                                              "resulted in error: no such key: labels")
    assert core.create_namespaced_service(ns, service("y", labels={"owner": "team-a"})).metadata.name == "y"

    admission.patch_validating_admission_policy("audited", {"spec": {"auditAnnotations": [
        {"key": "ports", "valueExpression": "object.spec.ports"}]}})
    status = refusal(lambda: core.create_namespaced_service(ns, service("z")))[1]
    assert status["message"].endswith("denied request: valueExpression 'object.spec.ports' resulted in unsupported "
                                      "return type: list. Return type must be either string or null.")

    admission.patch_validating_admission_policy("audited", {"spec": {"failurePolicy": "Ignore"}})
    assert core.create_namespaced_service(ns, service("z")).metadata.name == "z"


def test_policy_and_binding_fields_are_validated_as_the_api_server_does(admission):
    status = refusal(lambda: admission.create_validating_admission_policy(policy(
        "fields", "true",
        matchConditions=[{"name": "same", "expression": "true"}, {"name": "same", "expression": "true"},
                         {"name": "not a name", "expression": "true"}],
        auditAnnotations=[{"key": "k", "valueExpression": "1"}, {"key": "k", "valueExpression": " "}])))[1]
    assert [(cause["field"], cause["message"]) for cause in status["details"]["causes"]] == [
        ("spec.matchConditions[1].name", 'Duplicate value: "same"'),
        ("spec.matchConditions[2].name", "Invalid value: \"not a name\": name part must consist of alphanumeric "
                                         "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                                         "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                                         "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
        ("spec.auditAnnotations[1].valueExpression", "Required value: valueExpression is not specified"),
        ("spec.auditAnnotations[1].key", 'Duplicate value: "k"'),
        ("spec.auditAnnotations[0].valueExpression",
         'Invalid value: "1": must evaluate to one of [string null_type] but got int')]

    status = refusal(lambda: admission.create_validating_admission_policy_binding(binding(
        "b", "fields", None, paramRef={"name": "p"})))[1]
    assert [(cause["field"], cause["message"]) for cause in status["details"]["causes"]] == [
        ("spec.paramRef.parameterNotFoundAction", "Required value")]


def test_params_selected_by_labels_are_each_judged_and_a_binding_without_paramref_gets_null(core, admission,
                                                                                            namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy(
        "max-ports", "params == null || size(object.spec.ports) <= int(params.data.max)",
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
        validation={"messageExpression": "params.metadata.name + ' allows ' + params.data.max + ' port(s)'"}))
    admission.create_validating_admission_policy_binding(binding("b", "max-ports", ns, paramRef={
        "selector": {"matchLabels": {"limits": "ports"}}, "parameterNotFoundAction": "Allow"}))
    two_ports = {"metadata": {"name": "two"}, "spec": {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "b"}]}}

    assert core.create_namespaced_service(ns, two_ports).metadata.name == "two"  # no params found: Allow
    for name, most in (("loose", "5"), ("strict", "1")):
        core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": {"limits": "ports"}},
                                               "data": {"max": most}})
    status = refusal(lambda: core.create_namespaced_service(ns, {**two_ports, "metadata": {"name": "three"}}))[1]
    assert status["message"].endswith("denied request: strict allows 1 port(s)")

    admission.create_validating_admission_policy(policy("needs-params", "params != null",
                                                        paramKind={"apiVersion": "v1", "kind": "ConfigMap"}))
    other = namespace()
    admission.create_validating_admission_policy_binding(binding("unparameterized", "needs-params", other))
    status = refusal(lambda: core.create_namespaced_service(other, service("x")))[1]
    assert status["message"].endswith("denied request: failed expression: params != null")


def test_request_and_namespace_object_have_kubernetes_declared_fields(core, admission, namespace):
    for expression, column, field in (("request.uid != ''", 8, "uid"), ("request.userInfo.name == 'x'", 17, "name"),
                                      ("namespaceObject.spec.owner == 'x'", 21, "owner")):
        cause = refusal(lambda: admission.create_validating_admission_policy(policy("typed", expression)))[1][
            "details"]["causes"][0]
        assert cause["message"] == (f'Invalid value: "{expression}": compilation failed: ERROR: <input>:1:{column}: '
                                    f"undefined field '{field}'\n | {expression}\n | {'.' * (column - 1)}^")

    ns = namespace(team="a")
    admission.create_validating_admission_policy(policy(
        "typed", "request.userInfo.username != 'request.uid' && namespaceObject.metadata.labels.team == 'b'",
        validation={"messageExpression": "request.operation + ' by ' + request.userInfo.username + ' in ' + "
                                         "request.namespace + ' of ' + request.kind.kind"}))
    admission.create_validating_admission_policy_binding(binding("b", "typed", ns))
    status = refusal(lambda: core.create_namespaced_service(ns, service("x")))[1]
    assert status["message"].endswith(f"denied request: CREATE by sandbox-admin in {ns} of Service")


def test_a_variable_holding_an_optional_is_usable_as_upstream(core, admission, namespace):
    ns = namespace()
    admission.create_validating_admission_policy(policy(
        "optional-variable", "variables.team.orValue('none') != 'none' && variables.owner.hasValue()",
        variables=[{"name": "labels", "expression": "object.metadata.?labels"},
                   {"name": "team", "expression": "variables.labels.orValue({}).?team"},
                   {"name": "owner", "expression": "variables.labels[?'owner']"}],
        validation={"messageExpression": "'team ' + variables.team.orValue('none')"}))
    admission.create_validating_admission_policy_binding(binding("b", "optional-variable", ns))

    assert refusal(lambda: core.create_namespaced_service(ns, service("x")))[1]["message"].endswith(
        "denied request: team none")
    assert refusal(lambda: core.create_namespaced_service(ns, service("y", labels={"team": "a"})))[1][
        "message"].endswith("denied request: team a")
    assert core.create_namespaced_service(ns, service("z", labels={"team": "a", "owner": "b"})).metadata.name == "z"


def test_literal_arguments_are_checked_when_the_policy_is_created(admission):
    for expression, column, function in (("object.metadata.name.matches('[a-z')", 30, "matches"),
                                         ("duration('2 hours') > duration('1h')", 10, "duration"),
                                         ("timestamp('yesterday') < timestamp('2030-01-01T00:00:00Z')", 11,
                                          "timestamp")):
        cause = refusal(lambda: admission.create_validating_admission_policy(policy("literals", expression)))[1][
            "details"]["causes"][0]
        assert cause["message"] == (f'Invalid value: "{expression}": compilation failed: ERROR: <input>:1:{column}: '
                                    f"invalid {function} argument\n | {expression}\n | {'.' * (column - 1)}^")
    admission.create_validating_admission_policy(policy("literals", "object.metadata.name.matches('^[a-z]+$')"))
