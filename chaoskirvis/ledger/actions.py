"""Rollback actions: put the cluster back as it was before the run."""
from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from logzero import logger

from chaoskirvis.activity import typed_activity
from chaoskirvis.client import kube_api
from chaoskirvis.ledger.restore import CleanupReport, Selection, find_leftovers, remove
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state

__all__ = ["restore_run"]


@typed_activity
def restore_run(
    wait_seconds: float = 60.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Delete everything this run created, and nothing else.

    Objects are found through the run's ownership labels and its record in the cluster; each is
    deleted only if it still carries every ownership mark of this run (the three labels with this run's
    id, a name ``kirvis-<run id>-...``); record entries are validated before any path is built from them,
    and an invalid one is reported in ``left_alone`` and never acted on. Idempotent: running it twice,
    or after the objects are gone, is fine. A run that attempted nothing in this process has nothing to
    restore and asks the API nothing. Waits up to `wait_seconds` for deletions to finish (objects still
    terminating then are reported). A failed list, read or delete does not stop the rest.
    Raises when something of the run could not be removed or checked: the run's record is then kept,
    so `kirvis cleanup --run-id` (from any machine) finishes the restore.
    """
    run_id = current_run_id(configuration)
    namespaces = run_state(run_id).namespaces or None
    if namespaces is None:  # this process attempted nothing, so the run created nothing (cleanup sweeps)
        logger.info(f"[{run_id}] restore: the run attempted nothing, so there is nothing to restore")
        return {"run_id": run_id, **CleanupReport().as_dict()}
    api = kube_api(configuration, secrets)
    leftovers = find_leftovers(api, Selection(run_id=run_id), namespaces)
    report = remove(api, leftovers, wait_seconds=wait_seconds)
    summary = {"run_id": run_id, **report.as_dict()}
    logger.info(
        f"[{run_id}] restore: removed {len(report.removed)} object(s), {len(report.records_removed)} record(s); "
        f"left alone {len(report.left_alone)} not ours"
    )
    if report.failed:
        raise ActivityFailed(
            f"restore of run {run_id} incomplete: {'; '.join(report.failed)}; its record is kept: "
            f"finish it with `kirvis cleanup --run-id {run_id}`"
        )
    return summary
