"""kube-bench: the Job that runs it on one node, and its `--json` output read into each check's status.

Format (kube-bench check/controls.go): with --json, recent versions print
`{"Controls": [Controls...], "Totals": {...}}`; older ones print a bare list of Controls. A Controls
holds `tests` (groups: `section`, `results`), each result has `test_number` and `status`
(PASS, FAIL, WARN or INFO).
"""
from __future__ import annotations

import json
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.ledger.ownership import object_name, ownership_metadata

__all__ = ["DEFAULT_IMAGE", "HOST_PATHS", "STATUSES", "check_statuses", "failing_checks", "kube_bench_job"]

STATUSES = ("PASS", "FAIL", "WARN", "INFO")


def check_statuses(output: str) -> dict[str, str]:
    """Map each check id in kube-bench's --json output to its status; ActivityFailed when it is not that format.

    A status outside PASS/FAIL/WARN/INFO, or one check id reported twice with different statuses, is
    refused: such output is not kube-bench's and cannot be a pass nor a detection.
    """
    try:
        data = json.loads(output)
    except ValueError:
        raise ActivityFailed("kube-bench output is not JSON (was it run with --json?)") from None
    controls = data.get("Controls") if isinstance(data, dict) else data
    if not isinstance(controls, list):
        raise ActivityFailed("kube-bench output has no Controls list")
    statuses: dict[str, str] = {}
    for control in controls:
        groups = control.get("tests") if isinstance(control, dict) else None
        if not isinstance(groups, list):
            raise ActivityFailed("kube-bench output: a Controls entry has no tests list")
        for group in groups:
            results = group.get("results") if isinstance(group, dict) else None
            if not isinstance(results, list):
                raise ActivityFailed("kube-bench output: a tests entry has no results list")
            for result in results:
                _record(statuses, result)
    return statuses


def _record(statuses: dict[str, str], result: Any) -> None:
    check = result.get("test_number") if isinstance(result, dict) else None
    status = result.get("status") if isinstance(result, dict) else None
    if not isinstance(check, str) or not check:
        raise ActivityFailed("kube-bench output: a result has no test_number")
    if status not in STATUSES:
        raise ActivityFailed(f"kube-bench output: check {check} has status {status!r}, not one of {STATUSES}")
    if statuses.get(check, status) != status:
        raise ActivityFailed(f"kube-bench output: check {check} reported as both {statuses[check]} and {status}")
    statuses[check] = status


def failing_checks(statuses: dict[str, str], checks: list[str]) -> dict[str, bool]:
    """For each requested check id: True when kube-bench reported it FAIL, False when PASS.

    A check absent from the output was not run (wrong id, targets or benchmark version): an error, never
    a pass. WARN and INFO are kube-bench's answer for checks it cannot decide by itself (manual ones, or
    an audit that found nothing to compare): an error too, as they neither confirm nor deny the change.
    """
    if not checks:
        raise ActivityFailed("no CIS check ids given")
    missing = [check for check in checks if check not in statuses]
    if missing:
        raise ActivityFailed(f"kube-bench did not report check(s) {', '.join(missing)}: check the ids, "
                             "the --targets and the benchmark version")
    undecided = [f"{check} ({statuses[check]})" for check in checks if statuses[check] not in ("PASS", "FAIL")]
    if undecided:
        raise ActivityFailed(f"kube-bench could not decide check(s) {', '.join(undecided)}: neither a pass "
                             "nor a failure")
    return {check: statuses[check] == "FAIL" for check in checks}


DEFAULT_IMAGE = "aquasec/kube-bench:v0.8.0"
# As mounted by kube-bench's job-node.yaml; /usr/bin lets it find kubelet and detect the version.
HOST_PATHS = ("/var/lib/kubelet", "/etc/systemd", "/etc/kubernetes", "/usr/bin")


def kube_bench_job(run_id: str, technique: str, node_name: str, targets: list[str], checks: list[str],
                   namespace: str, suffix: str, image: str = DEFAULT_IMAGE,
                   configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Job body running `kube-bench run --targets ... --check ... --json` once on `node_name`."""
    if not checks or not targets:
        raise ActivityFailed("kube-bench needs at least one target and one CIS check id")
    volumes = [{"name": f"host-{i}", "hostPath": {"path": p}} for i, p in enumerate(HOST_PATHS)]
    mounts = [{"name": f"host-{i}", "mountPath": p, "readOnly": True} for i, p in enumerate(HOST_PATHS)]
    metadata = ownership_metadata(run_id, technique, configuration)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": object_name(run_id, "kube-bench", suffix), "namespace": namespace, **metadata},
        "spec": {
            "backoffLimit": 0,  # one run, one answer: a failed run is an error, not retried into another
            "template": {
                "metadata": metadata,
                "spec": {
                    "nodeName": node_name,
                    "hostPID": True,  # kube-bench reads the kubelet's and components' command lines
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{
                        "name": "kube-bench", "image": image,
                        "command": ["kube-bench", "run", "--targets", ",".join(targets),
                                    "--check", ",".join(checks), "--json"],
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    }
