"""Before a process first acts in a namespace, it removes what earlier runs left there and let expire.

A run killed with SIGKILL, or whose restore failed, leaves objects that carry every ownership mark and
an expiry annotation (``chaoskirvis.io/expires-at``), and its record, which names every object it meant
to create (written before each create). `kirvis cleanup --expired` sweeps them by hand, every kind by
its labels. Every process also does, once per API server and namespace it targets, before its first
attempt there (so once per `chaos run`, and once for the whole suite of a `kirvis run`): one list of the
run records in the namespace, then a read by name of what each expired record of *another* run names;
only what `chaoskirvis.ledger.restore` would remove for ``Selection(expired_only=True)`` (every mark
checked again before each delete; cluster-scoped objects are left to `kirvis cleanup`), bounded in count
(`MAX_OBJECTS`) and time (`MAX_SECONDS`). An object no record names (its record deleted by hand) is left
to `kirvis cleanup --expired`. A change an expired run made to an object that exists (a guardrail
technique's) is put back before its record is removed, so its original is never lost with the record
(a cluster-scoped one other than the namespace itself stays with its record for `kirvis cleanup --run-id`). What the sweep did is kept in the state of the run that made it and
reported in that run's journal (``chaoskirvis.ledger.expired_swept``). It never fails the run: a sweep
that could not look or remove says so in that report.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from logzero import logger

from chaoskirvis.client import KubeAPI
from chaoskirvis.ledger.ownership import RUN_ID_LABEL
from chaoskirvis.ledger.restore import Leftovers, Selection, find_recorded, remove
from chaoskirvis.ledger.state import RunState

__all__ = ["sweep_expired", "MAX_OBJECTS", "MAX_SECONDS"]

MAX_OBJECTS = 20
MAX_SECONDS = 20.0
_CHUNK = 5
_swept: set[tuple[str, str]] = set()  # (API server, namespace) this process swept
_swept_lock = threading.Lock()


def sweep_expired(api: KubeAPI, state: RunState, namespace: str) -> dict[str, Any] | None:
    """Remove the expired leftovers of earlier runs in `namespace`, once per process and API server; the
    report, or None when this process already swept there."""
    with _swept_lock:
        if (api.host, namespace) in _swept:
            return None
        _swept.add((api.host, namespace))
    started = time.monotonic()
    report: dict[str, Any] = {"namespace": namespace, "removed": [], "already_gone": [], "left_alone": [],
                              "failed": [], "records_removed": [], "not_done": []}
    try:
        _sweep(api, state.run_id, namespace, started, report)
    except Exception as exc:  # the sweep is housekeeping: it never fails the run
        report["failed"].append(f"the sweep of expired leftovers in {namespace} stopped: {exc}")
    report["seconds"] = round(time.monotonic() - started, 2)
    report = {k: v for k, v in report.items() if v or k in ("namespace", "removed", "seconds")}
    with state.lock:
        state.expired_swept.append(report)
    if any(report.get(key) for key in ("removed", "records_removed", "left_alone", "failed", "not_done")):
        logger.info(
            f"[{state.run_id}] expired leftovers of earlier runs in {namespace}: removed "
            f"{len(report['removed'])} object(s), {len(report.get('records_removed', []))} record(s)"
            + (f"; not done: {'; '.join(report['not_done'])}" if report.get("not_done") else "")
            + (f"; failed: {'; '.join(report['failed'])}" if report.get("failed") else "")
        )
    return report


def _sweep(api: KubeAPI, run_id: str, namespace: str, started: float, report: dict[str, Any]) -> None:
    found = find_recorded(api, Selection(expired_only=True), [namespace])
    report["failed"].extend(getattr(found, "failed", []))
    objects = [(ref, obj) for ref, obj in found.objects if _run_of(obj) != run_id]
    records = [(ref, obj) for ref, obj in found.records if _run_of(obj) != run_id]
    changes = [change for change in found.changes if change.run_id != run_id]  # put back before their record goes
    if len(objects) > MAX_OBJECTS:
        report["not_done"].append(f"{len(objects) - MAX_OBJECTS} more expired object(s) left to "
                                  f"`kirvis cleanup --expired -n {namespace}` (at most {MAX_OBJECTS} per run)")
        objects, records, changes = objects[:MAX_OBJECTS], [], []
    for start in range(0, len(objects), _CHUNK):
        left = MAX_SECONDS - (time.monotonic() - started)
        if left <= 0:
            report["not_done"].append(f"{len(objects) - start} expired object(s) not removed: the sweep is "
                                      f"bounded to {MAX_SECONDS:g} s")
            records, changes = [], []
            break
        _merge(report, remove(api, Leftovers(objects=objects[start:start + _CHUNK]), wait_seconds=min(left, 10.0)))
    if (records or changes) and not report["failed"]:
        _merge(report, remove(api, Leftovers(records=records, changes=changes), wait_seconds=5.0))


def _merge(report: dict[str, Any], done: Any) -> None:
    for key, values in done.as_dict().items():
        report.setdefault(key, []).extend(values)


def _run_of(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(RUN_ID_LABEL)
