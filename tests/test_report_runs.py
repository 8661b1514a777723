"""Reports over real `kirvis run` journals against the sandbox: each run keeps its own verdict, even when two
journals share a file name (host-path-denied.json from two folders, in either order); a negative control
shows as an expected weakness, an error as an error with its cause (never a weakness); every weakness
carries its fix, in every format."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from junitparser import Error, Failure, JUnitXml

from chaoskirvis.cli import main
from chaoskirvis.report.html import esc
from chaoskirvis.report.markdown import md
from chaoskirvis.techniques import CATALOG
from chaoskirvis.techniques.remediation import detection_rules, remediation
from chaosrun import BIN, EXPERIMENTS, chaos_env

HOST_PATH = EXPERIMENTS / "host-path-denied.yaml"
FALCO = EXPERIMENTS / "privileged-pod-detected-by-falco.yaml"
# Falco's rule for a privileged pod is in its incubating rules: the sandbox's Falco "loads" them.
FALCO_RULES_FILES = ["falco_rules.yaml", "falco-incubating_rules.yaml"]
MISSING_NAMESPACE = "kirvis-no-such-namespace"
# name: (experiment, journals folder, kirvis run options, exit code, verdict label)
RUNS = {
    "held": (HOST_PATH, "suite-team-restricted", ["--var", "namespace=team-restricted"], 0, "held"),
    "weakness": (HOST_PATH, "suite-team-privileged", ["--var", "namespace=team-privileged"], 1, "weakness"),
    "negative": (HOST_PATH, "negative-control", ["--var", "namespace=team-privileged", "--expect", "weakness"], 0,
                 "weakness (expected)"),
    "error": (HOST_PATH, "suite-missing-namespace", ["--var", f"namespace={MISSING_NAMESPACE}"], 2, "error"),
    "missed": (FALCO, "detection", ["--var", "within:int=1"], 1, "weakness"),
}
PSA_FIX = ("kubectl label --overwrite namespace team-privileged pod-security.kubernetes.io/enforce=baseline "
           "(checks 'hostPath volumes', 'restricted volume types')")


@pytest.fixture(scope="module")
def runs(scenarios, falco, tmp_path_factory) -> dict[str, Path]:
    """One journal per entry of RUNS, each written by `kirvis run` in its own folder."""
    work = tmp_path_factory.mktemp("runs")
    env = chaos_env(scenarios.kubeconfig)
    falco_experiment = yaml.safe_load(FALCO.read_text())
    for activity in falco_experiment["method"]:
        if activity["provider"].get("func") == "alert_in_falco_logs":
            activity["provider"]["arguments"]["rules_files"] = FALCO_RULES_FILES
    (work / FALCO.name).write_text(yaml.safe_dump(falco_experiment, sort_keys=False))
    journals = {}
    for name, (experiment, folder, options, code, _) in RUNS.items():
        experiment = work / FALCO.name if experiment == FALCO else experiment
        done = subprocess.run([str(BIN / "kirvis"), "run", str(experiment), "--journals", str(work / folder), *options],
                              cwd=work, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == code, f"{name}: {done.stdout}{done.stderr}"
        journals[name] = work / folder / f"{experiment.stem}.json"
    return journals


def run_id(journal: Path) -> str:
    return json.loads(journal.read_text())["chaoskirvis"]["run_id"]


def report(journals: list[Path], fmt: str, out: Path) -> str:
    assert main(["report", *map(str, journals), "--format", fmt, "-o", str(out)]) == 0
    return out.read_text()


def html_sections(html: str) -> list[str]:
    return html.split('<section class="card experiment"')[1:]


def html_matrix_row(html: str, technique: str) -> list[tuple[str, str, str]]:
    """(tone, run key, label) of each cell of the HTML matrix row of `technique`, in column order."""
    row = re.search(rf'<tr><td class="technique"><span class="mono">{technique}</span>.*?</tr>', html).group(0)
    return re.findall(r'<span class="cell (\w+)" title="[^"]*" data-key="([^"]+)" data-label="([^"]+)">', row)


def md_row(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_the_runs_really_end_that_way(runs):
    for name, journal in runs.items():
        assert json.loads(journal.read_text())["chaoskirvis"]["verdict"]["label"] == RUNS[name][4], name
    assert runs["held"].name == runs["weakness"].name == runs["negative"].name == "host-path-denied.json"


ORDERS = pytest.mark.parametrize("order", [("held", "weakness"), ("weakness", "held")],
                                 ids=["held-first", "weakness-first"])
FOLDERS = {"held": "suite-team-restricted", "weakness": "suite-team-privileged"}
CELLS = {"held": ("blocked", "held", "good"), "weakness": ("allowed", "weakness", "bad")}


@ORDERS
def test_json_keeps_each_same_named_run_apart(runs, tmp_path, order):
    summary = json.loads(report([runs[name] for name in order], "json", tmp_path / "r.json"))

    experiments = summary["experiments"]
    assert [e["run_id"] for e in experiments] == [run_id(runs[name]) for name in order]
    assert [e["label"] for e in experiments] == list(order)
    assert [e["name"] for e in experiments] == [f"{FOLDERS[name]}/host-path-denied.json" for name in order]
    assert summary["passed"] is False
    assert summary["totals"]["verdicts"] == {"held": 1, "weakness": 1, "weakness (expected)": 0, "error": 0}
    for technique in ("T1006", "T1611"):
        cells = summary["attack_coverage"][technique]["experiments"]
        assert len(cells) == 2, technique
        for name in order:
            cell = cells[run_id(runs[name])]
            assert (cell["outcome"], cell["label"]) == CELLS[name][:2], (technique, name)
            assert cell["experiment"] == f"{FOLDERS[name]}/host-path-denied.json"


@ORDERS
def test_junit_keeps_each_same_named_run_apart(runs, tmp_path, order):
    report([runs[name] for name in order], "junit", tmp_path / "r.xml")
    (suite,) = list(JUnitXml.fromfile(str(tmp_path / "r.xml")))
    cases = {case.classname: case for case in suite}

    assert [case.classname for case in suite] == [f"chaoskirvis.{FOLDERS[n]}.host-path-denied" for n in order]
    assert (suite.tests, suite.failures, suite.errors) == (2, 1, 0)
    assert cases["chaoskirvis.suite-team-restricted.host-path-denied"].result == []
    (failure,) = cases["chaoskirvis.suite-team-privileged.host-path-denied"].result
    assert isinstance(failure, Failure) and failure.type == "weakness"
    assert run_id(runs["weakness"]) in cases["chaoskirvis.suite-team-privileged.host-path-denied"].system_out
    assert run_id(runs["held"]) in cases["chaoskirvis.suite-team-restricted.host-path-denied"].system_out


@ORDERS
def test_markdown_keeps_each_same_named_run_apart(runs, tmp_path, order):
    text = report([runs[name] for name in order], "md", tmp_path / "r.md")

    for number, name in enumerate(order, 1):
        row = md_row(text, f"| {number} | ")
        assert f"| {run_id(runs[name])} |" in row and f"| {CELLS[name][1].capitalize()} |" in row
        assert md(f"{FOLDERS[name]}/host-path-denied.json") in row
    for technique in ("T1006", "T1611"):
        cells = [f"{CELLS[name][0]}: {CELLS[name][1]}" for name in order]
        assert md_row(text, f"| {technique} ").endswith(f"| {' | '.join(cells)} |")


@ORDERS
def test_html_keeps_each_same_named_run_apart(runs, tmp_path, order):
    html = report([runs[name] for name in order], "html", tmp_path / "r.html")

    for technique in ("T1006", "T1611"):
        assert html_matrix_row(html, technique) == [
            (CELLS[name][2], run_id(runs[name]), CELLS[name][1]) for name in order
        ], technique
    for section, name in zip(html_sections(html), order):
        assert run_id(runs[name]) in section
        assert esc(f"{FOLDERS[name]}/host-path-denied.json") in section
        assert f'<span class="badge {CELLS[name][2]}">{CELLS[name][1].capitalize()}</span>' in section


def test_a_negative_control_is_an_expected_weakness(runs, tmp_path):
    journals = [runs["negative"], runs["held"]]
    summary = json.loads(report(journals, "json", tmp_path / "r.json"))
    negative = summary["experiments"][0]
    assert (negative["verdict"], negative["label"], negative["expected"], negative["as_expected"]) == (
        "weakness", "weakness (expected)", "weakness", True)
    assert summary["passed"] is True
    assert summary["totals"]["verdicts"] == {"held": 1, "weakness": 0, "weakness (expected)": 1, "error": 0}
    cell = summary["attack_coverage"]["T1006"]["experiments"][run_id(runs["negative"])]
    assert (cell["outcome"], cell["label"]) == ("allowed", "weakness (expected)")

    report(journals, "junit", tmp_path / "r.xml")
    (suite,) = list(JUnitXml.fromfile(str(tmp_path / "r.xml")))
    assert (suite.failures, suite.errors) == (0, 0)
    case = next(c for c in suite if c.classname == "chaoskirvis.negative-control.host-path-denied")
    assert case.result == []
    assert "weakness, as expected: the test can fail" in case.system_out

    html = report(journals, "html", tmp_path / "r.html")
    section = html_sections(html)[0]
    assert '<span class="badge info">Weakness (expected)</span>' in section
    assert "weakness, as expected: the test can fail" in section
    assert '<span class="badge info">allowed</span>' in section and "badge bad" not in section
    assert html_matrix_row(html, "T1006")[0] == ("info", run_id(runs["negative"]), "weakness (expected)")
    assert 'id="overall">Every experiment gave its expected verdict' in html

    text = report(journals, "md", tmp_path / "r.md")
    assert "| Weakness (expected) |" in md_row(text, "| 1 | ")
    assert md_row(text, "| T1006 ").startswith(f"| T1006 Direct Volume Access | {md('allowed: weakness (expected)')} |")
    assert md("weakness, as expected: the test can fail") in text


def test_an_error_shows_its_cause_and_is_not_a_weakness(runs, tmp_path):
    journals = [runs["error"], runs["weakness"]]
    cause = f"namespace {MISSING_NAMESPACE} does not exist"
    summary = json.loads(report(journals, "json", tmp_path / "r.json"))
    error = summary["experiments"][0]
    assert (error["verdict"], error["label"], error["status"]) == ("error", "error", "failed")
    assert cause in error["reason"]
    assert summary["totals"]["verdicts"] == {"held": 0, "weakness": 1, "weakness (expected)": 0, "error": 1}
    assert all("remediation" not in o for o in error["outcomes"])

    report(journals, "junit", tmp_path / "r.xml")
    (suite,) = list(JUnitXml.fromfile(str(tmp_path / "r.xml")))
    assert (suite.failures, suite.errors) == (1, 1)
    (problem,) = next(c for c in suite if c.classname == "chaoskirvis.suite-missing-namespace.host-path-denied").result
    assert isinstance(problem, Error) and problem.type == "error"
    assert cause in problem.message and "not a weakness" in problem.text

    html = report(journals, "html", tmp_path / "r.html")
    section = html_sections(html)[0]
    assert '<span class="badge warn">Error</span>' in section
    assert esc(cause) in section and "not a weakness" in section
    assert "badge bad" not in section and "Weakness" not in section and "<h4>Fix" not in section
    assert html_matrix_row(html, "T1006")[0] == ("warn", run_id(runs["error"]), "error")

    text = report(journals, "md", tmp_path / "r.md")
    experiment = text.split("\n## 1. ")[1].split("\n## 2. ")[0]
    assert "**Error** (" in experiment and md(cause) in experiment
    assert "Weakness" not in experiment and "**Fix**" not in experiment
    assert "| Error |" in md_row(text, "| 1 | ")


def test_every_weakness_carries_its_fix(runs, tmp_path):
    journals = [runs["weakness"], runs["missed"], runs["held"]]
    admission_fix = remediation("host-path", "team-privileged")
    rules = [rule["name"] for rule in detection_rules(CATALOG["privileged"].summary()["detection"])]
    assert PSA_FIX in admission_fix and rules

    summary = json.loads(report(journals, "json", tmp_path / "r.json"))
    weak, missed, held = summary["experiments"]
    (allowed,) = weak["outcomes"]
    assert (allowed["label"], allowed["techniques"], allowed["namespace"]) == ("weakness", ["host-path"],
                                                                                "team-privileged")
    assert allowed["remediation"] == admission_fix
    detection = next(o for o in missed["outcomes"] if o["outcome"] == "missed")
    assert detection["techniques"] == ["privileged"] and detection["label"] == "weakness"
    assert all(f"'{rule}'" in detection["remediation"] for rule in rules)
    introduced = next(o for o in missed["outcomes"] if o["outcome"] == "allowed")
    assert introduced["label"] == "introduced" and "remediation" not in introduced  # admitted for Falco to see
    assert all("remediation" not in o for o in held["outcomes"])
    detection_fix = detection["remediation"]

    report(journals, "junit", tmp_path / "r.xml")
    (suite,) = list(JUnitXml.fromfile(str(tmp_path / "r.xml")))
    failures = {case.classname: case.result[0].text for case in suite if case.result}
    assert f"fix: {admission_fix}" in failures["chaoskirvis.suite-team-privileged.host-path-denied"]
    assert f"fix: {detection_fix}" in failures["chaoskirvis.privileged-pod-detected-by-falco"]

    html = report(journals, "html", tmp_path / "r.html")
    weak_section, missed_section, held_section = html_sections(html)
    assert weak_section.index("<h4>Security checks</h4>") < weak_section.index("<h4>Fix</h4>") \
        < weak_section.index(esc(admission_fix))
    assert esc(detection_fix) in missed_section
    assert "<h4>Fix" not in held_section

    text = report(journals, "md", tmp_path / "r.md")
    assert f"- **Fix**: {md('host-path in team-privileged')} allowed: {md(admission_fix)}" in text
    assert f"missed: {md(detection_fix)}" in text
    assert text.count("- **Fix**") == 2
