"""Posture probes read RBAC as the cluster stores it and judge it as the Kubernetes RBAC authorizer would.

Each test creates uniquely named Roles, ClusterRoles and bindings in the session's sandbox (through its
API, like any client), asks the probe, and looks at what the probe says about those objects only (other
tests share the sandbox and bind things of their own); what it made is deleted afterwards.
"""
from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaoskirvis.posture.probes import (effective_permissions, no_anonymous_bindings,
                                        no_service_account_reads_secrets_cluster_wide, no_wildcard_roles_bound,
                                        who_can)

RBAC = "rbac.authorization.k8s.io"
WILDCARD = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
READ_SECRETS = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]


@pytest.fixture
def secrets(sandbox) -> dict[str, str]:
    return {"KUBECONFIG": str(sandbox.kubeconfig)}


@pytest.fixture
def rbac(sandbox) -> Iterator[Callable[..., dict[str, Any]]]:
    """rbac(kind, name, namespace=None, metadata_labels=None, **fields) -> the stored object; deleted after the test."""
    api = client.RbacAuthorizationV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    made: list[tuple[str, str, str | None]] = []

    def make(kind: str, name: str, namespace: str | None = None, metadata_labels: dict[str, str] | None = None,
             **fields: Any) -> dict[str, Any]:
        metadata = {"name": name, **({"namespace": namespace} if namespace else {}),
                    **({"labels": metadata_labels} if metadata_labels else {})}
        stored = sandbox.sandbox.apply(yaml.safe_dump({"apiVersion": f"{RBAC}/v1", "kind": kind,
                                                       "metadata": metadata, **fields}))
        made.append((kind, name, namespace))
        return stored[0]

    yield make
    deletes = {"Role": api.delete_namespaced_role, "RoleBinding": api.delete_namespaced_role_binding,
               "ClusterRole": api.delete_cluster_role, "ClusterRoleBinding": api.delete_cluster_role_binding}
    for kind, name, namespace in reversed(made):
        try:
            deletes[kind](name, namespace) if namespace else deletes[kind](name)
        except client.ApiException as error:
            if error.status != 404:  # gone with its namespace
                raise


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def role_ref(kind: str, name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": kind, "name": name}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": RBAC}


def group(name: str) -> dict[str, str]:
    return {"kind": "Group", "name": name, "apiGroup": RBAC}


def labels(findings: list[dict[str, Any]], binding: str) -> set[str]:
    """The subjects (User:x, ServiceAccount:ns/x) that the findings name through `binding`."""
    found = set()
    for finding in findings:
        if finding["binding"]["name"] == binding:
            subject = finding["subject"]
            name = subject["name"] if subject["kind"] != "ServiceAccount" else \
                f"{subject['namespace']}/{subject['name']}"
            found.add(f"{subject['kind']}:{name}")
    return found


# who can VERB RESOURCE in NAMESPACE

def test_a_rolebinding_to_a_clusterrole_grants_only_in_its_namespace(rbac, make_namespace, secrets):
    here, elsewhere = make_namespace(), make_namespace()
    role, binding = unique("reader"), unique("reader-binding")
    rbac("ClusterRole", role, rules=READ_SECRETS)
    rbac("RoleBinding", binding, here, roleRef=role_ref("ClusterRole", role), subjects=[user("alice")])

    in_namespace = who_can("get", "secrets", here, secrets=secrets)
    other_namespace = who_can("get", "secrets", elsewhere, secrets=secrets)
    cluster_scope = who_can("list", "secrets", secrets=secrets)

    assert labels(in_namespace["findings"], binding) == {"User:alice"}
    finding = next(f for f in in_namespace["findings"] if f["binding"]["name"] == binding)
    assert finding == {"subject": {"kind": "User", "name": "alice"},
                       "binding": {"kind": "RoleBinding", "name": binding, "namespace": here},
                       "role": {"kind": "ClusterRole", "name": role}, "scope": here, "rule": READ_SECRETS[0]}
    assert labels(other_namespace["findings"], binding) == set()
    assert labels(cluster_scope["findings"], binding) == set()


