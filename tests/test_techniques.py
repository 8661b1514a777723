"""The catalog: well-formed units, valid manifests, and Pod Security verdicts as the standards say."""
from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.techniques import CATALOG
from chaoskirvis.techniques.docs import catalog_markdown
from chaoskirvis.techniques.guardrails import GUARDRAIL_TARGETS
from chaoskirvis.techniques.manifests import CONTROLLERS, build_manifest
from chaoskirvis.ledger.probes import injections_blocked
from chaoskirvis.workload.actions import inject_risky_pod, inject_risky_workload
from chaoskirvis.workload.probes import risky_pod_admission, risky_pod_is_denied, techniques_admission

WORKLOAD = [t for t in CATALOG.values() if t.target == "pod"]
KUBERNETES_VERSION = "1.32"




@pytest.mark.parametrize("technique", CATALOG.values(), ids=lambda t: t.id)
def test_unit_describes_itself(technique):
    assert re.fullmatch(r"[a-z][a-z0-9-]+", technique.id)
    assert technique.title and technique.injects and technique.blocked_by and technique.undo
    assert technique.attack and all(re.fullmatch(r"T\d{4}(\.\d{3})?", a) for a in technique.attack)
    assert technique.family in ("workload", "exposure", "rbac", "runtime", "guardrail", "node")
    assert (technique.target == "exec") == (technique.command is not None)
    assert (technique.target == "request") == (technique.request is not None)
    if technique.family == "guardrail":  # apply None: the unit deletes its target (techniques/guardrails.py)
        assert technique.target in GUARDRAIL_TARGETS and not technique.pod_security_level
    elif technique.family == "node":  # a file on a node, no manifest: the change and the CIS check it fails
        assert technique.target == "node" and technique.apply is None and technique.node_change and technique.cis
    else:
        assert (technique.target not in ("exec", "request")) == (technique.apply is not None)
    assert technique.pod_security_level in (None, "baseline", "restricted")
    assert bool(technique.pod_security_checks) == bool(technique.pod_security_level)


@pytest.mark.parametrize("technique", [t for t in CATALOG.values()
                                       if t.target not in ("exec", "request", "node") and t.family != "guardrail"],
                         ids=lambda t: t.id)
def test_manifest_is_valid_kubernetes(technique):
    options = {"port": 31234} if "port" in technique.options else None
    _, manifest = build_manifest([technique], namespace="team-a", run_id="r0000000000", options=options)
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_controller_manifests_are_valid_kubernetes(controller):
    _, manifest = build_manifest([CATALOG["privileged"], CATALOG["host-pid"]], namespace="team-a",
                                 run_id="r0000000000", controller=controller)
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def expected_verdict(level_of_technique: str | None, enforce: str) -> str:
    order = {"privileged": 0, "baseline": 1, "restricted": 2}
    if level_of_technique is None:
        return "allowed"
    return "blocked" if order[enforce] >= order[level_of_technique] else "allowed"


@pytest.mark.parametrize("enforce", ["privileged", "baseline", "restricted"])
def test_pod_security_verdict_of_every_workload_technique(make_namespace, run, enforce):
    namespace = make_namespace(enforce=enforce)
    result = techniques_admission(namespace, [t.id for t in WORKLOAD], options={"port": 31234}, **run)

    verdicts = {technique: outcome["outcome"] for technique, outcome in result["outcomes"].items()}
    assert verdicts == {t.id: expected_verdict(t.pod_security_level, enforce) for t in WORKLOAD}
    for technique in WORKLOAD:
        outcome = result["outcomes"][technique.id]
        if outcome["outcome"] == "blocked":
            assert outcome["answered_by"] == "PodSecurity"
            assert any(f"{check} (" in outcome["message"] for check in technique.pod_security_checks), outcome
            assert f'"{enforce}:latest"' in outcome["message"]


def test_the_base_pod_alone_is_restricted_compliant(make_namespace, run):
    namespace = make_namespace(enforce="restricted")
    outcome = risky_pod_admission(namespace, ["no-resource-limits"], **run)
    assert outcome["outcome"] == "allowed" and outcome["warnings"] == []


def test_techniques_combine_in_one_pod(make_namespace, run):
    namespace = make_namespace(enforce="baseline")
    outcome = risky_pod_admission(namespace, ["privileged", "host-pid", "host-path"], **run)
    assert outcome["outcome"] == "blocked"
    for check in ("host namespaces (", "hostPath volumes (", "privileged ("):
        assert check in outcome["message"]
    assert outcome["techniques"] == ["privileged", "host-pid", "host-path"]


def test_technique_options_are_used_and_unknown_ones_refused(make_namespace, run):
    namespace = make_namespace(enforce="baseline")
    _, pod = build_manifest([CATALOG["host-path"]], namespace=namespace, run_id="r0", options={"path": "/etc"})
    assert pod["spec"]["volumes"] == [{"name": "kirvis-host", "hostPath": {"path": "/etc"}}]
    default_caps = risky_pod_admission(namespace, ["added-capabilities"], options={"capabilities": ["CHOWN"]}, **run)
    assert default_caps["outcome"] == "allowed"
    with pytest.raises(Exception, match="unknown option"):
        risky_pod_admission(namespace, ["host-path"], options={"pth": "/etc"}, **run)


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_controllers_are_warned_and_their_pods_judged(make_namespace, run, controller):
    enforcing = make_namespace(enforce="baseline", warn="baseline")
    outcome = inject_risky_workload(enforcing, ["privileged"], controller=controller, **run)
    assert outcome["kind"] == controller
    assert any('would violate PodSecurity "baseline:latest": privileged' in w for w in outcome["warnings"])
    assert outcome["outcome"] == "blocked" and outcome["answered_by"] == "PodSecurity (its pods)"
    open_namespace = make_namespace(enforce="privileged")
    assert inject_risky_workload(open_namespace, ["privileged"], controller=controller, **run)["outcome"] == "allowed"


def test_catalog_page_is_generated_from_the_units():
    page = Path(__file__).resolve().parents[1] / "docs" / "techniques.md"
    assert page.read_text() == catalog_markdown(), "docs/techniques.md is stale: run kirvis catalog --markdown"
    for technique in CATALOG.values():
        assert f"### {technique.id}\n" in page.read_text()


def test_an_invalid_request_is_never_counted_as_blocked(make_namespace, run):
    namespace = make_namespace(enforce="baseline")
    with pytest.raises(ActivityFailed, match=r"422 Invalid.*the request is invalid, so it tested no control"):
        inject_risky_pod(namespace, ["privileged"], image="", **run)
    with pytest.raises(ActivityFailed, match=r"422 Invalid"):
        risky_pod_admission(namespace, ["host-pid"], image="", **run)
    with pytest.raises(ActivityFailed, match=r"2 attempt\(s\) could not be carried out, so nothing was tested"):
        injections_blocked(**run)  # an error (the run fails), neither held nor a weakness


def test_risky_pod_is_denied_answers_yes_or_no(make_namespace, run):
    assert risky_pod_is_denied(make_namespace(enforce="baseline"), ["privileged"], **run) is True
    assert risky_pod_is_denied(make_namespace(enforce="privileged"), ["privileged"], **run) is False
