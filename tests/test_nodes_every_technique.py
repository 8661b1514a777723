"""Every node technique of the catalog (NODE_TECHNIQUES), injected and restored for real against kubeadm-shaped node
trees through the sandbox (`Sandbox.attach_node_root`): mode, owner, group and sha256 of the file exactly as before,
read by the test itself; the same after the runner is SIGKILLed (and its agent pod deleted) at two points of the
change, restored by `kirvis cleanup --run-id` from another process; and a file someone else changed after the
injection (or after the kill, before the cleanup) is reported by name and left as they left it.

The kill points are found without hooks in the code under test: the runner talks to the sandbox through a
fault-injecting proxy (`fault_proxy.FaultProxy`, here also relaying the exec WebSocket) that holds one exec
request, recognised by the agent's fixed command in its query, and tells the test, which then kills the runner:
(a) the exec of the change itself (chmod, chown, or the write's ``sh`` with stdin), so the original is in the
record and the node is untouched; (b) the first exec after the change (the read-back), so the node is changed and
the record entry still unconfirmed (``node-changing``).

The killed runners and the cleanups are processes forked from one host process that only imported chaoskirvis
(forking costs milliseconds where starting Python and importing costs a second, times 272): a runner shares no
memory with the test or with the cleanup, which runs `chaoskirvis.cli.main`, the `kirvis` command's entry point,
knowing nothing but the run id. The installed `kirvis` command itself cleans up one unit of each kind.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aiohttp.web
import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaoskirvis.client import kube_api
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.node_files import NodeFileEntry, entry_key, node_file_entries
from chaoskirvis.ledger.ownership import RUN_ID_LABEL
from chaoskirvis.ledger.record import record_name
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.nodes import mirror, restoring, session
from chaoskirvis.nodes.actions import inject_node_fault
from chaoskirvis.nodes.agent_commands import write_command
from chaoskirvis.techniques.nodes import NODE_TECHNIQUES
from tests.fault_proxy import Drop, FaultProxy
from tests.node_players import Kubelet
from tests.node_tree import make_node_tree, nodes_attached

WORKER, CONTROL = "kirvis-worker", "kirvis-control-plane"
REPO = Path(__file__).resolve().parents[1]
UNITS = [pytest.param(unit, id=unit.id) for unit in NODE_TECHNIQUES]
CONTENT_UNITS = [pytest.param(unit, id=unit.id) for unit in NODE_TECHNIQUES
                 if unit.node_change.kind in ("flag", "config")]  # the units that rewrite the file's content
HOLD_S = 30.0  # a withheld exec is dropped (never forwarded) when the test releases it, or after this


def _manifest(component: str, flags: list[str]) -> bytes:
    command = "".join(f"    - {item}\n" for item in [component, *flags])
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {component}\n  namespace: kube-system\nspec:\n"
            f"  containers:\n  - command:\n{command}    name: {component}\n").encode()


# The control-plane files node_tree.py leaves out, as kubeadm writes them (mode 600, root:root).
MORE_FILES = {
    "etc/kubernetes/manifests/kube-controller-manager.yaml":
        _manifest("kube-controller-manager", ["--kubeconfig=/etc/kubernetes/controller-manager.conf",
                                              "--profiling=false"]),
    "etc/kubernetes/manifests/kube-scheduler.yaml":
        _manifest("kube-scheduler", ["--kubeconfig=/etc/kubernetes/scheduler.conf", "--profiling=false"]),
    "etc/kubernetes/manifests/etcd.yaml": _manifest("etcd", ["--data-dir=/var/lib/etcd"]),
    "etc/kubernetes/controller-manager.conf": b"apiVersion: v1\nkind: Config\n",
}
# kubeadm leaves these 644, which is the mode the mode techniques set (LOOSE_MODE): they would refuse to test
# nothing. The trees are CIS-hardened there as 4.1.1, 4.1.7 and 4.1.9 ask (600).
HARDENED = ("usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", "etc/kubernetes/pki/ca.crt",
            "var/lib/kubelet/config.yaml")


def reset_tree(root: Path) -> Path:
    """Rewrite the node tree: kubeadm's files, modes and owners (the three above hardened)."""
    make_node_tree(root)
    for rel, content in MORE_FILES.items():
        (root / rel).write_bytes(content)
        os.chown(root / rel, 0, 0)
        (root / rel).chmod(0o600)
    for rel in HARDENED:
        (root / rel).chmod(0o600)
    return root


