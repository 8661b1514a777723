"""The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched).

Every text that comes from a journal goes through `esc`: a journal is data, never markup.
"""
from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from chaoskirvis import __version__
from chaoskirvis.report.attack import technique_name
from chaoskirvis.report.model import AttackCell, ExperimentView, name_views
from chaoskirvis.report.fleet import fleet_of
from chaoskirvis.report.summary import attack_matrix
from chaoskirvis.report.svg import DetectionBar, detection_chart_svg, timeline_svg, tone
from chaoskirvis.report.text import (
    HEADLINE, VERDICT_LABELS, VERDICT_NOTES, check_subject, check_timing, cluster_text, fix_text, headline_text,
    identity_text, label_tone, left_text, restore_text, span, verdict_counts, verdict_tone, when,
)

__all__ = ["render_html", "esc"]

_MATRIX_CODES = {
    "blocked": "B", "detected": "D", "allowed": "A", "missed": "M", "inconclusive": "I", "error": "E", "tagged": "T",
}
_CSS = """
:root{--ink:#1f2933;--muted:#5f6b7a;--line:#dde3ea;--bg:#f4f6f9;--navy:#0f2540;
--good:#1a7f37;--good-bg:#dcf5e3;--bad:#b42318;--bad-bg:#fde4e1;--warn:#8a5a00;--warn-bg:#fdf2c7;
--info:#0b5cad;--info-bg:#ddeefe;--neutral:#4b5563;--neutral-bg:#eceff3}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 "Liberation Sans","Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
.wrap{max-width:1180px;margin:0 auto;padding:0 28px}
header.masthead{background:var(--navy);color:#fff;padding:26px 0 22px}
.eyebrow{text-transform:uppercase;letter-spacing:.09em;font-size:11px;color:#9fb3c8}
h1{margin:4px 0 6px;font-size:26px;font-weight:600}
.meta{color:#c2d0de;font-size:13px}
.overall{display:inline-block;margin-top:14px;padding:5px 12px;border-radius:4px;font-weight:600;font-size:13px}
.kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin:20px 0 4px}
.kpis+.kpis{margin-top:12px;grid-template-columns:repeat(3,1fr)}
.kpi.good .value{color:var(--good)}.kpi.bad .value{color:var(--bad)}.kpi.info .value{color:var(--info)}
.kpi.warn .value{color:var(--warn)}.kpi.zero .value{color:var(--muted)}
.kpi{background:#fff;border:1px solid var(--line);border-radius:6px;padding:12px 16px}
.kpi .value{font-size:24px;font-weight:600;font-variant-numeric:tabular-nums}
.kpi .label{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.06em}
section.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:18px 22px;margin:16px 0;
break-inside:avoid}
h2{font-size:17px;margin:0 0 12px}
h3{font-size:16px;margin:0;flex:1}
.experiment-head{display:flex;align-items:center;gap:12px;margin-bottom:6px}
.reason{margin:4px 0 12px;color:var(--ink)}
.note{margin:4px 0 0;color:var(--muted);font-size:13px}
ul.fixes{margin:6px 0 0;padding-left:20px;font-size:13px}ul.fixes li{margin:4px 0}
ul.fixes .fix{display:block;font-family:"Liberation Mono","DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px;
overflow-wrap:anywhere}
table{width:100%;border-collapse:collapse;font-size:13px}
th{text-align:left;font-weight:600;color:var(--muted);border-bottom:2px solid var(--line);padding:6px 8px;
font-size:11px;text-transform:uppercase;letter-spacing:.04em;white-space:nowrap}
td{border-bottom:1px solid var(--line);padding:7px 8px;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.nowrap{white-space:nowrap}
.sub{display:block;color:var(--muted);font-size:12px}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap}
.good{color:var(--good);background:var(--good-bg)}.bad{color:var(--bad);background:var(--bad-bg)}
.warn{color:var(--warn);background:var(--warn-bg)}.info{color:var(--info);background:var(--info-bg)}
.neutral{color:var(--neutral);background:var(--neutral-bg)}
.mono{font-family:"Liberation Mono","DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
dl.facts{display:grid;grid-template-columns:170px 1fr;gap:3px 16px;margin:10px 0 16px;font-size:13px}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.evidence{color:var(--muted);font-size:12px;overflow-wrap:anywhere;max-width:420px}
.scroll{overflow-x:auto}
table.matrix td,table.matrix th{text-align:center;padding:4px 1px}
table.matrix th{font-size:10px;letter-spacing:0}
table.matrix td.technique,table.matrix th.technique{text-align:left;min-width:230px;padding-right:8px}
.cell{display:inline-block;min-width:18px;border-radius:3px;font-size:10px;font-weight:700;padding:1px 3px}
.legend{color:var(--muted);font-size:12px;margin-top:10px}
.legend .cell{margin:0 2px 0 10px}
.empty{color:var(--muted);background:var(--bg);border:1px dashed var(--line);border-radius:4px;padding:14px;
font-size:13px}
h4{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:18px 0 6px}
svg{display:block;font-family:"Liberation Sans",Arial,sans-serif}
.svg-label{font-size:12px;fill:#1f2933}.svg-muted{font-size:11px;fill:#6b7785}.svg-value{font-size:11px;fill:#3d4752}
.svg-grid{stroke:#e6ebf0;stroke-width:1}.svg-limit{stroke:#6b7785;stroke-width:1.5}
footer{color:var(--muted);font-size:12px;padding:8px 0 40px}
a{color:var(--info);text-decoration:none}
@media print{body{background:#fff}header.masthead{background:#fff;color:var(--ink);border-bottom:2px solid var(--ink)}
.meta,.eyebrow{color:var(--muted)}}
"""


