"""The pods/log subresource: lines that tests append, served as the kubelet serves a container's log.

No container writes anything: `PodLogs.append` (behind `Sandbox.append_log`) adds lines to a container's
log, each with its time, for example the JSON alerts of a Falco pod. A log belongs to one pod (by uid):
a pod created again under the same name starts with an empty log.

`PodLogs.serve` answers ``GET .../pods/NAME/log`` in text/plain, with the kubelet's options: ``tailLines``
(the last N lines), then ``sinceTime`` (RFC 3339, to the second, as the API server passes it on) or
``sinceSeconds`` (lines logged at or after it),
``timestamps`` (each line prefixed with its RFC 3339 time, nanosecond digits, as the kubelet writes them)
and ``follow``: the lines so far, then each appended line as soon as it is appended, until the client
disconnects, the pod is deleted or the sandbox stops. Invalid options are answered as the API server's
``ValidatePodLogOptions`` answers them (422).

Everything runs on the sandbox's event loop thread.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from typing import Any

import aiohttp.web
from multidict import MultiMapping

from chaoskirvis.sandbox.exec_ws import bad_request, query_bool
from chaoskirvis.sandbox.resources import PODS
from chaoskirvis.sandbox.status import StatusError
from chaoskirvis.sandbox.store import Cause, Store, WatchEvent, forbidden, invalid, stream_container

LogKey = tuple[str, str]  # pod uid, container name


@dataclass(frozen=True)
class LogLine:
    at: datetime.datetime  # UTC
    text: str

    def render(self, timestamps: bool) -> bytes:
        stamp = self.at.strftime("%Y-%m-%dT%H:%M:%S.%f000Z ") if timestamps else ""
        return f"{stamp}{self.text}\n".encode()


def _int_parameter(query: MultiMapping[str], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


def _rfc3339(value: str) -> datetime.datetime:
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in value:
        raise bad_request(f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": not an RFC 3339 time')
    return parsed


@dataclass(frozen=True)
class LogOptions:
    """The PodLogOptions of a request that the sandbox acts on."""

    container: str
    follow: bool
    timestamps: bool
    since: datetime.datetime | None
    tail_lines: int | None

    @classmethod
    def parse(cls, pod_name: str, query: MultiMapping[str], now: datetime.datetime) -> LogOptions:
        """Read and validate the options (400 for an unreadable value, 422 for an invalid one)."""
        tail_lines, since_seconds = _int_parameter(query, "tailLines"), _int_parameter(query, "sinceSeconds")
        # The API server passes sinceTime on to the kubelet formatted as RFC 3339: whole seconds.
        since = _rfc3339(query["sinceTime"]).replace(microsecond=0) if "sinceTime" in query else None
        causes: list[Cause] = []
        if tail_lines is not None and tail_lines < 0:
            causes.append(invalid("tailLines", tail_lines, "must be greater than or equal to 0"))
        if since_seconds is not None and since is not None:
            causes.append(forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
        elif since_seconds is not None and since_seconds < 1:
            causes.append(invalid("sinceSeconds", since_seconds, "must be greater than 0"))
        if causes:
            summary = str(causes[0]) if len(causes) == 1 else "[" + ", ".join(str(c) for c in causes) + "]"
            raise StatusError(
                status=422, reason="Invalid", message=f'PodLogOptions "{pod_name}" is invalid: {summary}',
                details={"name": pod_name, "kind": "PodLogOptions",
                         "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes]})
        if since_seconds is not None:
            since = now - datetime.timedelta(seconds=since_seconds)
        return cls(container=query.get("container", ""), follow=query_bool(query, "follow"),
                   timestamps=query_bool(query, "timestamps"), since=since, tail_lines=tail_lines)

    def selects(self, line: LogLine) -> bool:
        return self.since is None or line.at >= self.since


class PodLogs:
    """The log of each container of each pod, and the clients following them."""

    def __init__(self) -> None:
        self._lines: dict[LogKey, list[LogLine]] = {}
        self._followers: dict[LogKey, set[asyncio.Queue[LogLine | None]]] = {}

    def append(self, store: Store, namespace: str, pod_name: str, text: str, container: str | None,
               at: datetime.datetime) -> None:
        """Log `text` (each of its lines) in a container of a pod, at `at`; followers get it at once.

        Raises LookupError for a pod that does not exist and ValueError for a container it does not have.
        """
        pod = store.get(PODS, namespace, pod_name)
        if pod is None:
            raise LookupError(f'pods "{pod_name}" not found in namespace {namespace}')
        key = (pod["metadata"]["uid"], stream_container(pod, container))
        if key not in self._lines:
            self._forget_deleted_pods(store)
        lines = [LogLine(at.astimezone(datetime.UTC), part) for part in text.removesuffix("\n").split("\n")]
        self._lines.setdefault(key, []).extend(lines)
        for queue in self._followers.get(key, ()):
            for line in lines:
                queue.put_nowait(line)

    def _forget_deleted_pods(self, store: Store) -> None:
        live = {pod["metadata"]["uid"] for pod in store.list(PODS)}
        for key in [key for key in self._lines if key[0] not in live]:
            del self._lines[key]

    async def serve(self, raw_request: aiohttp.web.BaseRequest, store: Store, pod: dict[str, Any], container: str,
                    options: LogOptions) -> aiohttp.web.StreamResponse:
        """Answer a log request for a container of `pod`."""
        key = (pod["metadata"]["uid"], container)
        lines = self._lines.get(key, [])
        if options.tail_lines is not None:
            lines = lines[max(len(lines) - options.tail_lines, 0):]
        backlog = b"".join(line.render(options.timestamps) for line in lines if options.selects(line))
        if not options.follow:
            return aiohttp.web.Response(body=backlog, content_type="text/plain")
        queue: asyncio.Queue[LogLine | None] = asyncio.Queue()
        self._followers.setdefault(key, set()).add(queue)
        subscription = store.subscribe(PODS)
        ended = asyncio.create_task(_until_deleted(subscription.queue, key[0], queue))
        try:
            response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(raw_request)
            await response.write(backlog)
            while (line := await queue.get()) is not None:
                if options.selects(line):
                    await response.write(line.render(options.timestamps))
            await response.write_eof()
            return response
        finally:
            ended.cancel()
            store.unsubscribe(subscription)
            followers = self._followers[key]
            followers.discard(queue)
            if not followers:
                del self._followers[key]


async def _until_deleted(events: asyncio.Queue[WatchEvent | None], uid: str,
                         queue: asyncio.Queue[LogLine | None]) -> None:
    """End a follower (None in its queue) when the pod is deleted or the store closes."""
    while (event := await events.get()) is not None:
        if event.type == "DELETED" and event.object["metadata"]["uid"] == uid:
            break
    queue.put_nowait(None)


__all__ = ["LogLine", "LogOptions", "PodLogs"]
