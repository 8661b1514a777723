"""Rollback actions: put the cluster back as it was before the run."""
from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from logzero import logger

from chaoskirvis.activity import typed_activity
from chaoskirvis.client import kube_api
from chaoskirvis.ledger.record import record_ref
from chaoskirvis.ledger.restore import CleanupReport, Leftovers, Selection, find_known, remove
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import RunState, run_state

__all__ = ["restore_run"]


@typed_activity
def restore_run(
    wait_seconds: float = 60.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Delete everything this run created, put back what it changed, and nothing else.

    What the run wrote is known to this process (its record and state), so nothing is swept: each object
    the run's record names, unless the API server already showed it absent (a create denied), is read
    by name and deleted only if it still carries every ownership mark of this run (the three labels with
    this run's id, a name ``kirvis-<run id>-...``), on the version read (uid and resourceVersion as
    preconditions); then the record is deleted on the version the run last wrote (a record changed since
    is read again, and what it names now is judged the same way). Independent deletes go concurrently.
    Idempotent: running it twice, or after the objects are gone, is fine. A run that attempted nothing in
    this process has nothing to restore and asks the API nothing. Waits up to `wait_seconds` for
    deletions to finish, only for objects whose delete answered them still there (objects still
    terminating then are reported). A failed read or delete does not stop the rest.
    What the run changed or deleted (a guardrail technique) is put back first, from the original its record
    holds (see `chaoskirvis.ledger.changes`): a patched object by an update on the version read, only while it
    carries the run's mark and is what the run wrote; a deleted one by a create. An object someone changed
    since is not overwritten: a conflict, reported with both versions.
    Raises when something of the run could not be removed, put back or checked, or on a conflict: the run's
    record is then kept, so `kirvis cleanup --run-id` (from any machine) finishes the restore or shows the
    conflict.
    """
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    if not state.namespaces:  # this process attempted nothing, so the run created nothing (cleanup sweeps)
        logger.info(f"[{run_id}] restore: the run attempted nothing, so there is nothing to restore")
        return {"run_id": run_id, **CleanupReport().as_dict()}
    api = kube_api(configuration, secrets)
    known = find_known(api, state)
    report = remove(api, known, wait_seconds=wait_seconds, selection=Selection(run_id=run_id))
    _learn(state, report, known)
    summary = {"run_id": run_id, **report.as_dict()}
    logger.info(
        f"[{run_id}] restore: removed {len(report.removed)} object(s), {len(report.records_removed)} record(s); "
        f"put back {len(report.restored)} changed object(s); left alone {len(report.left_alone)} not ours"
    )
    if report.failed or report.conflicts:
        raise ActivityFailed(
            f"restore of run {run_id} incomplete: "
            f"{'; '.join([*report.failed, *(c['detail'] for c in report.conflicts)])}; its record is kept: "
            f"finish it with `kirvis cleanup --run-id {run_id}`"
        )
    return summary


def _learn(state: RunState, report: CleanupReport, known: Leftovers) -> None:
    """Keep what the restore showed absent, so the evidence control and a second restore ask nothing of it; and
    forget the changes it put back, so a later change of the same object in this run records a fresh original
    (the one put back, perhaps recreated with a new uid), not the first one again."""
    settled = {*report.restored, *report.unchanged}
    with state.lock:
        state.gone |= report.gone
        for change in known.changes:
            if str(change.ref) in settled:
                state.changes.pop(change.ref.path, None)
        for home in [*state.records, *state.unsure_records]:
            if record_ref(state.run_id, home).path in report.gone:
                state.records.pop(home, None)
                state.unsure_records.discard(home)
