"""Changes to objects that exist: saved before they are made, put back exactly, never over someone else's.

A guardrail technique weakens what is there (a namespace's Pod Security label, a NetworkPolicy, a
ValidatingAdmissionPolicyBinding, a ValidatingWebhookConfiguration) instead of creating something. Before its first patch or delete of an
object, the run writes an entry into its record (the run's ConfigMap, `chaoskirvis.ledger.record`) holding
the whole object as read (``original``, with its uid and resourceVersion) and, for a patch, the object as the
run is about to write it (``intended``, which carries the mark annotation `CHANGED_BY_ANNOTATION` with the
run id, set by the same patch as the change). The entry's state is ``changing`` or ``deleting`` until the
API server answered; then ``changed`` (with the resourceVersion the patch got) or ``deleted``. A run killed
with SIGKILL at any point leaves an entry `kirvis cleanup --run-id` can act on from another process. A
change the API server refused is withdrawn (`withdraw_change`: the entry as it was before, or none).

Restore (`restore_change`), read by name, never by a label sweep:

- a patched object is put back (PUT of the original, on the version read) only while it still carries the
  run's mark and is what the run wrote (the resourceVersion the patch got, or the same content as
  ``intended``). Without the mark: an entry never confirmed (``changing``) was never applied (the mark
  and the change are one patch), so there is nothing to do; a confirmed one was changed by someone since:
  a conflict. Marked but changed since (another resourceVersion and other content), gone, or another uid:
  a conflict (gone with an unconfirmed entry: nothing to do).
- a deleted object is recreated from the original (server-set fields stripped) by create only, never by
  an update: an object found there already, or a 409, is a conflict unless it is the original again
  (same uid: the delete never happened; or the same content: already restored).

A conflict is reported with both versions (what the run wrote, what is there now) and the entry stays,
so the record stays and `kirvis cleanup` shows it again until a person decides (and removes the entry).

An entry is data from the cluster, validated before anything is built from it (`record_changes`): a
guardrail kind only; the original's and intended's apiVersion, kind, name and namespace equal to the
entry's; a NetworkPolicy only in the record's own namespace; a Namespace only the record's namespace
itself; any other cluster-scoped kind (a binding, a webhook configuration) restored only for a selection
naming its run (`Change.confined`, applied by `chaoskirvis.ledger.restore`); no ownerReferences,
finalizers or deletionTimestamp in the original (which a recreate would take over); a patched entry's
``intended`` carrying the run's mark. What trust remains is said in docs/guardrails.md.
"""
from __future__ import annotations

import copy
import datetime as dt
from typing import TYPE_CHECKING, Any, NamedTuple

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger import record
from chaoskirvis.ledger.record import CHANGE_STATES
from chaoskirvis.ledger.refs import GUARDRAIL_KINDS, NAMESPACE, ObjectRef, name_problem, namespace_problem

if TYPE_CHECKING:
    from chaoskirvis.ledger.state import RunState

__all__ = ["CHANGED_BY_ANNOTATION", "CHANGE_STATES", "PATCH_STATES", "DELETE_STATES", "Change", "ChangeResult",
           "content", "merge_patch", "record_change", "confirm_change", "withdraw_change", "record_changes",
           "restore_change"]

CHANGED_BY_ANNOTATION = "chaoskirvis.io/changed-by-run"
PATCH_STATES = CHANGE_STATES[:2]  # changing, changed
DELETE_STATES = CHANGE_STATES[2:]  # deleting, deleted
MAX_TRIES = 3  # restores answered 409 (changed since read), each after reading it again
# Set by the API server, never by a client: not part of what a change or a restore compares or sends.
_SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
               "deletionTimestamp", "deletionGracePeriodSeconds")


class Change(NamedTuple):
    """One validated change entry of run `run_id`'s record."""

    ref: ObjectRef
    entry: dict[str, Any]
    run_id: str

    @property
    def deletes(self) -> bool:
        return self.entry["state"] in DELETE_STATES

    @property
    def confined(self) -> bool:
        """Whether the entry can only name an object of its record's own namespace (a NetworkPolicy in it,
        or the Namespace itself); a cluster-scoped binding or webhook configuration could be named from any."""
        return self.ref.kind.namespaced or self.ref.kind == NAMESPACE


