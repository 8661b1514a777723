"""Pod Security Standards, judged the way Kubernetes Pod Security Admission judges them.

A port of the policy checks in kubernetes/pod-security-admission (``policy/check_*.go``) at
their newest versions, i.e. what a namespace labelled ``pod-security.kubernetes.io/enforce:
LEVEL`` with the default ``latest`` version enforces. Check names, detail messages and their
order are upstream's, word for word:

* a check's result names it by its ``ForbiddenReason`` and explains it by its
  ``ForbiddenDetail``;
* the registry (``policy/registry.go``) runs the baseline checks sorted by check ID, then, at
  restricted, the restricted checks sorted by ID; at restricted it drops the baseline checks
  that a restricted check overrides;
* ``policy.AggregateCheckResults`` keeps the failed results in that order and
  ``ForbiddenDetail()`` joins them as ``CHECK (DETAIL), CHECK (DETAIL)``.

Pods are plain dicts with the Kubernetes API's camelCase keys; any field may be missing or
null, and a missing or null string reads as Go's empty string. The API server defaults two
things before admission sees a pod, and both change what the checks find, so they are
applied here too: a volume without a source becomes an ``emptyDir``, and with
``hostNetwork: true`` a container port without a ``hostPort`` gets its ``containerPort``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

__all__ = ["LEVELS", "Violation", "check_pod", "describe", "forbidden_message", "warning_message"]

LEVELS = ("privileged", "baseline", "restricted")

Pod = Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    """One failed Pod Security check, as upstream's ``CheckResult`` reports it."""

    check: str
    """Upstream's ``ForbiddenReason``, e.g. ``"privileged"``."""
    detail: str
    """Upstream's ``ForbiddenDetail``, e.g.
    ``'container "c" must not set securityContext.privileged=true'``."""


Check = Callable[[Pod, Pod], Violation | None]
"""A check reads a pod's metadata and spec and returns its violation, if any."""


def check_pod(metadata: dict, spec: dict, level: str) -> list[Violation]:
    """Violations of `level` by a pod with this metadata (annotations matter for AppArmor) and PodSpec.

    In upstream's order; [] when allowed. Raises ValueError for an unknown level.
    """
    checks = _CHECKS_BY_LEVEL[_parse_level(level)]
    metadata, spec = metadata or {}, spec or {}
    return [violation for check in checks if (violation := check(metadata, spec))]


def describe(violations: list[Violation]) -> str:
    """'CHECK (DETAIL), CHECK (DETAIL)' exactly as upstream joins them in its messages."""
    return ", ".join(_describe_one(violation) for violation in violations)


def forbidden_message(resource: str, name: str, level: str, violations: list[Violation]) -> str:
    """The enforce denial message.

    E.g. 'pods "NAME" is forbidden: violates PodSecurity "baseline:latest": privileged (...)'.
    """
    reason = f"violates PodSecurity {_policy(level)}: {describe(violations)}"
    # apimachinery's errors.NewForbidden words the message by what it knows of the object.
    if not resource:
        return f"forbidden: {reason}"
    if not name:
        return f"{resource} is forbidden: {reason}"
    return f"{resource} {_go_quote(name)} is forbidden: {reason}"


def warning_message(level: str, violations: list[Violation]) -> str:
    """The text of the Warning header PSA sends for warn mode.

    E.g. 'would violate PodSecurity "restricted:latest": ...'.
    """
    return f"would violate PodSecurity {_policy(level)}: {describe(violations)}"


# --- levels and messages ------------------------------------------------------------------

_UNKNOWN_FORBIDDEN_REASON = "unknown forbidden reason"


def _parse_level(level: str) -> str:
    """`level` if upstream's ``api.ParseLevel`` accepts it (exact, case-sensitive names)."""
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security level {level!r}: must be one of {', '.join(LEVELS)}")
    return level


def _policy(level: str) -> str:
    """The quoted ``LEVEL:latest`` that upstream's messages name the policy by."""
    return _go_quote(f"{_parse_level(level)}:latest")


