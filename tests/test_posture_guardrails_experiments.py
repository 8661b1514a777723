"""The four guardrail posture experiments of experiments/posture/ with the real `chaos` CLI: each holds against
scenarios/guardrails-guarded.yaml, deviates against scenarios/guardrails-open.yaml, and is an error when the
runner cannot read what it judges.

Each scenario gets a sandbox of its own (the session's holds both scenarios and every other test's objects).
A fresh sandbox holds what a new cluster holds; its `default` namespace has no Pod Security label (as on
any cluster), which the guarded runs exclude by the experiment's `exclude_namespaces`, as an operator
would name a known exception in a --var-file.
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskirvis.sandbox.server import Sandbox
from chaosrun import BIN, EXPERIMENTS, ROOT, ChaosRun, chaos_env

POSTURE = EXPERIMENTS / "posture"
PSA = POSTURE / "namespaces-enforce-pod-security.yaml"
DEFAULT_DENY = POSTURE / "namespaces-have-default-deny.yaml"
WEBHOOKS = POSTURE / "security-webhooks-fail-closed.yaml"
BINDINGS = POSTURE / "security-policy-bindings-deny.yaml"
SYSTEM_AND_DEFAULT = ["kube-system", "kube-public", "kube-node-lease", "default"]


def cluster(scenario: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    with Sandbox() as sandbox:
        sandbox.apply(ROOT / "scenarios" / scenario)
        yield sandbox, sandbox.write_kubeconfig(tmp_path_factory.mktemp("guardrails") / "kubeconfig")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[tuple[Sandbox, Path]]:
    yield from cluster("guardrails-guarded.yaml", tmp_path_factory)


@pytest.fixture(scope="module")
def weakened(tmp_path_factory) -> Iterator[tuple[Sandbox, Path]]:
    yield from cluster("guardrails-open.yaml", tmp_path_factory)


def run(experiment: Path, workdir: Path, kubeconfig: Path, configuration: dict[str, Any] | None = None) -> ChaosRun:
    """`chaos run` of `experiment`, its `configuration` given in a --var-file."""
    workdir.mkdir(parents=True, exist_ok=True)
    var_file = workdir / "vars.yaml"
    var_file.write_text(yaml.safe_dump({"configuration": configuration or {}}))
    journal = workdir / "journal.json"
    done = subprocess.run([str(BIN / "chaos"), "--log-file", str(workdir / "chaos.log"), "run", str(experiment),
                           "--journal-path", str(journal), "--var-file", str(var_file)],
                          cwd=workdir, env=chaos_env(kubeconfig), capture_output=True, text=True, timeout=120)
    return ChaosRun(done.returncode, json.loads(journal.read_text()), done.stdout + done.stderr)


def output(done: ChaosRun) -> dict[str, Any]:
    (probe,) = done.journal["steady_states"]["after"]["probes"]
    return probe["output"]


def held(done: ChaosRun) -> bool:
    return ((done.exit_code, done.journal["status"], done.journal["deviated"]) == (0, "completed", False)
            and done.journal["chaoskirvis"]["verdict"]["result"] == "held")


def weakness(done: ChaosRun) -> bool:
    return ((done.exit_code, done.journal["deviated"]) == (1, True)
            and done.journal["chaoskirvis"]["verdict"]["result"] == "weakness")


def offenders(done: ChaosRun) -> set[tuple[str, str]]:
    return {(f["kind"], f["name"]) for f in output(done)["findings"]}


def test_pod_security_holds_when_guarded_and_deviates_on_privileged_and_unlabelled_namespaces(guarded, weakened,
                                                                                                 tmp_path):
    kept = run(PSA, tmp_path / "guarded", guarded[1], {"exclude_namespaces": SYSTEM_AND_DEFAULT})
    as_shipped = run(PSA, tmp_path / "shipped", guarded[1])
    weak = run(PSA, tmp_path / "open", weakened[1], {"exclude_namespaces": SYSTEM_AND_DEFAULT})

    assert held(kept), kept.output
    assert kept.journal["chaoskirvis"]["verdict"]["reason"] == "1 posture check(s) held"
    assert [(a["name"], a["allowed_as"]) for a in output(kept)["allowed"] if a["name"].startswith("guardrails")] == [
        ("guardrails-guarded", "pod-security.kubernetes.io/enforce=baseline")]
    # the shipped exclusions keep `default` in: a namespace without a label enforces the cluster's default
    assert weakness(as_shipped) and offenders(as_shipped) == {("Namespace", "default")}, as_shipped.output
    assert weakness(weak), weak.output
    assert offenders(weak) == {("Namespace", "guardrails-open"), ("Namespace", "guardrails-open-unlabelled")}
    assert weak.journal["chaoskirvis"]["verdict"]["reason"] == (
        "posture check namespaces-enforce-pod-security violated: 2 finding(s)")
    assert "Namespace guardrails-open: enforces privileged, less than baseline" in weak.output


def test_default_deny_holds_when_guarded_and_deviates_on_an_allow_all_rule_and_a_missing_policy(guarded, weakened,
                                                                                                tmp_path):
    kept = run(DEFAULT_DENY, tmp_path / "guarded", guarded[1])
    weak = run(DEFAULT_DENY, tmp_path / "open", weakened[1])

    assert held(kept), kept.output
    assert output(kept)["allowed"] == [{"kind": "Namespace", "name": "guardrails-guarded",
                                        "default_deny": {"Ingress": "default-deny-all", "Egress": "default-deny-all"}}]
    assert weakness(weak), weak.output
    by_name = {f["name"]: f for f in output(weak)["findings"]}
    assert set(by_name) == {"guardrails-open", "guardrails-open-unlabelled"}
    # the open namespace's policy isolates egress; its ingress rule {} allows every peer on every port
    assert by_name["guardrails-open"]["default_deny"] == {"Egress": "default-deny-all"}
    assert by_name["guardrails-open"]["policies"] == [{
        "name": "default-deny-all",
        "why_not": "Ingress: it allows ingress through 1 rule(s); rule 0 allows every peer on every port"}]
    assert by_name["guardrails-open-unlabelled"]["why"] == (
        "no NetworkPolicy denies ingress and egress by default (the namespace has no NetworkPolicy)")


def test_default_deny_with_no_namespace_selected_is_an_error_not_a_pass(guarded, tmp_path):
    done = run(DEFAULT_DENY, tmp_path, guarded[1], {"namespace_selector": "chaoskirvis.io/default-deny=nowhere"})

    assert (done.exit_code, done.journal["status"]) == (1, "failed"), done.output
    (probe,) = done.journal["steady_states"]["after"]["probes"]
    assert "no namespace matches the label selector 'chaoskirvis.io/default-deny=nowhere'" in probe["exception"][-1]
    assert done.journal["chaoskirvis"]["verdict"]["result"] == "error"


def test_webhooks_hold_when_they_fail_closed_and_deviate_when_they_fail_open_or_are_missing(guarded, weakened,
                                                                                            tmp_path):
    kept = run(WEBHOOKS, tmp_path / "guarded", guarded[1])
    named = run(WEBHOOKS, tmp_path / "named", guarded[1], {"security_webhooks": ["guardrails-*"]})
    missing = run(WEBHOOKS, tmp_path / "missing", guarded[1], {"security_webhooks": ["guardrails-*", "kyverno-*"]})
    weak = run(WEBHOOKS, tmp_path / "open", weakened[1])

    assert held(kept) and held(named), kept.output + named.output
    # the mutating webhook leaves failurePolicy to its default, Fail (stored unset, or set by defaulting)
    assert {(a["kind"], a["allowed_as"].removesuffix(" (the default)")) for a in output(kept)["allowed"]} == {
        ("ValidatingWebhookConfiguration", "failurePolicy Fail"),
        ("MutatingWebhookConfiguration", "failurePolicy Fail")}
    assert weakness(missing) and output(missing)["findings"] == [{
        "kind": "ValidatingWebhookConfiguration or MutatingWebhookConfiguration", "name": "kyverno-*",
        "why": "no ValidatingWebhookConfiguration or MutatingWebhookConfiguration is named like 'kyverno-*': the "
               "security webhook is missing"}], missing.output
    assert weakness(weak), weak.output
    assert {(f["kind"], f["name"], f["webhook"], f["failurePolicy"]) for f in output(weak)["findings"]} == {
        ("ValidatingWebhookConfiguration", "guardrails-open-policy-engine", "validate.guardrails-open.chaoskirvis.io",
         "Ignore"),
        ("MutatingWebhookConfiguration", "guardrails-open-policy-engine", "mutate.guardrails-open.chaoskirvis.io",
         "Ignore")}


def test_policy_bindings_hold_with_deny_and_deviate_on_warn_audit_and_an_unbound_policy(guarded, weakened, tmp_path):
    kept = run(BINDINGS, tmp_path / "guarded", guarded[1], {"security_policies": ["guardrails-*"]})
    weak = run(BINDINGS, tmp_path / "open", weakened[1])
    named = run(BINDINGS, tmp_path / "named", weakened[1], {"security_policies": ["guardrails-open-*"]})

    assert held(kept), kept.output
    assert [(a["name"], a["validationActions"]) for a in output(kept)["allowed"]] == [
        ("guardrails-guarded-deny-host-network", ["Deny", "Audit"])]
    # every binding: the [Warn, Audit] one; the unbound policy counts only when policies are named
    assert weakness(weak) and offenders(weak) == {
        ("ValidatingAdmissionPolicyBinding", "guardrails-open-deny-host-network")}, weak.output
    assert weakness(named) and offenders(named) == {
        ("ValidatingAdmissionPolicyBinding", "guardrails-open-deny-host-network"),
        ("ValidatingAdmissionPolicy", "guardrails-open-deny-host-pid")}, named.output


@pytest.mark.parametrize("experiment, refused", [(PSA, "namespaces"), (WEBHOOKS, "mutatingwebhookconfigurations"),
                                                 (BINDINGS, "validatingadmissionpolicybindings")],
                         ids=lambda value: getattr(value, "stem", value))
def test_a_runner_that_may_not_list_what_it_judges_is_an_error_not_a_pass(guarded, tmp_path, experiment, refused):
    sandbox, _ = guarded
    auditor = f"auditor-{experiment.stem}"
    sandbox.add_user(auditor)  # authenticated, and granted nothing: every list is refused

    done = run(experiment, tmp_path, sandbox.write_kubeconfig(tmp_path / "auditor.kubeconfig", user=auditor))

    assert (done.exit_code, done.journal["status"]) == (1, "failed"), done.output
    (probe,) = done.journal["steady_states"]["after"]["probes"]
    assert "cannot read the guardrails: the runner may not list" in probe["exception"][-1]
    assert f'User \\"{auditor}\\" cannot list resource \\"{refused}\\"' in json.dumps(probe["exception"][-1])
    assert done.journal["chaoskirvis"]["verdict"]["result"] == "error"
