"""A directory attached as a node's filesystem: the node agent's commands exec'd into a pod on that node run
for real on it, through the real client's `stream()` (stdin forwarded until v5 closes it); anything else is
answered as scripted, as before."""
from __future__ import annotations

import hashlib
import os

import pytest
from kubernetes.stream import stream

from chaoskirvis.nodes import agent_commands as commands
from chaoskirvis.sandbox.exec_ws import UNSCRIPTED_EXIT_CODE
from chaoskirvis.sandbox.server import SandboxError
from tests.node_tree import KUBELET_CONFIG, make_node_tree

WORKER = "kirvis-worker"
CONFIG = "/var/lib/kubelet/config.yaml"


@pytest.fixture
def root(sandbox, tmp_path):
    tree = make_node_tree(tmp_path / "node")
    sandbox.sandbox.attach_node_root(WORKER, tree)
    yield tree
    sandbox.sandbox.attach_node_root(WORKER, None)


def pod_on(core, namespace, node, mounts):
    """A pod on `node` mounting each (host directory, mountPath, readOnly) as a hostPath volume."""
    core.create_namespaced_pod(namespace, {"metadata": {"name": "agent"}, "spec": {
        "nodeName": node, "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": "agent", "image": "busybox:1.36", "volumeMounts": [
            {"name": f"v{i}", "mountPath": where, "readOnly": ro} for i, (_, where, ro) in enumerate(mounts)]}],
        "volumes": [{"name": f"v{i}", "hostPath": {"path": host}} for i, (host, _, _) in enumerate(mounts)]}})
    return "agent"


def execute(core, namespace, pod, argv, stdin=b""):
    session = stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=argv, container="agent",
                     stdin=bool(stdin), stdout=True, stderr=True, tty=False, _preload_content=False)
    if stdin:
        session.write_stdin(stdin)
        session.close_channel(0)
    session.run_forever(timeout=10)
    return session.read_stdout(), session.read_stderr(), session.returncode


def test_agent_commands_run_on_the_attached_tree(core, make_namespace, root):
    namespace = make_namespace()
    pod = pod_on(core, namespace, WORKER, [("/var/lib/kubelet", "/host/var/lib/kubelet", False)])
    out, _, code = execute(core, namespace, pod, commands.snapshot_command("/host", CONFIG))
    assert code == 0
    assert commands.parse_snapshot(out).sha256 == hashlib.sha256(KUBELET_CONFIG).hexdigest()
    _, _, code = execute(core, namespace, pod, commands.write_command("/host", CONFIG), stdin=b"new content\n")
    assert code == 0 and (root / CONFIG.lstrip("/")).read_bytes() == b"new content\n"
    assert execute(core, namespace, pod, commands.chmod_command("/host", CONFIG, "600"))[2] == 0
    assert execute(core, namespace, pod, commands.chown_command("/host", CONFIG, 1000, 1001))[2] == 0
    st = os.stat(root / CONFIG.lstrip("/"))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 1000, 1001)
    _, err, code = execute(core, namespace, pod, commands.snapshot_command("/host", "/var/lib/kubelet/absent"))
    assert code == 1 and "absent" in err  # the real command's own failure, not a scripted one


def test_a_read_only_mount_refuses_writes(core, make_namespace, root):
    namespace = make_namespace()
    pod = pod_on(core, namespace, WORKER, [("/var/lib/kubelet", "/host/var/lib/kubelet", True)])
    _, err, code = execute(core, namespace, pod, commands.write_command("/host", CONFIG), stdin=b"x\n")
    assert code == 1 and "Read-only file system" in err
    assert (root / CONFIG.lstrip("/")).read_bytes() == KUBELET_CONFIG
    assert execute(core, namespace, pod, commands.snapshot_command("/host", CONFIG))[2] == 0  # reads still work


def test_the_mount_decides_which_host_path_is_reached(core, make_namespace, root):
    namespace = make_namespace()
    # /host/etc is /etc/kubernetes/pki on the node: the container's /host/etc/ca.crt is the node's pki/ca.crt
    pod = pod_on(core, namespace, WORKER, [("/etc/kubernetes/pki", "/host/etc", False)])
    out, _, code = execute(core, namespace, pod, commands.snapshot_command("/", "/host/etc/ca.crt"))
    assert code == 0 and commands.parse_snapshot(out).content == b"-----BEGIN CERTIFICATE-----\n"
    # a subPath mounts that subdirectory of the volume
    core.create_namespaced_pod(namespace, {"metadata": {"name": "sub"}, "spec": {
        "nodeName": WORKER, "containers": [{"name": "agent", "image": "busybox:1.36", "volumeMounts": [
            {"name": "k", "mountPath": "/pki", "subPath": "pki"}]}],
        "volumes": [{"name": "k", "hostPath": {"path": "/etc/kubernetes"}}]}})
    out, _, code = execute(core, namespace, "sub", commands.snapshot_command("/", "/pki/ca.crt"))
    assert code == 0 and commands.parse_snapshot(out).content == b"-----BEGIN CERTIFICATE-----\n"
    # a path under no hostPath mount is not on the node: not run, as before
    _, err, code = execute(core, namespace, pod, commands.snapshot_command("/host", CONFIG))
    assert code == UNSCRIPTED_EXIT_CODE and "not run" in err


def test_other_commands_and_other_nodes_keep_the_scripts(core, sandbox, make_namespace, root):
    namespace = make_namespace()
    pod = pod_on(core, namespace, WORKER, [("/var/lib/kubelet", "/host/var/lib/kubelet", False)])
    _, err, code = execute(core, namespace, pod, ["cat", "/host" + CONFIG])
    assert code == UNSCRIPTED_EXIT_CODE and "not run" in err
    _, err, code = execute(core, namespace, pod, ["chmod", "u+s", "/host" + CONFIG])  # not the agent's shape
    assert code == UNSCRIPTED_EXIT_CODE
    other = make_namespace()
    elsewhere = pod_on(core, other, "kirvis-control-plane", [("/var/lib/kubelet", "/host/var/lib/kubelet", False)])
    sandbox.sandbox.script_exec(lambda r: r.namespace == other, stdout="scripted\n")
    assert execute(core, other, elsewhere, commands.chmod_command("/host", CONFIG, "777"))[:1] == ("scripted\n",)
    assert os.stat(root / CONFIG.lstrip("/")).st_mode & 0o7777 == 0o644
    assert [r.command[0] for r in sandbox.sandbox.execs if r.namespace in (namespace, other)] == \
        ["cat", "chmod", "chmod"]


def test_attach_refuses_unknown_nodes_and_missing_directories(sandbox, tmp_path):
    with pytest.raises(SandboxError, match="no node"):
        sandbox.sandbox.attach_node_root("absent", tmp_path)
    with pytest.raises(SandboxError, match="not a directory"):
        sandbox.sandbox.attach_node_root(WORKER, tmp_path / "absent")
