"""Escape-prone workloads: pod settings that Pod Security Standards or admission policies forbid.

Each technique changes a pod that is otherwise compliant with the ``restricted`` Pod Security level
(see `chaoskirvis.techniques.manifests.base_pod`), so a verdict is about the technique alone.
"""
from __future__ import annotations

from typing import Any

from chaoskirvis.techniques.unit import Detection, Option, Technique

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
               checks: tuple[str, ...], falco: tuple[str, ...], audit: str, apply, blocked_by: str = "",
               **options: Option) -> Technique:
    return Technique(
        id=id, family="workload", title=title, attack=attack, injects=injects,
        blocked_by=blocked_by or _pss(level, *checks), pod_security_level=level, pod_security_checks=checks,
        detection=Detection(falco_rules=falco, audit_log=audit), undo=_DELETE_POD, target="pod", apply=apply,
        options=dict(options),
    )


_AUDIT_POD = "verb=create, objectRef.resource=pods (or a workload with a pod template), requestObject."

WORKLOAD_TECHNIQUES: tuple[Technique, ...] = (
    _technique("privileged", "Privileged container", ("T1610", "T1611"),
               "a container with securityContext.privileged=true", "baseline", ("privileged",),
               ("Launch Privileged Container",), _AUDIT_POD + "spec.containers[*].securityContext.privileged=true",
               _privileged),
    _technique("host-pid", "Host PID namespace", _ESCAPE + ("T1057",), "a pod with hostPID=true", "baseline",
               ("host namespaces",), (), _AUDIT_POD + "spec.hostPID=true",
               _host_namespace("hostPID")),
    _technique("host-ipc", "Host IPC namespace", _ESCAPE, "a pod with hostIPC=true", "baseline",
               ("host namespaces",), (), _AUDIT_POD + "spec.hostIPC=true", _host_namespace("hostIPC")),
    _technique("host-network", "Host network namespace", _ESCAPE + ("T1040",), "a pod with hostNetwork=true",
               "baseline", ("host namespaces",), (),
               _AUDIT_POD + "spec.hostNetwork=true", _host_namespace("hostNetwork")),
    _technique("host-path", "hostPath mount of the node's filesystem", _ESCAPE + ("T1006",),
               "a read-only hostPath volume of the node's filesystem (default /), mounted at /host", "baseline",
               ("hostPath volumes", "restricted volume types"), ("Launch Sensitive Mount Container",),
               _AUDIT_POD + "spec.volumes[*].hostPath.path", _host_path,
               path=Option("/", "the node path to mount")),
    _technique("runtime-socket", "Container runtime socket mount", ("T1610", "T1611"),
               "a hostPath mount of the container runtime's socket", "baseline",
               ("hostPath volumes", "restricted volume types"),
               ("Launch Sensitive Mount Container",), _AUDIT_POD + "spec.volumes[*].hostPath.path ends in .sock",
               _runtime_socket,
               socket=Option("/run/containerd/containerd.sock", "the runtime socket path on the node")),
    _technique("added-capabilities", "Added Linux capabilities", _ESCAPE + ("T1068",),
               "a container adding Linux capabilities (default SYS_ADMIN)", "baseline",
               ("non-default capabilities", "unrestricted capabilities"),
               ("Launch Privileged Container",), _AUDIT_POD + "spec.containers[*].securityContext.capabilities.add",
               _capabilities,
               capabilities=Option(["SYS_ADMIN"], "capabilities to add; only those outside the baseline "
                                                  "default set are denied at baseline")),
    _technique("run-as-root", "Container running as root", ("T1611", "T1548"),
               "a pod with runAsNonRoot=false and runAsUser=0", "restricted",
               ("runAsNonRoot != true", "runAsUser=0"), ("Container Run as Root User",),
               _AUDIT_POD + "spec.securityContext.runAsUser=0", _run_as_root),
    _technique("privilege-escalation", "Privilege escalation allowed", ("T1548.001",),
               "a container with allowPrivilegeEscalation=true", "restricted",
               ("allowPrivilegeEscalation != false",), (),
               _AUDIT_POD + "spec.containers[*].securityContext.allowPrivilegeEscalation=true",
               _privilege_escalation),
    _technique("seccomp-unconfined", "Seccomp disabled", _ESCAPE + ("T1562.001",),
               "a pod with seccompProfile type Unconfined", "baseline", ("seccompProfile",), (),
               _AUDIT_POD + "spec.securityContext.seccompProfile.type=Unconfined", _seccomp_unconfined),
    _technique("apparmor-unconfined", "AppArmor disabled", _ESCAPE + ("T1562.001",),
               "a container with appArmorProfile type Unconfined", "baseline", ("forbidden AppArmor profile",),
               (), _AUDIT_POD + "spec.containers[*].securityContext.appArmorProfile.type=Unconfined",
               _apparmor_unconfined),
    _technique("unmasked-proc-mount", "Unmasked /proc", _ESCAPE,
               "a container with procMount=Unmasked", "baseline", ("procMount",), (),
               _AUDIT_POD + "spec.containers[*].securityContext.procMount=Unmasked", _unmasked_proc_mount),
    _technique("unsafe-sysctls", "Unsafe sysctls", _ESCAPE + ("T1499",),
               "a pod setting a sysctl outside the safe set (default kernel.msgmax)", "baseline",
               ("forbidden sysctls",), (), _AUDIT_POD + "spec.securityContext.sysctls[*].name", _unsafe_sysctls,
               sysctls=Option([{"name": "kernel.msgmax", "value": "65536"}], "the sysctls to set")),
    _technique("untrusted-registry", "Image from an untrusted registry", ("T1610", "T1204.003"),
               "a container whose image comes from a registry outside the allowed list", None, (),
               (), _AUDIT_POD + "spec.containers[*].image", _image,
               blocked_by="an admission policy that allows only trusted registries (a ValidatingAdmissionPolicy "
                          "or a policy engine); Pod Security does not check images",
               image=Option("docker.io/library/busybox:1.36", "the untrusted image")),
    _technique("latest-tag", "Mutable :latest image tag", ("T1525", "T1204.003"),
               "a container whose image uses the mutable :latest tag", None, (), (),
               _AUDIT_POD + "spec.containers[*].image ends in :latest", _image,
               blocked_by="an admission policy that forbids :latest (a ValidatingAdmissionPolicy or a policy "
                          "engine); Pod Security does not check images",
               image=Option("registry.k8s.io/pause:latest", "the image with a mutable tag")),
    _technique("no-resource-limits", "No resource limits", ("T1496", "T1499"),
               "a container without CPU and memory limits", None, (), (),
               _AUDIT_POD + "spec.containers[*].resources.limits absent", _no_limits,
               blocked_by="an admission policy that requires limits (a ValidatingAdmissionPolicy or a policy "
                          "engine); Pod Security does not check resources"),
)
