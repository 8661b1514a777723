"""The sandbox's RBAC: the authorizer, the bootstrap policy, aggregation, escalation prevention and the access
reviews, each allowed and denied, through the kubernetes client (as the identity under test) and through
`kubectl auth can-i --as`. What is expected is Kubernetes' behaviour as its RBAC documentation and the
kube-apiserver sources state it, not what the sandbox happens to answer."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from identities import api_for

RBAC = "rbac.authorization.k8s.io"


def raw_get(running, token: str, path: str, headers: dict | None = None) -> tuple[int, dict]:
    """(status, JSON answer) of a GET with this bearer token (none: ""), over HTTPS verified with the CA."""
    sent = ({"Authorization": f"Bearer {token}"} if token else {}) | (headers or {})
    request = urllib.request.Request(running.url + path, headers=sent)
    context = ssl.create_default_context(cadata=running.ca_pem.decode())
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            body = response.read()
            return response.status, json.loads(body) if body.startswith(b"{") else {"text": body.decode()}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def user(sandbox):
    """user(groups=()) -> (name, kubernetes ApiClient): a new sandbox user with a token of its own."""
    def make(groups: tuple[str, ...] = ()) -> tuple[str, client.ApiClient]:
        name = unique("user")
        token = sandbox.sandbox.add_user(name, groups)
        return name, api_for(sandbox.sandbox, token)
    return make


@pytest.fixture
def can_i(sandbox, tmp_path):
    """can_i(*args, as_user=None, as_groups=(), user="admin") -> (answer, exit code) of `kubectl auth can-i`."""
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH"

    def ask(*args: str, as_user: str | None = None, as_groups: tuple[str, ...] = (),
            user: str = "admin") -> tuple[str, int]:
        kubeconfig = sandbox.sandbox.write_kubeconfig(tmp_path / f"{user}.kubeconfig", user=user)
        impersonation = ([f"--as={as_user}"] if as_user else []) + [f"--as-group={g}" for g in as_groups]
        result = subprocess.run([binary, "auth", "can-i", *args, *impersonation],
                                env=dict(os.environ, KUBECONFIG=str(kubeconfig),
                                         KUBECACHEDIR=str(tmp_path / "cache")),
                                capture_output=True, text=True, timeout=60)
        return result.stdout.strip(), result.returncode
    return ask


def bind(rbac: client.RbacAuthorizationV1Api, namespace: str | None, role_kind: str, role: str,
         subject: dict) -> str:
    name = unique("binding")
    body = {"metadata": {"name": name}, "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
            "subjects": [subject]}
    if namespace:
        rbac.create_namespaced_role_binding(namespace, body)
    else:
        rbac.create_cluster_role_binding(body)
    return name


def user_subject(name: str) -> dict:
    return {"kind": "User", "apiGroup": RBAC, "name": name}


@pytest.fixture
def rbac(api) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api)


def message(error: client.ApiException) -> str:
    """The Status message of an API error."""
    return json.loads(error.body)["message"]


def status_of(call) -> int:
    try:
        call()
    except client.ApiException as error:
        return error.status
    return 200


# 1. The authorizer.

def test_a_clusterrole_bound_in_one_namespace_is_granted_there_only(rbac, make_namespace, user, can_i):
    granted, other = make_namespace(), make_namespace()
    name, api = user()
    binding = bind(rbac, granted, "ClusterRole", "view", user_subject(name))
    pods = client.CoreV1Api(api)
    assert pods.list_namespaced_pod(granted).items == []
    with pytest.raises(client.ApiException) as denied:
        pods.list_namespaced_pod(other)
    assert denied.value.status == 403
    assert (f'pods is forbidden: User "{name}" cannot list resource "pods" in API group "" in the namespace '
            f'"{other}"') in message(denied.value)
    assert can_i("list", "pods", "-n", granted, as_user=name) == ("yes", 0)
    assert can_i("list", "pods", "-n", other, as_user=name) == ("no", 1)
    assert can_i("list", "pods", "-A", as_user=name) == ("no", 1)  # not across namespaces either
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": granted}}})
    assert review.status.allowed is True
    assert review.status.reason == (f'RBAC: allowed by RoleBinding "{binding}/{granted}" of ClusterRole "view" '
                                    f'to User "{name}"')


def test_deleting_a_binding_or_its_role_revokes_at_once(rbac, make_namespace, user):
    namespace = make_namespace()
    name, api = user()
    role = unique("role")
    rbac.create_namespaced_role(namespace, {"metadata": {"name": role}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})
    binding = bind(rbac, namespace, "Role", role, user_subject(name))
    configmaps = client.CoreV1Api(api)
    assert configmaps.list_namespaced_config_map(namespace).items is not None
    rbac.delete_namespaced_role(role, namespace)
    assert status_of(lambda: configmaps.list_namespaced_config_map(namespace)) == 403  # a binding to nothing
    rbac.create_namespaced_role(namespace, {"metadata": {"name": role}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})
    assert status_of(lambda: configmaps.list_namespaced_config_map(namespace)) == 200
    rbac.delete_namespaced_role_binding(binding, namespace)
    assert status_of(lambda: configmaps.list_namespaced_config_map(namespace)) == 403


def test_a_decision_reads_only_the_bindings_of_its_user_and_groups():
    """The authorizer's index: 2,000 bindings of other users add nothing to what a decision looks at."""
    from chaoskirvis.sandbox.controllers import ClusterStore
    from chaoskirvis.sandbox.rbac import ROLE_BINDINGS, Attributes, Authorizer, UserInfo
    from chaoskirvis.sandbox.store import prepare_create

    store = ClusterStore(b"")
    authorizer = Authorizer(store)
    alice = UserInfo("alice", groups=("team", "system:authenticated"))

    def binding(name: str, subject: dict) -> None:
        store.create(ROLE_BINDINGS, prepare_create(ROLE_BINDINGS, {
            "metadata": {"name": name, "namespace": "ns"}, "subjects": [subject],
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"}}))

    binding("alice", {"kind": "User", "name": "alice"})
    binding("team", {"kind": "Group", "name": "team"})
    for index in range(2000):
        binding(f"other-{index}", {"kind": "User", "name": f"user-{index}"})
    assert not authorizer.authorize(alice, Attributes("get", resource="pods", namespace="ns")).allowed  # no view
    visited = [b.name for b, _ in authorizer._visit(alice, "ns")]
    assert visited == ["alice", "team"]


def test_resource_names_grant_a_named_object_but_no_list(rbac, make_namespace, user, can_i, core):
    namespace = make_namespace()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "allowed"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "other"}})
    role = unique("role")
    rbac.create_namespaced_role(namespace, {"metadata": {"name": role}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["allowed"], "verbs": ["get", "list"]}]})
    name, api = user()
    bind(rbac, namespace, "Role", role, user_subject(name))
    configmaps = client.CoreV1Api(api)
    assert configmaps.read_namespaced_config_map("allowed", namespace).metadata.name == "allowed"
    assert status_of(lambda: configmaps.read_namespaced_config_map("other", namespace)) == 403
    assert status_of(lambda: configmaps.list_namespaced_config_map(namespace)) == 403  # list has no name
    assert can_i("get", "configmap/allowed", "-n", namespace, as_user=name) == ("yes", 0)
    assert can_i("get", "configmap/other", "-n", namespace, as_user=name) == ("no", 1)


