"""Alertmanager API v2: the alerts it holds, polled until the deadline."""
from __future__ import annotations

from typing import Any, Iterator

from chaoskirvis.detection.alerts import Alert, parse_time
from chaoskirvis.detection.http import fetch_json
from chaoskirvis.detection.verdict import poll
from chaoskirvis.detection.window import Window, now

__all__ = ["alertmanager_alerts"]


def alertmanager_alerts(
    url: str, window: Window, *, matchers: list[str], include_silenced: bool, include_inhibited: bool,
    interval: float, headers: dict[str, str], ca_file: str | None,
) -> Iterator[Alert]:
    """Alerts from ``GET {url}/api/v2/alerts`` (active; silenced/inhibited only when asked).

    Each counts at its ``startsAt`` (which Alertmanager sets on receipt when the sender gave none), not
    at the poll that found it: see `poll`.
    """
    fields = [("active", "true"), ("silenced", _flag(include_silenced)), ("inhibited", _flag(include_inhibited)),
              ("unprocessed", "true")]
    fields += [("filter", matcher) for matcher in matchers]
    endpoint = url.rstrip("/") + "/api/v2/alerts"

    def fetch() -> list[Alert]:
        answer = fetch_json("GET", endpoint, fields=fields, headers=headers, ca_file=ca_file)
        seen_at = now()
        return [_alert(raw, seen_at) for raw in answer]

    return poll(fetch, lambda a: a.details["fingerprint"], window, interval)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _alert(raw: dict[str, Any], seen_at) -> Alert:
    labels = raw.get("labels") or {}
    return Alert(
        source="alertmanager", name=labels.get("alertname", ""), started_at=parse_time(raw.get("startsAt")),
        seen_at=seen_at, text=str(raw.get("annotations") or ""), raw=raw,
        details={"fingerprint": raw.get("fingerprint") or str(sorted(labels.items())), "labels": labels,
                 "state": (raw.get("status") or {}).get("state")},
    )
