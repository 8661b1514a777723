"""The Markdown report (GitHub-flavoured tables). Every text from a journal is escaped: Markdown renders
raw HTML, so a journal must not be able to inject any."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from chaoskirvis import __version__
from chaoskirvis.report.attack import technique_name
from chaoskirvis.report.model import ExperimentView
from chaoskirvis.report.summary import attack_matrix
from chaoskirvis.report.text import (
    VERDICT_LABELS, check_subject, check_timing, cluster_text, identity_text, left_text, restore_text, span, when,
)

__all__ = ["render_markdown", "md"]

# Markdown syntax that can act mid-line (emphasis, code, links, table cells, strike-through); '<' and '&' become
# entities, so no raw HTML gets through.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(value: Any) -> str:
    """`value` as inert Markdown text on one line (safe inside a table cell)."""
    text = " ".join(str(value).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def render_markdown(views: list[ExperimentView], generated_at: dt.datetime) -> str:
    passed = sum(1 for v in views if v.verdict.passed)
    lines = [
        "# Security control test report",
        "",
        f"Generated {md(when(generated_at))} by chaoskirvis {md(__version__)} from {len(views)} journal(s). "
        f"**{passed} of {len(views)} experiment(s) passed.**",
        "",
        "## Summary",
        "",
        "| # | Experiment | Target | Verdict | Checks held | ATT&CK | Started | Duration | Run id | Journal |",
        "|" + "---|" * 10,
    ]
    for number, view in enumerate(views, 1):
        lines.append(
            f"| {number} | {md(view.title)} | {md(', '.join(view.targets) or '—')} "
            f"| {md(VERDICT_LABELS.get(view.verdict.result, view.verdict.result))} "
            f"| {view.passing_checks()}/{len(view.outcomes)} | {md(', '.join(view.attack) or '—')} "
            f"| {md(when(view.started))} | {md(span(view.duration))} | {md(view.run_id or '—')} "
            f"| {md(view.integrity.state)} |"
        )
    lines += ["", "## ATT&CK coverage", "", "Columns are the experiments of the summary; each cell is the worst "
              "outcome of the checks that exercised the technique (tagged: named, not exercised).", ""]
    lines += _matrix(views)
    lines += ["", "## Time to detect", ""]
    detections = [(view, o) for view in views for o in view.detections()]
    if detections:
        lines += ["| Experiment | Check | Outcome | Time to detect |", "|---|---|---|---|"]
        lines += [
            f"| {md(view.title)} | {md(check_subject(o))} | {md(o.get('outcome'))} | {md(check_timing(o))} |"
            for view, o in detections
        ]
    else:
        lines.append("No detection check in these journals.")
    for number, view in enumerate(views, 1):
        lines += ["", *_experiment(number, view)]
    return "\n".join(lines) + "\n"


def _matrix(views: list[ExperimentView]) -> list[str]:
    matrix = attack_matrix(views)
    if not matrix:
        return ["No ATT&CK technique tagged or exercised."]
    lines = [
        "| Technique | " + " | ".join(str(n) for n in range(1, len(views) + 1)) + " |",
        "|---|" + "---|" * len(views),
    ]
    for technique, results in matrix.items():
        name = technique_name(technique)
        label = f"{technique} {name}".strip()
        lines.append(f"| {md(label)} | " + " | ".join(md(results.get(v.name, '')) for v in views) + " |")
    return lines


def _experiment(number: int, view: ExperimentView) -> list[str]:
    section = view.section
    source = section.get("experiment") or {}
    ledger = section.get("ledger") or {}
    lines = [
        f"## {number}. {md(view.title)}",
        "",
        f"**{md(VERDICT_LABELS.get(view.verdict.result, view.verdict.result))}**: {md(view.verdict.reason)}",
        "",
        f"- Journal: `{md(view.path.name)}`: {md(view.integrity.message)}",
        f"- Run id: {md(view.run_id or 'unknown')}; status {md(view.status)}; started {md(when(view.started))}, "
        f"took {md(span(view.duration))}",
    ]
    if source:
        lines.append(f"- Experiment file: {md(source.get('source') or 'unknown')}, SHA-256 of the "
                     f"{md(source.get('sha256_of'))}: {md(source.get('sha256'))}")
    if section:
        lines.append(f"- Cluster: {md(cluster_text(section.get('cluster')))}")
        lines.append(f"- Identity: {md(identity_text(section.get('identity')))}")
    if ledger:
        lines.append(
            f"- Ledger: created {len(ledger.get('created') or [])}, denied {len(ledger.get('denied') or [])}, "
            f"restore {md(restore_text(ledger.get('restore') or {}))}, left in the cluster: "
            f"{md(left_text(ledger.get('left_in_cluster')))}"
        )
    lines += ["", "| Activity | Phase | Check | Outcome | Answered by | Timing | Evidence |", "|" + "---|" * 7]
    lines += [
        f"| {md(o.get('activity') or '—')} | {md(o.get('phase') or '—')} | {md(check_subject(o))} "
        f"| **{md(o.get('outcome'))}** | {md(o.get('answered_by') or '—')} | {md(check_timing(o))} "
        f"| {md(o.get('message') or '')} |"
        for o in view.outcomes
    ] or ["| — | — | no security check recorded | — | — | — | — |"]
    lines += ["", "| Phase | Activity | Status | Started | Duration |", "|---|---|---|---|---|"]
    lines += [
        f"| {md(e.phase)} | {md(e.name)} | {md(e.status)} | {md(when(e.start))} "
        f"| {md(span((e.end - e.start).total_seconds()) if e.start and e.end else '—')} |"
        for e in view.timeline
    ]
    return lines