def _describe_one(violation: Violation) -> str:
    """``CHECK (DETAIL)``, or just ``CHECK`` without a detail, as ``ForbiddenDetail()`` writes it."""
    check = violation.check or _UNKNOWN_FORBIDDEN_REASON
    return f"{check} ({violation.detail})" if violation.detail else check


_GO_ESCAPES = {
    "\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v",
    "\\": "\\\\", '"': '\\"',
}


def _go_quote(text: str) -> str:
    """`text` in double quotes, escaped as Go's ``%q`` (``strconv.Quote``) escapes it."""
    return '"' + "".join(_go_escape(char) for char in text) + '"'


def _go_escape(char: str) -> str:
    """One character as ``strconv.Quote`` writes it."""
    if char in _GO_ESCAPES:
        return _GO_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _join_quote(items: Iterable[str]) -> str:
    """Upstream's ``joinQuote``: ``"a", "b"`` (no escaping)."""
    items = list(items)
    return '"' + '", "'.join(items) + '"' if items else ""


def _pluralize(singular: str, plural: str, count: int) -> str:
    """Upstream's ``pluralize``."""
    return singular if count == 1 else plural


def _containers_phrase(names: list[str]) -> str:
    """``container "a"`` or ``containers "a", "b"``."""
    return f"{_pluralize('container', 'containers', len(names))} {_join_quote(names)}"


# --- reading dicts the way Go reads the decoded object --------------------------------------

def _object(parent: Pod | None, key: str) -> Pod | None:
    """The nested object at `key`, or None where Go would see a nil pointer."""
    value = parent.get(key) if parent else None
    return value if isinstance(value, Mapping) else None


def _items(parent: Pod | None, key: str) -> list[Any]:
    """The list at `key`; empty where Go would see a nil slice."""
    value = parent.get(key) if parent else None
    return value if isinstance(value, list) else []


def _objects(parent: Pod | None, key: str) -> list[Pod]:
    """The list of objects at `key`; a null entry reads as Go's zero value, an empty object."""
    return [item if isinstance(item, Mapping) else {} for item in _items(parent, key)]


def _strings(parent: Pod | None, key: str) -> list[str]:
    """The list of strings at `key`; a null entry reads as Go's empty string."""
    return [item if isinstance(item, str) else "" for item in _items(parent, key)]


def _text(parent: Pod | None, key: str) -> str:
    """The string at `key`; Go's empty string when missing or null."""
    value = parent.get(key) if parent else None
    return value if isinstance(value, str) else ""


def _int(parent: Pod | None, key: str) -> int | None:
    """The integer at `key`, or None when missing or null."""
    value = parent.get(key) if parent else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_true(parent: Pod | None, key: str) -> bool:
    """Whether the boolean at `key` is set to true."""
    return bool(parent) and parent.get(key) is True


def _is_false(parent: Pod | None, key: str) -> bool:
    """Whether the boolean at `key` is set to false (not merely unset)."""
    return bool(parent) and parent.get(key) is False


def _containers(spec: Pod) -> list[Pod]:
    """Init, regular and ephemeral containers, in the order upstream's ``visitContainers`` visits them."""
    return [
        container
        for key in ("initContainers", "containers", "ephemeralContainers")
        for container in _objects(spec, key)
    ]


def _volumes(spec: Pod) -> list[Pod]:
    """The pod's volumes."""
    return _objects(spec, "volumes")


def _name(container: Pod) -> str:
    """A container's (or volume's) name."""
    return _text(container, "name")


def _security_context(obj: Pod) -> Pod | None:
    """A pod's or container's securityContext."""
    return _object(obj, "securityContext")


def _in_user_namespace(spec: Pod) -> bool:
    """Upstream's ``relaxPolicyForUserNamespacePod``: ``hostUsers`` explicitly false."""
    return _is_false(spec, "hostUsers")


def _is_windows(spec: Pod) -> bool:
    """Whether ``spec.os.name`` is windows, which exempts a pod from some restricted checks."""
    return _text(_object(spec, "os"), "name") == "windows"


# --- baseline checks -------------------------------------------------------------------------

