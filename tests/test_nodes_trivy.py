"""trivy-operator's CIS reports: the parser and decision against samples, and the probes over real HTTP.

The samples are written here from trivy-operator's types (pkg/apis/aquasecurity/v1alpha1:
infra_assessment_types.go, config_audit_types.go' Check, compliance_types.go) and its CRDs, with the check
ids trivy-checks' specs/compliance/k8s-cis-1.23.yaml uses. The probe tests serve the reports from the
sandbox as custom resources under CRDs shaped like trivy-operator's; the test plays trivy-operator (it
writes the report) and the node action (it records the injection in the run, as the action does).
"""
from __future__ import annotations

import copy
import datetime as dt
import threading
import time

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaoskirvis.ledger.probes import injections_detected
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.nodes import probes, trivy
from chaoskirvis.nodes.probes import trivy_cis_checks_pass, trivy_operator_detects
from chaoskirvis.techniques.nodes import NODE_TECHNIQUES, node_technique

GROUP, VERSION = "aquasecurity.github.io", "v1alpha1"


def infra_report(name: str, checks: dict[str, bool], created: str = "2026-12-01T10:00:05Z", **labels: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterInfraAssessmentReport",
        "metadata": {"name": name, "creationTimestamp": created, "labels": labels},
        "report": {
            "scanner": {"name": "Trivy", "vendor": "Aqua Security", "version": "0.50.1"},
            "summary": {"criticalCount": sum(not ok for ok in checks.values()), "highCount": 0, "mediumCount": 0,
                        "lowCount": 0},
            "checks": [{"checkID": check, "severity": "CRITICAL", "success": ok, "category": "Kubernetes Security Check",
                        "title": f"check {check}", "messages": [] if ok else ["failed in the sample"]}
                       for check, ok in checks.items()],
        },
    }


# A k8s-cis-1.23 compliance report: control ids in CIS 1.23's numbering, each mapped to trivy's check ids.
CONTROLS = [
    {"id": "1.2.7", "name": "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
     "checks": [{"id": "AVD-KCV-0007"}], "severity": "LOW"},
    {"id": "4.2.1", "name": "Ensure that the --anonymous-auth argument is set to false",
     "checks": [{"id": "AVD-KCV-0079"}], "severity": "CRITICAL"},
    {"id": "4.2.10", "name": "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set",
     "checks": [{"id": "AVD-KCV-0088"}, {"id": "AVD-KCV-0089"}], "severity": "CRITICAL"},
]


def compliance_report(status: dict, name: str = "k8s-cis-1.23") -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterComplianceReport", "metadata": {"name": name},
            "spec": {"cron": "0 */6 * * *", "reportType": "all",
                     "compliance": {"id": "k8s-cis", "title": "CIS Kubernetes Benchmarks v1.23", "version": "1.23",
                                    "controls": CONTROLS}},
            "status": status}


DETAIL = {"updateTimestamp": "2026-12-01T10:00:07Z", "summary": {"failCount": 1, "passCount": 2},
          "detailReport": {"id": "k8s-cis", "title": "CIS Kubernetes Benchmarks v1.23", "results": [
              {"id": "1.2.7", "name": CONTROLS[0]["name"], "severity": "LOW", "checks": [{"success": True}]},
              {"id": "4.2.1", "name": CONTROLS[1]["name"], "severity": "CRITICAL", "checks": [
                  {"checkID": "AVD-KCV-0079", "target": "node-n1", "severity": "CRITICAL", "success": False}]},
              {"id": "4.2.10", "name": CONTROLS[2]["name"], "severity": "CRITICAL", "checks": [{"success": True}]},
          ]}}
SUMMARY = {"updateTimestamp": "2026-12-01T10:00:07Z", "summary": {"failCount": 2, "passCount": 1},
           "summaryReport": {"id": "k8s-cis", "title": "CIS Kubernetes Benchmarks v1.23", "controlCheck": [
               {"id": "1.2.7", "name": CONTROLS[0]["name"], "severity": "LOW", "totalFail": 0},
               {"id": "4.2.1", "name": CONTROLS[1]["name"], "severity": "CRITICAL", "totalFail": 3},
               {"id": "4.2.10", "name": CONTROLS[2]["name"], "severity": "CRITICAL", "totalFail": 1},
           ]}}


# --- the parser and the decision, against samples -------------------------------------------------------------

