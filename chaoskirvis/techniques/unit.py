"""The shape of one attack technique: a small self-describing unit that docs, probes and reports read."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Technique", "Detection", "PodMutation"]

# Changes a pod manifest in place so that it carries the technique; the options come from the experiment.
PodMutation = Callable[[dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Detection:
    """What a detector should see when the technique is introduced."""

    falco_rules: tuple[str, ...] = ()
    audit_log: str = ""


@dataclass(frozen=True)
class Technique:
    id: str
    title: str
    attack: tuple[str, ...]
    injects: str
    blocked_by: str
    pod_security_level: str | None
    pod_security_checks: tuple[str, ...]
    detection: Detection
    undo: str
    mutate_pod: PodMutation
    options: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The unit as plain data (for the journal, reports and `kirvis catalog`)."""
        return {
            "id": self.id, "title": self.title, "attack": list(self.attack), "injects": self.injects,
            "blocked_by": self.blocked_by, "pod_security_level": self.pod_security_level,
            "pod_security_checks": list(self.pod_security_checks),
            "detection": {"falco_rules": list(self.detection.falco_rules), "audit_log": self.detection.audit_log},
            "undo": self.undo, "options": dict(self.options),
        }