_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_ALLOWED_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _allowed_apparmor_annotation(value: str) -> bool:
    """Upstream's ``allowedAnnotationValue``: empty, ``runtime/default`` or ``localhost/*``."""
    return value in ("", "runtime/default") or value.startswith("localhost/")


def _bad_apparmor_type(obj: Pod) -> str | None:
    """The forbidden AppArmor profile type a pod or container sets, if any."""
    profile = _object(_security_context(obj), "appArmorProfile")
    if profile is None or _text(profile, "type") in _ALLOWED_APPARMOR_TYPES:
        return None
    return _text(profile, "type")


def _forbidden_apparmor_annotations(metadata: Pod) -> list[str]:
    """``KEY="VALUE"`` for each forbidden AppArmor annotation, sorted."""
    annotations = _object(metadata, "annotations") or {}
    forbidden = []
    for key in annotations:
        value = _text(annotations, key)
        if key.startswith(_APPARMOR_ANNOTATION_PREFIX) and not _allowed_apparmor_annotation(value):
            forbidden.append(f"{key}={_go_quote(value)}")
    return sorted(forbidden)


def _app_armor_profile(metadata: Pod, spec: Pod) -> Violation | None:
    """``appArmorProfile``: only RuntimeDefault/Localhost profiles, by field or annotation."""
    setters, bad_types = [], set()
    if (bad_type := _bad_apparmor_type(spec)) is not None:
        setters.append("pod")
        bad_types.add(bad_type)
    bad_containers = []
    for container in _containers(spec):
        if (bad_type := _bad_apparmor_type(container)) is not None:
            bad_containers.append(_name(container))
            bad_types.add(bad_type)
    if bad_containers:
        setters.append(_containers_phrase(bad_containers))
    bad_values = sorted(bad_types)
    if annotations := _forbidden_apparmor_annotations(metadata):
        bad_values += annotations
        setters.append(_pluralize("annotation", "annotations", len(annotations)))
    if not setters:
        return None
    return Violation(
        _pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(bad_values)),
        f"{' and '.join(setters)} must not set AppArmor profile type to {_join_quote(bad_values)}",
    )


_BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})


def _capabilities_baseline(metadata: Pod, spec: Pod) -> Violation | None:
    """``capabilities_baseline``: only the default capabilities may be added."""
    bad_containers, bad_capabilities = [], set()
    for container in _containers(spec):
        added = _strings(_object(_security_context(container), "capabilities"), "add")
        non_default = {capability for capability in added if capability not in _BASELINE_CAPABILITIES}
        if non_default:
            bad_containers.append(_name(container))
            bad_capabilities |= non_default
    if not bad_containers:
        return None
    return Violation(
        "non-default capabilities",
        f"{_containers_phrase(bad_containers)} must not include "
        f"{_join_quote(sorted(bad_capabilities))} in securityContext.capabilities.add",
    )


def _host_namespaces(metadata: Pod, spec: Pod) -> Violation | None:
    """``hostNamespaces``: no hostNetwork, hostPID or hostIPC."""
    shared = [f"{key}=true" for key in ("hostNetwork", "hostPID", "hostIPC") if _is_true(spec, key)]
    return Violation("host namespaces", ", ".join(shared)) if shared else None


def _host_path_volumes(metadata: Pod, spec: Pod) -> Violation | None:
    """``hostPathVolumes``: no hostPath volumes."""
    names = [_name(volume) for volume in _volumes(spec) if _object(volume, "hostPath") is not None]
    if not names:
        return None
    volumes = _pluralize("volume", "volumes", len(names))
    return Violation("hostPath volumes", f"{volumes} {_join_quote(names)}")


def _host_port(port: Pod, host_network: bool) -> int:
    """A container port's hostPort as the API server defaults it: with hostNetwork, the containerPort."""
    host_port = _int(port, "hostPort") or 0
    if host_port == 0 and host_network:
        return _int(port, "containerPort") or 0
    return host_port


def _host_ports_of(container: Pod, host_network: bool) -> set[str]:
    """The non-zero host ports a container asks for, as strings."""
    ports = (_host_port(port, host_network) for port in _objects(container, "ports"))
    return {str(port) for port in ports if port != 0}