def test_a_clusterrolebinding_grants_in_every_namespace_and_at_the_cluster_scope(rbac, make_namespace, secrets):
    namespace = make_namespace()
    role, binding = unique("reader"), unique("reader-binding")
    rbac("ClusterRole", role, rules=READ_SECRETS)
    rbac("ClusterRoleBinding", binding, roleRef=role_ref("ClusterRole", role), subjects=[group("auditors")])

    assert labels(who_can("watch", "secrets", namespace, secrets=secrets)["findings"], binding) == {"Group:auditors"}
    assert labels(who_can("list", "secrets", secrets=secrets)["findings"], binding) == {"Group:auditors"}
    assert labels(who_can("delete", "secrets", namespace, secrets=secrets)["findings"], binding) == set()


def test_resource_names_grant_the_named_object_only_and_never_a_list(rbac, make_namespace, secrets):
    namespace = make_namespace()
    role, binding = unique("one-secret"), unique("one-secret-binding")
    rbac("Role", role, namespace, rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"],
                                          "resourceNames": ["db-password"]}])
    rbac("RoleBinding", binding, namespace, roleRef=role_ref("Role", role), subjects=[user("bob")])

    assert labels(who_can("get", "secrets", namespace, name="db-password", secrets=secrets)["findings"], binding) \
        == {"User:bob"}
    assert labels(who_can("get", "secrets", namespace, name="api-token", secrets=secrets)["findings"], binding) == set()
    assert labels(who_can("list", "secrets", namespace, secrets=secrets)["findings"], binding) == set()


def test_subresources_and_api_groups_match_as_the_authorizer_matches_them(rbac, make_namespace, secrets):
    namespace = make_namespace()
    role, binding = unique("logs-and-scale"), unique("logs-and-scale-binding")
    rbac("Role", role, namespace, rules=[
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update"]}])
    rbac("RoleBinding", binding, namespace, roleRef=role_ref("Role", role), subjects=[user("carol")])

    def can(verb: str, resource: str, api_group: str = "") -> bool:
        answer = who_can(verb, resource, namespace, api_group=api_group, secrets=secrets)
        return labels(answer["findings"], binding) == {"User:carol"}

    assert can("get", "pods/log")
    assert not can("get", "pods")  # a subresource grant is not a grant of the resource
    assert can("update", "deployments/scale", "apps")
    assert can("update", "statefulsets/scale", "apps")
    assert not can("update", "deployments", "apps")
    assert not can("update", "deployments/scale", "extensions")  # another API group


def test_service_account_subjects_default_to_the_rolebindings_namespace(rbac, make_namespace, secrets):
    namespace = make_namespace()
    role, binding = unique("reader"), unique("sa-binding")
    rbac("Role", role, namespace, rules=READ_SECRETS)
    rbac("RoleBinding", binding, namespace, roleRef=role_ref("Role", role),
         subjects=[{"kind": "ServiceAccount", "name": "builder"}])

    answer = who_can("get", "secrets", namespace, secrets=secrets)

    assert labels(answer["findings"], binding) == {f"ServiceAccount:{namespace}/builder"}
    assert {"kind": "ServiceAccount", "name": "builder", "namespace": namespace} in answer["subjects"]


def test_a_binding_to_a_missing_role_grants_nothing(rbac, make_namespace, secrets):
    namespace = make_namespace()
    binding = unique("dangling")
    rbac("RoleBinding", binding, namespace, roleRef=role_ref("ClusterRole", unique("never-created")),
         subjects=[user("dave")])

    assert labels(who_can("get", "secrets", namespace, secrets=secrets)["findings"], binding) == set()


# a subject's effective permissions

def test_a_service_account_holds_what_its_groups_are_bound_to(rbac, make_namespace, secrets):
    namespace, other = make_namespace(), make_namespace()
    role, by_group, by_name = unique("reader"), unique("all-sa-of-ns"), unique("other-sa")
    rbac("ClusterRole", role, rules=READ_SECRETS)
    rbac("RoleBinding", by_group, namespace, roleRef=role_ref("ClusterRole", role),
         subjects=[group(f"system:serviceaccounts:{namespace}")])
    rbac("RoleBinding", by_name, namespace, roleRef=role_ref("ClusterRole", role),
         subjects=[{"kind": "ServiceAccount", "name": "builder", "namespace": other}])

    mine = effective_permissions(service_account=f"{namespace}/builder", secrets=secrets)
    theirs = effective_permissions(service_account=f"{other}/builder", secrets=secrets)
    elsewhere = effective_permissions(service_account=f"{other}/builder", namespace=other, secrets=secrets)

    assert mine["identity"] == {"user": f"system:serviceaccount:{namespace}:builder",
                                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                                           "system:authenticated"]}
    assert [(g["binding"]["name"], g["scope"], g["rules"]) for g in mine["grants"] if g["binding"]["name"] in
            (by_group, by_name)] == [(by_group, namespace, READ_SECRETS)]
    assert [g["subject"] for g in theirs["grants"] if g["binding"]["name"] == by_name] == [
        {"kind": "ServiceAccount", "name": "builder", "namespace": other}]
    assert [g for g in elsewhere["grants"] if g["binding"]["name"] == by_name] == []  # it grants in `namespace`


def test_a_user_holds_what_its_groups_are_bound_to_and_nothing_of_other_groups(rbac, secrets):
    role, binding = unique("reader"), unique("team-binding")
    rbac("ClusterRole", role, rules=READ_SECRETS)
    rbac("ClusterRoleBinding", binding, roleRef=role_ref("ClusterRole", role), subjects=[group("team-blue")])

    member = effective_permissions(user="erin", groups=["team-blue"], secrets=secrets)
    outsider = effective_permissions(user="frank", groups=["team-red"], secrets=secrets)

    assert [(g["scope"], g["role"]) for g in member["grants"] if g["binding"]["name"] == binding] == [
        ("cluster", {"kind": "ClusterRole", "name": role})]
    assert [g for g in outsider["grants"] if g["binding"]["name"] == binding] == []
    assert member["identity"]["groups"] == ["team-blue", "system:authenticated"]


def test_effective_permissions_needs_one_subject(secrets):
    with pytest.raises(ActivityFailed, match="either user or service_account"):
        effective_permissions(secrets=secrets)
    with pytest.raises(ActivityFailed, match="NAMESPACE/NAME"):
        effective_permissions(service_account="builder", secrets=secrets)


# no wildcard roles bound outside an allow list

def test_a_wildcard_clusterrole_bound_to_a_user_violates_and_names_the_wildcards(rbac, secrets):
    role, binding = unique("wild"), unique("wild-binding")
    rbac("ClusterRole", role, rules=[*READ_SECRETS, {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}])
    rbac("ClusterRoleBinding", binding, roleRef=role_ref("ClusterRole", role), subjects=[user("mallory")])

    answer = no_wildcard_roles_bound(secrets=secrets)

    assert (answer["posture"], answer["ok"]) == ("violated", False)
    mine = [f for f in answer["findings"] if f["binding"]["name"] == binding]
    assert mine == [{"subject": {"kind": "User", "name": "mallory"},
                     "binding": {"kind": "ClusterRoleBinding", "name": binding},
                     "role": {"kind": "ClusterRole", "name": role}, "scope": "cluster",
                     "rule": {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]},
                     "wildcards": ["resources"]}]


