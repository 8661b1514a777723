"""Put a node file back as it was, only if it is still what the run left; otherwise leave it and say so."""
from __future__ import annotations

from typing import Callable

from chaoskirvis.nodes import agent_commands as actions
from chaoskirvis.nodes.agent_commands import FileState

__all__ = ["Runner", "read_state", "apply_state", "restore_file"]

# Runs one fixed argv with stdin (locally, or through the agent's exec) and returns its stdout.
Runner = Callable[[list[str], bytes], str]


def read_state(run: Runner, root: str, path: str) -> FileState:
    """The file's mode, owner, content and checksum, through the agent's snapshot command."""
    return actions.parse_snapshot(run(actions.snapshot_command(root, path), b""))


def apply_state(run: Runner, root: str, path: str, state: FileState) -> None:
    """Write the content in place, then mode and owner (the write keeps the inode, so order is safe)."""
    run(actions.write_command(root, path), state.content)
    run(actions.chmod_command(root, path, state.mode), b"")
    run(actions.chown_command(root, path, state.uid, state.gid), b"")


def restore_file(run: Runner, root: str, path: str, original: FileState, left: FileState) -> str:
    """"restored" when the file is still exactly what the run left; "conflict: ..." (file untouched) otherwise."""
    now = read_state(run, root, path)
    if now == original:
        return "restored"  # someone (or a previous cleanup) already put it back
    if now != left:
        return (f"conflict: {path} changed since the run left it (mode {now.mode} owner {now.uid}:{now.gid} "
                f"sha256 {now.sha256}); left alone")
    apply_state(run, root, path, original)
    if read_state(run, root, path) != original:
        return f"conflict: {path} did not read back as the original after restore"
    return "restored"
