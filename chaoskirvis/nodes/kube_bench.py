"""kube-bench: the Job that runs it on one node, and its `--json` output read into each check's status.

Format (kube-bench check/controls.go): with --json, recent versions print
`{"Controls": [Controls...], "Totals": {...}}`; older ones print a bare list of Controls. A Controls
holds `tests` (groups: `section`, `results`), each result has `test_number` and `status`
(PASS, FAIL, WARN or INFO).
"""
from __future__ import annotations

import json
from typing import Any, Mapping, NamedTuple

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.ledger.ownership import object_name, ownership_metadata
from chaoskirvis.nodes.layout import Absent, layout_name

__all__ = ["DEFAULT_IMAGE", "HOST_PATHS", "STATUSES", "BENCHMARKS", "Benchmark", "layout_benchmark",
           "benchmark_checks", "check_statuses", "failing_checks", "kube_bench_job"]

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


class Benchmark(NamedTuple):
    """How kube-bench runs on one layout's nodes: `--benchmark` (None: kube-bench picks by the Kubernetes
    version), the host folders its checks read, and each cis-1.9 check id's id in that benchmark (None: as
    given). An `Absent` is a CIS item the benchmark does not check (a `type: skip` check, which kube-bench
    reports INFO without running its audit)."""

    name: str | None
    host_paths: tuple[str, ...]
    checks: Mapping[str, str | Absent] | None


def _same(*ids: str) -> dict[str, str | Absent]:
    return {check: check for check in ids}


def _skipped(benchmark: str, why: str, *ids: str) -> dict[str, str | Absent]:
    return {check: Absent(f"{benchmark} skips it ({why})") for check in ids}


# The cis-1.9 ids our node units name (chaoskirvis.techniques.nodes), per benchmark, read in aquasecurity/kube-bench
# cfg/rke2-cis-1.7/master.yaml and node.yaml (commits 15e07656a07a, 08987b2e6d97) and cfg/k3s-cis-1.7/master.yaml
# and node.yaml (commits 1d41c7c3dbb5, 18e9d52419c5): the same item (same text) under the same id, except the API
# server's profiling (cis-1.9 1.2.15, 1.7's 1.2.17) and audit-log-maxage (cis-1.9 1.2.17, 1.7's 1.2.19).
_SAME_IN_1_7 = ("1.1.13", "1.1.14", "1.1.15", "1.1.16", "1.1.17", "1.1.18", "1.2.1", "1.2.6", "1.2.10", "1.3.2",
                "1.4.1", "4.1.5", "4.1.6", "4.1.7", "4.1.8", "4.2.1", "4.2.2", "4.2.4", "4.2.10")
_RKE2_CHECKS = {
    **_same(*_SAME_IN_1_7, "1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5", "1.1.6", "1.1.7", "1.1.8", "4.1.9", "4.1.10",
            "4.2.6"),
    "1.2.15": "1.2.17",
    **_skipped("rke2-cis-1.7", "1.2.19, audit-log-maxage, type: skip", "1.2.17"),
    **_skipped("rke2-cis-1.7", "4.1.1/4.1.2: rke2 has no kubelet service file", "4.1.1", "4.1.2"),
}
_K3S_CHECKS = {
    **_same(*_SAME_IN_1_7),
    "1.2.15": "1.2.17",
    "1.2.17": "1.2.19",
    **_skipped("k3s-cis-1.7", "1.1.1-1.1.8: k3s embeds the API server, controller manager, scheduler and etcd, "
               "there are no pod specification files", "1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5", "1.1.6", "1.1.7",
               "1.1.8"),
    **_skipped("k3s-cis-1.7", "4.1.1/4.1.2: no kubelet service file", "4.1.1", "4.1.2"),
    **_skipped("k3s-cis-1.7", "4.1.9/4.1.10: no kubelet config file", "4.1.9", "4.1.10"),
    **_skipped("k3s-cis-1.7", "4.2.6, make-iptables-util-chains, type: skip", "4.2.6"),
}
# kube-bench ships no Job manifest for rke2 or k3s (its job.yaml and job-node.yaml mount kubeadm's folders and no
# /var/lib/rancher; docs/running.md runs the container with the host's /etc and /var read-only). These are the
# folders the two benchmarks' audits read: every rke2 path is below /var/lib/rancher/rke2 (pod-manifests,
# server/cred, server/db/etcd, server/tls, agent); k3s's are below /var/lib/rancher/k3s, and its kubelet and
# API server flags are read from the k3s unit's journal (node.yaml: `journalctl -D /var/log/journal -u k3s`).
BENCHMARKS: dict[str, Benchmark] = {
    "kubeadm": Benchmark(None, HOST_PATHS, None),
    "rke2": Benchmark("rke2-cis-1.7", ("/var/lib/rancher/rke2",), _RKE2_CHECKS),
    "k3s": Benchmark("k3s-cis-1.7", ("/var/lib/rancher/k3s", "/var/log/journal"), _K3S_CHECKS),
}


def layout_benchmark(configuration: Mapping[str, Any] | None) -> Benchmark:
    """The Benchmark of the layout `configuration[kirvis_node_layout]` names; ActivityFailed for an unknown one."""
    try:
        return BENCHMARKS[layout_name(configuration)]
    except ValueError as exc:
        raise ActivityFailed(str(exc)) from None


def benchmark_checks(benchmark: Benchmark, checks: list[str]) -> dict[str, str]:
    """Each cis-1.9 check id of `checks` mapped to its id in `benchmark`; ActivityFailed naming the item and the
    benchmark where it has no such check, or where the id is not one whose counterpart is known."""
    if benchmark.checks is None:
        return {check: check for check in checks}
    mapped: dict[str, str] = {}
    for check in checks:
        found = benchmark.checks.get(check)
        if found is None:
            raise ActivityFailed(f"no {benchmark.name} counterpart is known for cis-1.9 check {check}: give the "
                                 "cis-1.9 id of an item the node techniques cover (their `cis` check)")
        if isinstance(found, Absent):
            raise ActivityFailed(f"cis-1.9 check {check} has no check in {benchmark.name}: {found.reason}; "
                                 "kube-bench would not report it")
        mapped[check] = found
    return mapped


def kube_bench_job(run_id: str, technique: str, node_name: str, targets: list[str], checks: list[str],
                   namespace: str, suffix: str, image: str = DEFAULT_IMAGE,
                   configuration: dict[str, Any] | None = None,
                   benchmark: Benchmark = BENCHMARKS["kubeadm"]) -> dict[str, Any]:
    """The Job body running `kube-bench run [--benchmark B] --targets ... --check ... --json` once on `node_name`,
    with `benchmark`'s host folders mounted read-only. `checks` are the benchmark's own ids."""
    if not checks or not targets:
        raise ActivityFailed("kube-bench needs at least one target and one CIS check id")
    paths = benchmark.host_paths
    volumes = [{"name": f"host-{i}", "hostPath": {"path": p}} for i, p in enumerate(paths)]
    mounts = [{"name": f"host-{i}", "mountPath": p, "readOnly": True} for i, p in enumerate(paths)]
    chosen = ["--benchmark", benchmark.name] if benchmark.name else []
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
                        "command": ["kube-bench", "run", *chosen, "--targets", ",".join(targets),
                                    "--check", ",".join(checks), "--json"],
                        "volumeMounts": mounts,
                    }],
                    "volumes": volumes,
                },
            },
        },
    }
