"""`kirvis_node_layout` (kubeadm | rke2 | k3s): each node file's default path per distribution, the per-file
`kirvis_node_path_*` option winning, a file a distribution does not have refused before anything is created,
and on an rke2-shaped node tree through the sandbox one inject and restore, and a restore cut short by a kill
put back at rke2's path.

The expected paths are restated from aquasecurity/kube-bench's configuration (read there, not from our code):
cfg/rke2-cis-1.7/master.yaml audits /var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml (1.1.1) and
/var/lib/rancher/rke2/server/cred/admin.kubeconfig (1.1.13); cfg/config.yaml lists
/var/lib/rancher/rke2/agent/kubelet.kubeconfig (node.kubelet.kubeconfig), /var/lib/rancher/rke2/agent/client-ca.crt
(node.kubelet.cafile) and /var/lib/rancher/rke2/server/db/etcd/config (master.etcd.confs, what $etcdconf is);
cfg/k3s-cis-1.7/master.yaml audits /var/lib/rancher/k3s/server/cred/admin.kubeconfig (1.1.13) and skips
1.1.1-1.1.8 ("K3s embeds the api server within the k3s process. There is no API server pod specification
file"); cfg/k3s-cis-1.7/config.yaml sets defaultkubeconfig /var/lib/rancher/k3s/agent/kubelet.kubeconfig and
defaultcafile /var/lib/rancher/k3s/agent/client-ca.crt; node.yaml skips 4.1.9/4.1.10 (kubelet config file).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.node_files import node_file_entries
from chaoskirvis.ledger.record import record_name
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.nodes.actions import inject_node_fault
from chaoskirvis.nodes.agent_commands import write_command
from chaoskirvis.nodes.gates import NODE_OPT_IN_LABEL
from chaoskirvis.techniques.nodes import NODE_TECHNIQUES, node_technique
from tests.node_players import Kubelet
from tests.node_tree import APISERVER
from tests.test_nodes_orchestration import CONTROL, WORKER, allowed, fast_poll, nodes, run_pods, seen  # noqa: F401

RKE2_APISERVER = "/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml"
RKE2_KUBELET_KUBECONFIG = "/var/lib/rancher/rke2/agent/kubelet.kubeconfig"


@pytest.mark.parametrize("technique, layout, path", [
    ("apiserver-manifest-mode", "kubeadm", "/etc/kubernetes/manifests/kube-apiserver.yaml"),
    ("apiserver-manifest-mode", "rke2", RKE2_APISERVER),
    ("apiserver-profiling", "rke2", RKE2_APISERVER),
    ("etcd-manifest-owner", "rke2", "/var/lib/rancher/rke2/server/db/etcd/config"),
    ("admin-conf-mode", "kubeadm", "/etc/kubernetes/admin.conf"),
    ("admin-conf-mode", "rke2", "/var/lib/rancher/rke2/server/cred/admin.kubeconfig"),
    ("admin-conf-owner", "k3s", "/var/lib/rancher/k3s/server/cred/admin.kubeconfig"),
    ("kubelet-conf-mode", "rke2", RKE2_KUBELET_KUBECONFIG),
    ("kubelet-conf-owner", "k3s", "/var/lib/rancher/k3s/agent/kubelet.kubeconfig"),
    ("client-ca-mode", "rke2", "/var/lib/rancher/rke2/agent/client-ca.crt"),
    ("client-ca-owner", "k3s", "/var/lib/rancher/k3s/agent/client-ca.crt"),
    ("kubelet-anonymous-auth", "kubeadm", "/var/lib/kubelet/config.yaml"),
])
def test_the_layout_selects_kube_benchs_path(technique, layout, path):
    assert node_technique(technique).node_change.resolved_path({"kirvis_node_layout": layout}) == path


def test_no_layout_is_kubeadms():
    for unit in NODE_TECHNIQUES:
        change = unit.node_change
        assert change.resolved_path({}) == change.resolved_path({"kirvis_node_layout": "kubeadm"}) == change.path


@pytest.mark.parametrize("layout", ["kubeadm", "rke2", "k3s"])
def test_the_per_file_option_wins_over_the_layout(layout):
    change = node_technique("apiserver-manifest-mode").node_change  # k3s has no such file: the option still wins
    configuration = {"kirvis_node_layout": layout, "kirvis_node_path_apiserver_manifest": "/srv/k8s/apiserver.yaml"}
    assert change.resolved_path(configuration) == "/srv/k8s/apiserver.yaml"
    other = node_technique("admin-conf-mode").node_change  # another file's option changes nothing here
    assert other.resolved_path(configuration) == other.resolved_path({"kirvis_node_layout": layout})


@pytest.mark.parametrize("technique, layout, why, option", [
    ("apiserver-manifest-mode", "k3s", "inside the k3s process", "kirvis_node_path_apiserver_manifest"),
    ("apiserver-profiling", "k3s", "kube-apiserver-arg", "kirvis_node_path_apiserver_manifest"),
    ("scheduler-profiling", "k3s", "inside the k3s process", "kirvis_node_path_scheduler_manifest"),
    ("etcd-manifest-mode", "k3s", "embeds etcd", "kirvis_node_path_etcd_manifest"),
    ("kubelet-anonymous-auth", "k3s", "command-line flags", "kirvis_node_path_kubelet_config"),
    ("kubelet-read-only-port", "rke2", "command-line flags", "kirvis_node_path_kubelet_config"),
    ("kubelet-service-mode", "rke2", "no kubelet service file", "kirvis_node_path_kubelet_service"),
    ("scheduler-conf-mode", "rke2", "names no rke2 path", "kirvis_node_path_scheduler_conf"),
    ("controller-manager-conf-owner", "k3s", "names no k3s path", "kirvis_node_path_controller_manager_conf"),
])
def test_a_file_the_layout_lacks_is_refused_with_why_and_the_option(technique, layout, why, option):
    with pytest.raises(ValueError) as refused:
        node_technique(technique).node_change.resolved_path({"kirvis_node_layout": layout})
    message = str(refused.value)
    assert f"refused on the {layout} layout" in message and why in message and f"`{option}`" in message


@pytest.mark.parametrize("value", ["openshift", "RKE2", "", None, 2])
def test_an_unknown_layout_is_refused_naming_the_known_ones(value):
    change = node_technique("admin-conf-mode").node_change
    for configuration in ({"kirvis_node_layout": value},
                          {"kirvis_node_layout": value, "kirvis_node_path_admin_conf": "/etc/kubernetes/admin.conf"}):
        with pytest.raises(ValueError, match="not a known node layout; known: kubeadm, rke2, k3s"):
            change.resolved_path(configuration)


def test_no_two_files_share_a_default_path_in_a_layout():
    for layout in ("kubeadm", "rke2", "k3s"):
        by_file = {}
        for unit in NODE_TECHNIQUES:
            change = unit.node_change
            try:
                by_file[change.path_option] = change.resolved_path({"kirvis_node_layout": layout})
            except ValueError:  # a file the layout lacks
                continue
        assert len(set(by_file.values())) == len(by_file) >= 3, layout


# Through the sandbox: a refusal creates nothing; an rke2 tree is changed and restored.

@pytest.mark.parametrize("technique, node, configuration, message", [
    ("apiserver-manifest-mode", CONTROL, {"kirvis_node_layout": "k3s"}, "inside the k3s process"),
    ("apiserver-profiling", CONTROL, {"kirvis_node_layout": "k3s"}, "kirvis_node_path_apiserver_manifest"),
    ("kubelet-read-only-port", WORKER, {"kirvis_node_layout": "k3s"}, "command-line flags"),
    ("kubelet-conf-owner", WORKER, {"kirvis_node_layout": "rancher"}, "known: kubeadm, rke2, k3s"),
])
def test_a_refused_layout_creates_nothing(core, sandbox, nodes, allowed, technique, node, configuration, message):
    allowed["configuration"].update(configuration)
    path = node_technique(technique).node_change.path  # kubeadm's: the tree has it, so only the layout refuses
    before = seen(nodes[node], path)
    start = len(sandbox.sandbox.requests)
    with pytest.raises(ActivityFailed, match=message) as refused:
        inject_node_fault(technique, node, within=10, **allowed)
    assert str(refused.value).startswith(f"{technique}: ")
    assert [(r.method, r.path) for r in sandbox.sandbox.requests[start:] if r.method != "GET"] == []
    assert seen(nodes[node], path) == before
    run_id = current_run_id(allowed["configuration"])
    assert run_pods(core, run_id) == []
    assert [o["outcome"] for o in run_state(run_id).outcomes] == ["error"]  # a refused run tested nothing


def make_rke2_tree(root: Path) -> Path:
    """The rke2 files the test touches, as an rke2 server leaves them (root:root, 600), and no kubeadm file."""
    for rel, content in ((RKE2_APISERVER, APISERVER), (RKE2_KUBELET_KUBECONFIG, b"apiVersion: v1\nkind: Config\n")):
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chown(path, 0, 0)
        path.chmod(0o600)
    return root


@pytest.fixture
def rke2_control_plane(sandbox, core, tmp_path):
    """The sandbox's control-plane node opted in, with an rke2-shaped tree as its filesystem."""
    root = make_rke2_tree(tmp_path / CONTROL)
    sandbox.sandbox.attach_node_root(CONTROL, root)
    core.patch_node(CONTROL, {"metadata": {"labels": {NODE_OPT_IN_LABEL: "allowed"}}})
    yield root
    sandbox.sandbox.attach_node_root(CONTROL, None)
    core.patch_node(CONTROL, {"metadata": {"labels": {NODE_OPT_IN_LABEL: None}}})


