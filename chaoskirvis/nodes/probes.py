"""Node probes: does the CIS benchmark (kube-bench, run once as a Job on the node; or trivy-operator's CIS
reports) flag the injected change?

The outcome is recorded in the run's ledger like a detection probe's, so
`chaoskirvis.ledger.probes.injections_detected` counts it. Put it in the method after the node edit.
"""
from __future__ import annotations

import datetime as dt
import secrets as random
import time
from typing import Any, NamedTuple

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis.activity import typed_activity
from chaoskirvis.client import ApiError, KubeAPI, kube_api
from chaoskirvis.detection.verdict import records_errors
from chaoskirvis.detection.window import now, window_of
from chaoskirvis.ledger import record
from chaoskirvis.ledger.refs import JOB, POD, Kind, ObjectRef
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.nodes import trivy
from chaoskirvis.nodes.kube_bench import (DEFAULT_IMAGE, benchmark_checks, check_statuses, failing_checks,
                                          kube_bench_job, layout_benchmark)
from chaoskirvis.techniques.nodes import node_technique
from chaoskirvis.techniques.unit import Technique

__all__ = ["kube_bench_detects", "cis_checks_pass", "trivy_operator_detects", "trivy_cis_checks_pass"]

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
    waits up to `within` seconds for it to finish and reads its pod's log. `checks` are cis-1.9 ids (as
    the node techniques name them). With configuration `kirvis_node_layout: rke2` (or `k3s`) the Job
    mounts that distribution's folders (/var/lib/rancher/rke2; /var/lib/rancher/k3s and /var/log/journal)
    instead of kubeadm's, passes `--benchmark rke2-cis-1.7` (`k3s-cis-1.7`) and asks for that benchmark's
    id of each item (cis-1.9's 1.2.15, API server profiling, is 1.7's 1.2.17); an item that benchmark
    skips or that has no known counterpart is refused before the Job is created. Returns ``detected``
    when every check reports FAIL, with the time from the Job's creation to the answer, and ``missed``
    when any reports PASS (`checks` keyed by the ids given; `benchmark_checks` the ids asked). An error
    (ActivityFailed), never a pass: the Job failed or did not finish in time, it has no pod, the output
    is not kube-bench's --json, or a check is absent, WARN or INFO.
    """
    run_id = current_run_id(configuration)
    answer = _benchmark(checks, node, targets, within, image, namespace, configuration, secrets)
    detected = all(answer.failing.values())
    outcome = {
        "backend": BACKEND, "run_id": run_id, "within_s": float(within), "node": node, "job": answer.job,
        "outcome": "detected" if detected else "missed", "detected": detected,
        "time_to_detect_s": answer.elapsed if detected else None,
        "checks": {check: "FAIL" if failed else "PASS" for check, failed in answer.failing.items()},
        "benchmark": answer.benchmark, "benchmark_checks": answer.asked,
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
    """Steady state: True when kube-bench, run once on `node` as in `kube_bench_detects` (the same
    per-layout benchmark, mounts and check ids), reports every CIS check in `checks` as PASS; False (a
    weakness) when any is FAIL.

    The Job is owned by the run and removed by restore. An error (ActivityFailed), never a pass: the
    Job failed or did not finish within `within` seconds, it has no pod, the output is not kube-bench's
    --json, or a check is absent, WARN or INFO. Nothing is recorded as a detection.
    """
    return not any(_benchmark(checks, node, targets, within, image, namespace, configuration, secrets).failing.values())


class _Answer(NamedTuple):
    failing: dict[str, bool]  # by the check id given: FAIL (True) / PASS
    job: str
    elapsed: float  # seconds from the Job's creation to the answer
    benchmark: str | None  # --benchmark, None where kube-bench picked it by version
    asked: dict[str, str]  # the check id given -> the benchmark's id kube-bench was asked for


def _benchmark(checks: list[str], node: str, targets: list[str] | None, within: float, image: str,
               namespace: str, configuration: Configuration | None, secrets: Secrets | None) -> _Answer:
    """Run the run's kube-bench Job on the layout's benchmark (`kirvis_node_layout`), its checks mapped from the
    cis-1.9 ids given; a check the benchmark lacks is refused before the Job is created."""
    run_id = current_run_id(configuration)
    state = run_state(run_id)
    benchmark = layout_benchmark(configuration)
    asked = benchmark_checks(benchmark, checks)  # refused here, before anything is created
    api = kube_api(configuration, secrets)
    body = kube_bench_job(run_id, BACKEND, node, targets or ["node"], list(asked.values()), namespace,
                          random.token_hex(3), image, configuration, benchmark)
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
    failing = failing_checks(check_statuses(output), list(asked.values()))
    return _Answer({check: failing[ours] for check, ours in asked.items()}, ref.name,
                   round(time.monotonic() - started, 3), benchmark.name, asked)


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


TRIVY = "trivy-operator"
TRIVY_POLL_S = 10.0
_RESOURCE_KIND = "trivy-operator.resource.kind"
_RESOURCE_NAME = "trivy-operator.resource.name"


@typed_activity
@records_errors(TRIVY)
def trivy_operator_detects(
    technique: str,
    node: str,
    within: float = 900.0,
    compliance: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Say whether trivy-operator reports the CIS check of node `technique` (e.g. ``kubelet-anonymous-auth``)
    as failed on `node`, in a report written after the run injected it and within `within` seconds of that.

    Lists (every 10 s) the node's ClusterInfraAssessmentReport (labels trivy-operator.resource.kind=Node,
    trivy-operator.resource.name=NODE, or named node-NODE) for file and kubelet checks, or the
    InfraAssessmentReport of the component's static pod (kube-system, pod COMPONENT-NODE, report
    pod-COMPONENT-NODE) for API server, controller manager and scheduler flags; with `compliance` (e.g. ``k8s-cis-1.23``), that ClusterComplianceReport instead, which
    counts every node. A report counts once written after the injection (`metadata.creationTimestamp`; a
    compliance report's `status.updateTimestamp`). Returns ``detected`` when it has the technique's trivy
    check failed, with the time from the injection to the report; ``missed`` when it has it passed, or when
    no report was written after the injection in time. An error (ActivityFailed), never a pass: no injection
    of `technique` in this run, trivy-operator's resources absent, no report for the node, a report that
    does not run the check or is not trivy-operator's format.
    """
    unit = node_technique(technique)
    run_id = current_run_id(configuration)
    window = window_of(run_state(run_id), within, technique)
    api = kube_api(configuration, secrets)
    check = unit.cis.trivy_check
    fresh: trivy.Reading | None = None
    while fresh is None:
        reading, seen_at = _trivy_report(api, unit, node, compliance), now()
        if reading is not None and _written_after(reading.written_at, window.injected_at):
            fresh = reading
        elif window.remaining() <= 0:
            break
        else:
            time.sleep(min(TRIVY_POLL_S, max(window.remaining(), 0.0)))
    if reading is None:
        raise ActivityFailed(f"trivy-operator wrote no {_report_what(unit, node, compliance)} within {within:g} s "
                             f"of the injection: is it scanning infrastructure on node {node}?")
    failed = trivy.failing(fresh, [check])[check] if fresh else False
    # Whole-second stamps: a report of the injection's own second counts at the injection, never before.
    counted_at = window.counted_at(fresh.written_at, seen_at) if fresh else None
    detected = failed and counted_at <= window.deadline
    outcome = {
        "backend": TRIVY, "run_id": run_id, "within_s": float(within), "node": node, "techniques": [technique],
        "injected_at": window.injected_at.isoformat(timespec="milliseconds"),
        "outcome": "detected" if detected else "missed", "detected": detected,
        "time_to_detect_s": round((counted_at - window.injected_at).total_seconds(), 3) if detected else None,
        "report": (fresh or reading).name, "check": check, "cis": unit.cis.id,
        "status": ("FAIL" if failed else "PASS") if fresh else "not rescanned since the injection",
    }
    run_state(run_id).add_detection(outcome)
    logger.info(f"[{run_id}] {TRIVY} on {node}: {outcome['outcome']} ({check}: {outcome['status']})")
    return outcome


