"""The record of what a run intends to create, kept in the cluster so any machine can restore it.

One ConfigMap per run and namespace, ``kirvis-ledger-<run id>``, labelled like every object of the run
plus ``chaoskirvis.io/record=ledger``. Each data key names one object (``pods.team-a.kirvis-...``) and
holds a JSON entry, written *before* the object is created (state ``intended``), so a run killed with
SIGKILL between the two leaves a trail that ``kirvis cleanup`` follows. That is the entry's only write:
what the attempt came to (denied, created, deleted) is in the run's evidence, not in the record, which
restore deletes once everything it names is gone. The same record holds the entries of changes to
objects that exist (states `CHANGE_STATES`, with the original object): `chaoskirvis.ledger.changes` writes,
validates and restores those; `record_refs` leaves them to it, and the entries of changed node files
(states `NODE_FILE_STATES`) to `chaoskirvis.ledger.node_files`.

The run's first entry in a namespace creates the record (one POST carrying the entry); later entries are
merge patches of it. A POST answered 409 AlreadyExists (a record of the same run id left by another
process) falls back to the patch, a patch answered 404 (the record was removed meanwhile) to the POST.

A record is data from the cluster: anyone who may write a ConfigMap in the namespace can write one. So
`record_refs` validates every entry before a path is built from it: a kind a technique creates, no
namespace but the record's own (none for a cluster-scoped kind, whose record lives in the run's home
namespace), a name valid for its kind and of the run's shape ``kirvis-<run id>-...``. An entry that fails
is returned as invalid, with the reason, and is never acted on.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger.ownership import RECORD_LABEL, name_is_of_run, ownership_metadata
from chaoskirvis.ledger.refs import CONFIG_MAP, SWEPT_KINDS, ObjectRef, name_problem, namespace_problem

if TYPE_CHECKING:
    from chaoskirvis.ledger.state import RunState

__all__ = ["record_name", "record_ref", "write_intent", "write_entry", "record_refs", "entries_in_states",
           "RECORD_SELECTOR", "INTENDED", "CHANGE_STATES", "NODE_FILE_STATES"]

RECORD_SELECTOR = f"{RECORD_LABEL}=ledger"
INTENDED = "intended"
CHANGE_STATES = ("changing", "changed", "deleting", "deleted")  # entries of chaoskirvis.ledger.changes
NODE_FILE_STATES = ("node-changing", "node-changed")  # entries of chaoskirvis.ledger.node_files


def record_name(run_id: str) -> str:
    return f"kirvis-ledger-{run_id}"


def record_ref(run_id: str, namespace: str) -> ObjectRef:
    return ObjectRef(CONFIG_MAP, namespace, record_name(run_id))


def write_intent(
    api: KubeAPI, state: RunState, ref: ObjectRef, configuration: Configuration | None = None, **details: Any,
) -> None:
    """Write the entry for `ref` into the run's record in `ref`'s (home) namespace, before its create.

    Raises `ApiError` or `ActivityFailed` when the entry may not be in the cluster: then nothing may be
    created (so `ref` is known absent), and the namespace is marked unsure (a lost answer may have stored
    the record all the same), so restore reads the record by name.
    """
    entry = {
        "apiVersion": ref.kind.api_version, "plural": ref.kind.plural, "kind": ref.kind.kind,
        "namespace": ref.namespace, "name": ref.name, "state": INTENDED,
        "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **details,
    }
    state.add_intended(ref)
    try:
        write_entry(api, state, ref, entry, configuration)
    except (ApiError, ActivityFailed):
        state.add_gone(ref.path)
        raise


def write_entry(api: KubeAPI, state: RunState, ref: ObjectRef, entry: dict[str, Any] | None,
                configuration: Configuration | None = None) -> None:
    """Write `entry` under `ref`'s key into the run's record in `ref`'s home namespace (creating the record
    with the run's first entry there; None removes the key). Raises as `write_intent` says, the namespace
    then marked unsure."""
    home = ref.record_namespace
    record = record_ref(state.run_id, home)
    patch = {"data": {ref.key: None if entry is None else json.dumps(entry, sort_keys=True)}}
    with state.lock:
        state.namespaces.add(home)
    try:
        with state.lock:
            known = home in state.records
        if known:
            answer = _patch_or_create(api, state.run_id, record, patch, configuration)
        else:
            answer = _create_or_patch(api, state.run_id, record, patch, configuration)
    except (ApiError, ActivityFailed):
        with state.lock:
            state.unsure_records.add(home)
        raise
    with state.lock:
        state.records[home] = answer
        state.gone.discard(record.path)


def _create_or_patch(api: KubeAPI, run_id: str, record: ObjectRef, patch: dict[str, Any],
                     configuration: Configuration | None) -> dict[str, Any]:
    metadata = ownership_metadata(run_id, "ledger", configuration)
    metadata["labels"][RECORD_LABEL] = "ledger"
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": record.name, "namespace": record.namespace, **metadata}, **patch}
    try:
        return api.create(CONFIG_MAP.collection_path(record.namespace), body).body
    except ApiError as exc:
        if exc.status != 409:
            raise
    return api.merge_patch(record.path, patch).body


def _patch_or_create(api: KubeAPI, run_id: str, record: ObjectRef, patch: dict[str, Any],
                     configuration: Configuration | None) -> dict[str, Any]:
    try:
        return api.merge_patch(record.path, patch).body
    except ApiError as exc:
        if exc.status != 404:
            raise
    return _create_or_patch(api, run_id, record, patch, configuration)


def entries_in_states(record: dict[str, Any], states: tuple[str, ...]
                      ) -> Iterator[tuple[str, dict[str, Any], Any, str]]:
    """(key, entry, the record's namespace, where: the record in words) of each entry of `record`, in key order,
    that is a JSON object in one of `states`; an entry that is not one is `record_refs`' to report."""
    metadata = record.get("metadata") or {}
    home = metadata.get("namespace")
    where = f"record {metadata.get('name')} in namespace {home}"
    for key, raw in sorted((record.get("data") or {}).items()):
        try:
            entry = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if isinstance(entry, dict) and entry.get("state") in states:
            yield key, entry, home, where


def record_refs(record: dict[str, Any], run_id: str) -> tuple[list[ObjectRef], list[str]]:
    """The objects run `run_id`'s record names, validated; and a line per invalid entry (never acted on)."""
    metadata = record.get("metadata") or {}
    home = metadata.get("namespace")
    where = f"record {metadata.get('name')} in namespace {home}"
    refs: list[ObjectRef] = []
    invalid: list[str] = []
    for key, raw in sorted((record.get("data") or {}).items()):
        try:
            entry = json.loads(raw)
        except (TypeError, ValueError):
            entry = None
        if not isinstance(entry, dict):
            invalid.append(f"invalid record entry {key!r} of {where}: not a JSON object")
            continue
        if entry.get("state") in CHANGE_STATES or entry.get("state") in NODE_FILE_STATES:
            continue  # a change to an existing object or a node file: ledger.changes / ledger.node_files validate it
        ref, problem = _entry_ref(entry, home, run_id)
        if problem:
            invalid.append(f"invalid record entry {key!r} of {where}: {problem}")
        else:
            refs.append(ref)
    return refs, invalid


def _entry_ref(entry: dict[str, Any], home: Any, run_id: str) -> tuple[ObjectRef | None, str | None]:
    kind = next((k for k in (*SWEPT_KINDS, CONFIG_MAP)  # a ConfigMap: credentials a technique placed in one
                 if k.plural == entry.get("plural") and k.api_version == entry.get("apiVersion")), None)
    if kind is None:
        return None, (f"kind {entry.get('apiVersion')!r}/{entry.get('plural')!r} is not one a technique creates")
    if namespace_problem(home):
        return None, f"the record's {namespace_problem(home)}"
    namespace, name = entry.get("namespace"), entry.get("name")
    if kind.namespaced and namespace != home:
        return None, (f"it names namespace {namespace!r}, but a record may only name objects in its own "
                      f"namespace {home}")
    if not kind.namespaced and namespace is not None:
        return None, f"{kind.kind} is cluster-scoped, yet the entry names namespace {namespace!r}"
    if name_problem(kind, name):
        return None, name_problem(kind, name)
    if not name_is_of_run(name, run_id):
        return None, f"name {name!r} is not of the run's shape kirvis-{run_id}-..."
    return ObjectRef(kind, namespace if kind.namespaced else None, name, home=home), None
