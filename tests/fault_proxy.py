"""A fault-injecting HTTPS proxy between a client and the sandbox, for faults the sandbox has no cause to make.

Every request is forwarded to the sandbox as it came (headers, body, the Authorization token), and the
answer streamed back as it arrives (watches and followed logs included), unless the rule says otherwise
for that request. A rule gets ``(method, path, query)`` and returns:

- ``None``: forward it;
- ``Answer(status, body)``: answer it here with that JSON body (say, the API server's 403 Status);
- ``Stream(lines)``: answer 200 with these JSON lines, then end (say, a watch ERROR event);
- ``Cut(lines)``: answer 200 with these lines, then drop the connection without ending the stream;
- a ``threading.Event``: hold the request until the event is set, then forward it;
- ``Drop()``: close the connection without answering (the client sees its answer lost);
- ``Delay(seconds, then)``: wait, then carry out `then` (None: forward);
- ``Lost(then)``: forward the request (the sandbox carries it out), throw its answer away and carry out
  `then` instead (an ``Answer`` such as a 504, or ``Drop()``): a write applied whose answer never came;
- ``Twice()``: forward the request twice and answer with the second answer (an intermediary that
  replayed it: a create then answers 409 AlreadyExists).

``Answer`` may carry headers (``Retry-After``). `sequence(match, decisions)` builds a rule that answers
the requests `match` selects with `decisions` in turn (then forwards them), and forwards the others.

`requests` lists every request the proxy received, on arrival (a streaming request logs at its start).
"""
from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import yaml

from chaoskirvis.sandbox.server import Sandbox
from chaoskirvis.sandbox.tls import create_server_tls

_FORWARDED = ("Authorization", "Accept", "Content-Type", "User-Agent")


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Drop:
    """Close the connection without an answer."""


@dataclass(frozen=True)
class Delay:
    seconds: float
    then: Any = None


@dataclass(frozen=True)
class Lost:
    """Forward the request, discard the sandbox's answer and carry out `then` (an Answer or Drop) instead."""

    then: Any


@dataclass(frozen=True)
class Twice:
    """Forward the request twice; answer with the second answer."""


@dataclass(frozen=True)
class Stream:
    lines: list[dict[str, Any]]


@dataclass(frozen=True)
class Cut:
    """Answer 200 with these JSON lines in a chunked stream, then drop the connection mid-stream."""

    lines: list[dict[str, Any]]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]


Rule = Callable[[str, str, dict[str, str]], "Answer | Stream | Cut | Drop | Delay | Lost | Twice | threading.Event | None"]


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    """An API server Status body (e.g. 429 TooManyRequests, 503 ServiceUnavailable, 504 Timeout)."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def sequence(match: Callable[[str, str, dict[str, str]], bool], decisions: list[Any]) -> Rule:
    """A rule answering the requests `match` selects with `decisions` one after the other, then forwarding."""
    remaining = list(decisions)
    lock = threading.Lock()

    def rule(method: str, path: str, query: dict[str, str]) -> Any:
        if not match(method, path, query):
            return None
        with lock:
            return remaining.pop(0) if remaining else None
    return rule


def forbidden_status(resource: str, name: str, namespace: str, user: str, verb: str = "get") -> dict[str, Any]:
    """The API server's 403 body for a request RBAC denies (RBAC's wording, e.g. for ``pods/log``)."""
    kind, _, _ = resource.partition("/")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f'{kind} "{name}" is forbidden: User "{user}" cannot {verb} resource "{resource}" '
                       f'in API group "" in the namespace "{namespace}"',
            "reason": "Forbidden", "details": {"name": name, "kind": kind}, "code": 403}


class FaultProxy:
    """Use as a context manager; `write_kubeconfig` points a client at the proxy with the sandbox's admin token."""

    def __init__(self, sandbox: Sandbox, rule: Rule):
        self.sandbox, self.rule = sandbox, rule
        self.requests: list[Seen] = []
        self._tls = create_server_tls("127.0.0.1")
        self._upstream_tls = ssl.create_default_context(cadata=sandbox.ca_pem.decode())
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fault-proxy")
        self.port = 0

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._thread.join(10)
        self._tls.remove()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "proxy", "preferences": {},
            "clusters": [{"name": "proxy", "cluster": {
                "server": self.url, "certificate-authority-data": base64.b64encode(self._tls.ca_pem).decode()}}],
            "users": [{"name": "admin", "user": {"token": self.sandbox.admin_token}}],
            "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "admin", "namespace": "default"}}],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self._runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self._handle), shutdown_timeout=1)
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._tls.context).start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        await self._runner.cleanup()
        await self._session.close()
        self._loop.call_soon(self._loop.stop)

    async def _handle(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        query = dict(request.query)
        self.requests.append(Seen(request.method, request.path, query))
        decision = self.rule(request.method, request.path, query)
        return await self._decide(request, decision)

    async def _decide(self, request: aiohttp.web.BaseRequest, decision: Any) -> aiohttp.web.StreamResponse:
        if isinstance(decision, Delay):
            await asyncio.sleep(decision.seconds)
            return await self._decide(request, decision.then)
        if isinstance(decision, Drop):
            request.transport.abort()
            return aiohttp.web.Response(status=500)  # never sent: the connection is gone
        if isinstance(decision, (Lost, Twice)):
            body = await request.read()
            async with self._forward(request, body) as upstream:
                await upstream.read()
            if isinstance(decision, Lost):
                return await self._decide(request, decision.then)
            decision = None
        if isinstance(decision, Answer):
            return aiohttp.web.json_response(decision.body, status=decision.status, headers=decision.headers)
        if isinstance(decision, Stream):
            text = "".join(json.dumps(line) + "\n" for line in decision.lines)
            return aiohttp.web.Response(text=text, content_type="application/json")
        if isinstance(decision, Cut):
            response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for line in decision.lines:
                await response.write((json.dumps(line) + "\n").encode())
            await asyncio.sleep(0.2)
            request.transport.abort()  # no terminating chunk: the client sees the stream cut
            return response
        if isinstance(decision, threading.Event):
            await asyncio.get_running_loop().run_in_executor(None, decision.wait)
        async with self._forward(request, await request.read()) as upstream:
            response = aiohttp.web.StreamResponse(status=upstream.status, headers={
                "Content-Type": upstream.headers.get("Content-Type", "application/json")})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    def _forward(self, request: aiohttp.web.BaseRequest, body: bytes):
        headers = {k: v for k, v in request.headers.items() if k in _FORWARDED}
        return self._session.request(request.method, self.sandbox.url + request.path_qs, headers=headers,
                                     data=body, ssl=self._upstream_tls)
