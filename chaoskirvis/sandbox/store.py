"""Object storage of the sandbox, with the registry rules the API server applies before storing.

- `Store`: the objects, the global resourceVersion counter, the history of changes and the watchers.
  Objects are indexed (`object_index`: by namespace, label, owner uid, node and Service address) so
  that no request looks at every stored object; see "Scale" in docs/sandbox.md. Deleting a namespace
  deletes everything in it; deleting an object deletes the objects that name it in their
  ownerReferences (what the namespace controller and the garbage collector do, done at once).
  A created pod is stored `Pending`, then given the status a kubelet writes once every container has
  started (`running_pod_status`), as a second change: nothing runs, the status is emulated.
- `prepare_create` / `prepare_update`: metadata the API server fills in or keeps (uid, creationTimestamp,
  generation, generateName, status).
- `validate_create` / `validate_update`: object validation with the API server's field paths and wording.

Everything here runs on the sandbox's event loop thread; nothing is shared with other threads.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import functools
import itertools
import json
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaoskirvis.sandbox.defaults import (
    allocate_service,
    apply_defaults,
    created_status,
    generate_job_selector,
    qos_class,
)
from chaoskirvis.sandbox.object_index import ObjectIndex, ObjectKey, Position, copy_object, service_addresses
from chaoskirvis.sandbox.resources import (
    NAMESPACES,
    PODS,
    ResourceType,
    dns_label_errors,
    label_value_errors,
    name_errors,
    qualified_name_errors,
)
from chaoskirvis.sandbox.selectors import LabelSelector, SelectorError, label_selector_from_object


class StoreError(Exception):
    """A storage outcome the API answers with an error status."""

    def __init__(self, resource: ResourceType, name: str, detail: str = "") -> None:
        super().__init__(detail or name)
        self.resource = resource
        self.name = name
        self.detail = detail


class ObjectNotFound(StoreError):
    pass


class ObjectExists(StoreError):
    pass


class ObjectConflict(StoreError):
    """A precondition (resourceVersion, uid) that does not hold; `detail` says which."""


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED or DELETED
    resource: ResourceType
    object: dict[str, Any]
    previous: dict[str, Any] | None  # the object before a MODIFIED event
    resource_version: int


@dataclass(eq=False)
class Subscription:
    """Events of one resource, delivered to one watcher; None in the queue means the store closed."""

    resource: ResourceType
    queue: asyncio.Queue[WatchEvent | None] = field(default_factory=asyncio.Queue)


def apply_events(subscriptions: list[Subscription],
                 objects: dict[ResourceType, dict[str, dict[str, Any]]]) -> set[ResourceType]:
    """Apply the queued events to a cache of cluster-scoped objects by name, as an informer does; the resources
    that changed."""
    changed: set[ResourceType] = set()
    for subscription in subscriptions:
        while not subscription.queue.empty():
            event = subscription.queue.get_nowait()
            if event is None:  # the store closed
                continue
            cached = objects[event.resource]
            if event.type == "DELETED":
                cached.pop(event.object["metadata"]["name"], None)
            else:
                cached[event.object["metadata"]["name"]] = event.object
            changed.add(event.resource)
    return changed


@dataclass(frozen=True)
class Page:
    """One page of a selection: copies of its objects, and how many more objects the selection holds."""

    items: list[dict[str, Any]]
    remaining: int


@dataclass(frozen=True)
class JsonPage:
    """One page of a selection as list items' JSON, the position of its last object (None when it has none),
    and how many more objects the selection holds."""

    items: list[bytes]
    last: Position | None
    remaining: int


class Store:
    """The sandbox's etcd: objects by resource, namespace and name, and a log of their changes.

    Objects are indexed (`ObjectIndex`) so that a request costs what it reads or writes, not what is
    stored. A stored object is never changed in place (a write stores a new one), so the history and the
    watchers share it; what the store hands out (`get`, `list`, `select`, what a write returns) is a copy.
    """

    def __init__(self, history_limit: int = 10_000) -> None:
        self._objects = ObjectIndex()
        self._resource_version = 0
        self._history: deque[WatchEvent] = deque(maxlen=history_limit)
        self._subscriptions: set[Subscription] = set()
        self._pod_ips = _pod_ips()

    @property
    def resource_version(self) -> int:
        return self._resource_version

    def get(self, resource: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        stored = self._objects.get((resource, namespace or "", name))
        return copy_object(stored) if stored is not None else None

    def list(self, resource: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a resource, in one namespace or all, ordered by namespace and name."""
        return [copy_object(obj) for obj in self._objects.objects(self._objects.select(resource, namespace))]

    def select(self, resource: ResourceType, namespace: str | None = None, labels: LabelSelector | None = None,
               where: Callable[[Mapping[str, Any]], bool] | None = None, *, after: Position | None = None,
               limit: int | None = None) -> Page:
        """The objects of a resource (in one namespace or all) that the label selector and `where` select,
        ordered by namespace and name: those after `after` (a namespace and name), at most `limit` of them.

        The label selector is answered from the label index; `where` sees only the objects it leaves.
        """
        selection = self._objects.select(resource, namespace, labels, where, after=after, limit=limit)
        return Page([copy_object(obj) for obj in self._objects.objects(selection)], selection.remaining)

    def select_json(self, resource: ResourceType, namespace: str | None = None,
                    labels: LabelSelector | None = None, where: Callable[[Mapping[str, Any]], bool] | None = None,
                    *, after: Position | None = None, limit: int | None = None) -> JsonPage:
        """What `select` selects, each object as the JSON of a list item (`ObjectIndex.list_items_json`: encoded
        once per stored object, so a list costs a join of what it returns)."""
        selection = self._objects.select(resource, namespace, labels, where, after=after, limit=limit)
        return JsonPage(self._objects.list_items_json(selection), selection.last, selection.remaining)

    def pods_per_node(self) -> dict[str, int]:
        """How many pods are bound to each node (spec.nodeName), as the scheduler counts them."""
        return self._objects.pods_per_node()

    def address_taken(self, address: str | int) -> bool:
        """Whether a stored Service holds this cluster IP (str) or node port (int)."""
        return bool(self._objects.services_holding([address]))

    def services_holding(self, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Copies of the stored Services holding any cluster IP or node port of this Service spec (those the
        allocators must not give again)."""
        return [copy_object(service) for service in self._objects.services_holding(service_addresses(spec))]

    def create(self, resource: ResourceType, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Store a new object. The store keeps `obj` itself: the caller hands it over and leaves it alone."""
        key = _key(resource, obj)
        if key in self._objects:
            raise ObjectExists(resource, key[2])
        if dry_run:
            return copy_object(obj)
        stored = self._stamp(obj)
        self._objects.put(key, stored)
        self._publish("ADDED", resource, stored, None)
        if resource == PODS:
            self._start_pod(key)
        return copy_object(stored)

    def update(self, resource: ResourceType, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Replace a stored object; an unchanged object is not written and keeps its resourceVersion.

        As with `create`, the store keeps `obj` itself."""
        key = _key(resource, obj)
        old = self._objects.get(key)
        if old is None:
            raise ObjectNotFound(resource, key[2])
        candidate = {**obj, "metadata": {**obj["metadata"], "resourceVersion": old["metadata"]["resourceVersion"]}}
        if dry_run or candidate == old:
            return candidate
        stored = self._stamp(candidate)
        self._objects.put(key, stored)
        self._publish("MODIFIED", resource, stored, old)
        return copy_object(stored)

    def delete(self, resource: ResourceType, namespace: str | None, name: str, *,
               preconditions: dict[str, Any] | None = None, orphan_dependents: bool = False,
               dry_run: bool = False) -> dict[str, Any]:
        """Delete an object (and what the namespace controller and garbage collector would); return it."""
        key = (resource, namespace or "", name)
        old = self._objects.get(key)
        if old is None:
            raise ObjectNotFound(resource, name)
        for field_name in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(field_name)
            actual = old["metadata"].get(field_name)
            if wanted and wanted != actual:
                label = "UID" if field_name == "uid" else "ResourceVersion"
                raise ObjectConflict(resource, name, f"Precondition failed: {label} in precondition: {wanted}, "
                                                     f"{label} in object meta: {actual}")
        if dry_run:
            return copy_object(old)
        if resource == NAMESPACES:
            for content_key in self._objects.in_namespace(name):
                self._remove(content_key)
        removed = self._remove(key)
        if not orphan_dependents:
            self._collect_dependents(old["metadata"]["uid"])
        return copy_object(removed)

    def subscribe(self, resource: ResourceType) -> Subscription:
        subscription = Subscription(resource)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def events_after(self, resource: ResourceType, resource_version: int) -> list[WatchEvent] | None:
        """Changes of a resource after a resourceVersion; None when they are no longer all retained.

        The events hold the stored objects themselves: read them, never change them."""
        history_is_full = len(self._history) == self._history.maxlen
        if history_is_full and resource_version < self._history[0].resource_version - 1:
            return None
        return [e for e in self._history if e.resource == resource and e.resource_version > resource_version]

    @property
    def oldest_retained_version(self) -> int:
        return self._history[0].resource_version if self._history else self._resource_version

    def close(self) -> None:
        """End every watch."""
        for subscription in self._subscriptions:
            subscription.queue.put_nowait(None)
        self._subscriptions.clear()

    def _start_pod(self, key: ObjectKey) -> None:
        """What a kubelet that started every container at once writes to pods/status: a MODIFIED change."""
        pending = self._objects.get(key)
        assert pending is not None  # stored by create just before
        pod_ip = HOST_IP if (pending.get("spec") or {}).get("hostNetwork") else next(self._pod_ips)
        stored = self._stamp(dict(pending, status=running_pod_status(pending, pod_ip, now_timestamp())))
        self._objects.put(key, stored)
        self._publish("MODIFIED", PODS, stored, pending)

    def _stamp(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """`obj` with the next resourceVersion, in new top-level and metadata dicts (the rest is shared)."""
        self._resource_version += 1
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._resource_version)}}

    def _remove(self, key: ObjectKey) -> dict[str, Any]:
        removed = self._stamp(self._objects.remove(key))
        self._publish("DELETED", key[0], removed, None)
        return removed

    def _collect_dependents(self, owner_uid: str) -> None:
        for key in self._objects.dependents_of(owner_uid):
            dependent = self._objects.get(key)
            if dependent is not None:
                self._remove(key)
                self._collect_dependents(dependent["metadata"]["uid"])

    def _publish(self, event_type: str, resource: ResourceType, obj: dict[str, Any],
                 previous: Mapping[str, Any] | None) -> None:
        event = WatchEvent(event_type, resource, obj, previous, self._resource_version)  # type: ignore[arg-type]
        self._history.append(event)
        for subscription in self._subscriptions:
            if subscription.resource == resource:
                subscription.queue.put_nowait(event)


def _key(resource: ResourceType, obj: dict[str, Any]) -> ObjectKey:
    metadata = obj["metadata"]
    return resource, metadata.get("namespace", "") if resource.namespaced else "", metadata["name"]


def now_timestamp() -> str:
    """RFC 3339 UTC, to the second, as the API server writes timestamps (formatted once a second: a pod's
    creation writes a dozen of them)."""
    return _timestamp_of(int(time.time()))


@functools.lru_cache(maxsize=1)
def _timestamp_of(second: int) -> str:
    return datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The status an emulated kubelet writes. The addresses are fake values shown in status only: nothing listens.

HOST_IP = "127.0.0.1"
_POD_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def _pod_ips() -> Iterator[str]:
    """10.244.0.1, 10.244.0.2, ... 10.244.0.254, 10.244.1.1, ... (a /16 like kind's pod network), then again."""
    for number in itertools.cycle(range(256 * 254)):
        yield f"10.244.{number // 254}.{number % 254 + 1}"


def running_pod_status(pod: dict[str, Any], pod_ip: str, now: str, host_ip: str = HOST_IP) -> dict[str, Any]:
    """A pod's status once its init containers completed and its containers started, all at `now`, on the
    node whose address is `host_ip`."""
    spec = pod.get("spec") or {}
    return {
        "phase": "Running",
        "conditions": [{"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                       for kind in _POD_CONDITIONS],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        **({"initContainerStatuses": [_init_container_status(c, now) for c in spec["initContainers"]]}
           if spec.get("initContainers") else {}),
        "containerStatuses": [_running_container_status(c, now) for c in spec.get("containers") or []],
        **({"qosClass": pod["status"]["qosClass"]} if "qosClass" in (pod.get("status") or {}) else {}),
    }


def _running_container_status(container: dict[str, Any], now: str) -> dict[str, Any]:
    """No containerID (there is no container) and an empty imageID (no image was pulled), as for a waiting one."""
    return {"name": container["name"], "image": container["image"], "imageID": "", "ready": True, "started": True,
            "restartCount": 0, "state": {"running": {"startedAt": now}}, "lastState": {}}


def _init_container_status(container: dict[str, Any], now: str) -> dict[str, Any]:
    """A sidecar (restartPolicy Always) keeps running; any other init container has completed."""
    if container.get("restartPolicy") == "Always":
        return _running_container_status(container, now)
    terminated = {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}
    return {"name": container["name"], "image": container["image"], "imageID": "", "ready": True,
            "started": False, "restartCount": 0, "state": {"terminated": terminated}, "lastState": {}}


# Metadata the API server fills in.

_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def prepare_create(resource: ResourceType, obj: dict[str, Any],
                   address_taken: Callable[[str | int], bool] = lambda _: False) -> dict[str, Any]:
    """The object as the registry makes it before validation: defaulted (see `defaults`), metadata filled
    in, status reset, a Service's addresses allocated (free ones: `address_taken`, e.g.
    `Store.address_taken`), a Job's selector generated."""
    prepared = copy_object(obj)
    metadata = prepared["metadata"] = _without_empty_fields(prepared["metadata"])
    if not metadata.get("name") and metadata.get("generateName"):
        suffix = "".join(secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))
        metadata["name"] = metadata["generateName"][:58] + suffix
    for server_owned in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        metadata.pop(server_owned, None)
    metadata["uid"] = str(uuid.uuid4())
    metadata["creationTimestamp"] = now_timestamp()
    if resource.tracks_generation:
        metadata["generation"] = 1
    else:
        metadata.pop("generation", None)
    apply_defaults(resource, prepared)
    if resource == NAMESPACES:
        metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata.get("name", "")
        prepared["spec"] = {"finalizers": ["kubernetes"]}
        prepared["status"] = {"phase": "Active"}
    elif resource == PODS:
        prepared["status"] = {"phase": "Pending", "qosClass": qos_class(prepared.get("spec") or {})}
    elif (status := created_status(resource)) is not None:
        prepared["status"] = status
    elif resource.status_subresource:
        prepared.pop("status", None)
    if resource.kind == "Service":
        allocate_service(prepared, None, address_taken)
    elif resource.kind == "Job":
        generate_job_selector(prepared)
    return prepared


def prepare_update(resource: ResourceType, obj: dict[str, Any], old: dict[str, Any],
                   address_taken: Callable[[str | int], bool] = lambda _: False) -> dict[str, Any]:
    """The object as the registry makes it before validating an update: defaulted, server-owned fields
    kept (a Service's allocated addresses among them)."""
    prepared = copy_object(obj)
    metadata = prepared["metadata"] = _without_empty_fields(prepared.get("metadata") or {})
    apply_defaults(resource, prepared)
    if resource.kind == "Service":
        allocate_service(prepared, old, address_taken)
    for kept in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "generateName"):
        if kept in old["metadata"]:
            metadata[kept] = old["metadata"][kept]
        else:
            metadata.pop(kept, None)
    if resource == NAMESPACES:
        metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = old["metadata"]["name"]
        prepared["spec"] = old.get("spec", {})
    if not resource.status_subresource:
        pass
    elif "status" in old:
        prepared["status"] = old["status"]
    else:
        prepared.pop("status", None)
    if resource.tracks_generation and _desired_state(prepared) != _desired_state(old):
        metadata["generation"] = old["metadata"].get("generation", 1) + 1
    return prepared


def _without_empty_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    """ObjectMeta without empty fields: every one of them is `omitempty` in the API server's encoding."""
    return {key: value for key, value in metadata.items() if value not in (None, "", {}, [])}


def _desired_state(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


# Validation, with the field paths and wording of k8s.io/apimachinery field.Error.

@dataclass(frozen=True)
class Cause:
    """One field error: `field`, a `reason` (FieldValueRequired, ...), the `message` without the field."""

    field: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def go_value(value: Any) -> str:
    """A value as Go's %#v prints it in field errors."""
    if isinstance(value, dict):
        return "map[string]string{" + ", ".join(f"{json.dumps(k)}:{json.dumps(v)}"
                                                for k, v in sorted(value.items())) + "}"
    if value is None:
        return "null"
    return json.dumps(value)


def required(field_path: str, detail: str = "") -> Cause:
    return Cause(field_path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def invalid(field_path: str, value: Any, detail: str) -> Cause:
    return Cause(field_path, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}")


def unsupported(field_path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    allowed = ", ".join(json.dumps(v) for v in supported)
    return Cause(field_path, "FieldValueNotSupported",
                 f"Unsupported value: {go_value(value)}: supported values: {allowed}")


def forbidden(field_path: str, detail: str) -> Cause:
    return Cause(field_path, "FieldValueForbidden", f"Forbidden: {detail}")


def duplicate(field_path: str, value: Any) -> Cause:
    return Cause(field_path, "FieldValueDuplicate", f"Duplicate value: {go_value(value)}")


def decode_error(resource: ResourceType, obj: Any) -> str | None:
    """Why the body cannot be decoded as an object of this kind, in the API server's words, if it cannot."""
    prefix = f'{resource.kind} in version "{resource.version}" cannot be handled as a {resource.kind}: '
    if not isinstance(obj, dict):
        return prefix + f"json: cannot unmarshal {_json_type(obj)} into Go value of type struct"
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        return prefix + f"json: cannot unmarshal {_json_type(metadata)} into Go struct field " \
                        f"{resource.kind}.metadata of type v1.ObjectMeta"
    for name in ("name", "namespace", "generateName", "resourceVersion", "uid"):
        if name in metadata and not isinstance(metadata[name], str):
            return prefix + f"json: cannot unmarshal {_json_type(metadata[name])} into Go struct field " \
                            f"ObjectMeta.metadata.{name} of type string"
    for name in ("labels", "annotations"):
        values = metadata.get(name) or {}
        if not isinstance(values, dict):
            return prefix + f"json: cannot unmarshal {_json_type(values)} into Go struct field " \
                            f"ObjectMeta.metadata.{name} of type map[string]string"
        for value in values.values():
            if not isinstance(value, str):
                return prefix + f"json: cannot unmarshal {_json_type(value)} into Go struct field " \
                                f"ObjectMeta.metadata.{name} of type string"
    return None


def _json_type(value: Any) -> str:
    match value:
        case bool():
            return "bool"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case None:
            return "null"
        case _:
            return "object"


def validate_create(resource: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    causes = _validate_metadata(resource, obj["metadata"])
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if resource == PODS:
        causes += _validate_pod_spec(spec, "spec", allowed_restart_policies=("Always", "OnFailure", "Never"))
        if spec.get("ephemeralContainers"):
            causes.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if resource.pod_template_path is not None:
        causes += _validate_workload(resource, obj)
    from chaoskirvis.sandbox.kind_validation import kind_causes  # they build on this module's causes
    from chaoskirvis.sandbox.validation import port_causes

    return causes + port_causes(resource, obj) + kind_causes(resource, obj)


def validate_update(resource: ResourceType, obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    causes = validate_create(resource, obj)
    if resource == PODS:
        causes = [c for c in causes if c.field != "spec.ephemeralContainers"]
        causes += _validate_pod_update(obj.get("spec") or {}, old.get("spec") or {})
    if resource.requires_selector and (obj.get("spec") or {}).get("selector") != (old.get("spec") or {}).get(
            "selector"):
        causes.append(invalid("spec.selector", (obj.get("spec") or {}).get("selector"), "field is immutable"))
    return causes


def _validate_metadata(resource: ResourceType, metadata: dict[str, Any]) -> list[Cause]:
    name = metadata.get("name", "")
    if not name:
        return [required("metadata.name", "name or generateName is required")]
    causes = [invalid("metadata.name", name, message) for message in name_errors(resource.name_rule, name)]
    for key, value in (metadata.get("labels") or {}).items():
        causes += [invalid("metadata.labels", key, message) for message in qualified_name_errors(key)]
        causes += [invalid("metadata.labels", value, message) for message in label_value_errors(value)]
    annotations = metadata.get("annotations") or {}
    for key in annotations:
        causes += [invalid("metadata.annotations", key, message) for message in qualified_name_errors(key)]
    if sum(len(k) + len(v) for k, v in annotations.items()) > 262144:
        causes.append(Cause("metadata.annotations", "FieldValueTooLong",
                            "Too long: may not be more than 262144 bytes"))
    return causes


def _validate_pod_spec(spec: dict[str, Any], path: str,
                       allowed_restart_policies: tuple[str, ...]) -> list[Cause]:
    causes: list[Cause] = []
    containers = spec.get("containers") or []
    if not containers:
        causes.append(required(f"{path}.containers"))
    seen: set[str] = set()
    for list_name, items in (("containers", containers), ("initContainers", spec.get("initContainers") or [])):
        for index, container in enumerate(items):
            container_path = f"{path}.{list_name}[{index}]"
            name = container.get("name", "") if isinstance(container, dict) else ""
            if not name:
                causes.append(required(f"{container_path}.name"))
            else:
                causes += [invalid(f"{container_path}.name", name, m) for m in dns_label_errors(name)]
                if name in seen:
                    causes.append(duplicate(f"{container_path}.name", name))
                seen.add(name)
            if not (container.get("image") if isinstance(container, dict) else None):
                causes.append(required(f"{container_path}.image"))
    restart_policy = spec.get("restartPolicy", "Always")
    if restart_policy not in allowed_restart_policies:
        causes.append(unsupported(f"{path}.restartPolicy", restart_policy, allowed_restart_policies))
    return causes


def _validate_workload(resource: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    path = ".".join(resource.pod_template_path or ())
    template = _dig(obj, resource.pod_template_path or ())
    template = template if isinstance(template, dict) else {}
    template_spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    causes = _validate_pod_spec(template_spec, f"{path}.spec",
                                allowed_restart_policies=resource.template_restart_policies or ())
    if not resource.requires_selector:
        return causes
    selector = (obj.get("spec") or {}).get("selector")
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if selector is None:
        return [*causes, required("spec.selector")]
    try:
        parsed = label_selector_from_object(selector)
    except SelectorError as error:
        return [*causes, invalid("spec.selector", selector, str(error))]
    if parsed.empty:
        causes.append(invalid("spec.selector", selector,
                              f"empty selector is invalid for {resource.singular}"))
    elif not parsed.matches(template_labels):
        causes.append(invalid(f"{path}.metadata.labels", template_labels,
                              "`selector` does not match template `labels`"))
    return causes


_POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _validate_pod_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    """A pod's spec is immutable but for container images, activeDeadlineSeconds and added tolerations."""
    old_tolerations = old_spec.get("tolerations") or []
    if not all(t in (spec.get("tolerations") or []) for t in old_tolerations):
        return [forbidden("spec", _POD_UPDATE_FORBIDDEN)]
    if _immutable_pod_spec(spec) != _immutable_pod_spec(old_spec):
        return [forbidden("spec", _POD_UPDATE_FORBIDDEN)]
    return []


def _immutable_pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    masked = {k: copy.deepcopy(v) for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
    for list_name in ("containers", "initContainers"):
        for container in masked.get(list_name) or []:
            if isinstance(container, dict):
                container.pop("image", None)
    return masked


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def stream_container(pod: dict[str, Any], requested: str | None) -> str:
    """The container a log or exec request is for, chosen as the pod registry's streamLocation chooses it.

    Raises ValueError with the API server's message (a 400 Bad Request) when the pod has no such container,
    or when none is named and the pod has several.
    """
    name, spec = pod["metadata"]["name"], pod.get("spec") or {}
    containers = [c["name"] for c in spec.get("containers") or []]
    init_containers = [c["name"] for c in spec.get("initContainers") or []]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if init_containers:
            message += f" or one of the init containers: [{' '.join(init_containers)}]"
        raise ValueError(message)
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    if requested not in containers + init_containers + ephemeral:
        raise ValueError(f"container {requested} is not valid for pod {name}")
    return requested


def pod_template(resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The PodTemplateSpec of a workload object, if it has one."""
    template = _dig(obj, resource.pod_template_path or ())
    return template if isinstance(template, dict) and resource.pod_template_path else None

