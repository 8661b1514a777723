"""The sandbox through the real `kubectl` binary, as a person would use it (no special flags needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
spec:
  containers:
  - name: c
    image: registry.k8s.io/pause
    securityContext: {{privileged: true}}
"""


@pytest.fixture(scope="module")
def kubectl_binary() -> str:
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH (.ci/run installs it)"
    return binary


@pytest.fixture
def kubectl(kubectl_binary, sandbox, tmp_path):
    def run(*args: str, kubeconfig: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=str(kubeconfig or sandbox.kubeconfig), KUBECACHEDIR=str(tmp_path / "cache"))
        result = subprocess.run([kubectl_binary, *args], env=env, capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result
    return run


def pod_manifest(path: Path, name: str, namespace: str, labels: dict[str, str],
                 image: str = "registry.k8s.io/pause") -> Path:
    label_lines = "".join(f"\n    {key}: {value}" for key, value in labels.items())
    path.write_text(f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  labels:{label_lines}
spec:
  containers:
  - name: c
    image: {image}
""")
    return path


def test_get_namespaces(kubectl):
    names = kubectl("get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system", "namespace/kube-public",
            "namespace/kube-node-lease"} <= set(names)


def test_create_and_get_across_namespaces_with_a_label_selector(kubectl, make_namespace, tmp_path):
    first, second = make_namespace(), make_namespace()
    app = f"app-{first}"
    kubectl("create", "-f", str(pod_manifest(tmp_path / "a.yaml", "a", first, {"app": app})))
    kubectl("create", "-f", str(pod_manifest(tmp_path / "b.yaml", "b", second, {"app": app})))
    kubectl("create", "-f", str(pod_manifest(tmp_path / "c.yaml", "c", second, {"app": "other"})))

    table = kubectl("get", "pods", "-A", "-l", f"app={app}").stdout.splitlines()
    assert table[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert sorted(line.split()[:2] for line in table[1:]) == sorted([[first, "a"], [second, "b"]])


def test_apply_creates_then_changes(kubectl, make_namespace, tmp_path):
    namespace = make_namespace()
    manifest = pod_manifest(tmp_path / "web.yaml", "web", namespace, {"app": "web"})
    assert "pod/web created" in kubectl("apply", "--validate=false", "-f", str(manifest)).stdout
    pod_manifest(manifest, "web", namespace, {"app": "web", "tier": "front"}, image="registry.k8s.io/pause:3.10")
    assert "pod/web configured" in kubectl("apply", "--validate=false", "-f", str(manifest)).stdout
    stored = kubectl("get", "pod", "web", "-n", namespace, "-o",
                     "jsonpath={.metadata.labels.tier} {.spec.containers[0].image}").stdout
    assert stored == "front registry.k8s.io/pause:3.10"
    assert "pod/web unchanged" in kubectl("apply", "-f", str(manifest)).stdout  # default validation too


def test_delete(kubectl, make_namespace, tmp_path):
    namespace = make_namespace()
    manifest = pod_manifest(tmp_path / "gone.yaml", "gone", namespace, {"app": "gone"})
    kubectl("create", "-f", str(manifest))
    assert 'pod "gone" deleted' in kubectl("delete", "-f", str(manifest)).stdout
    missing = kubectl("get", "pod", "gone", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): pods "gone" not found' in missing.stderr


def test_server_dry_run_stores_nothing(kubectl, make_namespace, tmp_path):
    namespace = make_namespace()
    manifest = pod_manifest(tmp_path / "dry.yaml", "dry", namespace, {"app": "dry"})
    assert "pod/dry created (server dry run)" in kubectl("create", "--dry-run=server", "-f", str(manifest)).stdout
    assert kubectl("get", "pods", "-n", namespace, "-o", "name").stdout == ""


def test_pod_security_denial_is_printed(kubectl, make_namespace, tmp_path):
    namespace = make_namespace(enforce="baseline")
    manifest = tmp_path / "priv.yaml"
    manifest.write_text(PRIVILEGED_POD.format(name="priv", namespace=namespace))
    result = kubectl("create", "-f", str(manifest), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server (Forbidden): error when creating "{manifest}": pods "priv" is forbidden: violates '
        'PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)')


def test_pod_security_warning_is_printed(kubectl, make_namespace, tmp_path):
    namespace = make_namespace(warn="baseline")
    manifest = tmp_path / "priv.yaml"
    manifest.write_text(PRIVILEGED_POD.format(name="priv", namespace=namespace))
    result = kubectl("create", "-f", str(manifest))
    assert "pod/priv created" in result.stdout
    assert result.stderr.strip() == ('Warning: would violate PodSecurity "baseline:latest": privileged '
                                     '(container "c" must not set securityContext.privileged=true)')


def test_viewer_kubeconfig_is_read_only(kubectl, sandbox, make_namespace, tmp_path):
    namespace = make_namespace()
    viewer = sandbox.sandbox.write_kubeconfig(tmp_path / "viewer", user="viewer")
    assert kubectl("get", "pods", "-n", namespace, kubeconfig=viewer).returncode == 0
    denied = kubectl("create", "configmap", "x", "-n", namespace, kubeconfig=viewer, check=False)
    assert denied.returncode == 1
    assert ('configmaps is forbidden: User "sandbox-viewer" cannot create resource "configmaps" in API group "" '
            f'in the namespace "{namespace}"') in denied.stderr
