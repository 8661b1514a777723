"""The node agent's exact commands, run locally (subprocess) against a kubeadm-shaped node tree."""
from __future__ import annotations

import hashlib
import os
import pwd
import subprocess

import pytest

from chaoskirvis.nodes import agent_commands as actions
from tests.node_tree import FILES, make_node_tree

NOBODY = pwd.getpwnam("nobody")


def run(argv: list[str], stdin: bytes = b"") -> str:
    return subprocess.run(argv, input=stdin, capture_output=True, check=True, timeout=10).stdout.decode()


@pytest.fixture
def root(tmp_path):
    return str(make_node_tree(tmp_path))


def test_snapshot_reads_mode_owner_checksum_and_content(root):
    state = actions.parse_snapshot(run(actions.snapshot_command(root, "/var/lib/kubelet/config.yaml")))
    content = FILES["var/lib/kubelet/config.yaml"][1]
    assert state == actions.FileState("644", 0, 0, hashlib.sha256(content).hexdigest(), content)


def test_change_and_restore_mode_owner_and_content(root):
    path = "/etc/kubernetes/admin.conf"
    original = actions.parse_snapshot(run(actions.snapshot_command(root, path)))
    run(actions.chmod_command(root, path, "666"))
    run(actions.chown_command(root, path, NOBODY.pw_uid, NOBODY.pw_gid))
    run(actions.write_command(root, path), stdin=b"changed\n")
    changed = actions.parse_snapshot(run(actions.snapshot_command(root, path)))
    assert (changed.mode, changed.uid, changed.gid, changed.content) == ("666", NOBODY.pw_uid, NOBODY.pw_gid,
                                                                        b"changed\n")
    st = os.stat(actions.host_path(root, path))
    assert (oct(st.st_mode & 0o7777), st.st_uid) == ("0o666", NOBODY.pw_uid)

    run(actions.write_command(root, path), stdin=original.content)
    run(actions.chmod_command(root, path, original.mode))
    run(actions.chown_command(root, path, original.uid, original.gid))
    assert actions.parse_snapshot(run(actions.snapshot_command(root, path))) == original


def test_paths_and_modes_cannot_carry_shell(root):
    for bad in ("etc/passwd", "/etc/kubernetes/../../etc/shadow"):
        with pytest.raises(ValueError):
            actions.host_path(root, bad)
    with pytest.raises(ValueError):
        actions.chmod_command(root, "/etc/kubernetes/admin.conf", "777; rm -rf /")
    # A path with shell metacharacters is one argument, not script: the command fails on the missing file.
    odd = "/etc/kubernetes/$(touch pwned)"
    with pytest.raises(subprocess.CalledProcessError):
        run(actions.snapshot_command(root, odd))
    assert not os.path.exists("pwned") and not os.path.exists(os.path.join(root, "pwned"))


def test_forged_snapshot_is_refused():
    good = "600 0 0\n" + hashlib.sha256(b"a").hexdigest() + "  /x\n" + "Yg==\n"  # content b"b", digest of b"a"
    with pytest.raises(ValueError, match="sha256"):
        actions.parse_snapshot(good)
    with pytest.raises(ValueError):
        actions.parse_snapshot("no such file\n")
