"""Node and control-plane faults: one change to one file on a node, which a CIS benchmark check reports.

Each unit's `node_change` is the change (`chaoskirvis.nodes.change.NodeChange`) and `cis` the check of the
CIS Kubernetes Benchmark (kube-bench's cfg/cis-1.9 master.yaml / node.yaml ids) that fails once it is made.
The file mode and ownership units are built from `chaoskirvis.nodes.cis_files`, one of each per file.

Detection: no upstream Falco rule (nor any k8saudit rule; the names pinned in detector_rules.json) sees
the change itself. The agent container writes the node's files through hostPath mounts, so their names
start with /host ('Write below etc', a sandbox rule, matches names below /etc/); the rules that can
fire look at the pod that carries the change, not at the change ('Create Sensitive Mount Pod', k8saudit,
on its hostPath volumes). What reports the change is the benchmark: kube-bench's check, or
trivy-operator's (its check ids are trivy's, `CisCheck.trivy_check`).
"""
from __future__ import annotations

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.nodes.change import NodeChange, path_option
from chaoskirvis.nodes.cis_files import BENCHMARK, CONTROL_PLANE_FILES, WORKER_FILES, FileCheck
from chaoskirvis.techniques.unit import CisCheck, Detection, Technique

__all__ = ["NODE_TECHNIQUES", "LOOSE_MODE", "NON_ROOT_OWNER", "node_technique"]

LOOSE_MODE = "644"  # group and others may read: beyond CIS's 600, and what a stray `chmod a+r` leaves
NON_ROOT_OWNER = (1000, 1000)  # the first regular account on most distributions
# kube-bench reports these checks WARN when they fail (`scored: false` in cfg/cis-1.9), never FAIL.
_UNSCORED = frozenset({"1.2.1", "4.1.7", "4.1.8", "4.2.4"})
# trivy's id for each check (trivy-checks: the check's `avd_id`, as specs/compliance/k8s-cis-1.23.yaml maps the
# benchmark's controls to them; that spec numbers the API server checks as CIS 1.23 did, e.g. its 1.2.7 is
# cis-1.9's 1.2.6).
_TRIVY = {
    "1.1.1": "AVD-KCV-0048", "1.1.2": "AVD-KCV-0049", "1.1.3": "AVD-KCV-0050", "1.1.4": "AVD-KCV-0051",
    "1.1.5": "AVD-KCV-0052", "1.1.6": "AVD-KCV-0053", "1.1.7": "AVD-KCV-0054", "1.1.8": "AVD-KCV-0055",
    "1.1.13": "AVD-KCV-0060", "1.1.14": "AVD-KCV-0061", "1.1.15": "AVD-KCV-0062", "1.1.16": "AVD-KCV-0063",
    "1.1.17": "AVD-KCV-0064", "1.1.18": "AVD-KCV-0065",
    "1.2.1": "AVD-KCV-0001", "1.2.6": "AVD-KCV-0007", "1.2.10": "AVD-KCV-0011", "1.2.15": "AVD-KCV-0018",
    "1.2.17": "AVD-KCV-0020", "1.3.2": "AVD-KCV-0034", "1.4.1": "AVD-KCV-0040",
    "4.1.1": "AVD-KCV-0069", "4.1.2": "AVD-KCV-0070", "4.1.5": "AVD-KCV-0073", "4.1.6": "AVD-KCV-0074",
    "4.1.7": "AVD-KCV-0075", "4.1.8": "AVD-KCV-0076", "4.1.9": "AVD-KCV-0077", "4.1.10": "AVD-KCV-0078",
    "4.2.1": "AVD-KCV-0079", "4.2.2": "AVD-KCV-0080", "4.2.4": "AVD-KCV-0082", "4.2.6": "AVD-KCV-0084",
    "4.2.10": "AVD-KCV-0090",
}
_CREDENTIAL_FILES = frozenset({"admin-conf", "scheduler-conf", "controller-manager-conf", "kubelet-conf"})
_KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"

_BLOCKED_BY = ("nothing at admission: a file changed on a node makes no API request. What keeps it out is who can "
               "reach node files: Pod Security baseline (or stricter) on every namespace denies the hostPath "
               "volumes the node agent pod (or an attacker's) needs, and no one but administrators logs in to nodes")
_AUDIT = ("nothing for the change itself; the agent pod that carries it shows as verb=create, "
          "objectRef.resource=pods (requestObject.spec.nodeName, hostPath volumes), then verb=create, "
          "objectRef.subresource=exec")