def test_wildcards_bound_to_system_subjects_or_allowed_subjects_are_allowed(rbac, make_namespace, secrets):
    namespace = make_namespace()
    role, masters, admins, tenant = unique("wild"), unique("masters"), unique("admins"), unique("tenant")
    rbac("ClusterRole", role, rules=WILDCARD)
    rbac("ClusterRoleBinding", masters, roleRef=role_ref("ClusterRole", role), subjects=[
        group("system:masters"), {"kind": "ServiceAccount", "name": "gc", "namespace": "kube-system"}])
    rbac("ClusterRoleBinding", admins, roleRef=role_ref("ClusterRole", role), subjects=[group("platform-admins")])
    rbac("RoleBinding", tenant, namespace, roleRef=role_ref("ClusterRole", role), subjects=[
        group("system:authenticated"), {"kind": "ServiceAccount", "name": "ci"}])

    answer = no_wildcard_roles_bound(allowed_subjects=["Group:platform-*"], secrets=secrets)

    assert labels(answer["findings"], masters) == set()
    assert labels(answer["allowed"], masters) == {"Group:system:masters", "ServiceAccount:kube-system/gc"}
    assert labels(answer["findings"], admins) == set()
    assert [f["allowed_as"] for f in answer["allowed"] if f["binding"]["name"] == admins] == ["allowed_subjects"]
    # system:authenticated is everyone, and a namespace's service account is no system subject
    assert labels(answer["findings"], tenant) == {"Group:system:authenticated", f"ServiceAccount:{namespace}/ci"}


