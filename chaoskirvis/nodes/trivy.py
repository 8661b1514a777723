"""trivy-operator's CIS reports read into each check's pass or fail, and when the report was written.

Formats (trivy-operator pkg/apis/aquasecurity/v1alpha1, group aquasecurity.github.io/v1alpha1):

- ClusterInfraAssessmentReport (cluster-scoped, one per node, labelled `trivy-operator.resource.kind=Node`,
  `trivy-operator.resource.name=<node>`) and InfraAssessmentReport (namespaced, one per control-plane pod,
  labelled with the pod's kind and name): `report.checks` is a list of `{checkID, success, severity, ...}`,
  checkID being trivy's check id (e.g. AVD-KCV-0079). The report has no update time of its own: trivy-operator
  writes a new one when it scans again, so its `metadata.creationTimestamp` is when it was written.
- ClusterComplianceReport (cluster-scoped, e.g. `k8s-cis-1.23`): `spec.compliance.controls` maps each control
  id (the CIS numbering of that spec's benchmark version, not cis-1.9's) to the trivy check ids it runs;
  `status.updateTimestamp` is when it was generated; `status.detailReport.results` (reportType all) lists
  each control's failing checks (`checkID`, `success: false`), or one `success: true` entry when it passed;
  `status.summaryReport.controlCheck` (reportType summary) gives each control's `totalFail`.

A check is looked up by trivy's id, so the same code reads any spec version; a check the report does not
carry is an error, never a pass.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.ledger.refs import Kind

__all__ = ["GROUP_VERSION", "CLUSTER_INFRA", "INFRA", "COMPLIANCE", "Reading", "infra_reading",
           "compliance_reading", "failing"]

GROUP_VERSION = "aquasecurity.github.io/v1alpha1"
CLUSTER_INFRA = Kind(GROUP_VERSION, "clusterinfraassessmentreports", "ClusterInfraAssessmentReport", False)
INFRA = Kind(GROUP_VERSION, "infraassessmentreports", "InfraAssessmentReport")
COMPLIANCE = Kind(GROUP_VERSION, "clustercompliancereports", "ClusterComplianceReport", False)


class Reading(NamedTuple):
    """One report as read: its name, when it was written, and each trivy check id's success."""

    name: str
    written_at: dt.datetime
    success: dict[str, bool]


def _time(value: Any, what: str) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ActivityFailed(f"{what} is not a timestamp: {value!r}") from None
    if stamp.tzinfo is None:
        raise ActivityFailed(f"{what} has no time zone: {value!r}")
    return stamp


def _name(report: dict[str, Any]) -> str:
    return str((report.get("metadata") or {}).get("name") or "?")


def infra_reading(report: dict[str, Any]) -> Reading:
    """An (Cluster)InfraAssessmentReport's checks; ActivityFailed when it is not that format.

    A check id reported twice with different results is refused: such a report cannot be a pass.
    """
    name = _name(report)
    checks = (report.get("report") or {}).get("checks") if isinstance(report.get("report"), dict) else None
    if not isinstance(checks, list):
        raise ActivityFailed(f"trivy-operator report {name} has no report.checks list")
    success: dict[str, bool] = {}
    for check in checks:
        check_id = check.get("checkID") if isinstance(check, dict) else None
        passed = check.get("success") if isinstance(check, dict) else None
        if not isinstance(check_id, str) or not check_id or not isinstance(passed, bool):
            raise ActivityFailed(f"trivy-operator report {name}: a check without a checkID or a boolean success")
        if success.get(check_id, passed) != passed:
            raise ActivityFailed(f"trivy-operator report {name}: check {check_id} both passed and failed")
        success[check_id] = passed
    created = _time((report.get("metadata") or {}).get("creationTimestamp"), f"report {name}'s creationTimestamp")
    return Reading(name, created, success)


def compliance_reading(report: dict[str, Any]) -> Reading:
    """A ClusterComplianceReport's result for each trivy check id its spec maps to exactly one control.

    From the detail report when there is one, else from the summary's `totalFail` (which counts a
    control's failures, so only a control running a single check says which check failed).
    """
    name = _name(report)
    controls = (((report.get("spec") or {}).get("compliance") or {}).get("controls"))
    status = report.get("status") if isinstance(report.get("status"), dict) else None
    if not isinstance(controls, list) or status is None:
        raise ActivityFailed(f"trivy-operator compliance report {name} has no spec.compliance.controls or status")
    checks_of: dict[str, list[str]] = {}
    for control in controls:
        if not isinstance(control, dict) or not isinstance(control.get("id"), str):
            raise ActivityFailed(f"trivy-operator compliance report {name}: a control without an id")
        checks_of[control["id"]] = [c.get("id") for c in control.get("checks") or [] if isinstance(c, dict)]
    detail = (status.get("detailReport") or {}).get("results")
    summary = (status.get("summaryReport") or {}).get("controlCheck")
    if isinstance(detail, list):
        failed_of = _detail_failures(name, detail)
    elif isinstance(summary, list):
        failed_of = _summary_failures(name, summary, checks_of)
    else:
        raise ActivityFailed(f"trivy-operator compliance report {name} has neither a detail nor a summary report "
                             "yet (not generated)")
    success: dict[str, bool] = {}
    for control, failed in failed_of.items():
        for check in checks_of.get(control, []):
            if isinstance(check, str) and check:
                # A check several controls run is failed if any of them saw it fail.
                success[check] = success.get(check, True) and check not in failed
    return Reading(name, _time(status.get("updateTimestamp"), f"report {name}'s status.updateTimestamp"), success)


def _detail_failures(name: str, results: list[Any]) -> dict[str, set[str]]:
    failed_of: dict[str, set[str]] = {}
    for result in results:
        if not isinstance(result, dict) or not isinstance(result.get("id"), str) or \
                not isinstance(result.get("checks"), list):
            raise ActivityFailed(f"trivy-operator compliance report {name}: a result without an id or checks")
        failed_of[result["id"]] = {c.get("checkID") for c in result["checks"]
                                   if isinstance(c, dict) and c.get("success") is False}
    return failed_of


def _summary_failures(name: str, controls: list[Any], checks_of: dict[str, list[str]]) -> dict[str, set[str]]:
    failed_of: dict[str, set[str]] = {}
    for control in controls:
        total = control.get("totalFail") if isinstance(control, dict) else None
        if not isinstance(control, dict) or not isinstance(control.get("id"), str) or \
                not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise ActivityFailed(f"trivy-operator compliance report {name}: a summary control without an id or "
                                 "a totalFail count")
        checks = checks_of.get(control["id"], [])
        if len(checks) == 1:
            failed_of[control["id"]] = set(checks) if total else set()
    return failed_of


def failing(reading: Reading, checks: list[str]) -> dict[str, bool]:
    """For each trivy check id: True when the report has it failed, False when passed; absent is an error."""
    if not checks:
        raise ActivityFailed("no trivy check ids given")
    missing = [c for c in checks if c not in reading.success]
    if missing:
        raise ActivityFailed(f"trivy-operator report {reading.name} does not report check(s) {', '.join(missing)}: "
                             "this report (or its compliance spec) does not run them")
    return {check: not reading.success[check] for check in checks}
