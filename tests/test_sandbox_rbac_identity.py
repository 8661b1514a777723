"""Identities in the sandbox: its users' tokens, anonymous requests, ServiceAccount tokens (TokenRequest and
legacy Secrets) and impersonation, each allowed and denied, through the kubernetes client and kubectl, as
kube-apiserver's authenticators and impersonation filter answer."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import time
import urllib.request

import pytest
from kubernetes import client

from chaoskirvis.sandbox.server import Sandbox
from tests.test_sandbox_rbac import RBAC, api_for, bind, can_i, message, raw_get, rbac, unique, user, \
    user_subject  # noqa: F401 (fixtures)


def whoami(api: client.ApiClient) -> dict:
    review = client.AuthenticationV1Api(api).create_self_subject_review({})
    return {"username": review.status.user_info.username, "groups": review.status.user_info.groups}


def kubectl(sandbox, tmp_path, *args: str, user: str = "admin", token: str | None = None):
    kubeconfig = sandbox.sandbox.write_kubeconfig(tmp_path / f"{user}.kubeconfig", user=user)
    command = ["kubectl", *args] + ([f"--token={token}"] if token else [])
    return subprocess.run(command, env=dict(os.environ, KUBECONFIG=str(kubeconfig),
                                            KUBECACHEDIR=str(tmp_path / "cache")),
                          capture_output=True, text=True, timeout=60)


def token_request(core: client.CoreV1Api, namespace: str, name: str, **spec) -> str:
    answer = core.create_namespaced_service_account_token(name, namespace, {"spec": spec})
    return answer.status.token


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# 5. Authentication.

def test_an_added_user_is_authenticated_and_holds_nothing_until_bound(sandbox, user, tmp_path):
    name, api = user(groups=("team-a",))
    assert whoami(api) == {"username": name, "groups": ["team-a", "system:authenticated"]}
    assert raw_get(sandbox.sandbox, sandbox.sandbox.token_of(name), "/api/v1/namespaces/default/pods")[0] == 403
    assert raw_get(sandbox.sandbox, "not-a-token", "/version")[0] == 401
    listed = kubectl(sandbox, tmp_path, "auth", "whoami", user=name)
    assert listed.returncode == 0 and name in listed.stdout and "system:authenticated" in listed.stdout


def test_anonymous_requests_are_401_unless_anonymous_auth_is_on(sandbox):
    assert raw_get(sandbox.sandbox, "", "/version")[0] == 401
    with Sandbox(anonymous_auth=True) as anonymous:
        assert raw_get(anonymous, "", "/version")[0] == 200  # system:public-info-viewer
        status, answer = raw_get(anonymous, "", "/api/v1/namespaces/default/pods")
        assert (status, answer["message"]) == (403, 'pods is forbidden: User "system:anonymous" cannot list '
                                                    'resource "pods" in API group "" in the namespace "default"')
        assert raw_get(anonymous, "", "/apis")[0] == 403  # system:discovery is for authenticated users only
        assert raw_get(anonymous, "wrong", "/version")[0] == 401  # a bad token is never anonymous


# 6. ServiceAccount tokens.

def test_a_token_request_token_acts_as_its_service_account(core, rbac, make_namespace, sandbox, tmp_path):
    namespace = make_namespace()
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    token = token_request(core, namespace, "bot")
    claims = claims_of(token)
    assert claims["sub"] == f"system:serviceaccount:{namespace}:bot"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "bot"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    api = api_for(sandbox.sandbox, token)
    assert whoami(api) == {"username": f"system:serviceaccount:{namespace}:bot",
                           "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                      "system:authenticated"]}
    pods = client.CoreV1Api(api)
    with pytest.raises(client.ApiException) as denied:
        pods.list_namespaced_pod(namespace)
    assert message(denied.value) == (f'pods is forbidden: User "system:serviceaccount:{namespace}:bot" cannot list '
                                     f'resource "pods" in API group "" in the namespace "{namespace}"')
    bind(rbac, namespace, "ClusterRole", "view", {"kind": "ServiceAccount", "name": "bot", "namespace": namespace})
    assert pods.list_namespaced_pod(namespace).items == []
    created = kubectl(sandbox, tmp_path, "create", "token", "bot", "-n", namespace)
    assert created.returncode == 0, created.stderr
    assert kubectl(sandbox, tmp_path, "auth", "can-i", "list", "pods", "-n", namespace,
                   token=created.stdout.strip()).stdout.strip() == "yes"


def test_token_request_refusals(core, make_namespace, sandbox, user):
    namespace = make_namespace()
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    with pytest.raises(client.ApiException) as missing:
        token_request(core, namespace, "nobody")
    assert (missing.value.status, message(missing.value)) == (404, 'serviceaccounts "nobody" not found')
    with pytest.raises(client.ApiException) as short:
        token_request(core, namespace, "bot", expiration_seconds=599)
    assert short.value.status == 422
    assert "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes" in \
        message(short.value)
    assert claims_of(token_request(core, namespace, "bot", expiration_seconds=600))["exp"] > time.time() + 590
    name, api = user()
    with pytest.raises(client.ApiException) as refused:
        token_request(client.CoreV1Api(api), namespace, "bot")
    assert message(refused.value) == (f'serviceaccounts "bot" is forbidden: User "{name}" cannot create resource '
                                      f'"serviceaccounts/token" in API group "" in the namespace "{namespace}"')


def test_a_token_for_another_audience_does_not_authenticate(core, make_namespace, sandbox):
    namespace = make_namespace()
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    vault = token_request(core, namespace, "bot", audiences=["vault"])
    assert claims_of(vault)["aud"] == ["vault"]
    assert raw_get(sandbox.sandbox, vault, "/version")[0] == 401
    assert raw_get(sandbox.sandbox, token_request(core, namespace, "bot"), "/version")[0] == 200


def test_a_bound_token_stops_working_when_its_secret_or_service_account_goes(core, make_namespace, sandbox):
    namespace = make_namespace()
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "anchor"}, "stringData": {"k": "v"}})
    bound = token_request(core, namespace, "bot", bound_object_ref={"kind": "Secret", "apiVersion": "v1",
                                                                    "name": "anchor"})
    unbound = token_request(core, namespace, "bot")
    assert claims_of(bound)["kubernetes.io"]["secret"]["name"] == "anchor"
    assert raw_get(sandbox.sandbox, bound, "/version")[0] == 200
    core.delete_namespaced_secret("anchor", namespace)
    assert raw_get(sandbox.sandbox, bound, "/version")[0] == 401
    core.create_namespaced_secret(namespace, {"metadata": {"name": "anchor"}, "stringData": {"k": "v"}})
    assert raw_get(sandbox.sandbox, bound, "/version")[0] == 401  # a new secret of that name has another uid
    assert raw_get(sandbox.sandbox, unbound, "/version")[0] == 200
    core.delete_namespaced_service_account("bot", namespace)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    assert raw_get(sandbox.sandbox, unbound, "/version")[0] == 401  # bound to the first ServiceAccount's uid
    with pytest.raises(client.ApiException) as missing:
        token_request(core, namespace, "bot", bound_object_ref={"kind": "Pod", "apiVersion": "v1", "name": "no"})
    assert (missing.value.status, message(missing.value)) == (404, 'pods "no" not found')


def test_a_legacy_service_account_token_secret(core, rbac, make_namespace, sandbox):
    namespace = make_namespace()
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "legacy"}})
    core.create_namespaced_secret(namespace, {
        "metadata": {"name": "legacy-token", "annotations": {"kubernetes.io/service-account.name": "legacy"}},
        "type": "kubernetes.io/service-account-token"})
    secret = core.read_namespaced_secret("legacy-token", namespace)
    assert base64.b64decode(secret.data["namespace"]).decode() == namespace
    assert base64.b64decode(secret.data["ca.crt"]) == sandbox.sandbox.ca_pem
    token = base64.b64decode(secret.data["token"]).decode()
    assert secret.metadata.annotations["kubernetes.io/service-account.uid"] == \
        core.read_namespaced_service_account("legacy", namespace).metadata.uid
    bind(rbac, namespace, "ClusterRole", "edit", {"kind": "ServiceAccount", "name": "legacy",
                                                  "namespace": namespace})
    status, _ = raw_get(sandbox.sandbox, token, f"/api/v1/namespaces/{namespace}/secrets")
    assert status == 200
    assert raw_get(sandbox.sandbox, token, "/api/v1/namespaces/default/secrets")[0] == 403
    core.delete_namespaced_secret("legacy-token", namespace)
    assert raw_get(sandbox.sandbox, token, "/version")[0] == 401
    core.create_namespaced_secret(namespace, {
        "metadata": {"name": "no-account", "annotations": {"kubernetes.io/service-account.name": "ghost"}},
        "type": "kubernetes.io/service-account-token"})
    assert not core.read_namespaced_secret("no-account", namespace).data  # no such ServiceAccount: no token


# 7. Impersonation.

def test_impersonation_needs_the_impersonate_verb(rbac, make_namespace, user, sandbox, can_i):
    namespace = make_namespace()
    alice, _ = user()
    bob, _ = user()
    bind(rbac, namespace, "ClusterRole", "view", user_subject(bob))
    as_bob = api_for(sandbox.sandbox, sandbox.sandbox.token_of(alice), impersonate=bob)
    with pytest.raises(client.ApiException) as denied:
        client.CoreV1Api(as_bob).list_namespaced_pod(namespace)
    assert message(denied.value) == (f'users "{bob}" is forbidden: User "{alice}" cannot impersonate resource '
                                     f'"users" in API group "" at the cluster scope')
    impersonator = unique("impersonator")
    rbac.create_cluster_role({"metadata": {"name": impersonator}, "rules": [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": [bob]}]})
    bind(rbac, None, "ClusterRole", impersonator, user_subject(alice))
    seen = len(sandbox.sandbox.requests)
    assert client.CoreV1Api(as_bob).list_namespaced_pod(namespace).items == []
    logged = sandbox.sandbox.requests[seen:][-1]
    assert (logged.user, logged.impersonator) == (bob, alice)  # the effective user, and who acted as it
    assert whoami(as_bob) == {"username": bob, "groups": ["system:authenticated"]}
    assert can_i("list", "pods", "-n", namespace, as_user=bob, user=alice) == ("yes", 0)
    assert can_i("list", "pods", "-n", namespace, as_user=unique("carol"), user=alice)[1] == 1  # not that name


def test_impersonating_a_service_account_and_a_group(rbac, make_namespace, user, sandbox, core, can_i):
    namespace = make_namespace()
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    alice, _ = user()
    account = f"system:serviceaccount:{namespace}:bot"
    bind(rbac, namespace, "ClusterRole", "edit", {"kind": "ServiceAccount", "name": "bot", "namespace": namespace})
    assert can_i("create", "pods", "-n", namespace, as_user=account, user=alice) == ("", 1)  # refused, no answer
    impersonate = unique("impersonate-sa")
    rbac.create_namespaced_role(namespace, {"metadata": {"name": impersonate}, "rules": [
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}]})
    bind(rbac, namespace, "Role", impersonate, user_subject(alice))
    assert can_i("create", "pods", "-n", namespace, as_user=account, user=alice) == ("yes", 0)
    as_account = api_for(sandbox.sandbox, sandbox.sandbox.token_of(alice), impersonate=account)
    assert whoami(as_account)["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                            "system:authenticated"]
    group = unique("auditors")
    bind(rbac, namespace, "ClusterRole", "view", {"kind": "Group", "apiGroup": RBAC, "name": group})
    bob = unique("bob")
    users_and_groups = unique("impersonate-users-groups")
    rbac.create_cluster_role({"metadata": {"name": users_and_groups}, "rules": [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]})
    bind(rbac, None, "ClusterRole", users_and_groups, user_subject(alice))
    assert can_i("get", "pods", "-n", namespace, as_user=bob, as_groups=(group,), user=alice) == ("", 1)
    rbac.patch_cluster_role(users_and_groups, {"rules": [
        {"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]}]})
    assert can_i("get", "pods", "-n", namespace, as_user=bob, as_groups=(group,), user=alice) == ("yes", 0)
    assert can_i("get", "pods", "-n", namespace, as_user=bob, user=alice) == ("no", 1)  # bob alone holds nothing


def test_impersonating_a_uid_and_extras_needs_their_own_rights(rbac, user, sandbox):
    alice, _ = user()
    bob = unique("bob")
    asked = {"Impersonate-User": bob, "Impersonate-Uid": "u-1", "Impersonate-Extra-Scopes": "view"}
    users_only = unique("impersonate-users")
    rbac.create_cluster_role({"metadata": {"name": users_only}, "rules": [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]})
    bind(rbac, None, "ClusterRole", users_only, user_subject(alice))
    token = sandbox.sandbox.token_of(alice)
    status, answer = raw_get(sandbox.sandbox, token, "/version", asked)
    assert (status, answer["message"]) == (403, f'userextras.authentication.k8s.io "view" is forbidden: User '
                                                f'"{alice}" cannot impersonate resource "userextras/scopes" in API '
                                                'group "authentication.k8s.io" at the cluster scope')
    rbac.patch_cluster_role(users_only, {"rules": [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes"], "verbs": ["impersonate"]}]})
    status, answer = raw_get(sandbox.sandbox, token, "/version", asked)
    assert (status, answer["message"]) == (403, f'uids.authentication.k8s.io "u-1" is forbidden: User "{alice}" '
                                                'cannot impersonate resource "uids" in API group '
                                                '"authentication.k8s.io" at the cluster scope')
    rbac.patch_cluster_role(users_only, {"rules": [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes", "uids"],
         "verbs": ["impersonate"]}]})
    assert raw_get(sandbox.sandbox, token, "/version", asked)[0] == 200
    request = urllib.request.Request(sandbox.sandbox.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                     method="POST", data=b"{}", headers={
                                         "Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                         **asked})
    context = ssl.create_default_context(cadata=sandbox.sandbox.ca_pem.decode())
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        user_info = json.loads(response.read())["status"]["userInfo"]
    assert user_info == {"username": bob, "uid": "u-1", "groups": ["system:authenticated"],
                         "extra": {"scopes": ["view"]}}


def test_a_group_without_a_user_is_not_impersonated(sandbox):
    status, answer = raw_get(sandbox.sandbox, sandbox.sandbox.viewer_token, "/version",
                             {"Impersonate-Group": "system:masters"})
    assert (status, answer["message"]) == (500, "Internal error occurred: requested [{Group  system:masters    }] "
                                                "without impersonating a user")
