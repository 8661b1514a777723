"""The CEL authorizer library in the sandbox's ValidatingAdmissionPolicies, over real HTTPS with the real
`kubernetes` client: checks made as the request's user (or a service account) against the sandbox's RBAC, as
kube-apiserver's `k8s.io/apiserver/pkg/cel/library/authz.go` makes them.

Policies apply cluster-wide, so this module runs its own sandbox; each test binds its policies to objects of its
own (a namespace, or a label) and removes everything afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from chaoskirvis.sandbox.server import Sandbox
from identities import api_for

RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def authz_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, str]]:
    with Sandbox() as running:
        yield running, str(running.write_kubeconfig(tmp_path_factory.mktemp("authz") / "kubeconfig"))


@pytest.fixture(scope="module")
def admin(authz_sandbox: tuple[Sandbox, str]) -> client.ApiClient:
    return config.new_client_from_config(authz_sandbox[1])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cleanup(admin: client.ApiClient) -> Iterator[list[Callable[[], Any]]]:
    """Deletions to run after the test, last first (policies before the RBAC objects and namespaces)."""
    deletions: list[Callable[[], Any]] = []
    yield deletions
    for delete in reversed(deletions):
        try:
            delete()
        except client.ApiException as error:
            if error.status != 404:
                raise


@pytest.fixture
def namespace(admin: client.ApiClient, cleanup: list[Callable[[], Any]]) -> str:
    core = client.CoreV1Api(admin)
    name = unique("authz")
    core.create_namespace({"metadata": {"name": name}})
    cleanup.append(lambda: core.delete_namespace(name))
    return name


@pytest.fixture
def user(authz_sandbox: tuple[Sandbox, str]) -> Callable[[], tuple[str, client.ApiClient]]:
    """user() -> (name, kubernetes ApiClient): a new sandbox user with a bearer token of its own."""
    def make() -> tuple[str, client.ApiClient]:
        name = unique("user")
        return name, api_for(authz_sandbox[0], authz_sandbox[0].add_user(name))
    return make


class Rbac:
    """Grants made by the admin, each removed after the test."""

    def __init__(self, admin: client.ApiClient, cleanup: list[Callable[[], Any]]) -> None:
        self.api = client.RbacAuthorizationV1Api(admin)
        self.cleanup = cleanup

    def cluster_role(self, rules: list[dict[str, Any]]) -> str:
        name = unique("role")
        self.api.create_cluster_role({"metadata": {"name": name}, "rules": rules})
        self.cleanup.append(lambda: self.api.delete_cluster_role(name))
        return name

    def grant(self, subject: dict[str, Any], rules: list[dict[str, Any]], namespace: str | None = None) -> str:
        """Bind a new ClusterRole with `rules` to `subject`: in `namespace` (a RoleBinding) or cluster-wide; the
        binding's name."""
        role, name = self.cluster_role(rules), unique("binding")
        body = {"metadata": {"name": name}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                "subjects": [subject]}
        if namespace:
            self.api.create_namespaced_role_binding(namespace, body)
            self.cleanup.append(lambda: self.api.delete_namespaced_role_binding(name, namespace))
        else:
            self.api.create_cluster_role_binding(body)
            self.cleanup.append(lambda: self.api.delete_cluster_role_binding(name))
        return name


@pytest.fixture
def rbac(admin: client.ApiClient, cleanup: list[Callable[[], Any]]) -> Rbac:
    return Rbac(admin, cleanup)


