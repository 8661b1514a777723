"""kube-bench --json output (samples written from kube-bench's check/controls.go format) read into check statuses."""
import json
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.nodes.kube_bench import check_statuses, failing_checks

SAMPLES = Path(__file__).parent / "benchmark_samples"


def test_statuses_from_the_controls_and_totals_form():
    text = (SAMPLES / "kube_bench_node_fail.json").read_text()
    assert check_statuses(text) == {"4.1.1": "FAIL", "4.2.1": "PASS", "4.2.6": "WARN"}


def test_statuses_from_the_older_bare_list_form():
    data = json.loads((SAMPLES / "kube_bench_node_fail.json").read_text())
    assert check_statuses(json.dumps(data["Controls"]))["4.1.1"] == "FAIL"


@pytest.mark.parametrize("text", ["", "kube-bench: error", "{}", '{"Controls": [{"id": "4"}]}',
                                  '{"Controls": [{"tests": [{"section": "4.1"}]}]}'])
def test_garbage_is_an_error_never_a_status(text):
    with pytest.raises(ActivityFailed):
        check_statuses(text)


@pytest.mark.parametrize("status", ["pass", "SKIPPED", None, ""])
def test_an_unusual_status_is_refused(status):
    data = json.loads((SAMPLES / "kube_bench_node_fail.json").read_text())
    data["Controls"][0]["tests"][0]["results"][0]["status"] = status
    with pytest.raises(ActivityFailed, match="4.1.1"):
        check_statuses(json.dumps(data))


def test_one_check_reported_both_pass_and_fail_is_refused():
    data = json.loads((SAMPLES / "kube_bench_node_fail.json").read_text())
    forged = dict(data["Controls"][0]["tests"][0]["results"][0], status="PASS")
    data["Controls"][0]["tests"][0]["results"].append(forged)
    with pytest.raises(ActivityFailed, match="both"):
        check_statuses(json.dumps(data))


STATUSES = {"4.1.1": "FAIL", "4.2.1": "PASS", "4.2.6": "WARN", "1.1.21": "INFO"}


def test_fail_and_pass_are_told_apart():
    assert failing_checks(STATUSES, ["4.1.1", "4.2.1"]) == {"4.1.1": True, "4.2.1": False}


@pytest.mark.parametrize("checks, match", [(["4.1.1", "9.9.9"], "did not report check.*9.9.9"),
                                           (["4.2.6"], "could not decide.*4.2.6 .WARN"),
                                           (["1.1.21"], "could not decide.*INFO"), ([], "no CIS check")])
def test_absent_or_undecided_checks_are_errors_never_a_pass(checks, match):
    with pytest.raises(ActivityFailed, match=match):
        failing_checks(STATUSES, checks)
