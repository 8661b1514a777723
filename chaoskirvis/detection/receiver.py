"""A webhook receiver the experiment starts and stops, where Falcosidekick or any alerting system posts.

It accepts Falcosidekick's payload (rule, priority, time, output, output_fields), Alertmanager's webhook
payload (``{"alerts": [...]}``) and any other JSON object, and wakes waiting probes at once, so time to
detect is measured when the alert arrives.

Only a POST carrying the run's secret counts: ``Authorization: Bearer <token>`` (RFC 6750), the header
Falcosidekick's ``webhook.customheaders`` and Alertmanager's ``http_config.authorization`` send. Anything
else is answered 401 (its body is not looked at) and kept as a rejection: who sent it, when and why,
never what it presented. A forged alert can then make a run miss, never pass.
"""
from __future__ import annotations

import hmac
import json
import os
import shutil
import socket
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

from chaoslib.exceptions import ActivityFailed
from logzero import logger

from chaoskirvis.detection.alerts import Alert, parse_time
from chaoskirvis.detection.window import Window, now

__all__ = ["AlertReceiver", "start_receiver", "running_receiver", "stop_receiver"]

_MAX_BODY = 1 << 20
_KEPT_REJECTIONS = 20  # the first ones are kept with their source; all are counted


class AlertReceiver:
    def __init__(self, host: str, port: int, token: str):
        if not token:
            raise ActivityFailed("the alert receiver needs a token: it takes no unauthenticated alert")
        self.alerts: list[Alert] = []
        self.rejected = 0
        self.rejections: list[dict[str, str]] = []
        self._token = token.encode()
        self._token_text = token
        self._token_file: Path | None = None
        self._token_dir: Path | None = None
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # seconds a client may take to send its request: a stalled one does not hold a thread

            def do_POST(self) -> None:
                refused = receiver._refusal(self.headers.get_all("Authorization") or [])
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                readable = 0 <= length <= _MAX_BODY
                body = self.rfile.read(length) if readable else b""  # read even to refuse: the client hears the answer
                if refused:
                    receiver._reject(self.client_address, refused)
                    self.close_connection = not readable
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer realm="kirvis"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if not readable:
                    self.close_connection = True
                    self.send_error(413 if length > _MAX_BODY else 400)
                    return
                try:
                    payload = json.loads(body or b"null")
                except ValueError:
                    receiver._reject(self.client_address, "body is not JSON")
                    self.send_error(400, "expected a JSON body")
                    return
                receiver._accept(payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        try:
            server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
            self._server = server_class((host, port), Handler)
        except OSError as exc:
            raise ActivityFailed(f"cannot start the alert receiver on {host}:{port}: {exc.strerror}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="kirvis-receiver", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def alerts_until(self, window: Window) -> Iterator[Alert]:
        """Every alert received (past ones first), then each new one as it arrives, until the deadline."""
        index = 0
        while True:
            with self._changed:
                while index >= len(self.alerts) and window.remaining() > 0:
                    self._changed.wait(timeout=window.remaining())
                fresh = self.alerts[index:]
            if not fresh:
                return
            index += len(fresh)
            yield from fresh

    def rejected_posts(self, run_id: str) -> dict[str, Any]:
        """Evidence of the refused POSTs so far: how many, and the first ones (source, time, reason).
        When there are any, says so in the log, with what to do if one was the alerting system."""
        with self._changed:
            evidence = {"rejected_posts_count": self.rejected, "rejected_posts": [dict(r) for r in self.rejections]}
        if self.rejected:
            sources = ", ".join(sorted({r["from"].rsplit(":", 1)[0] for r in evidence["rejected_posts"]}))
            logger.warning(f"[{run_id}] webhook: refused {evidence['rejected_posts_count']} POST(s) without the "
                           f"receiver's bearer token (from {sources}): if one was your alerting system, configure "
                           "it to send the token (docs/detection.md, Authenticated alert intake)")
        return evidence

    def write_token_file(self, path: str | None = None) -> Path:
        """Write the token, readable by its owner only (0600), to `path` (replaced atomically) or to a new
        private temporary directory; `stop` removes it. Returns where it is."""
        if path:
            target = Path(path).expanduser().absolute()
            try:
                descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".kirvis-token-")
            except OSError as exc:
                raise ActivityFailed(f"cannot write the receiver's token file in {target.parent}: "
                                     f"{exc.strerror}") from None
        else:
            self._token_dir = Path(tempfile.mkdtemp(prefix="kirvis-receiver-"))
            target = self._token_dir / "token"
            descriptor, temporary = tempfile.mkstemp(dir=self._token_dir, prefix=".token-")
        try:
            with os.fdopen(descriptor, "w") as file:  # mkstemp makes it 0600
                file.write(self._token_text)
            os.replace(temporary, target)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise ActivityFailed(f"cannot write the receiver's token file {target}: {exc.strerror}") from None
        self._token_file = target
        return target

    def stop(self) -> dict[str, Any]:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        if self._token_file:
            self._token_file.unlink(missing_ok=True)
        if self._token_dir:
            shutil.rmtree(self._token_dir, ignore_errors=True)
        return {"url": self.url, "received": len(self.alerts), "rejected": self.rejected,
                "rejected_posts": [dict(r) for r in self.rejections],
                "alerts": [{"name": a.name, "seen_at": a.seen_at.isoformat(timespec="milliseconds"),
                            "started_at": a.started_at.isoformat() if a.started_at else None}
                           for a in self.alerts]}

    def _refusal(self, authorizations: list[str]) -> str | None:
        """Why a request with these Authorization headers is refused, or None when it carries the token."""
        if len(authorizations) > 1:
            return "more than one Authorization header"
        scheme, _, credentials = (authorizations[0] if authorizations else "").strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return "no bearer token"
        presented = credentials.strip().encode("utf-8", "replace")
        return None if hmac.compare_digest(presented, self._token) else "wrong bearer token"

    def _accept(self, payload: Any) -> None:
        seen_at = now()
        items = payload.get("alerts") if isinstance(payload, dict) and isinstance(payload.get("alerts"), list) \
            else [payload]
        with self._changed:
            self.alerts.extend(_alert(item, seen_at) for item in items if isinstance(item, dict))
            self._changed.notify_all()

    def _reject(self, client_address: tuple, reason: str) -> None:
        source = f"{client_address[0]}:{client_address[1]}"
        with self._changed:
            self.rejected += 1
            if len(self.rejections) < _KEPT_REJECTIONS:
                self.rejections.append({"from": source, "at": now().isoformat(timespec="milliseconds"),
                                        "reason": reason})
                logger.warning(f"alert receiver: refused a POST from {source} ({reason})")


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _alert(item: dict[str, Any], seen_at) -> Alert:
    labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
    name = item.get("rule") or labels.get("alertname") or item.get("title") or item.get("name") or ""
    started = item.get("time") or item.get("startsAt") or item.get("timestamp")
    details = {k: item[k] for k in ("priority", "source", "hostname") if k in item}
    return Alert(source="webhook", name=str(name), started_at=parse_time(started), seen_at=seen_at,
                 text=str(item.get("output") or item.get("annotations") or ""), raw=item, details=details)


_lock = threading.Lock()
_receiver: AlertReceiver | None = None


def start_receiver(host: str, port: int, token: str) -> AlertReceiver:
    global _receiver
    with _lock:
        if _receiver is not None:
            raise ActivityFailed(f"an alert receiver is already running at {_receiver.url}: stop it first")
        _receiver = AlertReceiver(host, port, token)
        return _receiver


def running_receiver() -> AlertReceiver:
    with _lock:
        if _receiver is None:
            raise ActivityFailed("no alert receiver is running: start it with start_alert_receiver first")
        return _receiver


def stop_receiver() -> dict[str, Any] | None:
    global _receiver
    with _lock:
        receiver, _receiver = _receiver, None
    return receiver.stop() if receiver else None
