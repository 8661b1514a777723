"""API server rules the sandbox applies beyond plain storage: pagination, cascades, immutability, bodies."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest
import yaml
from kubernetes import client

from chaoskirvis.sandbox.patching import strategic_merge_patch
from chaoskirvis.sandbox.selectors import SelectorError, parse_field_selector, parse_label_selector


def failure(error: client.ApiException) -> tuple[int, str, str]:
    body = json.loads(error.body)
    return error.status, body["reason"], body["message"]


def test_list_pages_with_limit_and_continue(core, make_namespace):
    namespace = make_namespace()
    for name in "abcde":
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    first = core.list_namespaced_config_map(namespace, limit=2)  # with the namespace's kube-root-ca.crt: six
    assert [c.metadata.name for c in first.items] == ["a", "b"] and first.metadata.remaining_item_count == 4
    second = core.list_namespaced_config_map(namespace, limit=2, _continue=first.metadata._continue)
    last = core.list_namespaced_config_map(namespace, limit=2, _continue=second.metadata._continue)
    assert [c.metadata.name for c in second.items + last.items] == ["c", "d", "e", "kube-root-ca.crt"]
    assert last.metadata._continue is None


def test_deleting_an_owner_deletes_its_dependents_unless_orphaned(core, make_namespace):
    namespace = make_namespace()
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dependent", "ownerReferences": [reference]}})
    answer = core.delete_namespaced_config_map("owner", namespace)
    assert answer["status"] == "Success" and answer["details"] == {"name": "owner", "kind": "configmaps",
                                                                     "uid": owner.metadata.uid}
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items] == ["kube-root-ca.crt"]

    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference["uid"] = owner.metadata.uid
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dependent", "ownerReferences": [reference]}})
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Orphan")
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items] == [
        "dependent", "kube-root-ca.crt"]


def test_delete_preconditions(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}})
    with pytest.raises(client.ApiException) as error:
        core.delete_namespaced_config_map("cm", namespace, body={"preconditions": {"uid": "other"}})
    status, reason, message = failure(error.value)
    assert (status, reason) == (409, "Conflict")
    assert message.startswith('Operation cannot be fulfilled on configmaps "cm": Precondition failed: UID in '
                              "precondition: other, UID in object meta: ")


def test_a_pod_spec_is_immutable_but_for_images(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "registry.k8s.io/pause"}]}})
    escalate = {"spec": {"containers": [{"name": "c", "securityContext": {"privileged": True}}]}}
    with pytest.raises(client.ApiException) as error:
        core.patch_namespaced_pod("p", namespace, escalate)
    status, reason, message = failure(error.value)
    assert (status, reason) == (422, "Invalid")
    assert message.startswith('Pod "p" is invalid: spec: Forbidden: pod updates may not change fields other than')
    image = {"spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}
    assert core.patch_namespaced_pod("p", namespace, image).spec.containers[0].image == "registry.k8s.io/pause:3.10"


def test_workloads_need_a_matching_selector_and_a_valid_restart_policy(api, make_namespace):
    namespace = make_namespace()
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    with pytest.raises(client.ApiException) as error:
        client.AppsV1Api(api).create_namespaced_deployment(namespace, {
            "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": template}})
    assert failure(error.value) == (422, "Invalid", 'Deployment.apps "d" is invalid: spec.template.metadata.labels: '
                                    'Invalid value: map[string]string{"app":"web"}: `selector` does not match '
                                    "template `labels`")
    with pytest.raises(client.ApiException) as error:
        client.BatchV1Api(api).create_namespaced_job(namespace, {"metadata": {"name": "j"}, "spec": {
            "template": template}})
    assert failure(error.value)[2] == ('Job.batch "j" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
                                       '"Always": supported values: "OnFailure", "Never"')


def send(sandbox, method: str, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(sandbox.url + path, data=body, method=method, headers={
        "Authorization": f"Bearer {sandbox.admin_token}", "Content-Type": content_type})
    context = ssl.create_default_context(cafile=sandbox.ca_file)  # verify the server against the sandbox CA
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_bodies_in_yaml_and_type_errors(sandbox, make_namespace):
    collection = f"/api/v1/namespaces/{make_namespace()}/configmaps"
    manifest = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-yaml"}})
    status, created = send(sandbox.sandbox, "POST", collection, manifest.encode(), "application/yaml")
    assert (status, created["metadata"]["name"]) == (201, "from-yaml")

    flag = yaml.safe_dump({"metadata": {"name": "flag", "labels": {"enabled": True}}})
    status, refused = send(sandbox.sandbox, "POST", collection, flag.encode(), "application/yaml")
    assert (status, refused["reason"], refused["message"]) == (
        400, "BadRequest", 'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal bool '
                           "into Go struct field ObjectMeta.metadata.labels of type string")

    status, refused = send(sandbox.sandbox, "PATCH", f"{collection}/from-yaml", b"data: {}",
                           "application/apply-patch+yaml")
    assert (status, refused["reason"]) == (415, "UnsupportedMediaType")


def test_strategic_merge_patch_directives():
    current = {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
                        "volumes": [{"name": "v"}], "args": ["1", "2"]},
               "metadata": {"finalizers": ["one"]}}
    patch = {"spec": {"containers": [{"name": "b", "$patch": "delete"}, {"name": "c", "image": "z"}],
                      "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                      "volumes": [{"$patch": "replace"}, {"name": "w"}], "args": ["3"]},
             "metadata": {"finalizers": ["two"], "$deleteFromPrimitiveList/finalizers": ["one"]}}
    assert strategic_merge_patch(current, patch) == {
        "spec": {"containers": [{"name": "c", "image": "z"}, {"name": "a", "image": "x"}],
                 "volumes": [{"name": "w"}], "args": ["3"]},
        "metadata": {"finalizers": ["two"]}}
    assert strategic_merge_patch({"spec": {"a": 1, "b": 2}}, {"spec": {"$retainKeys": ["b"], "b": 3}}) == {
        "spec": {"b": 3}}


def test_selector_syntax():
    selector = parse_label_selector("size>2,size<10,app")
    assert selector.matches({"size": "5", "app": ""}) and not selector.matches({"size": "10", "app": ""})
    assert parse_field_selector(r"metadata.name=a\,b", ("metadata.name",)).terms == (("metadata.name", "=", "a,b"),)
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.nodeName"):
        parse_field_selector("spec.nodeName=n", ("metadata.name",))
    with pytest.raises(SelectorError, match=r"found 'c', expected: ',' or 'end of string'"):
        parse_label_selector("a=b c")
