"""inject_node_fault and the run's restore through the sandbox, with a kubeadm-shaped tree as each node's
filesystem: the agent pod is created, exec'd into, and its commands change the tree for real
(`Sandbox.attach_node_root`). For a static pod manifest the test plays the kubelet (`node_players.Kubelet`):
the mirror pod's config hash follows the manifest's content, as the kubelet's does after it restarts the
component."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.node_files import node_file_entries
from chaoskirvis.ledger.ownership import RUN_ID_LABEL
from chaoskirvis.ledger.probes import injections_blocked
from chaoskirvis.ledger.record import record_name
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.nodes import mirror, restoring, session
from chaoskirvis.nodes.actions import inject_node_fault
from chaoskirvis.nodes.gates import NODE_OPT_IN_LABEL
from tests.node_players import Kubelet
from tests.node_tree import make_node_tree, nodes_attached

WORKER, CONTROL = "kirvis-worker", "kirvis-control-plane"
APISERVER = "/etc/kubernetes/manifests/kube-apiserver.yaml"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setattr(session, "POLL_S", 0.05)
    monkeypatch.setattr(mirror, "POLL_S", 0.05)


@pytest.fixture
def nodes(sandbox, core, tmp_path):
    """Both sandbox nodes opted in, each with its own kubeadm tree as its filesystem: {node name: root}."""
    roots = {node: make_node_tree(tmp_path / node) for node in (WORKER, CONTROL)}
    with nodes_attached(sandbox.sandbox, core, roots):
        yield roots


@pytest.fixture
def allowed(run):
    run["configuration"].update(allow_node_faults=True, allow_control_plane=True)
    return run


def seen(root: Path, path: str) -> tuple[str, int, int, str]:
    """Mode, owner, group and sha256 of the tree's file, read by the test itself."""
    file = root / path.lstrip("/")
    st = os.stat(file)
    return oct(st.st_mode & 0o7777)[2:], st.st_uid, st.st_gid, hashlib.sha256(file.read_bytes()).hexdigest()


def run_pods(core, run_id: str) -> list[str]:
    return [p.metadata.name for p in core.list_pod_for_all_namespaces(label_selector=f"{RUN_ID_LABEL}={run_id}").items
            if not p.metadata.deletion_timestamp]


@pytest.mark.parametrize("technique, node, path, expect", [
    ("apiserver-manifest-mode", CONTROL, APISERVER, lambda before, after: after[0] == "644" and after[3] == before[3]),
    ("kubelet-config-owner", WORKER, KUBELET_CONFIG, lambda before, after: after[1:3] == (1000, 1000)),
    ("apiserver-profiling", CONTROL, APISERVER,
     lambda before, after: after[:3] == before[:3] and after[3] != before[3]),
])
def test_inject_then_restore_puts_the_original_back(core, sandbox, nodes, allowed, technique, node, path, expect):
    root = nodes[node]
    kubelet = Kubelet(core, root, "kube-apiserver", CONTROL) if technique == "apiserver-profiling" else None
    try:
        before = seen(root, path)
        outcome = inject_node_fault(technique, node, within=10, **allowed)
        after = seen(root, path)
        assert expect(before, after), (before, after)
        assert outcome["outcome"] == "allowed" and outcome["before"]["sha256"] == before[3]
        assert datetime.fromisoformat(outcome["at"]).tzinfo is not None  # when, for detection windows
        assert (outcome["after"]["mode"], outcome["after"]["sha256"]) == (after[0], after[3])
        run_id = current_run_id(allowed["configuration"])
        record = core.read_namespaced_config_map(record_name(run_id), "default").to_dict()
        entries, invalid = node_file_entries(record, run_id)
        assert invalid == [] and [e.entry["path"] for e in entries] == [path]
        assert entries[0].original.sha256 == before[3] and entries[0].entry["state"] == "node-changed"
        # the content is saved only where the change rewrites it (a credential file's key stays off the record)
        assert ("content" in entries[0].entry["original"]) == (technique == "apiserver-profiling")
        if kubelet:
            assert "--profiling=true" in (root / path.lstrip("/")).read_text()
            assert "restarted" in outcome["component"]
        assert run_pods(core, run_id) == [outcome["agent"]]
        summary = restore_run(**allowed)
        assert seen(root, path) == before
        assert any(path in line for line in summary["restored"])
        assert run_pods(core, run_id) == []
        if kubelet:
            assert any("back: mirror pod" in line for line in summary["restored"])
    finally:
        if kubelet:
            kubelet.close()


def test_injection_is_counted_as_allowed(nodes, allowed):
    injections_blocked(**allowed)  # the baseline before the method
    inject_node_fault("kubelet-config-owner", WORKER, within=10, **allowed)
    assert injections_blocked(**allowed) is False  # nothing blocks a file change on a node