def test_inject_and_restore_on_an_rke2_tree(core, rke2_control_plane, allowed):
    root = rke2_control_plane
    assert not (root / "etc").exists()  # no kubeadm file to fall back on
    allowed["configuration"]["kirvis_node_layout"] = "rke2"
    before = seen(root, RKE2_APISERVER)
    outcome = inject_node_fault("apiserver-manifest-mode", CONTROL, within=10, **allowed)
    after = seen(root, RKE2_APISERVER)
    assert after == ("644", *before[1:]) and outcome["path"] == RKE2_APISERVER
    run_id = current_run_id(allowed["configuration"])
    record = core.read_namespaced_config_map(record_name(run_id), "default").to_dict()
    entries, invalid = node_file_entries(record, run_id)
    assert invalid == [] and [e.entry["path"] for e in entries] == [RKE2_APISERVER]
    # the restore reads the path from the record: it needs no layout (a cleanup on another machine has none)
    summary = restore_run(configuration={"kirvis_run_id": run_id}, secrets=allowed["secrets"])
    assert seen(root, RKE2_APISERVER) == before
    assert any(RKE2_APISERVER in line for line in summary["restored"])
    assert run_pods(core, run_id) == []


class Rke2Kubelet(Kubelet):
    """`node_players.Kubelet` for the API server's manifest at rke2's path: the mirror pod follows that file."""

    manifest = property(lambda self: self.root / RKE2_APISERVER.lstrip("/"), lambda self, _kubeadm_path: None)

    def __init__(self, core, root: Path, node: str):
        self.root = root
        super().__init__(core, root, "kube-apiserver", node)