def _host_ports(metadata: Pod, spec: Pod) -> Violation | None:
    """``hostPorts``: no host ports."""
    bad_containers, bad_ports = [], set()
    for container in _containers(spec):
        if ports := _host_ports_of(container, _is_true(spec, "hostNetwork")):
            bad_containers.append(_name(container))
            bad_ports |= ports
    if not bad_containers:
        return None
    return Violation(
        "hostPort",
        f"{_containers_phrase(bad_containers)} {_pluralize('uses', 'use', len(bad_containers))} "
        f"{_pluralize('hostPort', 'hostPorts', len(bad_ports))} {', '.join(sorted(bad_ports))}",
    )


def _handler_hosts(handler: Pod | None) -> set[str]:
    """The hosts a probe or lifecycle handler's httpGet and tcpSocket actions name."""
    hosts = {_text(_object(handler, action), "host") for action in ("httpGet", "tcpSocket")}
    return hosts - {""}


def _probe_and_lifecycle_hosts(container: Pod) -> set[str]:
    """Every host a container's probes and lifecycle hooks name."""
    lifecycle = _object(container, "lifecycle")
    handlers = [_object(container, probe) for probe in ("livenessProbe", "readinessProbe", "startupProbe")]
    handlers += [_object(lifecycle, hook) for hook in ("postStart", "preStop")]
    return set().union(*(_handler_hosts(handler) for handler in handlers))


def _host_probes_and_host_lifecycle(metadata: Pod, spec: Pod) -> Violation | None:
    """``hostProbesAndHostLifecycle``: probes and lifecycle hooks must not set a host."""
    bad_containers, bad_hosts = set(), set()
    for container in _containers(spec):
        if hosts := _probe_and_lifecycle_hosts(container):
            bad_containers.add(_name(container))
            bad_hosts |= hosts
    if not bad_containers:
        return None
    return Violation(
        "probe or lifecycle host",
        f"{_containers_phrase(sorted(bad_containers))} {_pluralize('uses', 'use', len(bad_containers))} "
        f"{_pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(bad_hosts))} "
        f"{_join_quote(sorted(bad_hosts))}",
    )


def _privileged(metadata: Pod, spec: Pod) -> Violation | None:
    """``privileged``: no privileged containers."""
    names = [_name(c) for c in _containers(spec) if _is_true(_security_context(c), "privileged")]
    if not names:
        return None
    return Violation(
        "privileged", f"{_containers_phrase(names)} must not set securityContext.privileged=true"
    )


def _proc_mount_unconditional(metadata: Pod, spec: Pod) -> Violation | None:
    """Upstream's ``procMount_1_0``: only the Default /proc mount type."""
    bad_containers, bad_types = [], set()
    for container in _containers(spec):
        context = _security_context(container)
        if context is not None and context.get("procMount") is not None:
            proc_mount = _text(context, "procMount")
            if proc_mount != "Default":
                bad_containers.append(_name(container))
                bad_types.add(proc_mount)
    if not bad_containers:
        return None
    return Violation(
        "procMount",
        f"{_containers_phrase(bad_containers)} must not set securityContext.procMount"
        f" to {_join_quote(sorted(bad_types))}",
    )


def _proc_mount_baseline(metadata: Pod, spec: Pod) -> Violation | None:
    """``procMount``: Default /proc mount type, unless the pod runs in a user namespace."""
    return None if _in_user_namespace(spec) else _proc_mount_unconditional(metadata, spec)


_ALLOWED_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)


def _se_linux_options_of(obj: Pod) -> Pod | None:
    """A pod's or container's seLinuxOptions."""
    return _object(_security_context(obj), "seLinuxOptions")


def _forbidden_se_linux_options(options: Pod | None) -> bool:
    """Whether seLinuxOptions set a non-container type, a user or a role."""
    if options is None:
        return False
    return _text(options, "type") not in _ALLOWED_SELINUX_TYPES or any(
        _text(options, field) for field in ("user", "role")
    )


