"""The node technique units: each change makes its CIS check fail as kube-bench's cfg/cis-1.9 tests it.

CFG below restates, for the checks the units name, the test items of kube-bench's cfg/cis-1.9 master.yaml
and node.yaml (flag or kubelet config path, compare op, value; `bin_op: or` where the cfg has it) and
whether the check is scored. kube-bench reads a component's flags from its command line (`ps -ef`), that
is the static pod manifest's command list, and a kubelet setting from its config file when the command
line does not set it. The evaluation follows kube-bench's check/test.go for the ops used here.
"""
from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.nodes import agent_commands as commands
from chaoskirvis.nodes.agent_commands import FileState
from chaoskirvis.nodes.change import NodeChange
from chaoskirvis.nodes.cis_files import CONTROL_PLANE_FILES, WORKER_FILES, mode_passes, owner_passes
from chaoskirvis.nodes.restore import read_state
from chaoskirvis.techniques.docs import _section
from chaoskirvis.techniques.nodes import NODE_TECHNIQUES, node_technique
from chaoskirvis.techniques.remediation import remediation
from tests.node_tree import KUBELET_CONFIG, make_node_tree

UNSET = object()  # kube-bench's `set: false`
# check id: (scored, bin_op, [(flag or kubelet config path, op, value)])
CFG = {
    "1.2.1": (False, "and", [("--anonymous-auth", "eq", "false")]),
    "1.2.6": (True, "and", [("--authorization-mode", "nothave", "AlwaysAllow")]),
    "1.2.10": (True, "or", [("--enable-admission-plugins", "nothave", "AlwaysAdmit"),
                            ("--enable-admission-plugins", "set", UNSET)]),
    "1.2.15": (True, "and", [("--profiling", "eq", "false")]),
    "1.2.17": (True, "and", [("--audit-log-maxage", "gte", "30")]),
    "1.3.2": (True, "and", [("--profiling", "eq", "false")]),
    "1.4.1": (True, "and", [("--profiling", "eq", "false")]),
    "4.2.1": (True, "and", [("authentication.anonymous.enabled", "eq", "false")]),
    "4.2.2": (True, "and", [("authorization.mode", "nothave", "AlwaysAllow")]),
    "4.2.4": (False, "or", [("readOnlyPort", "eq", "0"), ("readOnlyPort", "set", UNSET)]),
    "4.2.6": (True, "or", [("makeIPTablesUtilChains", "eq", "true"), ("makeIPTablesUtilChains", "set", UNSET)]),
    "4.2.10": (True, "or", [("rotateCertificates", "eq", "true"), ("rotateCertificates", "set", UNSET)]),
}
# File checks the cfg marks `scored: false` (all other 1.1.x / 4.1.x checks in cis_files are scored).
UNSCORED_FILE_CHECKS = {"4.1.7", "4.1.8"}

HARDENED = {  # manifests as a hardened kubeadm control plane has them: every check in CFG passes
    "kube-apiserver": ["--anonymous-auth=false", "--authorization-mode=Node,RBAC",
                       "--enable-admission-plugins=NodeRestriction", "--profiling=false", "--audit-log-maxage=30",
                       "--audit-log-path=/var/log/kubernetes/audit.log"],
    "kube-controller-manager": ["--profiling=false", "--use-service-account-credentials=true"],
    "kube-scheduler": ["--profiling=false", "--bind-address=127.0.0.1"],
}
FLAG_KINDS = ("flag", "config")


def manifest(component: str) -> bytes:
    command = "".join(f"    - {arg}\n" for arg in [component, *HARDENED[component]])
    return (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {component}\n  namespace: kube-system\nspec:\n"
            f"  containers:\n  - command:\n{command}    image: registry.k8s.io/{component}:v1.31.0\n"
            f"    name: {component}\n").encode()


def flags_of(content: bytes) -> dict[str, str]:
    (container,) = yaml.safe_load(content)["spec"]["containers"]
    return dict(arg.split("=", 1) for arg in container["command"][1:])


def config_value(content: bytes, path: str):
    node = yaml.safe_load(content)
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return UNSET
        node = node[part]
    return str(node).lower() if isinstance(node, bool) else str(node)


def passes(check: str, content: bytes) -> bool:
    """kube-bench's verdict on `content` (a manifest or a KubeletConfiguration) for one CFG check."""
    _, bin_op, items = CFG[check]
    kubelet = check.startswith("4.")
    results = []
    for name, op, value in items:
        actual = config_value(content, name) if kubelet else flags_of(content).get(name, UNSET)
        if op == "set":
            results.append(actual is UNSET)
        elif actual is UNSET:
            results.append(False)  # a compare on a flag that is not set fails
        elif op == "eq":
            results.append(actual == value)
        elif op == "nothave":
            results.append(value not in actual.split(","))
        elif op == "gte":
            results.append(int(actual) >= int(value))
    return any(results) if bin_op == "or" else all(results)