def esc(value: Any) -> str:
    """`value` as HTML text (quotes escaped too: safe in attributes)."""
    return escape(str(value), quote=True)


def render_html(views: list[ExperimentView], generated_at: dt.datetime) -> str:
    name_views(views)
    body = "".join([
        _masthead(views, generated_at),
        '<main class="wrap">',
        _kpis(views),
        _fleet(views),
        _summary_table(views),
        _matrix(views),
        _detection_chart(views),
        *(_experiment(number, view) for number, view in enumerate(views, 1)),
        "</main>",
        f'<footer class="wrap">Generated by chaoskirvis {esc(__version__)} on {esc(when(generated_at))} from '
        f"{len(views)} Chaos Toolkit journal(s). Each journal carries a SHA-256 digest of its content; "
        "check one with <span class=\"mono\">kirvis verify JOURNAL</span>.</footer>",
    ])
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Security control test report</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def _masthead(views: list[ExperimentView], generated_at: dt.datetime) -> str:
    clusters = sorted({
        cluster_text(v.section["cluster"]) for v in views
        if isinstance(v.section.get("cluster"), dict) and "server" in v.section["cluster"]
    })
    cluster = f" · cluster {esc('; '.join(clusters))}" if clusters else ""
    unexpected = [v for v in views if not v.verdict.as_expected]
    overall = "bad" if any(v.verdict.result == "weakness" for v in unexpected) else "warn" if unexpected else "good"
    word = ("Every experiment gave its expected verdict" if not unexpected
            else f"{len(unexpected)} of {len(views)} did not give their expected verdict")
    word += f": {headline_text(v.verdict for v in views)}"
    return (
        '<header class="masthead"><div class="wrap">'
        '<div class="eyebrow">chaoskirvis · security chaos engineering evidence</div>'
        "<h1>Security control test report</h1>"
        f'<div class="meta">Generated {esc(when(generated_at))} · {len(views)} experiment(s){cluster}</div>'
        f'<div class="overall {overall}" id="overall">{esc(word)}</div>'
        "</div></header>"
    )


