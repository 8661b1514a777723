"""The guardrail posture probes judge Pod Security labels, NetworkPolicies, admission webhooks and VAP bindings as
the API server and its admission plugins read them.

The probes run against a sandbox of this module's own (they judge the whole cluster; the session's sandbox
holds every other test's objects), where each test makes uniquely named objects through the API and looks
at what the probe says about those. Objects the API server refuses to store (an invalid enforce label, a
NetworkPolicy whose policyTypes were never defaulted, a binding with Deny and Warn) are judged by the model
(`chaoskirvis.posture.guardrails`), next to the case the sandbox can hold.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import kube_api
from chaoskirvis.posture import guardrails
from chaoskirvis.posture.probes import (LIST_PAGE, namespaces_enforce_pod_security, namespaces_have_default_deny,
                                        security_policy_bindings_deny, security_webhooks_fail_closed)
from chaoskirvis.sandbox.server import Sandbox, SandboxError

ADMISSION = "admissionregistration.k8s.io/v1"
ENFORCE = "pod-security.kubernetes.io/enforce"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    with Sandbox() as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path_factory.mktemp("guardrails") / "kubeconfig")
        yield sandbox, {"KUBECONFIG": str(kubeconfig)}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def apply(sandbox: Sandbox, *documents: dict[str, Any]) -> list[dict[str, Any]]:
    return sandbox.apply(yaml.safe_dump_all(documents))


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def about(answer: dict[str, Any], names: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """{name: why} of the findings and {name: allowed_as} of the allowed, for `names` only."""
    return ({f["name"]: f["why"] for f in answer["findings"] if f["name"] in names},
            {a["name"]: a["allowed_as"] for a in answer["allowed"] if a["name"] in names})


# --- Pod Security ---------------------------------------------------------------------------------------------

def test_namespaces_below_baseline_are_findings_and_those_at_or_above_it_are_allowed(cluster):
    sandbox, secrets = cluster
    names = {level: unique(level) for level in ("restricted", "baseline", "privileged")}
    unlabelled = unique("unlabelled")
    apply(sandbox, *(namespace(name, **{ENFORCE: level}) for level, name in names.items()), namespace(unlabelled))

    answer = namespaces_enforce_pod_security(secrets=secrets)
    stricter = namespaces_enforce_pod_security(minimum_level="restricted", secrets=secrets)

    findings, allowed = about(answer, {*names.values(), unlabelled})
    assert (answer["check"], answer["posture"], answer["ok"]) == ("namespaces-enforce-pod-security", "violated", False)
    assert findings == {
        names["privileged"]: f"enforces privileged, less than baseline ({ENFORCE}=privileged)",
        unlabelled: f"enforces privileged, less than baseline (no {ENFORCE} label: the cluster's default, privileged, "
                    "applies)"}
    assert allowed == {names["restricted"]: f"{ENFORCE}=restricted", names["baseline"]: f"{ENFORCE}=baseline"}
    assert {a["name"]: a["allowed_as"] for a in answer["allowed"] if a["name"].startswith("kube-")} == {
        "kube-system": "excluded by name", "kube-public": "excluded by name", "kube-node-lease": "excluded by name"}
    assert set(about(stricter, set(names.values()))[0]) == {names["baseline"], names["privileged"]}


def test_an_invalid_enforce_value_is_enforced_as_restricted_as_kube_apiserver_does():
    # pod-security-admission api/helpers.go PolicyToEvaluate: a level ParseLevel rejects (levels are exact and
    # case-sensitive) is enforced as LevelRestricted; an absent label takes the AdmissionConfiguration's default.
    listed = [namespace("typo", **{ENFORCE: "Baseline"}), namespace("strict", **{ENFORCE: "strict"}),
              namespace("empty", **{ENFORCE: ""}), namespace("plain")]

    findings, allowed = guardrails.pod_security_offenders(listed, "restricted", [], set())

    assert [f["name"] for f in findings] == ["plain"]
    assert {a["name"]: a["level"] for a in allowed} == {"typo": "restricted", "strict": "restricted",
                                                       "empty": "restricted"}
    assert allowed[0]["allowed_as"] == (f"{ENFORCE}='Baseline' is no level (privileged, baseline, restricted): Pod "
                                        "Security enforces restricted, as kube-apiserver does for an invalid value")


def test_the_sandbox_refuses_an_invalid_enforce_value_on_a_new_namespace_as_kube_apiserver_does(cluster):
    # PodSecurity's ValidateNamespace requires valid labels on create: such a label survives only from before
    # the plugin was enabled, which is why the model judges it above.
    sandbox, _ = cluster
    with pytest.raises(SandboxError, match=r'pod-security.kubernetes.io/enforce\]: Invalid value: "Baseline"'):
        apply(sandbox, namespace(unique("typo"), **{ENFORCE: "Baseline"}))


def test_namespaces_are_excluded_by_glob_and_by_label_selector_and_the_system_ones_only_by_default(cluster):
    sandbox, secrets = cluster
    team, exempt, judged = unique("team"), unique("exempt"), unique("judged")
    apply(sandbox, namespace(team), namespace(exempt, **{"example.com/psa-exempt": "true"}), namespace(judged))

    answer = namespaces_enforce_pod_security(exclude_namespaces=["team-*", "kube-*"],
                                             exclude_selector="example.com/psa-exempt=true", secrets=secrets)
    replaced = namespaces_enforce_pod_security(exclude_namespaces=[team], secrets=secrets)

    findings, allowed = about(answer, {team, exempt, judged})
    assert set(findings) == {judged}
    assert allowed == {team: "excluded by name", exempt: "excluded by label selector"}
    # a list given replaces the default: kube-system is judged again (it has no label here)
    assert "kube-system" in about(replaced, {"kube-system"})[0]


def test_an_unlabelled_namespace_holds_when_the_cluster_default_enforces_baseline(cluster):
    sandbox, secrets = cluster
    plain = unique("plain")
    apply(sandbox, namespace(plain))

    answer = namespaces_enforce_pod_security(cluster_default_level="baseline", secrets=secrets)

    assert about(answer, {plain}) == ({}, {plain: f"no {ENFORCE} label: the cluster's default, baseline, applies"})


def test_a_bad_argument_or_selector_is_an_error_naming_it(cluster):
    _, secrets = cluster
    with pytest.raises(ActivityFailed, match="minimum_level must be baseline or restricted, got 'privileged'"):
        namespaces_enforce_pod_security(minimum_level="privileged", secrets=secrets)
    with pytest.raises(ActivityFailed, match="cluster_default_level must be privileged, baseline or restricted"):
        namespaces_enforce_pod_security(cluster_default_level="Baseline", secrets=secrets)
    with pytest.raises(ActivityFailed,
                       match=r"listing failed \(namespaces with labelSelector 'a b c': 400 BadRequest: unable to "):
        namespaces_enforce_pod_security(exclude_selector="a b c", secrets=secrets)


def test_every_page_of_namespaces_is_read(tmp_path):
    # kube-apiserver answers a list with `limit` in pages, each with metadata.continue until the last.
    with Sandbox() as sandbox:
        secrets = {"KUBECONFIG": str(sandbox.write_kubeconfig(tmp_path / "kubeconfig"))}
        names = [f"page-{index:04d}" for index in range(LIST_PAGE + 20)]
        api = kube_api(secrets=secrets)
        for name in names:
            api.create("/api/v1/namespaces", namespace(name, **({ENFORCE: "baseline"} if name != names[-1] else {})))

        answer = namespaces_enforce_pod_security(exclude_namespaces=["kube-*", "default"], secrets=secrets)

        lists = [r for r in sandbox.requests if r.method == "GET" and r.path == "/api/v1/namespaces"]
    assert answer["examined"] == {"namespaces": LIST_PAGE + 24}  # and default and the three kube- namespaces
    assert [f["name"] for f in answer["findings"]] == [names[-1]]  # on the second page
    assert [(r.query.get("limit"), "continue" in r.query) for r in lists] == [(str(LIST_PAGE), False),
                                                                             (str(LIST_PAGE), True)]


# --- Default-deny NetworkPolicies ----------------------------------------------------------------------------

def network_policy(name: str, namespace_name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace_name}, "spec": {"podSelector": {}, **spec}}


@pytest.fixture
def required(cluster) -> tuple[str, str]:
    """A label selector for this test's namespaces only, and its label."""
    label = f"example.com/default-deny-{uuid.uuid4().hex[:8]}"
    return f"{label}=required", label


