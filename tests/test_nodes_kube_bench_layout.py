"""The kube-bench Job per `kirvis_node_layout`: rke2 and k3s mount their own folders, pass `--benchmark` and ask for
that benchmark's id of each CIS item; an item the benchmark does not check is refused before anything is created.

Expected ids restated from aquasecurity/kube-bench's cfg (read there, not from our code):
- cfg/rke2-cis-1.7/master.yaml and cfg/k3s-cis-1.7/master.yaml: 1.2.15 is "Ensure that the admission control plugin
  NodeRestriction is set", 1.2.17 "Ensure that the --profiling argument is set to false", 1.2.19 "--audit-log-maxage"
  (cis-1.9: 1.2.15 profiling, 1.2.17 audit-log-maxage); rke2's 1.2.19 is `type: "skip"`; k3s's 1.1.1-1.1.8 are
  `type: "skip"` ("K3s embeds the api server within the k3s process").
- cfg/rke2-cis-1.7/node.yaml: 4.1.1/4.1.2 `type: "skip"`; cfg/k3s-cis-1.7/node.yaml: 4.1.1, 4.1.2, 4.1.9, 4.1.10
  and 4.2.6 `type: "skip"`. Every other item our units name keeps its cis-1.9 id and text in both.
- k3s's node audits read `journalctl -D /var/log/journal -u k3s`; every rke2 path they stat is below
  /var/lib/rancher/rke2, every k3s one below /var/lib/rancher/k3s.
"""
import json
import threading

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.nodes.kube_bench import BENCHMARKS, benchmark_checks, kube_bench_job, layout_benchmark
from chaoskirvis.nodes.probes import cis_checks_pass, kube_bench_detects
from chaoskirvis.techniques.nodes import NODE_TECHNIQUES
from tests.test_nodes_benchmark_probe import _finish, fast_poll  # noqa: F401

UNIT_CHECKS = sorted({unit.cis.id for unit in NODE_TECHNIQUES})
RENUMBERED = {"rke2": {"1.2.15": "1.2.17"}, "k3s": {"1.2.15": "1.2.17", "1.2.17": "1.2.19"}}
SKIPPED = {"rke2": {"1.2.17", "4.1.1", "4.1.2"},
           "k3s": {"1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5", "1.1.6", "1.1.7", "1.1.8", "4.1.1", "4.1.2", "4.1.9",
                   "4.1.10", "4.2.6"}}
NAME = {"rke2": "rke2-cis-1.7", "k3s": "k3s-cis-1.7"}


def _job(layout, checks, targets=("master",)):
    bench = layout_benchmark({"kirvis_node_layout": layout} if layout else {})
    job = kube_bench_job("r1", "kube-bench", "cp-1", list(targets), checks, "kirvis", "ab12", benchmark=bench)
    return job["spec"]["template"]["spec"]


@pytest.mark.parametrize("layout, benchmark, paths", [
    (None, [], ["/etc/kubernetes", "/etc/systemd", "/usr/bin", "/var/lib/kubelet"]),
    ("kubeadm", [], ["/etc/kubernetes", "/etc/systemd", "/usr/bin", "/var/lib/kubelet"]),
    ("rke2", ["--benchmark", "rke2-cis-1.7"], ["/var/lib/rancher/rke2"]),
    ("k3s", ["--benchmark", "k3s-cis-1.7"], ["/var/lib/rancher/k3s", "/var/log/journal"]),
])
def test_job_mounts_the_layouts_folders_read_only_and_names_its_benchmark(layout, benchmark, paths):
    pod = _job(layout, ["1.2.17"])
    container = pod["containers"][0]
    assert container["command"] == ["kube-bench", "run", *benchmark, "--targets", "master", "--check", "1.2.17",
                                    "--json"]
    by_name = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    assert sorted(by_name.values()) == paths
    assert len(container["volumeMounts"]) == len(paths)
    assert all(m["readOnly"] is True and m["mountPath"] == by_name[m["name"]] for m in container["volumeMounts"])


@pytest.mark.parametrize("layout", ["rke2", "k3s"])
@pytest.mark.parametrize("check", UNIT_CHECKS)
def test_each_unit_check_is_the_benchmarks_id_for_the_same_item(layout, check):
    bench = layout_benchmark({"kirvis_node_layout": layout})
    if check in SKIPPED[layout]:
        with pytest.raises(ActivityFailed, match=rf"cis-1.9 check {check} has no check in {NAME[layout]}"):
            benchmark_checks(bench, [check])
    else:
        assert benchmark_checks(bench, [check]) == {check: RENUMBERED[layout].get(check, check)}


def test_kubeadm_asks_for_the_ids_as_given():
    assert benchmark_checks(BENCHMARKS["kubeadm"], ["1.2.15", "9.9.9"]) == {"1.2.15": "1.2.15", "9.9.9": "9.9.9"}


