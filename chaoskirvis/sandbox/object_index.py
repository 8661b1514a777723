"""Where the store's objects are: by resource and namespace, by label, by owner uid and by namespace.

The indexes answer the questions the API asks on every request without looking at every stored object:
a list in a namespace looks at that namespace's objects of that resource, a label-selector list at the
objects carrying the selector's most selective `key=value` (or `key in (...)`, or `key`), the garbage
collector at the objects naming a uid in their ownerReferences, the namespace controller at the objects
in a namespace, the scheduler at how many pods each node has, and the Service allocators at the Services
holding a cluster IP or node port. Selections are then checked against the whole selector, so an index
only narrows down, never decides.

The objects held here are the store's own: nothing may change them once stored (a change is a new object
put in place of the old one). Callers that hand them out copy them first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chaoskirvis.sandbox.resources import PODS, SERVICES, ResourceType
from chaoskirvis.sandbox.selectors import LabelSelector, Requirement

ObjectKey = tuple[ResourceType, str, str]  # resource, namespace ("" when cluster-scoped), name
StoredObject = Mapping[str, Any]
_NamesByNamespace = dict[str, set[str]]


class ObjectIndex:
    """The stored objects, and indexes over them kept up to date by `put` and `remove`."""

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, StoredObject] = {}
        # resource -> namespace -> name -> object
        self._scopes: dict[ResourceType, dict[str, dict[str, StoredObject]]] = {}
        # (resource, label key) -> label value -> namespace -> names
        self._labels: dict[tuple[ResourceType, str], dict[str, _NamesByNamespace]] = {}
        # (resource, label key) -> namespace -> names of the objects with that label, whatever its value
        self._keyed: dict[tuple[ResourceType, str], _NamesByNamespace] = {}
        # owner uid -> keys of the objects naming it in ownerReferences, in the order they were stored
        self._dependents: dict[str, dict[ObjectKey, None]] = {}
        # namespace -> keys of the namespaced objects in it, in the order they were created
        self._namespace_contents: dict[str, dict[ObjectKey, None]] = {}
        # node name -> how many pods are bound to it (spec.nodeName)
        self._pods_on_node: dict[str, int] = {}
        # a Service's cluster IP (str) or node port (int) -> the keys of the Services holding it
        self._service_addresses: dict[str | int, dict[ObjectKey, None]] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: ObjectKey) -> bool:
        return key in self._objects

    def get(self, key: ObjectKey) -> StoredObject | None:
        return self._objects.get(key)

    def put(self, key: ObjectKey, obj: StoredObject) -> None:
        """Store `obj` under `key`, in place of the object stored there, if any."""
        old = self._objects.get(key)
        if old is not None:
            self._unindex(key, old)
        elif key[0].namespaced:
            self._namespace_contents.setdefault(key[1], {})[key] = None
        self._objects[key] = obj  # a replaced object keeps its place in creation order
        self._index(key, obj)

    def remove(self, key: ObjectKey) -> StoredObject:
        obj = self._objects.pop(key)
        self._unindex(key, obj)
        if key[0].namespaced:
            _discard(self._namespace_contents, key[1], key)
        return obj

    def in_namespace(self, namespace: str) -> list[ObjectKey]:
        """The keys of the namespaced objects in a namespace, oldest first."""
        return list(self._namespace_contents.get(namespace, ()))

    def dependents_of(self, owner_uid: str) -> list[ObjectKey]:
        """The keys of the objects that name `owner_uid` in their ownerReferences."""
        return list(self._dependents.get(owner_uid, ()))

    def pods_per_node(self) -> dict[str, int]:
        """How many pods each node has bound (spec.nodeName), nodes without pods left out."""
        return dict(self._pods_on_node)

    def services_holding(self, addresses: Iterable[str | int]) -> list[StoredObject]:
        """The Services holding any of these cluster IPs (str) or node ports (int)."""
        keys = {key: None for address in addresses for key in self._service_addresses.get(address, ())}
        return [self._objects[key] for key in keys]

    def select(self, resource: ResourceType, namespace: str | None = None,
               labels: LabelSelector | None = None,
               where: Callable[[StoredObject], bool] | None = None) -> list[StoredObject]:
        """The objects of a resource (in one namespace, or all) that `labels` and `where` select, ordered by
        namespace and name. Only the objects an index points at are looked at."""
        labels = labels or LabelSelector()
        candidates = self._candidates(resource, namespace, labels)
        selected = [(key, obj) for key, obj in candidates
                    if labels.matches(obj["metadata"].get("labels")) and (where is None or where(obj))]
        selected.sort(key=lambda entry: entry[0])
        return [obj for _, obj in selected]

    def _candidates(self, resource: ResourceType, namespace: str | None,
                    labels: LabelSelector) -> Iterable[tuple[tuple[str, str], StoredObject]]:
        """(namespace, name) and object of the fewest objects that may match, as an index tells."""
        scopes = self._scopes.get(resource, {})
        narrowest: _NamesByNamespace | None = None
        for requirement in labels.requirements:
            found = self._labelled(resource, requirement, namespace)
            if found is not None and (narrowest is None or _count(found, namespace) < _count(narrowest, namespace)):
                narrowest = found
        if narrowest is None:
            in_scope = scopes.items() if namespace is None else [(namespace, scopes.get(namespace, {}))]
            return [((ns, name), obj) for ns, objects in in_scope for name, obj in objects.items()]
        namespaces = narrowest.keys() if namespace is None else [namespace]
        return [((ns, name), scopes[ns][name]) for ns in namespaces for name in narrowest.get(ns, ())]

    def _labelled(self, resource: ResourceType, requirement: Requirement,
                  namespace: str | None) -> _NamesByNamespace | None:
        """The names, by namespace, of the objects a requirement may select (in `namespace` when given);
        None when no index says."""
        match requirement.operator:
            case "=":
                return self._labels.get((resource, requirement.key), {}).get(requirement.values[0], {})
            case "exists":
                return self._keyed.get((resource, requirement.key), {})
            case "in":
                by_value = self._labels.get((resource, requirement.key), {})
                merged: _NamesByNamespace = {}
                for value in requirement.values:
                    for ns, names in by_value.get(value, {}).items():
                        if namespace is None or ns == namespace:
                            merged.setdefault(ns, set()).update(names)
                return merged
        return None

    def _index(self, key: ObjectKey, obj: StoredObject) -> None:
        resource, namespace, name = key
        self._scopes.setdefault(resource, {}).setdefault(namespace, {})[name] = obj
        metadata = obj["metadata"]
        for label, value in (metadata.get("labels") or {}).items():
            self._labels.setdefault((resource, label), {}).setdefault(value, {}).setdefault(namespace, set()).add(name)
            self._keyed.setdefault((resource, label), {}).setdefault(namespace, set()).add(name)
        for uid in _owner_uids(metadata):
            self._dependents.setdefault(uid, {})[key] = None
        if resource == PODS and (node := _node_name(obj)):
            self._pods_on_node[node] = self._pods_on_node.get(node, 0) + 1
        if resource == SERVICES:
            for address in service_addresses(obj.get("spec")):
                self._service_addresses.setdefault(address, {})[key] = None

    def _unindex(self, key: ObjectKey, obj: StoredObject) -> None:
        resource, namespace, name = key
        scope = self._scopes[resource]
        del scope[namespace][name]
        if not scope[namespace]:
            del scope[namespace]
        metadata = obj["metadata"]
        for label, value in (metadata.get("labels") or {}).items():
            by_value = self._labels[(resource, label)]
            _discard(by_value[value], namespace, name)
            if not by_value[value]:
                del by_value[value]
            if not by_value:
                del self._labels[(resource, label)]
            _discard(self._keyed[(resource, label)], namespace, name)
            if not self._keyed[(resource, label)]:
                del self._keyed[(resource, label)]
        for uid in _owner_uids(metadata):
            _discard(self._dependents, uid, key)
        if resource == PODS and (node := _node_name(obj)):
            self._pods_on_node[node] -= 1
            if not self._pods_on_node[node]:
                del self._pods_on_node[node]
        if resource == SERVICES:
            for address in service_addresses(obj.get("spec")):
                _discard(self._service_addresses, address, key)


def _owner_uids(metadata: Mapping[str, Any]) -> set[str]:
    return {ref["uid"] for ref in metadata.get("ownerReferences") or [] if isinstance(ref, dict) and ref.get("uid")}


def service_addresses(spec: Any) -> set[str | int]:
    """What a Service spec holds of the allocators': its cluster IPs, node ports and health check node port."""
    if not isinstance(spec, dict):
        return set()
    held: set[str | int] = {ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str)}
    held |= {port.get("nodePort") for port in spec.get("ports") or [] if isinstance(port, dict)
             and isinstance(port.get("nodePort"), int)}
    if isinstance(spec.get("healthCheckNodePort"), int):
        held.add(spec["healthCheckNodePort"])
    return held


def _node_name(pod: StoredObject) -> str | None:
    spec = pod.get("spec")
    return spec.get("nodeName") if isinstance(spec, dict) else None


def _discard(groups: dict[Any, Any], group: Any, member: Any) -> None:
    """Remove `member` from the set or dict `groups[group]`, and the group once it is empty."""
    members = groups.get(group)
    if members is None:
        return
    if isinstance(members, set):
        members.discard(member)
    else:
        members.pop(member, None)
    if not members:
        del groups[group]


def _count(names: _NamesByNamespace, namespace: str | None) -> int:
    if namespace is not None:
        return len(names.get(namespace, ()))
    return sum(len(group) for group in names.values())


def copy_object(value: Any) -> Any:
    """A deep copy of a decoded JSON (or YAML) document: dicts and lists copied, everything else shared
    (strings, numbers and the like are immutable). Four times as fast as copy.deepcopy on a pod."""
    if type(value) is dict:
        return {key: copy_object(item) for key, item in value.items()}
    if type(value) is list:
        return [copy_object(item) for item in value]
    return value