_NOTE = ("no upstream Falco or k8saudit rule sees a node file's {what} changed through a host mount ('Write below "
         "etc', sandbox, matches names below /etc/, and the agent's are below /host/); 'Create Sensitive Mount Pod' "
         "(k8saudit) can fire on the agent pod, which is not the change. kube-bench check {check} ({benchmark}) "
         "reports it{warn}; so does trivy-operator's check {trivy} in its CIS reports")
_UNDO = ("put the file back exactly as saved before the change ({saved}), only while it is still what the run "
         "left (a later change is reported as a conflict and left alone){restart}")


def _node_unit(id: str, title: str, attack: tuple[str, ...], injects: str, change: NodeChange, check: str,
               targets: tuple[str, ...], remediation: str, what: str) -> Technique:
    scored = check not in _UNSCORED
    warn = "" if scored else (f", as WARN: {check} is unscored in {BENCHMARK}, so kube-bench cannot confirm "
                              "the change as a failure")
    restart = {None: "", "kubelet": "; the kubelet picks it up at its next restart",
               }.get(change.component, f"; the kubelet restarts the {change.component} static pod again")
    saved = "content, mode and owner" if change.kind in ("flag", "config") else "mode and owner"
    return Technique(
        id=id, family="node", title=title, attack=attack, injects=injects, blocked_by=_BLOCKED_BY,
        pod_security_level=None, pod_security_checks=(),
        detection=Detection(audit_log=_AUDIT, note=_NOTE.format(what=what, check=check, benchmark=BENCHMARK,
                                                                warn=warn, trivy=_TRIVY[check])),
        undo=_UNDO.format(saved=saved, restart=restart), target="node", node_change=change,
        cis=CisCheck(BENCHMARK, check, targets, scored, remediation, _TRIVY[check]),
    )


def _file_units(check: FileCheck, control_plane: bool) -> tuple[Technique, Technique]:
    targets = ("master",) if control_plane else ("node",)
    option = path_option(check.name)
    credentials = ("T1552.001",) if check.name in _CREDENTIAL_FILES else ()
    readable = " (its credentials readable by every local account)" if credentials else ""
    uid, gid = NON_ROOT_OWNER
    mode = _node_unit(
        f"{check.name}-mode", f"{check.path} readable by everyone", ("T1222.002", *credentials),
        f"mode {LOOSE_MODE} on {check.path}{readable}",
        NodeChange(check.path, option, "mode", None, control_plane, mode=LOOSE_MODE), check.mode_check, targets,
        f"chmod {check.mode} {check.path}", "mode")
    owner = _node_unit(
        f"{check.name}-owner", f"{check.path} owned by a regular account", ("T1222.002", *credentials),
        f"owner {uid}:{gid} on {check.path} (that account may rewrite it)",
        NodeChange(check.path, option, "owner", None, control_plane, uid=uid, gid=gid), check.owner_check, targets,
        f"chown root:root {check.path}", "owner")
    return mode, owner


def _manifest_flag(id: str, title: str, attack: tuple[str, ...], injects: str, component: str, flag: str,
                   value: str, check: str, fix: str) -> Technique:
    name = {"kube-apiserver": "apiserver", "kube-controller-manager": "controller-manager",
            "kube-scheduler": "scheduler"}[component]
    path = f"/etc/kubernetes/manifests/{component}.yaml"
    change = NodeChange(path, path_option(f"{name}-manifest"), "flag", component, True, flag=flag, value=value)
    return _node_unit(id, title, attack, f"{flag}={value} in {path} ({injects}); the kubelet restarts "
                      f"{component} with it", change, check, ("master",), f"set {fix} in {path}", "flag")


def _kubelet_key(id: str, title: str, attack: tuple[str, ...], injects: str, key: str, value: object,
                 check: str, fix: str) -> Technique:
    change = NodeChange(_KUBELET_CONFIG, path_option("kubelet-config"), "config", "kubelet", False, key=key,
                        value=value)
    return _node_unit(id, title, attack, f"{change.describe()} ({injects}); it takes effect at the kubelet's next "
                      "restart, and kube-bench reads the file, so it reports it at once", change, check, ("node",),
                      f"set {fix} in {_KUBELET_CONFIG} and restart the kubelet", "configuration")