def test_a_deny_all_ingress_policy_holds_for_ingress_and_not_for_egress(cluster, required):
    sandbox, secrets = cluster
    selector, label = required
    name = unique("deny-ingress")
    apply(sandbox, namespace(name, **{label: "required"}),
          network_policy("deny-ingress", name, policyTypes=["Ingress"]))

    ingress = namespaces_have_default_deny(namespace_selector=selector, secrets=secrets)
    both = namespaces_have_default_deny(namespace_selector=selector, egress=True, secrets=secrets)

    assert (ingress["posture"], ingress["allowed"]) == ("held", [
        {"kind": "Namespace", "name": name, "default_deny": {"Ingress": "deny-ingress"}}])
    assert ingress["examined"]["namespaces"] == 1
    (finding,) = both["findings"]
    assert finding["why"] == "no NetworkPolicy denies egress by default (1 policy examined)"
    assert finding["policies"] == [{"name": "deny-ingress",
                                    "why_not": "Egress: its policyTypes [Ingress] do not include Egress"}]


def test_policy_types_omitted_are_read_as_the_api_server_defaults_them(cluster, required):
    # networking/v1 SetDefaults_NetworkPolicy: no policyTypes is [Ingress], plus Egress when there are egress rules.
    sandbox, secrets = cluster
    selector, label = required
    name = unique("omitted")
    apply(sandbox, namespace(name, **{label: "required"}), network_policy("no-types", name))

    answer = namespaces_have_default_deny(namespace_selector=selector, egress=True, secrets=secrets)

    (finding,) = answer["findings"]
    assert finding["default_deny"] == {"Ingress": "no-types"}  # denies ingress; egress is not isolated
    assert guardrails.why_not_default_deny({"spec": {"podSelector": {}}}, "Egress") == (
        "its policyTypes [Ingress] (omitted: defaulted from its rules) do not include Egress")
    with_egress_rules = {"spec": {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}}
    assert guardrails.policy_types(with_egress_rules["spec"]) == ["Ingress", "Egress"]
    assert guardrails.why_not_default_deny(with_egress_rules, "Ingress") is None
    assert guardrails.why_not_default_deny(with_egress_rules, "Egress") == "it allows egress through 1 rule(s)"


