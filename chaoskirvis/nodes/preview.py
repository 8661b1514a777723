"""What a dry run shows: the exact change to one node file, as a unified diff plus mode/owner changes."""
from __future__ import annotations

import difflib

from chaoskirvis.nodes.agent_commands import FileState

__all__ = ["describe_change"]


def describe_change(path: str, before: FileState, after: FileState) -> str:
    """A unified diff of the content and `mode a -> b` / `owner a -> b` lines; empty when nothing changes."""
    lines = []
    if before.mode != after.mode:
        lines.append(f"mode {before.mode} -> {after.mode} {path}\n")
    if (before.uid, before.gid) != (after.uid, after.gid):
        lines.append(f"owner {before.uid}:{before.gid} -> {after.uid}:{after.gid} {path}\n")
    lines += difflib.unified_diff(before.content.decode(errors="replace").splitlines(keepends=True),
                                  after.content.decode(errors="replace").splitlines(keepends=True),
                                  fromfile=f"a{path}", tofile=f"b{path}")
    return "".join(lines)
