"""How precisely do detection probes measure time to detect? Prints errors measured in one run.

Alerts are posted at known delays after an injection, to the webhook receiver (the probe waits on a
condition) and, when Debian's prometheus-alertmanager is installed, to a real Alertmanager (the probe
polls every 0.05 s). The same alerts are also measured, in the same run, by a fixed-pause check: sleep 1 s, look,
sleep again, which can only say "by the next pause". Goal: at most 0.1 s of error.

Usage: .venv/bin/python bench/time_to_detect.py
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from chaoskirvis.detection.alertmanager import alertmanager_alerts
from chaoskirvis.detection.receiver import AlertReceiver
from chaoskirvis.detection.verdict import judge
from chaoskirvis.detection.window import Window
from chaoskirvis.ledger.runid import reset_run_id

DELAYS = (0.15, 0.35, 0.8, 1.3, 2.05)
FIXED_PAUSE = 1.0
RUN_ID = "rbenchmark0"


def post(url: str, payload) -> None:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def alert(at: dt.datetime) -> dict:
    return {"labels": {"alertname": "Launch Privileged Container", "k8s_pod_name": f"kirvis-{RUN_ID}-privileged",
                       "sample": at.isoformat()},
            "startsAt": at.isoformat(), "rule": "Launch Privileged Container",
            "output_fields": {"k8s.pod.name": f"kirvis-{RUN_ID}-privileged"}, "time": at.isoformat()}


def fixed_pause_errors(receiver: AlertReceiver) -> list[float]:
    """A check that sleeps FIXED_PAUSE between looks at the same receiver: it learns of an alert late."""
    errors = []
    for delay in DELAYS:
        before = len(receiver.alerts)
        started = time.monotonic()
        timer = threading.Timer(delay, lambda: post(receiver.url, alert(dt.datetime.now(dt.UTC))))
        timer.start()
        while True:
            time.sleep(FIXED_PAUSE)
            if len(receiver.alerts) > before:
                break
        errors.append(abs(time.monotonic() - started - delay))
        timer.join()
    return errors


def measure(name: str, send, alerts_of) -> list[float]:
    errors = []
    for delay in DELAYS:
        injected = dt.datetime.now(dt.UTC)
        window = Window(RUN_ID, injected, within=delay + 2)
        timer = threading.Timer(delay, lambda: send(alert(dt.datetime.now(dt.UTC))))
        timer.start()
        outcome = judge(name, alerts_of(window), window, lambda a: True)
        timer.join()
        errors.append(abs(outcome["time_to_detect_s"] - delay))
    return errors


def start_alertmanager(work: Path) -> tuple[subprocess.Popen, str] | None:
    binary = shutil.which("prometheus-alertmanager")
    if not binary:
        return None
    (work / "am.yml").write_text("route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([binary, f"--config.file={work / 'am.yml'}", f"--storage.path={work / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.05)
    process.terminate()
    return None


def report(name: str, errors: list[float]) -> None:
    print(f"{name:<28} max error {max(errors):.3f} s   mean {statistics.mean(errors):.3f} s")


def main() -> int:
    reset_run_id(RUN_ID)
    receiver = AlertReceiver("127.0.0.1", 0)
    try:
        webhook = measure("webhook", lambda a: post(receiver.url, a), receiver.alerts_until)
        fixed = fixed_pause_errors(receiver)
    finally:
        receiver.stop()
    print(f"delays: {', '.join(f'{d:.2f}' for d in DELAYS)} s")
    report("webhook receiver (wait)", webhook)
    with tempfile.TemporaryDirectory() as work:
        started = start_alertmanager(Path(work))
        if started:
            process, url = started
            try:
                polled = measure("alertmanager", lambda a: post(f"{url}/api/v2/alerts", [a]),
                                 lambda w: alertmanager_alerts(url, w, matchers=[], include_silenced=False,
                                                               include_inhibited=False, interval=0.05,
                                                               headers={}, ca_file=None))
            finally:
                process.terminate()
            report("alertmanager (0.05 s poll)", polled)
        else:
            print("alertmanager: not installed (apt-get install prometheus-alertmanager), skipped")
    report(f"fixed {FIXED_PAUSE:.0f} s pauses", fixed)
    print(f"fixed-pause error / webhook error: {max(fixed) / max(max(webhook), 1e-3):.0f}x")
    return 0 if max(webhook) <= 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