def test_a_clean_role_is_no_finding_and_role_kinds_limit_the_check(rbac, make_namespace, secrets):
    namespace = make_namespace()
    clean, clean_binding = unique("clean"), unique("clean-binding")
    wild, wild_binding = unique("wild-role"), unique("wild-role-binding")
    rbac("ClusterRole", clean, rules=READ_SECRETS)
    rbac("ClusterRoleBinding", clean_binding, roleRef=role_ref("ClusterRole", clean), subjects=[user("grace")])
    rbac("Role", wild, namespace, rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}])
    rbac("RoleBinding", wild_binding, namespace, roleRef=role_ref("Role", wild), subjects=[user("grace")])

    every_kind = no_wildcard_roles_bound(secrets=secrets)
    cluster_roles = no_wildcard_roles_bound(role_kinds=["ClusterRole"], secrets=secrets)

    assert labels(every_kind["findings"], clean_binding) == set()
    assert [f["wildcards"] for f in every_kind["findings"] if f["binding"]["name"] == wild_binding] == [["verbs"]]
    assert labels(cluster_roles["findings"], wild_binding) == set()
    with pytest.raises(ActivityFailed, match="Role and ClusterRole only"):
        no_wildcard_roles_bound(role_kinds=["Clusterrole"], secrets=secrets)


# no binding to system:anonymous / system:unauthenticated

def test_a_binding_to_anonymous_or_unauthenticated_violates(rbac, make_namespace, secrets):
    namespace = make_namespace()
    role, anonymous, unauthenticated, authenticated = (unique("viewer"), unique("anon"), unique("unauth"),
                                                       unique("auth"))
    rbac("ClusterRole", role, rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])
    rbac("RoleBinding", anonymous, namespace, roleRef=role_ref("ClusterRole", role),
         subjects=[user("system:anonymous")])
    rbac("ClusterRoleBinding", unauthenticated, roleRef=role_ref("ClusterRole", role),
         subjects=[group("system:unauthenticated")])
    rbac("ClusterRoleBinding", authenticated, roleRef=role_ref("ClusterRole", role),
         subjects=[group("system:authenticated")])

    answer = no_anonymous_bindings(secrets=secrets)
    allowing = no_anonymous_bindings(
        allowed_bindings=[f"RoleBinding/{namespace}/*", f"ClusterRoleBinding/{unauthenticated}"], secrets=secrets)

    assert answer["posture"] == "violated"
    assert labels(answer["findings"], anonymous) == {"User:system:anonymous"}
    assert labels(answer["findings"], unauthenticated) == {"Group:system:unauthenticated"}
    assert labels(answer["findings"], authenticated) == set()
    assert labels(allowing["findings"], anonymous) | labels(allowing["findings"], unauthenticated) == set()
    assert labels(allowing["allowed"], anonymous) == {"User:system:anonymous"}


# no service account outside an allow list reads secrets cluster-wide

def test_service_accounts_reading_secrets_cluster_wide_violate(rbac, make_namespace, secrets):
    namespace = make_namespace()
    role, named, grouped, as_user, local = (unique("secret-reader"), unique("sa"), unique("sa-group"),
                                            unique("sa-user"), unique("local"))
    rbac("ClusterRole", role, rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}])
    rbac("ClusterRoleBinding", named, roleRef=role_ref("ClusterRole", role),
         subjects=[{"kind": "ServiceAccount", "name": "exporter", "namespace": namespace}, user("henry")])
    rbac("ClusterRoleBinding", grouped, roleRef=role_ref("ClusterRole", role),
         subjects=[group(f"system:serviceaccounts:{namespace}")])
    rbac("ClusterRoleBinding", as_user, roleRef=role_ref("ClusterRole", role),
         subjects=[user(f"system:serviceaccount:{namespace}:backup")])
    rbac("RoleBinding", local, namespace, roleRef=role_ref("ClusterRole", role),
         subjects=[{"kind": "ServiceAccount", "name": "app"}])

    answer = no_service_account_reads_secrets_cluster_wide(secrets=secrets)
    allowing = no_service_account_reads_secrets_cluster_wide(allowed_service_accounts=[f"{namespace}/exporter"],
                                                             secrets=secrets)

    assert answer["posture"] == "violated"
    assert labels(answer["findings"], named) == {f"ServiceAccount:{namespace}/exporter"}  # not the user henry
    assert [(f["verbs"], f["service_accounts"]) for f in answer["findings"] if f["binding"]["name"] == grouped] \
        == [(["list"], f"{namespace}/*")]
    assert labels(answer["findings"], as_user) == {f"User:system:serviceaccount:{namespace}:backup"}
    assert labels(answer["findings"], local) == set()  # a RoleBinding reads one namespace only
    assert labels(allowing["findings"], named) == set()
    assert labels(allowing["findings"], grouped) == {f"Group:system:serviceaccounts:{namespace}"}  # not all allowed


