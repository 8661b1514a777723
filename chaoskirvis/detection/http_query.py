"""Any HTTP JSON API (Loki, Elasticsearch, a SIEM): items picked by JSONPath, matched by regex, polled."""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Iterator

from chaoslib.exceptions import ActivityFailed
from jsonpath_ng.ext import parse as parse_jsonpath

from chaoskirvis.detection.alerts import Alert, parse_time
from chaoskirvis.detection.http import fetch_json
from chaoskirvis.detection.verdict import poll
from chaoskirvis.detection.window import Window, now

__all__ = ["http_query_alerts"]


def http_query_alerts(
    url: str, window: Window, *, method: str, body: Any, items_path: str, match_regex: str | None,
    time_path: str | None, name_path: str | None, interval: float, headers: dict[str, str], ca_file: str | None,
) -> Iterator[Alert]:
    """Each item the query returns (at `items_path`) that matches `match_regex`, as an alert.

    With `time_path`, an item counts at its own time (see `poll`); without, at the poll that found it
    first, so the measured time to detect is late by up to `interval` and an item raised in time but
    first seen after the deadline is missed.
    """
    items = _compile(items_path, "items_path")
    when = _compile(time_path, "time_path") if time_path else None
    name = _compile(name_path, "name_path") if name_path else None
    try:
        pattern = re.compile(match_regex) if match_regex else None
    except re.error as exc:
        raise ActivityFailed(f"invalid match_regex {match_regex!r}: {exc}") from None

    def fetch() -> list[Alert]:
        document = fetch_json(method, url, body=body, headers=headers, ca_file=ca_file)
        seen_at = now()
        found = []
        for match in items.find(document):
            item = match.value
            text = item if isinstance(item, str) else json.dumps(item, sort_keys=True, default=str)
            if pattern and not pattern.search(text):
                continue
            found.append(Alert(
                source="http-query", name=str(_first(name, item) or ""), started_at=_time(_first(when, item)),
                seen_at=seen_at, text=text[:500], raw={"item": item}, details={"key": text},
            ))
        return found

    return poll(fetch, lambda a: a.details["key"], window, interval)


def _compile(path: str, what: str):
    try:
        return parse_jsonpath(path)
    except Exception as exc:  # jsonpath-ng raises plain Exception for lexer errors
        raise ActivityFailed(f"invalid JSONPath in {what} {path!r}: {exc}") from None


def _first(path, item: Any) -> Any:
    if path is None:
        return None
    matches = path.find(item)
    return matches[0].value if matches else None


def _time(value: Any) -> dt.datetime | None:
    """RFC 3339 text, or epoch seconds / milliseconds / nanoseconds (Loki) as a number or digits."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1e9 if value > 1e17 else value / 1e3 if value > 1e11 else value
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    return parse_time(value)