@pytest.mark.parametrize("configuration, node, message", [
    ({}, WORKER, "allow_node_faults"),
    ({"allow_node_faults": True}, CONTROL, "control-plane"),
    ({"allow_node_faults": True, "allow_control_plane": True}, "kirvis-absent", "not found"),
])
def test_refused_gates_create_nothing(sandbox, nodes, run, configuration, node, message):
    run["configuration"].update(configuration)
    technique = "apiserver-manifest-mode" if node != WORKER else "kubelet-config-owner"
    before = {n: seen(root, KUBELET_CONFIG) for n, root in nodes.items()}
    start = len(sandbox.sandbox.requests)
    with pytest.raises(ActivityFailed, match=message):
        inject_node_fault(technique, node, within=10, **run)
    assert [r.method for r in sandbox.sandbox.requests[start:] if r.method not in ("GET",)] == []
    assert {n: seen(root, KUBELET_CONFIG) for n, root in nodes.items()} == before
    outcomes = run_state(current_run_id(run["configuration"])).outcomes
    assert [o["outcome"] for o in outcomes] == ["error"]  # a refused run tested nothing


def test_unlabelled_node_is_refused(core, sandbox, nodes, allowed):
    core.patch_node(WORKER, {"metadata": {"labels": {NODE_OPT_IN_LABEL: None}}})
    start = len(sandbox.sandbox.requests)
    with pytest.raises(ActivityFailed, match="has not opted in"):
        inject_node_fault("kubelet-config-owner", WORKER, within=10, **allowed)
    assert [r.method for r in sandbox.sandbox.requests[start:] if r.method != "GET"] == []


def test_dry_run_shows_the_diff_and_changes_nothing(core, nodes, allowed):
    root = nodes[CONTROL]
    before = seen(root, APISERVER)
    outcome = inject_node_fault("apiserver-profiling", CONTROL, dry_run=True, within=10, **allowed)
    assert "-    - --profiling=false\n+    - --profiling=true\n" in outcome["diff"]
    assert outcome["changed"] is False and outcome["outcome"] == "dry-run"
    assert seen(root, APISERVER) == before
    run_id = current_run_id(allowed["configuration"])
    assert run_pods(core, run_id) == []  # its read-only agent is removed at once
    assert run_state(run_id).outcomes == []  # a dry run introduced nothing
    record = core.read_namespaced_config_map(record_name(run_id), "default").to_dict()
    assert node_file_entries(record, run_id) == ([], [])


def test_a_file_changed_by_someone_else_is_reported_and_left_alone(nodes, allowed):
    root = nodes[WORKER]
    inject_node_fault("kubelet-config-owner", WORKER, within=10, **allowed)
    (root / KUBELET_CONFIG.lstrip("/")).chmod(0o600)  # an administrator tightened the mode meanwhile
    theirs = seen(root, KUBELET_CONFIG)
    with pytest.raises(ActivityFailed, match="conflict|changed since the run left it"):
        restore_run(**allowed)
    assert seen(root, KUBELET_CONFIG) == theirs
    os.chown(root / KUBELET_CONFIG.lstrip("/"), 0, 0)  # the person settles it; the fixture's restore then passes
    (root / KUBELET_CONFIG.lstrip("/")).chmod(0o644)


def test_component_not_back_in_time_is_reported(core, nodes, allowed, monkeypatch):
    monkeypatch.setattr(restoring, "RESTORE_WITHIN_S", 0.5)
    kubelet = Kubelet(core, nodes[CONTROL], "kube-apiserver", CONTROL)
    try:
        inject_node_fault("apiserver-profiling", CONTROL, within=10, **allowed)
        kubelet.pause()  # the kubelet no longer restarts it: the mirror pod keeps the changed manifest's hash
        with pytest.raises(ActivityFailed, match="kube-apiserver on node kirvis-control-plane not back within 0.5 s"):
            restore_run(**allowed)
        assert "--profiling=false" in (nodes[CONTROL] / APISERVER.lstrip("/")).read_text()  # the file is back
        kubelet.sync()  # the component restarts at last: a second restore (the record was kept) confirms it
        assert any("back: mirror pod" in line for line in restore_run(**allowed)["restored"])
    finally:
        kubelet.close()


def test_forged_entries_are_refused(core, nodes, allowed):
    inject_node_fault("kubelet-config-owner", WORKER, within=10, **allowed)
    run_id = current_run_id(allowed["configuration"])
    record = core.read_namespaced_config_map(record_name(run_id), "default").to_dict()
    key, raw = next((k, v) for k, v in record["data"].items() if k.startswith("nodefiles."))
    entry = json.loads(raw)
    forged = [
        {**entry, "path": "/etc/kubernetes/../shadow"},
        {**entry, "original": {**entry["original"], "content": "aGVsbG8K"}},  # content not matching its sha256
        {**entry, "agent": {**entry["agent"], "name": "someone-elses-pod"}},
        {**entry, "node": "Bad_Node"},
        {**entry, "original": {**entry["original"], "mode": "4755"}},  # a restore that would set setuid
        {**entry, "original": {**entry["original"], "mode": "666"}},  # or make the file world-writable
    ]
    for bad in forged:
        entries, invalid = node_file_entries({**record, "data": {key: json.dumps(bad)}}, run_id)
        assert entries == [] and len(invalid) == 1, bad
    # a well-formed entry that is not what its technique does is not acted on either
    mismatched = {**entry, "intended": {**entry["intended"], "uid": 0, "gid": 0}}
    entries, _ = node_file_entries({**record, "data": {key: json.dumps(mismatched)}}, run_id)
    from chaoskirvis.client import kube_api
    result = restoring.restore_node_file(kube_api(**allowed), entries[0], within=5)
    assert result.outcome == "failed" and "not what technique" in result.detail