def test_an_empty_rule_allows_everything_and_an_empty_rule_list_denies(cluster, required):
    # NetworkPolicyIngressRule: an empty or missing `from` matches all sources, empty `ports` every port.
    sandbox, secrets = cluster
    selector, label = required
    open_ns, closed_ns, narrow_ns = unique("allow-all"), unique("no-rules"), unique("narrow")
    apply(sandbox, *(namespace(n, **{label: "required"}) for n in (open_ns, closed_ns, narrow_ns)),
          network_policy("looks-like-deny", open_ns, policyTypes=["Ingress"], ingress=[{}]),
          network_policy("deny", closed_ns, policyTypes=["Ingress"], ingress=[]),
          network_policy("some-pods", narrow_ns, podSelector={"matchLabels": {"app": "web"}}, policyTypes=["Ingress"]))

    answer = namespaces_have_default_deny(namespace_selector=selector, secrets=secrets)

    policies = {f["name"]: f["policies"] for f in answer["findings"]}
    assert policies == {
        open_ns: [{"name": "looks-like-deny",
                   "why_not": "Ingress: it allows ingress through 1 rule(s); rule 0 allows every peer on every port"}],
        narrow_ns: [{"name": "some-pods", "why_not": "Ingress: its podSelector selects some pods only"}]}
    assert [a["name"] for a in answer["allowed"]] == [closed_ns]
    # an empty selector written out in full is still empty: it selects every pod
    assert guardrails.why_not_default_deny(
        {"spec": {"podSelector": {"matchLabels": {}, "matchExpressions": []}, "policyTypes": ["Ingress"]}},
        "Ingress") is None


def test_one_policy_per_direction_denies_both(cluster, required):
    sandbox, secrets = cluster
    selector, label = required
    name = unique("split")
    apply(sandbox, namespace(name, **{label: "required"}),
          network_policy("deny-ingress", name, policyTypes=["Ingress"]),
          network_policy("deny-egress", name, policyTypes=["Egress"]))

    answer = namespaces_have_default_deny(namespace_selector=selector, egress=True, secrets=secrets)

    assert answer["allowed"] == [{"kind": "Namespace", "name": name,
                                  "default_deny": {"Ingress": "deny-ingress", "Egress": "deny-egress"}}]


