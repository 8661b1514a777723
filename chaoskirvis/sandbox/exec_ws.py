"""The pods/exec subresource over WebSocket, as the API server serves it, with no container behind it.

Nothing runs: every exec is recorded (`ExecSessions.records`) and answered with what a test scripted for
it (`ExecSessions.script`). An exec no script answers fails as a command that cannot run fails in a
shell: exit code 127, and a line on stderr saying that the sandbox runs no processes (`UNSCRIPTED`); it
never pretends to have run it. The wire protocol is the real one, so the `kubernetes` client's `stream()`
and kubectl's WebSocket executor read output and exit status:

- Subprotocols, as upstream negotiates them: a request offering ``v5.channel.k8s.io`` gets it (the API
  server hands such requests to its stream translator, `util/proxy/websocket.go`, which speaks v5 only);
  otherwise the first of ``v4.channel.k8s.io``, ``channel.k8s.io`` or no subprotocol that the client
  offers, as the kubelet's `remotecommand/websocket.go` picks. Nothing else (e.g. the base64 variants)
  is served: 403, as Go's x/net/websocket refuses a failed subprotocol handshake.
- Binary frames whose first byte is the channel: 1 stdout, 2 stderr, 3 error/status. The first frame is
  empty, on the lowest writable channel ("the connection is established"). Input channels (0 stdin, 4
  resize, and v5's 255 close signal) are read and discarded: no process reads them. The exception is an
  exec a `local` hook runs (the node agent's commands against a directory attached as a node's
  filesystem, `node_exec`): its stdin (channel 0) is read until v5's close signal for channel 0 (how
  kubectl and the `kubernetes` client end stdin) and given to the process.
- The exit status on channel 3: with v4 and v5 the JSON `Status` ``{"metadata":{},"status":"Success"}``
  or ``{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: ...",
  "reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"N"}]}}``; with the
  older protocols only a failure's message, as text. Then a WebSocket close frame (1000).
- With ``tty=true`` a terminal carries both outputs: stderr is written to stdout and ``\\n`` becomes
  ``\\r\\n`` (a terminal's output processing).
"""

from __future__ import annotations

import datetime
import json
import shlex
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp.web
from multidict import MultiMapping

from chaoskirvis.sandbox.status import bad_request

V5_PROTOCOL = "v5.channel.k8s.io"
V4_PROTOCOL = "v4.channel.k8s.io"
V1_PROTOCOL = "channel.k8s.io"
_KUBELET_PROTOCOLS = (V4_PROTOCOL, V1_PROTOCOL, "")
STDOUT, STDERR, ERROR = 1, 2, 3
_GO_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_GO_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def query_bool(query: MultiMapping[str], name: str) -> bool:
    """A boolean query parameter as the API server's parameter codec reads it (Go's strconv.ParseBool)."""
    value = query.get(name)
    if value is None or value in _GO_FALSE:
        return False
    if value in _GO_TRUE:
        return True
    raise bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')


@dataclass(frozen=True)
class ExecOptions:
    """The PodExecOptions of a request: its query parameters."""

    command: tuple[str, ...]
    container: str
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def parse(cls, query: MultiMapping[str]) -> ExecOptions:
        """Read the options; 400 when no stream or no command is asked for (the kubelet's and kubectl's checks)."""
        tty = query_bool(query, "tty")
        options = cls(command=tuple(query.getall("command", [])), container=query.get("container", ""),
                      stdin=query_bool(query, "stdin"), stdout=query_bool(query, "stdout"),
                      stderr=query_bool(query, "stderr") and not tty,  # a terminal has no separate stderr
                      tty=tty)
        if not (options.stdin or options.stdout or options.stderr):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if not options.command:
            raise bad_request("you must specify at least one command for the container")
        return options

    def admission_object(self) -> dict[str, Any]:
        """The v1 PodExecOptions that admission sees for CONNECT (false and empty fields omitted, as in JSON)."""
        fields = {"stdin": self.stdin, "stdout": self.stdout, "stderr": self.stderr, "tty": self.tty,
                  "container": self.container}
        return {"kind": "PodExecOptions", "apiVersion": "v1", **{k: v for k, v in fields.items() if v},
                "command": list(self.command)}


