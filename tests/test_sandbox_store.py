"""The store's indexes answer as a scan of every object would: lists by namespace and label selector after
relabels and deletes, namespace deletion, garbage collection through ownerReferences, watches from a
resourceVersion; and the request log stays bounded."""

from __future__ import annotations

import pytest
from kubernetes import client, watch

from chaoskirvis.sandbox.request_log import RequestLog
from chaoskirvis.sandbox.resources import find_resource
from chaoskirvis.sandbox.selectors import parse_label_selector
from chaoskirvis.sandbox.store import Store, prepare_create

CONFIGMAPS = find_resource("", "v1", "configmaps")


def configmap(name: str, labels: dict[str, str] | None = None, owners: list[client.V1ObjectMeta] = ()) -> dict:
    references = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner.name, "uid": owner.uid}
                  for owner in owners]
    return {"metadata": {"name": name, "labels": labels or {}, "ownerReferences": references}}


def names(items) -> list[str]:
    """The names of the listed objects but the kube-root-ca.crt configmap every namespace has."""
    return [item.metadata.name for item in items if item.metadata.name != "kube-root-ca.crt"]


def selected(core, namespace: str, selector: str) -> list[str]:
    return names(core.list_namespaced_config_map(namespace, label_selector=selector).items)


def test_label_selector_lists_follow_relabels_deletes_and_recreates(core, make_namespace):
    namespace = make_namespace()
    for name, labels in (("c", {"app": "x"}), ("a", {"app": "x", "tier": "web"}), ("b", {"app": "x"}),
                         ("d", {})):
        core.create_namespaced_config_map(namespace, configmap(name, labels))
    core.patch_namespaced_config_map("b", namespace, {"metadata": {"labels": {"app": "y"}}})
    core.patch_namespaced_config_map("a", namespace, {"metadata": {"labels": {"tier": None}}})

    assert selected(core, namespace, "app=x") == ["a", "c"]
    assert selected(core, namespace, "app=y") == ["b"]
    assert selected(core, namespace, "app in (x,y)") == ["a", "b", "c"]
    assert selected(core, namespace, "app") == ["a", "b", "c"]
    assert selected(core, namespace, "!app") == ["d"]
    assert selected(core, namespace, "app!=x") == ["b", "d"]
    assert selected(core, namespace, "tier") == []
    assert selected(core, namespace, "app=x,app=y") == []

    core.delete_namespaced_config_map("a", namespace)
    assert selected(core, namespace, "app=x") == ["c"]
    core.create_namespaced_config_map(namespace, configmap("a", {"app": "y"}))
    assert selected(core, namespace, "app=y") == ["a", "b"]
    assert names(core.list_namespaced_config_map(namespace).items) == ["a", "b", "c", "d"]


def test_lists_across_namespaces_are_ordered_by_namespace_then_name(core, make_namespace):
    first, second = sorted([make_namespace(), make_namespace()])
    core.create_namespaced_config_map(second, configmap("a", {"spread": first}))
    core.create_namespaced_config_map(first, configmap("b", {"spread": first}))
    core.create_namespaced_config_map(first, configmap("a", {"spread": first}))
    core.create_namespaced_config_map(second, configmap("z", {"spread": "other"}))

    listed = core.list_config_map_for_all_namespaces(label_selector=f"spread={first}").items
    assert [(item.metadata.namespace, item.metadata.name) for item in listed] == [
        (first, "a"), (first, "b"), (second, "a")]


def test_pages_of_a_selection_continue_where_they_stopped(core, make_namespace):
    namespace = make_namespace()
    for number in range(7):
        core.create_namespaced_config_map(namespace, configmap(f"cm-{number}", {"even": str(number % 2 == 0)}))

    page = core.list_namespaced_config_map(namespace, label_selector="even=True", limit=2)
    assert names(page.items) == ["cm-0", "cm-2"] and page.metadata.remaining_item_count == 2
    rest = core.list_namespaced_config_map(namespace, label_selector="even=True", limit=2,
                                           _continue=page.metadata._continue)
    assert names(rest.items) == ["cm-4", "cm-6"] and rest.metadata._continue is None


def test_deleting_a_namespace_takes_its_objects_out_of_every_list(core, make_namespace):
    namespace, other = make_namespace(), make_namespace()
    for name in ("a", "b"):
        core.create_namespaced_config_map(namespace, configmap(name, {"mark": namespace}))
        core.create_namespaced_secret(namespace, {"metadata": {"name": name, "labels": {"mark": namespace}}})
    core.create_namespaced_config_map(other, configmap("kept", {"mark": namespace}))

    core.delete_namespace(namespace)

    assert names(core.list_config_map_for_all_namespaces(label_selector=f"mark={namespace}").items) == ["kept"]
    assert core.list_secret_for_all_namespaces(label_selector=f"mark={namespace}").items == []
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_config_map(namespace, configmap("new"))
    assert names(core.list_namespaced_config_map(namespace).items) == ["new"]
    core.delete_namespace(namespace)


