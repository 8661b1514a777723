"""Restore of one changed node file from its record entry: the engine `chaoskirvis.ledger.restore` calls.

The entry (validated by `chaoskirvis.ledger.node_files`) is also checked against its technique: the
technique's change applied to the recorded original must give what the entry says the run intended, so
an entry can only ask to undo what that technique does to a file. The run's agent pod does the work
when it is still there and running; otherwise a new agent pod of the run is started on the node (and
removed afterwards). The file is put back only while it is what the run left, or a write of the run cut short
at the technique's default path (`nodes.restore.restore_file`);
a static pod manifest whose content is put back is followed by a bounded wait for the component's mirror
pod to be Running and Ready with its original config hash (`nodes.mirror`).
"""
from __future__ import annotations

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger.changes import ChangeResult
from chaoskirvis.ledger.node_files import NodeFileEntry, file_fields
from chaoskirvis.nodes.agent import HOST_ROOT
from chaoskirvis.nodes.mirror import STATIC_COMPONENTS, wait_component
from chaoskirvis.nodes.restore import identity, read_state, restore_file
from chaoskirvis.techniques.nodes import node_technique
from chaoskirvis.nodes.session import Agent, existing_agent, remove_agent, start_agent

__all__ = ["restore_node_file", "RESTORE_WITHIN_S"]

RESTORE_WITHIN_S = 180.0  # for the agent to run, and for a restarted component to be back


def restore_node_file(api: KubeAPI, entry: NodeFileEntry, within: float | None = None) -> ChangeResult:
    """Put the file of `entry` back; ``restored``, ``conflict`` (file left alone) or ``failed``; never raises.
    `within` bounds the agent's start and the component's return (default `RESTORE_WITHIN_S`)."""
    within = RESTORE_WITHIN_S if within is None else within
    data = entry.entry
    node, path, technique = data["node"], data["path"], data["technique"]
    try:
        change = node_technique(technique).node_change
        expected = change.after(entry.original)
    except (ActivityFailed, ValueError) as exc:
        return ChangeResult("failed", f"{entry}: its entry names technique {technique!r}, which cannot be "
                                      f"checked ({exc}); left alone")
    intended = data["intended"]
    if identity(expected) != (intended["mode"], intended["uid"], intended["gid"], intended["sha256"]):
        return ChangeResult("failed", f"{entry}: its entry is not what technique {technique} does to the recorded "
                                      "original; left alone")
    if not entry.has_content and entry.original.sha256 != entry.left.sha256:
        return ChangeResult("failed", f"{entry}: its content changed, but the entry holds no original content to "
                                      "put back; left alone")
    agent = existing_agent(api, entry.agent_ref, node, data["agent"]["image"], entry.run_id)
    started = None
    try:
        if agent is None:
            agent = started = start_agent(api, entry.run_id, technique, node, [path], entry.agent_ref.namespace,
                                          data["agent"]["image"], within)
        # what the change wrote, for a write cut short by a kill (`restore.cut_short`): only at one of the technique's
        # default paths (a layout's, `nodes.layout`), so a forged entry cannot fill an empty (or cut) file elsewhere
        # with the original it names
        written = expected.content if change.kind in ("flag", "config") and path in change.default_paths() else None
        result = _restore(api, agent, entry, change.component, within, written)
    except (ActivityFailed, ApiError, ValueError) as exc:
        result = ChangeResult("failed", f"{entry}: {exc}")
    removal = remove_agent(api, started) if started is not None else None
    if removal:
        return ChangeResult("failed", f"{result.detail}; and {removal}")
    return result


def _restore(api: KubeAPI, agent: Agent, entry: NodeFileEntry, component: str | None, within: float,
             written: bytes | None) -> ChangeResult:
    data, original, left = entry.entry, entry.original, entry.left
    waited: list[str] = []

    def settle() -> None:
        if component in STATIC_COMPONENTS and original.sha256 != left.sha256:  # the kubelet restarts it
            waited.append(wait_component(api, component, data["node"], data.get("mirror_hash"), within, back=True))

    verdict = restore_file(agent.run, HOST_ROOT, data["path"], original, left, settle, written)
    if verdict != "restored":
        current = read_state(agent.run, HOST_ROOT, data["path"])
        return ChangeResult("conflict", f"{entry}: {verdict.removeprefix('conflict: ')}; its record entry is kept: "
                                        "put it back yourself, then delete the entry (or the record)",
                            {"original": file_fields(original), "run_wrote": file_fields(left),
                             "current": file_fields(current)})
    return ChangeResult("restored", f"{entry}: put back (mode {original.mode}, owner {original.uid}:{original.gid}, "
                                    f"sha256 {original.sha256})" + "".join(f"; {w}" for w in waited))