@pytest.fixture(scope="module")
def trees(sandbox, core, tmp_path_factory):
    """Both sandbox nodes opted in, each with a node tree as its filesystem, shared by the module: {node: root}."""
    roots = {node: reset_tree(tmp_path_factory.mktemp(node)) for node in (WORKER, CONTROL)}
    fast = pytest.MonkeyPatch()
    fast.setattr(session, "POLL_S", 0.05)
    fast.setattr(mirror, "POLL_S", 0.05)
    with nodes_attached(sandbox.sandbox, core, roots):
        yield roots
    fast.undo()


def where(unit, trees) -> tuple[str, Path, str]:
    """The technique's node, that node's tree (rewritten), and the file's path on the node."""
    node = CONTROL if unit.node_change.control_plane else WORKER
    return node, reset_tree(trees[node]), unit.node_change.path


def seen(root: Path, path: str) -> tuple[str, int, int, str]:
    """Mode, owner, group and sha256 of the tree's file, read by the test itself."""
    file = root / path.lstrip("/")
    st = os.stat(file)
    return oct(st.st_mode & 0o7777)[2:], st.st_uid, st.st_gid, hashlib.sha256(file.read_bytes()).hexdigest()


def _setting_apart(content: bytes, unit) -> tuple[object, object]:
    """(the value the file gives the setting the technique changes, the rest of the document without it)."""
    change = unit.node_change
    doc = yaml.safe_load(content)
    if change.kind == "flag":
        command = doc["spec"]["containers"][0]["command"]
        mine = [item for item in command if item.startswith(f"{change.flag}=")]
        doc["spec"]["containers"][0]["command"] = [item for item in command if item not in mine]
        return (mine[0].split("=", 1)[1] if len(mine) == 1 else mine), doc
    *parents, last = change.key.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    return node.pop(last, None), doc


def changed_as_the_technique_says(unit, root: Path, original: bytes, before: tuple, after: tuple) -> bool:
    """The file changed in exactly what the unit says (mode, owner, or one setting), read by the test itself."""
    change = unit.node_change
    if change.kind == "mode":
        return after == (change.mode, *before[1:])
    if change.kind == "owner":
        return after == (before[0], change.uid, change.gid, before[3])
    value, rest = _setting_apart((root / change.path.lstrip("/")).read_bytes(), unit)
    return after[:3] == before[:3] and value == change.value and rest == _setting_apart(original, unit)[1]


def run_args(sandbox) -> dict:
    configuration = {"kirvis_run_id": new_run_id(), "allow_node_faults": True, "allow_control_plane": True}
    return {"configuration": configuration, "secrets": {"KUBECONFIG": str(sandbox.kubeconfig)}}


def run_pods(core, run_id: str) -> list[str]:
    return [p.metadata.name for p in core.list_pod_for_all_namespaces(label_selector=f"{RUN_ID_LABEL}={run_id}").items
            if not p.metadata.deletion_timestamp]


def restarts(unit) -> bool:
    """A flag in a static pod manifest: the kubelet restarts the component (played by `Kubelet`)."""
    return unit.node_change.kind == "flag"


@contextmanager
def kubelet_for(core, unit, root: Path):
    kubelet = Kubelet(core, root, unit.node_change.component, CONTROL) if restarts(unit) else None
    try:
        yield kubelet
    finally:
        if kubelet:
            kubelet.close()


