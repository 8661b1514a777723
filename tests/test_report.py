"""`kirvis report` over real chaos 1.21 journals of every ending: completed, deviated, failed, aborted,
interrupted, steady state not met before the method, and one full of hostile text; and the HTML report in
a real browser (headless Chromium)."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from junitparser import Error, Failure, JUnitXml

from chaoskirvis.cli import main
from chaoskirvis.report.text import VERDICT_LABELS
from chaosrun import BIN, EXPERIMENTS, chaos_env

SHIPPED = EXPERIMENTS / "privileged-pod-denied.yaml"
EVIDENCE = [{"name": "kirvis-evidence", "provider": {"type": "python", "module": "chaoskirvis.controls.evidence"}}]
HOSTILE_TITLE = '<script>alert("title")</script> & "quoted" \'names\''
HOSTILE_MESSAGE = '<img src=x onerror=alert(1)> </td></tr><b>bold</b> | *md* [link](http://x)'
HELPERS = f'''
from chaoslib.exceptions import InterruptExecution


def stop():
    raise InterruptExecution("stopped on purpose")


def hostile_outcome():
    return {{"outcome": "allowed", "blocked": False, "techniques": ["</td><script>x</script>"],
             "attack": ["T1610"], "mode": "create", "answered_by": "<i>nobody</i>", "latency_ms": 1.0,
             "message": {HOSTILE_MESSAGE!r}}}
'''
# Which verdict each journal must get, and whether JUnit calls it a failure (a weakness), an error, or neither.
EXPECTED = {
    "completed": ("held", None),
    "deviated": ("weakness", Failure),
    "failed": ("error", Error),
    "aborted": ("error", Error),
    "interrupted": ("error", Error),
    "not-met-before": ("error", Error),
    "hostile": ("weakness", Failure),
}


def experiment(title: str, method: list, **extra) -> dict:
    return {"version": "1.0.0", "title": title, "description": "made by the report tests",
            "tags": ["attack:T1610"], "controls": EVIDENCE, "method": method, **extra}


def python_activity(name: str, module: str, func: str, kind: str = "action", **arguments) -> dict:
    provider = {"type": "python", "module": module, "func": func}
    if arguments:
        provider["arguments"] = arguments
    return {"type": kind, "name": name, "provider": provider}


def chaos(workdir: Path, source: Path, journal: Path, env: dict, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "chaos"), "--no-version-check", "--log-file", str(workdir / "chaos.log"), "run", *options,
         str(source), "--journal-path", str(journal)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def journals(scenarios, tmp_path_factory) -> dict[str, Path]:
    """One real journal per ending, each written by the `chaos` CLI."""
    work = tmp_path_factory.mktemp("journals")
    (work / "report_helpers.py").write_text(HELPERS)
    env = chaos_env(scenarios.kubeconfig, PYTHONPATH=str(work))
    restore = python_activity("remove-everything-this-run-made", "chaoskirvis.ledger.actions", "restore_run")
    inject = python_activity("introduce-privileged-pod", "chaoskirvis.workload.actions", "inject_risky_pod",
                             namespace="team-privileged", techniques=["privileged"])
    made = {
        "aborted": (experiment("Aborts on an unknown activity", [{"ref": "no-such-activity"}]), ["--no-validation"]),
        "interrupted": (experiment(
            "Interrupted after an injection", [inject, python_activity("stop", "report_helpers", "stop")],
            rollbacks=[restore]), ["--rollback-strategy", "always"]),
        "not-met-before": (experiment(
            "Steady state false before the method",
            [inject],
            **{"steady-state-hypothesis": {"title": "nothing was introduced", "probes": [
                {**python_activity("all-injections-blocked", "chaoskirvis.ledger.probes", "injections_blocked",
                                   kind="probe"), "tolerance": False}]}},
            rollbacks=[restore]), []),
        "hostile": (experiment(HOSTILE_TITLE, [python_activity('<b onmouseover="x">hostile</b>', "report_helpers",
                                                               "hostile_outcome")]), []),
    }
    paths = {}
    for name, namespace, extra_env in (("completed", "team-baseline", {}), ("deviated", "team-privileged", {}),
                                       ("failed", "team-baseline", {"HOME": str(work)})):
        paths[name] = work / f"{name}.json"
        run_env = chaos_env(None, **extra_env) if name == "failed" else env
        chaos(work, SHIPPED, paths[name], run_env, "--var", f"namespace={namespace}")
    for name, (document, options) in made.items():
        source = work / f"{name}.yaml"
        source.write_text(yaml.safe_dump(document))
        paths[name] = work / f"{name}.json"
        chaos(work, source, paths[name], env, *options)
    return paths


def test_the_journals_really_end_that_way(journals):
    statuses = {name: json.loads(path.read_text())["status"] for name, path in journals.items()}
    assert statuses == {"completed": "completed", "deviated": "completed", "failed": "failed", "aborted": "aborted",
                        "interrupted": "interrupted", "not-met-before": "completed", "hostile": "completed"}


def test_json_summary_gives_each_journal_its_verdict(journals, tmp_path):
    out = tmp_path / "summary.json"
    assert main(["report", *map(str, journals.values()), "-o", str(out)]) == 0
    summary = json.loads(out.read_text())

    assert {e["name"]: e["verdict"] for e in summary["experiments"]} == {k: v for k, (v, _) in EXPECTED.items()}
    assert summary["passed"] is False
    assert summary["totals"]["experiments"] == len(journals)
    assert summary["totals"]["journals"] == {"verified": len(journals)}
    coverage = summary["attack_coverage"]["T1610"]["experiments"].values()
    cells = {c["experiment"]: (c["outcome"], c["label"]) for c in coverage}
    assert cells["completed"] == ("blocked", "held")
    assert cells["deviated"] == ("allowed", "weakness")
    not_met = next(e for e in summary["experiments"] if e["name"] == "not-met-before")
    assert (not_met["status"], not_met["journal_status"]) == ("not-met-before", "completed")
    assert "steady state not met before the method" in not_met["reason"]
    interrupted = next(e for e in summary["experiments"] if e["name"] == "interrupted")
    assert "while action 'stop' (method) played" in interrupted["reason"]
    assert interrupted["ledger"]["restored"] is True


def test_junit_is_read_by_a_ci_parser(journals, tmp_path):
    out = tmp_path / "junit.xml"
    assert main(["report", *map(str, journals.values()), "--format", "junit", "-o", str(out)]) == 0
    (suite,) = list(JUnitXml.fromfile(str(out)))
    cases = {case.classname.removeprefix("chaoskirvis."): case for case in suite}

    assert suite.tests == len(journals)
    assert suite.failures == sum(1 for _, kind in EXPECTED.values() if kind is Failure)
    assert suite.errors == sum(1 for _, kind in EXPECTED.values() if kind is Error)
    for name, (verdict, kind) in EXPECTED.items():
        results = cases[name].result
        if kind is None:
            assert results == [], name
        else:
            assert [(type(r), r.type) for r in results] == [(kind, verdict)], name
    assert cases["hostile"].name == HOSTILE_TITLE
    assert HOSTILE_MESSAGE in cases["hostile"].result[0].text
    assert "blocked: privileged (introduce-privileged-pod) by PodSecurity" in cases["completed"].system_out


def test_markdown_escapes_journal_text(journals, tmp_path):
    out = tmp_path / "report.md"
    assert main(["report", *map(str, journals.values()), "-o", str(out)]) == 0
    text = out.read_text()

    assert "<script" not in text and "<img" not in text and "<b" not in text
    assert '&lt;script&gt;alert("title")&lt;/script&gt; &amp; "quoted"' in text
    assert r"\*md\* \[link\](http://x)" in text
    assert text.count("\n## ") == len(journals) + 3  # summary, ATT&CK, time to detect, one per experiment
    for verdict, _ in EXPECTED.values():
        assert VERDICT_LABELS[verdict] in text


def test_html_escapes_journal_text(journals, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", *map(str, journals.values()), "-o", str(out)]) == 0
    html = out.read_text()

    assert "<script" not in html and "<img" not in html and "<b " not in html and "<i>" not in html
    assert "&lt;script&gt;alert(&quot;title&quot;)&lt;/script&gt; &amp; &quot;quoted&quot; &#x27;names&#x27;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_an_unreadable_journal_is_a_clear_error(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2]")
    assert main(["report", str(broken), "-o", str(tmp_path / "r.html")]) == 1
    assert "is not a Chaos Toolkit journal" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_an_edited_journal_whose_parts_are_not_mappings_renders_as_modified(journals, tmp_path, fmt):
    edited = json.loads(journals["completed"].read_text())
    for part in ("experiment", "tools", "ledger", "cluster", "identity"):
        edited["chaoskirvis"][part] = "not a mapping"
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    out = tmp_path / f"report.{fmt}"

    assert main(["report", str(path), "-o", str(out)]) == 0
    text = out.read_text()
    assert "not a mapping" not in text
    said = {"md": "MODIFIED: the journal was changed after it was sealed", "html": ">modified<",
            "json": '"integrity": "modified"'}[fmt]
    assert said in text, text[:3000]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1200,900"]


def chromium(*arguments: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "headless Chromium is needed: apt-get install -y chromium"
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
                              capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": profile})


@pytest.fixture(scope="module")
def html_report(journals, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    assert main(["report", *map(str, journals.values()), "-o", str(out)]) == 0
    return out


def test_chromium_renders_a_screenshot_of_the_report(html_report):
    png = html_report.with_suffix(".png")
    chromium(f"--screenshot={png}", html_report.as_uri())

    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 900)
    assert len(data) > 30_000, "a blank page compresses to a few kB"


def test_chromium_dom_has_the_summary_and_outcomes_and_nothing_injected(html_report, journals):
    dom = chromium("--dump-dom", html_report.as_uri()).stdout

    assert '<table class="summary">' in dom
    assert dom.count('<tr><td class="num">') == len(journals)
    for verdict, _ in EXPECTED.values():
        assert f">{VERDICT_LABELS[verdict]}</span>" in dom
    assert '<span class="badge good">blocked</span>' in dom
    assert '<span class="badge bad">allowed</span>' in dom
    assert "<script" not in dom and "<img" not in dom
    assert "&lt;script&gt;alert(\"title\")&lt;/script&gt;" in dom
