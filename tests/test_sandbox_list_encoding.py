"""Lists as the API server answers them, now that the sandbox writes them from each object's stored JSON.

What a list shows must be what a get shows, after every kind of write (update, patch, the kubelet's status
write, a cascade), in the API server's order and pages (namespace, then name; `limit`, `continue`,
`remainingItemCount`), as a `KIND List` document or a Table.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from chaoskirvis.sandbox.resources import find_resource
from chaoskirvis.sandbox.store import Store, prepare_create

CONFIGMAPS = find_resource("", "v1", "configmaps")
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def raw_get(sandbox: Any, path: str, accept: str = "application/json") -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of a GET as the sandbox admin."""
    running = sandbox.sandbox
    request = urllib.request.Request(running.url + path, headers={
        "Authorization": f"Bearer {running.admin_token}", "Accept": accept})
    context = ssl.create_default_context(cafile=running.ca_file)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def get_json(sandbox: Any, path: str, accept: str = "application/json") -> Any:
    status, _, body = raw_get(sandbox, path, accept)
    assert status == 200, body
    return json.loads(body)


def without_type(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("kind", "apiVersion")}


def names(document: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in document["items"]]


@pytest.fixture
def configmaps(core: client.CoreV1Api, make_namespace):
    """configmaps(names, namespace=None) -> namespace: configmaps of these names in it (in a new namespace when
    none is given), labelled set=NAMESPACE, their data their name and a text beyond ASCII."""
    def create(wanted: list[str], namespace: str | None = None) -> str:
        namespace = namespace or make_namespace()
        for name in wanted:
            core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": {"set": namespace}},
                                                          "data": {"name": name, "text": "été ✓ \u2028"}})
        return namespace
    return create


def test_a_list_is_a_kind_list_document_of_the_objects_as_a_get_shows_them(sandbox, configmaps):
    namespace = configmaps(["b", "a"])
    path = f"/api/v1/namespaces/{namespace}/configmaps"

    status, content_type, body = raw_get(sandbox, path)
    listed = json.loads(body)

    assert (status, content_type.split(";")[0]) == (200, "application/json")
    assert list(listed) == ["kind", "apiVersion", "metadata", "items"]
    assert (listed["kind"], listed["apiVersion"]) == ("ConfigMapList", "v1")
    assert names(listed) == ["a", "b", "kube-root-ca.crt"]
    assert listed["items"][0]["data"] == {"name": "a", "text": "été ✓ \u2028"}
    for item in listed["items"]:  # list items leave kind and apiVersion to the list, as the API server writes them
        got = get_json(sandbox, f"{path}/{item['metadata']['name']}")
        assert (got["kind"], got["apiVersion"]) == ("ConfigMap", "v1") and item == without_type(got)
    newest = max(int(item["metadata"]["resourceVersion"]) for item in listed["items"])
    assert int(listed["metadata"]["resourceVersion"]) >= newest and "continue" not in listed["metadata"]


def test_an_empty_list_has_empty_items(sandbox, make_namespace):
    listed = get_json(sandbox, f"/api/v1/namespaces/{make_namespace()}/secrets")
    assert listed["items"] == [] and listed["kind"] == "SecretList"


def test_every_write_shows_in_the_next_list(sandbox, core, configmaps):
    namespace = configmaps(["kept", "patched", "replaced", "deleted", "owner"])
    path = f"/api/v1/namespaces/{namespace}/configmaps?labelSelector=set%3D{namespace}"
    owner = core.read_namespaced_config_map("owner", namespace).metadata
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "dependent", "labels": {"set": namespace},
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid}]}})
    before = {item["metadata"]["name"]: item for item in get_json(sandbox, path)["items"]}

    core.patch_namespaced_config_map("patched", namespace, {"data": {"name": "changed"}})
    replaced = core.read_namespaced_config_map("replaced", namespace)
    replaced.data = {"name": "replaced again"}
    core.replace_namespaced_config_map("replaced", namespace, replaced)
    core.delete_namespaced_config_map("deleted", namespace)
    core.delete_namespaced_config_map("owner", namespace)  # the garbage collector deletes "dependent"
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "deleted", "labels": {"set": namespace}},
                                                  "data": {"name": "created again"}})
    after = {item["metadata"]["name"]: item for item in get_json(sandbox, path)["items"]}

    assert sorted(after) == ["deleted", "kept", "patched", "replaced"]
    assert after["kept"] == before["kept"]
    assert {name: after[name]["data"]["name"] for name in ("patched", "replaced", "deleted")} == {
        "patched": "changed", "replaced": "replaced again", "deleted": "created again"}
    assert after["deleted"]["metadata"]["uid"] != before["deleted"]["metadata"]["uid"]
    for name in ("patched", "replaced"):
        assert int(after[name]["metadata"]["resourceVersion"]) > int(before[name]["metadata"]["resourceVersion"])


def test_a_pod_is_listed_with_the_status_its_kubelet_wrote(sandbox, core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})
    listed = get_json(sandbox, f"/api/v1/namespaces/{namespace}/pods")["items"]
    got = get_json(sandbox, f"/api/v1/namespaces/{namespace}/pods/p")
    assert listed == [without_type(got)] and listed[0]["status"]["phase"] == "Running"