def test_subresources_are_authorized_on_their_own(rbac, make_namespace, user, can_i, core, api):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, {"metadata": {"name": "web"},
                                           "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}})
    client.AppsV1Api(api).create_namespaced_deployment(namespace, {
        "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    role = unique("role")
    rbac.create_namespaced_role(namespace, {"metadata": {"name": role}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]}]})
    name, api_as_user = user()
    bind(rbac, namespace, "Role", role, user_subject(name))
    pods, apps = client.CoreV1Api(api_as_user), client.AppsV1Api(api_as_user)
    assert pods.read_namespaced_pod("web", namespace).metadata.name == "web"
    assert apps.read_namespaced_deployment_scale("web", namespace).spec.replicas == 1  # */scale
    assert status_of(lambda: apps.read_namespaced_deployment("web", namespace)) == 403  # not the deployment
    with pytest.raises(client.ApiException) as denied:
        pods.read_namespaced_pod_log("web", namespace)  # pods does not grant pods/log
    assert (f'pods "web" is forbidden: User "{name}" cannot get resource "pods/log" in API group "" in the '
            f'namespace "{namespace}"') in message(denied.value)
    assert can_i("get", "pods", "--subresource=log", "-n", namespace, as_user=name) == ("no", 1)
    assert can_i("get", "deployments.apps", "--subresource=scale", "-n", namespace, as_user=name) == ("yes", 0)


