"""Shared fixtures: one sandbox API server for the session, and throwaway namespaces in it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.sandbox.server import Sandbox
from programs import wait_ready


# Conformance material others wrote (upstream fixtures, real policies) lives in ../shared beside the
# repository, never copied into it. The rule, in one place: in CI (CI=true) it is required and a missing
# folder fails the test; elsewhere the test is skipped with a one-line reason.
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def shared_conformance() -> Callable[[str], Path]:
    """shared_conformance(name) -> ../shared/conformance/NAME, or fail (CI=true) / skip (elsewhere)."""
    def locate(name: str) -> Path:
        folder = SHARED_DIR / "conformance" / name
        if folder.is_dir():
            return folder
        if _in_ci():
            pytest.fail(f"shared conformance fixtures {folder} are missing: CI=true requires ../shared "
                        "beside the repository", pytrace=False)
        pytest.skip(f"shared conformance fixtures not found at {folder} (required when CI=true)")
    return locate


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking `pod_security_fixture` runs once per LEVEL/pass|fail/*.yaml of the shared fixtures
    (a relative path; open it under shared_conformance("pod-security")), or once as a placeholder that
    meets the rule above when the folder is missing."""
    if "pod_security_fixture" in metafunc.fixturenames:
        root = SHARED_DIR / "conformance" / "pod-security"
        files = [path.relative_to(root).as_posix() for path in sorted(root.glob("*/*/*.yaml"))]
        metafunc.parametrize("pod_security_fixture", files or [None],
                             ids=files or ["shared-fixtures-missing"])


@dataclass(frozen=True)
class RunningSandbox:
    sandbox: Sandbox
    kubeconfig: Path  # the admin user's


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with Sandbox() as running:
        yield RunningSandbox(running, running.write_kubeconfig(tmp_path_factory.mktemp("sandbox") / "kubeconfig"))


@pytest.fixture(scope="session")
def api(sandbox: RunningSandbox) -> client.ApiClient:
    """The real kubernetes client, configured from the sandbox's admin kubeconfig."""
    return config.new_client_from_config(str(sandbox.kubeconfig))


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def make_namespace(sandbox: RunningSandbox) -> Iterator[Callable[..., str]]:
    """make_namespace(enforce=None, warn=None) -> name: a new namespace with those Pod Security labels."""
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    created: list[str] = []

    def make(enforce: str | None = None, warn: str | None = None) -> str:
        labels = {f"pod-security.kubernetes.io/{mode}": level
                  for mode, level in (("enforce", enforce), ("warn", warn)) if level}
        name = f"test-{uuid.uuid4().hex[:10]}"
        core.create_namespace({"metadata": {"name": name, "labels": labels}})
        created.append(name)
        return name

    yield make
    for name in created:
        try:
            core.delete_namespace(name)
        except client.ApiException as error:
            if error.status != 404:  # the test may have deleted it
                raise


@pytest.fixture
def run(sandbox: RunningSandbox) -> Iterator[dict]:
    """Arguments for activities called in this process as one fresh run; the run is restored afterwards."""
    run_id = new_run_id()
    reset_run_id(run_id)
    arguments = {"configuration": {"kirvis_run_id": run_id}, "secrets": {"KUBECONFIG": str(sandbox.kubeconfig)}}
    yield arguments
    restore_run(**arguments)
    reset_run_id()


@pytest.fixture(scope="session")
def scenarios(sandbox: RunningSandbox) -> RunningSandbox:
    """The sandbox with every manifest of scenarios/ applied (namespaces per Pod Security level, policies)."""
    for manifest in sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml")):
        sandbox.sandbox.apply(manifest)
    return sandbox


@dataclass(frozen=True)
class RunningAlertmanager:
    url: str


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAlertmanager]:
    """Debian's prometheus-alertmanager on 127.0.0.1 (installed by .ci/run), with one null receiver."""
    binary = shutil.which("prometheus-alertmanager")
    assert binary, "prometheus-alertmanager is not installed: apt-get install prometheus-alertmanager"
    work = tmp_path_factory.mktemp("alertmanager")
    (work / "alertmanager.yml").write_text("route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, f"--config.file={work / 'alertmanager.yml'}", f"--storage.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=(work / "alertmanager.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process, work / "alertmanager.log")
    yield RunningAlertmanager(url)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def falco(sandbox):
    """A Falco pod in namespace falco (it runs nothing: tests write its JSON alerts into its log)."""
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    if not core.list_namespace(field_selector="metadata.name=falco").items:
        core.create_namespace({"metadata": {"name": "falco"}})
        core.create_namespaced_pod("falco", {
            "metadata": {"name": "falco-x1", "labels": {"app.kubernetes.io/name": "falco"}},
            "spec": {"containers": [{"name": "falco", "image": "docker.io/falcosecurity/falco:0.39.2"}]}})
    return lambda line: sandbox.sandbox.append_log("falco", "falco-x1", line)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Figures a suite measured (e.g. the reliability suite's summary line), after the test results."""
    for line in getattr(config, "kirvis_summaries", []):
        terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def kubectl_binary() -> str:
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH (.ci/run installs it)"
    return binary


@pytest.fixture
def kubectl(kubectl_binary, sandbox, tmp_path):
    """kubectl(*args, kubeconfig=None, check=True): the real kubectl against the session's sandbox (as its
    admin unless another kubeconfig is given), asserting success unless check=False."""
    def run(*args: str, kubeconfig: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=str(kubeconfig or sandbox.kubeconfig), KUBECACHEDIR=str(tmp_path / "cache"))
        result = subprocess.run([kubectl_binary, *args], env=env, capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result
    return run
