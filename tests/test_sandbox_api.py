"""The sandbox through the real `kubernetes` Python client, built from the kubeconfig it writes."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from kubernetes import client, config, watch

PAUSE = "registry.k8s.io/pause"


@pytest.fixture(scope="module")
def apps(api):
    return client.AppsV1Api(api)


@pytest.fixture(scope="module")
def viewer_core(sandbox, tmp_path_factory):
    kubeconfig = sandbox.sandbox.write_kubeconfig(tmp_path_factory.mktemp("viewer") / "kubeconfig", user="viewer")
    return client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))


def pod(name, labels=None, **container):
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": PAUSE, **container}]},
    }


def deployment(name, image=PAUSE, **security_context):
    labels = {"app": name}
    container = {"name": "c", "image": image, "securityContext": security_context}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    }


def status_of(error: client.ApiException) -> dict:
    body = json.loads(error.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == error.status
    assert "Traceback" not in error.body
    return body


def test_create_fills_in_metadata_and_get_delete_round_trip(core, make_namespace):
    namespace = make_namespace()
    before = datetime.now(UTC).replace(microsecond=0)
    created = core.create_namespaced_pod(namespace, pod("web"))
    assert created.kind == "Pod" and created.api_version == "v1"
    assert created.metadata.namespace == namespace
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", created.metadata.uid)
    assert created.metadata.resource_version.isdigit()
    assert before <= created.metadata.creation_timestamp <= datetime.now(UTC)
    assert created.status.phase == "Pending"  # as the registry stores it; the emulated kubelet then starts it

    fetched = core.read_namespaced_pod("web", namespace)
    assert fetched.metadata.uid == created.metadata.uid
    assert fetched.status.phase == "Running"
    assert int(fetched.metadata.resource_version) == int(created.metadata.resource_version) + 1

    deleted = core.delete_namespaced_pod("web", namespace)
    assert deleted.metadata.uid == created.metadata.uid
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_pod("web", namespace)
    assert missing.value.status == 404


def test_resource_version_is_a_global_counter(core, make_namespace):
    namespace = make_namespace()
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    second = core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    listed = core.list_namespaced_config_map(namespace)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert int(listed.metadata.resource_version) >= int(second.metadata.resource_version)
    assert listed.kind == "ConfigMapList" and listed.api_version == "v1"


def test_generate_name_and_workload_generation(apps, make_namespace):
    namespace = make_namespace()
    body = deployment("web")
    body["metadata"] = {"generateName": "web-"}
    created = apps.create_namespaced_deployment(namespace, body)
    name = created.metadata.name
    assert re.fullmatch(r"web-[a-z0-9]{5}", name)
    assert created.metadata.generation == 1

    relabelled = apps.patch_namespaced_deployment(name, namespace, {"metadata": {"labels": {"tier": "web"}}})
    assert relabelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment(name, namespace, {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2


def test_list_across_namespaces_with_label_selectors(core, make_namespace):
    run = uuid.uuid4().hex[:8]
    first, second = make_namespace(), make_namespace()
    core.create_namespaced_pod(first, pod("a", {"run": run, "app": "x", "tier": "web"}))
    core.create_namespaced_pod(second, pod("b", {"run": run, "app": "x"}))
    core.create_namespaced_pod(second, pod("c", {"run": run, "app": "y", "tier": "db"}))
    core.create_namespaced_pod(second, pod("d", {"app": "x"}))

    def names(selector, **kwargs):
        listed = core.list_pod_for_all_namespaces(label_selector=f"run={run},{selector}", **kwargs)
        return {f"{p.metadata.namespace}/{p.metadata.name}" for p in listed.items}

    assert names("app=x") == {f"{first}/a", f"{second}/b"}
    assert names("app==x,tier") == {f"{first}/a"}
    assert names("app in (x, y),tier!=web") == {f"{second}/b", f"{second}/c"}
    assert names("app notin (x)") == {f"{second}/c"}
    assert names("!tier") == {f"{second}/b"}
    assert names("app", field_selector=f"metadata.namespace={second},metadata.name!=b") == {f"{second}/c"}
    assert [p.metadata.name for p in core.list_namespaced_pod(second, label_selector="app=x").items] == ["b", "d"]


def test_invalid_label_selector_is_a_bad_request(core):
    with pytest.raises(client.ApiException) as error:
        core.list_pod_for_all_namespaces(label_selector="app in x")
    assert error.value.status == 400
    assert status_of(error.value)["reason"] == "BadRequest"


def test_put_with_stale_resource_version_conflicts(core, make_namespace):
    namespace = make_namespace()
    stale = core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    fresh = core.replace_namespaced_config_map("settings", namespace, {
        "metadata": {"name": "settings", "resourceVersion": stale.metadata.resource_version}, "data": {"a": "2"}})
    assert int(fresh.metadata.resource_version) > int(stale.metadata.resource_version)

    with pytest.raises(client.ApiException) as error:
        core.replace_namespaced_config_map("settings", namespace, {
            "metadata": {"name": "settings", "resourceVersion": stale.metadata.resource_version},
            "data": {"a": "3"}})
    status = status_of(error.value)
    assert error.value.status == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == ('Operation cannot be fulfilled on configmaps "settings": the object has been '
                                 "modified; please apply your changes to the latest version and try again")
    assert core.read_namespaced_config_map("settings", namespace).data == {"a": "2"}


def test_merge_and_json_patch(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm", "labels": {"a": "1", "b": "2"}},
                                                  "data": {"x": "1"}})
    merged = core.patch_namespaced_config_map(
        "cm", namespace, {"metadata": {"labels": {"a": None, "c": "3"}}, "data": {"y": "2"}},
        _content_type="application/merge-patch+json")
    assert merged.metadata.labels == {"b": "2", "c": "3"}
    assert merged.data == {"x": "1", "y": "2"}

    patched = core.patch_namespaced_config_map("cm", namespace, [
        {"op": "replace", "path": "/data/x", "value": "10"},
        {"op": "remove", "path": "/metadata/labels/b"},
    ])
    assert patched.data == {"x": "10", "y": "2"} and patched.metadata.labels == {"c": "3"}

    with pytest.raises(client.ApiException) as error:
        core.patch_namespaced_config_map("cm", namespace, [{"op": "remove", "path": "/data/nope"}])
    assert error.value.status == 422


def test_strategic_merge_patch_merges_containers_by_name(apps, make_namespace):
    namespace = make_namespace()
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": PAUSE})
    apps.create_namespaced_deployment(namespace, body)
    patched = apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "image": f"{PAUSE}:3.10", "env": [{"name": "A", "value": "1"}]}]}}}})
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert containers["c"].image == PAUSE
    assert containers["side"].image == f"{PAUSE}:3.10" and containers["side"].env[0].name == "A"


def events_until(list_function, namespace, last_name, **kwargs):
    """(type, name) of each watch event up to the first one about `last_name`."""
    seen = []
    for event in watch.Watch().stream(list_function, namespace, timeout_seconds=5, **kwargs):
        seen.append((event["type"], event["object"].metadata.name))
        if seen[-1][1] == last_name:
            break
    return seen


def test_dry_run_stores_nothing_and_emits_no_event(core, make_namespace):
    namespace = make_namespace()
    version = core.list_namespaced_pod(namespace).metadata.resource_version
    answer = core.create_namespaced_pod(namespace, pod("ghost"), dry_run="All")
    assert answer.metadata.name == "ghost" and answer.metadata.uid
    assert core.list_namespaced_pod(namespace).items == []
    assert core.list_namespaced_pod(namespace).metadata.resource_version == version

    core.create_namespaced_pod(namespace, pod("real"))
    after_create = core.read_namespaced_pod("real", namespace).metadata.resource_version  # once running
    core.patch_namespaced_pod("real", namespace, {"metadata": {"labels": {"x": "1"}}}, dry_run="All")
    core.delete_namespaced_pod("real", namespace, dry_run="All")
    kept = core.read_namespaced_pod("real", namespace)
    assert not kept.metadata.labels and kept.metadata.resource_version == after_create
    core.create_namespaced_pod(namespace, pod("sentinel"))
    assert events_until(core.list_namespaced_pod, namespace, "sentinel", resource_version=after_create) == [
        ("ADDED", "sentinel")]


def test_watch_replays_changes_after_a_resource_version(core, make_namespace):
    namespace = make_namespace()
    start = core.create_namespaced_config_map(namespace, {"metadata": {"name": "a", "labels": {"w": "1"}}})
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "v"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "other"}})
    core.patch_namespaced_config_map("a", namespace, {"metadata": {"labels": {"w": "2"}}})
    core.delete_namespaced_config_map("a", namespace)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "end", "labels": {"w": "1"}}})
    since = start.metadata.resource_version

    assert events_until(core.list_namespaced_config_map, namespace, "end", resource_version=since) == [
        ("MODIFIED", "a"), ("ADDED", "other"), ("MODIFIED", "a"), ("DELETED", "a"), ("ADDED", "end")]
    # With a selector, "a" leaves the selection when it is relabelled: the watcher sees it deleted.
    assert events_until(core.list_namespaced_config_map, namespace, "end", resource_version=since,
                        label_selector="w=1") == [("MODIFIED", "a"), ("DELETED", "a"), ("ADDED", "end")]


def test_watch_starts_with_the_current_state_and_ends_at_timeout_seconds(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "a"}})
    stream = watch.Watch().stream(core.list_namespaced_config_map, namespace, timeout_seconds=1)
    assert [(e["type"], e["object"].metadata.name) for e in stream] == [  # the root CA every namespace gets, too
        ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "kube-root-ca.crt")]


def test_unauthenticated_and_unknown_token_get_401(sandbox):
    def configuration(token: str | None) -> client.Configuration:
        verified = client.Configuration(host=sandbox.sandbox.url)
        verified.ssl_ca_cert = str(sandbox.sandbox.ca_file)
        if token:
            verified.api_key = {"BearerToken": token}
            verified.api_key_prefix = {"BearerToken": "Bearer"}
        return verified

    for anonymous in (configuration(None), configuration("not-a-token")):
        with pytest.raises(client.ApiException) as error:
            client.CoreV1Api(client.ApiClient(anonymous)).list_namespace()
        assert error.value.status == 401
        assert status_of(error.value)["reason"] == "Unauthorized"


def test_viewer_reads_but_cannot_write(viewer_core, make_namespace):
    namespace = make_namespace()
    assert viewer_core.read_namespace(namespace).metadata.name == namespace
    with pytest.raises(client.ApiException) as error:
        viewer_core.create_namespaced_pod(namespace, pod("nope"))
    status = status_of(error.value)
    assert error.value.status == 403 and status["reason"] == "Forbidden"
    assert status["message"] == (f'pods is forbidden: User "sandbox-viewer" cannot create resource "pods" in API '
                                 f'group "" in the namespace "{namespace}"')
    with pytest.raises(client.ApiException) as error:
        viewer_core.delete_namespace(namespace)
    assert status_of(error.value)["message"] == (
        f'namespaces "{namespace}" is forbidden: User "sandbox-viewer" cannot delete resource "namespaces" in API '
        f'group "" in the namespace "{namespace}"')


def test_not_found_and_already_exists(core, apps, make_namespace):
    namespace = make_namespace()
    with pytest.raises(client.ApiException) as error:
        core.read_namespaced_pod("x", namespace)
    assert status_of(error.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": 'pods "x" not found',
        "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404}
    with pytest.raises(client.ApiException) as error:
        apps.read_namespaced_deployment("x", namespace)
    assert status_of(error.value)["details"] == {"name": "x", "group": "apps", "kind": "deployments"}

    core.create_namespaced_pod(namespace, pod("x"))
    with pytest.raises(client.ApiException) as error:
        core.create_namespaced_pod(namespace, pod("x"))
    status = status_of(error.value)
    assert (error.value.status, status["reason"], status["message"]) == (409, "AlreadyExists",
                                                                         'pods "x" already exists')


def test_creating_into_a_missing_namespace_is_not_found(core):
    with pytest.raises(client.ApiException) as error:
        core.create_namespaced_pod("nope", pod("x"))
    assert status_of(error.value)["message"] == 'namespaces "nope" not found'


def test_invalid_objects_are_answered_422_with_causes(core, make_namespace):
    namespace = make_namespace()
    with pytest.raises(client.ApiException) as error:
        core.create_namespaced_pod(namespace, {"metadata": {"name": "p"}, "spec": {"containers": []}})
    status = status_of(error.value)
    assert error.value.status == 422 and status["reason"] == "Invalid"
    assert status["message"] == 'Pod "p" is invalid: spec.containers: Required value'
    assert status["details"] == {"name": "p", "kind": "Pod", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}]}

    with pytest.raises(client.ApiException) as error:
        core.create_namespaced_pod(namespace, {"metadata": {"name": "Bad_Name", "labels": {"ok": "-bad"}},
                                               "spec": {"containers": [{"name": "c"}]}})
    fields = [cause["field"] for cause in status_of(error.value)["details"]["causes"]]
    assert fields == ["metadata.name", "metadata.labels", "spec.containers[0].image"]

    with pytest.raises(client.ApiException) as error:
        core.create_namespace({"metadata": {"name": "a.b"}})
    assert status_of(error.value)["details"]["causes"][0]["message"].startswith(
        'Invalid value: "a.b": a lowercase RFC 1123 label must consist of')


def test_namespace_in_body_must_match_the_url(core, make_namespace):
    namespace = make_namespace()
    body = pod("x")
    body["metadata"]["namespace"] = "elsewhere"
    with pytest.raises(client.ApiException) as error:
        core.create_namespaced_pod(namespace, body)
    assert error.value.status == 400
    assert status_of(error.value)["message"] == ("the namespace of the provided object does not match the "
                                                 "namespace sent on the request")


def test_unknown_resource_is_not_found(api):
    with pytest.raises(client.ApiException) as error:
        client.CustomObjectsApi(api).list_namespaced_custom_object("apps", "v1", "default", "widgets")
    assert (error.value.status, status_of(error.value)["reason"]) == (404, "NotFound")


def test_pod_security_enforce_denies_with_the_upstream_message(core, make_namespace):
    namespace = make_namespace(enforce="baseline")
    with pytest.raises(client.ApiException) as error:
        core.create_namespaced_pod(namespace, pod("priv", securityContext={"privileged": True}))
    status = status_of(error.value)
    assert (error.value.status, status["reason"]) == (403, "Forbidden")
    assert status["message"] == ('pods "priv" is forbidden: violates PodSecurity "baseline:latest": privileged '
                                 '(container "c" must not set securityContext.privileged=true)')
    assert status["details"] == {"name": "priv", "kind": "pods"}
    assert core.list_namespaced_pod(namespace).items == []  # nothing was stored


def test_pod_security_warn_reaches_the_client_headers(core, make_namespace):
    namespace = make_namespace(warn="baseline")
    created, code, headers = core.create_namespaced_pod_with_http_info(
        namespace, pod("priv", securityContext={"privileged": True}))
    assert code == 201 and created.metadata.name == "priv"
    assert headers["Warning"] == ('299 - "would violate PodSecurity \\"baseline:latest\\": privileged (container '
                                  '\\"c\\" must not set securityContext.privileged=true)"')


def test_pod_updates_are_judged_only_when_images_change(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, pod("p", securityContext={"privileged": True}))
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    relabelled = core.patch_namespaced_pod("p", namespace, {"metadata": {"labels": {"x": "1"}}})
    assert relabelled.metadata.labels == {"x": "1"}
    with pytest.raises(client.ApiException) as error:
        core.patch_namespaced_pod("p", namespace, {"spec": {"containers": [{"name": "c", "image": "other"}]}})
    assert error.value.status == 403


def test_tightening_enforce_warns_about_existing_pods(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, pod("a", securityContext={"privileged": True}))
    core.create_namespaced_pod(namespace, pod("b", securityContext={"privileged": True}))
    _, _, headers = core.patch_namespace_with_http_info(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    assert headers["Warning"] == (
        f'299 - "existing pods in namespace \\"{namespace}\\" violate the new PodSecurity enforce level '
        f'\\"baseline:latest\\"", 299 - "a (and 1 other pod): privileged"')


def test_workload_templates_are_only_warned(apps, make_namespace):
    namespace = make_namespace(enforce="restricted", warn="baseline")
    created, code, headers = apps.create_namespaced_deployment_with_http_info(
        namespace, deployment("web", privileged=True))
    assert code == 201 and created.metadata.name == "web"
    assert headers["Warning"].startswith('299 - "would violate PodSecurity \\"baseline:latest\\": privileged')

    quiet = make_namespace(enforce="restricted")
    _, code, headers = apps.create_namespaced_deployment_with_http_info(quiet, deployment("web", privileged=True))
    assert code == 201 and "Warning" not in headers


def test_invalid_pod_security_label_is_rejected(core, make_namespace):
    with pytest.raises(client.ApiException) as error:
        core.create_namespace({"metadata": {"name": "bad-psa", "labels": {
            "pod-security.kubernetes.io/enforce": "strict"}}})
    status = status_of(error.value)
    assert (error.value.status, status["reason"]) == (422, "Invalid")
    assert status["message"] == ('Namespace "bad-psa" is invalid: metadata.labels[pod-security.kubernetes.io/'
                                 'enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted')
    with pytest.raises(client.ApiException):
        core.read_namespace("bad-psa")

    namespace = make_namespace(enforce="baseline")
    with pytest.raises(client.ApiException) as error:
        core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/warn-version": "1.2"}}})
    assert status_of(error.value)["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "metadata.labels[pod-security.kubernetes.io/warn-version]",
        "message": 'Invalid value: "1.2": must be "latest" or "v1.x"'}]


def test_deleting_a_namespace_deletes_its_objects(core, apps, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}})
    apps.create_namespaced_deployment(namespace, deployment("web"))
    answer = core.delete_namespace(namespace)
    assert answer["status"]["phase"] == "Terminating"
    assert core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={namespace}").items == []
    assert apps.list_deployment_for_all_namespaces(field_selector=f"metadata.namespace={namespace}").items == []
    with pytest.raises(client.ApiException) as error:
        core.read_namespace(namespace)
    assert error.value.status == 404


def test_protected_namespaces_cannot_be_deleted(core):
    with pytest.raises(client.ApiException) as error:
        core.delete_namespace("kube-system")
    assert status_of(error.value)["message"] == (
        'namespaces "kube-system" is forbidden: this namespace may not be deleted')


def test_request_log_records_user_agent_user_and_status(sandbox, core, viewer_core, make_namespace):
    namespace = make_namespace()
    with pytest.raises(client.ApiException):
        viewer_core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
    entry = [r for r in sandbox.sandbox.requests if r.path == f"/api/v1/namespaces/{namespace}/configmaps"][-1]
    assert (entry.method, entry.user, entry.status) == ("POST", "sandbox-viewer", 403)
    assert entry.user_agent.startswith("OpenAPI-Generator/")


def test_self_subject_review_names_the_token_user(sandbox, tmp_path):
    admin = client.AuthenticationV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    viewer_config = sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer")
    viewer = client.AuthenticationV1Api(config.new_client_from_config(str(viewer_config)))

    mine = admin.create_self_subject_review({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    theirs = viewer.create_self_subject_review({"kind": "SelfSubjectReview"})

    assert mine.status.user_info.username == "sandbox-admin"
    assert "system:masters" in mine.status.user_info.groups
    assert theirs.status.user_info.username == "sandbox-viewer"
    assert theirs.status.user_info.groups == ["system:authenticated"]
