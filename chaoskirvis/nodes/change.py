"""One change to one file on a node: what a node technique does, as data the agent's actions carry out.

A change is a file's mode, its owner, a static pod manifest's command flag or a kubelet config key. `path` is
kubeadm's; on the node the path is the configuration key `path_option` when set, else the default of the
layout `kirvis_node_layout` selects (`nodes.layout`: kubeadm, rke2, k3s).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from chaoskirvis.nodes import edits, layout
from chaoskirvis.nodes.agent_commands import FileState, host_path
from chaoskirvis.nodes.layout import path_option

__all__ = ["NodeChange", "path_option"]

Kind = Literal["mode", "owner", "flag", "config"]
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kubelet")


@dataclass(frozen=True, slots=True)
class NodeChange:
    """Exactly one change on a node file.

    `kind` says which payload is set: ``mode`` (octal str), ``owner`` (`uid`, `gid`), ``flag`` (a
    static pod manifest's `--flag`, set to `value`) or ``config`` (a KubeletConfiguration dotted `key`,
    set to `value`). `component` is what must restart for the change to take effect (the static pod a
    manifest change restarts, ``kubelet`` for its config), None for a mode or owner change.
    """

    path: str
    path_option: str
    kind: Kind
    component: str | None
    control_plane: bool
    mode: str | None = None
    uid: int | None = None
    gid: int | None = None
    flag: str | None = None
    key: str | None = None
    value: Any = None

    def __post_init__(self) -> None:
        host_path("/", self.path)  # absolute, no '..'
        if not layout.known_option(self.path_option) or \
                layout.default_path(self.path_option, layout.DEFAULT_LAYOUT) != self.path:
            raise ValueError(f"{self.path}: not kubeadm's path of the node file {self.path_option!r} names")
        payload = {"mode": self.mode is not None, "owner": self.uid is not None or self.gid is not None,
                   "flag": self.flag is not None, "config": self.key is not None}
        if self.kind not in payload or [k for k, given in payload.items() if given] != [self.kind]:
            raise ValueError(f"{self.path}: a {self.kind!r} change carries exactly its own payload")
        if self.kind == "mode" and not re.fullmatch(r"[0-7]{3,4}", self.mode or ""):
            raise ValueError(f"{self.path}: mode must be octal digits, got {self.mode!r}")
        if self.kind == "owner" and not (isinstance(self.uid, int) and isinstance(self.gid, int)):
            raise ValueError(f"{self.path}: an owner change needs integer uid and gid")
        if self.kind in ("flag", "config") and self.value is None:
            raise ValueError(f"{self.path}: a {self.kind} change needs a value")
        if self.kind == "flag" and not isinstance(self.value, str):
            raise ValueError(f"{self.path}: flag {self.flag} takes a string value")
        if self.component not in COMPONENTS + (None,):
            raise ValueError(f"{self.path}: unknown component {self.component!r}")

    def resolved_path(self, configuration: Mapping[str, Any] | None) -> str:
        """The path on the node: `configuration[path_option]` when set, else the default of the layout
        `configuration[kirvis_node_layout]` names (kubeadm's when unset). ValueError for an unknown layout (checked
        even when the option is set), a layout without this file (the reason, and the option to set) or a
        path that is not absolute and normalised."""
        configuration = configuration or {}
        name = layout.layout_name(configuration)
        if self.path_option in configuration:
            path = configuration[self.path_option]
        else:
            path = layout.default_path(self.path_option, name)
        if not isinstance(path, str):
            raise ValueError(f"{self.path_option} must be a path string, got {path!r}")
        host_path("/", path)
        return path

    def new_content(self, old: bytes) -> bytes:
        """The file's content after the change (flag and config kinds; mode and owner keep the content)."""
        if self.kind == "flag":
            return edits.set_flag(old, self.flag, self.value)
        if self.kind == "config":
            return edits.set_config_key(old, self.key, self.value)
        return old

    def after(self, before: FileState) -> FileState:
        """The file as the change leaves it, given how it was (what restore compares against; what preview shows).

        """
        if self.kind == "mode":
            return before._replace(mode=self.mode)
        if self.kind == "owner":
            return before._replace(uid=self.uid, gid=self.gid)
        content = self.new_content(before.content)
        return before._replace(content=content, sha256=hashlib.sha256(content).hexdigest())

    def default_paths(self) -> frozenset[str]:
        """The file's default path in every layout (`nodes.layout`), kubeadm's `path` among them."""
        return layout.default_paths(self.path_option)

    def summary(self) -> dict[str, Any]:
        """The change as plain data (the catalog's JSON, the journal): only the fields its kind uses."""
        payload = {"mode": ("mode",), "owner": ("uid", "gid"), "flag": ("flag", "value"),
                   "config": ("key", "value")}[self.kind]
        return {"path": self.path, "path_option": self.path_option, "kind": self.kind,
                "component": self.component, "control_plane": self.control_plane,
                **{name: getattr(self, name) for name in payload}}

    def describe(self) -> str:
        """One line for the docs and the journal, e.g. `--anonymous-auth=true in /etc/.../kube-apiserver.yaml`."""
        what = {"mode": f"mode {self.mode}", "owner": f"owner {self.uid}:{self.gid}",
                "flag": f"{self.flag}={self.value}", "config": f"{self.key}: {_yaml_scalar(self.value)}"}
        return f"{what[self.kind]} on {self.path}"


def _yaml_scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
