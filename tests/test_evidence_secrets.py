"""A canary secret passed through a --var-file appears in no journal, log or report.

The canary is the sandbox's real bearer token, so the runs only pass if it was really used; an extra
probe echoes it to its output, as a leaky activity would, so that redaction has something to catch.
"""
from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from chaoskirvis.evidence.redaction import REDACTED
from chaosrun import BIN, EXPERIMENTS, chaos_env

LEAKY_PROBE = {
    "type": "probe", "name": "echo-the-api-key",
    "provider": {"type": "process", "path": "echo", "arguments": "token=${KUBERNETES_API_KEY}"},
}


@pytest.fixture
def canary_setup(scenarios, tmp_path):
    """(canary, var file, experiment file, environment without any kubeconfig)."""
    kubeconfig = yaml.safe_load(scenarios.kubeconfig.read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    canary = kubeconfig["users"][0]["user"]["token"]
    secrets = {"KUBERNETES_HOST": cluster["server"], "KUBERNETES_API_KEY": canary}
    if "certificate-authority-data" in cluster:
        ca_file = tmp_path / "ca.crt"
        ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        secrets["KUBERNETES_CA_CERT_FILE"] = str(ca_file)
    var_file = tmp_path / "secrets.yaml"
    var_file.write_text(yaml.safe_dump({"secrets": {"kubernetes": secrets}}))
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    experiment["method"].append(LEAKY_PROBE)
    experiment_file = tmp_path / "leaky.yaml"
    experiment_file.write_text(yaml.safe_dump(experiment))
    return canary, var_file, experiment_file, chaos_env(None, HOME=str(tmp_path))


def files_under(folder: Path) -> dict[Path, str]:
    return {path: path.read_text(errors="replace") for path in folder.rglob("*") if path.is_file()}


def test_chaos_run_and_its_reports(canary_setup, tmp_path):
    canary, var_file, experiment_file, env = canary_setup
    out = tmp_path / "chaos"
    out.mkdir()
    done = subprocess.run(
        [str(BIN / "chaos"), "--no-version-check", "--log-file", str(out / "chaos.log"), "run", str(experiment_file),
         "--var", "namespace=team-baseline", "--var-file", str(var_file), "--journal-path", str(out / "journal.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for fmt in ("html", "md", "junit", "json"):
        reported = subprocess.run(
            [str(BIN / "kirvis"), "report", str(out / "journal.json"), "--format", fmt,
             "-o", str(out / f"report.{fmt}")],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert reported.returncode == 0, reported.stderr

    written = files_under(out)
    assert set(written) >= {out / "journal.json", out / "chaos.log", out / "report.html", out / "report.junit"}
    assert [path for path, text in written.items() if canary in text] == []
    assert canary not in done.stdout + done.stderr
    assert f"token={REDACTED}" in written[out / "journal.json"]
    assert f"token={REDACTED}" in written[out / "chaos.log"]


def test_kirvis_run_its_log_and_report(canary_setup, tmp_path):
    canary, var_file, experiment_file, env = canary_setup
    journals = tmp_path / "journals"
    done = subprocess.run(
        [str(BIN / "kirvis"), "run", str(experiment_file), "--var", "namespace=team-baseline", "--var-file",
         str(var_file), "--journals", str(journals), "--report", str(journals / "report.html")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    written = files_under(journals)
    assert set(written) >= {journals / "leaky.json", journals / "kirvis-run.log", journals / "report.html"}
    assert [path for path, text in written.items() if canary in text] == []
    assert canary not in done.stdout + done.stderr
    assert f"token={REDACTED}" in written[journals / "leaky.json"]
