"""Falco alerts read from the Falco pods' logs through the Kubernetes API (Falco's JSON output)."""
from __future__ import annotations

import datetime as dt
import json
import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.detection.alerts import Alert, parse_time
from chaoskirvis.detection.window import Window, now

__all__ = ["falco_alerts"]

_DONE = object()


@dataclass(frozen=True)
class _Unreadable:
    pod: str
    answer: str


def falco_alerts(api: KubeAPI, window: Window, *, namespace: str, label_selector: str,
                 container: str | None) -> Iterator[Alert]:
    """Falco's JSON alerts from every Falco pod's log since the injection, then followed until the deadline.

    Each log is first read to its end (``GET .../pods/NAME/log?sinceTime=...&timestamps=true``): an
    alert Falco raised before the probe started counts at its own time, even when the probe starts
    after the deadline. Then each is followed (``follow=true``) and an alert counts on arrival. A log
    that cannot be read (RBAC refuses ``pods/log``, a pod with several containers and no `container`,
    the API unreachable) raises `ActivityFailed` naming the pod, the namespace and the API's answer: a
    detector the probe cannot read is an error, never a ``missed``.
    """
    try:
        pods = api.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=label_selector).get("items", [])
    except ApiError as exc:
        raise ActivityFailed(f"cannot list Falco pods in {namespace} ({exc.status} {exc.message})") from None
    if not pods:
        raise ActivityFailed(f"no Falco pod matches {label_selector} in namespace {namespace}")
    names = [pod["metadata"]["name"] for pod in pods]
    since = window.injected_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    queries = {pod["metadata"]["name"]: {"sinceTime": since, "timestamps": "true", "container": _container(pod, container)}
               for pod in pods}

    def unreadable(failure: _Unreadable) -> ActivityFailed:
        chosen = queries[failure.pod]["container"]
        where = f" (container {chosen})" if chosen else ""
        return ActivityFailed(f"cannot read the log of Falco pod {failure.pod}{where} in namespace {namespace}: "
                              f"{failure.answer}")

    last_logged: dict[str, dt.datetime | None] = {}
    for name in names:
        try:
            backlog = list(api.stream_lines(_log_path(namespace, name), query=queries[name], timeout=api.timeout))
        except (ApiError, ActivityFailed) as exc:
            raise unreadable(_Unreadable(name, _answer(exc))) from None
        read_at = now()
        last_logged[name] = None
        for line in backlog:
            logged, text = _split(line)
            last_logged[name] = logged or last_logged[name]
            alert = _parse(text, name, read_at, window.counted_at)
            if alert is not None:
                yield alert
    if window.remaining() <= 0:
        return

    lines: queue.Queue = queue.Queue()
    for name in names:
        threading.Thread(target=_follow, args=(api, namespace, name, {**queries[name], "follow": "true"}, last_logged[name],
                                               window, lines), daemon=True).start()
    finished = 0
    while finished < len(names):
        try:
            item = lines.get(timeout=max(window.remaining(), 0.001))
        except queue.Empty:
            return
        if item is _DONE:
            finished += 1
            continue
        if isinstance(item, _Unreadable):
            raise unreadable(item)
        name, text, arrived = item
        alert = _parse(text, name, arrived, lambda raised, seen_at: seen_at)
        if alert is not None:
            yield alert


def _container(pod: dict[str, Any], given: str | None) -> str | None:
    """The container whose log to read: the one given, else ``falco`` in a pod with several (Falco's Helm
    chart adds sidecars), else the pod's only one (None lets the API choose it)."""
    if given:
        return given
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    return "falco" if len(names) > 1 and "falco" in names else None


def _log_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{pod}/log"


def _answer(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.status} {exc.reason}: {exc.message}" if exc.reason else f"{exc.status}: {exc.message}"
    return str(exc)


def _split(line: str) -> tuple[dt.datetime | None, str]:
    """A log line with ``timestamps=true``: the kubelet's RFC 3339 time, a space, what the container wrote."""
    stamp, _, text = line.partition(" ")
    logged = parse_time(stamp)
    return (logged, text) if logged else (None, line)


def _follow(api: KubeAPI, namespace: str, pod: str, query: dict[str, Any], after: dt.datetime | None,
            window: Window, out: queue.Queue) -> None:
    """Put each line logged after `after` (the end of what was already read) on `out`, until the deadline."""
    try:
        for line in api.stream_lines(_log_path(namespace, pod), query=query, timeout=max(window.remaining(), 0.1)):
            logged, text = _split(line)
            if after is None or logged is None or logged > after:
                out.put((pod, text, now()))
            if window.remaining() <= 0:
                break
    except (ApiError, ActivityFailed) as exc:
        out.put(_Unreadable(pod, _answer(exc)))
    finally:
        out.put(_DONE)


def _parse(line: str, pod: str, seen_at: dt.datetime, counted_at) -> Alert | None:
    """A Falco JSON alert; `counted_at(raised, seen_at)` says when it counts (own time, or arrival)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or "rule" not in record:
        return None
    raised = parse_time(record.get("time"))
    fields = record.get("output_fields") or {}
    return Alert(
        source="falco", name=record["rule"], started_at=raised, seen_at=seen_at, text=record.get("output", ""),
        raw=record, detected_at=counted_at(raised, seen_at),
        details={"priority": record.get("priority"), "falco_pod": pod,
                 "output_fields": {k: fields[k] for k in ("k8s.ns.name", "k8s.pod.name", "container.id",
                                                          "proc.cmdline") if k in fields}},
    )
