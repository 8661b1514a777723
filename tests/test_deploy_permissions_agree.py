"""The two permission tables cannot drift apart silently: for every shipped experiment `kirvis deploy` supports,
each verb of each rule it generates (the experiment's activities and the cleanup step's) is one the family
table (chaoskirvis/permissions.py, README's) grants for that resource at that scope. A namespaced rule (a
Role) is covered by a family rule in the namespace or cluster-wide; a cluster-wide rule (a ClusterRole) only
by a cluster-wide one. `resourceNames` only narrows a deploy rule, so it is not compared."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from chaoskirvis.deploy.permissions import DeployError
from chaoskirvis.deploy.render import Options, load_experiments, render
from chaoskirvis.permissions import CLUSTER, PERMISSIONS
from chaosrun import EXPERIMENTS
from test_deploy_render import DEFAULT_SELECTION


def supported() -> list[Path]:
    """The shipped experiments `kirvis deploy` renders (the others it refuses, exit 2: permissions it does not
    compute)."""
    found = []
    for path in sorted(p for p in EXPERIMENTS.rglob("*") if p.suffix in (".yaml", ".yml", ".json")):
        try:
            render(load_experiments([path]), Options())
        except DeployError:
            continue
        found.append(path)
    return found


SUPPORTED = supported()


def uncovered(manifests: list[dict]) -> list[str]:
    """Each (rule, verb) of the rendered Roles and ClusterRoles that no family-table rule grants."""
    missing = []
    for manifest in manifests:
        if manifest["kind"] not in ("Role", "ClusterRole"):
            continue
        namespaced = manifest["kind"] == "Role"
        for rule in manifest["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        if not any(family.group == group and family.resource == resource and verb in family.verbs
                                   and (namespaced or family.scope == CLUSTER)
                                   for rules in PERMISSIONS.values() for family in rules):
                            where = manifest["metadata"].get("namespace") or "the cluster"
                            missing.append(f"{manifest['kind']} in {where}: {verb} {resource}"
                                           f"{'.' + group if group else ''}")
    return missing


def test_deploy_supports_the_default_selection_and_more():
    assert set(DEFAULT_SELECTION) <= set(SUPPORTED) and len(SUPPORTED) > len(DEFAULT_SELECTION)


def test_every_shipped_experiment_deploy_does_not_support_is_refused_on_purpose():
    """35 of the 54 deploy (every blocking, polling-detection, posture and node experiment, and the guardrail one
    the runner makes itself); each other is refused for a reason docs/deploy.md gives (impersonation, bind, the
    in-pod receiver, chaostoolkit-kubernetes), none for an activity deploy merely does not know."""
    shipped = sorted(p for p in EXPERIMENTS.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    assert (len(SUPPORTED), len(shipped)) == (35, 54)
    for path in sorted(set(shipped) - set(SUPPORTED)):
        with pytest.raises(DeployError, match="kirvis deploy does not grant"):
            render(load_experiments([path]), Options())
    families = {path.relative_to(EXPERIMENTS).parts[0] for path in SUPPORTED}
    assert {"posture", "nodes", "guardrails", "privileged-pod-detected-by-falco.yaml",
            "terminal-shell-detected-by-falco.yaml", "privileged-pod-policy-violation-event.yaml",
            "privileged-pod-alerted-in-alertmanager.yaml"} <= families


@pytest.mark.parametrize("path", SUPPORTED, ids=lambda p: p.stem)
def test_every_rule_deploy_generates_is_in_the_family_table(path):
    assert uncovered(render(load_experiments([path]), Options())) == []


def test_a_cluster_scoped_guardrail_rule_is_in_the_family_table(tmp_path):
    """The ClusterRole case no shipped experiment deploy supports makes: a ValidatingAdmissionPolicyBinding's
    get/patch/update and, for one a technique deletes, its put-back create."""
    experiment = yaml.safe_load((EXPERIMENTS / "guardrails/pod-security-labels-guarded-by-policy.yaml").read_text())
    experiment["method"] = [{"type": "action", "name": f"binding-{technique}", "provider": {
        "type": "python", "module": "chaoskirvis.guardrails.actions", "func": "tamper_guardrail",
        "arguments": {"technique": technique, "namespace": "gr-team", "mode": "change",
                      "name": "gr-team-deny-host-network"}}}
        for technique in ("vap-binding-not-denying", "vap-binding-deleted")]
    path = tmp_path / "binding.yaml"
    path.write_text(yaml.safe_dump(experiment))
    manifests = render(load_experiments([path]), Options())
    assert {m["kind"] for m in manifests} >= {"ClusterRole", "Role"}
    assert uncovered(manifests) == []


def test_events_of_one_namespace_are_a_role_the_family_table_covers(tmp_path):
    """The family table grants Events cluster-wide; deploy narrows them to a Role where the probe names one."""
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-policy-violation-event.yaml").read_text())
    probe = next(a for a in experiment["method"] if a["provider"]["func"] == "alert_in_kubernetes_events")
    probe["provider"]["arguments"]["namespace"] = "${namespace}"
    path = tmp_path / "events.yaml"
    path.write_text(yaml.safe_dump(experiment))
    manifests = render(load_experiments([path]), Options())
    assert "ClusterRole" not in {m["kind"] for m in manifests}
    (role,) = [m for m in manifests if m["kind"] == "Role" and m["metadata"]["namespace"] == "team-privileged"]
    assert {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]} in role["rules"]
    assert uncovered(manifests) == []


def test_a_rule_the_family_table_lacks_is_named():
    """The check can fail: a verb the table grants no one, and a namespaced grant made cluster-wide."""
    manifests = render(load_experiments([DEFAULT_SELECTION[0]]), Options())
    forged = copy.deepcopy(manifests)
    role = next(m for m in forged if m["kind"] == "Role")
    role["rules"].append({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["update"]})
    forged.append({"kind": "ClusterRole", "metadata": {"name": "x"},
                   "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]})
    assert uncovered(forged) == [f"Role in {role['metadata']['namespace']}: update configmaps",
                                 "ClusterRole in the cluster: create pods/exec"]


def test_the_kept_journals_rule_is_in_the_family_table():
    manifests = render(load_experiments([DEFAULT_SELECTION[0]]), Options(keep_journals_in="kirvis-system", keep=3))
    keep = [m for m in manifests if m["kind"] == "Role" and m["metadata"]["namespace"] == "kirvis-system"]
    assert keep and uncovered(keep) == [] and uncovered(manifests) == []
    family = PERMISSIONS["`kirvis run --keep-journals-in NS`"]
    assert {verb for rule in keep for r in rule["rules"] for verb in r["verbs"]} == set(family[0].verbs)
