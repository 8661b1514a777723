"""Falco alerts read from the Falco pods' logs through the Kubernetes API (Falco's JSON output)."""
from __future__ import annotations

import json
import queue
import threading
from typing import Any, Iterator

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.detection.alerts import Alert, parse_time
from chaoskirvis.detection.window import Window, now

__all__ = ["falco_alerts"]

_DONE = object()


def falco_alerts(api: KubeAPI, window: Window, *, namespace: str, label_selector: str,
                 container: str | None) -> Iterator[Alert]:
    """Falco's JSON alerts from every Falco pod's log since the injection, followed until the deadline."""
    try:
        pods = api.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=label_selector).get("items", [])
    except ApiError as exc:
        raise ActivityFailed(f"cannot list Falco pods in {namespace} ({exc.status} {exc.message})") from None
    if not pods:
        raise ActivityFailed(f"no Falco pod matches {label_selector} in namespace {namespace}")
    lines: queue.Queue = queue.Queue()
    started = now()
    for pod in pods:
        name = pod["metadata"]["name"]
        query = {"follow": "true", "sinceTime": window.injected_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "container": container}
        thread = threading.Thread(target=_follow, args=(api, namespace, name, query, window, lines), daemon=True)
        thread.start()
    finished = 0
    while finished < len(pods):
        try:
            item = lines.get(timeout=max(window.remaining(), 0.001))
        except queue.Empty:
            return
        if item is _DONE:
            finished += 1
            continue
        pod_name, line, arrived = item
        alert = _parse(line, pod_name, arrived, started, window)
        if alert is not None:
            yield alert


def _follow(api: KubeAPI, namespace: str, pod: str, query: dict[str, Any], window: Window, out: queue.Queue) -> None:
    try:
        for line in api.stream_lines(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query=query,
                                     timeout=max(window.remaining(), 0.1)):
            out.put((pod, line, now()))
            if window.remaining() <= 0:
                break
    except (ApiError, ActivityFailed):
        pass
    finally:
        out.put(_DONE)


def _parse(line: str, pod: str, arrived, started, window: Window) -> Alert | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or "rule" not in record:
        return None
    raised = parse_time(record.get("time"))
    # A line logged before the probe started arrives at once: it was seen when Falco raised it.
    seen_at = arrived if arrived > started or raised is None else min(max(raised, window.injected_at), arrived)
    fields = record.get("output_fields") or {}
    return Alert(
        source="falco", name=record["rule"], started_at=raised, seen_at=seen_at, text=record.get("output", ""),
        raw=record,
        details={"priority": record.get("priority"), "falco_pod": pod,
                 "output_fields": {k: fields[k] for k in ("k8s.ns.name", "k8s.pod.name", "container.id",
                                                          "proc.cmdline") if k in fields}},
    )