def _se_linux_problems(all_options: list[Pod]) -> list[str]:
    """What the given seLinuxOptions do wrong, in upstream's wording: types, then user, then role."""
    bad_types = sorted({_text(o, "type") for o in all_options} - _ALLOWED_SELINUX_TYPES)
    problems = []
    if bad_types:
        problems.append(f"{_pluralize('type', 'types', len(bad_types))} {_join_quote(bad_types)}")
    for field in ("user", "role"):
        if any(_text(options, field) for options in all_options):
            problems.append(f"{field} may not be set")
    return problems


def _se_linux_options(metadata: Pod, spec: Pod) -> Violation | None:
    """``seLinuxOptions``: only container SELinux types, and no user or role."""
    setters = ["pod"] if _forbidden_se_linux_options(_se_linux_options_of(spec)) else []
    containers = _containers(spec)
    bad_containers = [_name(c) for c in containers if _forbidden_se_linux_options(_se_linux_options_of(c))]
    if bad_containers:
        setters.append(_containers_phrase(bad_containers))
    if not setters:
        return None
    all_options = [o for o in map(_se_linux_options_of, [spec, *containers]) if o is not None]
    problems = _se_linux_problems(all_options)
    return Violation(
        "seLinuxOptions",
        f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(problems)}",
    )


_ALLOWED_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _seccomp_type(obj: Pod) -> str | None:
    """The seccomp profile type a pod or container sets, or None when it sets no profile."""
    profile = _object(_security_context(obj), "seccompProfile")
    return None if profile is None else _text(profile, "type")


def _forbidden_seccomp_type(obj: Pod) -> str | None:
    """The seccomp profile type a pod or container sets, if it is neither RuntimeDefault nor Localhost."""
    profile_type = _seccomp_type(obj)
    return None if profile_type is None or profile_type in _ALLOWED_SECCOMP_TYPES else profile_type


def _bad_seccomp_setters(spec: Pod) -> tuple[list[str], list[str]]:
    """Who explicitly sets a forbidden seccomp profile type (``pod``, ``containers "a"``), and the types."""
    setters, bad_types = [], set()
    if (pod_type := _forbidden_seccomp_type(spec)) is not None:
        setters.append("pod")
        bad_types.add(pod_type)
    bad_containers = []
    for container in _containers(spec):
        if (container_type := _forbidden_seccomp_type(container)) is not None:
            bad_containers.append(_name(container))
            bad_types.add(container_type)
    if bad_containers:
        setters.append(_containers_phrase(bad_containers))
    return setters, sorted(bad_types)


def _forbidden_seccomp_violation(setters: list[str], bad_types: list[str]) -> Violation:
    """The violation for explicitly forbidden seccomp profile types."""
    return Violation(
        "seccompProfile",
        f"{' and '.join(setters)} must not set securityContext.seccompProfile.type"
        f" to {_join_quote(bad_types)}",
    )


def _seccomp_profile_baseline(metadata: Pod, spec: Pod) -> Violation | None:
    """``seccompProfile_baseline``: a seccomp profile, when set, is RuntimeDefault or Localhost."""
    setters, bad_types = _bad_seccomp_setters(spec)
    return _forbidden_seccomp_violation(setters, bad_types) if setters else None


_SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
})


def _sysctls(metadata: Pod, spec: Pod) -> Violation | None:
    """``sysctls``: only the safe sysctls."""
    names = [_name(sysctl) for sysctl in _objects(_security_context(spec), "sysctls")]
    forbidden = [name for name in names if name not in _SAFE_SYSCTLS]
    return Violation("forbidden sysctls", ", ".join(forbidden)) if forbidden else None


def _sets_host_process(obj: Pod) -> bool:
    """Whether a pod or container sets windowsOptions.hostProcess=true."""
    return _is_true(_object(_security_context(obj), "windowsOptions"), "hostProcess")


def _windows_host_process(metadata: Pod, spec: Pod) -> Violation | None:
    """``windowsHostProcess``: no Windows HostProcess pods or containers."""
    setters = ["pod"] if _sets_host_process(spec) else []
    if bad_containers := [_name(c) for c in _containers(spec) if _sets_host_process(c)]:
        setters.append(_containers_phrase(bad_containers))
    if not setters:
        return None
    return Violation(
        "hostProcess",
        f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true",
    )