def user_subject(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": RBAC, "name": name}


@pytest.fixture
def admit(admin: client.ApiClient, cleanup: list[Callable[[], Any]]) -> Callable[..., str]:
    """admit(validations, rules, match_resources=None, **spec) -> policy name: a policy and a Deny binding."""
    admission = client.AdmissionregistrationV1Api(admin)

    def create(validations: list[dict[str, Any]], rules: list[dict[str, Any]],
               match_resources: dict[str, Any] | None = None, **spec: Any) -> str:
        name = unique("policy")
        admission.create_validating_admission_policy({"metadata": {"name": name}, "spec": {
            "failurePolicy": "Fail", "matchConstraints": {"resourceRules": rules}, "validations": validations,
            **spec}})
        cleanup.append(lambda: admission.delete_validating_admission_policy(name))
        admission.create_validating_admission_policy_binding({"metadata": {"name": name}, "spec": {
            "policyName": name, "validationActions": ["Deny"], "matchResources": match_resources or {}}})
        cleanup.append(lambda: admission.delete_validating_admission_policy_binding(name))
        return name
    return create


def in_namespace(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def refusal(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(client.ApiException) as error:
        call()
    return error.value.status, json.loads(error.value.body)


def rule(operations: list[str], group: str, resources: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "apiVersions": ["*"], "operations": operations, "resources": resources}


# 1. authorizer.group(...).resource(...).name(...).check(verb), as the request's user.

BIND_CHECK = ("authorizer.group('rbac.authorization.k8s.io').resource('clusterroles').name(object.roleRef.name)"
              ".check('bind').allowed()")


def test_a_rolebinding_is_refused_unless_its_creator_may_bind_its_clusterrole(rbac, namespace, user, admit):
    reader = rbac.cluster_role([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])
    (binder, binder_api), (other, other_api) = user(), user()
    for name in (binder, other):  # both may write bindings and hold the role's rules (RBAC's escalation check)
        rbac.grant(user_subject(name), [{"apiGroups": [RBAC], "resources": ["rolebindings"], "verbs": ["create"]},
                                        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
                   namespace)
    rbac.grant(user_subject(binder), [{"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["bind"],
                                       "resourceNames": [reader]}])

    def binding_of(name: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": reader},
                "subjects": [user_subject("someone")]}

    # without the policy, RBAC lets either create it: the policy is what refuses
    client.RbacAuthorizationV1Api(other_api).create_namespaced_role_binding(
        namespace, binding_of("before-policy"), dry_run="All")
    policy = admit([{"expression": BIND_CHECK}], [rule(["CREATE"], RBAC, ["rolebindings"])], in_namespace(namespace))

    client.RbacAuthorizationV1Api(binder_api).create_namespaced_role_binding(namespace, binding_of("by-binder"))
    code, status = refusal(lambda: client.RbacAuthorizationV1Api(other_api).create_namespaced_role_binding(
        namespace, binding_of("by-other")))

    expected = (f"ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request: failed expression: "
                f"{BIND_CHECK}")
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == f'rolebindings.rbac.authorization.k8s.io "by-other" is forbidden: {expected}'


# 2. authorizer.requestResource: the request's own group, resource, namespace and name.

def test_request_resource_checks_the_requests_own_object(rbac, namespace, user, admit):
    """Only who may delete a ConfigMap may create it: a delete granted for one name admits that name only."""
    (named, named_api), (everything, everything_api), (creator, creator_api) = user(), user(), user()
    create = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}
    rbac.grant(user_subject(named), [create, {**create, "verbs": ["delete"], "resourceNames": ["kept"]}], namespace)
    rbac.grant(user_subject(everything), [{**create, "verbs": ["create", "delete"]}], namespace)
    rbac.grant(user_subject(creator), [create], namespace)
    expression = "authorizer.requestResource.check('delete').allowed()"
    admit([{"expression": expression}], [rule(["CREATE"], "", ["configmaps"])], in_namespace(namespace))

    def create_as(api: client.ApiClient, name: str) -> Any:
        return client.CoreV1Api(api).create_namespaced_config_map(namespace, {"metadata": {"name": name}})

    create_as(named_api, "kept")
    create_as(everything_api, "anything")
    for api, name in ((named_api, "other"), (creator_api, "mine")):
        code, status = refusal(lambda: create_as(api, name))
        assert (code, status["reason"]) == (422, "Invalid")
        assert status["message"].endswith(f"denied request: failed expression: {expression}")


def test_request_resource_carries_the_subresource(rbac, namespace, user, admit, admin):
    """A scale update is checked as deployments/scale: update on deployments alone does not allow it."""
    (scaler, scaler_api), (updater, updater_api) = user(), user()
    deployments = {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"],
                   "verbs": ["get", "patch", "update"]}
    rbac.grant(user_subject(scaler), [deployments, {**deployments, "resources": ["deployments/scale"],
                                                    "verbs": ["approve"]}], namespace)
    rbac.grant(user_subject(updater), [deployments, {**deployments, "resources": ["deployments"],
                                                     "verbs": ["approve"]}], namespace)
    client.AppsV1Api(admin).create_namespaced_deployment(namespace, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause"}]}}}})
    admit([{"expression": "authorizer.requestResource.check('approve').allowed()"}],
          [rule(["UPDATE"], "apps", ["deployments/scale"])], in_namespace(namespace))

    def scale_as(api: client.ApiClient, replicas: int) -> Any:
        return client.AppsV1Api(api).patch_namespaced_deployment_scale("web", namespace,
                                                                       {"spec": {"replicas": replicas}})

    assert scale_as(scaler_api, 2).spec.replicas == 2
    code, status = refusal(lambda: scale_as(updater_api, 3))
    assert (code, status["reason"]) == (422, "Invalid")
    assert 'deployments.apps "web" is forbidden: ValidatingAdmissionPolicy' in status["message"]


# 3. Upstream's Test_ValidateSecondaryAuthorization (test/integration/apiserver/cel/validatingadmissionpolicy_test.go):
# a policy on namespace creation with one expression; the principal may create namespaces, and is granted the
# case's rule; an allowed case creates the namespace, a denied one is refused with reason Invalid.

SECONDARY_AUTHORIZATION = [
    pytest.param({"verbs": ["create"], "apiGroups": ["apps"], "resources": ["deployments/status"],
                  "resourceNames": ["charmander"]},
                 "authorizer.group('apps').resource('deployments').subresource('status').namespace('default')"
                 ".namespace('default').name('charmander').check('create').allowed()", None, True,
                 id="principal is allowed to create a specific deployment"),
    pytest.param(None, "authorizer.group('apps').resource('deployments').subresource('status').namespace('default')"
                       ".name('charmander').check('create').allowed()", None, False,
                 id="principal is not allowed to create a specific deployment"),
    pytest.param({"verbs": ["anthropomorphize"], "apiGroups": [""], "resources": ["namespaces"]},
                 "authorizer.requestResource.check('anthropomorphize').allowed()", None, True,
                 id="principal is authorized for custom verb on current resource"),
    pytest.param(None, "authorizer.requestResource.check('anthropomorphize').allowed()", None, False,
                 id="principal is not authorized for custom verb on current resource"),
    pytest.param(None, "authorizer.serviceAccount('default', 'extra-acct').group('').resource('pods')"
                       ".check('anthropomorphize').allowed()",
                 {"verbs": ["anthropomorphize"], "apiGroups": [""], "resources": ["pods"]}, True,
                 id="serviceaccount is authorized for custom verb on current resource"),
]


@pytest.mark.parametrize("principal", ["user", "serviceaccount"])
@pytest.mark.parametrize(("granted", "expression", "extra_account_rule", "allowed"), SECONDARY_AUTHORIZATION)
def test_secondary_authorization_as_upstream_tests_it(authz_sandbox, rbac, admit, admin, cleanup, principal,
                                                      granted, expression, extra_account_rule, allowed):
    sandbox = authz_sandbox[0]
    rules = [{"verbs": ["create", "update"], "apiGroups": [""], "resources": ["namespaces"]}]
    if principal == "user":
        name = unique("alice")
        subject = user_subject(name)
    else:
        account = unique("test-service-acct")
        name, subject = f"system:serviceaccount:default:{account}", {"kind": "ServiceAccount", "name": account,
                                                                     "namespace": "default"}
    rbac.grant(subject, rules + ([granted] if granted else []))
    if extra_account_rule:  # upstream names it extra-acct in default; removed after, as every grant
        rbac.grant({"kind": "ServiceAccount", "name": "extra-acct", "namespace": "default"},
                   rules + [extra_account_rule])
    label = unique("case")
    admit([{"expression": expression}], [rule(["CREATE"], "", ["namespaces"])],
          {"objectSelector": {"matchLabels": {"authz-case": label}}})
    as_principal = client.CoreV1Api(api_for(sandbox, sandbox.admin_token, impersonate=name))
    created = unique("test-authz")

    def create() -> Any:
        return as_principal.create_namespace({"metadata": {"name": created, "labels": {"authz-case": label}}})

    if allowed:
        create()
        cleanup.append(lambda: client.CoreV1Api(admin).delete_namespace(created))
    else:
        code, status = refusal(create)
        assert (code, status["reason"]) == (422, "Invalid")
        assert status["message"].endswith(f"denied request: failed expression: {expression}")


# 4. authorizer.serviceAccount: the account's user and groups, without system:authenticated.

def test_a_service_accounts_checks_reach_its_groups_but_not_system_authenticated(rbac, namespace, admit, admin):
    account = unique("sa")
    reach = {"apiGroups": [""], "resources": ["pods"], "verbs": ["anthropomorphize"]}
    rbac.grant({"kind": "Group", "apiGroup": RBAC, "name": "system:authenticated"}, [reach])
    rbac.grant({"kind": "Group", "apiGroup": RBAC, "name": f"system:serviceaccounts:{namespace}"},
               [{**reach, "verbs": ["befriend"]}])
    rbac.grant({"kind": "ServiceAccount", "name": account, "namespace": namespace}, [{**reach, "verbs": ["greet"]}])
    checks = {verb: f"authorizer.serviceAccount('{namespace}', '{account}').group('').resource('pods')"
                    f".namespace('{namespace}').check('{verb}').allowed()"
              for verb in ("anthropomorphize", "befriend", "greet")}
    admit([{"expression": f"{checks['befriend']} && {checks['greet']}", "message": "its groups and itself"},
           {"expression": f"!{checks['anthropomorphize']}", "message": "not system:authenticated"},
           {"expression": "authorizer.group('').resource('pods').check('anthropomorphize').allowed()",
            "message": "the requesting user is in system:authenticated"}],
          [rule(["CREATE"], "", ["configmaps"])], in_namespace(namespace))

    client.CoreV1Api(admin).create_namespaced_config_map(namespace, {"metadata": {"name": "admitted"}})

    # the control: another account, bound to nothing, fails the first validation only
    checks_other = checks["greet"].replace(account, f"{account}-other")
    admit([{"expression": checks_other, "message": "an unbound account"}],
          [rule(["CREATE"], "", ["configmaps"])], in_namespace(namespace))
    code, status = refusal(lambda: client.CoreV1Api(admin).create_namespaced_config_map(
        namespace, {"metadata": {"name": "refused"}}))
    assert (code, status["message"].rsplit(": ", 1)[-1]) == (422, "an unbound account")


def test_a_match_condition_can_exempt_who_holds_a_permission(rbac, namespace, user, admit):
    """matchConditions declare the authorizer too: a policy that skips users granted a custom verb."""
    (exempt, exempt_api), (other, other_api) = user(), user()
    for name in (exempt, other):
        rbac.grant(user_subject(name), [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
                   namespace)
    rbac.grant(user_subject(exempt), [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["exempt"]}],
               namespace)
    admit([{"expression": "false", "message": "not exempt"}], [rule(["CREATE"], "", ["configmaps"])],
          in_namespace(namespace),
          matchConditions=[{"name": "not-exempt",
                            "expression": "!authorizer.requestResource.check('exempt').allowed()"}])

    client.CoreV1Api(exempt_api).create_namespaced_config_map(namespace, {"metadata": {"name": "exempt"}})
    code, status = refusal(lambda: client.CoreV1Api(other_api).create_namespaced_config_map(
        namespace, {"metadata": {"name": "other"}}))
    assert (code, status["message"].rsplit(": ", 1)[-1]) == (422, "not exempt")


# 5. Decisions: reason(), errored(), error(); and path checks.

def test_a_decisions_reason_is_the_rbac_authorizers(rbac, namespace, user, admit):
    name, api = user()
    binding = rbac.grant(user_subject(name), [{"apiGroups": [""], "resources": ["configmaps"],
                                               "verbs": ["create", "delete"]}], namespace)
    role = rbac.api.read_namespaced_role_binding(binding, namespace).role_ref.name
    admit([{"expression": "false", "messageExpression": "variables.reason + ' | ' + variables.denied + ' | ' "
                                                         "+ string(variables.errored) + variables.error"}],
          [rule(["CREATE"], "", ["configmaps"])], in_namespace(namespace),
          variables=[{"name": "reason", "expression": "authorizer.requestResource.check('delete').reason()"},
                     {"name": "denied", "expression": "authorizer.requestResource.check('patch').reason()"},
                     {"name": "errored", "expression": "authorizer.requestResource.check('delete').errored()"},
                     {"name": "error", "expression": "authorizer.requestResource.check('delete').error()"}])

    status = refusal(lambda: client.CoreV1Api(api).create_namespaced_config_map(
        namespace, {"metadata": {"name": "x"}}))[1]

    assert status["message"].endswith(
        f'denied request: RBAC: allowed by RoleBinding "{binding}/{namespace}" of ClusterRole "{role}" to User '
        f'"{name}" |  | false')


def test_path_checks_ask_for_the_non_resource_url(rbac, namespace, user, admit):
    (reader, reader_api), (other, other_api) = user(), user()
    rbac.grant(user_subject(reader), [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    for name in (reader, other):
        rbac.grant(user_subject(name), [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
                   namespace)
    admit([{"expression": "authorizer.path('/metrics').check('get').allowed()"}],
          [rule(["CREATE"], "", ["configmaps"])], in_namespace(namespace))

    client.CoreV1Api(reader_api).create_namespaced_config_map(namespace, {"metadata": {"name": "metrics-reader"}})
    code, _ = refusal(lambda: client.CoreV1Api(other_api).create_namespaced_config_map(
        namespace, {"metadata": {"name": "not-a-reader"}}))
    assert code == 422


@pytest.mark.parametrize(("expression", "error"), [
    ("authorizer.path('  ').check('get').allowed()", "path must not be empty"),
    ("authorizer.group('apps').resource('').check('get').allowed()", "resource must not be empty"),
    ("authorizer.serviceAccount('not@a#valid!namespace', 'validname').group('').resource('pods').check('get')"
     ".allowed()", "Invalid service account namespace"),
    ("authorizer.serviceAccount('default', 'invalid@*name').group('').resource('pods').check('get').allowed()",
     "Invalid service account name"),
])
def test_invalid_arguments_are_errors_in_upstreams_words(namespace, admit, admin, expression, error):
    admit([{"expression": expression}], [rule(["CREATE"], "", ["configmaps"])], in_namespace(namespace))
    code, status = refusal(lambda: client.CoreV1Api(admin).create_namespaced_config_map(
        namespace, {"metadata": {"name": "x"}}))
    assert code == 422
    assert status["message"].endswith(f"denied request: expression '{expression}' resulted in error: {error}")


def test_the_cluster_admin_is_allowed_every_check(namespace, admit, admin):
    """system:masters is allowed before RBAC, with no reason, as kube-apiserver's privileged-groups authorizer."""
    admit([{"expression": "authorizer.group('example.com').resource('widgets').check('frobnicate').allowed() && "
                          "authorizer.path('/anything').check('post').reason() == ''"}],
          [rule(["CREATE"], "", ["configmaps"])], in_namespace(namespace))
    assert client.CoreV1Api(admin).create_namespaced_config_map(namespace, {"metadata": {"name": "x"}}).metadata.name


# 6. The examples of Kubernetes' docs (content/en/docs/reference/using-api/cel.md, "Kubernetes authorizer
# library" and its selectors table), in one policy.

DOCS_EXAMPLES = [
    "authorizer.group('').resource('pods').namespace('default').check('create').allowed()",
    "authorizer.path('/healthz').check('get').allowed()",
    "authorizer.group('').resource('pods').fieldSelector('spec.nodeName=mynode').check('list').allowed()",
    "authorizer.group('').resource('pods').labelSelector('example.com/mylabel=myvalue').check('list').allowed()",
]


def test_the_docs_examples_decide_as_documented(rbac, namespace, user, admit):
    """One user granted what the examples check, one granted only the first, one granted none: the first refusal
    answers (the dispatcher's first denied decision), so each shows where it stops."""
    (granted, granted_api), (creator, creator_api), (plain, plain_api) = user(), user(), user()
    for name in (granted, creator, plain):
        rbac.grant(user_subject(name), [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
                   namespace)
    for name in (granted, creator):
        rbac.grant(user_subject(name), [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}], "default")
    rbac.grant(user_subject(granted), [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}])
    admit([{"expression": expression} for expression in DOCS_EXAMPLES], [rule(["CREATE"], "", ["configmaps"])],
          in_namespace(namespace))

    def refused_at(api: client.ApiClient) -> tuple[int, str]:
        code, status = refusal(lambda: client.CoreV1Api(api).create_namespaced_config_map(
            namespace, {"metadata": {"name": unique("cm")}}))
        return code, status["message"].rsplit("failed expression: ", 1)[-1]

    client.CoreV1Api(granted_api).create_namespaced_config_map(namespace, {"metadata": {"name": "granted"}})
    # /healthz (the second) is open to every authenticated user: system:public-info-viewer
    assert refused_at(creator_api) == (422, DOCS_EXAMPLES[2])
    assert refused_at(plain_api) == (422, DOCS_EXAMPLES[0])


def test_the_docs_service_account_example_does_not_type_check(admin):
    """The docs' third example calls resource() on an Authorizer, which authz.go declares on a GroupCheck only:
    the API server refuses the policy; so does the sandbox."""
    example = "authorizer.serviceAccount('default', 'myserviceaccount').resource('deployments').check('delete')" \
              ".allowed()"
    code, status = refusal(lambda: client.AdmissionregistrationV1Api(admin).create_validating_admission_policy({
        "metadata": {"name": unique("docs")},
        "spec": {"matchConstraints": {"resourceRules": [rule(["CREATE"], "", ["configmaps"])]},
                 "validations": [{"expression": example}]}}))
    assert code == 422
    column = example.index(".resource(") + len(".resource") + 1  # the call's opening parenthesis
    assert [cause["message"] for cause in status["details"]["causes"]] == [
        f'Invalid value: "{example}": compilation failed: ERROR: <input>:1:{column}: found no matching overload for '
        f"'resource' applied to 'kubernetes.authorization.Authorizer.(string)'\n | {example}\n"
        f" | {'.' * (column - 1)}^"]


# 7. Type checking when the policy is written, in cel-go's words.

def test_the_authorizer_is_type_checked_when_the_policy_is_written(admin):
    admission = client.AdmissionregistrationV1Api(admin)

    def causes(validation: dict[str, Any]) -> list[tuple[str, str]]:
        code, status = refusal(lambda: admission.create_validating_admission_policy({
            "metadata": {"name": unique("typed")},
            "spec": {"matchConstraints": {"resourceRules": [rule(["CREATE"], "", ["configmaps"])]},
                     "validations": [validation]}}))
        assert code == 422
        return [(cause["field"], cause["message"]) for cause in status["details"]["causes"]]

    assert causes({"expression": "authorizer.resource('pods').check('get').allowed()"}) == [
        ("spec.validations[0].expression",
         "Invalid value: \"authorizer.resource('pods').check('get').allowed()\": compilation failed: ERROR: "
         "<input>:1:20: found no matching overload for 'resource' applied to "
         "'kubernetes.authorization.Authorizer.(string)'\n | authorizer.resource('pods').check('get').allowed()\n"
         " | ...................^")]
    assert causes({"expression": "authorizer.group('')"}) == [
        ("spec.validations[0].expression",
         "Invalid value: \"authorizer.group('')\": must evaluate to bool but got kubernetes.authorization.GroupCheck")]
    # messageExpressions are compiled without the authorizer (validating/plugin.go: HasAuthorizer false)
    assert causes({"expression": "true", "messageExpression": "authorizer.requestResource.check('get').reason()"}) == [
        ("spec.validations[0].messageExpression",
         "Invalid value: \"authorizer.requestResource.check('get').reason()\": compilation failed: ERROR: "
         "<input>:1:1: undeclared reference to 'authorizer' (in container '')\n"
         " | authorizer.requestResource.check('get').reason()\n | ^")]
    assert admission.list_validating_admission_policy().items == []