def _kpis(views: list[ExperimentView]) -> str:
    checks = sum(len(v.outcomes) for v in views)
    held = sum(v.passing_checks() for v in views)
    exercised = {a for v in views for a, cell in v.attack_results().items() if cell.label != "tagged"}
    verified = sum(1 for v in views if v.integrity.ok)
    counts = verdict_counts(v.verdict for v in views)
    verdicts = [
        (str(counts[label]), f"{HEADLINE[label]} (negative control)" if label == "weakness (expected)"
         else f"{HEADLINE[label]} (not a weakness)" if label == "error" else HEADLINE[label],
         label_tone(label) if counts[label] else "zero", label)
        for label in HEADLINE
    ]
    facts = [
        (f"{held}/{checks}", "security checks held", "", "checks"),
        (str(len(exercised)), "ATT&CK techniques exercised", "", "attack"),
        (f"{verified}/{len(views)}", "journals verified", "", "journals"),
    ]
    return "".join(
        '<div class="kpis">' + "".join(
            f'<div class="kpi {cls}" data-count="{esc(key)}"><div class="value">{esc(value)}</div>'
            f'<div class="label">{esc(label)}</div></div>'
            for value, label, cls, key in cards
        ) + "</div>"
        for cards in (verdicts, facts)
    )


def _summary_table(views: list[ExperimentView]) -> str:
    rows = []
    for number, view in enumerate(views, 1):
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(view.counts().items())) or "none recorded"
        rows.append(
            "<tr>"
            f'<td class="num">{number}</td>'
            f'<td><a href="#experiment-{number}">{esc(view.title)}</a><span class="sub"><span class="mono">'
            f'{esc(_journal_name(view))}</span>{esc("".join(f" · {t}" for t in view.targets))}</span>'
            f'<span class="sub mono">run {esc(view.run_id or "unknown")}</span></td>'
            f"<td>{_verdict_badge(view)}</td>"
            f'<td class="nowrap">{view.passing_checks()}/{len(view.outcomes)}'
            f'<span class="sub">{esc(counts)}</span></td>'
            f'<td class="mono">{esc(", ".join(view.attack) or "—")}</td>'
            f'<td class="nowrap">{esc(when(view.started))}</td>'
            f'<td class="num">{esc(span(view.duration))}</td>'
            f"<td>{_badge(view.integrity.state)}</td>"
            "</tr>"
        )
    return (
        '<section class="card" id="summary"><h2>Summary</h2><table class="summary"><thead><tr>'
        "<th>#</th><th>Experiment</th><th>Verdict</th><th>Checks held</th><th>ATT&amp;CK</th><th>Started</th>"
        "<th>Duration</th><th>Journal</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>"
    )


def _matrix(views: list[ExperimentView]) -> str:
    matrix = attack_matrix(views)
    if not matrix:
        return '<section class="card" id="attack"><h2>ATT&amp;CK coverage</h2>' \
               '<div class="empty">No ATT&amp;CK technique is tagged or exercised in these journals.</div></section>'
    head = "".join(f'<th title="{esc(v.title)} ({esc(v.name)}, run {esc(v.run_id or "unknown")})">{n}</th>'
                   for n, v in enumerate(views, 1))
    rows = []
    for technique, results in matrix.items():
        cells = "".join(_matrix_cell(results.get(v.key), v) for v in views)
        tested = [c for c in results.values() if c.label != "tagged"]
        held = sum(1 for c in tested if c.label == "held")
        rows.append(
            f'<tr><td class="technique"><span class="mono">{esc(technique)}</span> {esc(technique_name(technique))}'
            f'</td>{cells}<td class="num">{held}/{len(tested)}</td></tr>'
        )
    legend = "".join(f'<span class="cell neutral">{code}</span>{esc(word)}' for word, code in _MATRIX_CODES.items())
    colours = "".join(
        f'<span class="cell {label_tone(label)}">&nbsp;</span>{esc(words)}'
        for label, words in (("held", "held"), ("weakness", "weakness"),
                             ("weakness (expected)", "weakness, as expected (negative control)"),
                             ("error", "error (not a weakness)"), ("tagged", "introduced for a detector, or tagged"))
    )
    return (
        '<section class="card" id="attack"><h2>ATT&amp;CK coverage</h2>'
        f'<div class="scroll"><table class="matrix"><thead><tr><th class="technique">Technique</th>{head}'
        f'<th>Held</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
        f'<div class="legend">Columns are the experiments of the summary; each cell is that experiment\'s own '
        f"result for the technique. {legend} (tagged: named by the experiment, not exercised by any check)</div>"
        f'<div class="legend">{colours}</div></section>'
    )


