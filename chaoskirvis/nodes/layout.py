"""Where a distribution keeps each node file: the default paths the configuration key `kirvis_node_layout` selects.

`kubeadm` (the default) is `cis_files`' table. `rke2` and `k3s` are the paths kube-bench's own configuration
for those benchmarks makes its checks read (aquasecurity/kube-bench, `cfg/rke2-cis-1.7/master.yaml` and
`node.yaml`, `cfg/k3s-cis-1.7/config.yaml`, `master.yaml` and `node.yaml`, and for the `$...conf` /
`$...kubeconfig` variables those files use, the `confs`, `kubeconfig` and `cafile` lists of `cfg/config.yaml`).
A file the distribution does not have, or that kube-bench's configuration names no path for, is an `Absent`
with the reason: a technique on it is refused unless its `kirvis_node_path_*` option names the file.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from chaoskirvis.nodes.cis_files import CONTROL_PLANE_FILES, WORKER_FILES

__all__ = ["LAYOUT_OPTION", "DEFAULT_LAYOUT", "LAYOUTS", "Absent", "path_option", "known_option", "layout_name",
           "default_path", "default_paths"]

LAYOUT_OPTION = "kirvis_node_layout"
DEFAULT_LAYOUT = "kubeadm"


def path_option(file_name: str) -> str:
    """The configuration key that overrides a node file's path: `kirvis_node_path_` + its name, `-` as `_`."""
    return "kirvis_node_path_" + file_name.replace("-", "_")


class Absent(NamedTuple):
    """A file a layout has no default path for, and why."""

    reason: str


_K3S_EMBEDDED = ("k3s runs the {what} inside the k3s process: there is no {what} static pod manifest "
                 "(kube-bench cfg/k3s-cis-1.7/master.yaml skips {checks} as not applicable); its flags are "
                 "k3s's `{arg}` settings in /etc/rancher/k3s/config.yaml, which this technique does not edit")
_NO_KUBECONFIG = ("kube-bench's configuration names no {layout} path for the {what} kubeconfig (cfg/config.yaml "
                  "lists none in master.{component}.kubeconfig, so its {checks} read kubeadm's {kubeadm})")
_FLAGS_NOT_FILE = ("{name} passes the kubelet its settings as command-line flags unless configured otherwise, and "
                   "kube-bench's configuration names no {name} KubeletConfiguration file ({cfg} {how})")

_KUBEADM: dict[str, str | Absent] = {check.name: check.path for check in (*CONTROL_PLANE_FILES, *WORKER_FILES)}

_RKE2: dict[str, str | Absent] = {
    # cfg/rke2-cis-1.7/master.yaml 1.1.1 audits this path; 1.1.2-1.1.6 read $apiserverconf etc., whose rke2
    # entries in cfg/config.yaml master.<component>.confs are the same folder
    "apiserver-manifest": "/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml",
    "controller-manager-manifest": "/var/lib/rancher/rke2/agent/pod-manifests/kube-controller-manager.yaml",
    "scheduler-manifest": "/var/lib/rancher/rke2/agent/pod-manifests/kube-scheduler.yaml",
    # 1.1.7/1.1.8 read $etcdconf: cfg/config.yaml master.etcd.confs, whose rke2 entry is etcd's config file
    "etcd-manifest": "/var/lib/rancher/rke2/server/db/etcd/config",
    # 1.1.13/1.1.14 audit this path
    "admin-conf": "/var/lib/rancher/rke2/server/cred/admin.kubeconfig",
    "scheduler-conf": Absent(_NO_KUBECONFIG.format(layout="rke2", what="scheduler's", component="scheduler",
                                                   checks="1.1.15/1.1.16", kubeadm="/etc/kubernetes/scheduler.conf")),
    "controller-manager-conf": Absent(_NO_KUBECONFIG.format(
        layout="rke2", what="controller manager's", component="controllermanager", checks="1.1.17/1.1.18",
        kubeadm="/etc/kubernetes/controller-manager.conf")),
    "kubelet-service": Absent("rke2 starts the kubelet from the rke2 process: there is no kubelet service file "
                              "(kube-bench cfg/rke2-cis-1.7/node.yaml skips 4.1.1/4.1.2 as not applicable)"),
    # cfg/config.yaml node.kubelet.kubeconfig and node.kubelet.cafile (the rke2 entries)
    "kubelet-conf": "/var/lib/rancher/rke2/agent/kubelet.kubeconfig",
    "client-ca": "/var/lib/rancher/rke2/agent/client-ca.crt",
    "kubelet-config": Absent(_FLAGS_NOT_FILE.format(name="rke2", cfg="cfg/config.yaml",
                                                    how="lists no rke2 path in node.kubelet.confs")),
}

