"""JUnit XML for CI: one test case per experiment.

A case fails when the experiment deviated, failed, did not meet its steady state before the method, or
a security check did not pass (allowed, missed, inconclusive, error); an aborted or interrupted run is
an error. Each case's output lists every check with its evidence.
"""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

from chaoskirvis.evidence.journal import PASSING_OUTCOMES
from chaoskirvis.report.model import ExperimentView
from chaoskirvis.report.text import check_line

__all__ = ["render_junit"]

_ERRORS = ("aborted", "interrupted")
# Characters XML 1.0 cannot carry at all; a journal may hold them (an activity's output is free text).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(views: list[ExperimentView], generated_at: dt.datetime) -> str:
    failures = sum(1 for v in views if not v.verdict.passed and v.verdict.result not in _ERRORS)
    errors = sum(1 for v in views if v.verdict.result in _ERRORS)
    seconds = f"{sum(v.duration or 0.0 for v in views):.3f}"
    counts = {"tests": str(len(views)), "failures": str(failures), "errors": str(errors), "time": seconds}
    suites = ET.Element("testsuites", name="chaoskirvis", **counts)
    suite = ET.SubElement(
        suites, "testsuite", name="chaoskirvis security experiments", skipped="0",
        timestamp=generated_at.isoformat(timespec="seconds"), **counts,
    )
    for view in views:
        case = ET.SubElement(
            suite, "testcase", classname=_text(f"chaoskirvis.{view.name}"), name=_text(view.title),
            time=f"{view.duration or 0.0:.3f}",
        )
        if not view.verdict.passed:
            tag = "error" if view.verdict.result in _ERRORS else "failure"
            problem = ET.SubElement(case, tag, message=_text(view.verdict.reason), type=view.verdict.result)
            failing = [check_line(o) for o in view.outcomes if o.get("outcome") not in PASSING_OUTCOMES]
            problem.text = _text("\n".join(failing) or view.verdict.reason)
        ET.SubElement(case, "system-out").text = _text(_case_output(view))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _case_output(view: ExperimentView) -> str:
    lines = [
        f"verdict: {view.verdict.result}: {view.verdict.reason}",
        f"journal: {view.path} ({view.integrity.message})",
        f"run id: {view.run_id or 'unknown'}; status {view.status}; deviated {str(view.deviated).lower()}",
    ]
    lines += [check_line(o) for o in view.outcomes] or ["no security check recorded"]
    return "\n".join(lines)


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)