def test_a_restore_cut_short_at_the_rke2_path_is_the_runs_own_write(core, rke2_control_plane, allowed):
    """A first cleanup killed while it wrote the original back leaves its start, ending mid-line, with the
    original's mode and owner (see test_nodes_every_technique): at rke2's default path too, that is put back,
    and the restore waits for the kubelet to restart the component from it."""
    root = rke2_control_plane
    allowed["configuration"]["kirvis_node_layout"] = "rke2"
    file = root / RKE2_APISERVER.lstrip("/")
    kubelet = Rke2Kubelet(core, root, CONTROL)
    try:
        before, original = seen(root, RKE2_APISERVER), file.read_bytes()
        outcome = inject_node_fault("apiserver-profiling", CONTROL, within=10, **allowed)
        assert "--profiling=true" in file.read_text() and "restarted" in outcome["component"]
        sent = original[:original.index(b"\n", len(original) // 2) - 1]
        subprocess.run(write_command(str(root), RKE2_APISERVER), input=sent, check=True)
        assert seen(root, RKE2_APISERVER)[:3] == before[:3] and file.read_bytes() == sent
        summary = restore_run(**allowed)
        assert seen(root, RKE2_APISERVER) == before
        assert any(RKE2_APISERVER in line and "back: mirror pod" in line for line in summary["restored"])
    finally:
        kubelet.close()
