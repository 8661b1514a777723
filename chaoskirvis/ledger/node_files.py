"""Changes to files on nodes: the original saved in the run's record before the agent touches the file.

A node technique (`chaoskirvis.nodes.actions`) changes one file on one node through the run's agent pod.
Before the change it writes an entry into its record (the run's ConfigMap in the agent's namespace,
`chaoskirvis.ledger.record`) under the key ``nodefiles.<node>.<sha256 of the path, 16 hex>``:

    {"type": "node-file", "state": "node-changing", "node": ..., "path": ..., "technique": ...,
     "component": ..., "original": {"mode", "uid", "gid", "sha256", "content"}, "intended": {"mode", "uid",
     "gid", "sha256"}, "agent": {"namespace", "name", "image"}, "mirror_hash": ..., "at": ...}

``original`` is the file as the agent read it, with its content (base64) only when the change rewrites
the content (a flag or a kubelet config key): a mode or owner change leaves the content as it is, and
files such as admin.conf hold client keys that have no place in a ConfigMap. ``intended`` is what the
change leaves. After
the change, the agent reads the file again and the entry becomes ``node-changed`` with ``left`` (what it
read). A run killed with SIGKILL at any point leaves an entry `kirvis cleanup --run-id` acts on: the file
is put back only when it is still what the run left (``left``, or ``intended`` while unconfirmed), never
over someone else's change (`chaoskirvis.nodes.restoring`).

An entry is data from the cluster (anyone who may write a ConfigMap in the namespace can write one), and
what it asks for is a root write on a node. So `node_file_entries` validates each entry before anything
is built from it: its key names its node and path; a node name valid for a Node; an absolute path without
``..``; modes of octal digits with no setuid, setgid, sticky or world-writable bit, numeric owners, checksums of 64 hex digits, an original content that
decodes and matches its checksum; an agent namespace and name valid and of the run's shape. The
restoring side also checks the entry against its technique (`chaoskirvis.nodes.restoring`), and node
files are restored only for a selection naming the run (`kirvis cleanup --run-id`), never by ``--all``.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import posixpath
import re
from typing import TYPE_CHECKING, Any, NamedTuple

from chaoslib.types import Configuration

from chaoskirvis.client import KubeAPI
from chaoskirvis.ledger import record
from chaoskirvis.ledger.ownership import name_is_of_run
from chaoskirvis.ledger.record import NODE_FILE_STATES
from chaoskirvis.ledger.refs import POD, ObjectRef, namespace_problem
from chaoskirvis.nodes.agent_commands import FileState

if TYPE_CHECKING:
    from chaoskirvis.ledger.state import RunState

__all__ = ["NODE_FILE_STATES", "NodeFileEntry", "entry_key", "file_fields", "record_node_file", "confirm_node_file",
           "node_file_entries"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class NodeFileEntry(NamedTuple):
    """One validated node-file entry of run `run_id`'s record in namespace `home`."""

    key: str
    entry: dict[str, Any]
    run_id: str
    home: str

    @property
    def original(self) -> FileState:
        o = self.entry["original"]
        return FileState(o["mode"], o["uid"], o["gid"], o["sha256"], base64.b64decode(o.get("content", "")))

    @property
    def has_content(self) -> bool:
        """Whether the original's content was saved (only for a change that rewrites it)."""
        return "content" in self.entry["original"]

    @property
    def left(self) -> FileState:
        """What the run left: as read after the change, or (unconfirmed) what the change was to leave; no content."""
        o = self.entry.get("left") or self.entry["intended"]
        return FileState(o["mode"], o["uid"], o["gid"], o["sha256"], b"")

    @property
    def agent_ref(self) -> ObjectRef:
        agent = self.entry["agent"]
        return ObjectRef(POD, agent["namespace"], agent["name"])

    def __str__(self) -> str:
        return f"node file {self.entry['path']} on node {self.entry['node']}"


def entry_key(node: str, path: str) -> str:
    """The record key of a change to `path` on `node` (a ConfigMap data key: the path only as a digest)."""
    return f"nodefiles.{node}.{hashlib.sha256(path.encode()).hexdigest()[:16]}"


def file_fields(state: FileState, with_content: bool = False) -> dict[str, Any]:
    """A FileState as entry fields (mode, uid, gid, sha256; and the content, base64, for an original)."""
    fields: dict[str, Any] = {"mode": state.mode, "uid": state.uid, "gid": state.gid, "sha256": state.sha256}
    if with_content:
        fields["content"] = base64.b64encode(state.content).decode()
    return fields


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _KeyRef(NamedTuple):
    """What `record.write_entry` needs of a reference: the record key and its home namespace."""

    key: str
    record_namespace: str