_K3S: dict[str, str | Absent] = {
    "apiserver-manifest": Absent(_K3S_EMBEDDED.format(what="API server", checks="1.1.1/1.1.2",
                                                      arg="kube-apiserver-arg")),
    "controller-manager-manifest": Absent(_K3S_EMBEDDED.format(what="controller manager", checks="1.1.3/1.1.4",
                                                               arg="kube-controller-manager-arg")),
    "scheduler-manifest": Absent(_K3S_EMBEDDED.format(what="scheduler", checks="1.1.5/1.1.6",
                                                      arg="kube-scheduler-arg")),
    "etcd-manifest": Absent("k3s embeds etcd (or its datastore) in the k3s process: there is no etcd static pod "
                            "manifest (kube-bench cfg/k3s-cis-1.7/master.yaml skips 1.1.7/1.1.8 as not applicable)"),
    # cfg/k3s-cis-1.7/master.yaml 1.1.13/1.1.14 audit this path
    "admin-conf": "/var/lib/rancher/k3s/server/cred/admin.kubeconfig",
    "scheduler-conf": Absent(_NO_KUBECONFIG.format(layout="k3s", what="scheduler's", component="scheduler",
                                                   checks="1.1.15/1.1.16", kubeadm="/etc/kubernetes/scheduler.conf")),
    "controller-manager-conf": Absent(_NO_KUBECONFIG.format(
        layout="k3s", what="controller manager's", component="controllermanager", checks="1.1.17/1.1.18",
        kubeadm="/etc/kubernetes/controller-manager.conf")),
    "kubelet-service": Absent("k3s starts the kubelet from the k3s process: there is no kubelet service file "
                              "(kube-bench cfg/k3s-cis-1.7/node.yaml skips 4.1.1/4.1.2 as not applicable)"),
    # cfg/k3s-cis-1.7/config.yaml: node.kubelet defaultkubeconfig and defaultcafile
    "kubelet-conf": "/var/lib/rancher/k3s/agent/kubelet.kubeconfig",
    "client-ca": "/var/lib/rancher/k3s/agent/client-ca.crt",
    "kubelet-config": Absent(_FLAGS_NOT_FILE.format(name="k3s", cfg="cfg/k3s-cis-1.7/node.yaml",
                                                    how="skips 4.1.9/4.1.10 and reads the kubelet's flags from "
                                                        "the k3s journal")),
}

LAYOUTS: dict[str, dict[str, str | Absent]] = {"kubeadm": _KUBEADM, "rke2": _RKE2, "k3s": _K3S}
_FILE_BY_OPTION = {path_option(name): name for name in _KUBEADM}


def layout_name(configuration: Mapping[str, Any] | None) -> str:
    """`configuration[kirvis_node_layout]`, `kubeadm` when unset; ValueError naming the known ones otherwise."""
    name = (configuration or {}).get(LAYOUT_OPTION, DEFAULT_LAYOUT)
    if not isinstance(name, str) or name not in LAYOUTS:
        raise ValueError(f"{LAYOUT_OPTION} {name!r} is not a known node layout; known: {', '.join(LAYOUTS)}")
    return name


def known_option(option: str) -> bool:
    """Whether `option` is the `kirvis_node_path_*` key of a file the layouts know."""
    return option in _FILE_BY_OPTION


def default_path(option: str, layout: str) -> str:
    """The layout's path for the file whose `kirvis_node_path_*` key is `option`; ValueError with the reason where
    the layout has none, naming `option` for an install that has the file after all."""
    path = LAYOUTS[layout][_FILE_BY_OPTION[option]]
    if isinstance(path, Absent):
        raise ValueError(f"refused on the {layout} layout: {path.reason}. If your install has this file, set "
                         f"`{option}` to its path")
    return path


def default_paths(option: str) -> frozenset[str]:
    """Every layout's default path for the file whose key is `option` (where a restore may take a write cut short
    for the run's own)."""
    return frozenset(p for table in LAYOUTS.values() if isinstance(p := table[_FILE_BY_OPTION[option]], str))
