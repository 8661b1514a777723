"""Hosting the sandbox: kubeconfigs, applying manifests, ports, and the `kirvis sandbox` foreground run."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid

import pytest
import yaml
from kubernetes import client, config

from chaoskirvis.sandbox.server import Sandbox, SandboxError

FOREGROUND = "import sys; from pathlib import Path; from chaoskirvis.sandbox.server import run_foreground; " \
             "sys.exit(run_foreground(int(sys.argv[1]), Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]))"


def test_kubeconfig_names_the_context_and_is_private(sandbox, tmp_path):
    path = sandbox.sandbox.write_kubeconfig(tmp_path / "nested" / "kubeconfig", user="viewer", context="ctx")
    written = yaml.safe_load(path.read_text())
    assert written["current-context"] == "ctx"
    assert written["users"][0]["user"]["token"] == sandbox.sandbox.viewer_token
    assert written["clusters"][0]["cluster"]["server"].startswith(f"{sandbox.sandbox.url}/")
    assert path.stat().st_mode & 0o777 == 0o600


def test_apply_creates_then_replaces(sandbox, make_namespace):
    namespace = make_namespace()
    manifest = f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {namespace}}}
data: {{mode: "1"}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: runner, namespace: {namespace}}}
"""
    created = sandbox.sandbox.apply(manifest)
    assert [obj["kind"] for obj in created] == ["ConfigMap", "ServiceAccount"]
    replaced = sandbox.sandbox.apply(manifest.replace('mode: "1"', 'mode: "2"'))
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    assert core.read_namespaced_config_map("settings", namespace).data == {"mode": "2"}
    assert replaced[0]["metadata"]["uid"] == created[0]["metadata"]["uid"]


def test_apply_goes_through_admission(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(enforce="baseline")
    manifest = tmp_path / "priv.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "priv", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "i", "securityContext": {"privileged": True}}]},
    }))
    with pytest.raises(SandboxError, match=r'pods "priv" is forbidden: violates PodSecurity "baseline:latest"'):
        sandbox.sandbox.apply(manifest)
    with pytest.raises(SandboxError, match=r"Widget in example\.com/v1 is not served by the sandbox"):
        sandbox.sandbox.apply("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")


def test_only_loopback_addresses(sandbox):
    with pytest.raises(ValueError, match="loopback"):
        Sandbox(host="0.0.0.0")
    with pytest.raises(SandboxError, match=rf"^port {sandbox.sandbox.port} on 127.0.0.1 is already in use$"):
        Sandbox(port=sandbox.sandbox.port).start()


def test_foreground_run_serves_until_sigterm(tmp_path):
    namespace = f"scenario-{uuid.uuid4().hex[:6]}"
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}}}\n")
    kubeconfig = tmp_path / "sandbox.kubeconfig"
    process = subprocess.Popen([sys.executable, "-c", FOREGROUND, "0", str(kubeconfig), str(scenario)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = [process.stdout.readline() for _ in range(4)]
        assert banner[0].startswith("kirvis sandbox: Kubernetes API emulator at http://127.0.0.1:")
        assert banner[1] == f"kubeconfig: {kubeconfig}\n"
        assert banner[3] == f"  export KUBECONFIG={kubeconfig}\n"
        core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        assert core.read_namespace(namespace).metadata.name == namespace
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert stdout.endswith("kirvis sandbox: stopped\n")


def test_foreground_run_with_a_busy_port_fails_in_one_line(sandbox, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", FOREGROUND, str(sandbox.sandbox.port), str(tmp_path / "kubeconfig")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == f"kirvis sandbox: port {sandbox.sandbox.port} on 127.0.0.1 is already in use\n"