_FLAG_UNITS = (
    _manifest_flag("apiserver-anonymous-auth", "API server answers anonymous requests", ("T1562.001",),
                   "requests without credentials are served as system:anonymous; kubeadm leaves the flag unset, "
                   "which is the same, so CIS 1.2.1 fails before the change unless the cluster set it false",
                   "kube-apiserver", "--anonymous-auth", "true", "1.2.1", "--anonymous-auth=false"),
    _manifest_flag("apiserver-always-allow", "API server authorizes every request", ("T1562.001", "T1078"),
                   "RBAC and Node authorization are replaced by AlwaysAllow: every authenticated identity may do "
                   "anything", "kube-apiserver", "--authorization-mode", "AlwaysAllow", "1.2.6",
                   "--authorization-mode=Node,RBAC"),
    _manifest_flag("apiserver-always-admit", "API server enables the AlwaysAdmit admission plugin", ("T1562.001",),
                   "the deprecated AlwaysAdmit plugin beside kubeadm's NodeRestriction (the flag's whole value is "
                   "replaced: other plugins listed before are dropped)", "kube-apiserver",
                   "--enable-admission-plugins", "NodeRestriction,AlwaysAdmit", "1.2.10",
                   "--enable-admission-plugins without AlwaysAdmit (kubeadm: NodeRestriction)"),
    _manifest_flag("apiserver-profiling", "API server serves profiling data", ("T1562.001",),
                   "/debug/pprof is served; kubeadm leaves the flag unset (default true), so CIS 1.2.15 fails "
                   "before the change unless the cluster set it false", "kube-apiserver", "--profiling", "true",
                   "1.2.15", "--profiling=false"),
    _manifest_flag("apiserver-audit-log-maxage", "API server keeps audit logs one day", ("T1562.001", "T1070"),
                   "rotated audit log files are deleted after one day instead of 30", "kube-apiserver",
                   "--audit-log-maxage", "1", "1.2.17", "--audit-log-maxage=30"),
    _manifest_flag("controller-manager-profiling", "Controller manager serves profiling data", ("T1562.001",),
                   "/debug/pprof is served", "kube-controller-manager", "--profiling", "true", "1.3.2",
                   "--profiling=false"),
    _manifest_flag("scheduler-profiling", "Scheduler serves profiling data", ("T1562.001",),
                   "/debug/pprof is served", "kube-scheduler", "--profiling", "true", "1.4.1", "--profiling=false"),
    _kubelet_key("kubelet-anonymous-auth", "Kubelet answers anonymous requests", ("T1562.001", "T1609"),
                 "requests to the kubelet's port 10250 without credentials are served as system:anonymous",
                 "authentication.anonymous.enabled", True, "4.2.1", "authentication.anonymous.enabled: false"),
    _kubelet_key("kubelet-always-allow", "Kubelet authorizes every request", ("T1562.001", "T1609"),
                 "every identity that reaches the kubelet may exec into its pods", "authorization.mode",
                 "AlwaysAllow", "4.2.2", "authorization.mode: Webhook"),
    _kubelet_key("kubelet-read-only-port", "Kubelet opens its read-only port", ("T1613",),
                 "port 10255 serves pod specs and node metrics to anyone, without authentication", "readOnlyPort",
                 10255, "4.2.4", "readOnlyPort: 0"),
    _kubelet_key("kubelet-no-iptables-chains", "Kubelet stops managing its iptables chains", ("T1562.004",),
                 "the kubelet no longer ensures its utility chains in iptables",
                 "makeIPTablesUtilChains", False, "4.2.6", "makeIPTablesUtilChains: true"),
    _kubelet_key("kubelet-no-cert-rotation", "Kubelet stops rotating its client certificate", ("T1562.001",),
                 "the kubelet keeps its client certificate until it expires", "rotateCertificates", False,
                 "4.2.10", "rotateCertificates: true"),
)

NODE_TECHNIQUES: tuple[Technique, ...] = (
    *(unit for check in CONTROL_PLANE_FILES for unit in _file_units(check, True)),
    *(unit for check in WORKER_FILES for unit in _file_units(check, False)),
    *_FLAG_UNITS,
)
_BY_ID = {t.id: t for t in NODE_TECHNIQUES}


def node_technique(technique_id: str) -> Technique:
    """The node technique with this id (its `node_change` and `cis`), or ActivityFailed naming the known ones."""
    try:
        return _BY_ID[technique_id]
    except (KeyError, TypeError):
        raise ActivityFailed(f"{technique_id!r} is not a node technique; known: {', '.join(_BY_ID)}") from None
