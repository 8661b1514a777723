"""Planted secrets appear nowhere: not in the journal, the Chaos Toolkit log, kirvis run's log, nor any report.

Three secrets are planted in a real detection experiment played against the sandbox and a real
Alertmanager: a password in the Alertmanager URL's userinfo (``http://admin:PASSWORD@host``, as RFC 3986
lets a URL carry it), a bearer token under ``secrets`` (sent to Alertmanager as its Authorization header),
and a secret value written into the experiment's title and description. A second probe asks a dead
Alertmanager with credentials in its URL, so that the error message (which names the URL) has the
password to leak too.
"""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from chaosrun import BIN, EXPERIMENTS, chaos_env

URL_PASSWORD = "urlpass-7Qk2xZ9"
BEARER_TOKEN = "bearer-canary-5Jd8wR3"
TITLE_SECRET = "title-canary-9Hs4mV1"
PLANTED = (URL_PASSWORD, BEARER_TOKEN, TITLE_SECRET)


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def planted(scenarios, alertmanager, make_namespace, tmp_path):
    """(experiment file, var file, environment): the secrets planted in a detection experiment."""
    host = alertmanager.url.removeprefix("http://")
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-alerted-in-alertmanager.yaml").read_text())
    experiment["title"] = f"A privileged pod reaches Alertmanager (key {TITLE_SECRET})"
    experiment["description"] += f" Deployed with {TITLE_SECRET}."
    experiment["configuration"]["namespace"] = make_namespace(enforce="privileged")
    experiment["configuration"]["alertmanager_url"] = f"http://admin:{URL_PASSWORD}@{host}"
    experiment["configuration"]["within"] = 1
    experiment["controls"] = [{"name": "kirvis-evidence",
                               "provider": {"type": "python", "module": "chaoskirvis.controls.evidence"}}]
    experiment["secrets"] = {"alerting": {"ALERTMANAGER_TOKEN": BEARER_TOKEN, "deploy_key": TITLE_SECRET}}
    probe = next(a for a in experiment["method"] if a["name"] == "alert-reaches-alertmanager")
    probe["provider"]["secrets"] = ["alerting"]
    probe["provider"]["arguments"]["token_secret"] = "ALERTMANAGER_TOKEN"
    dead = {**probe, "name": "ask-a-dead-alertmanager"}
    dead["provider"] = {**probe["provider"], "arguments": {
        **probe["provider"]["arguments"], "url": f"http://admin:{URL_PASSWORD}@127.0.0.1:{dead_port()}"}}
    experiment["method"].append(dead)
    experiment_file = tmp_path / "planted.yaml"
    experiment_file.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return experiment_file, chaos_env(scenarios.kubeconfig, HOME=str(tmp_path))


def leaks(folder: Path, *outputs: str) -> dict[str, list[str]]:
    """For each planted secret, the files (and console outputs) that hold it."""
    texts = {str(path): path.read_text(errors="replace") for path in folder.rglob("*") if path.is_file()}
    texts.update({f"console {i}": text for i, text in enumerate(outputs)})
    return {secret: sorted(name for name, text in texts.items() if secret in text) for secret in PLANTED}


def reports(journal: Path, out: Path, env: dict[str, str]) -> list[str]:
    written = []
    for extension in ("html", "md", "xml", "json"):
        target = out / f"report.{extension}"
        done = subprocess.run([str(BIN / "kirvis"), "report", str(journal), "-o", str(target)],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert target.stat().st_size > 0
        written.append(done.stdout + done.stderr)
    return written


def test_chaos_run_journal_log_and_every_report(planted, tmp_path):
    experiment_file, env = planted
    out = tmp_path / "chaos"
    out.mkdir()
    journal = out / "journal.json"
    done = subprocess.run(
        [str(BIN / "chaos"), "--no-version-check", "--log-file", str(out / "chaos.log"), "run",
         str(experiment_file), "--journal-path", str(journal)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the dead Alertmanager makes it an error
    text = journal.read_text()
    assert "ask-a-dead-alertmanager" in text and "alert-reaches-alertmanager" in text
    assert "cannot reach http://" in text, "the dead Alertmanager's error (naming its URL) is in the journal"
    console = reports(journal, out, env)

    assert leaks(out, done.stdout + done.stderr, *console) == {secret: [] for secret in PLANTED}
    assert "A privileged pod reaches Alertmanager (key [redacted])" in text


def test_kirvis_run_its_log_and_every_report(planted, tmp_path):
    experiment_file, env = planted
    out = tmp_path / "journals"
    done = subprocess.run(
        [str(BIN / "kirvis"), "run", str(experiment_file), "--journals", str(out), "--report",
         str(out / "run-report.html")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    # a weakness (the alert is missed) or an error (the dead Alertmanager), whichever the verdict ranks first
    assert done.returncode in (1, 2), done.stdout + done.stderr
    assert {p.name for p in out.iterdir()} >= {"planted.json", "kirvis-run.log", "run-report.html"}
    assert "start   planted.yaml: A privileged pod reaches Alertmanager (key [redacted])" in done.stdout
    console = reports(out / "planted.json", out, env)

    assert leaks(out, done.stdout + done.stderr, *console) == {secret: [] for secret in PLANTED}


def test_url_credentials_are_sent_as_basic_auth_and_named_nowhere():
    """curl's behaviour: userinfo becomes `Authorization: Basic` (RFC 7617); messages name the URL without it."""
    import base64
    import http.server
    import threading

    from chaoslib.exceptions import ActivityFailed

    from chaoskirvis.detection.http import fetch_json

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b"unauthorized")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        with pytest.raises(ActivityFailed) as failed:
            fetch_json("GET", f"http://admin:{URL_PASSWORD}%21@127.0.0.1:{port}/api/v2/alerts")
        with pytest.raises(ActivityFailed):
            fetch_json("GET", f"http://admin:{URL_PASSWORD}@127.0.0.1:{port}/x",
                       headers={"Authorization": f"Bearer {BEARER_TOKEN}"})
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [f"Basic {base64.b64encode(f'admin:{URL_PASSWORD}!'.encode()).decode()}", f"Bearer {BEARER_TOKEN}"]
    assert str(failed.value) == f"GET http://127.0.0.1:{port}/api/v2/alerts answered 401: unauthorized"