class ChangeResult(NamedTuple):
    """What restore did: ``restored``, ``unchanged`` (nothing of the run's there to put back), ``conflict``
    (with `versions`: what the run wrote and what is there now) or ``failed`` (with why)."""

    outcome: str
    detail: str
    versions: dict[str, Any] | None = None


def content(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """`obj` without what only the API server sets (uid, resourceVersion, generation, timestamps,
    managedFields) and without its status: what a client wrote, and what a restore must put back."""
    if obj is None:
        return None
    kept = {key: value for key, value in obj.items() if key != "status"}
    kept["metadata"] = {key: value for key, value in (obj.get("metadata") or {}).items() if key not in _SERVER_SET}
    return kept


def merge_patch(before: Any, after: Any) -> Any:
    """The JSON merge patch (RFC 7386) taking `before` to `after`: changed keys, removed ones as null, lists whole."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return copy.deepcopy(after)
    patch: dict[str, Any] = {key: None for key in before if key not in after}
    for key, value in after.items():
        if key not in before:
            patch[key] = copy.deepcopy(value)
        elif before[key] != value:
            patch[key] = merge_patch(before[key], value) if isinstance(value, dict) else copy.deepcopy(value)
    return patch


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_change(
    api: KubeAPI, state: RunState, ref: ObjectRef, original: dict[str, Any], intended: dict[str, Any] | None,
    configuration: Configuration | None = None, **details: Any,
) -> None:
    """Write, before the change, the entry for changing `ref` (from `original` to `intended`; None: delete).

    The first change of an object in this run keeps its original: a later one only updates what the run
    intends (and the resourceVersion its last write got). Raises `ApiError`/`ActivityFailed` when the entry
    may not be stored: then no change may be made.
    """
    with state.lock:
        earlier = state.changes.get(ref.path)
    entry = {
        "apiVersion": ref.kind.api_version, "plural": ref.kind.plural, "kind": ref.kind.kind,
        "namespace": ref.namespace, "name": ref.name, "state": "deleting" if intended is None else "changing",
        "at": _now(), **details, "original": earlier["original"] if earlier else original,
    }
    if intended is not None:
        entry["intended"] = intended
    if earlier and earlier.get("written_resource_version"):
        entry["written_resource_version"] = earlier["written_resource_version"]
    with state.lock:
        state.change_homes.add(ref.record_namespace)
    record.write_entry(api, state, ref, entry, configuration)
    with state.lock:
        state.changes[ref.path] = entry


def confirm_change(api: KubeAPI, state: RunState, ref: ObjectRef, answer: dict[str, Any] | None,
                   configuration: Configuration | None = None) -> bool:
    """After the API server applied the change: the entry's state ``changed`` (with the resourceVersion of
    `answer`, the object the patch stored) or ``deleted``. False when that write failed: the entry written
    before still lets restore judge the object by its content, so the change is not undone for it."""
    with state.lock:
        entry = dict(state.changes[ref.path])
    if entry["state"] == "deleting":
        entry["state"] = "deleted"
    else:
        entry["state"] = "changed"
        entry["written_resource_version"] = ((answer or {}).get("metadata") or {}).get("resourceVersion")
    entry["at"] = _now()
    try:
        record.write_entry(api, state, ref, entry, configuration)
    except (ApiError, ActivityFailed):
        return False
    with state.lock:
        state.changes[ref.path] = entry
    return True


def withdraw_change(api: KubeAPI, state: RunState, ref: ObjectRef, earlier: dict[str, Any] | None,
                    configuration: Configuration | None = None) -> None:
    """The change was refused (blocked): put the entry back as it was before `record_change` (`earlier`, or
    none), so neither this run's restore nor a later cleanup acts on a change that never happened. A failed
    write leaves the unconfirmed entry, which restore judges by the object (see the module docstring)."""
    try:
        if earlier is None:
            record.write_entry(api, state, ref, None, configuration)
        else:
            record.write_entry(api, state, ref, earlier, configuration)
    except (ApiError, ActivityFailed):
        return
    with state.lock:
        if earlier is None:
            state.changes.pop(ref.path, None)
        else:
            state.changes[ref.path] = earlier


def record_changes(rec: dict[str, Any], run_id: str) -> tuple[list[Change], list[str]]:
    """The change entries of run `run_id`'s record `rec`, validated; and a line per invalid one (never acted on)."""
    changes: list[Change] = []
    invalid: list[str] = []
    for key, entry, home, where in record.entries_in_states(rec, CHANGE_STATES):
        ref, problem = _change_ref(entry, home, run_id)
        if problem:
            invalid.append(f"invalid change entry {key!r} of {where}: {problem}")
        elif key != ref.key:
            invalid.append(f"invalid change entry {key!r} of {where}: its key does not name {ref}")
        else:
            changes.append(Change(ref, entry, run_id))
    return changes, invalid