CONTENT_UNITS = [t for t in NODE_TECHNIQUES if t.node_change.kind in FLAG_KINDS]
FILE_UNITS = [t for t in NODE_TECHNIQUES if t.node_change.kind not in FLAG_KINDS]


@pytest.mark.parametrize("technique", NODE_TECHNIQUES, ids=lambda t: t.id)
def test_unit_describes_itself_as_the_other_families_do(technique):
    assert re.fullmatch(r"[a-z][a-z0-9-]+", technique.id) and technique.family == "node"
    assert technique.title and technique.injects and technique.blocked_by and technique.undo
    assert technique.attack and all(re.fullmatch(r"T\d{4}(\.\d{3})?", a) for a in technique.attack)
    assert technique.target == "node" and technique.apply is None and technique.command is None
    assert technique.pod_security_level is None and not technique.pod_security_checks
    assert technique.cis.benchmark == "cis-1.9" and technique.cis.remediation
    assert technique.cis.targets == (("master",) if technique.cis.id.startswith("1.") else ("node",))
    assert technique.node_change.control_plane == technique.cis.id.startswith("1.")
    # Falco sees nothing of the change; the note says so and names the benchmark check that does.
    assert not technique.detection.rules
    assert f"kube-bench check {technique.cis.id} (cis-1.9)" in technique.detection.note


def test_ids_are_unique():
    assert len({t.id for t in NODE_TECHNIQUES}) == len(NODE_TECHNIQUES)


@pytest.mark.parametrize("technique", CONTENT_UNITS, ids=lambda t: t.id)
def test_the_change_makes_its_check_fail_as_kube_bench_tests_it(technique):
    change = technique.node_change
    before = KUBELET_CONFIG if change.component == "kubelet" else manifest(change.component)
    assert passes(technique.cis.id, before), "the hardened sample must pass first"
    assert not passes(technique.cis.id, change.new_content(before))
    assert technique.cis.scored is CFG[technique.cis.id][0]


def test_every_flag_and_config_check_in_the_table_has_a_unit():
    assert sorted(t.cis.id for t in CONTENT_UNITS) == sorted(CFG)


def test_a_manifest_change_restarts_its_own_component_and_leaves_other_flags():
    unit = node_technique("apiserver-always-admit")
    after = flags_of(unit.node_change.new_content(manifest("kube-apiserver")))
    assert after["--enable-admission-plugins"] == "NodeRestriction,AlwaysAdmit"
    assert {k: v for k, v in after.items() if k != "--enable-admission-plugins"} == \
        {k: v for k, v in flags_of(manifest("kube-apiserver")).items() if k != "--enable-admission-plugins"}
    assert unit.node_change.component == "kube-apiserver" and unit.node_change.path.endswith("kube-apiserver.yaml")


@pytest.mark.parametrize("check", [*CONTROL_PLANE_FILES, *WORKER_FILES], ids=lambda c: c.name)
def test_each_cis_file_has_a_mode_and_an_owner_unit_that_fail_its_checks(check):
    mode, owner = node_technique(f"{check.name}-mode"), node_technique(f"{check.name}-owner")
    assert (mode.cis.id, owner.cis.id) == (check.mode_check, check.owner_check)
    assert mode.node_change.path == owner.node_change.path == check.path
    hardened = FileState(check.mode, 0, 0, "0" * 64, b"")
    assert mode_passes(hardened, check.mode) and owner_passes(hardened)
    assert not mode_passes(mode.node_change.after(hardened), check.mode)
    assert not owner_passes(owner.node_change.after(hardened))
    for unit in (mode, owner):
        assert unit.cis.scored is (unit.cis.id not in UNSCORED_FILE_CHECKS)


def test_file_units_are_all_built_from_cis_files():
    assert len(FILE_UNITS) == 2 * (len(CONTROL_PLANE_FILES) + len(WORKER_FILES))


def local(argv: list[str], stdin: bytes) -> str:
    return subprocess.run(argv, input=stdin, capture_output=True, check=True, timeout=10).stdout.decode()


@pytest.mark.parametrize("technique_id", ["admin-conf-mode", "admin-conf-owner", "kubelet-anonymous-auth",
                                          "apiserver-profiling"])
