"""Find and remove what runs left in the cluster: the engine behind the rollback and `kirvis cleanup`.

Targets come from two places: the ownership labels (swept over every kind a technique can create) and
the runs' records (which also name objects a killed run intended to create). Nothing is deleted unless
it carries every ownership mark of its run at the moment we look at it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger.ownership import MANAGED_BY, MANAGED_BY_LABEL, RUN_ID_LABEL, is_expired, is_owned
from chaoskirvis.ledger.record import RECORD_SELECTOR, entries_of
from chaoskirvis.ledger.refs import CONFIG_MAP, SWEPT_KINDS, Kind, ObjectRef

__all__ = ["Selection", "Leftovers", "CleanupReport", "find_leftovers", "remove"]


@dataclass(frozen=True)
class Selection:
    """Which runs to clean: one run id, or every run (optionally only the expired objects)."""

    run_id: str | None = None
    expired_only: bool = False

    @property
    def label_selector(self) -> str:
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
        return f"{selector},{RUN_ID_LABEL}={self.run_id}" if self.run_id else selector

    def wants(self, obj: dict[str, Any]) -> bool:
        if not is_owned(obj, self.run_id):
            return False
        return not self.expired_only or is_expired(obj)


@dataclass
class Leftovers:
    objects: list[tuple[ObjectRef, dict[str, Any]]] = field(default_factory=list)
    records: list[tuple[ObjectRef, dict[str, Any]]] = field(default_factory=list)
    not_ours: list[ObjectRef] = field(default_factory=list)


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
    """Everything of the selected runs that is still in the cluster, and what we will leave alone."""
    leftovers = Leftovers()
    seen: set[str] = set()
    for kind in SWEPT_KINDS:
        for obj in _list(api, kind, selection.label_selector, namespaces):
            ref = _ref_of(kind, obj)
            if selection.wants(obj) and ref.path not in seen:
                seen.add(ref.path)
                leftovers.objects.append((ref, obj))
    record_selector = f"{selection.label_selector},{RECORD_SELECTOR}"
    for record in _list(api, CONFIG_MAP, record_selector, namespaces):
        if not is_owned(record, selection.run_id):
            continue
        run_id = record["metadata"]["labels"][RUN_ID_LABEL]
        for entry in entries_of(record):
            ref = _ref_of_entry(entry)
            if ref is None or ref.path in seen:
                continue
            seen.add(ref.path)
            obj = _get(api, ref)
            if obj is None:
                continue
            if is_owned(obj, run_id) and (not selection.expired_only or is_expired(obj)):
                leftovers.objects.append((ref, obj))
            elif not is_owned(obj, run_id):
                leftovers.not_ours.append(ref)
        if not selection.expired_only or is_expired(record):
            leftovers.records.append((_ref_of(CONFIG_MAP, record), record))
    return leftovers


def remove(
    api: KubeAPI, leftovers: Leftovers, *, dry_run: bool = False, wait_seconds: float = 60.0,
) -> CleanupReport:
    """Delete the leftovers (objects first, then records), re-checking ownership just before each delete.

    A record is removed only when every object was removed, so a failed restore can be retried.
    """
    report = CleanupReport(left_alone=[str(ref) for ref in leftovers.not_ours])
    removed = []
    for ref, _ in leftovers.objects:
        if _remove_one(api, ref, report, dry_run):
            report.removed.append(str(ref))
            removed.append(ref)
    if not dry_run:
        _wait_until_gone(api, removed, wait_seconds, report)
    if report.failed:
        return report
    for ref, _ in leftovers.records:
        if _remove_one(api, ref, report, dry_run):
            report.records_removed.append(str(ref))
    return report


def _remove_one(api: KubeAPI, ref: ObjectRef, report: CleanupReport, dry_run: bool) -> bool:
    """Delete `ref` if it is still ours; True when a delete was sent, otherwise noted in the report."""
    current = _get(api, ref)
    if current is None:
        report.already_gone.append(str(ref))
        return False
    run_id = (current["metadata"].get("labels") or {}).get(RUN_ID_LABEL)
    if not run_id or not is_owned(current, run_id):
        report.left_alone.append(str(ref))
        return False
    try:
        api.delete(ref.path, dry_run=dry_run)
    except ApiError as exc:
        if exc.status == 404:
            report.already_gone.append(str(ref))
        else:
            report.failed.append(f"{ref}: {exc.status} {exc.message}")
        return False
    return True


def _wait_until_gone(api: KubeAPI, refs: list[ObjectRef], wait_seconds: float, report: CleanupReport) -> None:
    deadline = time.monotonic() + wait_seconds
    pending = list(refs)
    while pending:
        pending = [ref for ref in pending if _get(api, ref) is not None]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    report.failed.extend(f"{ref}: still terminating after {wait_seconds:.0f}s" for ref in pending)


def _list(api: KubeAPI, kind: Kind, selector: str, namespaces: Iterable[str] | None) -> list[dict[str, Any]]:
    if namespaces is None or not kind.namespaced:
        try:
            return api.get(kind.collection_path(), labelSelector=selector).get("items", [])
        except ApiError as exc:
            raise ActivityFailed(
                f"cannot list {kind.plural} across namespaces to find what chaoskirvis left "
                f"({exc.status} {exc.message}); grant list on {kind.plural} cluster-wide or name the namespaces"
            ) from None
    items: list[dict[str, Any]] = []
    for namespace in sorted(set(namespaces)):
        try:
            items.extend(api.get(kind.collection_path(namespace), labelSelector=selector).get("items", []))
        except ApiError as exc:
            if exc.status != 404:
                raise ActivityFailed(
                    f"cannot list {kind.plural} in namespace {namespace} ({exc.status} {exc.message})"
                ) from None
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
    return ObjectRef(kind, metadata.get("namespace"), metadata["name"])


def _ref_of_entry(entry: dict[str, Any]) -> ObjectRef | None:
    for kind in SWEPT_KINDS:
        if kind.plural == entry.get("plural") and kind.api_version == entry.get("apiVersion"):
            return ObjectRef(kind, entry.get("namespace"), entry["name"])
    return None