def test_deleting_an_owner_collects_its_dependents_down_the_chain(core, make_namespace):
    namespace = make_namespace()
    root = core.create_namespaced_config_map(namespace, configmap("root")).metadata
    child = core.create_namespaced_config_map(namespace, configmap("child", owners=[root])).metadata
    core.create_namespaced_config_map(namespace, configmap("grandchild", owners=[child]))
    core.create_namespaced_secret(namespace, {"metadata": {"name": "secret-child", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "root", "uid": root.uid}]}})
    core.create_namespaced_config_map(namespace, configmap("bystander"))

    core.delete_namespaced_config_map("root", namespace)

    assert names(core.list_namespaced_config_map(namespace).items) == ["bystander"]
    assert core.list_namespaced_secret(namespace).items == []
    stream = watch.Watch().stream(core.list_namespaced_config_map, namespace, resource_version=root.resource_version,
                                  timeout_seconds=1)
    assert [(e["type"], e["object"].metadata.name) for e in stream] == [
        ("ADDED", "child"), ("ADDED", "grandchild"), ("ADDED", "bystander"),
        ("DELETED", "root"), ("DELETED", "child"), ("DELETED", "grandchild")]


def test_owner_references_changed_by_updates_are_what_collection_follows(core, make_namespace):
    namespace = make_namespace()
    owner = core.create_namespaced_config_map(namespace, configmap("owner")).metadata
    core.create_namespaced_config_map(namespace, configmap("adopted"))
    core.create_namespaced_config_map(namespace, configmap("released", owners=[owner]))
    core.create_namespaced_config_map(namespace, configmap("orphaned", owners=[owner]))
    core.patch_namespaced_config_map("adopted", namespace, {"metadata": {"ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid}]}})
    core.patch_namespaced_config_map("released", namespace, {"metadata": {"ownerReferences": None}})

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Orphan")
    assert names(core.list_namespaced_config_map(namespace).items) == ["adopted", "orphaned", "released"]

    again = core.create_namespaced_config_map(namespace, configmap("owner")).metadata
    core.create_namespaced_config_map(namespace, configmap("dependent", owners=[again]))
    core.delete_namespaced_config_map("owner", namespace)
    assert names(core.list_namespaced_config_map(namespace).items) == ["adopted", "orphaned", "released"]


def test_a_label_selection_looks_only_at_the_objects_carrying_the_label():
    store = Store()
    for number in range(1000):
        labels = {"app": "rare"} if number % 100 == 0 else {"app": "common"}
        labels |= {"tier": f"t{number}"} if number % 250 == 0 else {}
        store.create(CONFIGMAPS, prepare_create(CONFIGMAPS, {"metadata": {"name": f"cm-{number:04d}",
                                                                          "namespace": "n", "labels": labels}}))
    looked_at = []
    page = store.select(CONFIGMAPS, "n", parse_label_selector("app=rare"), lambda obj: looked_at.append(obj) or True,
                        after=("n", "cm-0100"), limit=3)

    assert len(looked_at) == 10
    assert [obj["metadata"]["name"] for obj in page.items] == ["cm-0200", "cm-0300", "cm-0400"]
    assert page.remaining == 5
    page.items[0]["metadata"]["labels"]["app"] = "changed by the caller"
    assert store.get(CONFIGMAPS, "n", "cm-0200")["metadata"]["labels"] == {"app": "rare"}

    for selector, count in (("tier", 4), ("tier in (t250,t500,t1)", 2), ("app in (rare),tier", 2)):
        looked_at.clear()
        assert len(store.select(CONFIGMAPS, "n", parse_label_selector(selector), looked_at.append).items) == 0
        assert len(looked_at) == count, selector


def test_the_request_log_keeps_the_latest_entries_and_counts_them_all():
    log: RequestLog[int] = RequestLog(limit=3)
    for entry in range(5):
        log.append(entry)
    seen = len(log)
    log.append(5)

    assert len(log) == 6 and list(log) == [3, 4, 5]
    assert log[seen:] == [5] and log[0:] == [3, 4, 5] and log[::-2] == [5, 3] and log[-1] == 5 and log[3] == 3
    with pytest.raises(IndexError, match="not retained"):
        log[2]
    assert log.snapshot()[seen:] == [5]


def test_the_sandbox_request_log_slices_from_a_count(sandbox, core):
    seen = len(sandbox.sandbox.requests)
    core.read_namespace("default")
    assert [(r.method, r.path, r.status) for r in sandbox.sandbox.requests[seen:]] == [
        ("GET", "/api/v1/namespaces/default", 200)]


def test_service_node_ports_are_free_again_once_changed_or_deleted(core, make_namespace):
    namespace = make_namespace()

    def service(name: str, node_port: int) -> dict:
        return {"metadata": {"name": name}, "spec": {"type": "NodePort", "selector": {"app": name},
                                                    "ports": [{"port": 80, "nodePort": node_port}]}}

    core.create_namespaced_service(namespace, service("first", 30901))
    core.patch_namespaced_service("first", namespace, {"spec": {"ports": [{"port": 80, "nodePort": 30902}]}})
    core.create_namespaced_service(namespace, service("second", 30901))
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_service(namespace, service("third", 30902))
    assert refused.value.status == 422 and "provided port is already allocated" in refused.value.body

    core.delete_namespaced_service("first", namespace)
    core.create_namespaced_service(namespace, service("third", 30902))