def test_after_is_what_the_agent_commands_leave_on_a_kubeadm_tree(tmp_path, technique_id):
    root = str(make_node_tree(tmp_path))
    change = node_technique(technique_id).node_change
    path = change.resolved_path({})
    before = read_state(local, root, path)
    expected = change.after(before)
    if change.kind == "mode":
        local(commands.chmod_command(root, path, change.mode), b"")
    elif change.kind == "owner":
        local(commands.chown_command(root, path, change.uid, change.gid), b"")
    else:
        local(commands.write_command(root, path), change.new_content(before.content))
    assert read_state(local, root, path) == expected != before


def test_the_path_option_overrides_the_kubeadm_path_and_is_checked():
    change = node_technique("kubelet-anonymous-auth").node_change
    assert change.resolved_path(None) == "/var/lib/kubelet/config.yaml"
    assert change.resolved_path({"kirvis_node_path_kubelet_config": "/etc/kubelet/config.yaml"}) == \
        "/etc/kubelet/config.yaml"
    for bad in ("../etc/shadow", "/var/lib/../../etc/shadow", 7):
        with pytest.raises(ValueError):
            change.resolved_path({"kirvis_node_path_kubelet_config": bad})


@pytest.mark.parametrize("fields", [
    {"kind": "mode", "mode": "64x"}, {"kind": "mode", "mode": "644", "uid": 0}, {"kind": "owner", "uid": 0},
    {"kind": "flag", "flag": "--profiling", "value": True}, {"kind": "config", "key": "readOnlyPort"},
    {"kind": "chmod", "mode": "644"}, {"kind": "mode", "mode": "644", "component": "kube-proxy"},
])
def test_a_change_carries_exactly_its_own_well_formed_payload(fields):
    base = {"path": "/etc/kubernetes/admin.conf", "path_option": "kirvis_node_path_admin_conf",
            "component": None, "control_plane": True}
    with pytest.raises(ValueError):
        NodeChange(**{**base, **fields})


def test_a_content_change_on_a_document_of_the_wrong_kind_is_refused():
    change = node_technique("kubelet-always-allow").node_change
    with pytest.raises(ValueError, match="KubeletConfiguration"):
        change.new_content(manifest("kube-apiserver"))
    with pytest.raises(ValueError, match="command list"):
        node_technique("scheduler-profiling").node_change.new_content(KUBELET_CONFIG)


def test_the_unit_as_data_carries_the_change_and_the_check():
    summary = node_technique("kubelet-read-only-port").summary()
    assert summary["node_change"] == {"path": "/var/lib/kubelet/config.yaml",
                                      "path_option": "kirvis_node_path_kubelet_config", "kind": "config",
                                      "component": "kubelet", "control_plane": False, "key": "readOnlyPort",
                                      "value": 10255}
    assert summary["cis"] == {"benchmark": "cis-1.9", "id": "4.2.4", "targets": ["node"], "scored": False,
                              "remediation": "set readOnlyPort: 0 in /var/lib/kubelet/config.yaml and restart "
                                             "the kubelet", "trivy_check": "AVD-KCV-0082"}


def test_an_unscored_check_warns_that_kube_bench_cannot_confirm_it():
    unit = node_technique("apiserver-anonymous-auth")
    assert "as WARN" in unit.detection.note and "WARN" in remediation(unit, detector="kube-bench")
    assert "as WARN" not in node_technique("kubelet-anonymous-auth").detection.note


def test_remediation_is_the_cis_fix_on_the_node():
    unit = node_technique("kubelet-always-allow")
    fix = remediation(unit, "team-a")
    assert "'kubelet-always-allow'" in fix and "authorization.mode: Webhook" in fix and "CIS 4.2.2" in fix
    assert "Pod Security" in fix and "label" not in fix  # no namespace label fixes a node file
    missed = remediation(unit, detector="falco", within=60)
    assert "no detector rule" in missed and "CIS 4.2.2" in missed and "within 60 s" in missed


def test_the_docs_section_shows_the_carrier_and_the_check():
    text = "\n".join(_section(node_technique("apiserver-always-allow")))
    assert "--authorization-mode=AlwaysAllow on /etc/kubernetes/manifests/kube-apiserver.yaml" in text
    assert "`kirvis_node_path_apiserver_manifest`" in text and "restarts kube-apiserver" in text
    assert "- CIS check: 1.2.6 (cis-1.9, kube-bench `--targets master`); trivy check `AVD-KCV-0007`" in text


def test_an_unknown_node_technique_names_the_known_ones():
    with pytest.raises(ActivityFailed, match="not a node technique.*kubelet-anonymous-auth"):
        node_technique("privileged")
