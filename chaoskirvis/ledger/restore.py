"""Find and remove what runs left in the cluster: the engine behind the rollback and `kirvis cleanup`.

Targets come from three places. The rollback of a run (`find_known`) reads by name what the run's state
says it wrote: the objects its record names and the record itself, no sweep. `kirvis cleanup` sweeps the
ownership labels over every kind a technique can create and follows the runs' records (which also name
objects a killed run intended to create) (`find_leftovers`); the sweep of expired leftovers before a run
follows the records only (`find_recorded`). Nothing is deleted unless it carries every ownership mark of
its run as we read it (`is_owned`: the three labels, the run id matched exactly, the name
``kirvis-<run id>-...``), and the delete is conditioned on the uid *and* resourceVersion we read, so an
object replaced or changed in between is not deleted: it is read again and judged again (at most
`MAX_TRIES` times). Independent deletes are sent concurrently (controllers first, with foreground
propagation, so that their pods are gone when they are), and an object is waited for only when the
delete's answer shows it still there (graceful termination, finalizers), within a bounded wait.

Record entries are data from the cluster: each is validated (`record_refs`) before any path is built
from it, and an invalid one is reported and never acted on; a record holding an invalid change or node-file
entry (which may be the only copy of an original) is kept for a person, and the run's own restore of it
fails, naming `kirvis cleanup --run-id`. Cluster-scoped objects (a ClusterRoleBinding)
are removed only for a selection naming their run, or with `Selection.cluster_scoped`; with namespaces
given, that means only those named by a record in one of them. A list or read that fails does not stop
the sweep: it is reported as a failure, and the records are then kept so a later cleanup can finish.

A record also names changes the run made to objects that exist (`chaoskirvis.ledger.changes`): those are
put back first, by name; a conflict (someone changed the object since) is reported with both versions and
keeps the record, as a failure does. A changed cluster-scoped object other than the record's own
Namespace is put back only for a selection naming its run, never by ``--all``/``--expired``.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple, TypeVar

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger.ownership import MANAGED_BY, MANAGED_BY_LABEL, RECORD_LABEL, RUN_ID_LABEL, is_expired, is_owned
from chaoskirvis.ledger.record import RECORD_SELECTOR, record_ref, record_refs
from chaoskirvis.ledger.refs import CONFIG_MAP, CRON_JOB, DAEMON_SET, DEPLOYMENT, JOB, SWEPT_KINDS, Kind, ObjectRef

if TYPE_CHECKING:
    from chaoskirvis.ledger.changes import Change
    from chaoskirvis.ledger.node_files import NodeFileEntry
    from chaoskirvis.ledger.state import RunState

__all__ = ["Selection", "Leftovers", "CleanupReport", "find_leftovers", "find_recorded", "find_known", "remove",
           "gone_by", "MAX_CONCURRENT", "MAX_TRIES"]

MAX_CONCURRENT = 8  # requests in flight at once (the client's pool keeps 8 connections per API server)
MAX_TRIES = 3  # deletes of one object answered 409 (changed since read), each after reading it again
_CONTROLLERS = (DEPLOYMENT, DAEMON_SET, CRON_JOB, JOB)
_T = TypeVar("_T")
_R = TypeVar("_R")


class Selection(NamedTuple):
    """Which runs to clean: one run id, or every run (optionally only the expired objects).

    `cluster_scoped` lets a selection of every run remove cluster-scoped objects too (a selection of one
    run always removes that run's own).
    """

    run_id: str | None = None
    expired_only: bool = False
    cluster_scoped: bool = False

    @property
    def label_selector(self) -> str:
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
        return f"{selector},{RUN_ID_LABEL}={self.run_id}" if self.run_id else selector

    @property
    def takes_cluster_scoped(self) -> bool:
        return self.run_id is not None or self.cluster_scoped

    def wants(self, obj: dict[str, Any]) -> bool:
        if not is_owned(obj, self.run_id):
            return False
        return not self.expired_only or is_expired(obj)


class Leftovers:
    """What of the selected runs is still in the cluster. (Plain classes, this and `CleanupReport`: a dataclass
    costs about half a millisecond at every `chaos run` start.)"""

    def __init__(self, objects: list[tuple[ObjectRef, dict[str, Any]]] | None = None,
                 records: list[tuple[ObjectRef, dict[str, Any]]] | None = None, not_ours: list[ObjectRef] | None = None,
                 invalid: list[str] | None = None, kept: list[str] | None = None, failed: list[str] | None = None,
                 changes: list[Change] | None = None, node_files: list[NodeFileEntry] | None = None):
        self.objects = [] if objects is None else objects
        self.records = [] if records is None else records
        self.not_ours = [] if not_ours is None else not_ours
        # Record entries refused before any path was built from them (why, one line each).
        self.invalid = [] if invalid is None else invalid
        # Objects of the selected runs this selection may not remove (cluster-scoped), and why.
        self.kept = [] if kept is None else kept
        # Lists and reads that failed: what could not be looked at.
        self.failed = [] if failed is None else failed
        # Changes the runs made to objects that exist, to put back (validated record entries).
        self.changes = [] if changes is None else changes
        # Files the runs changed on nodes, to put back through a node agent (validated record entries).
        self.node_files = [] if node_files is None else node_files


class CleanupReport:
    """What a removal did."""

    def __init__(self, removed: list[str] | None = None, already_gone: list[str] | None = None,
                 left_alone: list[str] | None = None, failed: list[str] | None = None,
                 records_removed: list[str] | None = None, restored: list[str] | None = None,
                 unchanged: list[str] | None = None, conflicts: list[dict[str, Any]] | None = None,
                 gone: set[str] | None = None):
        self.removed = [] if removed is None else removed
        self.already_gone = [] if already_gone is None else already_gone
        self.left_alone = [] if left_alone is None else left_alone
        self.failed = [] if failed is None else failed
        self.records_removed = [] if records_removed is None else records_removed
        # Changed objects put back as they were (with dry run: that would be).
        self.restored = [] if restored is None else restored
        # Changed objects where nothing of the run's change was left to put back.
        self.unchanged = [] if unchanged is None else unchanged
        # Changed objects someone else changed since: not restored (object, detail, versions); records kept.
        self.conflicts = [] if conflicts is None else conflicts
        # Paths the API server showed absent (a delete's answer, a read's 404): nothing more to ask of them.
        self.gone = set() if gone is None else gone

    def as_dict(self) -> dict[str, list[Any]]:
        return {
            "removed": self.removed, "already_gone": self.already_gone, "left_alone": self.left_alone,
            "failed": self.failed, "records_removed": self.records_removed, "restored": self.restored,
            "unchanged": self.unchanged, "conflicts": self.conflicts,
        }


def find_leftovers(api: KubeAPI, selection: Selection, namespaces: Iterable[str] | None = None,
                   kinds: Iterable[Kind] | None = None) -> Leftovers:
    """Everything of the selected runs that is still in the cluster, and what we will leave alone.

    With `namespaces`, only those namespaces are looked in (and cluster-scoped objects only through the
    records kept there). With `kinds`, the label sweep lists only those of `SWEPT_KINDS` (ConfigMaps, and
    the records and what they name, are always read). Never raises for a failed list or read: see
    `Leftovers.failed`.
    """
    leftovers = Leftovers()
    namespaces = None if namespaces is None else sorted(set(namespaces))
    seen: set[str] = set()
    # ConfigMaps a technique made (credentials placed in one): the run records, ConfigMaps with the same
    # marks, are left to `_add_recorded`.
    wanted = set(SWEPT_KINDS if kinds is None else kinds)
    swept = [(kind, selection.label_selector) for kind in SWEPT_KINDS if kind in wanted]
    swept.append((CONFIG_MAP, f"{selection.label_selector},!{RECORD_LABEL}"))
    for kind, selector in swept:
        if not kind.namespaced and not (selection.run_id or (selection.cluster_scoped and namespaces is None)):
            continue  # every run's cluster-scoped objects: only through the records of the namespaces
        for obj in _list(api, kind, selector, namespaces, leftovers.failed):
            ref = _ref_of(kind, obj)
            if ref.problem() is None and selection.wants(obj) and ref.path not in seen:
                seen.add(ref.path)
                leftovers.objects.append((ref, obj))
    _add_recorded(api, selection, namespaces, seen, leftovers)
    return leftovers


def find_recorded(api: KubeAPI, selection: Selection, namespaces: Iterable[str]) -> Leftovers:
    """What the records of the selected runs in `namespaces` name (one list of records per namespace, then
    a read per entry), without sweeping the other kinds. Never raises: see `Leftovers.failed`."""
    leftovers = Leftovers()
    _add_recorded(api, selection, sorted(set(namespaces)), set(), leftovers)
    return leftovers


def find_known(api: KubeAPI, state: RunState, *, read_records: bool = False) -> Leftovers:
    """What of this process's run may still be in the cluster, read by name from what its state says the
    run wrote: each object its record names (and not yet shown absent) and its record in each namespace.

    A record as the run last wrote it is taken as read (its delete is conditioned on that version, so a
    record someone changed since is read again then), unless `read_records`; a record whose write failed
    is read by name, and so is one holding change entries (a person may have removed an entry to settle
    a conflict). A change this process made is put back from the entry it wrote, never from the record
    as read. Never raises: see `Leftovers.failed`.
    """
    run_id = state.run_id
    objects, homes = state.unconfirmed()
    leftovers = Leftovers()
    seen = {ref.path for ref in objects}
    for ref, (obj, error) in zip(objects, _concurrently(lambda ref: _read(api, ref), objects)):
        if error:
            leftovers.failed.append(error)
        elif obj is None:
            state.add_gone(ref.path)
        elif is_owned(obj, run_id):
            leftovers.objects.append((ref, obj))
        else:
            leftovers.not_ours.append(ref)
    for home in homes:
        ref = record_ref(run_id, home)
        with state.lock:
            # a record naming changes is read again: a person may have settled a conflict by editing it
            changed = home in state.change_homes
            written = None if read_records or changed else state.records.get(home)
        record, error = (written, None) if written is not None else _read(api, ref)
        if error:
            leftovers.failed.append(error)
        elif record is None:
            state.add_gone(ref.path)
        elif not is_owned(record, run_id):
            leftovers.not_ours.append(ref)
        elif written is not None:
            leftovers.records.append((ref, record))
        else:
            kept, invalid = len(leftovers.kept), len(leftovers.invalid)
            _follow_record(api, Selection(run_id=run_id), record, seen, leftovers)
            if len(leftovers.kept) > kept:  # the run's own record kept (an entry it cannot validate): not restored
                leftovers.failed.extend([*leftovers.invalid[invalid:], *leftovers.kept[kept:]])
                del leftovers.invalid[invalid:], leftovers.kept[kept:]
    with state.lock:  # what this process wrote, not what the record says now (anyone may edit a ConfigMap)
        leftovers.changes = [change._replace(entry=state.changes.get(change.ref.path, change.entry))
                             for change in leftovers.changes]
    return leftovers


def _add_recorded(api: KubeAPI, selection: Selection, namespaces: list[str] | None, seen: set[str],
                  leftovers: Leftovers) -> None:
    record_selector = f"{selection.label_selector},{RECORD_SELECTOR}"
    for record in _list(api, CONFIG_MAP, record_selector, namespaces, leftovers.failed):
        if is_owned(record, selection.run_id) and _ref_of(CONFIG_MAP, record).problem() is None:
            _follow_record(api, selection, record, seen, leftovers)


def _follow_record(
    api: KubeAPI, selection: Selection, record: dict[str, Any], seen: set[str], leftovers: Leftovers,
) -> None:
    """Add what `record` names (each read by name); the record itself too, unless something it names must stay."""
    from chaoskirvis.ledger.changes import record_changes  # read only with a record: not at every start
    from chaoskirvis.ledger.node_files import node_file_entries

    run_id = record["metadata"]["labels"][RUN_ID_LABEL]
    refs, invalid = record_refs(record, run_id)
    changes, invalid_changes = record_changes(record, run_id)
    node_files, invalid_node_files = node_file_entries(record, run_id)
    leftovers.invalid.extend([*invalid, *invalid_changes, *invalid_node_files])
    wanted = [ref for ref in refs if ref.path not in seen]
    # a change or node file whose entry is refused: the entry may hold the only copy of an original, so the
    # record stays for a person
    complete = not invalid_changes and not invalid_node_files
    if not complete:
        leftovers.kept.append(
            f"{_ref_of(CONFIG_MAP, record)}, the record of run {run_id}: it holds an entry that cannot be validated, "
            "perhaps the only copy of what the run changed, so it is kept: mend or remove that entry, then run "
            f"`kirvis cleanup --run-id {run_id}`")
    for entry in node_files:
        if _node_file_key(entry) in seen:
            continue
        if selection.run_id is None:
            leftovers.kept.append(f"the {entry} changed by run {run_id}: only `kirvis cleanup --run-id {run_id}` "
                                  "puts it back (its record stays)")
            complete = False
        else:
            seen.add(_node_file_key(entry))
            leftovers.node_files.append(entry)
    for change in changes:
        if change.ref.path in seen:
            continue
        if not change.confined and selection.run_id is None:
            leftovers.kept.append(f"the change of run {run_id} to {change.ref}: cluster-scoped, so only "
                                  f"`kirvis cleanup --run-id {run_id}` puts it back (its record stays)")
            complete = False
        elif selection.expired_only and not is_expired(record):
            complete = False
        else:
            seen.add(change.ref.path)
            leftovers.changes.append(change)
    for ref, (obj, error) in zip(wanted, _concurrently(lambda ref: _read(api, ref), wanted)):
        if error:
            leftovers.failed.append(error)
            complete = False
        elif obj is None:
            continue
        elif not is_owned(obj, run_id):
            leftovers.not_ours.append(ref)
        elif not ref.kind.namespaced and not selection.takes_cluster_scoped:
            leftovers.kept.append(
                f"{ref} of run {run_id}: cluster-scoped, so only `kirvis cleanup --run-id {run_id}` or "
                "--cluster-scoped removes it (its record stays)"
            )
            complete = False
        elif selection.expired_only and not is_expired(obj):
            complete = False
        else:
            seen.add(ref.path)
            leftovers.objects.append((ref, obj))
    if complete and (not selection.expired_only or is_expired(record)):
        leftovers.records.append((_ref_of(CONFIG_MAP, record), record))


def remove(
    api: KubeAPI, leftovers: Leftovers, *, dry_run: bool = False, wait_seconds: float = 60.0,
    selection: Selection | None = None,
) -> CleanupReport:
    """Delete the leftovers (objects first, controllers before the rest, then records), each on the version
    it was read at; an object changed since is read and judged again.

    A record is removed only when every object was removed and nothing failed, so a failed restore can
    be retried (by the run, or by `kirvis cleanup` from any machine). A record changed since it was read
    may name more: with `selection` those are followed and removed first (then the record), without it
    the record is kept and reported.
    """
    report = CleanupReport(
        left_alone=[*(str(ref) for ref in leftovers.not_ours), *leftovers.invalid, *leftovers.kept],
        failed=list(leftovers.failed),
    )
    handled = {ref.path for ref in leftovers.not_ours}
    _restore_changes(api, leftovers.changes, report, dry_run, handled)
    _restore_node_files(api, leftovers.node_files, report, dry_run, handled)
    pending = _remove_all(api, [o for o in leftovers.objects if o[0].kind in _CONTROLLERS], report, dry_run, handled)
    pending += _remove_all(api, [o for o in leftovers.objects if o[0].kind not in _CONTROLLERS], report, dry_run,
                           handled)
    if not dry_run:
        _wait_until_gone(api, pending, wait_seconds, report)
    if report.failed or report.conflicts:
        return report
    for ref, record in leftovers.records:
        _remove_record(api, ref, record, report, dry_run, wait_seconds, handled, selection)
    return report


def _remove_record(
    api: KubeAPI, ref: ObjectRef, record: dict[str, Any], report: CleanupReport, dry_run: bool,
    wait_seconds: float, handled: set[str], selection: Selection | None,
) -> None:
    for _ in range(MAX_TRIES):
        outcome, detail, current = _remove_one(api, ref, record, dry_run, may_delete=_names_only(handled))
        if outcome != "changed":
            _note(report, ref, outcome, detail, dry_run)
            if outcome in ("removed", "terminating"):
                report.records_removed.append(str(ref))
            return
        if selection is None:
            break
        more = Leftovers()
        _follow_record(api, selection, current, set(handled), more)
        done = remove(api, Leftovers(objects=more.objects, not_ours=more.not_ours, invalid=more.invalid,
                                     kept=more.kept, failed=more.failed, changes=more.changes,
                                     node_files=more.node_files),
                      dry_run=dry_run, wait_seconds=wait_seconds)
        _merge(report, done)
        handled |= {r.path for r, _ in more.objects} | {r.path for r in more.not_ours} \
            | {c.ref.path for c in more.changes} | {_node_file_key(e) for e in more.node_files}
        if done.failed or done.conflicts or more.kept or not more.records:
            return
        record = current
    report.failed.append(f"{ref}: it changed while it was removed, and names what was not removed: kept, so a "
                         "later cleanup finishes it")


def _names_only(handled: set[str]) -> Callable[[dict[str, Any]], bool]:
    """A record read again may be deleted only if every object it names was dealt with already."""
    def check(record: dict[str, Any]) -> bool:
        from chaoskirvis.ledger.changes import record_changes  # a record read again: rare

        run_id = ((record.get("metadata") or {}).get("labels") or {}).get(RUN_ID_LABEL) or ""
        refs, _ = record_refs(record, run_id)
        changes, _ = record_changes(record, run_id)
        return all(r.path in handled for r in [*refs, *(c.ref for c in changes)])
    return check


def _restore_changes(api: KubeAPI, changes: list[Change], report: CleanupReport, dry_run: bool,
                     handled: set[str]) -> None:
    """Put back each change (concurrently): restored, unchanged, a conflict or a failure, into `report`."""
    if not changes:
        return
    from chaoskirvis.ledger.changes import restore_change  # guardrail techniques only

    for change, result in zip(changes, _concurrently(lambda c: restore_change(api, c, dry_run), changes)):
        if result.outcome == "restored":
            report.restored.append(str(change.ref))
        elif result.outcome == "unchanged":
            report.unchanged.append(str(change.ref))
        elif result.outcome == "conflict":
            report.conflicts.append({"object": str(change.ref), "detail": result.detail, **(result.versions or {})})
        else:
            report.failed.append(result.detail)
        if result.outcome in ("restored", "unchanged"):
            handled.add(change.ref.path)


def _node_file_key(entry: NodeFileEntry) -> str:
    """How a node-file entry is told apart from objects in the `seen` and `handled` sets (not a REST path)."""
    return f"nodefile:{entry.home}:{entry.key}"


def _restore_node_files(api: KubeAPI, entries: list[NodeFileEntry], report: CleanupReport, dry_run: bool,
                        handled: set[str]) -> None:
    """Put back each changed node file (concurrently: one agent per file); a dry run starts no agent."""
    if not entries:
        return
    if dry_run:
        report.left_alone.extend(f"{entry}: a dry run starts no node agent, so it is not checked" for entry in entries)
        return
    from chaoskirvis.nodes.restoring import restore_node_file  # node techniques only: not at every start

    for entry, result in zip(entries, _concurrently(lambda e: restore_node_file(api, e), entries)):
        if result.outcome == "restored":
            report.restored.append(result.detail)
            handled.add(_node_file_key(entry))
        elif result.outcome == "conflict":
            report.conflicts.append({"object": str(entry), "detail": result.detail, **(result.versions or {})})
        else:
            report.failed.append(result.detail)


def _merge(report: CleanupReport, done: CleanupReport) -> None:
    for key, values in done.as_dict().items():
        getattr(report, key).extend(values)
    report.gone |= done.gone


def _remove_all(api: KubeAPI, objects: list[tuple[ObjectRef, dict[str, Any]]], report: CleanupReport,
                dry_run: bool, handled: set[str]) -> list[ObjectRef]:
    """Delete `objects` concurrently; the report gets each result; returns those still terminating."""
    pending = []
    results = _concurrently(lambda item: _remove_one(api, item[0], item[1], dry_run), objects)
    for (ref, _), (outcome, detail, _current) in zip(objects, results):
        handled.add(ref.path)
        _note(report, ref, outcome, detail, dry_run)
        if outcome in ("removed", "terminating"):
            report.removed.append(str(ref))
        if outcome == "terminating":
            pending.append(ref)
    return pending


def _note(report: CleanupReport, ref: ObjectRef, outcome: str, detail: str | None, dry_run: bool) -> None:
    if outcome == "already_gone" or (outcome == "removed" and not dry_run):
        report.gone.add(ref.path)
    if outcome == "already_gone":
        report.already_gone.append(str(ref))
    elif outcome == "left_alone":
        report.left_alone.append(detail or str(ref))
    elif outcome == "failed":
        report.failed.append(detail or str(ref))


def _remove_one(
    api: KubeAPI, ref: ObjectRef, obj: dict[str, Any], dry_run: bool,
    may_delete: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[str, str | None, dict[str, Any] | None]:
    """Delete `ref` as read in `obj` if it carries its run's marks: (outcome, detail, the object read last).

    Outcomes: ``removed`` (the answer shows it gone; with `dry_run`, it would be), ``terminating`` (deleted,
    still there), ``already_gone``, ``left_alone``, ``failed``, and ``changed`` (read again after a 409,
    still ours, but `may_delete` refuses the new version).
    """
    current: dict[str, Any] | None = obj
    for attempt in range(MAX_TRIES):
        if current is None:
            return "already_gone", None, None
        run_id = _run_of(current)
        if not run_id or not is_owned(current, run_id):
            return "left_alone", None, current
        if attempt and may_delete is not None and not may_delete(current):
            return "changed", None, current
        try:
            answer = api.request("DELETE", ref.path, body=_delete_options(ref, current),
                                 query={"dryRun": "All" if dry_run else None})
        except ApiError as exc:
            if exc.status == 404:
                return "already_gone", None, None
            if exc.status != 409:
                return "failed", f"{ref}: {exc.status} {exc.message}", current
            current, error = _read(api, ref)  # changed or replaced since it was read: judge it again
            if error:
                return "failed", error, None
            continue
        except ActivityFailed as exc:  # unreachable: whether it was deleted is unknown, so it is not removed
            return "failed", f"{ref}: {exc}", current
        return ("removed" if dry_run or gone_by(answer.body) else "terminating"), None, current
    return "failed", f"{ref}: it changed {MAX_TRIES} times while it was being deleted", current


def _delete_options(ref: ObjectRef, obj: dict[str, Any]) -> dict[str, Any]:
    """Foreground for a controller (it is gone only once its pods are), and the version read as precondition."""
    metadata = obj.get("metadata") or {}
    body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                            "propagationPolicy": "Foreground" if ref.kind in _CONTROLLERS else "Background"}
    preconditions = {key: metadata[key] for key in ("uid", "resourceVersion") if metadata.get(key)}
    if preconditions:
        body["preconditions"] = preconditions
    return body


def gone_by(answer: dict[str, Any]) -> bool:
    """Whether a delete's answer shows the object removed from storage, as the generic registry answers
    (k8s.io/apiserver registry/generic/registry/store.go, Delete): a Status Success when it was deleted
    at once and the kind returns no deleted object; else the object: still stored while it carries
    finalizers or waits out a grace period (``deletionTimestamp`` set, ``deletionGracePeriodSeconds`` > 0),
    deleted otherwise."""
    if answer.get("kind") == "Status":
        return answer.get("status") == "Success"
    metadata = answer.get("metadata") or {}
    if metadata.get("finalizers"):
        return False
    return not metadata.get("deletionTimestamp") or metadata.get("deletionGracePeriodSeconds") == 0


def _wait_until_gone(api: KubeAPI, refs: list[ObjectRef], wait_seconds: float, report: CleanupReport) -> None:
    """Wait, at most `wait_seconds`, for deleted objects to be gone (finalizers, graceful termination)."""
    deadline = time.monotonic() + wait_seconds
    pending = list(refs)
    unreadable: list[str] = []
    while pending:
        still = []
        for ref, (obj, error) in zip(pending, _concurrently(lambda ref: _read(api, ref), pending)):
            if error:
                still.append(ref)
                unreadable = [*unreadable[-5:], error]
            elif obj is not None:
                still.append(ref)
            else:
                report.gone.add(ref.path)
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    why = f" (last read: {unreadable[-1]})" if unreadable else ""
    report.failed.extend(f"{ref}: still terminating after {wait_seconds:g}s{why}" for ref in pending)


def _concurrently(work: Callable[[_T], _R], items: list[_T]) -> list[_R]:
    """`work` over `items`, at most `MAX_CONCURRENT` at once, results in order (`work` must not raise)."""
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT, len(items))) as pool:
        return list(pool.map(work, items))


def _run_of(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(RUN_ID_LABEL)


def _list(
    api: KubeAPI, kind: Kind, selector: str, namespaces: list[str] | None, failures: list[str],
) -> list[dict[str, Any]]:
    """The labelled objects of `kind` (across namespaces, or in each of `namespaces`); failures noted."""
    if namespaces is None or not kind.namespaced:
        try:
            return api.get(kind.collection_path(), labelSelector=selector).get("items", [])
        except ApiError as exc:
            failures.append(
                f"cannot list {kind.plural} across namespaces to find what chaoskirvis left "
                f"({exc.status} {exc.message}); grant list on {kind.plural} cluster-wide or name the namespaces"
            )
        except ActivityFailed as exc:
            failures.append(f"cannot list {kind.plural} across namespaces: {exc}")
        return []
    items: list[dict[str, Any]] = []
    for namespace in namespaces:
        try:
            items.extend(api.get(kind.collection_path(namespace), labelSelector=selector).get("items", []))
        except ApiError as exc:
            if exc.status != 404:
                failures.append(f"cannot list {kind.plural} in namespace {namespace} ({exc.status} {exc.message})")
        except ActivityFailed as exc:
            failures.append(f"cannot list {kind.plural} in namespace {namespace}: {exc}")
    return items


def _read(api: KubeAPI, ref: ObjectRef) -> tuple[dict[str, Any] | None, str | None]:
    """`ref` as stored (None when absent), or why it could not be read."""
    try:
        return api.get(ref.path), None
    except ApiError as exc:
        if exc.status == 404:
            return None, None
        return None, f"cannot read {ref} ({exc.status} {exc.message})"
    except ActivityFailed as exc:
        return None, f"cannot read {ref}: {exc}"


def _ref_of(kind: Kind, obj: dict[str, Any]) -> ObjectRef:
    metadata = obj.get("metadata") or {}
    return ObjectRef(kind, metadata.get("namespace") if kind.namespaced else None, str(metadata.get("name") or ""))
