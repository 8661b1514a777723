"""The Markdown report (GitHub-flavoured tables). Every text from a journal is escaped: Markdown renders
raw HTML, so a journal must not be able to inject any."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from chaoskirvis import __version__
from chaoskirvis.report.attack import technique_name
from chaoskirvis.report.fleet import Fleet, fleet_of
from chaoskirvis.report.model import ExperimentView, name_views
from chaoskirvis.report.summary import attack_matrix
from chaoskirvis.report.text import (
    VERDICT_LABELS, VERDICT_NOTES, check_subject, check_timing, cluster_text, fix_text, headline_text, identity_text,
    left_text, restore_text, span, when,
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
    name_views(views)
    as_expected = sum(1 for v in views if v.verdict.as_expected)
    lines = [
        "# Security control test report",
        "",
        f"Generated {md(when(generated_at))} by chaoskirvis {md(__version__)} from {len(views)} journal(s). "
        f"**{md(headline_text(v.verdict for v in views))}**; {as_expected} of {len(views)} experiment(s) gave "
        "their expected verdict.",
        "",
    ]
    fleet = fleet_of(views)
    if fleet is not None:
        lines += [*_fleet(fleet), ""]
    lines += [
        "## Summary",
        "",
        "| # | Experiment | Target | Verdict | Checks held | ATT&CK | Started | Duration | Run id | Journal |",
        "|" + "---|" * 10,
    ]
    for number, view in enumerate(views, 1):
        lines.append(
            f"| {number} | {md(view.title)} | {md(', '.join(view.targets) or '—')} "
            f"| {md(_verdict_word(view))} "
            f"| {view.passing_checks()}/{len(view.outcomes)} | {md(', '.join(view.attack) or '—')} "
            f"| {md(when(view.started))} | {md(span(view.duration))} | {md(view.run_id or '—')} "
            f"| {md(_journal_name(view))} ({md(view.integrity.state)}) |"
        )
    lines += ["", "## ATT&CK coverage", "", "Columns are the experiments of the summary; each cell is that "
              "experiment's own worst check for the technique, and what it means for the run: held, weakness, "
              "weakness (expected) in a negative control, error (not a weakness), introduced (admitted for a "
              "detector to see); tagged: named, not exercised.", ""]
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
        cells = [results.get(v.key) for v in views]
        lines.append(f"| {md(label)} | " + " | ".join(
            "" if c is None else md(c.outcome if c.outcome == c.label else f"{c.outcome}: {c.label}") for c in cells
        ) + " |")
    return lines


def _fleet(fleet: Fleet) -> list[str]:
    lines = [
        "## Fleet", "",
        "Rows are the clusters the journals record (kubeconfig context, else API server), columns the "
        "experiments; each cell is the experiment's verdict in that cluster (the latest run where there are "
        "several); —: no journal of it from that cluster.", "",
        "| Cluster | " + " | ".join(md(e) for e in fleet.experiments) + " | Verdicts |",
        "|---|" + "---|" * (len(fleet.experiments) + 1),
    ]
    for cluster in fleet.clusters:
        cells = [fleet.cell(cluster, e) for e in fleet.experiments]
        counts = ", ".join(f"{n} {label}" for label, n in sorted(fleet.counts(cluster).items()))
        lines.append(f"| {md(cluster)} | " + " | ".join(md(c.label) if c else "—" for c in cells)
                     + f" | {md(counts)} |")
    return lines


def _verdict_word(view: ExperimentView) -> str:
    return VERDICT_LABELS.get(view.verdict.label, view.verdict.label)


def _journal_name(view: ExperimentView) -> str:
    """The journal's file name, with its folder where two journals share a name."""
    return view.name if view.qualified else view.path.name


def _experiment(number: int, view: ExperimentView) -> list[str]:
    section = view.section
    source = section.get("experiment") or {}
    ledger = section.get("ledger") or {}
    lines = [
        f"## {number}. {md(view.title)}",
        "",
        f"**{md(_verdict_word(view))}** ({md(VERDICT_NOTES.get(view.verdict.label, ''))}). "
        f"{'Why' if view.verdict.result == 'held' else 'Cause'}: {md(view.verdict.reason)}",
        "",
        f"- Verdict: {md(view.verdict.label)}; expected {md(view.verdict.expected)}; Chaos Toolkit: "
        f"{md(view.verdict.status or view.status)}",
        f"- Journal: `{md(_journal_name(view))}`: {md(view.integrity.message)}",
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
    fixes = [(o, fix) for o in view.weaknesses() if (fix := fix_text(o))]
    expected = " (this run expected the weakness: a negative control)" if view.verdict.label != "weakness" else ""
    if fixes:
        lines.append("")
    for outcome, fix in fixes:
        where = f" in {outcome['namespace']}" if outcome.get("namespace") else ""
        lines.append(f"- **Fix**{md(expected)}: {md(check_subject(outcome) + where)} {md(outcome.get('outcome'))}: "
                     f"{md(fix)}")
    lines += ["", "| Phase | Activity | Status | Started | Duration |", "|---|---|---|---|---|"]
    lines += [
        f"| {md(e.phase)} | {md(e.name)} | {md(e.status)} | {md(when(e.start))} "
        f"| {md(span((e.end - e.start).total_seconds()) if e.start and e.end else '—')} |"
        for e in view.timeline
    ]
    return lines
