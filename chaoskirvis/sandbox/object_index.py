"""Where the store's objects are: by resource and namespace, by label, by owner uid and by namespace.

The indexes answer the questions the API asks on every request without looking at every stored object:
a list in a namespace looks at that namespace's objects of that resource, a label-selector list at the
objects carrying the selector's most selective `key=value` (or `key in (...)`, or `key`), the garbage
collector at the objects naming a uid in their ownerReferences, the namespace controller at the objects
in a namespace, the scheduler at how many pods each node has, and the Service allocators at the Services
holding a cluster IP or node port. Selections are then checked against the whole selector, so an index
only narrows down, never decides.

A selection comes out ordered by namespace and name from names kept sorted per resource and namespace
(sorted again only after a name came or went there), so a page of a list (`after`, `limit`) costs what it
returns, not what is stored. Each object's JSON as a list item is encoded once, at its first list, and kept
until the object is replaced or removed (`list_item_json`): a list joins bytes instead of copying and
encoding every object it returns.

The objects held here are the store's own: nothing may change them once stored (a change is a new object
put in place of the old one). Callers that hand them out copy them first.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chaoskirvis.sandbox.resources import PODS, SERVICES, ResourceType
from chaoskirvis.sandbox.selectors import LabelSelector, Requirement

ObjectKey = tuple[ResourceType, str, str]  # resource, namespace ("" when cluster-scoped), name
StoredObject = Mapping[str, Any]
_NamesByNamespace = dict[str, set[str]]
Position = tuple[str, str]  # namespace ("" when cluster-scoped) and name: where an object is in a list


@dataclass(frozen=True)
class Selection:
    """What a selection chose, in list order: the names in each namespace (namespaces in order, names in
    order), and how many more objects the selection holds. `ObjectIndex.objects` and
    `ObjectIndex.list_items_json` read the objects it names."""

    resource: ResourceType
    names: list[tuple[str, list[str]]]
    remaining: int

    @property
    def last(self) -> Position | None:
        """The position of the last object chosen; None when none was."""
        return (self.names[-1][0], self.names[-1][1][-1]) if self.names else None


class ObjectIndex:
    """The stored objects, and indexes over them kept up to date by `put` and `remove`."""

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, StoredObject] = {}
        # resource -> namespace -> name -> object
        self._scopes: dict[ResourceType, dict[str, dict[str, StoredObject]]] = {}
        # (resource, namespace) -> the names in _scopes there, sorted; dropped when a name comes or goes
        self._sorted_names: dict[tuple[ResourceType, str], list[str]] = {}
        # (resource, namespace) -> name -> the stored object's JSON as a list item, encoded at its first list;
        # dropped when the object is replaced or removed
        self._list_items: dict[tuple[ResourceType, str], dict[str, bytes]] = {}
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
            self._forget_list_item(key)
        else:
            self._sorted_names.pop(key[:2], None)
            if key[0].namespaced:
                self._namespace_contents.setdefault(key[1], {})[key] = None
        self._objects[key] = obj  # a replaced object keeps its place in creation order
        self._index(key, obj)

    def remove(self, key: ObjectKey) -> StoredObject:
        obj = self._objects.pop(key)
        self._unindex(key, obj)
        self._sorted_names.pop(key[:2], None)
        self._forget_list_item(key)
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
               labels: LabelSelector | None = None, where: Callable[[StoredObject], bool] | None = None, *,
               after: Position | None = None, limit: int | None = None) -> Selection:
        """The objects of a resource (in one namespace, or all) that `labels` and `where` select, ordered by
        namespace and name: those after `after`, at most `limit` of them (all when `limit` is None or 0).

        Only the objects an index points at are looked at; without a selector or `where`, only those chosen."""
        labels = labels or LabelSelector()
        scopes = self._scopes.get(resource, {})
        narrowest = self._narrowest(resource, namespace, labels)
        if namespace is not None:
            namespaces = [namespace]
        else:
            namespaces = sorted(scopes if narrowest is None else narrowest)
            if after is not None:
                namespaces = namespaces[bisect.bisect_left(namespaces, after[0]):]
        filtered = bool(labels.requirements) or where is not None
        chosen: list[tuple[str, list[str]]] = []
        count = remaining = 0
        for ns in namespaces:
            objects = scopes.get(ns)
            if not objects or (after is not None and ns < after[0]):
                continue
            names = self._names_in(resource, ns) if narrowest is None else sorted(narrowest.get(ns, ()))
            # A filter sees the namespace's candidates before `after` too: one slice serves both ways, and
            # counting what remains after the page reads the rest of them anyway.
            if filtered:
                names = [name for name in names if labels.matches(objects[name]["metadata"].get("labels"))
                         and (where is None or where(objects[name]))]
            start = bisect.bisect_right(names, after[1]) if after is not None and ns == after[0] else 0
            taken = names[start:start + limit - count] if limit else names[start:]
            remaining += len(names) - start - len(taken)
            if taken:
                chosen.append((ns, taken))
                count += len(taken)
        return Selection(resource, chosen, remaining)

    def objects(self, selection: Selection) -> list[StoredObject]:
        """The stored objects a selection chose, in its order."""
        scopes = self._scopes[selection.resource] if selection.names else {}
        return [scopes[ns][name] for ns, names in selection.names for name in names]

    def list_items_json(self, selection: Selection) -> list[bytes]:
        """The JSON of each object a selection chose, as an item of a list: without `kind` and `apiVersion`
        (the API server's list encoding leaves them to the list), as `json.dumps` writes it. Encoded at an
        object's first list and kept until it is replaced or removed."""
        items: list[bytes] = []
        for ns, names in selection.names:
            encoded = self._list_items.setdefault((selection.resource, ns), {})
            objects = self._scopes[selection.resource][ns]
            if len(encoded) < len(objects):  # it holds only names stored here: equal sizes mean all are encoded
                for name in names:
                    if name not in encoded:
                        encoded[name] = json.dumps({k: v for k, v in objects[name].items()
                                                    if k not in ("kind", "apiVersion")}).encode()
            items += map(encoded.__getitem__, names)
        return items

    def _forget_list_item(self, key: ObjectKey) -> None:
        _discard(self._list_items, key[:2], key[2])

    def _names_in(self, resource: ResourceType, namespace: str) -> list[str]:
        """The names of a resource's objects in a namespace, sorted (sorted again only after a change)."""
        names = self._sorted_names.get((resource, namespace))
        if names is None:
            names = self._sorted_names[(resource, namespace)] = sorted(self._scopes[resource][namespace])
        return names

    def _narrowest(self, resource: ResourceType, namespace: str | None,
                   labels: LabelSelector) -> _NamesByNamespace | None:
        """The names, by namespace, of the fewest objects that may match, as the label index tells; None when
        no requirement of the selector has an index (every object of the resource may match)."""
        narrowest: _NamesByNamespace | None = None
        for requirement in labels.requirements:
            found = self._labelled(resource, requirement, namespace)
            if found is not None and (narrowest is None or _count(found, namespace) < _count(narrowest, namespace)):
                narrowest = found
        return narrowest

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
