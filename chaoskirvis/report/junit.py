"""JUnit XML for CI: one test case per experiment.

A case fails (``<failure type="weakness">``) on an unexpected weakness, with each weakness check and its
fix in the failure text; it is an error (``<error type="error">``) when the test could not be carried
out, with the cause; it passes when it held, or when a negative control showed its expected weakness
(its output says so). Each case's output lists every check with its evidence.
"""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

from chaoskirvis.report.model import ExperimentView, name_views
from chaoskirvis.report.text import VERDICT_NOTES, check_line, fix_text, headline_text

__all__ = ["render_junit"]

# Characters XML 1.0 cannot carry at all; a journal may hold them (an activity's output is free text).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(views: list[ExperimentView], generated_at: dt.datetime) -> str:
    name_views(views)
    failures = sum(1 for v in views if _kind(v) == "failure")
    errors = sum(1 for v in views if _kind(v) == "error")
    seconds = f"{sum(v.duration or 0.0 for v in views):.3f}"
    counts = {"tests": str(len(views)), "failures": str(failures), "errors": str(errors), "time": seconds}
    suites = ET.Element("testsuites", name="chaoskirvis", **counts)
    suite = ET.SubElement(
        suites, "testsuite", name="chaoskirvis security experiments", skipped="0",
        timestamp=generated_at.isoformat(timespec="seconds"), **counts,
    )
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="verdicts",
                  value=headline_text(v.verdict for v in views))
    for view in views:
        case = ET.SubElement(
            suite, "testcase", classname=_text(f"chaoskirvis.{view.junit_name}"), name=_text(view.title),
            time=f"{view.duration or 0.0:.3f}",
        )
        kind = _kind(view)
        if kind == "failure":
            problem = ET.SubElement(case, "failure", message=_text(view.verdict.reason), type="weakness")
            problem.text = _text("\n".join(_weakness_lines(view)) or view.verdict.reason)
        elif kind == "error":
            problem = ET.SubElement(case, "error", message=_text(view.verdict.reason), type="error")
            problem.text = _text(f"{VERDICT_NOTES['error']}; cause: {view.verdict.reason}")
        ET.SubElement(case, "system-out").text = _text(_case_output(view))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _kind(view: ExperimentView) -> str | None:
    """failure (unexpected weakness), error, or None (held, or a negative control's expected weakness)."""
    if view.verdict.as_expected:
        return None
    return "failure" if view.verdict.result == "weakness" else "error"


def _weakness_lines(view: ExperimentView) -> list[str]:
    lines = []
    for outcome in view.weaknesses():
        lines.append(check_line(outcome))
        fix = fix_text(outcome)
        if fix:
            lines.append(f"  fix: {fix}")
    return lines


def _case_output(view: ExperimentView) -> str:
    verdict = view.verdict
    lines = [f"verdict: {verdict.label}: {verdict.reason}"]
    if verdict.label == "weakness (expected)":
        lines.append(f"passes: {VERDICT_NOTES['weakness (expected)']}")
        lines += _weakness_lines(view)
    lines += [
        f"expected: {verdict.expected}; Chaos Toolkit status: {verdict.status or view.status}",
        f"journal: {view.path} ({view.integrity.message})",
        f"run id: {view.run_id or 'unknown'}; status {view.status}; deviated {str(view.deviated).lower()}",
    ]
    lines += [check_line(o) for o in view.outcomes] or ["no security check recorded"]
    return "\n".join(lines)


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)
