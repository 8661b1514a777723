"""Flag and kubelet-config edits, written to the node tree with the agent's write command."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from chaoskirvis.nodes.edits import set_config_key, set_flag
from chaoskirvis.nodes.restore import apply_state, read_state
from tests.node_tree import APISERVER, KUBELET_CONFIG, make_node_tree


def local(argv, stdin):
    return subprocess.run(argv, input=stdin, capture_output=True, check=True, timeout=10).stdout.decode()


def command(manifest: bytes) -> list[str]:
    return yaml.safe_load(manifest)["spec"]["containers"][0]["command"]


def test_existing_flag_is_replaced_and_a_missing_one_added():
    changed = set_flag(APISERVER, "--profiling", "true")
    assert "--profiling=true" in command(changed) and "--profiling=false" not in command(changed)
    added = set_flag(APISERVER, "--enable-admission-plugins", "AlwaysAdmit")
    assert command(added)[:2] == ["kube-apiserver", "--enable-admission-plugins=AlwaysAdmit"]
    with pytest.raises(ValueError):
        set_flag(APISERVER, "--profiling; rm", "x")
    with pytest.raises(ValueError):
        set_flag(b"apiVersion: v1\nkind: Pod\n", "--profiling", "true")


def test_kubelet_key_set_and_written_to_the_tree(tmp_path):
    root = str(make_node_tree(tmp_path))
    before = read_state(local, root, "/var/lib/kubelet/config.yaml")
    new = set_config_key(before.content, "authentication.anonymous.enabled", True)
    apply_state(local, root, "/var/lib/kubelet/config.yaml", before._replace(content=new))
    after = yaml.safe_load(read_state(local, root, "/var/lib/kubelet/config.yaml").content)
    assert after["authentication"]["anonymous"]["enabled"] is True
    assert after["authorization"]["mode"] == "Webhook"  # the rest is kept
    assert yaml.safe_load(set_config_key(KUBELET_CONFIG, "readOnlyPort", 10255))["readOnlyPort"] == 10255
    with pytest.raises(ValueError):
        set_config_key(b"kind: Pod\n", "readOnlyPort", 1)
