"""kube-bench --json output (samples written from kube-bench's check/controls.go format) read into check statuses."""
import json
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.nodes.kube_bench import check_statuses

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
