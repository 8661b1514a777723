"""The node agent's fixed commands: exact busybox-compatible argv lists, parameterised by a host root.

The agent pod mounts the node's paths under a root (e.g. /host); the same argv runs locally in tests
against a directory tree laid out like a kubeadm node. Paths travel as positional arguments of `sh -c`,
never spliced into the script, so an experiment file cannot smuggle shell into them.
"""
from __future__ import annotations

import base64
import hashlib
import posixpath
import re
from typing import NamedTuple

__all__ = ["FileState", "host_path", "snapshot_command", "parse_snapshot", "chmod_command", "chown_command",
           "write_command"]

_SNAPSHOT = 'stat -c "%a %u %g" "$1" && sha256sum "$1" && base64 "$1"'


class FileState(NamedTuple):
    """What the agent saw of one file: octal mode, numeric owner, content and its sha256."""

    mode: str
    uid: int
    gid: int
    sha256: str
    content: bytes


def host_path(root: str, path: str) -> str:
    """`path` (absolute on the node) under the agent's mount `root`; refuses relative or `..` paths."""
    if not path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"node path must be absolute without '..': {path!r}")
    return posixpath.join(root.rstrip("/") or "/", path.lstrip("/"))


def snapshot_command(root: str, path: str) -> list[str]:
    """Mode, owner, sha256 and base64 content of one file, in that order (parsed by parse_snapshot)."""
    return ["sh", "-c", _SNAPSHOT, "kirvis", host_path(root, path)]


def parse_snapshot(out: str) -> FileState:
    """The agent's snapshot output as a FileState; a checksum that does not match the content is refused."""
    lines = out.splitlines()
    if len(lines) < 2 or not re.fullmatch(r"[0-7]{3,4} \d+ \d+", lines[0].strip()) \
            or not re.fullmatch(r"[0-9a-f]{64}", lines[1].split(" ", 1)[0]):
        raise ValueError(f"unexpected agent snapshot output: {out[:200]!r}")
    mode, uid, gid = lines[0].split()
    digest = lines[1].split(" ", 1)[0]
    content = base64.b64decode("".join(lines[2:]), validate=True)
    if hashlib.sha256(content).hexdigest() != digest:
        raise ValueError("agent snapshot content does not match its sha256")
    return FileState(mode, int(uid), int(gid), digest, content)


def chmod_command(root: str, path: str, mode: str) -> list[str]:
    """Set the octal mode of one file."""
    if not re.fullmatch(r"[0-7]{3,4}", mode):
        raise ValueError(f"mode must be octal digits: {mode!r}")
    return ["chmod", mode, host_path(root, path)]


def chown_command(root: str, path: str, uid: int, gid: int) -> list[str]:
    """Set the numeric owner and group of one file."""
    return ["chown", f"{int(uid)}:{int(gid)}", host_path(root, path)]


def write_command(root: str, path: str) -> list[str]:
    """Replace the file's content with stdin in place (keeps its inode, mode and owner)."""
    return ["sh", "-c", 'cat > "$1"', "kirvis", host_path(root, path)]