def test_pages_of_an_all_namespaces_list_add_up_to_the_whole_list(sandbox, configmaps, make_namespace):
    first, second = sorted([make_namespace(), make_namespace()])
    configmaps(["c", "a", "b"], first)
    configmaps(["b", "a"], second)
    whole = get_json(sandbox, "/api/v1/configmaps")
    everything = [(item["metadata"]["namespace"], item["metadata"]["name"]) for item in whole["items"]]
    assert everything == sorted(everything)  # by namespace, then name

    paged, token, remaining = [], "", []
    while True:
        page = get_json(sandbox, f"/api/v1/configmaps?limit=3&continue={token}")
        paged += [(item["metadata"]["namespace"], item["metadata"]["name"]) for item in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            assert "remainingItemCount" not in page["metadata"]
            break
        remaining.append(page["metadata"]["remainingItemCount"])
        assert remaining[-1] == len(everything) - len(paged)
    assert paged == everything and len(remaining) == (len(everything) - 1) // 3


def test_a_continue_token_resumes_after_the_object_it_names(sandbox, core, configmaps):
    namespace = configmaps(["a", "c", "e"])
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    page = get_json(sandbox, f"{path}?limit=2")
    assert names(page) == ["a", "c"]
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "b"}})  # before the token's object
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "d"}})  # after it
    core.delete_namespaced_config_map("c", namespace)  # the token's own object

    rest = get_json(sandbox, f"{path}?limit=2&continue={page['metadata']['continue']}")
    assert names(rest) == ["d", "e"] and rest["metadata"]["remainingItemCount"] == 1
    last = get_json(sandbox, f"{path}?limit=2&continue={rest['metadata']['continue']}")
    assert names(last) == ["kube-root-ca.crt"] and "continue" not in last["metadata"]


def test_a_bad_continue_token_and_limit_are_refused(sandbox, make_namespace):
    path = f"/api/v1/namespaces/{make_namespace()}/configmaps"
    status, _, body = raw_get(sandbox, f"{path}?continue=not-a-token")
    assert (status, json.loads(body)["message"]) == (400, "continue key is not valid: not-a-token")
    status, _, body = raw_get(sandbox, f"{path}?limit=-1")
    assert (status, json.loads(body)["reason"]) == (400, "BadRequest")


def test_a_cluster_scoped_list_is_ordered_by_name_after_creates_out_of_order(sandbox, core):
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    prefix = "list-encoding-order"
    created = [f"{prefix}-{suffix}" for suffix in ("m", "b", "z", "a")]
    try:
        for number, name in enumerate(created):
            rbac.create_cluster_role({"metadata": {"name": name, "labels": {"order": prefix}}})
            listed = get_json(sandbox, f"/apis/rbac.authorization.k8s.io/v1/clusterroles?labelSelector=order%3D{prefix}")
            assert names(listed) == sorted(created[:number + 1])
        unselected = names(get_json(sandbox, "/apis/rbac.authorization.k8s.io/v1/clusterroles"))
        assert unselected == sorted(unselected) and set(created) <= set(unselected)
        rbac.delete_cluster_role(f"{prefix}-b")
        assert f"{prefix}-b" not in names(get_json(sandbox, "/apis/rbac.authorization.k8s.io/v1/clusterroles"))
    finally:
        for name in created:
            try:
                rbac.delete_cluster_role(name)
            except client.ApiException as error:
                assert error.status == 404


def test_pages_of_a_field_selection_hold_only_the_selected(sandbox, configmaps):
    namespace = configmaps(["a", "b", "c"])
    path = f"/api/v1/namespaces/{namespace}/configmaps?fieldSelector=metadata.name%21%3Db&limit=1"
    paged, token = [], ""
    while True:
        page = get_json(sandbox, f"{path}&continue={token}")
        assert len(page["items"]) == 1
        paged += names(page)
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert paged == ["a", "c", "kube-root-ca.crt"]


def test_a_list_asked_for_as_a_table_pages_the_same_objects(sandbox, configmaps):
    namespace = configmaps(["a", "b", "c"])
    path = f"/api/v1/namespaces/{namespace}/configmaps?limit=2"
    listed = get_json(sandbox, path)
    table = get_json(sandbox, f"{path}&includeObject=Object", TABLE)

    assert table["kind"] == "Table" and [row["cells"][0] for row in table["rows"]] == ["a", "b"]
    assert [row["object"] for row in table["rows"]] == [
        {"kind": "ConfigMap", "apiVersion": "v1", **item} for item in listed["items"]]
    assert table["metadata"]["remainingItemCount"] == 2 and table["metadata"]["continue"]
    rest = get_json(sandbox, f"{path}&continue={table['metadata']['continue']}", TABLE)
    assert [row["cells"][0] for row in rest["rows"]] == ["c", "kube-root-ca.crt"]
    assert [row["object"]["kind"] for row in rest["rows"]] == ["PartialObjectMetadata"] * 2
    status, _, body = raw_get(sandbox, f"{path}&includeObject=All")  # refused on a JSON list too
    assert (status, json.loads(body)["reason"]) == (400, "BadRequest")


def test_a_page_encodes_only_the_objects_it_returns():
    """Without a selector, a page reads its own objects only: neither the pages before it nor those after. An
    object that cannot be encoded (a set: stored here directly, the API never stores one) shows which were."""
    store = Store()
    for number in range(2000):
        data = {"poison": {number}} if number in (4, 1999) else {}  # in n0, before the page; in n3, after it
        store.create(CONFIGMAPS, prepare_create(CONFIGMAPS, {"metadata": {"name": f"cm-{number:04d}",
                                                                          "namespace": f"n{number % 4}"},
                                                             "data": data}))

    page = store.select_json(CONFIGMAPS, None, after=("n1", "cm-0997"), limit=3)
    assert [json.loads(item)["metadata"]["name"] for item in page.items] == ["cm-1001", "cm-1005", "cm-1009"]
    assert page.last == ("n1", "cm-1009") and page.remaining == 247 + 500 + 500
    assert "kind" not in json.loads(page.items[0]) and json.loads(page.items[0])["metadata"]["namespace"] == "n1"
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        store.select_json(CONFIGMAPS, "n3")
