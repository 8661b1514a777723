"""The service REST storage's allocators, where they need the store: a cluster IP or node port is given
to one Service only, and a requested cluster IP must be in the service CIDR.

kube-apiserver allocates a Service's addresses while it creates it (pkg/registry/core/service/storage,
`alloc.go` with ipallocator and portallocator); `defaults.allocate_service` picks them, and this check,
run in the admission chain because it reads the other Services, refuses what the allocators refuse,
with their words: 422 `spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: failed to allocate IP
10.0.0.5: the provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/12`,
`... failed to allocate IP 10.96.0.10: provided IP is already allocated`, and `spec.ports[0].nodePort:
Invalid value: 30080: provided port is already allocated`. What the sandbox picks is free already
(`defaults.allocate_service` asks `Store.address_taken`), as the allocators pick.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from chaoskirvis.sandbox.admission import ALLOWED, AdmissionRequest, AdmissionResult, Denial
from chaoskirvis.sandbox.defaults import SERVICE_CIDR
from chaoskirvis.sandbox.resources import find_resource
from chaoskirvis.sandbox.store import Cause, Store, invalid

SERVICES = find_resource("", "v1", "services")


class ServiceAllocation:
    """Refuses a Service whose cluster IP or node ports the allocators would not give it."""

    name = "ServiceAllocation"

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        if request.resource != SERVICES or request.subresource or request.object is None:
            return ALLOWED
        if request.operation not in ("CREATE", "UPDATE"):
            return ALLOWED
        spec = request.object.get("spec") if isinstance(request.object.get("spec"), dict) else {}
        old_spec = (request.old_object or {}).get("spec") or {}
        uid = request.object["metadata"].get("uid")
        others = [s for s in store.services_holding(spec) if s["metadata"].get("uid") != uid]
        causes = _cluster_ip_causes(spec, old_spec, others) + _node_port_causes(spec, old_spec, others)
        if not causes:
            return ALLOWED
        details = causes[0] if len(causes) == 1 else "[" + ", ".join(str(c) for c in causes) + "]"
        return AdmissionResult(denial=Denial(422, "Invalid", f'Service "{request.name}" is invalid: {details}',
                                             tuple(causes)))


def _cluster_ip_causes(spec: dict[str, Any], old_spec: dict[str, Any], others: list[dict[str, Any]]) -> list[Cause]:
    """allocIPs: each new IPv4 cluster IP in the CIDR (not its network or broadcast address) and free."""
    cluster_ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str) and ip not in ("", "None")]
    taken = {ip for other in others for ip in (other.get("spec") or {}).get("clusterIPs") or []}
    for address in cluster_ips:
        if address in (old_spec.get("clusterIPs") or []):
            continue  # already this Service's
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            continue  # validation's to report
        if parsed.version != 4:
            continue
        if parsed not in SERVICE_CIDR or parsed in (SERVICE_CIDR.network_address, SERVICE_CIDR.broadcast_address):
            reason = (f"the provided IP ({address}) is not in the valid range. The range of valid IPs is "
                      f"{SERVICE_CIDR}")
        elif address in taken:
            reason = "provided IP is already allocated"
        else:
            continue
        go_list = "[]string{" + ", ".join(f'"{ip}"' for ip in cluster_ips) + "}"  # Go's %#v
        return [Cause("spec.clusterIPs", "FieldValueInvalid",
                      f"Invalid value: {go_list}: failed to allocate IP {address}: {reason}")]
    return []


def _node_port_causes(spec: dict[str, Any], old_spec: dict[str, Any], others: list[dict[str, Any]]) -> list[Cause]:
    """The port allocator: a node port (or health check node port) belongs to one Service."""
    taken = {port.get("nodePort") for other in others for port in (other.get("spec") or {}).get("ports") or []
             if isinstance(port, dict)}
    taken |= {(other.get("spec") or {}).get("healthCheckNodePort") for other in others}
    taken.discard(None)
    own = {port.get("nodePort") for port in old_spec.get("ports") or [] if isinstance(port, dict)}
    causes = []
    for index, port in enumerate(spec.get("ports") or []):
        node_port = port.get("nodePort") if isinstance(port, dict) else None
        if isinstance(node_port, int) and node_port in taken and node_port not in own:
            causes.append(invalid(f"spec.ports[{index}].nodePort", node_port, "provided port is already allocated"))
    return causes