def test_a_node_proxy_path_is_authorized_as_nodes_proxy(rbac, user, sandbox):
    name, _ = user()
    token = sandbox.sandbox.token_of(name)
    status, answer = raw_get(sandbox.sandbox, token, "/api/v1/nodes/kirvis-worker/proxy/healthz")
    assert (status, answer["message"]) == (403, f'nodes "kirvis-worker" is forbidden: User "{name}" cannot get '
                                                'resource "nodes/proxy" in API group "" at the cluster scope')
    role = unique("node-proxy")
    rbac.create_cluster_role({"metadata": {"name": role}, "rules": [
        {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]})
    bind(rbac, None, "ClusterRole", role, user_subject(name))
    assert raw_get(sandbox.sandbox, token, "/api/v1/nodes/kirvis-worker/proxy/healthz") == (200, {"text": "ok"})
    status, answer = raw_get(sandbox.sandbox, token, "/api/v1/nodes/kirvis-worker/proxy/pods")
    assert (status, answer["message"]) == (404, "the sandbox does not serve nodes/proxy/pods: no kubelet runs, "
                                                "only its /healthz answers")


def test_exec_over_a_websocket_needs_create_as_well_as_get(rbac, make_namespace, user, core, sandbox):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, {"metadata": {"name": "web"},
                                           "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}})
    name, _ = user()
    role = unique("role")
    rbac.create_namespaced_role(namespace, {"metadata": {"name": role}, "rules": [
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}]})
    bind(rbac, namespace, "Role", role, user_subject(name))
    from kubernetes.stream import stream
    api = api_for(sandbox.sandbox, sandbox.sandbox.token_of(name))
    with pytest.raises(client.ApiException) as denied:
        stream(client.CoreV1Api(api).connect_get_namespaced_pod_exec, "web", namespace, command=["id"],
               stderr=True, stdout=True, _preload_content=True)
    assert denied.value.status == 0 and "403 Forbidden" in str(denied.value)  # the refused upgrade
    rbac.patch_namespaced_role(role, namespace, {"rules": [
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "create"]}]})
    output = stream(client.CoreV1Api(api).connect_get_namespaced_pod_exec, "web", namespace, command=["id"],
                    stderr=True, stdout=True)
    assert isinstance(output, str)  # served: the sandbox answers the exec (no script: exit 127, a note on stderr)


def test_non_resource_urls_are_authorized_by_the_discovery_roles(user, can_i, sandbox, rbac):
    name, api = user()
    version = client.VersionApi(api).get_code()
    assert version.major == "1"  # /version: system:public-info-viewer and system:discovery
    status, answer = raw_get(sandbox.sandbox, sandbox.sandbox.token_of(name), "/metrics")
    assert (status, answer["message"]) == (403, f'forbidden: User "{name}" cannot get path "/metrics"')
    assert can_i("get", "/version", as_user=name) == ("yes", 0)
    assert can_i("get", "/metrics", as_user=name) == ("no", 1)
    rbac.create_cluster_role(role := {"metadata": {"name": unique("metrics")},
                                      "rules": [{"nonResourceURLs": ["/metr*"], "verbs": ["get"]}]})
    bind(rbac, None, "ClusterRole", role["metadata"]["name"], user_subject(name))
    assert can_i("get", "/metrics", as_user=name) == ("yes", 0)  # a trailing * matches a prefix


def test_group_and_service_account_subjects(rbac, make_namespace, user, can_i, core):
    namespace = make_namespace()
    group = unique("team")
    member, member_api = user(groups=(group,))
    outsider, outsider_api = user()
    bind(rbac, namespace, "ClusterRole", "edit", {"kind": "Group", "apiGroup": RBAC, "name": group})
    secret = {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    assert client.CoreV1Api(member_api).create_namespaced_secret(namespace, secret).metadata.name == "s"
    assert status_of(lambda: client.CoreV1Api(outsider_api).list_namespaced_secret(namespace)) == 403
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "bot"}})
    bind(rbac, namespace, "ClusterRole", "view", {"kind": "ServiceAccount", "name": "bot", "namespace": namespace})
    account = f"system:serviceaccount:{namespace}:bot"
    assert can_i("list", "pods", "-n", namespace, as_user=account) == ("yes", 0)
    assert can_i("list", "secrets", "-n", namespace, as_user=account) == ("no", 1)  # view has no secrets
    assert can_i("create", "secrets", "-n", namespace, as_groups=(group,), as_user=outsider) == ("yes", 0)


