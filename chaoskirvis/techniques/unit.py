"""The shape of one attack technique: a small self-describing unit that docs, probes and reports read."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from chaoslib.exceptions import ActivityFailed

__all__ = ["Technique", "Detection", "Option", "unknown_options"]


@dataclass(frozen=True)
class Option:
    default: Any
    description: str


@dataclass(frozen=True)
class Detection:
    """What a detector should see when the technique is introduced."""

    falco_rules: tuple[str, ...] = ()
    audit_log: str = ""


@dataclass(frozen=True)
class Technique:
    """One way to introduce a security fault.

    `target` names what carries it: an object (``pod``, ``service`` or ``networkpolicy``), whose base
    manifest `apply` changes in place given the resolved options; or ``exec``, a command run in a pod
    (`command`, cleaned up by `undo_command`), given the options and the run id.
    """

    id: str
    family: str
    title: str
    attack: tuple[str, ...]
    injects: str
    blocked_by: str
    pod_security_level: str | None
    pod_security_checks: tuple[str, ...]
    detection: Detection
    undo: str
    target: str
    apply: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
    options: dict[str, Option] = field(default_factory=dict)
    command: Callable[[dict[str, Any]], list[str]] | None = None
    undo_command: Callable[[dict[str, Any]], list[str]] | None = None
    tty: bool = False

    def resolve_options(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """This technique's options: its defaults, overridden by `given` (other keys are ignored)."""
        given = given or {}
        return {name: given.get(name, option.default) for name, option in self.options.items()}

    def summary(self) -> dict[str, Any]:
        """The unit as plain data (for the journal, reports and `kirvis catalog`)."""
        return {
            "id": self.id, "family": self.family, "title": self.title, "attack": list(self.attack),
            "injects": self.injects, "blocked_by": self.blocked_by, "target": self.target,
            "pod_security_level": self.pod_security_level, "pod_security_checks": list(self.pod_security_checks),
            "detection": {"falco_rules": list(self.detection.falco_rules), "audit_log": self.detection.audit_log},
            "undo": self.undo,
            "options": {name: {"default": o.default, "description": o.description} for name, o in self.options.items()},
        }


def unknown_options(techniques: list[Technique], given: dict[str, Any] | None) -> None:
    """Raise when `given` holds an option none of `techniques` knows (a typo would silently test less)."""
    known = {name for technique in techniques for name in technique.options}
    unknown = sorted(set(given or {}) - known)
    if unknown:
        raise ActivityFailed(
            f"unknown option(s) {', '.join(unknown)} for {', '.join(t.id for t in techniques)}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )
