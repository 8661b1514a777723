"""Gatekeeper CEL ConstraintTemplates and Constraints translated as Gatekeeper generates them, then enforced.

What is expected comes from Gatekeeper (open-policy-agent/gatekeeper pkg/drivers/k8scel/transform, its
make_vap_objects_test.go cases; frameworks crds.go): the policy `gatekeeper-<template>` with paramKind
`constraints.gatekeeper.sh/v1beta1` and the template's kind, every resource on CREATE and UPDATE, the template's
match conditions before Gatekeeper's four `gatekeeper_internal_match_*`, the variables `anyObject` and `params`
before the template's, failurePolicy Ignore unless the template says otherwise; the binding
`gatekeeper-<constraint>` to `gatekeeper-<lowercase kind>` with paramRef (the constraint, Allow when missing),
the constraint's labelSelector and namespaceSelector, deny -> [Deny], warn -> [Warn], dryrun -> [Audit]; the
CRD `<kind>.constraints.gatekeeper.sh` (v1beta1 stored, v1alpha1 served). The match conditions are then judged
by what they select in a sandbox: Gatekeeper's documented meaning of kinds, namespaces, excludedNamespaces
(with a leading or trailing `*`) and name.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoskirvis.rehearse.engines import translate
from chaoskirvis.rehearse.matrix import ManifestError
from chaoskirvis.sandbox.server import Sandbox, SandboxError

TEMPLATE = {
    "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "k8snohostpath"},
    "spec": {"crd": {"spec": {"names": {"kind": "K8sNoHostPath", "shortNames": ["nohp"]}}},
             "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": [
                 {"engine": "K8sNativeValidation", "source": {
                     "matchCondition": [{"name": "pods_only", "expression": "request.kind.kind == 'Pod'"}],
                     "variables": [{"name": "volumes", "expression": "variables.anyObject.spec.?volumes.orValue([])"}],
                     "validations": [{"expression": "variables.volumes.all(v, !has(v.hostPath) || "
                                                    "v.hostPath.path in variables.params.allowed)",
                                      "messageExpression": "'hostPath ' + variables.params.allowed.join(',')"}]}},
                 {"engine": "Rego", "source": {"rego": "package k8snohostpath\n"}}]}]}}


def constraint(constraint_name: str, action: str | None = None, **match: object) -> dict:
    """A K8sNoHostPath constraint with this spec.match (and allowed host path /var/log)."""
    spec: dict = {"match": match, "parameters": {"allowed": ["/var/log"]}}
    if action:
        spec["enforcementAction"] = action
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sNoHostPath",
            "metadata": {"name": constraint_name}, "spec": spec}


def generated(*docs: dict) -> tuple[dict[str, dict], list]:
    kept, skipped = translate([(Path("gk.yaml"), d) for d in docs])
    return {f"{d['kind']}/{d['metadata']['name']}": d for _, d in kept}, skipped


def test_the_template_becomes_gatekeepers_policy_and_crd() -> None:
    objects, skipped = generated(TEMPLATE)
    assert skipped == []
    policy = objects["ValidatingAdmissionPolicy/gatekeeper-k8snohostpath"]["spec"]
    assert policy["paramKind"] == {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sNoHostPath"}
    assert policy["matchConstraints"] == {"resourceRules": [
        {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["*"]}]}
    assert [c["name"] for c in policy["matchConditions"]] == [
        "pods_only", "gatekeeper_internal_match_excluded_namespaces", "gatekeeper_internal_match_namespaces",
        "gatekeeper_internal_match_name", "gatekeeper_internal_match_kinds"]
    assert [v["name"] for v in policy["variables"]] == ["anyObject", "params", "volumes"]
    assert policy["validations"] == TEMPLATE["spec"]["targets"][0]["code"][0]["source"]["validations"]
    assert policy["failurePolicy"] == "Ignore"  # Gatekeeper's default while the template sets none
    crd = objects["CustomResourceDefinition/k8snohostpath.constraints.gatekeeper.sh"]
    assert crd["spec"]["scope"] == "Cluster" and crd["spec"]["names"]["plural"] == "k8snohostpath"
    assert crd["spec"]["names"]["shortNames"] == ["nohp"]
    assert [(v["name"], v["storage"]) for v in crd["spec"]["versions"]] == [("v1beta1", True), ("v1alpha1", False)]


@pytest.mark.parametrize(("action", "expected"), [(None, ["Deny"]), ("deny", ["Deny"]), ("warn", ["Warn"]),
                                                  ("dryrun", ["Audit"])])
def test_each_constraint_becomes_a_binding_with_gatekeepers_actions(action: str | None, expected: list[str]) -> None:
    selected = constraint("no-host-path", action, labelSelector={"matchLabels": {"app": "web"}},
                          namespaceSelector={"matchLabels": {"tier": "pci"}})
    objects, _ = generated(TEMPLATE, selected)
    assert objects["ValidatingAdmissionPolicyBinding/gatekeeper-no-host-path"]["spec"] == {
        "policyName": "gatekeeper-k8snohostpath", "validationActions": expected,
        "paramRef": {"name": "no-host-path", "parameterNotFoundAction": "Allow"},
        "matchResources": {"objectSelector": {"matchLabels": {"app": "web"}},
                           "namespaceSelector": {"matchLabels": {"tier": "pci"}}}}
    assert objects["K8sNoHostPath/no-host-path"]["spec"] == selected["spec"]  # applied, the policy's param


def test_scoped_actions_take_the_vap_enforcement_point_and_otherwise_no_binding_is_generated() -> None:
    scoped = constraint("scoped", "scoped")
    scoped["spec"]["scopedEnforcementActions"] = [
        {"action": "warn", "enforcementPoints": [{"name": "vap.k8s.io"}]},
        {"action": "deny", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]},
        {"action": "dryrun", "enforcementPoints": [{"name": "*"}]}]
    objects, _ = generated(TEMPLATE, scoped)
    assert objects["ValidatingAdmissionPolicyBinding/gatekeeper-scoped"]["spec"]["validationActions"] == \
        ["Warn", "Audit"]
    scoped["spec"]["scopedEnforcementActions"] = scoped["spec"]["scopedEnforcementActions"][1:2]
    objects, skipped = generated(TEMPLATE, scoped)
    assert "ValidatingAdmissionPolicyBinding/gatekeeper-scoped" not in objects
    assert [(k, n) for k, n, _ in skipped] == [("K8sNoHostPath", "scoped (gk.yaml)")]
    assert "vap.k8s.io" in skipped[0][2]


def test_what_gatekeeper_generates_nothing_from_is_listed_with_why() -> None:
    rego = copy.deepcopy(TEMPLATE)
    rego["spec"]["targets"][0]["code"] = rego["spec"]["targets"][0]["code"][1:]
    no_vap = copy.deepcopy(TEMPLATE)
    no_vap["spec"]["targets"][0]["code"][0]["source"]["generateVAP"] = False
    orphan = dict(constraint("orphan"), kind="K8sNoSuchTemplate")
    for template, reason in ((rego, "only Rego"), (no_vap, "generateVAP is false")):
        objects, skipped = generated(template, constraint("no-host-path"), orphan)
        assert objects == {}
        assert [(k, n.split()[0]) for k, n, _ in skipped] == [
            ("ConstraintTemplate", "k8snohostpath"), ("K8sNoHostPath", "no-host-path"), ("K8sNoSuchTemplate", "orphan")]
        assert reason in skipped[0][2] and reason in skipped[1][2]
        assert "no ConstraintTemplate for kind K8sNoSuchTemplate" in skipped[2][2]


@pytest.mark.parametrize(("change", "named"), [
    (lambda t, c: t["metadata"].update(name="nohostpath"), "must be the lowercase"),
    (lambda t, c: t["spec"]["targets"][0]["code"][0]["source"]["variables"].append(
        {"name": "params", "expression": "1"}), "'params' is reserved"),
    (lambda t, c: t["spec"]["targets"][0]["code"][0]["source"].update(failurePolicy="Fial"), "'Fial'"),
    (lambda t, c: c["spec"].update(enforcementAction="deyn"), "'deyn'"),
    (lambda t, c: c.update(apiVersion="constraints.gatekeeper.sh/v2"), "constraints.gatekeeper.sh/v2 is not served"),
])
def test_what_gatekeeper_refuses_is_an_error_naming_it(change, named: str) -> None:
    template, selected = copy.deepcopy(TEMPLATE), constraint("no-host-path")
    change(template, selected)
    with pytest.raises(ManifestError, match=named):
        translate([(Path("gk.yaml"), template), (Path("gk.yaml"), selected)])


@pytest.fixture(scope="module")
def enforced() -> Iterator[Sandbox]:
    """A sandbox with what Gatekeeper generates from TEMPLATE and three constraints: `team-*` except team-b2
    (deny), Pods named `web-*` only (deny), and Services only (deny; the template's pods_only condition then
    never holds)."""
    objects, _ = generated(
        TEMPLATE, constraint("teams", namespaces=["team-*"], excludedNamespaces=["*-b2"]),
        constraint("web", name="web-*", namespaces=["ops"], kinds=[{"apiGroups": [""], "kinds": ["Pod"]}]),
        constraint("services", namespaces=["svc"], kinds=[{"apiGroups": [""], "kinds": ["Service"]}]))
    order = ["Namespace", "CustomResourceDefinition", "ValidatingAdmissionPolicy", "K8sNoHostPath"]
    with Sandbox() as sandbox:
        for name in ("team-a", "team-b2", "ops", "svc", "other"):
            sandbox.apply_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        for obj in sorted(objects.values(), key=lambda o: order.index(o["kind"]) if o["kind"] in order else 9):
            sandbox.apply_object(obj)
        yield sandbox


def host_path_pod(namespace: str, name: str = "probe", path: str = "/") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": {
        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
        "volumes": [{"name": "host", "hostPath": {"path": path}}]}}


def admitted(sandbox: Sandbox, pod: dict) -> bool:
    try:
        sandbox.apply_object(pod)
    except SandboxError as error:
        assert "ValidatingAdmissionPolicy 'gatekeeper-k8snohostpath'" in str(error), error
        return False
    return True


@pytest.mark.parametrize(("namespace", "name", "path", "expected"), [
    ("team-a", "probe", "/", False),         # namespaces team-* (constraint teams)
    ("team-a", "probe-2", "/var/log", True),  # the constraint's parameters allow this path
    ("team-b2", "probe", "/", True),          # excludedNamespaces *-b2
    ("ops", "web-1", "/", False),             # name web-* in ops (constraint web)
    ("ops", "api-1", "/", True),              # another name
    ("svc", "probe", "/", True),              # constraint services matches Services only
    ("other", "probe", "/", True),            # no constraint selects it
])
def test_the_generated_match_conditions_select_what_the_constraint_names(
        enforced: Sandbox, namespace: str, name: str, path: str, expected: bool) -> None:
    assert admitted(enforced, host_path_pod(namespace, name, path)) is expected


def test_gatekeepers_mutation_and_configuration_objects_are_listed_not_applied() -> None:
    config = {"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
              "metadata": {"name": "config", "namespace": "gatekeeper-system"},
              "spec": {"match": [{"excludedNamespaces": ["kube-*"], "processes": ["*"]}]}}
    mutation = {"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "ModifySet", "metadata": {"name": "args"}}
    objects, skipped = generated(config, mutation)
    assert objects == {}
    assert [(k, n) for k, n, _ in skipped] == [("Config", "config (gk.yaml)"), ("ModifySet", "args (gk.yaml)")]
    assert all("mutation, external data and configuration objects are not rehearsed" in r for _, _, r in skipped)
