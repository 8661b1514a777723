"""The CIS 1.1.x file checks judged on what the agent's real commands read from a kubeadm node tree."""
from __future__ import annotations

import pwd
import subprocess

import pytest

from chaoskirvis.nodes import agent_commands as actions
from chaoskirvis.nodes.cis_files import CONTROL_PLANE_FILES, mode_passes, owner_passes
from tests.node_tree import make_node_tree


def snapshot(root: str, path: str) -> actions.FileState:
    out = subprocess.run(actions.snapshot_command(root, path), capture_output=True, check=True, timeout=10)
    return actions.parse_snapshot(out.stdout.decode())


@pytest.fixture
def root(tmp_path):
    return str(make_node_tree(tmp_path))


def test_check_ids_are_distinct_and_paths_are_kubeadm():
    ids = [c.mode_check for c in CONTROL_PLANE_FILES] + [c.owner_check for c in CONTROL_PLANE_FILES]
    assert len(ids) == len(set(ids))
    assert all(c.path.startswith("/etc/kubernetes/") for c in CONTROL_PLANE_FILES)


def test_kubeadm_modes_pass_and_a_loosened_mode_fails(root):
    check = next(c for c in CONTROL_PLANE_FILES if c.mode_check == "1.1.13")
    assert mode_passes(snapshot(root, check.path), check.mode)
    subprocess.run(actions.chmod_command(root, check.path, "400"), check=True, timeout=10)
    assert mode_passes(snapshot(root, check.path), check.mode)  # stricter than 600 still passes
    subprocess.run(actions.chmod_command(root, check.path, "640"), check=True, timeout=10)
    assert not mode_passes(snapshot(root, check.path), check.mode)


def test_owner_other_than_root_fails(root):
    check = next(c for c in CONTROL_PLANE_FILES if c.owner_check == "1.1.14")
    assert owner_passes(snapshot(root, check.path))
    nobody = pwd.getpwnam("nobody")
    subprocess.run(actions.chown_command(root, check.path, nobody.pw_uid, 0), check=True, timeout=10)
    assert not owner_passes(snapshot(root, check.path))
