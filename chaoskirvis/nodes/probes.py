"""Node probes: does the CIS benchmark (kube-bench, run once as a Job on the node) flag the injected change?

The outcome is recorded in the run's ledger like a detection probe's, so
`chaoskirvis.ledger.probes.injections_detected` counts it. Put it in the method after the node edit.
"""
from __future__ import annotations

import secrets as random
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis.activity import typed_activity
from chaoskirvis.client import ApiError, KubeAPI, kube_api
from chaoskirvis.detection.verdict import records_errors
from chaoskirvis.ledger import record
from chaoskirvis.ledger.refs import Kind, ObjectRef, POD
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.nodes.kube_bench import DEFAULT_IMAGE, check_statuses, failing_checks, kube_bench_job

__all__ = ["kube_bench_detects", "cis_checks_pass"]

JOB = Kind("batch/v1", "jobs", "Job")
BACKEND = "kube-bench"
POLL_S = 2.0
PROGRESS_EVERY_S = 10.0


@typed_activity
@records_errors(BACKEND)
def kube_bench_detects(
    checks: list[str],
    node: str,
    targets: list[str] | None = None,
    within: float = 300.0,
    image: str = DEFAULT_IMAGE,
    namespace: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Run kube-bench once on `node` and say whether it reports the CIS `checks` (e.g. ["4.1.1"]) as FAIL.

    Creates a Job in `namespace` (owned by the run, removed by restore) running
    `kube-bench run --targets <targets> --check <checks> --json` on the node (default target: node),
    waits up to `within` seconds for it to finish and reads its pod's log. Returns ``detected`` when
    every check reports FAIL, with the time from the Job's creation to the answer, and ``missed`` when
    any reports PASS. An error (ActivityFailed), never a pass: the Job failed or did not finish in
    time, it has no pod, the output is not kube-bench's --json, or a check is absent, WARN or INFO.
    """
    run_id = current_run_id(configuration)
    failing, job, elapsed = _benchmark(checks, node, targets, within, image, namespace, configuration, secrets)
    detected = all(failing.values())
    outcome = {
        "backend": BACKEND, "run_id": run_id, "within_s": float(within), "node": node, "job": job,
        "outcome": "detected" if detected else "missed", "detected": detected,
        "time_to_detect_s": elapsed if detected else None,
        "checks": {check: "FAIL" if failed else "PASS" for check, failed in failing.items()},
    }
    run_state(run_id).add_detection(outcome)
    logger.info(f"[{run_id}] {BACKEND} on {node}: {outcome['outcome']} ({outcome['checks']})")
    return outcome


@typed_activity
def cis_checks_pass(
    checks: list[str],
    node: str,
    targets: list[str] | None = None,
    within: float = 300.0,
    image: str = DEFAULT_IMAGE,
    namespace: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """Steady state: True when kube-bench, run once on `node` as in `kube_bench_detects`, reports every
    CIS check in `checks` as PASS; False (a weakness) when any is FAIL.

    The Job is owned by the run and removed by restore. An error (ActivityFailed), never a pass: the
    Job failed or did not finish within `within` seconds, it has no pod, the output is not kube-bench's
    --json, or a check is absent, WARN or INFO. Nothing is recorded as a detection.
    """
    failing, _, _ = _benchmark(checks, node, targets, within, image, namespace, configuration, secrets)
    return not any(failing.values())


def _benchmark(checks: list[str], node: str, targets: list[str] | None, within: float, image: str,
               namespace: str, configuration: Configuration | None,
               secrets: Secrets | None) -> tuple[dict[str, bool], str, float]:
    """Run the run's kube-bench Job: each check's FAIL (True) / PASS, the Job's name, seconds it took."""
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    api = kube_api(configuration, secrets)
    body = kube_bench_job(run_id, BACKEND, node, targets or ["node"], checks, namespace,
                          random.token_hex(3), image, configuration)
    ref = ObjectRef(JOB, namespace, body["metadata"]["name"])
    with state.lock:
        state.namespaces.add(namespace)
    try:
        record.write_intent(api, state, ref, configuration, technique=BACKEND)
        api.create(JOB.collection_path(namespace), body)
    except ApiError as exc:
        raise ActivityFailed(f"could not create the kube-bench Job {ref.name} in namespace {namespace} "
                             f"({exc.status} {exc.reason}: {exc.message}); the runner needs create on jobs "
                             "there") from None
    state.add_created(ref)
    started = time.monotonic()
    _wait_finished(api, ref, within, started)
    output = _pod_log(api, ref)
    return failing_checks(check_statuses(output), checks), ref.name, round(time.monotonic() - started, 3)


def _wait_finished(api: KubeAPI, ref: ObjectRef, within: float, started: float) -> None:
    """Until the Job is Complete (returns) or Failed / not finished after `within` s (ActivityFailed)."""
    if within <= 0:
        raise ActivityFailed(f"within must be a positive number of seconds, got {within}")
    logged = started
    while True:
        conditions = {c.get("type"): c for c in (api.get(ref.path).get("status") or {}).get("conditions") or []
                      if c.get("status") == "True"}
        if "Failed" in conditions:
            why = conditions["Failed"].get("message") or conditions["Failed"].get("reason") or "no reason given"
            raise ActivityFailed(f"the kube-bench Job {ref.name} failed ({why}): the benchmark did not run")
        if "Complete" in conditions:
            return
        elapsed = time.monotonic() - started
        if elapsed >= within:
            raise ActivityFailed(f"the kube-bench Job {ref.name} did not finish within {within:g} s")
        if time.monotonic() - logged >= PROGRESS_EVERY_S:
            logged = time.monotonic()
            logger.info(f"{BACKEND}: Job {ref.name} still running, {within - elapsed:.0f} s left")
        time.sleep(min(POLL_S, within - elapsed))


def _pod_log(api: KubeAPI, ref: ObjectRef) -> str:
    """The log of the Job's one succeeded pod (found by the job-name label the Job controller sets)."""
    pods = api.get(POD.collection_path(ref.namespace), labelSelector=f"job-name={ref.name}").get("items") or []
    succeeded = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
    if len(succeeded) != 1:
        raise ActivityFailed(f"the kube-bench Job {ref.name} has {len(succeeded)} succeeded pods, not one: "
                             "no output to read")
    name = succeeded[0]["metadata"]["name"]
    try:
        return "\n".join(api.stream_lines(f"/api/v1/namespaces/{ref.namespace}/pods/{name}/log",
                                          query={"container": "kube-bench"}, timeout=30.0))
    except ApiError as exc:
        raise ActivityFailed(f"could not read the log of pod {name} ({exc.status} {exc.reason}: "
                             f"{exc.message}); the runner needs get on pods/log") from None
