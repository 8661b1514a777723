"""Runtime techniques: benign "suspicious" commands run in a pod through the exec API, for runtime detectors.

Each is shaped so that a named upstream rule fires for it (`Detection.rules`, with what each rule needs),
does nothing harmful, and cleans up after itself.
They run in a pod the run creates (`chaoskirvis.runtime.actions`), never in a user's pod unless one is
explicitly targeted. Commands use only busybox/POSIX tools.
"""
from __future__ import annotations

from typing import Any

from chaoskirvis.techniques.unit import Detection, Rule, Technique

__all__ = ["RUNTIME_TECHNIQUES"]

_UNDO_POD = "delete the pod the run created (files it wrote go with it); in a targeted pod, the undo command"
_AUDIT_EXEC = "verb=create, objectRef.resource=pods, objectRef.subresource=exec, requestURI contains command="
_ROOT = ("root in the container: run_runtime_technique with run_as_root: true (as the default non-root user the "
         "open fails, and the rule counts only successful opens)")
_METADATA_ROUTE = ("a route from the pod to 169.254.169.254: the rule counts a connect that succeeded or is in "
                   "progress, and the technique's UDP connect (busybox nc -u) succeeds wherever the address is "
                   "routed, even if nothing answers there; a blocking TCP connect that fails does not count")
_EXEC_ALERT = ("k8saudit's 'Attach/Exec Pod' fires for the exec that carries any runtime technique, not for what the "
               "command does; name it with rule= to test that the exec itself is seen")


def _sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def _runtime(id: str, title: str, attack: tuple[str, ...], injects: str, rules: tuple[Rule, ...], command,
             undo=None, tty: bool = False, note: str = _EXEC_ALERT) -> Technique:
    return Technique(
        id=id, family="runtime", title=title, attack=attack, injects=injects,
        blocked_by="a runtime policy (seccomp/AppArmor/Tetragon enforcement) or RBAC denying pods/exec; otherwise a "
                   "runtime detector should see it (the rules below)",
        pod_security_level=None, pod_security_checks=(),
        detection=Detection(rules=rules, audit_log=_AUDIT_EXEC, note=note),
        undo=_UNDO_POD, target="exec", command=command, undo_command=undo, tty=tty,
    )


def _marker(options: dict[str, Any]) -> str:
    return f"kirvis-{options['run_id']}"


RUNTIME_TECHNIQUES: tuple[Technique, ...] = (
    _runtime("read-sensitive-file", "Read a sensitive file", ("T1003.008",),
             "reads /etc/shadow inside the container (the exit code says whether the read succeeded)",
             (Rule("Read sensitive file untrusted", "falco", needs=(_ROOT, "an image that has /etc/shadow")),),
             lambda o: _sh("cat /etc/shadow > /dev/null")),
    _runtime("terminal-shell", "Shell in a container", ("T1059.004",),
             "spawns an interactive shell (with a TTY) inside the container", (
                 Rule("Terminal shell in container", "falco", needs=(
                     "a TTY (the technique asks for one)", "the exec'd shell's parent is the container runtime "
                     "(true for exec through the API)")),
                 Rule("Attach/Exec Pod", "k8saudit", needs=(
                     "an audit policy logging pods/exec at level Metadata or higher, without omitting the "
                     "ResponseStarted stage (the rule matches that stage; the alert names the pod, and so the run)",)),
             ), lambda o: _sh("id; true"), tty=True, note=""),
    _runtime("write-below-etc", "Write below /etc", ("T1543",),
             "writes a marker file below /etc, removed afterwards",
             (Rule("Write below etc", "sandbox", needs=(
                 "root in the container: run_runtime_technique with run_as_root: true (/etc is not writable for "
                 "the default non-root user, and the rule counts only successful opens)",
                 "a writable root filesystem")),),
             lambda o: _sh(f"echo {_marker(o)} > /etc/{_marker(o)}"),
             undo=lambda o: _sh(f"rm -f /etc/{_marker(o)}")),
    _runtime("cloud-metadata", "Contact the cloud metadata service", ("T1552.005",),
             "connects a UDP socket to 169.254.169.254:80 (a connect that sends nothing and returns at once), then "
             "asks 169.254.169.254 for its index over HTTP (2 s timeout; the answer is discarded)",
             (Rule("Contact cloud metadata service from container", "incubating",
                   needs=(_METADATA_ROUTE, "a pod outside kube-system (the rule's user_known_metadata_access macro "
                                           "leaves kube-system out)")),
              Rule("Contact EC2 Instance Metadata Service From Container", "incubating", needs=(_METADATA_ROUTE,))),
             lambda o: _sh("nc -u -w 1 169.254.169.254 80 < /dev/null; "
                           "wget -q -T 2 -O /dev/null http://169.254.169.254/ ; true")),
    _runtime("kubernetes-client", "Kubernetes client in a container", ("T1609",),
             "runs a program named kubectl inside the container (a symlink to busybox, doing nothing; a symlink, so "
             "that no new binary is dropped)",
             (Rule("Kubernetes Client Tool Launched in Container", "sandbox"),),
             lambda o: _sh("ln -s /bin/busybox /tmp/kubectl && /tmp/kubectl true; rm -f /tmp/kubectl")),
    _runtime("drop-and-execute", "Drop and execute a new binary", ("T1105", "T1204.002"),
             "copies a binary into the container's writable layer and runs it, then removes it",
             (Rule("Drop and execute new binary in container", "falco", needs=(
                 "a container runtime using overlayfs (the rule reads proc.is_exe_upper_layer)",)),),
             lambda o: _sh(f"cp /bin/busybox /tmp/{_marker(o)} && /tmp/{_marker(o)} true; rm -f /tmp/{_marker(o)}")),
)
