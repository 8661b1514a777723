"""Put a node file back as it was, only if it is still what the run left (or a write of the run cut short by a
kill, `cut_short`); otherwise leave it and say so.

Files are compared by mode, owner and sha256 (`identity`): the run's record keeps the original's content
but only the checksum of what the run left.
"""
from __future__ import annotations

from typing import Callable

from chaoskirvis.nodes import agent_commands as actions
from chaoskirvis.nodes.agent_commands import FileState

__all__ = ["Runner", "identity", "read_state", "apply_state", "cut_short", "restore_file"]

# Runs one fixed argv with stdin (locally, or through the agent's exec) and returns its stdout.
Runner = Callable[[list[str], bytes], str]


def identity(state: FileState) -> tuple[str, int, int, str]:
    """What two states of a file are compared by: mode, owner, group and content checksum."""
    return state.mode, state.uid, state.gid, state.sha256


def read_state(run: Runner, root: str, path: str) -> FileState:
    """The file's mode, owner, content and checksum, through the agent's snapshot command."""
    return actions.parse_snapshot(run(actions.snapshot_command(root, path), b""))


def apply_state(run: Runner, root: str, path: str, state: FileState, current: FileState | None = None) -> None:
    """Write the content in place, then mode and owner (the write keeps the inode, so order is safe); with
    `current` (the file as read), only what differs from it is sent."""
    if current is None or current.sha256 != state.sha256:
        run(actions.write_command(root, path), state.content)
    if current is None or current.mode != state.mode:
        run(actions.chmod_command(root, path, state.mode), b"")
    if current is None or (current.uid, current.gid) != (state.uid, state.gid):
        run(actions.chown_command(root, path, state.uid, state.gid), b"")


def cut_short(now: FileState, original: FileState, written: bytes | None) -> bool:
    """Whether `now` is a write of the run cut short: the original's mode and owner, and a proper prefix of the
    content the change wrote (`written`) or of the original a restore wrote back, either empty or ending
    mid-line. The write's shell truncates the file before its stdin arrives (`cat > "$1"`), so an agent, runner
    or cleanup killed while sending leaves such a file. A prefix ending with a whole line is what a person
    deleting the last lines leaves: that stays a conflict (as does a cut that happened to end at a line end)."""
    if written is None or (now.mode, now.uid, now.gid) != (original.mode, original.uid, original.gid):
        return False
    if now.content.endswith(b"\n"):
        return False
    return any(len(now.content) < len(full) and full.startswith(now.content) for full in (written, original.content))


def restore_file(run: Runner, root: str, path: str, original: FileState, left: FileState,
                 settle: Callable[[], None] | None = None, written: bytes | None = None) -> str:
    """"restored" when the file is still exactly what the run left, or a write of the run cut short
    (`cut_short`, given the content the change wrote as `written`); "conflict: ..." (file untouched) otherwise.

    `settle` runs between the write and the read-back (waiting for a component the write restarts), and
    when the file is the original already."""
    now = read_state(run, root, path)
    if identity(now) == identity(original):
        if settle is not None:  # a cleanup killed after its write: the component may still be restarting
            settle()
        return "restored"  # someone (or a previous cleanup) already put it back
    if identity(now) != identity(left) and not cut_short(now, original, written):
        return (f"conflict: {path} changed since the run left it (mode {now.mode} owner {now.uid}:{now.gid} "
                f"sha256 {now.sha256}); left alone")
    apply_state(run, root, path, original, current=now)
    if settle is not None:
        settle()
    if identity(read_state(run, root, path)) != identity(original):
        return f"conflict: {path} did not read back as the original after restore"
    return "restored"