def test_secrets_read_limited_to_named_secrets_or_other_verbs_is_no_finding(rbac, make_namespace, secrets):
    namespace = make_namespace()
    role, binding = unique("narrow"), unique("narrow-binding")
    rbac("ClusterRole", role, rules=[
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["ca-bundle"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]},
        {"apiGroups": ["example.com"], "resources": ["secrets"], "verbs": ["get"]}])
    rbac("ClusterRoleBinding", binding, roleRef=role_ref("ClusterRole", role),
         subjects=[{"kind": "ServiceAccount", "name": "issuer", "namespace": namespace}])

    answer = no_service_account_reads_secrets_cluster_wide(secrets=secrets)

    assert labels(answer["findings"], binding) == set()


# cost and errors

def test_each_probe_reads_the_four_kinds_once_across_all_namespaces(sandbox, secrets):
    probes = [lambda: who_can("get", "secrets", "default", secrets=secrets),
              lambda: effective_permissions(user="ivan", secrets=secrets),
              lambda: no_wildcard_roles_bound(secrets=secrets), lambda: no_anonymous_bindings(secrets=secrets),
              lambda: no_service_account_reads_secrets_cluster_wide(secrets=secrets)]
    for probe in probes:
        seen = len(sandbox.sandbox.requests)
        probe()
        sent = sorted((r.method, r.path) for r in sandbox.sandbox.requests[seen:] if "chaoskirvis/" in r.user_agent)
        assert sent == [("GET", f"/apis/{RBAC}/v1/{plural}")
                        for plural in ("clusterrolebindings", "clusterroles", "rolebindings", "roles")]


def runner_allowed_to_list(sandbox, tmp_path: Path, rbac, plurals: list[str]) -> dict[str, str]:
    """Secrets for a new sandbox user who may list only `plurals` (rbac.authorization.k8s.io) cluster-wide."""
    name = unique("auditor")
    sandbox.sandbox.add_user(name)
    role = unique("rbac-lister")
    rbac("ClusterRole", role, rules=[{"apiGroups": [RBAC], "resources": plurals, "verbs": ["list"]}])
    rbac("ClusterRoleBinding", unique("rbac-lister"), roleRef=role_ref("ClusterRole", role), subjects=[user(name)])
    return {"KUBECONFIG": str(sandbox.sandbox.write_kubeconfig(tmp_path / f"{name}.kubeconfig", user=name))}


def test_a_runner_that_may_list_the_four_kinds_needs_nothing_more(sandbox, tmp_path, rbac):
    runner = runner_allowed_to_list(sandbox, tmp_path, rbac, ["roles", "clusterroles", "rolebindings",
                                                              "clusterrolebindings"])

    assert no_wildcard_roles_bound(secrets=runner)["check"] == "no-wildcard-roles-bound"
    assert who_can("get", "secrets", "default", secrets=runner)["examined"]["clusterrolebindings"] > 0


def test_a_runner_that_may_not_list_a_kind_gets_an_error_naming_the_permission(sandbox, tmp_path, rbac):
    runner = runner_allowed_to_list(sandbox, tmp_path, rbac, ["roles", "clusterroles", "rolebindings"])

    for probe in (lambda: no_wildcard_roles_bound(secrets=runner),
                  lambda: who_can("get", "secrets", "default", secrets=runner)):
        with pytest.raises(ActivityFailed) as failure:
            probe()
        text = str(failure.value)
        assert "the runner may not list clusterrolebindings" in text
        assert f"grant the runner `list` on clusterrolebindings in API group {RBAC}" in text
        # the API server's own words, as RBAC refuses a list at the cluster scope
        assert f'cannot list resource "clusterrolebindings" in API group "{RBAC}" at the cluster scope' in text
        assert "roles," not in text  # only what was refused is named


# against the sandbox's own authorizer (another implementation), through kubectl auth can-i --as

