"""What runs on a node and is not in the sandbox, played by tests against a kubeadm-shaped node tree:

- `Kubelet`: for one static pod, the mirror pod ``kube-system/<component>-<node>`` whose
  ``kubernetes.io/config.hash`` follows the manifest on disk, as the kubelet's does after it restarts the
  component for a changed manifest.
- `KubeBench`: the Job controller and kube-bench for the run's kube-bench Jobs: it makes the Job's pod,
  writes kube-bench's --json output (the shape of kube-bench's check/controls.go, one result per check the
  Job's ``--check`` names) to its log and marks the Job Complete (`chaoskirvis.sandbox.jobs.finish_job`).
  Each check's status is judged from the node tree, for the checks our node experiments inject, as
  kube-bench's cfg/cis-1.9 words them (1.1.1 permissions bitmask 600 of the API server manifest; 1.2.15
  --profiling=false in its command; 4.2.1 authentication.anonymous.enabled false in the kubelet config);
  or every check is reported PASS (`blind`: a benchmark that does not see the change).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import yaml
from kubernetes import client

from chaoskirvis.nodes import mirror
from chaoskirvis.sandbox.jobs import finish_job

__all__ = ["Kubelet", "KubeBench", "check_passes"]


class Kubelet:
    """Plays the kubelet for one static pod: its mirror pod's config hash follows the manifest on disk."""

    def __init__(self, core: client.CoreV1Api, root: Path, component: str, node: str):
        self.core, self.manifest = core, root / f"etc/kubernetes/manifests/{component}.yaml"
        self.name = f"{component}-{node}"
        self.stop = threading.Event()
        core.create_namespaced_pod("kube-system", {
            "metadata": {"name": self.name, "annotations": self.annotations()},
            "spec": {"nodeName": node, "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": component, "image": "registry.k8s.io/kube-apiserver:v1.32.0"}]}})
        self.thread = threading.Thread(target=self.follow, daemon=True)
        self.thread.start()

    def annotations(self) -> dict[str, str]:
        digest = hashlib.sha256(self.manifest.read_bytes()).hexdigest()[:32]
        return {mirror.CONFIG_HASH: digest, "kubernetes.io/config.mirror": digest}

    def sync(self) -> None:
        pod = self.core.read_namespaced_pod(self.name, "kube-system")
        if pod.metadata.annotations[mirror.CONFIG_HASH] != self.annotations()[mirror.CONFIG_HASH]:
            self.core.patch_namespaced_pod(self.name, "kube-system", {"metadata": {"annotations": self.annotations()}})

    def follow(self) -> None:
        while not self.stop.wait(0.05):
            self.sync()

    def pause(self) -> None:
        """The kubelet stops restarting the component (the mirror pod keeps its hash)."""
        self.stop.set()
        self.thread.join()

    def close(self) -> None:
        self.pause()
        self.core.delete_namespaced_pod(self.name, "kube-system", grace_period_seconds=0)


def _file(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _apiserver_command(root: Path) -> list[str]:
    manifest = yaml.safe_load(_file(root, "/etc/kubernetes/manifests/kube-apiserver.yaml").read_bytes())
    return manifest["spec"]["containers"][0]["command"]


def check_passes(check: str, control_plane: Path, worker: Path) -> bool:
    """Whether kube-bench would report `check` PASS on these trees (only the checks our experiments inject)."""
    if check == "1.1.1":
        mode = os.stat(_file(control_plane, "/etc/kubernetes/manifests/kube-apiserver.yaml")).st_mode & 0o777
        return mode & ~0o600 == 0
    if check == "1.2.15":
        return "--profiling=false" in _apiserver_command(control_plane)
    if check == "4.2.1":
        config = yaml.safe_load(_file(worker, "/var/lib/kubelet/config.yaml").read_bytes())
        return config["authentication"]["anonymous"]["enabled"] is False
    raise AssertionError(f"no emulation of kube-bench check {check}")


def _output(statuses: dict[str, str]) -> str:
    results = [{"test_number": check, "test_desc": f"check {check}", "status": status, "scored": True,
                "actual_value": "", "expected_result": "", "reason": ""} for check, status in statuses.items()]
    counts = {f"total_{s.lower()}": sum(v == s for v in statuses.values()) for s in ("PASS", "FAIL", "WARN", "INFO")}
    return json.dumps({"Controls": [{"id": "1", "version": "cis-1.9", "text": "Benchmark", "node_type": "master",
                                     "tests": [{"section": "x", "desc": "emulated", "results": results}], **counts}],
                       "Totals": counts})


class KubeBench:
    """Finishes every kube-bench Job that appears in `namespace`, with output judged from the trees."""

    def __init__(self, api: client.ApiClient, sandbox, namespace: str, control_plane: Path, worker: Path,
                 blind: bool = False):
        self.core, self.batch = client.CoreV1Api(api), client.BatchV1Api(api)
        self.sandbox, self.namespace, self.blind = sandbox, namespace, blind
        self.trees = (control_plane, worker)
        self.answered: list[dict[str, str]] = []
        self.done: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.follow, daemon=True)
        self.thread.start()

    def follow(self) -> None:
        while not self.stop.wait(0.05):
            for job in self.batch.list_namespaced_job(self.namespace).items:
                if job.metadata.name not in self.done and "-kube-bench-" in job.metadata.name:
                    self.finish(job)

    def finish(self, job) -> None:
        command = job.spec.template.spec.containers[0].command
        checks = command[command.index("--check") + 1].split(",")
        statuses = {c: "PASS" if self.blind or check_passes(c, *self.trees) else "FAIL" for c in checks}
        template = job.spec.template
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{job.metadata.name}-x1",
                            "labels": {**(template.metadata.labels or {}), "job-name": job.metadata.name},
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job.metadata.name,
                                                 "uid": job.metadata.uid, "controller": True}]},
               "spec": client.ApiClient().sanitize_for_serialization(template.spec)}
        self.core.create_namespaced_pod(self.namespace, pod)
        self.sandbox.append_log(self.namespace, pod["metadata"]["name"], _output(statuses))
        finish_job(self.sandbox, self.namespace, job.metadata.name, pod["metadata"]["name"])
        self.done.add(job.metadata.name)
        self.answered.append(statuses)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