@typed_activity
def trivy_cis_checks_pass(
    techniques: list[str],
    node: str,
    compliance: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """Steady state: True when trivy-operator's latest report for `node` (as read by
    `trivy_operator_detects`) has the trivy check of every node technique in `techniques` passed; False
    (a weakness) when any is failed. An error (ActivityFailed), never a pass: trivy-operator's resources
    absent, no report, or a report that does not run a check. Nothing is recorded as a detection.
    """
    if not techniques:
        raise ActivityFailed("no node technique given")
    api = kube_api(configuration, secrets)
    for technique in techniques:
        unit = node_technique(technique)
        reading = _trivy_report(api, unit, node, compliance)
        if reading is None:
            raise ActivityFailed(f"trivy-operator has written no {_report_what(unit, node, compliance)} yet")
        if trivy.failing(reading, [unit.cis.trivy_check])[unit.cis.trivy_check]:
            return False
    return True


def _report_source(unit: Technique, node: str) -> tuple[Kind, str | None, str, str]:
    """Where trivy-operator reports the unit's check on `node`: kind, namespace, resource kind and name."""
    component = unit.node_change.component
    if component in (None, "kubelet"):  # files and kubelet settings: the node-collector's report of the node
        return trivy.CLUSTER_INFRA, None, "Node", node
    return trivy.INFRA, "kube-system", "Pod", f"{component}-{node}"  # a flag: the static pod's own report


def _report_what(unit: Technique, node: str, compliance: str | None) -> str:
    if compliance is not None:
        return f"ClusterComplianceReport {compliance} results"
    kind, namespace, resource, name = _report_source(unit, node)
    return f"{kind.kind}{f' in {namespace}' if namespace else ''} for {resource} {name}"


def _trivy_report(api: KubeAPI, unit: Technique, node: str, compliance: str | None) -> trivy.Reading | None:
    """The newest report holding the unit's check for `node`, read; None while trivy-operator wrote none."""
    if compliance is not None:
        path = f"{trivy.COMPLIANCE.collection_path()}/{compliance}"
        report = _trivy_get(api, path, f"ClusterComplianceReport {compliance}")
        generated = isinstance(report.get("status"), dict) and report["status"].get("updateTimestamp")
        return trivy.compliance_reading(report) if generated else None
    kind, namespace, resource, name = _report_source(unit, node)
    items = _trivy_get(api, kind.collection_path(namespace), f"{kind.kind}s").get("items") or []
    readings = [trivy.infra_reading(item) for item in items if _reports_on(item, resource, name)]
    return max(readings, key=lambda r: r.written_at) if readings else None


def _reports_on(report: Any, resource: str, name: str) -> bool:
    """Whether an infra report is about `resource` `name`: by trivy-operator's resource labels, or by its
    `<kind>-<name>` naming (its docs show both; a long name is hashed, the labels are not)."""
    metadata = (report.get("metadata") or {}) if isinstance(report, dict) else {}
    labels = metadata.get("labels") or {}
    if _RESOURCE_NAME in labels:
        return labels.get(_RESOURCE_KIND) == resource and labels[_RESOURCE_NAME] == name
    return metadata.get("name") == f"{resource.lower()}-{name}"


def _trivy_get(api: KubeAPI, path: str, what: str, **query: Any) -> dict[str, Any]:
    try:
        return api.get(path, **query)
    except ApiError as exc:
        if exc.status == 404:
            raise ActivityFailed(f"no {what} ({path} answered 404): trivy-operator is not installed, or does not "
                                 "make this report") from None
        raise ActivityFailed(f"could not read {what} ({exc.status} {exc.reason}: {exc.message}); the runner "
                             "needs get/list on trivy-operator's reports") from None


def _written_after(written_at: dt.datetime, injected_at: dt.datetime) -> bool:
    """Kubernetes stamps whole seconds: a report of the injection's own second counts as after it."""
    return written_at >= (injected_at.replace(microsecond=0) if written_at.microsecond == 0 else injected_at)
