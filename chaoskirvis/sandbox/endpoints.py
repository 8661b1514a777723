"""The endpoints controller of kube-controller-manager 1.32 (pkg/controller/endpoint/endpoints_controller.go
syncService), as `ClusterStore` runs it, and the question an API server asks before calling a Service.

Every Service with a selector has an Endpoints object of its name: the pods of its namespace the selector
matches that have a pod IP and are not terminating, each as an address (ip, nodeName, targetRef to the pod)
under `addresses` when Ready, else under `notReadyAddresses` (unless it is Succeeded or Failed), with one
port per Service port whose targetPort the pod resolves (a number as is; a name through the pod's
containers' ports, podutil.FindPort). The subsets are repacked as endpoints.RepackSubsets does: the
addresses that share a port set form one subset, addresses sorted by IP. The Endpoints carries the
Service's labels (and `service.kubernetes.io/headless` for a headless one). A Service without a selector
is left alone (its Endpoints are the user's); a deleted Service's Endpoints are deleted. Not modelled:
the `endpoints.kubernetes.io/last-change-trigger-time` annotation, the 1000-address cap,
publishNotReadyAddresses, and discovery.k8s.io EndpointSlices (the sandbox does not serve them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chaoskirvis.sandbox.resources import ENDPOINTS, PODS, SERVICES
from chaoskirvis.sandbox.selectors import label_selector_from_object
from chaoskirvis.sandbox.store import Store, prepare_create
from chaoskirvis.sandbox.workload_controllers import ready

HEADLESS = "service.kubernetes.io/headless"


def sync_service(store: Store, namespace: str, name: str) -> None:
    """syncService: write (or delete) the Endpoints of Service NAMESPACE/NAME."""
    service = store.get(SERVICES, namespace, name)
    current = store.get(ENDPOINTS, namespace, name)
    if service is None:
        if current is not None and _managed(current):
            store.delete(ENDPOINTS, namespace, name)
        return
    spec = service.get("spec") or {}
    selector = spec.get("selector")
    if not selector:
        return
    pods = store.select(PODS, namespace, label_selector_from_object({"matchLabels": selector})).items
    labels = dict(service["metadata"].get("labels") or {})
    if spec.get("clusterIP") == "None":
        labels[HEADLESS] = ""
    subsets = _subsets(spec, pods)
    if current is None:
        endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": name, "namespace": namespace, "labels": labels},
                     **({"subsets": subsets} if subsets else {})}  # omitempty
        store.create(ENDPOINTS, prepare_create(ENDPOINTS, endpoints))
        return
    if (current.get("subsets") or []) != subsets or (current["metadata"].get("labels") or {}) != labels:
        metadata = dict(current["metadata"], labels=labels) if labels else {
            k: v for k, v in current["metadata"].items() if k != "labels"}
        store.update(ENDPOINTS, {**{k: v for k, v in current.items() if k != "subsets"}, "metadata": metadata,
                                 **({"subsets": subsets} if subsets else {})})


def services_selecting(store: Store, pods: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """The Services (namespace, name) whose selector matches any of these pods' labels (old or new)."""
    found: set[tuple[str, str]] = set()
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        by_namespace.setdefault(pod["metadata"]["namespace"], []).append(pod)
    for namespace, namespace_pods in by_namespace.items():
        labels = [(pod["metadata"].get("labels") or {}).items() for pod in namespace_pods]

        def selects(service: Mapping[str, Any]) -> bool:
            selector = (service.get("spec") or {}).get("selector")
            return bool(selector) and any(selector.items() <= pod_labels for pod_labels in labels)

        found.update((namespace, service["metadata"]["name"])  # `where` sees the stored objects: no copies
                     for service in store.select(SERVICES, namespace, where=selects).items)
    return found


def has_ready_endpoint(store: Store, namespace: str, name: str, port: int | None = None) -> bool:
    """Whether Service NAMESPACE/NAME has a ready address (on Service port `port`, when given): what kube-apiserver
    needs to call a webhook's `clientConfig.service` (its default ClusterIP resolver then meets kube-proxy's
    `connection refused`). A Service that does not exist, or has no selector and no Endpoints, has none."""
    service = store.get(SERVICES, namespace, name)
    endpoints = store.get(ENDPOINTS, namespace, name)
    if service is None or endpoints is None:
        return False
    wanted: str | None = None
    if port is not None:
        service_port = next((p for p in (service.get("spec") or {}).get("ports") or [] if p.get("port") == port), None)
        if service_port is None:
            return False
        wanted = service_port.get("name", "")
    for subset in endpoints.get("subsets") or []:
        if subset.get("addresses") and (wanted is None or any(p.get("name", "") == wanted
                                                               for p in subset.get("ports") or [])):
            return True
    return False


def _managed(endpoints: dict[str, Any]) -> bool:
    """The API server's own `kubernetes` Endpoints are not the endpoints controller's."""
    return endpoints["metadata"]["name"] != "kubernetes" or endpoints["metadata"]["namespace"] != "default"


def _subsets(spec: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The addresses of the pods that qualify, per port set, repacked."""
    by_ports: dict[str, tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]] = {}
    service_ports = spec.get("ports") or []
    for pod in pods:
        status = pod.get("status") or {}
        if not status.get("podIP") or pod["metadata"].get("deletionTimestamp"):
            continue
        is_ready = ready(pod)
        if not is_ready and status.get("phase") in ("Succeeded", "Failed"):
            continue  # shouldPodBeInEndpoints
        address = {"ip": status["podIP"], "nodeName": (pod.get("spec") or {}).get("nodeName", ""),
                   "targetRef": {"kind": "Pod", "namespace": pod["metadata"]["namespace"],
                                 "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}}
        ports = []
        for service_port in service_ports:
            number = _find_port(pod, service_port)
            if number is not None:
                ports.append({**({"name": service_port["name"]} if service_port.get("name") else {}),
                              "port": number, "protocol": service_port.get("protocol", "TCP"),
                              **({"appProtocol": service_port["appProtocol"]} if service_port.get("appProtocol")
                                 else {})})
        if service_ports and not ports:
            continue
        key = repr(sorted(ports, key=lambda p: (p.get("name", ""), p["port"])))
        ready_addresses, not_ready, _ = by_ports.setdefault(key, ([], {}, {"ports": ports}))
        (ready_addresses.append(address) if is_ready else not_ready.setdefault(address["ip"], address))
    subsets = []
    for ready_addresses, not_ready, holder in by_ports.values():
        subset: dict[str, Any] = {}
        if ready_addresses:
            subset["addresses"] = sorted(ready_addresses, key=lambda a: (a["ip"], a["targetRef"]["uid"]))
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready.values(), key=lambda a: (a["ip"], a["targetRef"]["uid"]))
        if holder["ports"]:
            subset["ports"] = holder["ports"]
        subsets.append(subset)
    return subsets


def _find_port(pod: dict[str, Any], service_port: dict[str, Any]) -> int | None:
    """podutil.FindPort: a numeric targetPort as is; a named one from the containers' ports of that name and
    protocol (None when no container has it)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None
