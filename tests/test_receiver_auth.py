"""The alert receiver takes alerts only from who holds the run's secret: a forged POST cannot pass a run.

Found against main: another local process that polled for the run's NodePort Service and POSTed
``{"rule": "Forged", "output": "<service name>"}`` to the receiver turned `nodeport-alerted-at-webhook`,
with no detector at all, into "detected after 0.6 s", exit 0. The receiver now requires
``Authorization: Bearer <token>`` (RFC 6750), the header Falcosidekick's ``webhook.customheaders`` and
Alertmanager's ``http_config.authorization`` send, answers anything else 401 and reports the rejections.
"""
from __future__ import annotations

import json
import shutil
import socket
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from chaoskirvis.detection.actions import start_alert_receiver, stop_alert_receiver
from chaoskirvis.detection.probes import alert_at_receiver
from chaoskirvis.detection.receiver import running_receiver
from chaoskirvis.exposure.actions import inject_exposure
from chaoskirvis.ledger.probes import injections_detected
from chaosrun import BIN, EXPERIMENTS, run_chaos
from detector import Detector
from programs import wait_ready

WRONG_TOKEN = "wrong-token-Zq81Lm40Xv27Hd55"
USER_TOKEN = "user-token-Kp39Wn72Rt16Ye84"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(url: str, payload, token: str | None = None, scheme: str = "Bearer") -> int:
    """POST JSON as an alerting system would; the HTTP status of the answer."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def forged(service: str) -> dict:
    return {"rule": "Forged", "priority": "Critical", "output": f"Forged alert naming {service}"}


@pytest.fixture
def nodeport(run, make_namespace):
    """A receiver started by a fresh run, then a NodePort injected by it: (run arguments, receiver, service)."""
    started = start_alert_receiver(**run)
    try:
        outcome = inject_exposure("nodeport-service", make_namespace(enforce="privileged"), **run)
        yield run, started, outcome["name"]
    finally:
        stop_alert_receiver(**run)


def test_a_forged_post_without_or_with_a_wrong_token_is_refused_counted_and_the_run_misses(nodeport):
    arguments, started, service = nodeport

    statuses = [post(started["url"], forged(service)), post(started["url"], forged(service), WRONG_TOKEN),
                post(started["url"], forged(service), Path(started["token_file"]).read_text(), scheme="Basic")]
    result = alert_at_receiver(within=1, **arguments)

    assert statuses == [401, 401, 401]
    assert result["outcome"] == "missed" and result["alert"] is None
    assert result["rejected_posts_count"] == 3
    assert [r["reason"] for r in result["rejected_posts"]] == [
        "no bearer token", "wrong bearer token", "no bearer token"]
    assert all(r["from"].startswith("127.0.0.1:") for r in result["rejected_posts"])
    assert injections_detected(**arguments) is False  # a weakness: the forged alert did not pass the run


def test_the_right_token_is_detected(nodeport):
    arguments, started, service = nodeport
    token_file = Path(started["token_file"])
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text()
    assert token not in json.dumps(started)

    later = threading.Timer(0.3, lambda: post(started["url"], {**forged(service), "rule": "Create NodePort Service"},
                                             token))
    later.start()
    result = alert_at_receiver(within=5, **arguments)
    later.join()

    assert result["outcome"] == "detected" and result["alert"]["name"] == "Create NodePort Service"
    assert result["rejected_posts_count"] == 0 and result["rejected_posts"] == []
    assert injections_detected(**arguments) is True
    assert token not in json.dumps(result)


def test_the_token_file_is_removed_when_the_receiver_stops(run):
    started = start_alert_receiver(**run)
    token_file = Path(started["token_file"])
    assert token_file.is_file()
    summary = stop_alert_receiver(**run)
    assert not token_file.exists() and summary["rejected"] == 0


def test_binding_beyond_loopback_needs_a_token_of_the_user(run):
    for host in ("0.0.0.0", "::", ""):
        with pytest.raises(ActivityFailed, match="needs a token of yours") as refused:
            start_alert_receiver(host=host, **run)
        assert "\n" not in str(refused.value)
    with pytest.raises(ActivityFailed, match="no alert receiver is running"):
        running_receiver()  # nothing was started


def test_a_user_token_from_secrets_opens_any_address_and_never_appears(run, make_namespace):
    arguments = {**run, "secrets": {**run["secrets"], "receiver_token": USER_TOKEN}}
    with pytest.raises(ActivityFailed, match="secret missing_token is not set"):
        start_alert_receiver(host="0.0.0.0", token_secret="missing_token", **arguments)
    with pytest.raises(ActivityFailed, match="at least 16"):
        start_alert_receiver(token_secret="short", **{**arguments, "secrets": {"short": "abc123"}})
    started = start_alert_receiver(host="0.0.0.0", token_secret="receiver_token", **arguments)
    try:
        assert "token_file" not in started and USER_TOKEN not in json.dumps(started)
        port = started["url"].rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        service = inject_exposure("nodeport-service", make_namespace(enforce="privileged"), **arguments)["name"]
        assert post(url, forged(service), WRONG_TOKEN) == 401
        assert post(url, {**forged(service), "rule": "Create NodePort Service"}, USER_TOKEN) == 200
        result = alert_at_receiver(within=2, **arguments)
    finally:
        summary = stop_alert_receiver(**arguments)
    assert result["outcome"] == "detected" and result["rejected_posts_count"] == 1
    assert USER_TOKEN not in json.dumps(result) + json.dumps(summary)


def test_a_real_alertmanager_sends_the_token_from_its_credentials_file(run, make_namespace, tmp_path):
    """Alertmanager's webhook_config with http_config.authorization.credentials_file (read on each
    request) delivers to the receiver; the same webhook without it is refused and counted."""
    binary = shutil.which("prometheus-alertmanager")
    assert binary, "prometheus-alertmanager is not installed: apt-get install prometheus-alertmanager"
    started = start_alert_receiver(**run)
    port = free_port()
    try:
        service = inject_exposure("nodeport-service", make_namespace(enforce="privileged"), **run)["name"]
        (tmp_path / "alertmanager.yml").write_text(f"""