def test_an_infra_report_gives_each_check_and_when_it_was_written():
    reading = trivy.infra_reading(infra_report("node-n1", {"AVD-KCV-0079": False, "AVD-KCV-0080": True}))
    assert reading == trivy.Reading("node-n1", dt.datetime(2026, 12, 1, 10, 0, 5, tzinfo=dt.UTC),
                                    {"AVD-KCV-0079": False, "AVD-KCV-0080": True})
    assert trivy.failing(reading, ["AVD-KCV-0079", "AVD-KCV-0080"]) == {"AVD-KCV-0079": True, "AVD-KCV-0080": False}


def test_a_check_the_report_does_not_run_is_an_error_never_a_pass():
    reading = trivy.infra_reading(infra_report("node-n1", {"AVD-KCV-0080": True}))
    with pytest.raises(ActivityFailed, match="does not report check.*AVD-KCV-0079"):
        trivy.failing(reading, ["AVD-KCV-0079"])


@pytest.mark.parametrize("mangle", [
    lambda r: r.pop("report"),
    lambda r: r["report"].update(checks={"AVD-KCV-0079": False}),
    lambda r: r["report"]["checks"][0].update(success="false"),
    lambda r: r["report"]["checks"][0].pop("checkID"),
    lambda r: r["metadata"].update(creationTimestamp="yesterday"),
    lambda r: r["metadata"].update(creationTimestamp="2026-12-01T10:00:05"),
    lambda r: r["report"]["checks"].append({**r["report"]["checks"][0], "success": True}),
], ids=["no-report", "checks-not-a-list", "success-a-string", "no-check-id", "bad-time", "naive-time", "both"])
def test_a_report_not_in_trivy_operators_format_is_refused(mangle):
    report = infra_report("node-n1", {"AVD-KCV-0079": False})
    mangle(report)
    with pytest.raises(ActivityFailed):
        trivy.infra_reading(report)


def test_a_compliance_detail_report_is_read_by_trivy_check_id_through_its_spec():
    reading = trivy.compliance_reading(compliance_report(DETAIL))
    assert reading.written_at == dt.datetime(2026, 12, 1, 10, 0, 7, tzinfo=dt.UTC)
    assert reading.success == {"AVD-KCV-0007": True, "AVD-KCV-0079": False, "AVD-KCV-0088": True,
                               "AVD-KCV-0089": True}


def test_the_units_check_decides_on_a_compliance_report():
    reading = trivy.compliance_reading(compliance_report(DETAIL))
    assert trivy.failing(reading, [node_technique("kubelet-anonymous-auth").cis.trivy_check]) == {"AVD-KCV-0079": True}
    assert trivy.failing(reading, [node_technique("apiserver-always-allow").cis.trivy_check]) == {"AVD-KCV-0007": False}


def test_a_compliance_summary_says_which_check_failed_only_for_a_control_of_one_check():
    reading = trivy.compliance_reading(compliance_report(SUMMARY))
    # 4.2.10 runs two checks and failed once: which one is not said, so neither is reported either way.
    assert reading.success == {"AVD-KCV-0007": True, "AVD-KCV-0079": False}
    with pytest.raises(ActivityFailed, match="AVD-KCV-0088"):
        trivy.failing(reading, ["AVD-KCV-0088"])


@pytest.mark.parametrize("status", [{}, {"updateTimestamp": "2026-12-01T10:00:07Z"},
                                    {**SUMMARY, "summaryReport": {"controlCheck": [{"id": "1.2.7", "totalFail": "0"}]}},
                                    {**SUMMARY, "summaryReport": {"controlCheck": [{"id": "1.2.7", "totalFail": -1}]}},
                                    {**DETAIL, "detailReport": {"results": [{"id": "4.2.1"}]}}],
                         ids=["not-generated", "no-results", "count-a-string", "negative-count", "result-no-checks"])
def test_a_compliance_report_without_usable_results_is_an_error(status):
    with pytest.raises(ActivityFailed):
        trivy.compliance_reading(compliance_report(status))


def test_every_node_unit_names_a_distinct_trivy_check():
    checks = [t.cis.trivy_check for t in NODE_TECHNIQUES]
    assert all(c.startswith("AVD-KCV-0") and len(c) == 12 for c in checks) and len(set(checks)) == len(checks)
    # k8s-cis-1.23 numbers the API server checks as CIS 1.23 did: its control 1.2.7 is cis-1.9's 1.2.6.
    unit = node_technique("apiserver-always-allow")
    assert (unit.cis.id, unit.cis.trivy_check) == ("1.2.6", CONTROLS[0]["checks"][0]["id"])


# --- the probes over real HTTP, the reports served by the sandbox ---------------------------------------------