def test_namespaces_are_chosen_by_name_patterns_and_a_name_that_does_not_exist_is_an_error(cluster):
    sandbox, secrets = cluster
    prefix = unique("named")
    apply(sandbox, namespace(f"{prefix}-a"), namespace(f"{prefix}-b"),
          network_policy("deny", f"{prefix}-a", policyTypes=["Ingress"]))

    answer = namespaces_have_default_deny(namespaces=[f"{prefix}-*"], secrets=secrets)

    assert ([f["name"] for f in answer["findings"]], [a["name"] for a in answer["allowed"]]) == (
        [f"{prefix}-b"], [f"{prefix}-a"])
    assert answer["findings"][0]["why"] == (
        "no NetworkPolicy denies ingress by default (the namespace has no NetworkPolicy)")
    with pytest.raises(ActivityFailed, match=f"no namespace is named like {prefix}-c: check the namespaces argument"):
        namespaces_have_default_deny(namespaces=[f"{prefix}-a", f"{prefix}-c"], secrets=secrets)
    with pytest.raises(ActivityFailed, match="needs namespace_selector .* or namespaces"):
        namespaces_have_default_deny(secrets=secrets)


# --- Admission webhooks -----------------------------------------------------------------------------------------

def webhook_configuration(kind: str, name: str, *failure_policies: str | None) -> dict[str, Any]:
    webhooks = []
    for index, policy in enumerate(failure_policies):
        webhook = {"name": f"w{index}.{name}.example.com", "clientConfig": {"url": "https://127.0.0.1:9/"},
                   "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                              "resources": ["pods"]}],
                   "sideEffects": "None", "admissionReviewVersions": ["v1"],
                   "objectSelector": {"matchLabels": {"example.com/never": "true"}}}
        if policy is not None:
            webhook["failurePolicy"] = policy
        webhooks.append(webhook)
    return {"apiVersion": ADMISSION, "kind": kind, "metadata": {"name": name}, "webhooks": webhooks}


def test_webhooks_that_fail_open_are_findings_and_those_that_fail_closed_allowed(cluster):
    sandbox, secrets = cluster
    prefix = unique("engine")
    apply(sandbox, webhook_configuration("ValidatingWebhookConfiguration", f"{prefix}-validating", "Fail", "Ignore"),
          webhook_configuration("MutatingWebhookConfiguration", f"{prefix}-mutating", None, "Ignore"),
          webhook_configuration("ValidatingWebhookConfiguration", f"{prefix}-empty"))

    answer = security_webhooks_fail_closed(configurations=[f"{prefix}-*"], secrets=secrets)
    validating = security_webhooks_fail_closed(configurations=[f"{prefix}-v*"],
                                               kinds=["ValidatingWebhookConfiguration"], secrets=secrets)

    assert {(f["kind"], f["name"], f.get("webhook")) for f in answer["findings"]} == {
        ("ValidatingWebhookConfiguration", f"{prefix}-validating", f"w1.{prefix}-validating.example.com"),
        ("MutatingWebhookConfiguration", f"{prefix}-mutating", f"w1.{prefix}-mutating.example.com"),
        ("ValidatingWebhookConfiguration", f"{prefix}-empty", None)}
    assert {f["why"] for f in answer["findings"]} == {
        "failurePolicy Ignore: when the webhook cannot be called, times out or answers garbage, the request is "
        "admitted", "it holds no webhook: it guards nothing"}
    assert {(a["webhook"], a["allowed_as"].removesuffix(" (the default)")) for a in answer["allowed"]} == {
        (f"w0.{prefix}-validating.example.com", "failurePolicy Fail"),
        (f"w0.{prefix}-mutating.example.com", "failurePolicy Fail")}
    assert [f["kind"] for f in validating["findings"]] == ["ValidatingWebhookConfiguration"]
    assert set(validating["examined"]) == {"validatingwebhookconfigurations"}


def test_an_unset_failure_policy_is_fail_as_admissionregistration_v1_defaults_it():
    # admissionregistration/v1 SetDefaults_ValidatingWebhook and SetDefaults_MutatingWebhook: FailurePolicy Fail.
    findings, allowed = guardrails.webhook_offenders(
        {"MutatingWebhookConfiguration": [webhook_configuration("MutatingWebhookConfiguration", "engine", None)]},
        ["engine"])

    assert (findings, [a["allowed_as"] for a in allowed]) == ([], ["failurePolicy Fail (the default)"])


