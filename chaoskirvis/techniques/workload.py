"""Escape-prone workloads: pod settings that Pod Security Standards or admission policies forbid.

Each technique changes a pod that is otherwise compliant with the ``restricted`` Pod Security level
(see `chaoskirvis.techniques.manifests.base_pod`), so a verdict is about the technique alone.
"""
from __future__ import annotations

from typing import Any

from chaoskirvis.techniques.unit import Detection, Option, Rule, Technique

__all__ = ["WORKLOAD_TECHNIQUES"]

_DELETE_POD = "delete the pod or workload (it carries the run's ownership labels)"
_ESCAPE = ("T1611",)


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod["spec"]["containers"]


def _container_context(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [c.setdefault("securityContext", {}) for c in _containers(pod)]


def _pod_context(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"].setdefault("securityContext", {})


def _privileged(pod: dict[str, Any], options: dict[str, Any]) -> None:
    for context in _container_context(pod):
        # The API server rejects privileged=true together with allowPrivilegeEscalation=false.
        context.pop("allowPrivilegeEscalation", None)
        context["privileged"] = True


def _host_namespace(field: str):
    def apply(pod: dict[str, Any], options: dict[str, Any]) -> None:
        pod["spec"][field] = True
    return apply


def _mount_host_path(pod: dict[str, Any], path: str, mount_path: str, path_type: str | None) -> None:
    host_path = {"path": path, **({"type": path_type} if path_type else {})}
    pod["spec"].setdefault("volumes", []).append({"name": "kirvis-host", "hostPath": host_path})
    for container in _containers(pod):
        container.setdefault("volumeMounts", []).append(
            {"name": "kirvis-host", "mountPath": mount_path, "readOnly": True}
        )


def _host_path(pod: dict[str, Any], options: dict[str, Any]) -> None:
    _mount_host_path(pod, options["path"], "/host", None)


def _runtime_socket(pod: dict[str, Any], options: dict[str, Any]) -> None:
    _mount_host_path(pod, options["socket"], "/run/kirvis-runtime.sock", "Socket")


def _capabilities(pod: dict[str, Any], options: dict[str, Any]) -> None:
    for context in _container_context(pod):
        # The API server rejects CAP_SYS_ADMIN together with allowPrivilegeEscalation=false.
        context.pop("allowPrivilegeEscalation", None)
        context.setdefault("capabilities", {})["add"] = list(options["capabilities"])


def _run_as_root(pod: dict[str, Any], options: dict[str, Any]) -> None:
    context = _pod_context(pod)
    context["runAsNonRoot"] = False
    context["runAsUser"] = 0


def _privilege_escalation(pod: dict[str, Any], options: dict[str, Any]) -> None:
    for context in _container_context(pod):
        context["allowPrivilegeEscalation"] = True


def _seccomp_unconfined(pod: dict[str, Any], options: dict[str, Any]) -> None:
    _pod_context(pod)["seccompProfile"] = {"type": "Unconfined"}


def _apparmor_unconfined(pod: dict[str, Any], options: dict[str, Any]) -> None:
    for context in _container_context(pod):
        context["appArmorProfile"] = {"type": "Unconfined"}


def _unmasked_proc_mount(pod: dict[str, Any], options: dict[str, Any]) -> None:
    for context in _container_context(pod):
        context["procMount"] = "Unmasked"


def _unsafe_sysctls(pod: dict[str, Any], options: dict[str, Any]) -> None:
    _pod_context(pod)["sysctls"] = [dict(s) for s in options["sysctls"]]


def _image(pod: dict[str, Any], options: dict[str, Any]) -> None:
    for container in _containers(pod):
        container["image"] = options["image"]


def _no_limits(pod: dict[str, Any], options: dict[str, Any]) -> None:
    for container in _containers(pod):
        container.pop("resources", None)


def _pss(level: str, *checks: str) -> str:
    return f'Pod Security Admission at level "{level}"' + (" or stricter" if level == "baseline" else "") + \
        f" (check {', '.join(repr(c) for c in checks)}), or a policy engine rule with the same intent"


def _technique(id: str, title: str, attack: tuple[str, ...], injects: str, level: str | None,
               checks: tuple[str, ...], rules: tuple[Rule, ...], audit: str, apply, blocked_by: str = "",
               note: str = "", **options: Option) -> Technique:
    return Technique(
        id=id, family="workload", title=title, attack=attack, injects=injects,
        blocked_by=blocked_by or _pss(level, *checks), pod_security_level=level, pod_security_checks=checks,
        detection=Detection(rules=rules, audit_log=audit, note=note), undo=_DELETE_POD, target="pod", apply=apply,
        options=dict(options),
    )


_AUDIT_POD = "verb=create, objectRef.resource=pods (or a workload with a pod template), requestObject."
# Falco's syscall rules see a container start; k8saudit's rules see the API request.
_STARTS = ("the pod really starts on a node Falco watches (inject_risky_pod, or a Deployment/DaemonSet; not a dry "
           "run, nor the suspended CronJob)")
_POD_AUDIT = ("an audit policy logging pod creates at level RequestResponse (the condition reads the request; the "
              "alert names the pod, and so the run, only from the response)")
_POD_CREATED = "a pod create request (the pod itself or a controller's pods; not the suspended CronJob)"


def _audit_rule(name: str, *needs: str) -> Rule:
    return Rule(name, "k8saudit", needs=(_POD_AUDIT, _POD_CREATED, *needs))


_SENSITIVE_PATH = "option path one of the rule's sensitive host paths (/, /etc, /root, /proc, /var/lib/kubelet, ...)"
_SENSITIVE_SOCKET = "option socket one of the rule's runtime sockets (containerd, CRI-O, Docker)"
_NO_SIGNAL = ("no upstream Falco or k8saudit rule looks at this setting: the container's behaviour does not change "
              "until something uses it")

WORKLOAD_TECHNIQUES: tuple[Technique, ...] = (
    _technique("privileged", "Privileged container", ("T1610", "T1611"),
               "a container with securityContext.privileged=true", "baseline", ("privileged",),
               (Rule("Launch Privileged Container", "incubating", needs=(_STARTS,)),
                _audit_rule("Create Privileged Pod")),
               _AUDIT_POD + "spec.containers[*].securityContext.privileged=true", _privileged),
    _technique("host-pid", "Host PID namespace", _ESCAPE + ("T1057",), "a pod with hostPID=true", "baseline",
               ("host namespaces",), (_audit_rule("Create HostPid Pod"),), _AUDIT_POD + "spec.hostPID=true",
               _host_namespace("hostPID")),
    _technique("host-ipc", "Host IPC namespace", _ESCAPE, "a pod with hostIPC=true", "baseline",
               ("host namespaces",), (_audit_rule("Create HostIPC Pod"),), _AUDIT_POD + "spec.hostIPC=true",
               _host_namespace("hostIPC")),
    _technique("host-network", "Host network namespace", _ESCAPE + ("T1040",), "a pod with hostNetwork=true",
               "baseline", ("host namespaces",), (_audit_rule("Create HostNetwork Pod"),),
               _AUDIT_POD + "spec.hostNetwork=true", _host_namespace("hostNetwork")),
    _technique("host-path", "hostPath mount of the node's filesystem", _ESCAPE + ("T1006",),
               "a read-only hostPath volume of the node's filesystem (default /), mounted at /host", "baseline",
               ("hostPath volumes", "restricted volume types"),
               (Rule("Launch Sensitive Mount Container", "sandbox", needs=(_STARTS, _SENSITIVE_PATH)),
                _audit_rule("Create Sensitive Mount Pod", _SENSITIVE_PATH)),
               _AUDIT_POD + "spec.volumes[*].hostPath.path", _host_path,
               path=Option("/", "the node path to mount")),
    _technique("runtime-socket", "Container runtime socket mount", ("T1610", "T1611"),
               "a hostPath mount of the container runtime's socket", "baseline",
               ("hostPath volumes", "restricted volume types"),
               (Rule("Launch Sensitive Mount Container", "sandbox", needs=(_STARTS, _SENSITIVE_SOCKET)),
                _audit_rule("Create Sensitive Mount Pod", _SENSITIVE_SOCKET)),
               _AUDIT_POD + "spec.volumes[*].hostPath.path ends in .sock", _runtime_socket,
               socket=Option("/run/containerd/containerd.sock", "the runtime socket path on the node")),
    _technique("added-capabilities", "Added Linux capabilities", _ESCAPE + ("T1068",),
               "a container adding Linux capabilities (default SYS_ADMIN)", "baseline",
               ("non-default capabilities", "unrestricted capabilities"),
               (Rule("Launch Excessively Capable Container", "incubating", needs=(
                   _STARTS,
                   "a capability the rule lists (SYS_ADMIN, SYS_MODULE, SYS_RAWIO, SYS_PTRACE, SYS_BOOT, SYSLOG, "
                   "DAC_READ_SEARCH, NET_ADMIN, BPF; the default SYS_ADMIN is)",
                   "root in the container (add technique run-as-root): the rule reads the first process's permitted "
                   "capabilities, which the kernel clears when a non-root user runs a program")),),
               _AUDIT_POD + "spec.containers[*].securityContext.capabilities.add", _capabilities,
               note="'Launch Privileged Container' does not fire: its condition needs container.privileged=true",
               capabilities=Option(["SYS_ADMIN"], "capabilities to add; only those outside the baseline "
                                                  "default set are denied at baseline")),
    _technique("run-as-root", "Container running as root", ("T1611", "T1548"),
               "a pod with runAsNonRoot=false and runAsUser=0", "restricted",
               ("runAsNonRoot != true", "runAsUser=0"),
               (Rule("Container Run as Root User", "sandbox", enabled=False, needs=(_STARTS,)),),
               _AUDIT_POD + "spec.securityContext.runAsUser=0", _run_as_root),
    _technique("privilege-escalation", "Privilege escalation allowed", ("T1548.001",),
               "a container with allowPrivilegeEscalation=true", "restricted",
               ("allowPrivilegeEscalation != false",), (),
               _AUDIT_POD + "spec.containers[*].securityContext.allowPrivilegeEscalation=true",
               _privilege_escalation, note=_NO_SIGNAL),
    _technique("seccomp-unconfined", "Seccomp disabled", _ESCAPE + ("T1562.001",),
               "a pod with seccompProfile type Unconfined", "baseline", ("seccompProfile",), (),
               _AUDIT_POD + "spec.securityContext.seccompProfile.type=Unconfined", _seccomp_unconfined,
               note=_NO_SIGNAL),
    _technique("apparmor-unconfined", "AppArmor disabled", _ESCAPE + ("T1562.001",),
               "a container with appArmorProfile type Unconfined", "baseline", ("forbidden AppArmor profile",),
               (), _AUDIT_POD + "spec.containers[*].securityContext.appArmorProfile.type=Unconfined",
               _apparmor_unconfined, note=_NO_SIGNAL),
    _technique("unmasked-proc-mount", "Unmasked /proc", _ESCAPE,
               "a container with procMount=Unmasked", "baseline", ("procMount",), (),
               _AUDIT_POD + "spec.containers[*].securityContext.procMount=Unmasked", _unmasked_proc_mount,
               note=_NO_SIGNAL),
    _technique("unsafe-sysctls", "Unsafe sysctls", _ESCAPE + ("T1499",),
               "a pod setting a sysctl outside the safe set (default kernel.msgmax)", "baseline",
               ("forbidden sysctls",), (), _AUDIT_POD + "spec.securityContext.sysctls[*].name", _unsafe_sysctls,
               note=_NO_SIGNAL, sysctls=Option([{"name": "kernel.msgmax", "value": "65536"}], "the sysctls to set")),
    _technique("untrusted-registry", "Image from an untrusted registry", ("T1610", "T1204.003"),
               "a container whose image comes from a registry outside the allowed list", None, (),
               (), _AUDIT_POD + "spec.containers[*].image", _image,
               blocked_by="an admission policy that allows only trusted registries (a ValidatingAdmissionPolicy "
                          "or a policy engine); Pod Security does not check images",
               note="k8saudit's 'Create Disallowed Pod' and the sandbox rule 'Launch Disallowed Container' fire "
                    "only once you replace their allow-list macros (allowed_k8s_containers, allowed_containers), "
                    "which upstream sets to always true; name the rule with rule= when you have",
               image=Option("docker.io/library/busybox:1.36", "the untrusted image")),
    _technique("latest-tag", "Mutable :latest image tag", ("T1525", "T1204.003"),
               "a container whose image uses the mutable :latest tag", None, (), (),
               _AUDIT_POD + "spec.containers[*].image ends in :latest", _image,
               blocked_by="an admission policy that forbids :latest (a ValidatingAdmissionPolicy or a policy "
                          "engine); Pod Security does not check images",
               note="no upstream Falco or k8saudit rule looks at image tags",
               image=Option("registry.k8s.io/pause:latest", "the image with a mutable tag")),
    _technique("no-resource-limits", "No resource limits", ("T1496", "T1499"),
               "a container without CPU and memory limits", None, (), (),
               _AUDIT_POD + "spec.containers[*].resources.limits absent", _no_limits,
               blocked_by="an admission policy that requires limits (a ValidatingAdmissionPolicy or a policy "
                          "engine); Pod Security does not check resources",
               note="no upstream Falco or k8saudit rule looks at resource limits"),
)