def record_node_file(api: KubeAPI, state: RunState, home: str, entry: dict[str, Any],
                     configuration: Configuration | None = None) -> None:
    """Write `entry` (state ``node-changing``) into the run's record in `home`, before the change is made.
    Raises `ApiError`/`ActivityFailed` when it may not be stored: then the file must not be changed."""
    entry = {**entry, "type": "node-file", "state": "node-changing", "at": _now()}
    with state.lock:
        state.change_homes.add(home)  # restore reads this record again and finds the entry there
    record.write_entry(api, state, _KeyRef(entry_key(entry["node"], entry["path"]), home), entry, configuration)


def confirm_node_file(api: KubeAPI, state: RunState, home: str, entry: dict[str, Any], left: FileState,
                      configuration: Configuration | None = None) -> None:
    """After the change: the entry ``node-changed`` with what the agent read back (`left`)."""
    entry = {**entry, "type": "node-file", "state": "node-changed", "left": file_fields(left), "at": _now()}
    record.write_entry(api, state, _KeyRef(entry_key(entry["node"], entry["path"]), home), entry, configuration)


def node_file_entries(rec: dict[str, Any], run_id: str) -> tuple[list[NodeFileEntry], list[str]]:
    """The node-file entries of run `run_id`'s record `rec`, validated; and a line per invalid one."""
    entries: list[NodeFileEntry] = []
    invalid: list[str] = []
    for key, entry, home, where in record.entries_in_states(rec, NODE_FILE_STATES):
        problem = namespace_problem(home) or _problem(entry, key, run_id)
        if problem:
            invalid.append(f"invalid node-file entry {key!r} of {where}: {problem}")
        else:
            entries.append(NodeFileEntry(key, entry, run_id, home))
    return entries, invalid


def _problem(entry: dict[str, Any], key: str, run_id: str) -> str | None:
    if entry.get("type") != "node-file":
        return "its type is not node-file"
    node, path = entry.get("node"), entry.get("path")
    if not isinstance(node, str) or len(node) > 253 or not _DNS_SUBDOMAIN.fullmatch(node):
        return f"node {node!r} is not a valid node name"
    if not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) != path \
            or ".." in path.split("/"):
        return f"path {path!r} is not an absolute, normalised path"
    if key != entry_key(node, path):
        return "its key does not name its node and path"
    if not isinstance(entry.get("technique"), str):
        return "it names no technique"
    for field in ("original", "intended", *(["left"] if "left" in entry else [])):
        problem = _state_problem(entry.get(field), with_content=field == "original")
        if problem:
            return f"{field}: {problem}"
    agent = entry.get("agent")
    if not isinstance(agent, dict) or not isinstance(agent.get("image"), str):
        return "it names no agent image"
    ref = ObjectRef(POD, agent.get("namespace"), agent.get("name"))
    if ref.problem() or not name_is_of_run(ref.name, run_id):
        return f"agent {agent.get('namespace')}/{agent.get('name')} is not a pod name of the run"
    if entry.get("mirror_hash") is not None and not isinstance(entry["mirror_hash"], str):
        return "mirror_hash is not a string"
    return None


def _state_problem(obj: Any, with_content: bool) -> str | None:
    if not isinstance(obj, dict):
        return "not an object"
    if not isinstance(obj.get("mode"), str) or not re.fullmatch(r"[0-7]{3,4}", obj["mode"]):
        return "mode is not octal digits"
    if int(obj["mode"], 8) & 0o7002:
        # No CIS file is setuid, setgid, sticky or world-writable: a record asking for one is refused, since a
        # forged entry could otherwise have the restore chmod a file it names that way.
        return f"mode {obj['mode']} sets setuid, setgid, sticky or world-writable bits"
    if not all(type(obj.get(f)) is int and obj[f] >= 0 for f in ("uid", "gid")):
        return "uid and gid are not numeric ids"
    if not isinstance(obj.get("sha256"), str) or not _HEX64.fullmatch(obj["sha256"]):
        return "sha256 is not 64 hex digits"
    if with_content and "content" in obj:
        try:
            content = base64.b64decode(obj.get("content") or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            return "content is not base64"
        if hashlib.sha256(content).hexdigest() != obj["sha256"]:
            return "content does not match its sha256"
    return None