KILLED_RUN = textwrap.dedent("""
    import sys, time
    from chaoskirvis.nodes.actions import inject_node_fault
    config = {"kirvis_run_id": sys.argv[1], "allow_node_faults": True}
    inject_node_fault("kubelet-anonymous-auth", "kirvis-worker", within=10, configuration=config,
                      secrets={"KUBECONFIG": sys.argv[2]})
    print("changed", flush=True)
    time.sleep(120)
""")


def test_hard_killed_run_is_restored_by_cleanup_from_another_process(core, sandbox, nodes):
    from chaoskirvis.ledger.runid import new_run_id
    run_id, root = new_run_id(), nodes[WORKER]
    before = seen(root, KUBELET_CONFIG)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runner = subprocess.Popen([sys.executable, "-c", KILLED_RUN, run_id, str(sandbox.kubeconfig)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert runner.stdout.readline().strip() == "changed", runner.stderr.read()
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(10)
    finally:
        runner.kill()
    assert "enabled: true" in (root / KUBELET_CONFIG.lstrip("/")).read_text().split("webhook")[0]
    for pod in run_pods(core, run_id):  # the agent is gone too: cleanup must start its own
        core.delete_namespaced_pod(pod, "default", grace_period_seconds=0)
    cleanup = subprocess.run([str(REPO / ".venv/bin/kirvis"), "cleanup", "--run-id", run_id], cwd=REPO,
                             env={**env, "KUBECONFIG": str(sandbox.kubeconfig)}, capture_output=True, text=True,
                             timeout=120)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert seen(root, KUBELET_CONFIG) == before
    assert f"node file {KUBELET_CONFIG} on node {WORKER}: put back" in cleanup.stdout
    assert f"putting back node file {KUBELET_CONFIG} on node {WORKER} as the run found it" in cleanup.stdout
    assert run_pods(core, run_id) == []
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_config_map(record_name(run_id), "default")
    assert gone.value.status == 404


def test_the_action_is_discovered_with_its_arguments():
    from chaoskirvis import discover
    (found,) = [a for a in discover()["activities"] if a["name"] == "inject_node_fault"]
    assert found["type"] == "action" and found["mod"] == "chaoskirvis.nodes.actions"
    assert [a["name"] for a in found["arguments"]][:3] == ["technique", "node", "dry_run"]
    assert "allow_node_faults" in found["doc"]


def test_an_unconfirmed_change_is_restored_from_what_it_was_to_leave(core, nodes, allowed, monkeypatch):
    """The confirmation after the change is lost (as when the runner dies right after the write): the entry
    still says what the change was to leave, and the restore compares the file with that."""
    from chaoskirvis.nodes import actions

    def lost(*args, **kwargs):
        raise ActivityFailed("the API server did not answer")

    monkeypatch.setattr(actions, "confirm_node_file", lost)
    root = nodes[WORKER]
    before = seen(root, KUBELET_CONFIG)
    inject_node_fault("kubelet-anonymous-auth", WORKER, within=10, **allowed)
    run_id = current_run_id(allowed["configuration"])
    record = core.read_namespaced_config_map(record_name(run_id), "default").to_dict()
    (entry,), _ = node_file_entries(record, run_id)
    assert entry.entry["state"] == "node-changing" and "left" not in entry.entry
    restore_run(**allowed)
    assert seen(root, KUBELET_CONFIG) == before


def test_a_change_that_never_happened_leaves_nothing_to_put_back(core, nodes, allowed, monkeypatch):
    """The entry is written, then the change fails (the runner killed between the two reads the same)."""
    from chaoskirvis.nodes import actions

    def failed(*args, **kwargs):
        raise ActivityFailed("agent exec failed")

    monkeypatch.setattr(actions, "apply_state", failed)
    root = nodes[WORKER]
    before = seen(root, KUBELET_CONFIG)
    with pytest.raises(ActivityFailed, match="agent exec failed"):
        inject_node_fault("kubelet-config-owner", WORKER, within=10, **allowed)
    run_id = current_run_id(allowed["configuration"])
    summary = restore_run(**allowed)
    assert seen(root, KUBELET_CONFIG) == before and run_pods(core, run_id) == []
    assert summary["records_removed"]  # the original was there already: nothing left to keep the record for
