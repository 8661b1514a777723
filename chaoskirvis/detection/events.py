"""Kubernetes Events (a policy engine's PolicyViolation, a controller's FailedCreate, ...), by list then watch."""
from __future__ import annotations

import datetime as dt
import json
import math
import time
from typing import Any, Iterator

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.detection.alerts import Alert, parse_time
from chaoskirvis.detection.window import Window, now

__all__ = ["event_alerts"]

_EXPIRED = 410  # a watch from a resourceVersion the API server has compacted (reason Expired or Gone)
_QUIET_WATCH_PAUSE_S = 0.2  # before watching again when a watch ended at once with nothing


def event_alerts(api: KubeAPI, window: Window, namespace: str | None) -> Iterator[Alert]:
    """The events that exist now, then each new or updated one as the watch delivers it, until the deadline.

    A watch that expires (410: its resourceVersion was compacted while the probe was not watching) is
    resumed as client-go's reflector does: list again, take the events not seen yet (listed events count
    at their own time) and watch from the new list's resourceVersion. Any other error (a watch ERROR
    event, an error status) raises `ActivityFailed` with the API's answer.
    """
    path = f"/api/v1/namespaces/{namespace}/events" if namespace else "/api/v1/events"
    seen: set[tuple[Any, Any]] = set()

    def first_sight(item: dict[str, Any]) -> bool:
        key = _key(item)
        fresh = key not in seen
        seen.add(key)
        return fresh

    def relist() -> tuple[list[Alert], str | None]:
        try:
            listing = api.get(path)
        except ApiError as exc:
            raise ActivityFailed(f"cannot list events at {path}: {_answer(exc.status, exc.reason, exc.message)}") \
                from None
        listed_at = now()
        alerts = [_alert(item, listed_at, window) for item in listing.get("items", []) if first_sight(item)]
        return alerts, (listing.get("metadata") or {}).get("resourceVersion")

    alerts, version = relist()
    yield from alerts
    while window.remaining() > 0:
        query = {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": max(1, math.ceil(window.remaining()))}
        opened, delivered, expired = time.monotonic(), False, False
        try:
            for line in api.stream_lines(path, query=query, timeout=window.remaining() + 1):
                delivered = True
                event = json.loads(line)
                item = event.get("object") or {}
                if event.get("type") == "ERROR":
                    expired = _expired_or_raise(path, version, item.get("code"), item.get("reason"),
                                                item.get("message"))
                    break
                version = (item.get("metadata") or {}).get("resourceVersion", version)
                if event.get("type") in ("ADDED", "MODIFIED") and first_sight(item):
                    yield _alert(item, now())
                if window.remaining() <= 0:
                    return
        except ApiError as exc:  # an error status instead of an ERROR event: the same meaning
            expired = _expired_or_raise(path, version, exc.status, exc.reason, exc.message)
        if expired:
            alerts, version = relist()
            yield from alerts
        elif not delivered and time.monotonic() - opened < _QUIET_WATCH_PAUSE_S:
            time.sleep(min(_QUIET_WATCH_PAUSE_S, max(window.remaining(), 0)))


def _expired_or_raise(path: str, version: str | None, code: Any, reason: Any, message: Any) -> bool:
    """True for 410 (Expired, Gone): list again. Any other watch error is the probe's error."""
    if code == _EXPIRED:
        return True
    raise ActivityFailed(f"watching events at {path} from resourceVersion {version} failed: "
                         f"{_answer(code, reason, message)}")


def _answer(code: Any, reason: Any, message: Any) -> str:
    return f"{code} {reason or ''}: {message or ''}".replace(" :", ":")


def _key(item: dict[str, Any]) -> tuple[Any, Any]:
    """One version of one event: an updated event (its count, its lastTimestamp) is seen again."""
    metadata = item.get("metadata") or {}
    return metadata.get("uid") or (metadata.get("namespace"), metadata.get("name")), metadata.get("resourceVersion")


def _event_time(item: dict[str, Any]) -> dt.datetime | None:
    for key in ("eventTime", "lastTimestamp", "firstTimestamp"):
        if parsed := parse_time(item.get(key)):
            return parsed
    return parse_time((item.get("metadata") or {}).get("creationTimestamp"))


def _alert(item: dict[str, Any], seen_at: dt.datetime, listed_by: Window | None = None) -> Alert:
    """An event as an alert: seen on arrival from the watch, or, when listed, counted at its own time."""
    involved = item.get("involvedObject") or {}
    started = _event_time(item)
    return Alert(
        source="kubernetes-events", name=item.get("reason", ""), started_at=started, seen_at=seen_at,
        detected_at=listed_by.counted_at(started, seen_at) if listed_by else seen_at,
        text=item.get("message", ""), raw=item,
        details={"reason": item.get("reason"), "message": item.get("message"), "type": item.get("type"),
                 "involved_object": {k: involved.get(k) for k in ("kind", "namespace", "name")}},
    )
