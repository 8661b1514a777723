"""The node agent's fixed commands, run for real against a directory a test attached as a node's filesystem.

The sandbox runs no containers, but a test may attach a directory as the host filesystem of one of its
nodes (`Sandbox.attach_node_root`). An exec into a pod on that node runs here, as a subprocess, when it is
one of the node agent's command shapes (`chaoskirvis.nodes.agent_commands`: the snapshot, the write from
stdin, chmod with octal digits, chown with numeric ids) on a path under one of the container's mounts of
a ``hostPath`` volume: the path is resolved as the kubelet would bind it (mountPath -> the volume's host
path and the mount's subPath) and then under the attached directory. The exec's stdin is forwarded to the
process. A write, chmod or chown under a ``readOnly`` mount fails as on a read-only bind mount (exit 1,
"Read-only file system").
Any other exec (another command, a path under no hostPath mount, a node with no directory attached) is
answered as before, from the scripts (`exec_ws`).
"""
from __future__ import annotations

import asyncio
import functools
import posixpath
import re
import subprocess
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from chaoskirvis.nodes.agent_commands import snapshot_command, write_command
from chaoskirvis.sandbox.exec_ws import ExecAnswer

__all__ = ["NodeRoots", "node_command"]

TIMEOUT_S = 30.0
_SNAPSHOT = tuple(snapshot_command("/", "/x")[:4])
_WRITE = tuple(write_command("/", "/x")[:4])


def _shape(command: tuple[str, ...]) -> tuple[int, bool] | None:
    """(index of the path argument, whether the command writes) for the agent's command shapes; else None."""
    if len(command) == 5 and command[:4] == _SNAPSHOT:
        return 4, False
    if len(command) == 5 and command[:4] == _WRITE:
        return 4, True
    if len(command) == 3 and command[0] == "chmod" and re.fullmatch(r"[0-7]{3,4}", command[1]):
        return 2, True
    if len(command) == 3 and command[0] == "chown" and re.fullmatch(r"\d+:\d+", command[1]):
        return 2, True
    return None


def _host_binding(pod: dict[str, Any], container: str, path: str) -> tuple[str, bool] | None:
    """The node path `path` (in `container`) is bound to, and whether that mount is read-only; None when no
    hostPath mount holds it (the longest matching mountPath wins, as nested mounts shadow their parents)."""
    if not path.startswith("/") or ".." in path.split("/"):
        return None
    spec = pod.get("spec") or {}
    volumes = {v.get("name"): (v.get("hostPath") or {}).get("path") for v in spec.get("volumes") or []}
    found = next((c for c in spec.get("containers") or [] if c.get("name") == container), None)
    best: tuple[int, str, bool] | None = None
    for mount in (found or {}).get("volumeMounts") or []:
        host, where = volumes.get(mount.get("name")), posixpath.normpath(mount.get("mountPath") or "/")
        if not host or not (path == where or path.startswith(where.rstrip("/") + "/")):
            continue
        if best is None or len(where) > best[0]:
            rest = path[len(where):].lstrip("/")
            sub = mount.get("subPath") or ""  # the volume's subdirectory that is mounted
            if sub.startswith("/") or ".." in sub.split("/"):
                continue  # the API server refuses such a subPath; nothing is bound
            best = (len(where), posixpath.join(posixpath.normpath(host), sub, rest), bool(mount.get("readOnly")))
    return None if best is None else (best[1], best[2])


def node_command(pod: dict[str, Any], container: str, command: tuple[str, ...], root: Path
                 ) -> tuple[list[str], bool] | None:
    """The local argv for an agent command in `pod` with the node's filesystem at `root`, and whether it
    writes under a read-only mount; None when it is not an agent command on a hostPath-mounted path."""
    shape = _shape(command)
    if shape is None:
        return None
    index, writes = shape
    binding = _host_binding(pod, container, command[index])
    if binding is None:
        return None
    host, read_only = binding
    local = list(command)
    local[index] = str(root) + host if host != "/" else str(root)
    return local, writes and read_only


class NodeRoots:
    """Directories attached as nodes' host filesystems, by node name; usable from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roots: dict[str, Path] = {}

    def attach(self, node: str, root: Path | str | None) -> None:
        """Attach `root` as node `node`'s filesystem (None detaches)."""
        with self._lock:
            if root is None:
                self._roots.pop(node, None)
            else:
                self._roots[node] = Path(root).resolve()

    def runner_for(self, pod: dict[str, Any], container: str, command: tuple[str, ...]
                   ) -> Callable[[bytes], Awaitable[ExecAnswer]] | None:
        """The exec's local run (a coroutine function of its stdin) when `node_command` has one for the pod's
        node; None when it has none or no directory is attached to that node."""
        with self._lock:
            root = self._roots.get((pod.get("spec") or {}).get("nodeName") or "")
        local = None if root is None else node_command(pod, container, command, root)
        if local is None:
            return None
        return functools.partial(run_local, *local)


async def run_local(argv: list[str], read_only: bool, stdin: bytes) -> ExecAnswer:
    """Run `argv` with `stdin` off the event loop; its output and exit code as an exec answer."""
    if read_only:
        return ExecAnswer(stderr=f"{argv[0]}: {argv[-1]}: Read-only file system\n", exit_code=1)

    def run() -> ExecAnswer:
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return ExecAnswer(stderr=f"kirvis sandbox: {argv[0]} did not end within {TIMEOUT_S:g} s\n",
                              exit_code=137)
        return ExecAnswer(done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"),
                          done.returncode if 0 <= done.returncode <= 255 else 128 - done.returncode)

    return await asyncio.to_thread(run)