@pytest.mark.parametrize("unit", UNITS)
def test_inject_then_restore_puts_the_original_back(core, sandbox, trees, unit):
    node, root, path = where(unit, trees)
    run = run_args(sandbox)
    run_id = run["configuration"]["kirvis_run_id"]
    reset_run_id(run_id)
    try:
        with kubelet_for(core, unit, root):
            before, original = seen(root, path), (root / path.lstrip("/")).read_bytes()
            outcome = inject_node_fault(unit.id, node, within=10, **run)
            after = seen(root, path)
            assert changed_as_the_technique_says(unit, root, original, before, after), (before, after)
            assert outcome["before"]["sha256"] == before[3] and outcome["after"]["sha256"] == after[3]
            assert run_pods(core, run_id) == [outcome["agent"]]
            if restarts(unit):
                assert "restarted" in outcome["component"]
            summary = restore_run(**run)
            assert seen(root, path) == before
            assert any(f"node file {path} on node {node}: put back" in line for line in summary["restored"])
            assert run_pods(core, run_id) == []
            if restarts(unit):
                assert any("back: mirror pod" in line for line in summary["restored"])
        with pytest.raises(client.ApiException) as gone:
            core.read_namespaced_config_map(record_name(run_id), "default")
        assert gone.value.status == 404
    finally:
        reset_run_id()


@pytest.mark.parametrize("theirs", ["mode", "content"])
@pytest.mark.parametrize("unit", UNITS)
def test_a_file_changed_by_someone_else_is_reported_and_left_alone(core, sandbox, trees, unit, theirs):
    node, root, path = where(unit, trees)
    run = run_args(sandbox)
    run_id = run["configuration"]["kirvis_run_id"]
    reset_run_id(run_id)
    file = root / path.lstrip("/")
    try:
        with kubelet_for(core, unit, root):
            before = seen(root, path)
            inject_node_fault(unit.id, node, within=10, **run)
            if theirs == "mode":
                file.chmod(0o640)  # an administrator tightened (or changed) the mode meanwhile
            else:
                with file.open("ab") as edit:
                    edit.write(b"# edited by an administrator\n")
            other = seen(root, path)
            assert other != before
            with pytest.raises(ActivityFailed, match="changed since the run left it") as failed:
                restore_run(**run)
            assert f"node file {path} on node {node}" in str(failed.value)
            assert seen(root, path) == other  # their version, untouched
            reset_tree(root)  # the person settles it by hand; the record was kept, so a restore finishes
            restore_run(**run)
            assert seen(root, path) == before and run_pods(core, run_id) == []
    finally:
        reset_run_id()


# The runners and cleanups: forked from this host, which has done nothing but import (see the module docstring).
HOST = textwrap.dedent("""
    import json, os, sys, time, traceback
    from kubernetes.client import CoreV1Api  # imported on first use (a second): the exec's client
    from kubernetes.stream import stream
    from chaoskirvis import cli
    from chaoskirvis.nodes import mirror, restoring, session
    from chaoskirvis.nodes.actions import inject_node_fault
    session.POLL_S = mirror.POLL_S = 0.05

    def inject(job):
        configuration = {"kirvis_run_id": job["run_id"], "allow_node_faults": True, "allow_control_plane": True}
        inject_node_fault(job["technique"], job["node"], within=10, configuration=configuration,
                          secrets={"KUBECONFIG": job["kubeconfig"]})
        print("the change finished: the proxy held nothing", flush=True)
        time.sleep(120)

    def cleanup(job):
        os.environ["KUBECONFIG"] = job["kubeconfig"]
        return cli.main(["cleanup", "--run-id", job["run_id"]])

    def child(job):
        out = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        try:
            code = {"inject": inject, "cleanup": cleanup}[job["do"]](job)
        except SystemExit as exit:
            code = exit.code
        except BaseException:
            traceback.print_exc()
            code = 70
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        if job["do"] == "reap":
            answer = {"code": os.waitstatus_to_exitcode(os.waitpid(job["pid"], 0)[1])}
        else:
            pid = os.fork()
            if pid == 0:
                child(job)
            answer = {"pid": pid}
            if job["do"] == "cleanup":
                answer["code"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        print(json.dumps(answer), flush=True)
""")


