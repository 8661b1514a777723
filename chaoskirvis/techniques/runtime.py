"""Runtime techniques: benign "suspicious" commands run in a pod through the exec API, for runtime detectors.

Each is named after the Falco rule it should trigger, does nothing harmful, and cleans up after itself.
They run in a pod the run creates (`chaoskirvis.runtime.actions`), never in a user's pod unless one is
explicitly targeted. Commands use only busybox/POSIX tools.
"""
from __future__ import annotations

from typing import Any

from chaoskirvis.techniques.unit import Detection, Technique

__all__ = ["RUNTIME_TECHNIQUES"]

_UNDO_POD = "delete the pod the run created (files it wrote go with it); in a targeted pod, the undo command"
_AUDIT_EXEC = "verb=create, objectRef.resource=pods, objectRef.subresource=exec, requestURI contains command="


def _sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def _runtime(id: str, title: str, attack: tuple[str, ...], injects: str, rule: str, command, undo=None,
             tty: bool = False) -> Technique:
    return Technique(
        id=id, family="runtime", title=title, attack=attack, injects=injects,
        blocked_by="a runtime policy (seccomp/AppArmor/Tetragon enforcement) or RBAC denying pods/exec; "
                   f"detected by a runtime detector (Falco rule '{rule}')",
        pod_security_level=None, pod_security_checks=(), detection=Detection(falco_rules=(rule,), audit_log=_AUDIT_EXEC),
        undo=_UNDO_POD, target="exec", command=command, undo_command=undo, tty=tty,
    )


def _marker(options: dict[str, Any]) -> str:
    return f"kirvis-{options['run_id']}"


RUNTIME_TECHNIQUES: tuple[Technique, ...] = (
    _runtime("read-sensitive-file", "Read a sensitive file", ("T1003.008",),
             "reads /etc/shadow inside the container", "Read sensitive file untrusted",
             lambda o: _sh("cat /etc/shadow > /dev/null; true")),
    _runtime("terminal-shell", "Shell in a container", ("T1059.004",),
             "spawns an interactive shell (with a TTY) inside the container", "Terminal shell in container",
             lambda o: _sh("id; true"), tty=True),
    _runtime("write-below-etc", "Write below /etc", ("T1543",),
             "writes a marker file below /etc, removed afterwards", "Write below etc",
             lambda o: _sh(f"echo {_marker(o)} > /etc/{_marker(o)}"),
             undo=lambda o: _sh(f"rm -f /etc/{_marker(o)}")),
    _runtime("cloud-metadata", "Contact the cloud metadata service", ("T1552.005",),
             "asks 169.254.169.254 for its index (2 s timeout; the answer is discarded)",
             "Contact cloud metadata service from container",
             lambda o: _sh("wget -q -T 2 -O /dev/null http://169.254.169.254/ ; true")),
    _runtime("kubernetes-client", "Kubernetes client in a container", ("T1609",),
             "runs a program named kubectl inside the container (busybox under that name, doing nothing)",
             "Kubernetes Client Tool Launched in Container",
             lambda o: _sh("cp /bin/busybox /tmp/kubectl && /tmp/kubectl true; rm -f /tmp/kubectl")),
    _runtime("drop-and-execute", "Drop and execute a new binary", ("T1105", "T1204.002"),
             "copies a binary into the container's writable layer and runs it, then removes it",
             "Drop and execute new binary in container",
             lambda o: _sh(f"cp /bin/busybox /tmp/{_marker(o)} && /tmp/{_marker(o)} true; rm -f /tmp/{_marker(o)}")),
)