def test_a_security_webhook_that_is_missing_is_a_finding_and_bad_kinds_an_error(cluster):
    _, secrets = cluster
    absent = unique("kyverno")

    answer = security_webhooks_fail_closed(configurations=[f"{absent}-*"], secrets=secrets)

    assert answer["findings"] == [{
        "kind": "ValidatingWebhookConfiguration or MutatingWebhookConfiguration", "name": f"{absent}-*",
        "why": f"no ValidatingWebhookConfiguration or MutatingWebhookConfiguration is named like '{absent}-*': the "
               "security webhook is missing"}]
    with pytest.raises(ActivityFailed, match="kinds may hold .* only, got ValidatingAdmissionPolicy"):
        security_webhooks_fail_closed(kinds=["ValidatingAdmissionPolicy"], secrets=secrets)


# --- ValidatingAdmissionPolicyBindings -------------------------------------------------------------------------

def policy(name: str) -> dict[str, Any]:
    return {"apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": name},
            "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                             "operations": ["CREATE"], "resources": ["pods"]}]},
                     "validations": [{"expression": "!has(object.spec.hostPID) || !object.spec.hostPID"}]}}


def binding(name: str, policy_name: str, actions: list[str]) -> dict[str, Any]:
    return {"apiVersion": ADMISSION, "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": name},
            "spec": {"policyName": policy_name, "validationActions": actions,
                     "matchResources": {"namespaceSelector": {"matchLabels": {"example.com/never": "true"}}}}}


def test_bindings_without_deny_and_unbound_policies_are_findings(cluster):
    sandbox, secrets = cluster
    prefix = unique("sec")
    apply(sandbox, *(policy(f"{prefix}-{n}") for n in ("deny", "audited", "warned", "unbound")),
          binding(f"{prefix}-deny", f"{prefix}-deny", ["Deny"]),
          binding(f"{prefix}-deny-audit", f"{prefix}-deny", ["Deny", "Audit"]),
          binding(f"{prefix}-audited", f"{prefix}-audited", ["Audit"]),
          binding(f"{prefix}-warned", f"{prefix}-warned", ["Warn", "Audit"]),
          binding(f"{prefix}-dangling", f"{prefix}-gone", ["Deny"]))

    named = security_policy_bindings_deny(policies=[f"{prefix}-*"], secrets=secrets)
    every = security_policy_bindings_deny(secrets=secrets)

    assert {(f["kind"], f["name"]): f["why"] for f in named["findings"]} == {
        ("ValidatingAdmissionPolicyBinding", f"{prefix}-audited"):
            "validationActions [Audit] lack Deny: a request the policy rejects is admitted (only warned about or "
            "audited)",
        ("ValidatingAdmissionPolicyBinding", f"{prefix}-warned"):
            "validationActions [Warn, Audit] lack Deny: a request the policy rejects is admitted (only warned about "
            "or audited)",
        ("ValidatingAdmissionPolicyBinding", f"{prefix}-dangling"):
            f"its policy {prefix}-gone does not exist: the binding enforces nothing",
        ("ValidatingAdmissionPolicy", f"{prefix}-unbound"): "no binding binds it: the policy is never evaluated"}
    assert sorted(a["name"] for a in named["allowed"]) == [f"{prefix}-deny", f"{prefix}-deny-audit"]
    # every binding judged, no policy named: an unbound policy is no finding
    mine = {f["name"] for f in every["findings"] if f["name"].startswith(prefix)}
    assert mine == {f"{prefix}-audited", f"{prefix}-warned", f"{prefix}-dangling"}


def test_a_policy_pattern_naming_nothing_is_a_finding(cluster):
    _, secrets = cluster
    absent = unique("require")

    answer = security_policy_bindings_deny(policies=[absent], secrets=secrets)

    assert answer["findings"] == [{"kind": "ValidatingAdmissionPolicy", "name": absent,
                                   "why": f"no ValidatingAdmissionPolicy is named like '{absent}': the policy is "
                                          "missing"}]


def test_deny_with_warn_is_refused_by_the_api_server_and_would_deny(cluster):
    # admissionregistration validation: validationActions "must not contain both Deny and Warn"; such a binding
    # cannot be stored, and were it read it would still deny.
    sandbox, _ = cluster
    name = unique("both")
    with pytest.raises(SandboxError, match="must not contain both Deny and Warn"):
        apply(sandbox, policy(name), binding(name, name, ["Deny", "Warn"]))

    findings, allowed = guardrails.binding_offenders([policy(name)], [binding(name, name, ["Deny", "Warn"])], [name])

    assert (findings, [a["allowed_as"] for a in allowed]) == ([], ["validationActions hold Deny"])
