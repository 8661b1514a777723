"""How precisely is time to detect measured? The probes against fixed-interval pollers, all run, in one run.

For each of 32 alert delays (seeded, 0.1-3 s) after an "injection", one alert is raised at that delay,
at the same moment, to three backends: POSTed to the webhook receiver, POSTed to a real Alertmanager
(Debian's prometheus-alertmanager; Alertmanager stamps `startsAt` on receipt), and created as a
Kubernetes Event in the sandbox. Measured on each, concurrently:

- the probes: the receiver (waits on arrival), Alertmanager (polls every 0.05 s, as the probe's default)
  and Events (list, then watch);
- what a user writes with Chaos Toolkit pauses, against the same Alertmanager: poll every N s (ask, sleep
  N, ask again; N = 0.05, 1, 5) and sleep N then ask once (N = 1, 5). A poller's time to detect is when
  its answer came.

Error = measured time to detect - true delay (when the alert was sent). Requests are counted by a relay
in front of Alertmanager (every Alertmanager approach goes through it alike) and by the Events
probe's client. Goal: the probes within 0.1 s.

Usage: .venv/bin/python bench/time_to_detect.py [--samples 32] [--seed 8]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import logzero
import urllib3

from chaoskirvis.client import KubeAPI, kube_api
from chaoskirvis.detection.alertmanager import alertmanager_alerts
from chaoskirvis.detection.events import event_alerts
from chaoskirvis.detection.receiver import AlertReceiver
from chaoskirvis.detection.verdict import judge
from chaoskirvis.detection.window import Window, now
from chaoskirvis.ledger.runid import reset_run_id
from chaoskirvis.sandbox.server import Sandbox

RUN_ID = "rbenchmark0"
POD = f"kirvis-{RUN_ID}-privileged"
PROBE_POLL_S = 0.05
EVERY = (PROBE_POLL_S, 1.0, 5.0)   # poll every N s
ONCE = (1.0, 5.0)                   # sleep N s, ask once
BACKGROUND_S = 2.0                  # approaches slower than this run in the background, across delays
NAMESPACE = "bench"


@dataclass
class Result:
    error: float | None  # None: missed
    lag: float | None = None  # when the approach returned, after the alert was sent
    requests: int = 0


@dataclass
class Approach:
    name: str
    how: str
    results: list[Result] = field(default_factory=list)


def post(url: str, payload) -> None:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


class CountingRelay:
    """Forwards ``GET /<approach>/api/v2/...`` to Alertmanager and counts requests per approach."""

    def __init__(self, upstream: str):
        self.counts: Counter[str] = Counter()
        pool = urllib3.PoolManager(maxsize=32, retries=False)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                _, approach, rest = self.path.split("/", 2)
                relay.counts[approach] += 1
                answer = pool.request("GET", f"{upstream}/{rest}", timeout=5)
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.data)))
                self.end_headers()
                self.wfile.write(answer.data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, approach: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{approach}"


class CountingKubeAPI(KubeAPI):
    """The probe's Kubernetes client, counting the reads it makes (lists, and watches opened)."""

    def __init__(self, api: KubeAPI):
        super().__init__(api.api_client, api.timeout)
        self.reads = 0

    def get(self, path: str, **query):
        self.reads += 1
        return super().get(path, **query)

    def stream_lines(self, path: str, **options):
        self.reads += 1
        return super().stream_lines(path, **options)


