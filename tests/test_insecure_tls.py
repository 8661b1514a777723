"""TLS verification turned off is allowed, but warned about on every run and recorded in the evidence.

A kubeconfig cluster with ``insecure-skip-tls-verify: true`` (the kubernetes client then sets
``verify_ssl = False``, kubernetes/config/kube_config.py) or ``KUBERNETES_VERIFY_SSL=false`` lets anyone on
the network path answer for the API server, a forged denial included. The run warns once (a WARNING line
naming the cluster), the journal's evidence says ``tls_verified: false`` and every report says so.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from chaoskirvis.cli import main
from chaosrun import EXPERIMENTS, run_chaos

EXPERIMENT = EXPERIMENTS / "privileged-pod-denied.yaml"
WARNING = re.compile(r"\bWARNING\b.*TLS verification is off.*")


def insecure_kubeconfig(kubeconfig, path):
    """The sandbox's kubeconfig, with its CA removed and insecure-skip-tls-verify set (as kubectl writes it)."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    del cluster["certificate-authority-data"]
    cluster["insecure-skip-tls-verify"] = True
    path.write_text(yaml.safe_dump(config))
    return path


def warnings_in(workdir) -> list[str]:
    return WARNING.findall((workdir / "chaos.log").read_text())


def report(journal_path, workdir, fmt: str) -> str:
    out = workdir / f"report.{fmt}"
    assert main(["report", str(journal_path), "--format", fmt, "-o", str(out)]) == 0
    return out.read_text()


@pytest.mark.parametrize("how", ["insecure-skip-tls-verify", "KUBERNETES_VERIFY_SSL=false"])
def test_unverified_tls_is_warned_about_recorded_and_reported(sandbox, make_namespace, tmp_path, how):
    namespace = make_namespace(enforce="baseline")
    if how == "insecure-skip-tls-verify":
        result = run_chaos(EXPERIMENT, tmp_path, insecure_kubeconfig(sandbox.kubeconfig, tmp_path / "insecure"),
                           variables={"namespace": namespace})
    else:
        result = run_chaos(EXPERIMENT, tmp_path, sandbox.kubeconfig, variables={"namespace": namespace},
                           KUBERNETES_VERIFY_SSL="false")

    assert result.exit_code == 0, result.output  # allowed: the run itself is carried out
    warnings = warnings_in(tmp_path)
    assert len(warnings) == 1, warnings  # once per process and cluster
    assert sandbox.sandbox.url in warnings[0]
    assert sandbox.sandbox.admin_token not in (tmp_path / "chaos.log").read_text()
    cluster = result.journal["chaoskirvis"]["cluster"]
    assert cluster["tls_verified"] is False
    journal_path = next(tmp_path.glob("journal-*.json"))
    for fmt in ("md", "html"):
        assert "TLS NOT VERIFIED" in report(journal_path, tmp_path, fmt)


def test_verified_tls_is_recorded_and_not_warned_about(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(enforce="baseline")
    result = run_chaos(EXPERIMENT, tmp_path, sandbox.kubeconfig, variables={"namespace": namespace})

    assert result.exit_code == 0, result.output
    assert warnings_in(tmp_path) == []
    assert result.journal["chaoskirvis"]["cluster"]["tls_verified"] is True
    journal_path = next(tmp_path.glob("journal-*.json"))
    for fmt in ("md", "html"):
        text = report(journal_path, tmp_path, fmt)
        assert sandbox.sandbox.url in text and "TLS NOT VERIFIED" not in text


def test_our_warning_replaces_urllib3s_which_would_repeat_on_every_request(sandbox, tmp_path):
    kubeconfig = insecure_kubeconfig(sandbox.kubeconfig, tmp_path / "insecure")
    script = ("from chaoskirvis.client import kube_api\n"
              "api = kube_api()\n"
              "for _ in range(3):\n"
              "    api.request('GET', '/api/v1/namespaces')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KUBECONFIG": str(kubeconfig)})
    assert done.returncode == 0, done.stderr
    assert "InsecureRequestWarning" not in done.stderr
    assert done.stderr.count("TLS verification is off") == 1, done.stderr