@pytest.mark.parametrize("layout", ["rke2", "k3s"])
def test_an_id_without_a_known_counterpart_is_refused(layout):
    # cis-1.9's 1.2.16 (audit-log-path) is 1.7's 1.2.18: passing it through would ask for 1.2.16, --secure-port
    with pytest.raises(ActivityFailed, match=f"no {NAME[layout]} counterpart is known for cis-1.9 check 1.2.16"):
        benchmark_checks(layout_benchmark({"kirvis_node_layout": layout}), ["4.2.1", "1.2.16"])


def test_an_unknown_layout_is_refused():
    with pytest.raises(ActivityFailed, match="'RKE2' is not a known node layout"):
        layout_benchmark({"kirvis_node_layout": "RKE2"})


def _layout_run(run, layout):
    return {**run, "configuration": {**run["configuration"], "kirvis_node_layout": layout}}


@pytest.mark.parametrize("layout, checks, item", [
    ("rke2", ["4.2.1", "4.1.1"], "4.1.1"), ("rke2", ["1.2.17"], "1.2.17"), ("k3s", ["1.1.1"], "1.1.1"),
])
@pytest.mark.parametrize("probe", [kube_bench_detects, cis_checks_pass])
def test_a_refused_item_creates_nothing(sandbox, make_namespace, run, layout, checks, item, probe):
    namespace = make_namespace()
    start = len(sandbox.sandbox.requests)
    with pytest.raises(ActivityFailed, match=rf"check {item} has no check in {NAME[layout]}"):
        probe(checks, "cp-1", within=5, namespace=namespace, **_layout_run(run, layout))
    assert [(r.method, r.path) for r in sandbox.sandbox.requests[start:] if r.method != "GET"] == []
    if probe is kube_bench_detects:  # recorded as an error: a run that tested nothing is never held
        assert [d["outcome"] for d in run_state(current_run_id(run["configuration"])).detections] == ["error"]


def _result(number, text, status):
    return {"test_number": number, "test_desc": text, "audit": "/bin/ps -ef | grep kube-apiserver | grep -v grep",
            "AuditConfig": "", "type": "", "remediation": "", "test_info": [], "status": status, "actual_value": "",
            "scored": True, "IsMultiple": False, "expected_result": "", "reason": ""}


# kube-bench --json as `--benchmark rke2-cis-1.7 --targets master --check 1.2.15,1.2.17` prints it on an rke2
# server whose API server runs with --profiling=true: 1.2.15 is rke2's NodeRestriction check (passing), 1.2.17 its
# profiling check (failing). A probe asking for cis-1.9's 1.2.15 without the mapping would read a pass.
RKE2_OUTPUT = json.dumps({"Controls": [{
    "id": "1", "version": "rke2-cis-1.7", "detected_version": "", "text": "Control Plane Security Configuration",
    "node_type": "master", "tests": [{
        "section": "1.2", "type": "", "pass": 1, "fail": 1, "warn": 0, "info": 0, "desc": "API Server",
        "results": [
            _result("1.2.15", "Ensure that the admission control plugin NodeRestriction is set (Automated)", "PASS"),
            _result("1.2.17", "Ensure that the --profiling argument is set to false (Automated)", "FAIL"),
        ]}],
    "total_pass": 1, "total_fail": 1, "total_warn": 0, "total_info": 0}],
    "Totals": {"total_pass": 1, "total_fail": 1, "total_warn": 0, "total_info": 0}})


def test_rke2_probe_runs_rke2s_benchmark_and_reads_its_profiling_check(api, core, sandbox, make_namespace, run):
    namespace = make_namespace()
    batch = client.BatchV1Api(api)
    player = threading.Thread(target=_finish, args=(core, batch, sandbox, namespace, RKE2_OUTPUT))
    player.start()
    try:
        outcome = kube_bench_detects(["1.2.15"], "cp-1", targets=["master"], within=10, namespace=namespace,
                                     **_layout_run(run, "rke2"))
    finally:
        player.join()
    assert outcome["outcome"] == "detected" and outcome["checks"] == {"1.2.15": "FAIL"}
    assert outcome["benchmark"] == "rke2-cis-1.7" and outcome["benchmark_checks"] == {"1.2.15": "1.2.17"}
    [job] = batch.list_namespaced_job(namespace).items
    container = job.spec.template.spec.containers[0]
    assert container.command == ["kube-bench", "run", "--benchmark", "rke2-cis-1.7", "--targets", "master",
                                 "--check", "1.2.17", "--json"]
    assert [(v.host_path.path, m.mount_path, m.read_only)
            for v, m in zip(job.spec.template.spec.volumes, container.volume_mounts)] == \
        [("/var/lib/rancher/rke2", "/var/lib/rancher/rke2", True)]