route: {{receiver: runner, group_wait: 0s, group_interval: 1s, group_by: ['...']}}
receivers:
- name: runner
  webhook_configs:
  - url: {started['url']}
    http_config:
      authorization: {{type: Bearer, credentials_file: {started['token_file']}}}
  - url: {started['url']}
""")
        process = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "alertmanager.log").open("w"))
        try:
            wait_ready(f"http://127.0.0.1:{port}", process, tmp_path / "alertmanager.log")
            assert post(f"http://127.0.0.1:{port}/api/v2/alerts", [{
                "labels": {"alertname": "Create NodePort Service", "k8s_service_name": service}}]) == 200
            result = alert_at_receiver(within=10, name="^Create NodePort Service$", **run)
            deadline = time.monotonic() + 10
            while running_rejections() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            process.terminate()
            process.wait(timeout=10)
    finally:
        summary = stop_alert_receiver(**run)
    assert result["outcome"] == "detected", (tmp_path / "alertmanager.log").read_text()
    assert summary["rejected"] >= 1 and summary["received"] >= 1


def running_rejections() -> int:
    return running_receiver().rejected


def leaked(token: str, *places: Path, outputs: tuple[str, ...] = ()) -> list[str]:
    texts = {str(p): p.read_text(errors="replace") for place in places
             for p in ([place] if place.is_file() else place.rglob("*")) if p.is_file()}
    texts.update({f"output {i}": text for i, text in enumerate(outputs)})
    return sorted(name for name, text in texts.items() if token in text)


def reports(journal: Path, out: Path) -> list[str]:
    written = []
    for extension in ("html", "md", "xml", "json"):
        done = subprocess.run([str(BIN / "kirvis"), "report", str(journal), "-o", str(out / f"report.{extension}")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        written.append(done.stdout + done.stderr)
    return written


class Forger:
    """Another local process's trick: poll for the run's NodePort Service, POST a forged alert naming it."""

    def __init__(self, kubeconfig: Path, namespace: str, url: str):
        self.core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        self.namespace, self.url, self.statuses = namespace, url, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._forge, daemon=True)

    def __enter__(self) -> Forger:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _forge(self) -> None:
        while not self._stop.wait(0.05):
            services = [s for s in self.core.list_namespaced_service(self.namespace).items if s.spec.type == "NodePort"]
            if services:
                try:
                    self.statuses.append(post(self.url, forged(services[0].metadata.name)))
                except OSError:
                    continue  # the receiver is not up yet
                return


def test_the_experiment_with_a_forger_and_no_detector_is_a_weakness(scenarios, make_namespace, tmp_path):
    port, namespace = free_port(), make_namespace(enforce="privileged")
    with Forger(scenarios.kubeconfig, namespace, f"http://127.0.0.1:{port}/") as forger:
        result = run_chaos(EXPERIMENTS / "nodeport-alerted-at-webhook.yaml", tmp_path, scenarios.kubeconfig,
                           variables={"receiver_port": str(port), "within": "3", "namespace": namespace})

    assert forger.statuses == [401]
    assert (result.exit_code, result.journal["deviated"]) == (1, True), result.output
    outcome = result.outputs("alert-posted-to-receiver")[0]
    assert outcome["outcome"] == "missed" and outcome["rejected_posts_count"] == 1
    assert outcome["rejected_posts"][0]["reason"] == "no bearer token"


def test_the_experiment_with_a_detector_holds_and_its_token_is_nowhere(scenarios, make_namespace, tmp_path):
    port, namespace = free_port(), make_namespace(enforce="privileged")
    token_file = tmp_path / "secret" / "receiver.token"
    token_file.parent.mkdir()
    seen: list[str] = []

    def token() -> str:
        seen.append(token_file.read_text())
        return seen[-1]

    with Forger(scenarios.kubeconfig, namespace, f"http://127.0.0.1:{port}/") as forger, \
            Detector(scenarios.kubeconfig, delay=0.3, webhook=f"http://127.0.0.1:{port}/", webhook_token=token):
        result = run_chaos(EXPERIMENTS / "nodeport-alerted-at-webhook.yaml", tmp_path, scenarios.kubeconfig,
                           variables={"receiver_port": str(port), "within": "3", "namespace": namespace,
                                      "receiver_auth_file": str(token_file)})

    assert (result.exit_code, result.journal["deviated"]) == (0, False), result.output
    outcome = result.outputs("alert-posted-to-receiver")[0]
    assert outcome["outcome"] == "detected" and outcome["alert"]["name"] == "Create NodePort Service"
    assert forger.statuses == [401] and outcome["rejected_posts_count"] == 1
    assert seen and len(seen[0]) >= 32 and not token_file.exists()
    out = tmp_path / "reports"
    out.mkdir()
    outputs = reports(tmp_path / "journal-nodeport-alerted-at-webhook.json", out)
    assert leaked(seen[0], tmp_path / "journal-nodeport-alerted-at-webhook.json", tmp_path / "chaos.log", out,
                  outputs=(result.output, *outputs)) == []


def test_the_experiment_with_a_token_of_the_user_listens_beyond_loopback(scenarios, make_namespace, tmp_path):
    """The recipe of docs/detection.md: the token in an env secret, the receiver on 0.0.0.0."""
    experiment = yaml.safe_load((EXPERIMENTS / "nodeport-alerted-at-webhook.yaml").read_text())
    experiment["secrets"] = {"alerting": {"receiver_token": {"type": "env", "key": "KIRVIS_RECEIVER_TOKEN"}}}
    start = next(a for a in experiment["method"] if a["name"] == "start-alert-receiver")
    start["provider"]["secrets"] = ["alerting"]
    start["provider"]["arguments"].update({"host": "0.0.0.0", "token_secret": "receiver_token"})
    source = tmp_path / "nodeport-alerted-at-webhook.yaml"
    source.write_text(yaml.safe_dump(experiment, sort_keys=False))
    port, namespace = free_port(), make_namespace(enforce="privileged")

    with Forger(scenarios.kubeconfig, namespace, f"http://127.0.0.1:{port}/") as forger, \
            Detector(scenarios.kubeconfig, delay=0.3, webhook=f"http://127.0.0.1:{port}/",
                     webhook_token=lambda: USER_TOKEN):
        result = run_chaos(source, tmp_path, scenarios.kubeconfig, KIRVIS_RECEIVER_TOKEN=USER_TOKEN,
                           variables={"receiver_port": str(port), "within": "3", "namespace": namespace})
    (tmp_path / "refused").mkdir()
    refused = run_chaos(source, tmp_path / "refused", scenarios.kubeconfig, KIRVIS_RECEIVER_TOKEN="",
                        variables={"receiver_port": str(port), "within": "1", "namespace": namespace})

    assert (result.exit_code, result.journal["deviated"]) == (0, False), result.output
    started = result.outputs("start-alert-receiver")[0]
    assert started["url"] == f"http://0.0.0.0:{port}/" and started["token_from_secret"] == "receiver_token"
    outcome = result.outputs("alert-posted-to-receiver")[0]
    assert outcome["outcome"] == "detected" and forger.statuses == [401] and outcome["rejected_posts_count"] == 1
    out = tmp_path / "reports"
    out.mkdir()
    outputs = reports(tmp_path / f"journal-{source.stem}.json", out)
    assert leaked(USER_TOKEN, tmp_path / f"journal-{source.stem}.json", tmp_path / "chaos.log", out,
                  outputs=(result.output, *outputs)) == []
    # An empty secret is no token: the start fails, and the run with it (Chaos Toolkit's failed: an error).
    assert (refused.exit_code, refused.journal["status"]) == (1, "failed"), refused.output
    assert "secret receiver_token is not set" in json.dumps(refused.journal)