def _crd(kind: str, plural: str, scope: str) -> dict:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {"group": GROUP, "scope": scope,
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                     "versions": [{"name": VERSION, "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}


CRDS = [_crd("ClusterInfraAssessmentReport", "clusterinfraassessmentreports", "Cluster"),
        _crd("InfraAssessmentReport", "infraassessmentreports", "Namespaced"),
        _crd("ClusterComplianceReport", "clustercompliancereports", "Cluster")]


@pytest.fixture(scope="module")
def trivy_crds(api):
    extensions = client.ApiextensionsV1Api(api)
    try:
        for crd in CRDS:
            extensions.create_custom_resource_definition(crd)
    except client.ApiException as error:
        if error.status == 404:
            pytest.skip("this sandbox does not serve CustomResourceDefinitions")
        raise
    yield client.CustomObjectsApi(api)
    for crd in CRDS:
        extensions.delete_custom_resource_definition(crd["metadata"]["name"])


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setattr(probes, "TRIVY_POLL_S", 0.1)


def _node() -> str:
    return f"n-{time.time_ns() % 10**9}"


def _injected(run: dict, technique: str, node: str) -> None:
    """What the node action records when its change went through: an allowed outcome naming the technique."""
    run_state(current_run_id(run["configuration"])).add_outcome({
        "outcome": "allowed", "techniques": [technique], "node": node, "kind": "node-file",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")})


def _write_node_report(objects, node: str, checks: dict[str, bool], after: float = 0.0) -> threading.Thread:
    body = infra_report(f"node-{node}", checks, **{"trivy-operator.resource.kind": "Node",
                                                   "trivy-operator.resource.name": node})
    del body["metadata"]["creationTimestamp"]  # the API server stamps it

    def write() -> None:
        time.sleep(after)
        try:
            objects.delete_cluster_custom_object(GROUP, VERSION, "clusterinfraassessmentreports", f"node-{node}")
        except client.ApiException as error:
            assert error.status == 404
        objects.create_cluster_custom_object(GROUP, VERSION, "clusterinfraassessmentreports", copy.deepcopy(body))

    writer = threading.Thread(target=write)
    writer.start()
    return writer


def test_without_trivy_operator_the_probe_is_an_error(run):
    # Runs before any test of this module installs the CRDs: the sandbox answers 404 for the resource.
    node = _node()
    _injected(run, "kubelet-always-allow", node)
    with pytest.raises(ActivityFailed, match="trivy-operator is not installed"):
        trivy_operator_detects("kubelet-always-allow", node, within=1, **run)
    assert run_state(current_run_id(run["configuration"])).detections[-1]["outcome"] == "error"


def test_a_rescan_that_fails_the_check_is_detected_with_its_time(trivy_crds, run):
    node = _node()
    _write_node_report(trivy_crds, node, {"AVD-KCV-0079": True}).join()  # the scan before the change passed
    time.sleep(1.05)  # creationTimestamp has whole seconds: the rescan must fall in a later one
    _injected(run, "kubelet-anonymous-auth", node)
    writer = _write_node_report(trivy_crds, node, {"AVD-KCV-0079": False}, after=0.3)
    outcome = trivy_operator_detects("kubelet-anonymous-auth", node, within=10, **run)
    writer.join()
    assert outcome["outcome"] == "detected" and outcome["status"] == "FAIL" and outcome["check"] == "AVD-KCV-0079"
    assert 0 <= outcome["time_to_detect_s"] < 10 and outcome["report"] == f"node-{node}"
    assert injections_detected(**run) is True


def test_a_rescan_that_passes_is_missed(trivy_crds, run):
    node = _node()
    _injected(run, "kubelet-config-owner", node)
    _write_node_report(trivy_crds, node, {"AVD-KCV-0078": True}, after=0.2)
    outcome = trivy_operator_detects("kubelet-config-owner", node, within=10, **run)
    assert (outcome["outcome"], outcome["status"]) == ("missed", "PASS")
    assert injections_detected(**run) is False


def test_a_failing_report_from_before_the_injection_does_not_count(trivy_crds, run):
    node = _node()
    _write_node_report(trivy_crds, node, {"AVD-KCV-0079": False}).join()  # already failing: not our change
    time.sleep(1.05)
    _injected(run, "kubelet-anonymous-auth", node)
    outcome = trivy_operator_detects("kubelet-anonymous-auth", node, within=0.5, **run)
    assert (outcome["outcome"], outcome["status"]) == ("missed", "not rescanned since the injection")


def test_a_control_plane_flag_is_read_from_its_static_pods_report(trivy_crds, run):
    node = _node()
    _injected(run, "apiserver-always-allow", node)
    for name, checks, labels in (
            # another node's API server, by its labels: not this node's
            (f"pod-kube-apiserver-x{node}", {"AVD-KCV-0007": True},
             {"trivy-operator.resource.kind": "Pod", "trivy-operator.resource.name": f"kube-apiserver-x{node}"}),
            # this node's, known by trivy-operator's <kind>-<name> naming only, as its docs' sample shows
            (f"pod-kube-apiserver-{node}", {"AVD-KCV-0007": False}, {})):
        body = infra_report(name, checks, **labels)
        body["kind"] = "InfraAssessmentReport"
        del body["metadata"]["creationTimestamp"]
        trivy_crds.create_namespaced_custom_object(GROUP, VERSION, "kube-system", "infraassessmentreports", body)
    outcome = trivy_operator_detects("apiserver-always-allow", node, within=5, **run)
    assert (outcome["outcome"], outcome["report"]) == ("detected", f"pod-kube-apiserver-{node}")
    # The node's own report does not hold API server flags: a node without the pod's report is an error.
    with pytest.raises(ActivityFailed, match="no InfraAssessmentReport in kube-system for Pod kube-apiserver-other"):
        trivy_operator_detects("apiserver-always-allow", "other", within=0.3, **run)


def test_a_first_report_written_while_the_probe_waits_counts(trivy_crds, run):
    node = _node()
    _injected(run, "kubelet-no-cert-rotation", node)
    _write_node_report(trivy_crds, node, {"AVD-KCV-0090": False}, after=0.3)
    assert trivy_operator_detects("kubelet-no-cert-rotation", node, within=10, **run)["outcome"] == "detected"


def test_a_compliance_report_not_generated_yet_or_absent_is_an_error(trivy_crds, run):
    # trivy-operator writes a compliance report's results through its status subresource, which the sandbox
    # does not serve (it stores custom objects without status): here the report exists with its spec only,
    # as right after trivy-operator's install. Reading generated results is tested on the samples above.
    node = _node()
    name = f"k8s-cis-1.23-{node}"
    trivy_crds.create_cluster_custom_object(GROUP, VERSION, "clustercompliancereports", compliance_report({}, name))
    _injected(run, "kubelet-anonymous-auth", node)
    with pytest.raises(ActivityFailed, match=f"wrote no ClusterComplianceReport {name} results within 0.3 s"):
        trivy_operator_detects("kubelet-anonymous-auth", node, within=0.3, compliance=name, **run)
    with pytest.raises(ActivityFailed, match=f"has written no ClusterComplianceReport {name} results yet"):
        trivy_cis_checks_pass(["kubelet-anonymous-auth"], node, compliance=name, **run)
    with pytest.raises(ActivityFailed, match="no ClusterComplianceReport k8s-cis-1.30.*404"):
        trivy_cis_checks_pass(["kubelet-anonymous-auth"], node, compliance="k8s-cis-1.30", **run)


def test_the_posture_holds_only_while_every_check_passes(trivy_crds, run):
    node = _node()
    _write_node_report(trivy_crds, node, {"AVD-KCV-0079": True, "AVD-KCV-0080": False}).join()
    assert trivy_cis_checks_pass(["kubelet-anonymous-auth"], node, **run) is True
    assert trivy_cis_checks_pass(["kubelet-anonymous-auth", "kubelet-always-allow"], node, **run) is False
    with pytest.raises(ActivityFailed, match="does not report check.*AVD-KCV-0090"):
        trivy_cis_checks_pass(["kubelet-no-cert-rotation"], node, **run)


def test_no_report_for_the_node_is_an_error_recorded_as_such(trivy_crds, run):
    node = _node()
    _injected(run, "kubelet-always-allow", node)
    with pytest.raises(ActivityFailed, match=f"wrote no ClusterInfraAssessmentReport for Node {node} within 0.5 s"):
        trivy_operator_detects("kubelet-always-allow", node, within=0.5, **run)
    with pytest.raises(ActivityFailed, match=f"has written no ClusterInfraAssessmentReport for Node {node} yet"):
        trivy_cis_checks_pass(["kubelet-always-allow"], node, **run)
    assert run_state(current_run_id(run["configuration"])).detections[-1]["outcome"] == "error"


def test_without_an_injection_of_the_technique_the_probe_proves_nothing(trivy_crds, run):
    with pytest.raises(ActivityFailed, match="introduced nothing of technique kubelet-always-allow"):
        trivy_operator_detects("kubelet-always-allow", _node(), within=1, **run)