# 2. The bootstrap policy.

def test_a_fresh_sandbox_has_the_bootstrap_roles_and_bindings(rbac):
    roles = {role.metadata.name: role for role in rbac.list_cluster_role().items}
    for name in ("cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
                 "system:public-info-viewer", "system:aggregate-to-view"):
        assert roles[name].metadata.labels["kubernetes.io/bootstrapping"] == "rbac-defaults"
        assert roles[name].metadata.annotations["rbac.authorization.kubernetes.io/autoupdate"] == "true"
    assert roles["view"].aggregation_rule.cluster_role_selectors[0].match_labels == {
        "rbac.authorization.k8s.io/aggregate-to-view": "true"}
    assert roles["view"].metadata.labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    bindings = {b.metadata.name: b for b in rbac.list_cluster_role_binding().items}
    assert [(s.kind, s.name) for s in bindings["cluster-admin"].subjects] == [("Group", "system:masters")]
    assert [s.name for s in bindings["system:public-info-viewer"].subjects] == ["system:authenticated",
                                                                                "system:unauthenticated"]


def test_edit_and_admin_hold_what_view_holds_and_more(user, rbac, make_namespace, can_i):
    namespace = make_namespace()
    viewer, editor, admin = user()[0], user()[0], user()[0]
    for name, role in ((viewer, "view"), (editor, "edit"), (admin, "admin")):
        bind(rbac, namespace, "ClusterRole", role, user_subject(name))
    assert [can_i("get", "deployments", "-n", namespace, as_user=u)[0] for u in (viewer, editor, admin)] == \
        ["yes", "yes", "yes"]
    assert [can_i("create", "deployments", "-n", namespace, as_user=u)[0] for u in (viewer, editor, admin)] == \
        ["no", "yes", "yes"]
    assert [can_i("create", "rolebindings", "-n", namespace, as_user=u)[0] for u in (viewer, editor, admin)] == \
        ["no", "no", "yes"]


def test_the_viewer_reads_everything_and_writes_nothing(can_i, sandbox):
    assert can_i("list", "secrets", "-A", user="viewer") == ("yes", 0)
    assert can_i("get", "nodes", user="viewer") == ("yes", 0)
    assert can_i("create", "pods", "-n", "default", user="viewer") == ("no", 1)
    assert can_i("create", "selfsubjectaccessreviews", user="viewer") == ("yes", 0)  # system:basic-user


# 3. Aggregation.

def test_a_labelled_clusterrole_is_aggregated_into_view_edit_and_admin(rbac, make_namespace, user, can_i):
    namespace = make_namespace()
    name, api = user()
    bind(rbac, namespace, "ClusterRole", "view", user_subject(name))
    leases = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list"]}
    assert can_i("list", "leases", "-n", namespace, as_user=name) == ("no", 1)  # view has no leases
    role = unique("leases-view")
    rbac.create_cluster_role({"metadata": {"name": role, "labels": {
        "rbac.authorization.k8s.io/aggregate-to-view": "true"}}, "rules": [leases]})
    try:
        for aggregated in ("view", "edit", "admin"):  # view is aggregated into edit, edit into admin
            rules = [r.to_dict() for r in rbac.read_cluster_role(aggregated).rules]
            assert {"api_groups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list"],
                    "non_resource_urls": None, "resource_names": None} in rules, aggregated
        assert can_i("list", "leases", "-n", namespace, as_user=name) == ("yes", 0)
        assert client.CoordinationV1Api(api).list_namespaced_lease(namespace).items == []
        rbac.patch_cluster_role(role, {"metadata": {"labels": {"rbac.authorization.k8s.io/aggregate-to-view": None}}})
        assert can_i("list", "leases", "-n", namespace, as_user=name) == ("no", 1)
    finally:
        rbac.delete_cluster_role(role)
    assert not any(r.resources == ["leases"] and r.verbs == ["get", "list"] for r in rbac.read_cluster_role("view").rules)


