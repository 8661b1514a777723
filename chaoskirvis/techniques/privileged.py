"""A privileged container: full access to the host's devices, the classic container escape."""
from __future__ import annotations

from typing import Any

from chaoskirvis.techniques.unit import Detection, Technique

__all__ = ["PRIVILEGED"]


def _make_privileged(pod: dict[str, Any], options: dict[str, Any]) -> None:
    for container in pod["spec"]["containers"]:
        container.setdefault("securityContext", {})["privileged"] = True


PRIVILEGED = Technique(
    id="privileged",
    title="Privileged container",
    attack=("T1610", "T1611"),
    injects="a pod whose container sets securityContext.privileged=true",
    blocked_by='Pod Security Admission at level "baseline" or "restricted" (check "privileged"), '
               "or any policy engine rule that forbids privileged containers",
    pod_security_level="baseline",
    pod_security_checks=("privileged",),
    detection=Detection(
        falco_rules=("Launch Privileged Container",),
        audit_log='verb=create, objectRef.resource=pods, '
                  'requestObject.spec.containers[*].securityContext.privileged=true',
    ),
    undo="delete the pod (it carries the run's ownership labels)",
    mutate_pod=_make_privileged,
)