def _change_ref(entry: dict[str, Any], home: Any, run_id: str) -> tuple[ObjectRef | None, str | None]:
    kind = next((k for k in GUARDRAIL_KINDS
                 if k.plural == entry.get("plural") and k.api_version == entry.get("apiVersion")
                 and k.kind == entry.get("kind")), None)
    if kind is None:
        return None, (f"kind {entry.get('apiVersion')!r}/{entry.get('plural')!r} is not one a guardrail technique "
                      "changes")
    if namespace_problem(home):
        return None, f"the record's {namespace_problem(home)}"
    namespace, name = entry.get("namespace"), entry.get("name")
    if kind.namespaced and namespace != home:
        return None, f"it names namespace {namespace!r}, but a record may only name objects in its own namespace {home}"
    if not kind.namespaced and namespace is not None:
        return None, f"{kind.kind} is cluster-scoped, yet the entry names namespace {namespace!r}"
    if name_problem(kind, name):
        return None, name_problem(kind, name)
    if kind == NAMESPACE and name != home:
        return None, f"a change of namespace {name!r} may only be recorded in that namespace's own record, not {home}'s"
    ref = ObjectRef(kind, namespace if kind.namespaced else None, name, home=home)
    problem = _object_problem(entry.get("original"), ref, "original")
    if problem:
        return None, problem
    if entry["state"] in PATCH_STATES:
        intended = entry.get("intended")
        problem = _object_problem(intended, ref, "intended", server_set=False)
        if problem:
            return None, problem
        if ((intended.get("metadata") or {}).get("annotations") or {}).get(CHANGED_BY_ANNOTATION) != run_id:
            return None, f"what the run intended does not carry its mark {CHANGED_BY_ANNOTATION}={run_id}"
        if intended["metadata"].get("uid") not in (None, entry["original"]["metadata"]["uid"]):
            return None, "what the run intended names another uid than the original"
    if "written_resource_version" in entry and not isinstance(entry["written_resource_version"], (str, type(None))):
        return None, "written_resource_version is not a string"
    return ref, None


def _object_problem(obj: Any, ref: ObjectRef, what: str, server_set: bool = True) -> str | None:
    """Why `obj` (the entry's original or intended object) is not an object of `ref` fit to restore from."""
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        return f"its {what} is not an object"
    metadata = obj["metadata"]
    if obj.get("apiVersion") != ref.kind.api_version or obj.get("kind") != ref.kind.kind:
        return f"its {what} is a {obj.get('apiVersion')}/{obj.get('kind')}, not the entry's {ref.kind.kind}"
    if metadata.get("name") != ref.name or metadata.get("namespace") != ref.namespace:
        return f"its {what} names {metadata.get('namespace')}/{metadata.get('name')}, not the entry's object"
    for field in ("ownerReferences", "finalizers", "deletionTimestamp"):
        if metadata.get(field):
            return f"its {what} carries metadata.{field}, which a restore never takes from a record"
    if server_set and not all(isinstance(metadata.get(f), str) and metadata.get(f) for f in ("uid", "resourceVersion")):
        return f"its {what} lacks the uid and resourceVersion of an object as read"
    if not isinstance(metadata.get("labels") or {}, dict) or not isinstance(metadata.get("annotations") or {}, dict):
        return f"its {what}'s labels or annotations are not maps"
    return None