@dataclass(frozen=True)
class ExecRecord:
    """One command the sandbox was asked to run (and answered, without running anything)."""

    namespace: str
    pod: str
    container: str
    command: tuple[str, ...]
    tty: bool
    user: str
    at: datetime.datetime


@dataclass(frozen=True)
class ExecAnswer:
    """What a scripted command writes and how it exits."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.exit_code <= 255:
            raise ValueError(f"an exit code is 0 to 255, not {self.exit_code}")


ExecMatch = Callable[[ExecRecord], bool] | Sequence[str] | str
UNSCRIPTED_EXIT_CODE = 127  # a shell's "command not found"


def unscripted(record: ExecRecord) -> ExecAnswer:
    """The answer to an exec no script answers: it did not run, and says why."""
    return ExecAnswer(stderr=f"kirvis sandbox: {shlex.join(record.command)}: not run: the sandbox runs no "
                             f"processes (tests script an answer with Sandbox.script_exec)\n",
                      exit_code=UNSCRIPTED_EXIT_CODE)


def _matcher(match: ExecMatch) -> Callable[[ExecRecord], bool]:
    """A predicate, or a command prefix (a list of arguments, or a string split as a shell would)."""
    if callable(match):
        return match
    prefix = tuple(shlex.split(match)) if isinstance(match, str) else tuple(match)
    if not prefix:
        raise ValueError("an empty command prefix would match every exec: pass a predicate to mean that")
    return lambda record: record.command[:len(prefix)] == prefix


class ExecSessions:
    """Scripted answers and the record of every exec; `script` and `records` may be used from any thread."""

    def __init__(self, local: LocalRunner | None = None) -> None:
        """`local(pod, container, command)` may return a coroutine function of the exec's stdin that runs it
        for real (`node_exec.NodeRoots.runner_for`); None leaves the exec to the scripts."""
        self._lock = threading.Lock()
        self._records: list[ExecRecord] = []
        self._scripts: list[tuple[Callable[[ExecRecord], bool], ExecAnswer]] = []
        self._local = local

    @property
    def records(self) -> list[ExecRecord]:
        with self._lock:
            return list(self._records)

    def script(self, match: ExecMatch, answer: ExecAnswer) -> None:
        """Answer the execs that `match` selects with `answer`; the latest matching script wins."""
        matcher = _matcher(match)
        with self._lock:
            self._scripts.append((matcher, answer))

    def _run(self, record: ExecRecord) -> ExecAnswer:
        with self._lock:
            self._records.append(record)
            scripts = list(reversed(self._scripts))
        return next((answer for matcher, answer in scripts if matcher(record)), unscripted(record))

    def _record(self, record: ExecRecord) -> None:
        with self._lock:
            self._records.append(record)

    async def serve(self, raw_request: aiohttp.web.BaseRequest, options: ExecOptions, pod: dict[str, Any],
                    container: str, user: str) -> aiohttp.web.StreamResponse:
        """Upgrade to a WebSocket, answer the command as scripted, send its exit status and close."""
        require_running(pod)
        upgrade = raw_request.headers.get("Upgrade", "")
        if upgrade.lower().startswith("spdy/"):
            raise bad_request(f"the sandbox serves exec over WebSocket only ({V5_PROTOCOL}, {V4_PROTOCOL}), "
                               f"not {upgrade}")
        if upgrade.lower() != "websocket" or "upgrade" not in raw_request.headers.get("Connection", "").lower():
            raise bad_request("Upgrade request required")
        offered = [p.strip() for p in raw_request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocol = V5_PROTOCOL if V5_PROTOCOL in offered else next((p for p in offered if p in _KUBELET_PROTOCOLS),
                                                                    None)
        if protocol is None:
            return aiohttp.web.Response(status=403, text=f"requested protocol(s) are not supported: {offered}; "
                                                         f"supports {[V5_PROTOCOL, *_KUBELET_PROTOCOLS]}")
        metadata = pod["metadata"]
        record = ExecRecord(metadata["namespace"], metadata["name"], container, options.command, options.tty, user,
                            datetime.datetime.now(datetime.UTC))
        local = self._local(pod, container, options.command) if self._local and not options.tty else None
        answer = self._run(record) if local is None else None
        ws = aiohttp.web.WebSocketResponse(protocols=(protocol,) if protocol else (), compress=False)
        await ws.prepare(raw_request)
        first = STDOUT if options.stdout else STDERR if options.stderr else ERROR
        await ws.send_bytes(bytes([first]))
        if local is not None:
            self._record(record)
            answer = await local(await _read_stdin(ws) if options.stdin else b"")
        for channel, text in _output(options, answer):
            await ws.send_bytes(bytes([channel]) + text.encode())
        status = _status(protocol, options.command, answer.exit_code)
        if status:
            await ws.send_bytes(bytes([ERROR]) + status.encode())
        await ws.close()  # a close frame; waits for the client's, discarding what it still sends
        return ws


LocalRunner = Callable[[dict[str, Any], str, tuple[str, ...]], Callable[[bytes], Awaitable[ExecAnswer]] | None]
STDIN, CLOSE = 0, 255


async def _read_stdin(ws: aiohttp.web.WebSocketResponse) -> bytes:
    """What the client writes on channel 0 until it closes that channel (v5) or the connection."""
    data = bytearray()
    async for message in ws:
        raw = message.data.encode() if message.type == aiohttp.WSMsgType.TEXT else message.data
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY) or not raw:
            continue
        if raw[0] == STDIN:
            data += raw[1:]
        elif raw[0] == CLOSE and raw[1:2] == bytes([STDIN]):
            break
    return bytes(data)


def require_running(pod: dict[str, Any]) -> None:
    """400 for a pod that is not Running: no (emulated) kubelet has started its containers to exec into.

    Every pod created through the API is Running from then on (`store.running_pod_status`); this keeps
    exec consistent with a pod whose status says otherwise. (A real API server answers a pod not yet
    scheduled with "pod NAME does not have a host assigned", a stopped container with the runtime's error.)
    """
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise bad_request(f"pod {pod['metadata']['name']} is not running (phase {phase}): cannot exec into it")


def _output(options: ExecOptions, answer: ExecAnswer) -> list[tuple[int, str]]:
    """(channel, text) frames of the answer, for the streams the client asked for."""
    if options.tty:
        text = (answer.stdout + answer.stderr).replace("\r\n", "\n").replace("\n", "\r\n")
        frames = [(STDOUT, text)] if options.stdout else []
    else:
        frames = ([(STDOUT, answer.stdout)] if options.stdout else []) + \
                 ([(STDERR, answer.stderr)] if options.stderr else [])
    return [(channel, text) for channel, text in frames if text]


def _status(protocol: str, command: tuple[str, ...], exit_code: int) -> str:
    """What goes on the error channel at the end: the exit status as upstream words it for this protocol."""
    legacy = protocol not in (V5_PROTOCOL, V4_PROTOCOL)
    if not exit_code:
        return "" if legacy else '{"metadata":{},"status":"Success"}'
    if protocol == V5_PROTOCOL:  # the stream translator wraps the error of client-go's SPDY executor
        cause = f"command terminated with exit code {exit_code}"
    else:  # the kubelet wraps the container runtime's (containerd's) exit error
        cause = f"error executing command [{' '.join(command)}], exit code {exit_code}"
    message = f"command terminated with non-zero exit code: {cause}"
    if legacy:
        return message
    return json.dumps({"metadata": {}, "status": "Failure", "message": message, "reason": "NonZeroExitCode",
                       "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]}},
                      separators=(",", ":"))


__all__ = ["UNSCRIPTED_EXIT_CODE", "ExecAnswer", "ExecMatch", "ExecOptions", "ExecRecord", "ExecSessions",
           "bad_request", "query_bool", "require_running", "unscripted"]
