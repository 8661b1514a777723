"""Restore against a kubeadm node tree with the agent's real commands: original back, conflicts left alone."""
from __future__ import annotations

import pwd
import subprocess

import pytest

from chaoskirvis.nodes.agent_commands import FileState
from chaoskirvis.nodes.cis_files import WORKER_FILES, mode_passes
from chaoskirvis.nodes.restore import apply_state, read_state, restore_file
from tests.node_tree import make_node_tree

CONFIG = "/var/lib/kubelet/config.yaml"


def local(argv: list[str], stdin: bytes) -> str:
    return subprocess.run(argv, input=stdin, capture_output=True, check=True, timeout=10).stdout.decode()


@pytest.fixture
def root(tmp_path):
    return str(make_node_tree(tmp_path))


def inject(root: str) -> tuple[FileState, FileState]:
    original = read_state(local, root, CONFIG)
    nobody = pwd.getpwnam("nobody")
    changed = original.content.replace(b"enabled: false", b"enabled: true", 1)
    apply_state(local, root, CONFIG, FileState("666", nobody.pw_uid, nobody.pw_gid, "", changed))
    return original, read_state(local, root, CONFIG)


def test_restore_puts_the_original_back(root):
    original, left = inject(root)
    assert b"enabled: true" in left.content and left.mode == "666"
    assert restore_file(local, root, CONFIG, original, left) == "restored"
    assert read_state(local, root, CONFIG) == original
    assert restore_file(local, root, CONFIG, original, left) == "restored"  # a second cleanup is a no-op


def test_a_file_changed_since_the_run_is_left_alone(root):
    original, left = inject(root)
    local(["chmod", "640", root + CONFIG], b"")  # an administrator fixed the mode meanwhile
    before = read_state(local, root, CONFIG)
    verdict = restore_file(local, root, CONFIG, original, left)
    assert verdict.startswith("conflict:") and "640" in verdict
    assert read_state(local, root, CONFIG) == before


def test_worker_file_checks_see_the_injected_mode(root):
    check = next(c for c in WORKER_FILES if c.path == CONFIG)
    original, left = inject(root)
    assert not mode_passes(left, check.mode)
    assert restore_file(local, root, CONFIG, original, left) == "restored"
    assert read_state(local, root, CONFIG).mode == original.mode
