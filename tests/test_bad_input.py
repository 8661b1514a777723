"""Bad input gets one clear message each, exits non-zero, and leaves nothing half-created."""
from __future__ import annotations

import socket
import threading

import pytest
from kubernetes import client, config

from chaosrun import EXPERIMENTS, run_chaos

EXPERIMENT = EXPERIMENTS / "privileged-pod-denied.yaml"


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "ERROR" in line]


def objects_of_run(kubeconfig, run_id: str) -> list[str]:
    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    selector = f"chaoskirvis.io/run-id={run_id}"
    found = core.list_pod_for_all_namespaces(label_selector=selector).items
    found += core.list_config_map_for_all_namespaces(label_selector=selector).items
    return [o.metadata.name for o in found]


def test_unknown_namespace(sandbox, tmp_path):
    result = run_chaos(EXPERIMENT, tmp_path, sandbox.kubeconfig, variables={"namespace": "no-such-team"},
                       KIRVIS_RUN_ID="bad-namespace")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert any("namespace no-such-team does not exist" in line for line in error_lines(result.output))
    assert objects_of_run(sandbox.kubeconfig, "bad-namespace") == []


def test_forbidden_by_rbac_is_an_error_not_a_block(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(enforce="baseline")
    viewer = sandbox.sandbox.write_kubeconfig(tmp_path / "viewer.kubeconfig", user="viewer")
    result = run_chaos(EXPERIMENT, tmp_path, viewer, variables={"namespace": namespace}, KIRVIS_RUN_ID="viewer-run")
    assert result.exit_code == 1
    assert result.journal["deviated"] is True
    assert "Traceback" not in result.output
    assert any('User \\"sandbox-viewer\\" cannot create' in line or 'User "sandbox-viewer" cannot create' in line
               for line in error_lines(result.output))
    assert all(o is None or o.get("outcome") != "blocked" for o in result.outputs("introduce-privileged-pod"))
    assert objects_of_run(sandbox.kubeconfig, "viewer-run") == []


def test_unreachable_api_server(sandbox, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    kubeconfig = sandbox.sandbox.write_kubeconfig(tmp_path / "dead.kubeconfig")
    kubeconfig.write_text(kubeconfig.read_text().replace(sandbox.sandbox.url, f"http://127.0.0.1:{dead_port}"))
    result = run_chaos(EXPERIMENT, tmp_path, kubeconfig, variables={"namespace": "default"})
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert any(f"cannot reach the Kubernetes API server at http://127.0.0.1:{dead_port}" in line
               for line in error_lines(result.output))


class Listener:
    """Counts connections to a local port, to prove nothing falls back to localhost."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.connections = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stopped.set()
        self.thread.join()
        self.sock.close()


def test_no_cluster_configuration_fails_in_one_line_without_touching_localhost(tmp_path):
    try:
        listeners = [Listener(80), Listener(8080)]
    except PermissionError:
        pytest.skip("listening on 127.0.0.1:80 (to catch a fallback to http://localhost) needs root")
    try:
        result = run_chaos(EXPERIMENT, tmp_path, None, variables={"namespace": "default"}, HOME=str(tmp_path))
    finally:
        for listener in listeners:
            listener.close()
    assert result.exit_code == 1
    assert result.journal["status"] == "failed"
    assert "Traceback" not in result.output
    errors = error_lines(result.output)
    assert len(errors) == 1 and "no Kubernetes cluster configuration found: set KUBECONFIG" in errors[0]
    assert [listener.connections for listener in listeners] == [0, 0]
