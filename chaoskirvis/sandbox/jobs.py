"""What the Job controller and the kubelet would write for a finished Job, for tests that play the workload.

The sandbox runs no Job controller and no containers: `finish_job` marks a Job's pod Succeeded (or
Failed) and the Job Complete (or Failed), as the controllers would once its container exited.
"""
from __future__ import annotations

import asyncio
from typing import Any

from chaoskirvis.sandbox.resources import PODS, find_resource
from chaoskirvis.sandbox.store import now_timestamp

__all__ = ["finish_job"]

JOBS = find_resource("batch", "v1", "jobs")


def finish_job(sandbox: Any, namespace: str, job: str, pod: str, succeeded: bool = True) -> None:
    """Mark pod `pod` Succeeded/Failed and Job `job` Complete/Failed (batch/v1 JobCondition), from any thread."""
    store = sandbox._store  # noqa: SLF001 - the same store the API serves, written on its loop

    async def write() -> None:
        stamp = now_timestamp()
        current = store.get(PODS, namespace, pod)
        store.update(PODS, dict(current, status=dict(current.get("status") or {},
                                                     phase="Succeeded" if succeeded else "Failed")))
        current = store.get(JOBS, namespace, job)
        condition = {"type": "Complete", "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp} \
            if succeeded else {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                               "message": "Job has reached the specified backoff limit",
                               "lastProbeTime": stamp, "lastTransitionTime": stamp}
        counts = {"succeeded": 1} if succeeded else {"failed": 1}
        store.update(JOBS, dict(current, status=dict(current.get("status") or {}, conditions=[condition],
                                                     **counts)))

    asyncio.run_coroutine_threadsafe(write(), sandbox._loop).result()  # noqa: SLF001
