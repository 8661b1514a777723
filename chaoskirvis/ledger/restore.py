"""Find and remove what runs left in the cluster: the engine behind the rollback and `kirvis cleanup`.

Targets come from two places: the ownership labels (swept over every kind a technique can create) and
the runs' records (which also name objects a killed run intended to create). Nothing is deleted unless
it carries every ownership mark of its run at the moment we look at it (`is_owned`: the three labels,
the run id matched exactly, the name ``kirvis-<run id>-...``), and the delete is conditioned on the uid
we checked, so an object replaced in between is not deleted either.

Record entries are data from the cluster: each is validated (`record_refs`) before any path is built
from it, and an invalid one is reported and never acted on. Cluster-scoped objects (a ClusterRoleBinding)
are removed only for a selection naming their run, or with `Selection.cluster_scoped`; with namespaces
given, that means only those named by a record in one of them. A list or read that fails does not stop
the sweep: it is reported as a failure, and the records are then kept so a later cleanup can finish.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger.ownership import MANAGED_BY, MANAGED_BY_LABEL, RUN_ID_LABEL, is_expired, is_owned
from chaoskirvis.ledger.record import RECORD_SELECTOR, record_refs
from chaoskirvis.ledger.refs import CONFIG_MAP, SWEPT_KINDS, Kind, ObjectRef

__all__ = ["Selection", "Leftovers", "CleanupReport", "find_leftovers", "remove"]


@dataclass(frozen=True)
class Selection:
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


@dataclass
class Leftovers:
    objects: list[tuple[ObjectRef, dict[str, Any]]] = field(default_factory=list)
    records: list[tuple[ObjectRef, dict[str, Any]]] = field(default_factory=list)
    not_ours: list[ObjectRef] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    """Record entries refused before any path was built from them (why, one line each)."""
    kept: list[str] = field(default_factory=list)
    """Objects of the selected runs this selection may not remove (cluster-scoped), and why."""
    failed: list[str] = field(default_factory=list)
    """Lists and reads that failed: what could not be looked at."""


@dataclass
class CleanupReport:
    removed: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    records_removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "removed": self.removed, "already_gone": self.already_gone, "left_alone": self.left_alone,
            "failed": self.failed, "records_removed": self.records_removed,
        }


def find_leftovers(api: KubeAPI, selection: Selection, namespaces: Iterable[str] | None = None) -> Leftovers:
    """Everything of the selected runs that is still in the cluster, and what we will leave alone.

    With `namespaces`, only those namespaces are looked in (and cluster-scoped objects only through the
    records kept there). Never raises for a failed list or read: see `Leftovers.failed`.
    """
    leftovers = Leftovers()
    namespaces = None if namespaces is None else sorted(set(namespaces))
    seen: set[str] = set()
    for kind in SWEPT_KINDS:
        if not kind.namespaced and not (selection.run_id or (selection.cluster_scoped and namespaces is None)):
            continue  # every run's cluster-scoped objects: only through the records of the namespaces
        for obj in _list(api, kind, selection.label_selector, namespaces, leftovers.failed):
            ref = _ref_of(kind, obj)
            if ref.problem() is None and selection.wants(obj) and ref.path not in seen:
                seen.add(ref.path)
                leftovers.objects.append((ref, obj))
    record_selector = f"{selection.label_selector},{RECORD_SELECTOR}"
    for record in _list(api, CONFIG_MAP, record_selector, namespaces, leftovers.failed):
        if is_owned(record, selection.run_id) and _ref_of(CONFIG_MAP, record).problem() is None:
            _follow_record(api, selection, record, seen, leftovers)
    return leftovers


def _follow_record(
    api: KubeAPI, selection: Selection, record: dict[str, Any], seen: set[str], leftovers: Leftovers,
) -> None:
    """Add what `record` names; the record itself too, unless something it names must stay."""
    run_id = record["metadata"]["labels"][RUN_ID_LABEL]
    refs, invalid = record_refs(record, run_id)
    leftovers.invalid.extend(invalid)
    complete = True
    for ref in refs:
        if ref.path in seen:
            continue
        try:
            obj = _get(api, ref)
        except ActivityFailed as exc:
            leftovers.failed.append(str(exc))
            complete = False
            continue
        if obj is None:
            continue
        if not is_owned(obj, run_id):
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
) -> CleanupReport:
    """Delete the leftovers (objects first, then records), re-checking ownership just before each delete.

    A record is removed only when every object was removed and nothing failed, so a failed restore can
    be retried (by the run, or by `kirvis cleanup` from any machine).
    """
    report = CleanupReport(
        left_alone=[*(str(ref) for ref in leftovers.not_ours), *leftovers.invalid, *leftovers.kept],
        failed=list(leftovers.failed),
    )
    removed = []
    for ref, obj in leftovers.objects:
        if _remove_one(api, ref, _run_of(obj), report, dry_run):
            report.removed.append(str(ref))
            removed.append(ref)
    if not dry_run:
        _wait_until_gone(api, removed, wait_seconds, report)
    if report.failed:
        return report
    for ref, record in leftovers.records:
        if _remove_one(api, ref, _run_of(record), report, dry_run):
            report.records_removed.append(str(ref))
    return report


def _run_of(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(RUN_ID_LABEL)


def _remove_one(api: KubeAPI, ref: ObjectRef, run_id: str | None, report: CleanupReport, dry_run: bool) -> bool:
    """Delete `ref` if it still carries run `run_id`'s marks; True when a delete was sent, else noted."""
    try:
        current = _get(api, ref)
    except ActivityFailed as exc:
        report.failed.append(str(exc))
        return False
    if current is None:
        report.already_gone.append(str(ref))
        return False
    if not run_id or not is_owned(current, run_id):
        report.left_alone.append(str(ref))
        return False
    body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    uid = current["metadata"].get("uid")
    if uid:
        body["preconditions"] = {"uid": uid}
    try:
        api.request("DELETE", ref.path, body=body, query={"dryRun": "All" if dry_run else None})
    except ApiError as exc:
        if exc.status == 404:
            report.already_gone.append(str(ref))
        elif exc.status == 409 and uid:
            report.left_alone.append(f"{ref}: replaced since it was checked ({exc.message})")
        else:
            report.failed.append(f"{ref}: {exc.status} {exc.message}")
        return False
    except ActivityFailed as exc:  # unreachable: whether it was deleted is unknown, so it is not removed
        report.failed.append(f"{ref}: {exc}")
        return False
    return True


def _wait_until_gone(api: KubeAPI, refs: list[ObjectRef], wait_seconds: float, report: CleanupReport) -> None:
    """Wait, at most `wait_seconds`, for deleted objects to be gone (finalizers, graceful termination)."""
    deadline = time.monotonic() + wait_seconds
    pending = list(refs)
    unreadable: list[str] = []
    while pending:
        still = []
        for ref in pending:
            try:
                if _get(api, ref) is not None:
                    still.append(ref)
            except ActivityFailed as exc:
                still.append(ref)
                unreadable = [*unreadable[-5:], str(exc)]
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    why = f" (last read: {unreadable[-1]})" if unreadable else ""
    report.failed.extend(f"{ref}: still terminating after {wait_seconds:g}s{why}" for ref in pending)


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


def _get(api: KubeAPI, ref: ObjectRef) -> dict[str, Any] | None:
    try:
        return api.get(ref.path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise ActivityFailed(f"cannot read {ref} ({exc.status} {exc.message})") from None


def _ref_of(kind: Kind, obj: dict[str, Any]) -> ObjectRef:
    metadata = obj.get("metadata") or {}
    return ObjectRef(kind, metadata.get("namespace") if kind.namespaced else None, str(metadata.get("name") or ""))
