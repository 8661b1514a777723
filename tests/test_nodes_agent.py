"""The agent pod body and the dry-run preview."""
from __future__ import annotations

import hashlib

from chaoskirvis.ledger.ownership import RUN_ID_LABEL, is_owned
from chaoskirvis.nodes.agent_commands import FileState
from chaoskirvis.nodes.agent import agent_pod
from chaoskirvis.nodes.preview import describe_change


def test_agent_is_pinned_and_mounts_only_the_needed_directories():
    pod = agent_pod("r1abc", "kubelet-anonymous-auth", "worker-1", ["/var/lib/kubelet/config.yaml"], "kirvis", "x1")
    spec = pod["spec"]
    assert spec["nodeName"] == "worker-1"
    assert [v["hostPath"]["path"] for v in spec["volumes"]] == ["/var/lib/kubelet"]
    assert spec["containers"][0]["volumeMounts"][0]["mountPath"] == "/host/var/lib/kubelet"
    assert pod["metadata"]["labels"][RUN_ID_LABEL] == "r1abc" and is_owned(pod, "r1abc")
    two = agent_pod("r1abc", "t", "n", ["/etc/kubernetes/admin.conf", "/etc/kubernetes/scheduler.conf"], "k", "y")
    assert len(two["spec"]["volumes"]) == 1  # one mount for the shared directory, not the whole /etc


def state(mode: str, content: bytes) -> FileState:
    return FileState(mode, 0, 0, hashlib.sha256(content).hexdigest(), content)


def test_preview_shows_diff_and_mode():
    out = describe_change("/var/lib/kubelet/config.yaml", state("600", b"a\nenabled: false\n"),
                          state("644", b"a\nenabled: true\n"))
    assert "mode 600 -> 644 /var/lib/kubelet/config.yaml" in out
    assert "-enabled: false\n+enabled: true\n" in out
    assert describe_change("/x", state("600", b"a"), state("600", b"a")) == ""