# --- restricted checks -----------------------------------------------------------------------

def _allow_privilege_escalation(metadata: Pod, spec: Pod) -> Violation | None:
    """``allowPrivilegeEscalation``: every container sets it to false (Windows pods exempt)."""
    if _is_windows(spec):
        return None
    names = [
        _name(container)
        for container in _containers(spec)
        if not _is_false(_security_context(container), "allowPrivilegeEscalation")
    ]
    if not names:
        return None
    return Violation(
        "allowPrivilegeEscalation != false",
        f"{_containers_phrase(names)} must set securityContext.allowPrivilegeEscalation=false",
    )


def _capabilities_restricted(metadata: Pod, spec: Pod) -> Violation | None:
    """``capabilities_restricted``: drop ALL, add at most NET_BIND_SERVICE (Windows pods exempt)."""
    if _is_windows(spec):
        return None
    missing_drop_all, adding_forbidden, forbidden_capabilities = [], [], set()
    for container in _containers(spec):
        capabilities = _object(_security_context(container), "capabilities")
        if "ALL" not in _strings(capabilities, "drop"):
            missing_drop_all.append(_name(container))
        added = set(_strings(capabilities, "add")) - {"NET_BIND_SERVICE"}
        if added:
            adding_forbidden.append(_name(container))
            forbidden_capabilities |= added
    details = []
    if missing_drop_all:
        details.append(
            f'{_containers_phrase(missing_drop_all)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding_forbidden:
        details.append(
            f"{_containers_phrase(adding_forbidden)} must not include "
            f"{_join_quote(sorted(forbidden_capabilities))} in securityContext.capabilities.add"
        )
    return Violation("unrestricted capabilities", "; ".join(details)) if details else None


_ALLOWED_RESTRICTED_VOLUME_SOURCES = (
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected",
    "secret",
)
# Reported by the first one a volume sets, in upstream's order.
_RESTRICTED_VOLUME_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd",
    "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
)


def _restricted_volume_type(volume: Pod) -> str | None:
    """The restricted source type a volume uses, or None when its source is allowed."""
    if any(_object(volume, source) is not None for source in _ALLOWED_RESTRICTED_VOLUME_SOURCES):
        return None
    # A volume without any source is an emptyDir once the API server has defaulted it.
    used = (source for source in _RESTRICTED_VOLUME_SOURCES if _object(volume, source) is not None)
    return next(used, None)


def _restricted_volumes(metadata: Pod, spec: Pod) -> Violation | None:
    """``restrictedVolumes``: only core volume types and PVC-backed ones."""
    bad_volumes, bad_types = [], set()
    for volume in _volumes(spec):
        if (volume_type := _restricted_volume_type(volume)) is not None:
            bad_volumes.append(_name(volume))
            bad_types.add(volume_type)
    if not bad_volumes:
        return None
    return Violation(
        "restricted volume types",
        f"{_pluralize('volume', 'volumes', len(bad_volumes))} {_join_quote(bad_volumes)} "
        f"{_pluralize('uses', 'use', len(bad_volumes))} "
        f"{_pluralize('restricted volume type', 'restricted volume types', len(bad_types))} "
        f"{_join_quote(sorted(bad_types))}",
    )


def _run_as_non_root(metadata: Pod, spec: Pod) -> Violation | None:
    """``runAsNonRoot``: pod or every container sets runAsNonRoot=true (user-namespaced pods exempt)."""
    if _in_user_namespace(spec):
        return None
    pod_context = _security_context(spec)
    setters = ["pod"] if _is_false(pod_context, "runAsNonRoot") else []
    pod_non_root = _is_true(pod_context, "runAsNonRoot")
    explicitly_bad, implicitly_bad = [], []
    for container in _containers(spec):
        context = _security_context(container)
        if context is not None and context.get("runAsNonRoot") is not None:
            if _is_false(context, "runAsNonRoot"):
                explicitly_bad.append(_name(container))
        elif not pod_non_root:
            implicitly_bad.append(_name(container))
    if explicitly_bad:
        setters.append(_containers_phrase(explicitly_bad))
    if setters:
        return Violation(
            "runAsNonRoot != true",
            f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false",
        )
    if implicitly_bad:
        return Violation(
            "runAsNonRoot != true",
            f"pod or {_containers_phrase(implicitly_bad)} must set securityContext.runAsNonRoot=true",
        )
    return None