def start_alertmanager(work: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("prometheus-alertmanager")
    if not binary:
        sys.exit("prometheus-alertmanager is not installed: apt-get install prometheus-alertmanager")
    (work / "am.yml").write_text("route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([binary, f"--config.file={work / 'am.yml'}", f"--storage.path={work / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.05)
    process.terminate()
    sys.exit("Alertmanager did not become ready")


class Bench:
    def __init__(self, receiver: AlertReceiver, alertmanager: str, relay: CountingRelay, kubeconfig: Path):
        self.receiver, self.alertmanager, self.relay = receiver, alertmanager, relay
        self.kube = CountingKubeAPI(kube_api(secrets={"KUBECONFIG": str(kubeconfig)}))
        self.approaches = {
            "webhook": Approach("webhook receiver probe", "push: waits on arrival"),
            "alertmanager": Approach("Alertmanager probe", f"polls every {PROBE_POLL_S:g} s, startsAt"),
            "events": Approach("Events probe", "list, then watch (sandbox)"),
            **{f"every-{n:g}": Approach(f"poll every {n:g} s", "Alertmanager, answer time") for n in EVERY},
            **{f"once-{n:g}": Approach(f"sleep {n:g} s, ask once", "Alertmanager, answer time") for n in ONCE},
        }
        self.background: list[threading.Thread] = []

    # Raising the alert, at the same moment, on the three backends.

    def raise_alert(self, sample: str, sent: dict[str, float], injected_mono: float) -> None:
        def send(backend: str, action: Callable[[], None]) -> None:
            sent[backend] = time.monotonic() - injected_mono
            action()

        labels = {"alertname": "Launch Privileged Container", "k8s_pod_name": POD, "sample": sample}
        event = {"metadata": {"name": f"{POD}.{sample}", "namespace": NAMESPACE},
                 "involvedObject": {"kind": "Pod", "name": POD, "namespace": NAMESPACE},
                 "reason": "PolicyViolation", "message": f"privileged ({sample})", "type": "Warning"}
        senders = [
            threading.Thread(target=send, args=("webhook", lambda: post(self.receiver.url, {
                "rule": "Launch Privileged Container", "output": f"{POD} {sample}", "labels": labels}))),
            threading.Thread(target=send, args=("alertmanager", lambda: post(
                f"{self.alertmanager}/api/v2/alerts", [{"labels": labels}]))),  # Alertmanager stamps startsAt
            threading.Thread(target=send, args=("events", lambda: self.kube.create(
                f"/api/v1/namespaces/{NAMESPACE}/events", event))),
        ]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()

    # The probes.

    def probe(self, key: str, sample: str, injected: dt.datetime, injected_mono: float, delay: float,
              sent: dict[str, float], raised: threading.Event) -> None:
        window = Window(RUN_ID, injected, within=delay + 3)
        if key == "webhook":
            alerts = self.receiver.alerts_until(window)
            matches = lambda a: a.raw.get("labels", {}).get("sample") == sample  # noqa: E731
        elif key == "alertmanager":
            alerts = alertmanager_alerts(self.relay.url("alertmanager"), window, matchers=[f'sample="{sample}"'],
                                         include_silenced=False, include_inhibited=False, interval=PROBE_POLL_S,
                                         headers={}, ca_file=None)
            matches = lambda a: True  # noqa: E731
        else:
            alerts = event_alerts(self.kube, window, NAMESPACE)
            matches = lambda a: sample in a.text  # noqa: E731
        outcome = judge(key, alerts, window, matches)
        returned = time.monotonic() - injected_mono
        raised.wait()
        ttd = outcome["time_to_detect_s"]
        self.approaches[key].results.append(
            Result(None if ttd is None else ttd - sent[key], returned - sent[key]))

    # What a user writes: ask Alertmanager, sleep N, ask again (or sleep N, ask once).

    def ask(self, approach: str, sample: str) -> bool:
        query = urllib.parse.urlencode([("filter", f'sample="{sample}"')])
        with urllib.request.urlopen(f"{self.relay.url(approach)}/api/v2/alerts?{query}", timeout=5) as answer:
            return bool(json.loads(answer.read()))

    def poller(self, key: str, every: float | None, once: float | None, sample: str, injected_mono: float,
               delay: float, sent: dict[str, float], raised: threading.Event) -> None:
        requests, found_at = 0, None
        if once is not None:
            time.sleep(once)
            requests += 1
            found_at = time.monotonic() - injected_mono if self.ask(key, sample) else None
        else:
            give_up = delay + every + 3
            while True:
                requests += 1
                if self.ask(key, sample):
                    found_at = time.monotonic() - injected_mono
                    break
                if time.monotonic() - injected_mono > give_up:
                    break
                time.sleep(every)
        raised.wait()
        true = sent["alertmanager"]
        self.approaches[key].results.append(
            Result(None if found_at is None else found_at - true, None if found_at is None else found_at - true,
                   requests))

    # One sample: every approach on the same alert.

    def sample(self, index: int, delay: float) -> None:
        sample = f"s{index:02d}"
        sent: dict[str, float] = {}
        raised = threading.Event()
        injected, injected_mono = now(), time.monotonic()
        threads = [threading.Thread(target=self.probe, args=(key, sample, injected, injected_mono, delay, sent,
                                                             raised)) for key in ("webhook", "alertmanager", "events")]
        pollers = [(f"every-{n:g}", n, None) for n in EVERY] + [(f"once-{n:g}", None, n) for n in ONCE]
        for key, every, once in pollers:
            thread = threading.Thread(target=self.poller, args=(key, every, once, sample, injected_mono, delay,
                                                                sent, raised))
            (self.background if (every or once) > BACKGROUND_S else threads).append(thread)
        for thread in threads + [t for t in self.background if t.ident is None]:
            thread.start()
        timer = threading.Timer(delay - (time.monotonic() - injected_mono), lambda: (
            self.raise_alert(sample, sent, injected_mono), raised.set()))
        timer.start()
        timer.join()
        for thread in threads:
            thread.join()

def summary(approach: Approach, samples: int, requests: float) -> tuple[str, ...]:
    errors = [r.error for r in approach.results if r.error is not None]
    lags = [r.lag for r in approach.results if r.lag is not None]
    missed = sum(1 for r in approach.results if r.error is None)
    cell = (lambda values, f: f"{f(values):+.3f}" if values else "-")
    return (approach.name, approach.how, f"{requests:.1f}", cell(errors, min), cell(errors, statistics.median),
            cell(errors, max), f"{missed}/{samples}",
            f"{statistics.median(lags):.3f}" if lags else "-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--seed", type=int, default=8)
    options = parser.parse_args()
    logzero.loglevel(logging.WARNING)
    reset_run_id(RUN_ID)
    generator = random.Random(options.seed)
    delays = [generator.uniform(0.1, 3.0) for _ in range(options.samples)]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work, Sandbox() as sandbox:
        kubeconfig = sandbox.write_kubeconfig(Path(work) / "kubeconfig")
        sandbox.apply(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n")
        process, alertmanager = start_alertmanager(Path(work))
        receiver = AlertReceiver("127.0.0.1", 0)
        relay = CountingRelay(alertmanager)
        try:
            bench = Bench(receiver, alertmanager, relay, kubeconfig)
            for index, delay in enumerate(delays):
                bench.sample(index, delay)
            for thread in bench.background:
                thread.join()
            event_requests = bench.kube.reads
        finally:
            receiver.stop()
            relay.server.shutdown()
            process.terminate()
            process.wait(10)
    samples = len(delays)
    requests = {key: relay.counts[key] / samples for key in bench.approaches}
    requests["webhook"] = 0.0
    requests["events"] = event_requests / samples
    rows = [("approach", "how", "requests/alert", "error min", "median", "max", "missed", "returns after")]
    rows += [summary(approach, samples, requests[key]) for key, approach in bench.approaches.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"{samples} alert delays, uniform 0.1-3 s, seed {options.seed}: min {min(delays):.2f} s, median "
          f"{statistics.median(delays):.2f} s, max {max(delays):.2f} s; error = measured time to detect - true "
          "delay (s); 'returns after' = median time from the alert to the approach's answer (s)")
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) if i < 2 else cell.rjust(width) for i, (cell, width) in
                        enumerate(zip(row, widths))))
        if number == 0:
            print("  ".join("-" * width for width in widths))

    def median_abs(key: str) -> float:
        return statistics.median(abs(r.error) for r in bench.approaches[key].results if r.error is not None)

    probe = max(median_abs("alertmanager"), 1e-3)
    print(f"\nratios measured in this run (median |error|; the Alertmanager probe's taken as at least 1 ms):")
    for key in ("every-0.05", "every-1", "every-5", "once-5"):
        print(f"  {bench.approaches[key].name:<22} {median_abs(key) / probe:7.0f}x the Alertmanager probe's error, "
              f"{requests[key] / max(requests['alertmanager'], 1e-9):5.2f}x its requests")
    print(f"  {'sleep 1 s, ask once':<22} missed {sum(r.error is None for r in bench.approaches['once-1'].results)} "
          f"of {samples} alerts that all came within 3 s")
    print(f"total bench time {time.monotonic() - started:.0f} s")
    worst = max(abs(r.error) for key in ("webhook", "alertmanager", "events")
                for r in bench.approaches[key].results if r.error is not None)
    missed = sum(r.error is None for key in ("webhook", "alertmanager", "events") for r in bench.approaches[key].results)
    return 0 if worst <= 0.1 and not missed else 1


if __name__ == "__main__":
    sys.exit(main())
