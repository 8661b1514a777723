"""Field validation of the ports our techniques set, as k8s.io/kubernetes pkg/apis/core/validation does it.

A real API server answers 422 Invalid for a Service port, target port or container/host port outside
1-65535 (``validation.IsValidPortNum``: "must be between 1 and 65535, inclusive"), a named target port
that is not an IANA service name (``IsValidPortName``), and a node port outside the service node port
range (the allocator: "provided port is not in the valid range. The range of valid ports is
30000-32767", the default ``--service-node-port-range``). Object names and labels are checked by
`chaoskirvis.sandbox.store` already.
"""
from __future__ import annotations

import re
from typing import Any

from chaoskirvis.sandbox.resources import PODS, ResourceType
from chaoskirvis.sandbox.store import Cause, invalid, required

__all__ = ["port_causes", "NODE_PORT_RANGE"]

NODE_PORT_RANGE = (30000, 32767)
_PORT_RANGE_MESSAGE = "must be between 1 and 65535, inclusive"
_PORT_NAME_CHARACTERS = re.compile(r"[-a-z0-9]+")
_PORT_NAME_LETTER = re.compile(r"[a-z]")


def port_causes(resource: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    """The field errors of the ports of a Service, a Pod or a workload's pod template."""
    if resource.kind == "Service":
        return _service_ports(obj.get("spec") if isinstance(obj.get("spec"), dict) else {})
    if resource == PODS:
        return _container_ports(obj.get("spec"), "spec")
    if resource.pod_template_path is not None:
        template: Any = obj
        for key in resource.pod_template_path:
            template = template.get(key) if isinstance(template, dict) else None
        spec = template.get("spec") if isinstance(template, dict) else None
        return _container_ports(spec, ".".join(resource.pod_template_path) + ".spec")
    return []


def _is_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _port_number(path: str, value: Any) -> list[Cause]:
    if not _is_number(value) or not 1 <= value <= 65535:
        return [invalid(path, value, _PORT_RANGE_MESSAGE)]
    return []


def port_name_errors(name: str) -> list[str]:
    """`validation.IsValidPortName`: an IANA_SVC_NAME (RFC 6335 section 5.1)."""
    errors = []
    if len(name) > 15:
        errors.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARACTERS.fullmatch(name):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER.search(name):
        errors.append("must contain at least one letter (a-z)")
    if "--" in name:
        errors.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _service_ports(spec: dict[str, Any]) -> list[Cause]:
    ports = spec.get("ports")
    service_type = spec.get("type") or "ClusterIP"
    if not isinstance(ports, list) or not ports:
        headless = spec.get("clusterIP") == "None"
        return [] if service_type == "ExternalName" or headless else [required("spec.ports")]
    causes: list[Cause] = []
    low, high = NODE_PORT_RANGE
    for index, port in enumerate(ports):
        path = f"spec.ports[{index}]"
        if not isinstance(port, dict):
            continue
        if "port" not in port or port.get("port") == 0:
            causes.append(required(f"{path}.port"))
        else:
            causes += _port_number(f"{path}.port", port.get("port"))
        target = port.get("targetPort")
        if isinstance(target, str):
            causes += [invalid(f"{path}.targetPort", target, message) for message in port_name_errors(target)]
        elif target is not None and target != 0:
            causes += _port_number(f"{path}.targetPort", target)
        node_port = port.get("nodePort")
        if node_port not in (None, 0) and service_type in ("NodePort", "LoadBalancer"):
            if not _is_number(node_port) or not low <= node_port <= high:
                causes.append(invalid(f"{path}.nodePort", node_port,
                                      f"provided port is not in the valid range. The range of valid ports is "
                                      f"{low}-{high}"))
    return causes


def _container_ports(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return []
    causes: list[Cause] = []
    for list_name in ("containers", "initContainers"):
        containers = spec.get(list_name)
        for index, container in enumerate(containers if isinstance(containers, list) else []):
            ports = container.get("ports") if isinstance(container, dict) else None
            for port_index, port in enumerate(ports if isinstance(ports, list) else []):
                if not isinstance(port, dict):
                    continue
                port_path = f"{path}.{list_name}[{index}].ports[{port_index}]"
                container_port = port.get("containerPort")
                if container_port in (None, 0):
                    causes.append(required(f"{port_path}.containerPort"))
                else:
                    causes += _port_number(f"{port_path}.containerPort", container_port)
                if port.get("hostPort") not in (None, 0):
                    causes += _port_number(f"{port_path}.hostPort", port.get("hostPort"))
    return causes
