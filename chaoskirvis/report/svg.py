"""Inline SVG charts for the HTML report: an experiment's timeline and the time-to-detect chart.

Plain SVG, no script: every text is escaped; full names are in ``<title>`` elements (tooltips).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from chaoskirvis.report.model import TimelineEntry
from chaoskirvis.report.text import label_tone, span

__all__ = ["timeline_svg", "DetectionBar", "detection_chart_svg", "tone"]

WIDTH = 1100
_ROW = 24
_AXIS = 26
_PHASE_X, _NAME_X, _PLOT_X, _PLOT_END = 0, 130, 390, 1010
_TONES = {
    "good": "#2da44e", "bad": "#cf222e", "warn": "#bf8700", "neutral": "#57606a", "info": "#0969da",
}


def tone(word: str | None) -> str:
    """The tone of an outcome, status or verdict word: good, bad, warn, neutral or info.

    Verdicts: held is good, weakness bad, an expected weakness (negative control) info, error warn (an
    error is never a weakness). A journal that was modified after sealing is bad.
    """
    if word in ("held", "passed", "blocked", "detected", "verified", "restored"):
        return "good"
    if word in ("weakness", "allowed", "missed", "modified", "failed", "not restored"):
        return "bad"
    if word in ("error", "aborted", "interrupted", "inconclusive", "unfinished", "unsealed", "not-met-before",
                "invalid", "controls-failed"):
        return "warn"
    if word in ("weakness (expected)", "expected", "succeeded"):
        return "info"
    return "neutral"


def timeline_svg(entries: list[TimelineEntry], started: dt.datetime | None, ended: dt.datetime | None) -> str:
    """One row per played activity, its bar placed in time from the run's start to its end."""
    times = [t for e in entries for t in (e.start, e.end) if t]
    origin = started or (min(times) if times else None)
    finish = max([t for t in (ended, *times) if t], default=None)
    total = max((finish - origin).total_seconds(), 0.001) if origin and finish else 0.001
    height = _AXIS + _ROW * max(len(entries), 1) + 8
    scale = (_PLOT_END - _PLOT_X) / total
    parts = [_svg_open(height, "Timeline of the run's activities"), _axis(total, height)]
    for row, entry in enumerate(entries):
        y = _AXIS + row * _ROW
        word = entry.outcome or entry.status
        color = _TONES[label_tone(entry.label) if entry.label else tone(word)]
        parts.append(
            f'<text x="{_PHASE_X}" y="{y + 16}" class="svg-muted">{escape(entry.phase)}</text>'
            f'<text x="{_NAME_X}" y="{y + 16}" class="svg-label"><title>{escape(entry.name)}</title>'
            f'{escape(_clip(entry.name, 40))}</text>'
        )
        if origin is None or entry.start is None:
            parts.append(f'<text x="{_PLOT_X}" y="{y + 16}" class="svg-muted">not started</text>')
            continue
        x = _PLOT_X + (entry.start - origin).total_seconds() * scale
        end = entry.end or finish or entry.start
        width = max((end - entry.start).total_seconds() * scale, 3.0)
        dashed = ' stroke-dasharray="4 2" fill-opacity="0.35"' if entry.end is None else ""
        seconds = (end - entry.start).total_seconds() if entry.end else None
        label = f"{span(seconds)} · {word}"
        label_x, anchor = (x + width + 6, "start") if x + width < _PLOT_END - 120 else (x - 6, "end")
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 5}" width="{width:.1f}" height="14" rx="2" fill="{color}" '
            f'stroke="{color}"{dashed}><title>{escape(entry.name)}: {escape(word)}'
            f'{escape(" — " + entry.detail) if entry.detail else ""}</title></rect>'
            f'<text x="{label_x:.1f}" y="{y + 16}" text-anchor="{anchor}" class="svg-value">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class DetectionBar:
    label: str
    outcome: str  # detected or missed
    seconds: float | None  # time to detect
    limit: float | None  # the check's time limit


def detection_chart_svg(bars: list[DetectionBar]) -> str:
    """Horizontal bars: time to detect of each detection check, against its time limit."""
    longest = max([b for bar in bars for b in (bar.seconds, bar.limit) if b is not None], default=1.0) or 1.0
    height = _AXIS + _ROW * len(bars) + 8
    scale = (_PLOT_END - _PLOT_X) / longest
    parts = [_svg_open(height, "Time to detect per detection check"), _axis(longest, height)]
    for row, bar in enumerate(bars):
        y = _AXIS + row * _ROW
        parts.append(
            f'<text x="{_PHASE_X}" y="{y + 16}" class="svg-label"><title>{escape(bar.label)}</title>'
            f'{escape(_clip(bar.label, 58))}</text>'
        )
        if bar.limit is not None:
            limit_x = _PLOT_X + bar.limit * scale
            parts.append(f'<line x1="{limit_x:.1f}" x2="{limit_x:.1f}" y1="{y + 2}" y2="{y + 22}" class="svg-limit"/>')
        if bar.outcome == "detected" and bar.seconds is not None:
            width = max(bar.seconds * scale, 3.0)
            parts.append(
                f'<rect x="{_PLOT_X}" y="{y + 5}" width="{width:.1f}" height="14" rx="2" fill="{_TONES["good"]}"/>'
                f'<text x="{_PLOT_X + width + 6:.1f}" y="{y + 16}" class="svg-value">'
                f"detected after {bar.seconds} s</text>"
            )
        else:
            reach = (bar.limit or longest) * scale
            parts.append(
                f'<rect x="{_PLOT_X}" y="{y + 5}" width="{reach:.1f}" height="14" rx="2" fill="none" '
                f'stroke="{_TONES["bad"]}" stroke-dasharray="4 2"/>'
                f'<text x="{_PLOT_X + 6}" y="{y + 16}" class="svg-value" fill="{_TONES["bad"]}">'
                f'missed{escape(f" (nothing within {bar.limit} s)" if bar.limit is not None else "")}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(height: int, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>')


def _axis(total: float, height: int) -> str:
    ticks = []
    for step in range(5):
        x = _PLOT_X + (_PLOT_END - _PLOT_X) * step / 4
        ticks.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_AXIS - 6}" y2="{height - 4}" class="svg-grid"/>'
            f'<text x="{x:.1f}" y="{_AXIS - 10}" text-anchor="middle" class="svg-muted">'
            f'{escape(_seconds_label(total * step / 4))}</text>'
        )
    return "".join(ticks)


def _seconds_label(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