class Host:
    """The process the runners and cleanups are forked from."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-c", HOST], cwd=REPO, text=True, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert self.ask() == {"ready": True}

    def ask(self, **job) -> dict:
        if job:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)


@dataclass(frozen=True)
class Withhold:
    """Hold the request until `released` (or HOLD_S), then close its connection: it is never forwarded."""

    released: threading.Event


class ExecProxy(FaultProxy):
    """The fault proxy, also relaying WebSocket upgrades (the agent's exec) to the sandbox as they came, and
    withholding requests (`Withhold`)."""

    async def _decide(self, request, decision):
        if isinstance(decision, Withhold):
            await asyncio.get_running_loop().run_in_executor(None, decision.released.wait, HOLD_S)
            decision = Drop()
        if decision is None and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._relay(request)
        return await super()._decide(request, decision)

    async def _relay(self, request):
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        headers = {"Authorization": request.headers["Authorization"]}
        async with self._session.ws_connect(self.sandbox.url + request.path_qs, protocols=offered, headers=headers,
                                            ssl=self._upstream_tls) as upstream:
            down = aiohttp.web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else ())
            await down.prepare(request)

            async def pump(source, sink):
                async for message in source:
                    if message.type == aiohttp.WSMsgType.BINARY:
                        await sink.send_bytes(message.data)
                    elif message.type == aiohttp.WSMsgType.TEXT:
                        await sink.send_str(message.data)
                await sink.close()

            await asyncio.gather(pump(upstream, down), pump(down, upstream))
        return down


class ChangeGate:
    """The proxy's rule: withhold one exec at the armed point, and say when it is reached."""

    def __init__(self):
        self.lock, self.reached, self.released = threading.Lock(), threading.Event(), threading.Event()
        self.point: str | None = None
        self.changed = False

    def arm(self, point: str) -> None:
        with self.lock:
            self.point, self.changed = point, False
            self.reached.clear()
            self.released = threading.Event()

    def __call__(self, method: str, path: str, query: dict[str, str]):
        if not path.endswith("/exec"):
            return None
        command, stdin = query.get("command"), query.get("stdin", "").lower() in ("true", "1")
        change = command in ("chmod", "chown") or (command == "sh" and stdin)  # the agent's fixed commands
        with self.lock:
            if (self.point == "before-change" and change) or (self.point == "after-change" and self.changed):
                self.point = None
                self.reached.set()
                return Withhold(self.released)
            self.changed = self.changed or change
        return None


@pytest.fixture(scope="module")
def killing(sandbox, trees, tmp_path_factory):
    """(the proxy's rule, the runners' kubeconfig through it, the host to fork from)."""
    gate = ChangeGate()
    host = Host()
    with ExecProxy(sandbox.sandbox, gate) as proxy:
        yield gate, proxy.write_kubeconfig(tmp_path_factory.mktemp("proxy") / "kubeconfig"), host
    host.close()


def kill_runner_at(point: str, unit, node: str, root: Path, core, killing, tmp_path) -> str:
    """Start a runner of `unit` on `node` through the proxy, SIGKILL it at `point`, delete its agent pod: its run id.
    Checks what it left: the original in the record (unconfirmed), the file untouched or changed."""
    gate, kubeconfig, host = killing
    run_id, path, before = new_run_id(), unit.node_change.path, seen(root, unit.node_change.path)
    original = (root / path.lstrip("/")).read_bytes()
    gate.arm(point)
    log = tmp_path / "runner.log"
    runner = host.ask(do="inject", technique=unit.id, node=node, run_id=run_id, kubeconfig=str(kubeconfig),
                      log=str(log))["pid"]
    try:
        assert gate.reached.wait(20), log.read_text()
    finally:
        os.kill(runner, signal.SIGKILL)
        assert host.ask(do="reap", pid=runner)["code"] == -signal.SIGKILL
        gate.released.set()
    record = core.read_namespaced_config_map(record_name(run_id), "default").to_dict()
    (entry,), invalid = node_file_entries(record, run_id)
    assert invalid == [] and entry.entry["state"] == "node-changing"
    assert (entry.original.mode, entry.original.uid, entry.original.gid, entry.original.sha256) == before
    if point == "before-change":
        assert seen(root, path) == before
    else:
        assert changed_as_the_technique_says(unit, root, original, before, seen(root, path))
    for pod in run_pods(core, run_id):  # the agent is killed too: the cleanup starts its own
        core.delete_namespaced_pod(pod, "default", grace_period_seconds=0)
    return run_id


def cleanup(killing, sandbox, run_id: str, tmp_path) -> tuple[int, str]:
    """`kirvis cleanup --run-id` in a process of its own: its exit code and what it printed."""
    out = tmp_path / "cleanup.log"
    code = killing[2].ask(do="cleanup", run_id=run_id, kubeconfig=str(sandbox.kubeconfig), log=str(out))["code"]
    return code, out.read_text()


@pytest.mark.parametrize("point", ["before-change", "after-change"])
@pytest.mark.parametrize("unit", UNITS)
def test_runner_killed_mid_change_is_restored_by_cleanup(core, sandbox, trees, killing, tmp_path, unit, point):
    node, root, path = where(unit, trees)
    with kubelet_for(core, unit, root):
        before = seen(root, path)
        run_id = kill_runner_at(point, unit, node, root, core, killing, tmp_path)
        code, said = cleanup(killing, sandbox, run_id, tmp_path)
        assert code == 0, said
        assert seen(root, path) == before
        assert f"node file {path} on node {node}: put back" in said
        assert run_pods(core, run_id) == []
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_config_map(record_name(run_id), "default")
    assert gone.value.status == 404


@pytest.mark.parametrize("point", ["before-change", "after-change"])
@pytest.mark.parametrize("unit", UNITS)
def test_cleanup_after_a_kill_leaves_someone_elses_change_alone(core, sandbox, trees, killing, tmp_path, unit, point):
    node, root, path = where(unit, trees)
    with kubelet_for(core, unit, root):
        run_id = kill_runner_at(point, unit, node, root, core, killing, tmp_path)
        (root / path.lstrip("/")).chmod(0o640)  # someone changed the mode before the cleanup came
        theirs = seen(root, path)
        code, said = cleanup(killing, sandbox, run_id, tmp_path)
        assert code == 1, said
        assert f"conflict: node file {path} on node {node}: {path} changed since the run left it" in said
        assert seen(root, path) == theirs
        assert run_pods(core, run_id) == []
        reset_tree(root)  # the person settles it; the record was kept, so the same cleanup finishes
        code, said = cleanup(killing, sandbox, run_id, tmp_path)
        assert code == 0, said
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_config_map(record_name(run_id), "default")
    assert gone.value.status == 404


@pytest.mark.parametrize("cut", ["change-before-stdin", "change-mid-stdin", "restore-mid-stdin"])
@pytest.mark.parametrize("unit", CONTENT_UNITS)
def test_a_write_cut_short_by_the_kill_is_put_back(core, sandbox, trees, killing, tmp_path, unit, cut):
    """On a node the kubelet starts the exec's process at once and streams its stdin: the write's shell has
    truncated the file (`cat > "$1"`) before the content arrives, so a runner (or a cleanup) killed while it
    sends leaves the start of what it was writing, mode and owner unchanged. The sandbox runs the process only
    once stdin is closed, so the test runs the agent's own write command on the tree with the stdin cut short."""
    node, root, path = where(unit, trees)
    with kubelet_for(core, unit, root):
        before = seen(root, path)
        original = (root / path.lstrip("/")).read_bytes()
        if cut.startswith("change"):
            run_id = kill_runner_at("before-change", unit, node, root, core, killing, tmp_path)
            writing = unit.node_change.new_content(original)
        else:  # a first cleanup killed while it wrote the original back over the change
            run_id = kill_runner_at("after-change", unit, node, root, core, killing, tmp_path)
            writing = original
        sent = b"" if cut == "change-before-stdin" else writing[:writing.index(b"\n", len(writing) // 2) - 1]
        subprocess.run(write_command(str(root), path), input=sent, check=True)
        assert seen(root, path)[:3] == before[:3] and (root / path.lstrip("/")).read_bytes() == sent
        code, said = cleanup(killing, sandbox, run_id, tmp_path)
        assert code == 0, said
        assert seen(root, path) == before
        assert f"node file {path} on node {node}: put back" in said
        assert run_pods(core, run_id) == []


@pytest.mark.parametrize("unit", CONTENT_UNITS)
def test_the_last_lines_deleted_by_someone_else_are_not_taken_for_a_cut_write(core, sandbox, trees, unit):
    node, root, path = where(unit, trees)
    run = run_args(sandbox)
    run_id = run["configuration"]["kirvis_run_id"]
    reset_run_id(run_id)
    file = root / path.lstrip("/")
    try:
        with kubelet_for(core, unit, root):
            before = seen(root, path)
            inject_node_fault(unit.id, node, within=10, **run)
            content = file.read_bytes()
            file.write_bytes(content[:content.rstrip(b"\n").rindex(b"\n") + 1])  # a start of what the run wrote
            theirs = seen(root, path)
            if theirs == before:  # the key the run appended was the last line: they put the original back
                restore_run(**run)
            else:
                with pytest.raises(ActivityFailed, match=f"node file {path} on node {node}: .* changed since the"):
                    restore_run(**run)
                assert seen(root, path) == theirs
                reset_tree(root)
                restore_run(**run)
            assert run_pods(core, run_id) == []
    finally:
        reset_run_id()


def test_a_forged_entry_cannot_fill_an_empty_file_elsewhere(core, sandbox, trees):
    """The cut-write rule holds only at the technique's own path: an entry naming another (empty) file, with an
    original of the forger's choosing, is a conflict and the file stays empty."""
    root = reset_tree(trees[WORKER])
    empty = root / "var/lib/kubelet/empty.yaml"
    empty.write_bytes(b"")
    empty.chmod(0o600)
    run = run_args(sandbox)
    run_id = run["configuration"]["kirvis_run_id"]
    reset_run_id(run_id)
    try:
        inject_node_fault("kubelet-anonymous-auth", WORKER, within=10, **run)
        record = core.read_namespaced_config_map(record_name(run_id), "default").to_dict()
        (entry,), _ = node_file_entries(record, run_id)
        for pod in run_pods(core, run_id):
            core.delete_namespaced_pod(pod, "default", grace_period_seconds=0)
        forged = {**entry.entry, "path": "/var/lib/kubelet/empty.yaml"}
        forged_entry = NodeFileEntry(entry_key(WORKER, forged["path"]), forged, run_id, entry.home)
        result = restoring.restore_node_file(kube_api(**run), forged_entry, within=5)
        assert result.outcome == "conflict", result.detail
        assert empty.read_bytes() == b""
        restore_run(**run)
        assert run_pods(core, run_id) == []
    finally:
        empty.unlink()
        reset_run_id()


ONE_OF_EACH_KIND = [pytest.param(unit, id=unit.id) for unit in NODE_TECHNIQUES
                    if unit.id in ("etcd-manifest-mode", "admin-conf-owner", "scheduler-profiling",
                                   "kubelet-read-only-port")]


@pytest.mark.parametrize("unit", ONE_OF_EACH_KIND)
def test_the_kirvis_command_itself_cleans_up_a_runner_killed_at_the_change(core, sandbox, trees, killing, tmp_path,
                                                                          unit):
    """The forked cleanups above run the `kirvis` command's entry point; here the installed command itself,
    started as a new program, for one unit of each kind (mode, owner, manifest flag, kubelet config key)."""
    node, root, path = where(unit, trees)
    assert {u.values[0].node_change.kind for u in ONE_OF_EACH_KIND} == {"mode", "owner", "flag", "config"}
    with kubelet_for(core, unit, root):
        before = seen(root, path)
        run_id = kill_runner_at("before-change", unit, node, root, core, killing, tmp_path)
        done = subprocess.run([str(REPO / ".venv/bin/kirvis"), "cleanup", "--run-id", run_id], cwd=REPO,
                              env={**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)}, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert seen(root, path) == before
        assert f"node file {path} on node {node}: put back" in done.stdout
        assert run_pods(core, run_id) == []
