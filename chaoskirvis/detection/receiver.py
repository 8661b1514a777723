"""A webhook receiver the experiment starts and stops, where Falcosidekick or any alerting system posts.

It accepts Falcosidekick's payload (rule, priority, time, output, output_fields), Alertmanager's webhook
payload (``{"alerts": [...]}``) and any other JSON object, and wakes waiting probes at once, so time to
detect is measured when the alert arrives.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.detection.alerts import Alert, parse_time
from chaoskirvis.detection.window import Window, now

__all__ = ["AlertReceiver", "start_receiver", "running_receiver", "stop_receiver"]

_MAX_BODY = 1 << 20


class AlertReceiver:
    def __init__(self, host: str, port: int):
        self.alerts: list[Alert] = []
        self.rejected = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_BODY:
                    self.send_error(413)
                    return
                try:
                    payload = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    receiver._reject()
                    self.send_error(400, "expected a JSON body")
                    return
                receiver._accept(payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ActivityFailed(f"cannot start the alert receiver on {host}:{port}: {exc.strerror}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="kirvis-receiver", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

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

    def stop(self) -> dict[str, Any]:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        return {"url": self.url, "received": len(self.alerts), "rejected": self.rejected,
                "alerts": [{"name": a.name, "seen_at": a.seen_at.isoformat(timespec="milliseconds"),
                            "started_at": a.started_at.isoformat() if a.started_at else None}
                           for a in self.alerts]}

    def _accept(self, payload: Any) -> None:
        seen_at = now()
        items = payload.get("alerts") if isinstance(payload, dict) and isinstance(payload.get("alerts"), list) \
            else [payload]
        with self._changed:
            self.alerts.extend(_alert(item, seen_at) for item in items if isinstance(item, dict))
            self._changed.notify_all()

    def _reject(self) -> None:
        with self._changed:
            self.rejected += 1


def _alert(item: dict[str, Any], seen_at) -> Alert:
    labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
    name = item.get("rule") or labels.get("alertname") or item.get("title") or item.get("name") or ""
    started = item.get("time") or item.get("startsAt") or item.get("timestamp")
    details = {k: item[k] for k in ("priority", "source", "hostname") if k in item}
    return Alert(source="webhook", name=str(name), started_at=parse_time(started), seen_at=seen_at,
                 text=str(item.get("output") or item.get("annotations") or ""), raw=item, details=details)


_lock = threading.Lock()
_receiver: AlertReceiver | None = None


def start_receiver(host: str, port: int) -> AlertReceiver:
    global _receiver
    with _lock:
        if _receiver is not None:
            raise ActivityFailed(f"an alert receiver is already running at {_receiver.url}: stop it first")
        _receiver = AlertReceiver(host, port)
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