def _runs_as_root(obj: Pod) -> bool:
    """Whether a pod or container explicitly sets runAsUser=0."""
    return _int(_security_context(obj), "runAsUser") == 0


def _run_as_user(metadata: Pod, spec: Pod) -> Violation | None:
    """``runAsUser``: nothing runs as UID 0 (user-namespaced pods exempt)."""
    if _in_user_namespace(spec):
        return None
    setters = ["pod"] if _runs_as_root(spec) else []
    if bad_containers := [_name(container) for container in _containers(spec) if _runs_as_root(container)]:
        setters.append(_containers_phrase(bad_containers))
    if not setters:
        return None
    return Violation("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")


def _seccomp_profile_restricted(metadata: Pod, spec: Pod) -> Violation | None:
    """``seccompProfile_restricted``: RuntimeDefault or Localhost on the pod or every container.

    Windows pods are exempt.
    """
    if _is_windows(spec):
        return None
    setters, bad_types = _bad_seccomp_setters(spec)
    if setters:
        return _forbidden_seccomp_violation(setters, bad_types)
    if _seccomp_type(spec) is not None:
        return None
    unset = [_name(container) for container in _containers(spec) if _seccomp_type(container) is None]
    if not unset:
        return None
    return Violation(
        "seccompProfile",
        f"pod or {_containers_phrase(unset)} must set securityContext.seccompProfile.type"
        ' to "RuntimeDefault" or "Localhost"',
    )


# --- the registry ----------------------------------------------------------------------------

_BASELINE_CHECKS: dict[str, Check] = {
    "appArmorProfile": _app_armor_profile,
    "capabilities_baseline": _capabilities_baseline,
    "hostNamespaces": _host_namespaces,
    "hostPathVolumes": _host_path_volumes,
    "hostPorts": _host_ports,
    "hostProbesAndHostLifecycle": _host_probes_and_host_lifecycle,
    "privileged": _privileged,
    "procMount": _proc_mount_baseline,
    "seLinuxOptions": _se_linux_options,
    "seccompProfile_baseline": _seccomp_profile_baseline,
    "sysctls": _sysctls,
    "windowsHostProcess": _windows_host_process,
}

_RESTRICTED_CHECKS: dict[str, Check] = {
    "allowPrivilegeEscalation": _allow_privilege_escalation,
    "capabilities_restricted": _capabilities_restricted,
    "procMount_restricted": _proc_mount_unconditional,
    "restrictedVolumes": _restricted_volumes,
    "runAsNonRoot": _run_as_non_root,
    "runAsUser": _run_as_user,
    "seccompProfile_restricted": _seccomp_profile_restricted,
}

# Baseline checks that a stricter restricted check replaces at restricted (upstream's OverrideCheckIDs).
_OVERRIDDEN_AT_RESTRICTED = frozenset(
    {"capabilities_baseline", "hostPathVolumes", "procMount", "seccompProfile_baseline"}
)


def _ordered(checks: Mapping[str, Check], skip: frozenset[str] = frozenset()) -> tuple[Check, ...]:
    """The checks sorted by ID, as upstream's registry orders them."""
    return tuple(checks[check_id] for check_id in sorted(checks) if check_id not in skip)


_CHECKS_BY_LEVEL: dict[str, tuple[Check, ...]] = {
    "privileged": (),
    "baseline": _ordered(_BASELINE_CHECKS),
    "restricted": _ordered(_BASELINE_CHECKS, _OVERRIDDEN_AT_RESTRICTED) + _ordered(_RESTRICTED_CHECKS),
}
