"""Reports over Chaos Toolkit journals: HTML (for people), Markdown, JUnit XML (for CI), JSON (for tools).

They read any journal of chaos 1.21 (completed, deviated, failed, aborted, interrupted), with or without
the evidence section, and never re-resolve an experiment's secrets.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from chaoskirvis.report.html import render_html
from chaoskirvis.report.junit import render_junit
from chaoskirvis.report.markdown import render_markdown
from chaoskirvis.report.model import ExperimentView, ReportError, load_view
from chaoskirvis.report.summary import render_json

__all__ = ["FORMATS", "ReportError", "format_for", "render", "write_report"]

_RENDERERS: dict[str, Callable[[list[ExperimentView], dt.datetime], str]] = {
    "html": render_html, "md": render_markdown, "junit": render_junit, "json": render_json,
}
FORMATS = tuple(_RENDERERS)
_SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".xml": "junit", ".json": "json"}


def format_for(path: Path) -> str | None:
    """The report format a file name asks for (``report.html`` -> html), or None."""
    return _SUFFIXES.get(path.suffix.lower())


def render(journals: list[Path], fmt: str, generated_at: dt.datetime | None = None) -> str:
    """The report over `journals`, in `fmt`; raises `ReportError` when a journal cannot be read."""
    if fmt not in _RENDERERS:
        raise ReportError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not journals:
        raise ReportError("no journal to report on")
    views = [load_view(path) for path in journals]
    return _RENDERERS[fmt](views, generated_at or dt.datetime.now(dt.UTC))


def write_report(journals: list[Path], fmt: str, output: Path) -> Path:
    """Write the report to `output` (its folder is created) and return the path."""
    text = render(journals, fmt)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output