def _fleet(views: list[ExperimentView]) -> str:
    """The cluster x experiment matrix, only where the journals come from several clusters."""
    fleet = fleet_of(views)
    if fleet is None:
        return ""
    head = "".join(f'<th title="{esc(fleet.titles.get(e, e))}">{esc(e)}</th>' for e in fleet.experiments)
    rows = []
    for cluster in fleet.clusters:
        cells = []
        for experiment in fleet.experiments:
            cell = fleet.cell(cluster, experiment)
            cells.append("<td>—</td>" if cell is None else
                         f'<td><span class="cell {label_tone(cell.label)}" title="{esc(cell.reason)}" '
                         f'data-cluster="{esc(cluster)}" data-experiment="{esc(experiment)}" '
                         f'data-label="{esc(cell.label)}">{esc(cell.label)}</span></td>')
        server = fleet.servers.get(cluster)
        rows.append(f'<tr><td class="technique" title="{esc(server or "")}">{esc(cluster)}</td>{"".join(cells)}</tr>')
    return (
        '<section class="card" id="fleet"><h2>Fleet</h2>'
        f'<div class="scroll"><table class="matrix"><thead><tr><th class="technique">Cluster</th>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div>'
        '<div class="legend">Rows are the clusters the journals record (kubeconfig context, else API server), '
        "columns the experiments; each cell is the experiment's verdict in that cluster (the latest run where "
        "there are several); —: no journal of it from that cluster.</div></section>"
    )


def _matrix_cell(cell: AttackCell | None, view: ExperimentView) -> str:
    if cell is None:
        return "<td></td>"
    title = f"{view.name} (run {view.run_id or 'unknown'}): {cell.outcome}, {cell.label}"
    return (f'<td><span class="cell {label_tone(cell.label)}" title="{esc(title)}" data-key="{esc(view.key)}" '
            f'data-label="{esc(cell.label)}">{_MATRIX_CODES.get(cell.outcome, "?")}</span></td>')


def _detection_chart(views: list[ExperimentView]) -> str:
    bars = [
        DetectionBar(
            label=f"{view.title} — {check_subject(o)}", outcome=str(o.get("outcome")),
            seconds=o.get("time_to_detect_s"), limit=o.get("within_s"),
        )
        for view in views for o in view.detections()
    ]
    chart = detection_chart_svg(bars) if bars else (
        '<div class="empty">No detection check in these journals: every check here is an admission decision '
        "(its answer time is in each experiment's checks).</div>"
    )
    return f'<section class="card" id="time-to-detect"><h2>Time to detect</h2>{chart}</section>'


def _experiment(number: int, view: ExperimentView) -> str:
    return (
        f'<section class="card experiment" id="experiment-{number}">'
        f'<div class="experiment-head"><h3>{number}. {esc(view.title)}</h3>'
        f"{_verdict_badge(view)}</div>"
        f'<p class="note">{esc(_verdict_note(view))}</p>'
        f'<p class="reason">{"Cause" if view.verdict.result != "held" else "Why"}: {esc(view.verdict.reason)}</p>'
        f"{_facts(view)}"
        f"<h4>Security checks</h4>{_checks(view)}{_fixes(view)}"
        f"<h4>Timeline</h4>{_timeline(view)}"
        f"{_ledger(view)}</section>"
    )


def _timeline(view: ExperimentView) -> str:
    if not view.timeline:
        return '<div class="empty">No activity was played.</div>'
    return timeline_svg(view.timeline, view.started, view.ended)


