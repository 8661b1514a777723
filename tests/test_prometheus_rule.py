"""deploy/prometheus-rule.yaml: its rule groups pass Debian's real `promtool check rules` and the unit tests
in tests/prometheus/ (`promtool test rules`): held turning into weakness fires, steady held does not, a
suite that stopped running fires."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULE = ROOT / "deploy" / "prometheus-rule.yaml"
UNIT_TESTS = ROOT / "tests" / "prometheus" / "prometheus-rule.test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed: apt-get install prometheus"
    return binary


def rule_files(folder: Path, groups: list) -> Path:
    """The PrometheusRule's groups as a Prometheus rules file, beside a copy of the unit tests."""
    (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(UNIT_TESTS, folder / UNIT_TESTS.name)
    return folder / UNIT_TESTS.name


def promtool_run(promtool: str, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *arguments], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_rule_is_a_prometheus_rule_whose_groups_pass_promtool(promtool, tmp_path):
    rule = yaml.safe_load(RULE.read_text())
    tests = rule_files(tmp_path, rule["spec"]["groups"])

    checked = promtool_run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    tested = promtool_run(promtool, "test", "rules", tests.name, cwd=tmp_path)

    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_unit_tests_fail_an_alert_on_any_weakness(promtool, tmp_path):
    """Dropping the 'it held before' condition turns a negative control's steady weakness into an alert:
    the unit tests must notice."""
    rule = yaml.safe_load(RULE.read_text())
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    [stopped] = [r for r in rules if r.get("alert") == "KirvisControlStoppedHolding"]
    stopped["expr"] = 'kirvis_experiment_verdict{verdict="weakness"} == 1'
    tests = rule_files(tmp_path, rule["spec"]["groups"])

    tested = promtool_run(promtool, "test", "rules", tests.name, cwd=tmp_path)

    assert tested.returncode == 1, tested.stdout + tested.stderr
    assert "alertname: KirvisControlStoppedHolding" in tested.stdout + tested.stderr
    assert 'cluster="lab"' in tested.stdout + tested.stderr