# 4. Escalation prevention.

@pytest.fixture
def namespace_admin(rbac, make_namespace, user):
    """(namespace, name, RBAC client) of a user bound to the admin ClusterRole in a new namespace."""
    namespace = make_namespace()
    name, api = user()
    bind(rbac, namespace, "ClusterRole", "admin", user_subject(name))
    return namespace, name, client.RbacAuthorizationV1Api(api)


def test_a_role_may_grant_only_what_its_writer_holds(namespace_admin):
    namespace, name, own = namespace_admin
    held = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
    assert own.create_namespaced_role(namespace, {"metadata": {"name": "held"}, "rules": [held]}).metadata.name
    escalating = {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "delete"]}
    for dry_run in ("All", None):
        with pytest.raises(client.ApiException) as denied:
            own.create_namespaced_role(namespace, {"metadata": {"name": "more"}, "rules": [escalating]},
                                       dry_run=dry_run)
        assert denied.value.status == 403
        assert (f'roles.rbac.authorization.k8s.io "more" is forbidden: user "{name}" (groups=["system:'
                'authenticated"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], '
                'Resources:["nodes"], Verbs:["get" "delete"]}') in message(denied.value)
    with pytest.raises(client.ApiException) as update:
        own.patch_namespaced_role("held", namespace, {"rules": [held, escalating]})
    assert update.value.status == 403