def _facts(view: ExperimentView) -> str:
    section = view.section
    source = section.get("experiment") or {}
    tools = section.get("tools") or {}
    facts = [
        ("Verdict", f"{esc(view.verdict.label)}; expected {esc(view.verdict.expected)}; Chaos Toolkit: "
                    f"{esc(view.verdict.status or view.status)}"),
        ("Journal", f'<span class="mono">{esc(_journal_name(view))}</span> {_badge(view.integrity.state)}'
                    f'<span class="sub mono">{esc(view.integrity.sealed or "no digest")}</span>'),
        ("Run", f'<span class="mono">{esc(view.run_id or "unknown")}</span> · status {esc(view.status)} · '
                f"started {esc(when(view.started))} · took {esc(span(view.duration))}"),
    ]
    if source:
        facts.append(("Experiment file", (
            f'{esc(source.get("source") or "unknown")}<span class="sub mono">SHA-256 of the '
            f'{esc(source.get("sha256_of"))}: {esc(source.get("sha256"))}</span>'
        )))
    if section:
        facts.append(("Cluster", esc(cluster_text(section.get("cluster")))))
        facts.append(("Identity", esc(identity_text(section.get("identity")))))
    if tools:
        facts.append(("Tools", esc(", ".join(f"{name} {version}" for name, version in tools.items()))))
    if not section:
        facts.append(("Evidence", "none: the journal has no chaoskirvis section (the evidence control was off)"))
    return '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"


def _checks(view: ExperimentView) -> str:
    if not view.outcomes:
        return '<div class="empty">No security check recorded in this journal.</div>'
    rows = "".join(
        "<tr>"
        f"<td>{esc(o.get('activity') or '—')}<span class=\"sub\">{esc(o.get('phase') or 'unattributed')}</span></td>"
        f"<td>{esc(check_subject(o))}<span class=\"sub mono\">{esc(', '.join(o.get('attack') or []))}</span></td>"
        f"<td>{esc(o.get('mode') or o.get('backend') or '—')}</td>"
        f"<td>{_check_badge(view, o)}</td>"
        f"<td>{esc(o.get('answered_by') or '—')}</td>"
        f'<td class="nowrap">{esc(check_timing(o))}</td>'
        f'<td class="evidence">{esc(o.get("message") or "")}</td>'
        "</tr>"
        for o in view.outcomes
    )
    return (
        "<table><thead><tr><th>Activity</th><th>Technique</th><th>Mode</th><th>Outcome</th><th>Answered by</th>"
        f"<th>Timing</th><th>Evidence</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _ledger(view: ExperimentView) -> str:
    ledger = view.section.get("ledger")
    if not isinstance(ledger, dict):
        return ""
    restore = ledger.get("restore") or {}
    items = [
        ("Created", ", ".join(ledger.get("created") or []) or "nothing"),
        ("Denied", ", ".join(ledger.get("denied") or []) or "nothing"),
        ("Restore", restore_text(restore)),
        ("Left in the cluster", left_text(ledger.get("left_in_cluster"))),
    ]
    verdict = "restored" if ledger.get("restored") else "not restored"
    return (
        f'<h4>Ledger {_badge("passed" if ledger.get("restored") else "failed", verdict)}</h4>'
        '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"
    )


def _fixes(view: ExperimentView) -> str:
    weak = [(o, fix_text(o)) for o in view.weaknesses()]
    weak = [(o, fix) for o, fix in weak if fix]
    if not weak:
        return ""
    heading = "Fix" if view.verdict.label == "weakness" else "Fix (this run expected the weakness: a negative control)"
    items = "".join(
        f"<li>{esc(check_subject(o))}{esc(' in ' + str(o['namespace'])) if o.get('namespace') else ''}: "
        f"{esc(o.get('outcome'))}"
        f'<span class="fix">{esc(fix)}</span></li>'
        for o, fix in weak
    )
    return f'<h4>{esc(heading)}</h4><ul class="fixes">{items}</ul>'


def _journal_name(view: ExperimentView) -> str:
    """The journal's file name, with its folder where two journals share a name."""
    return view.name if view.qualified else view.path.name


def _verdict_note(view: ExperimentView) -> str:
    return VERDICT_NOTES.get(view.verdict.label, "")


def _verdict_badge(view: ExperimentView) -> str:
    label = view.verdict.label
    return f'<span class="badge {verdict_tone(view.verdict)}">{esc(VERDICT_LABELS.get(label, label))}</span>'


def _check_badge(view: ExperimentView, outcome: dict[str, Any]) -> str:
    return f'<span class="badge {label_tone(view.check_label(outcome))}">{esc(outcome.get("outcome"))}</span>'


def _badge(word: str, label: str | None = None) -> str:
    return f'<span class="badge {tone(word)}">{esc(label or word)}</span>'
