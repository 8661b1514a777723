"""Port injection: the Kubernetes form of ChaoSlingr's PortChange, which opened a random port.

Every technique exposes the port in ``options["port"]``, drawn by the run (see `chaoskirvis.exposure.draw`).
"""
from __future__ import annotations

from typing import Any

from chaoskirvis.techniques.unit import Detection, Option, Rule, Technique

__all__ = ["EXPOSURE_TECHNIQUES"]

_PORT = Option(None, "the port to open; drawn at random from the run's range when not given")
_AUDIT_SERVICE = "verb=create, objectRef.resource=services, requestObject.spec."
_NODEPORT_RULES = (Rule("Create NodePort Service", "k8saudit", needs=(
    "an audit policy logging service creates at level Request or RequestResponse (the condition reads the "
    "request's spec.type; the alert names the Service, and so the run)",)),)
_GENERIC_SERVICE = ("k8saudit's 'K8s Service Created' fires for any Service that is created; it does not single out "
                    "this risk, so it does not count")


def _service_port(service: dict[str, Any], port: int) -> None:
    service["spec"]["ports"] = [{"name": "kirvis", "protocol": "TCP", "port": port, "targetPort": port}]


def _node_port(service: dict[str, Any], options: dict[str, Any]) -> None:
    service["spec"]["type"] = "NodePort"
    _service_port(service, options["port"])


def _open_load_balancer(service: dict[str, Any], options: dict[str, Any]) -> None:
    service["spec"]["type"] = "LoadBalancer"
    service["spec"]["loadBalancerSourceRanges"] = ["0.0.0.0/0"]
    _service_port(service, options["port"])


def _external_ips(service: dict[str, Any], options: dict[str, Any]) -> None:
    service["spec"]["externalIPs"] = list(options["external_ips"])
    _service_port(service, options["port"])


def _host_port(pod: dict[str, Any], options: dict[str, Any]) -> None:
    for container in pod["spec"]["containers"]:
        container["ports"] = [{"name": "kirvis", "protocol": "TCP", "containerPort": options["port"],
                               "hostPort": options["port"]}]


def _open_ingress(policy: dict[str, Any], options: dict[str, Any]) -> None:
    policy["spec"]["ingress"] = [{
        "from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
        "ports": [{"protocol": "TCP", "port": options["port"]}],
    }]


def _exposure(id: str, title: str, attack: tuple[str, ...], injects: str, target: str, apply, blocked_by: str,
              audit: str, level: str | None = None, checks: tuple[str, ...] = (), rules: tuple[Rule, ...] = (),
              note: str = "", **options: Option) -> Technique:
    return Technique(
        id=id, family="exposure", title=title, attack=attack, injects=injects, blocked_by=blocked_by,
        pod_security_level=level, pod_security_checks=checks,
        detection=Detection(rules=rules, audit_log=audit, note=note),
        undo=f"delete the {target} (it carries the run's ownership labels)", target=target, apply=apply,
        options={"port": _PORT, **options},
    )


_VAP = "a ValidatingAdmissionPolicy (or policy engine rule) that forbids it"

EXPOSURE_TECHNIQUES: tuple[Technique, ...] = (
    _exposure("nodeport-service", "Service of type NodePort", ("T1133",),
              "a NodePort Service opening a random port on every node", "service", _node_port,
              f"{_VAP}; Pod Security does not check Services", _AUDIT_SERVICE + "type=NodePort",
              rules=_NODEPORT_RULES),
    _exposure("open-load-balancer", "LoadBalancer open to the internet", ("T1133",),
              "a LoadBalancer Service with loadBalancerSourceRanges 0.0.0.0/0 on a random port", "service",
              _open_load_balancer, f"{_VAP}; Pod Security does not check Services",
              _AUDIT_SERVICE + "type=LoadBalancer, spec.loadBalancerSourceRanges contains 0.0.0.0/0",
              note=f"no upstream Falco or k8saudit rule looks at LoadBalancer Services; {_GENERIC_SERVICE}"),
    _exposure("external-ips", "Service externalIPs (CVE-2020-8554)", ("T1557",),
              "a Service claiming an external IP (default 203.0.113.10, a documentation address) on a random "
              "port, which lets it intercept that IP's traffic", "service", _external_ips,
              f"{_VAP}, or the DenyServiceExternalIPs admission plugin", _AUDIT_SERVICE + "externalIPs",
              note=f"no upstream Falco or k8saudit rule looks at externalIPs; {_GENERIC_SERVICE}",
              external_ips=Option(["203.0.113.10"], "the external IPs to claim")),
    _exposure("host-port", "hostPort on a pod", ("T1133",),
              "a pod binding a random port on its node (hostPort)", "pod", _host_port,
              'Pod Security Admission at level "baseline" or stricter (check \'hostPort\')',
              "verb=create, objectRef.resource=pods, requestObject.spec.containers[*].ports[*].hostPort",
              level="baseline", checks=("hostPort",),
              note="no upstream Falco or k8saudit rule looks at hostPort"),
    _exposure("open-ingress-policy", "NetworkPolicy admitting the internet", ("T1562.007",),
              "a NetworkPolicy allowing ingress from 0.0.0.0/0 to every pod of the namespace on a random port",
              "networkpolicy", _open_ingress, f"{_VAP}; Pod Security does not check NetworkPolicies",
              "verb=create, objectRef.resource=networkpolicies, requestObject.spec.ingress[*].from[*].ipBlock.cidr"
              "=0.0.0.0/0", note="no upstream Falco or k8saudit rule looks at NetworkPolicies"),
)