def can_i(sandbox, verb: str, resource: str, namespace: str | None, as_user: str, groups: tuple[str, ...] = (),
          name: str = "") -> bool:
    plural, _, subresource = resource.partition("/")  # kubectl reads TYPE/NAME: a subresource is an option
    command = ["kubectl", "--kubeconfig", str(sandbox.kubeconfig), "auth", "can-i", verb,
               f"{plural}/{name}" if name else plural, "--as", as_user, *(f"--as-group={g}" for g in groups),
               *([f"--subresource={subresource}"] if subresource else [])]
    command += ["-n", namespace] if namespace else ["--all-namespaces"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() in ("yes", "no"), done.stdout + done.stderr
    return done.stdout.strip() == "yes"


def test_who_can_agrees_with_the_sandbox_authorizer_through_kubectl_auth_can_i(sandbox, rbac, make_namespace, secrets):
    here, elsewhere = make_namespace(), make_namespace()
    name = unique("x")
    reader, named, logs = unique("reader"), unique("named"), unique("logs")
    judy, kim, team, account = f"judy-{name}", f"kim-{name}", f"team-{name}", "deployer"
    rbac("ClusterRole", reader, rules=READ_SECRETS)
    rbac("Role", named, here, rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                                      "resourceNames": ["settings"]}])
    rbac("Role", logs, here, rules=[{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}])
    rbac("RoleBinding", unique("b"), here, roleRef=role_ref("ClusterRole", reader), subjects=[user(judy)])
    rbac("RoleBinding", unique("b"), here, roleRef=role_ref("Role", named), subjects=[group(team)])
    rbac("RoleBinding", unique("b"), here, roleRef=role_ref("Role", logs),
         subjects=[{"kind": "ServiceAccount", "name": account}])
    rbac("ClusterRoleBinding", unique("b"), roleRef=role_ref("ClusterRole", reader), subjects=[user(kim)])
    asked = [  # (verb, resource, namespace, name, user, groups)
        ("get", "secrets", here, "", judy, ()), ("get", "secrets", elsewhere, "", judy, ()),
        ("list", "secrets", None, "", judy, ()), ("list", "secrets", None, "", kim, ()),
        ("get", "configmaps", here, "settings", "someone", (team,)),
        ("get", "configmaps", here, "other", "someone", (team,)),
        ("list", "configmaps", here, "", "someone", (team,)),
        ("get", "pods/log", here, "", f"system:serviceaccount:{here}:{account}", ()),
        ("get", "pods", here, "", f"system:serviceaccount:{here}:{account}", ()),
    ]
    for verb, resource, namespace, object_name, as_user, groups in asked:
        findings = who_can(verb, resource, namespace, name=object_name, secrets=secrets)["findings"]
        subjects = {(f["subject"]["kind"], f["subject"]["name"], f["subject"].get("namespace", "")) for f in findings}
        account_key = ("ServiceAccount", account, here) if as_user.startswith("system:serviceaccount:") else None
        ours = ("User", as_user, "") in subjects or any(("Group", g, "") in subjects for g in groups) \
            or account_key in subjects
        assert ours == can_i(sandbox, verb, resource, namespace, as_user, groups, object_name), \
            (verb, resource, namespace, object_name, as_user, groups)


def test_an_aggregated_clusterrole_grants_the_rules_the_api_server_filled_in(sandbox, rbac, make_namespace, secrets):
    namespace = make_namespace()
    label = unique("aggregate-to")
    parent, part, binding = unique("parent"), unique("part"), unique("parent-binding")
    rbac("ClusterRole", parent, aggregationRule={"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]})
    rbac("RoleBinding", binding, namespace, roleRef=role_ref("ClusterRole", parent), subjects=[user("leo")])
    before = who_can("get", "secrets", namespace, secrets=secrets)
    rbac("ClusterRole", part, rules=READ_SECRETS, metadata_labels={label: "true"})
    api = client.RbacAuthorizationV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    deadline = time.monotonic() + 10
    while not api.read_cluster_role(parent).rules and time.monotonic() < deadline:  # the controller's work
        time.sleep(0.05)

    after = who_can("get", "secrets", namespace, secrets=secrets)

    assert labels(before["findings"], binding) == set()
    assert [(f["role"], f["rule"]) for f in after["findings"] if f["binding"]["name"] == binding] == [
        ({"kind": "ClusterRole", "name": parent, "aggregated": True}, READ_SECRETS[0])]