def test_escalate_lets_a_user_write_roles_beyond_its_own_rights(rbac, namespace_admin, can_i):
    namespace, name, own = namespace_admin
    escalating = {"metadata": {"name": "more"},
                  "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}
    assert status_of(lambda: own.create_namespaced_role(namespace, escalating)) == 403
    assert can_i("escalate", "roles.rbac.authorization.k8s.io", "-n", namespace, as_user=name) == ("no", 1)
    escalate = unique("escalate")
    rbac.create_namespaced_role(namespace, {"metadata": {"name": escalate}, "rules": [
        {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["escalate"]}]})
    bind(rbac, namespace, "Role", escalate, user_subject(name))
    assert can_i("escalate", "roles.rbac.authorization.k8s.io", "-n", namespace, as_user=name) == ("yes", 0)
    assert own.create_namespaced_role(namespace, escalating).metadata.name == "more"


def test_a_binding_needs_the_roles_rights_or_bind(rbac, namespace_admin, user, can_i):
    namespace, name, own = namespace_admin
    other = user()[0]
    binding = {"metadata": {"name": "to-cluster-admin"},
               "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [user_subject(other)]}
    with pytest.raises(client.ApiException) as denied:
        own.create_namespaced_role_binding(namespace, binding)
    assert denied.value.status == 403
    assert ('rolebindings.rbac.authorization.k8s.io "to-cluster-admin" is forbidden: user "' + name +
            '"') in message(denied.value) and "not currently held" in message(denied.value)
    missing = dict(binding, metadata={"name": "to-nothing"}, roleRef=dict(binding["roleRef"], name=unique("nope")))
    with pytest.raises(client.ApiException) as not_found:
        own.create_namespaced_role_binding(namespace, missing)
    assert (not_found.value.status, message(not_found.value)) == (
        404, f'clusterrole.rbac.authorization.k8s.io "{missing["roleRef"]["name"]}" not found')
    # edit's rules are all held by admin in this namespace: binding it is no escalation
    edit_binding = dict(binding, metadata={"name": "to-edit"}, roleRef=dict(binding["roleRef"], name="edit"))
    assert own.create_namespaced_role_binding(namespace, edit_binding).metadata.name == "to-edit"
    bind_role = unique("bind")
    rbac.create_namespaced_role(namespace, {"metadata": {"name": bind_role}, "rules": [
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["view-nodes"]}]})
    bind(rbac, namespace, "Role", bind_role, user_subject(name))
    assert status_of(lambda: own.create_namespaced_role_binding(namespace, binding)) == 403  # not that name
    assert can_i("bind", "clusterroles.rbac.authorization.k8s.io/cluster-admin", "-n", namespace,
                 as_user=name) == ("no", 1)
    assert can_i("bind", "clusterroles.rbac.authorization.k8s.io/view-nodes", "-n", namespace,
                 as_user=name) == ("yes", 0)
    if status_of(lambda: rbac.read_cluster_role("view-nodes")) == 404:  # the session's sandbox may have it
        rbac.create_cluster_role({"metadata": {"name": "view-nodes"},
                                  "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]})
    nodes_binding = dict(binding, metadata={"name": "to-view-nodes"},
                         roleRef=dict(binding["roleRef"], name="view-nodes"))
    assert own.create_namespaced_role_binding(namespace, nodes_binding).metadata.name == "to-view-nodes"


def test_an_aggregation_rule_needs_every_right(rbac, user):
    name, api = user()
    writer = unique("clusterrole-writer")
    rbac.create_cluster_role({"metadata": {"name": writer}, "rules": [
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["create", "delete"]}]})
    bind(rbac, None, "ClusterRole", writer, user_subject(name))
    own = client.RbacAuthorizationV1Api(api)
    held = unique("held")
    own.create_cluster_role({"metadata": {"name": held}, "rules": [
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["delete"]}]})
    own.delete_cluster_role(held)
    gathering = unique("gathering")
    with pytest.raises(client.ApiException) as denied:
        own.create_cluster_role({"metadata": {"name": gathering}, "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}})
    assert message(denied.value) == (f'clusterroles.rbac.authorization.k8s.io "{gathering}" is forbidden: must have '
                                     "cluster-admin privileges to use the aggregationRule")


# 8. Access reviews.

def test_subject_access_reviews_answer_for_another_subject(rbac, make_namespace, user, api):
    namespace = make_namespace()
    name, api_as_user = user()
    binding = bind(rbac, namespace, "ClusterRole", "view", user_subject(name))
    reviews = client.AuthorizationV1Api(api)
    allowed = reviews.create_subject_access_review({"spec": {"user": name, "resourceAttributes": {
        "verb": "get", "resource": "pods", "namespace": namespace}}})
    assert allowed.status.allowed is True
    assert allowed.status.reason == (f'RBAC: allowed by RoleBinding "{binding}/{namespace}" of ClusterRole "view" '
                                     f'to User "{name}"')
    denied = reviews.create_namespaced_local_subject_access_review(namespace, {
        "metadata": {"namespace": namespace},
        "spec": {"user": name, "resourceAttributes": {"verb": "delete", "resource": "pods", "namespace": namespace}}})
    assert denied.status.allowed is False and not denied.status.reason
    # the user itself may not ask about others (no create on subjectaccessreviews)
    with pytest.raises(client.ApiException) as refused:
        client.AuthorizationV1Api(api_as_user).create_subject_access_review(
            {"spec": {"user": "someone", "resourceAttributes": {"verb": "get", "resource": "pods"}}})
    assert refused.value.status == 403
    assert (f'subjectaccessreviews.authorization.k8s.io is forbidden: User "{name}" cannot create resource '
            '"subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope') in message(refused.value)


def test_can_i_list_shows_the_rules_a_binding_gives(rbac, make_namespace, user, sandbox, tmp_path):
    namespace = make_namespace()
    name = user()[0]
    role = unique("role")
    rbac.create_namespaced_role(namespace, {"metadata": {"name": role}, "rules": [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]})
    bind(rbac, namespace, "Role", role, user_subject(name))
    kubeconfig = sandbox.sandbox.write_kubeconfig(tmp_path / "admin", user="admin")
    listed = subprocess.run(["kubectl", "auth", "can-i", "--list", "-n", namespace, f"--as={name}"],
                            env=dict(os.environ, KUBECONFIG=str(kubeconfig)), capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert ["deployments.apps", "[]", "[]", "[get", "patch]"] in lines
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in lines
    elsewhere = subprocess.run(["kubectl", "auth", "can-i", "--list", "-n", "default", f"--as={name}"],
                               env=dict(os.environ, KUBECONFIG=str(kubeconfig)), capture_output=True, text=True,
                               timeout=60)
    assert "deployments.apps" not in elsewhere.stdout


def test_a_kubeconfig_for_an_added_user_carries_its_own_token(sandbox, tmp_path, user):
    name = user()[0]
    path = sandbox.sandbox.write_kubeconfig(tmp_path / "k", user=name)
    assert sandbox.sandbox.token_of(name) in Path(path).read_text()
    assert sandbox.sandbox.admin_token not in Path(path).read_text()
