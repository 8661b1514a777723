"""Kubernetes Events (a policy engine's PolicyViolation, a controller's FailedCreate, ...), by list then watch."""
from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, Iterator

from chaoskirvis.client import KubeAPI
from chaoskirvis.detection.alerts import Alert, parse_time
from chaoskirvis.detection.window import Window, now

__all__ = ["event_alerts"]


def event_alerts(api: KubeAPI, window: Window, namespace: str | None) -> Iterator[Alert]:
    """The events that exist now, then each new or updated one as the watch delivers it, until the deadline."""
    path = f"/api/v1/namespaces/{namespace}/events" if namespace else "/api/v1/events"
    listing = api.get(path)
    started = now()
    for item in listing.get("items", []):
        yield _alert(item, _seen_before(item, window, started))
    version = (listing.get("metadata") or {}).get("resourceVersion")
    while window.remaining() > 0:
        query = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": max(1, math.ceil(window.remaining()))}
        for line in api.stream_lines(path, query=query, timeout=window.remaining() + 1):
            event = json.loads(line)
            item = event.get("object") or {}
            version = (item.get("metadata") or {}).get("resourceVersion", version)
            if event.get("type") in ("ADDED", "MODIFIED"):
                yield _alert(item, now())
            if window.remaining() <= 0:
                return


def _event_time(item: dict[str, Any]) -> dt.datetime | None:
    for key in ("eventTime", "lastTimestamp", "firstTimestamp"):
        if parsed := parse_time(item.get(key)):
            return parsed
    return parse_time((item.get("metadata") or {}).get("creationTimestamp"))


def _seen_before(item: dict[str, Any], window: Window, started: dt.datetime) -> dt.datetime:
    """An event that was already there: it appeared at its own time (not before the injection)."""
    at = _event_time(item)
    return started if at is None else min(max(at, window.injected_at), started)


def _alert(item: dict[str, Any], seen_at: dt.datetime) -> Alert:
    involved = item.get("involvedObject") or {}
    return Alert(
        source="kubernetes-events", name=item.get("reason", ""), started_at=_event_time(item), seen_at=seen_at,
        text=item.get("message", ""), raw=item,
        details={"reason": item.get("reason"), "message": item.get("message"), "type": item.get("type"),
                 "involved_object": {k: involved.get(k) for k in ("kind", "namespace", "name")}},
    )