def restore_change(api: KubeAPI, change: Change, dry_run: bool = False) -> ChangeResult:
    """Put back what `change` recorded, as the module docstring says; never raises for the API's answers."""
    for _ in range(MAX_TRIES):
        try:
            current = _read(api, change.ref)
            result = (_recreate if change.deletes else _put_back)(api, change, current, dry_run)
        except ApiError as exc:
            if exc.status == 409:
                continue  # changed between our read and our write: read and judge it again
            return ChangeResult("failed", f"{change.ref}: {exc.status} {exc.reason or ''}: {exc.message}")
        except ActivityFailed as exc:
            return ChangeResult("failed", f"{change.ref}: {exc}")
        return result
    return ChangeResult("failed", f"{change.ref}: it changed {MAX_TRIES} times while it was being restored")


def _read(api: KubeAPI, ref: ObjectRef) -> dict[str, Any] | None:
    try:
        return api.get(ref.path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _conflict(change: Change, why: str, wrote: Any, current: dict[str, Any] | None) -> ChangeResult:
    return ChangeResult("conflict", f"{change.ref}: {why}; not restored, its record entry is kept: compare the "
                        "versions and put it back yourself, then delete the entry (or the record)",
                        {"run_wrote": wrote, "current": content(current),
                         "original": content(change.entry["original"])})


def _put_back(api: KubeAPI, change: Change, current: dict[str, Any] | None, dry_run: bool) -> ChangeResult:
    entry, original = change.entry, change.entry["original"]
    intended = entry["intended"]
    if current is None:
        if entry["state"] == "changing":
            return ChangeResult("unchanged", f"{change.ref}: it is gone, and the run's change was never confirmed: "
                                             "nothing to restore")
        return _conflict(change, "it was deleted since the run changed it", content(intended), None)
    metadata = current.get("metadata") or {}
    if metadata.get("uid") != original["metadata"]["uid"]:
        return _conflict(change, "it was deleted and created again since the run changed it", content(intended),
                         current)
    if (metadata.get("annotations") or {}).get(CHANGED_BY_ANNOTATION) != change.run_id:
        if entry["state"] == "changing" or content(current) == content(original):
            return ChangeResult("unchanged", f"{change.ref}: the run's change is not there (never applied, or "
                                             "already put back): nothing to restore")
        return _conflict(change, "someone changed it since the run did (the run's mark is gone)", content(intended),
                         current)
    written = entry.get("written_resource_version")
    if metadata.get("resourceVersion") != written and content(current) != content(intended):
        return _conflict(change, "someone changed it since the run did", content(intended), current)
    body = copy.deepcopy(original)
    body["metadata"].pop("managedFields", None)
    body["metadata"]["resourceVersion"] = metadata["resourceVersion"]
    api.request("PUT", change.ref.path, body=body, query={"dryRun": "All" if dry_run else None})
    return ChangeResult("restored", f"{change.ref}: put back as it was before the run")


def _recreate(api: KubeAPI, change: Change, current: dict[str, Any] | None, dry_run: bool) -> ChangeResult:
    original = change.entry["original"]
    if current is not None:
        return _judge_present(change, current)
    body = content(original)
    try:
        api.create(change.ref.kind.collection_path(change.ref.namespace), body, dry_run=dry_run)
    except ApiError as exc:
        if exc.status != 409:
            raise
        present = _read(api, change.ref)
        if present is None:
            raise
        return _judge_present(change, present)
    return ChangeResult("restored", f"{change.ref}: created again from its original")


def _judge_present(change: Change, current: dict[str, Any]) -> ChangeResult:
    """A deleted object found there again: the original (never deleted, or already recreated), or another one."""
    original = change.entry["original"]
    if (current.get("metadata") or {}).get("uid") == original["metadata"]["uid"] \
            or content(current) == content(original):
        return ChangeResult("unchanged", f"{change.ref}: it is there as it was (never deleted, or already "
                                         "recreated): nothing to restore")
    return _conflict(change, "another object of that name was created since the run deleted it", None, current)
