"""`kirvis run --keep-journals-in NS --keep N`: each journal gzip-compressed in a labelled ConfigMap in the
sandbox, the newest N per experiment kept, nothing deleted that is not a kept journal of ours, and a
journal over Kubernetes' 1 MiB ConfigMap limit named as too big."""
from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest
from kubernetes import client, config

from chaoskirvis.client import kube_api
from chaoskirvis.run.keep import KEPT_LABEL, MAX_BYTES, PART_OF_LABEL, keep_journals
from chaosrun import BIN, EXPERIMENTS, chaos_env

PRIVILEGED = EXPERIMENTS / "privileged-pod-denied.yaml"
HOST_PID = EXPERIMENTS / "host-pid-denied.yaml"
SELECTOR = f"{PART_OF_LABEL}=chaoskirvis,{KEPT_LABEL}"


def kirvis(workdir: Path, kubeconfig: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kirvis"), *arguments], cwd=workdir, env=chaos_env(kubeconfig),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def kept_in(scenarios, make_namespace) -> tuple[str, client.CoreV1Api]:
    return make_namespace(), client.CoreV1Api(config.new_client_from_config(str(scenarios.kubeconfig)))


def kept(core: client.CoreV1Api, namespace: str) -> dict[str, client.V1ConfigMap]:
    return {cm.metadata.name: cm for cm in core.list_namespaced_config_map(namespace, label_selector=SELECTOR).items}


def test_the_newest_journals_of_each_experiment_are_kept_compressed(scenarios, kept_in, tmp_path):
    namespace, core = kept_in
    foreign = {"metadata": {"name": "someone-elses-journal", "labels": {
        PART_OF_LABEL: "chaoskirvis", KEPT_LABEL: "privileged-pod-denied"}}, "data": {"x": "y"}}
    core.create_namespaced_config_map(namespace, foreign)  # our labels, not our name: never ours to delete
    runs = []
    for index in range(3):
        journals = tmp_path / f"run-{index}"
        done = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), *([str(HOST_PID)] if index == 0 else []),
                      "--var", "namespace=team-baseline", "--journals", str(journals),
                      "--keep-journals-in", namespace, "--keep", "2")
        assert done.returncode == 0, done.stdout + done.stderr
        runs.append((done, journals))
    now = kept(core, namespace)
    by_experiment: dict[str, list[str]] = {}
    for name, cm in now.items():
        by_experiment.setdefault(cm.metadata.labels[KEPT_LABEL], []).append(name)
    last = json.loads((runs[2][1] / "privileged-pod-denied.json").read_text())
    mine = now[f"kirvis-journal-{last['chaoskirvis']['run_id']}"]
    stored = gzip.decompress(base64.b64decode(mine.binary_data["privileged-pod-denied.json.gz"]))
    run_ids = [json.loads((j / "privileged-pod-denied.json").read_text())["chaoskirvis"]["run_id"] for _, j in runs]

    assert "kept 2 journal(s) in ConfigMaps in namespace" in runs[0][0].stdout
    assert "removed 1 older kept journal(s)" in runs[2][0].stdout
    assert sorted(by_experiment["privileged-pod-denied"]) == sorted(
        ["someone-elses-journal", *(f"kirvis-journal-{run_id}" for run_id in run_ids[1:])])
    assert f"kirvis-journal-{run_ids[0]}" not in now  # the oldest of three, with --keep 2
    assert len(by_experiment["host-pid-denied"]) == 1  # another experiment's journal is its own count
    assert stored == (runs[2][1] / "privileged-pod-denied.json").read_bytes()
    assert mine.metadata.annotations["chaoskirvis.io/verdict"] == "held"
    assert not {"app.kubernetes.io/managed-by", "chaoskirvis.io/run-id"} & set(mine.metadata.labels)


def test_cleanup_leaves_kept_journals_alone(scenarios, kept_in, tmp_path):
    namespace, core = kept_in
    done = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), "--var", "namespace=team-baseline",
                  "--journals", "journals", "--keep-journals-in", namespace)
    before = set(kept(core, namespace))
    cleanup = kirvis(tmp_path, scenarios.kubeconfig, "cleanup", "--all", "-n", namespace)

    assert done.returncode == 0, done.stdout + done.stderr
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert len(before) == 1 and set(kept(core, namespace)) == before
    assert "leaving alone" not in cleanup.stdout  # not even listed as someone else's: evidence is no leftover


def test_a_journal_over_the_configmap_limit_is_named_and_not_kept(scenarios, kept_in, tmp_path):
    namespace, core = kept_in
    done = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), "--var", "namespace=team-baseline",
                  "--journals", "journals")
    path = tmp_path / "journals" / "privileged-pod-denied.json"
    journal = json.loads(path.read_text())
    journal["padding"] = base64.b64encode(os.urandom(1200 * 1024)).decode()  # random: gzip cannot shrink it
    path.write_text(json.dumps(journal))
    os.environ["KUBECONFIG"] = str(scenarios.kubeconfig)
    try:
        report = keep_journals(kube_api(), namespace, [path])
    finally:
        del os.environ["KUBECONFIG"]

    assert done.returncode == 0, done.stdout + done.stderr
    assert report.stored == [] and report.failed == []
    [why] = report.too_big
    assert f"{path} is " in why and f"over the {MAX_BYTES:,} bytes a ConfigMap can hold" in why
    assert kept(core, namespace) == {}


def test_keep_options_are_checked_before_anything_runs(scenarios, tmp_path):
    bad_namespace = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), "--journals", "journals",
                           "--keep-journals-in", "Not_A_Namespace")
    zero = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), "--journals", "journals",
                  "--keep-journals-in", "team-baseline", "--keep", "0")
    alone = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), "--journals", "journals", "--keep", "3")

    assert (bad_namespace.returncode, zero.returncode, alone.returncode) == (2, 2, 2)
    assert "--keep-journals-in: namespace 'Not_A_Namespace' is not a DNS label" in bad_namespace.stderr
    assert "--keep 0: keep at least the journal of this run (1)" in zero.stderr
    assert "--keep goes with --keep-journals-in" in alone.stderr
    assert not (tmp_path / "journals").exists()


def test_a_namespace_that_does_not_exist_is_exit_2_with_the_journals_written(scenarios, tmp_path):
    done = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), "--var", "namespace=team-baseline",
                  "--journals", "journals", "--keep-journals-in", "no-such-namespace")

    assert done.returncode == 2, done.stdout + done.stderr
    assert "kirvis run: journal not kept: " in done.stderr and "404" in done.stderr
    assert (tmp_path / "journals" / "privileged-pod-denied.json").is_file()
