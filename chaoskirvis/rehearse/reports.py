"""The rehearsal's outputs: the terminal matrix, JSON (the next run's baseline), JUnit, Markdown and HTML."""
from __future__ import annotations

import json
from typing import NamedTuple
from xml.etree import ElementTree as ET

from chaoskirvis.rehearse.expectations import RESULT_VERSION, Change
from chaoskirvis.rehearse.matrix import ERROR, HELD, NOT_APPLICABLE, WEAKNESS, Cell, Skipped
from chaoskirvis.report.html import esc
from chaoskirvis.report.markdown import md

__all__ = ["Result", "render_text", "render_json", "render_junit", "render_markdown", "render_html"]

_RANK = {ERROR: 3, WEAKNESS: 2, HELD: 1, NOT_APPLICABLE: 0}
_SHORT = {HELD: "held", WEAKNESS: "WEAK", ERROR: "ERROR", NOT_APPLICABLE: "n/a", None: "-"}


class Result(NamedTuple):
    cells: list[Cell]
    skipped: list[Skipped]
    broken: list[Cell]
    changes: list[Change]

    @property
    def namespaces(self) -> list[str]:
        return list(dict.fromkeys(c.namespace for c in self.cells))

    @property
    def techniques(self) -> list[str]:
        return list(dict.fromkeys(c.technique for c in self.cells))

    def verdict(self, technique: str, namespace: str) -> str | None:
        """One cell of the matrix: the worst verdict over the identities it was attempted as."""
        found = [c.verdict for c in self.cells if c.technique == technique and c.namespace == namespace]
        return max(found, key=_RANK.__getitem__) if found else None

    @property
    def errors(self) -> list[Cell]:
        return [c for c in self.cells if c.verdict == ERROR]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]


def _who(cell: Cell | Change) -> str:
    return f" as {cell.identity}" if cell.identity else ""


def _problems(result: Result) -> list[str]:
    """Regressions first, then broken expectations, errors and skipped policies, one line each."""
    return ([f"REGRESSION {c.technique} in {c.namespace}{_who(c)}: held -> weakness" for c in result.regressions] +
            [f"BROKEN {c.technique} in {c.namespace}{_who(c)}: expected to hold, {c.detail}" for c in result.broken] +
            [f"ERROR {c.technique} in {c.namespace}{_who(c)}: {c.detail}" for c in result.errors] +
            [f"SKIPPED {s.kind} {s.name}: {s.reason}" for s in result.skipped])


def render_text(result: Result) -> str:
    techniques, namespaces = result.techniques, result.namespaces
    width = max([len(t) for t in techniques] + [9])
    columns = [max(len(n), 5) for n in namespaces]
    lines = [" " * width + "  " + "  ".join(n.ljust(w) for n, w in zip(namespaces, columns))]
    for technique in techniques:
        lines.append(technique.ljust(width) + "  " + "  ".join(
            _SHORT[result.verdict(technique, n)].ljust(w) for n, w in zip(namespaces, columns)))
    others = [f"{c.technique} in {c.namespace}: {c.before or 'absent'} -> {c.after or 'absent'}"
              for c in result.changes if not c.regression]
    return "\n".join(lines + [""] + _problems(result) + [f"changed {line}" for line in others]) + "\n"


def render_json(result: Result) -> str:
    return json.dumps({"kind": "kirvis-rehearse", "version": RESULT_VERSION,
                       "cells": [c._asdict() for c in result.cells],
                       "skipped": [s._asdict() for s in result.skipped],
                       "broken": [c._asdict() for c in result.broken],
                       "changes": [c._asdict() for c in result.changes]}, indent=1) + "\n"


def render_junit(result: Result) -> str:
    broken = set(result.broken)
    regressed = {(c.technique, c.namespace, c.identity) for c in result.regressions}
    suite = ET.Element("testsuite", name="kirvis rehearse", tests=str(len(result.cells)),
                       failures=str(len(broken | {c for c in result.cells
                                                  if (c.technique, c.namespace, c.identity) in regressed})),
                       errors=str(len(result.errors)), skipped=str(len(result.skipped)))
    for cell in result.cells:
        case = ET.SubElement(suite, "testcase", classname=cell.namespace, name=cell.technique + _who(cell))
        if cell.verdict == ERROR:
            ET.SubElement(case, "error", message=cell.detail)
        elif cell in broken or (cell.technique, cell.namespace, cell.identity) in regressed:
            why = "regression: held before" if (cell.technique, cell.namespace, cell.identity) in regressed \
                else "expected to hold"
            ET.SubElement(case, "failure", message=f"weakness ({why}): {cell.detail}")
        else:
            ET.SubElement(case, "system-out").text = f"{cell.verdict}: {cell.detail}"
    for skipped in result.skipped:
        case = ET.SubElement(suite, "testcase", classname="policies", name=f"{skipped.kind} {skipped.name}")
        ET.SubElement(case, "skipped", message=skipped.reason)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _counts(result: Result) -> str:
    counts = {v: sum(c.verdict == v for c in result.cells) for v in (HELD, WEAKNESS, ERROR)}
    return (f"{counts[HELD]} held, {counts[WEAKNESS]} weaknesses, {counts[ERROR]} errors over "
            f"{len(result.techniques)} techniques x {len(result.namespaces)} namespaces; "
            f"{len(result.regressions)} regressions, {len(result.broken)} broken expectations, "
            f"{len(result.skipped)} policies not rehearsed")


def render_markdown(result: Result, limit: int = 30) -> str:
    """Short enough for a pull-request comment: the problems (at most `limit` lines), then the matrix."""
    problems = _problems(result)
    lines = ["## kirvis rehearse", "", md(_counts(result)), ""]
    lines += [f"- {md(p)}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"- ... and {len(problems) - limit} more (see the JUnit or HTML report)")
    lines += ["", "| technique | " + " | ".join(md(n) for n in result.namespaces) + " |",
              "|---|" + "---|" * len(result.namespaces)]
    marks = {HELD: "held", WEAKNESS: "**weak**", ERROR: "**error**", NOT_APPLICABLE: "n/a", None: "-"}
    lines += [f"| {md(t)} | " + " | ".join(marks[result.verdict(t, n)] for n in result.namespaces) + " |"
              for t in result.techniques]
    return "\n".join(lines) + "\n"


def render_html(result: Result) -> str:
    colours = {HELD: "#d9f2d9", WEAKNESS: "#f9d6d5", ERROR: "#fbe7b5", NOT_APPLICABLE: "#eee", None: "#fff"}
    head = "".join(f"<th>{esc(n)}</th>" for n in result.namespaces)
    rows = "".join(
        f"<tr><th>{esc(t)}</th>" + "".join(
            f'<td style="background:{colours[v]}">{esc(_SHORT[v])}</td>'
            for v in (result.verdict(t, n) for n in result.namespaces)) + "</tr>"
        for t in result.techniques)
    problems = "".join(f"<li>{esc(p)}</li>" for p in _problems(result))
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>kirvis rehearse</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 6px;border:1px solid #ccc;font-size:13px}"
            "table{border-collapse:collapse}</style></head><body><h1>kirvis rehearse</h1>"
            f"<p>{esc(_counts(result))}</p><ul>{problems}</ul>"
            f"<table><tr><th>technique</th>{head}</tr>{rows}</table></body></html>\n")
