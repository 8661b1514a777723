"""Conformance of chaoskirvis.sandbox.podsecurity with Kubernetes Pod Security Admission.

The fixtures are upstream's own test pods (kubernetes/pod-security-admission, test/testdata),
shared outside the repository; see their README.md. The exact-message tests use cases and
wording from upstream's policy/check_*_test.go and admission code.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from psa_upstream import ALL_REASONS, check_of_fixture, expected_reasons

from chaoskirvis.sandbox.podsecurity import (
    LEVELS,
    Violation,
    check_pod,
    describe,
    forbidden_message,
    warning_message,
)

EXPECTED_FIXTURE_COUNT = 148


def load_pod(path: Path) -> dict:
    """A fixture's Pod manifest."""
    return yaml.safe_load(path.read_text())


@pytest.fixture
def load_fixture(shared_conformance):
    """load_fixture(relative) -> (metadata, spec) of a fixture, by its path under the fixture folder."""
    def load(relative: str) -> tuple[dict, dict]:
        pod = load_pod(shared_conformance("pod-security") / relative)
        return pod["metadata"], pod["spec"]
    return load


def lower_levels(level: str) -> list[str]:
    """The non-privileged levels a pod allowed at `level` must also be allowed at."""
    return list(LEVELS[1 : LEVELS.index(level) + 1])


def test_fixture_is_judged_as_upstream_judges_it(shared_conformance, pod_security_fixture: str | None) -> None:
    root = shared_conformance("pod-security")  # fails (CI=true) or skips when ../shared is missing
    assert pod_security_fixture, f"no fixtures under {root}"
    path = root / pod_security_fixture
    level, outcome = path.parts[-3], path.parts[-2]
    pod = load_pod(path)
    metadata, spec = pod["metadata"], pod["spec"]

    assert check_pod(metadata, spec, "privileged") == []
    if outcome == "pass":
        for allowed_level in lower_levels(level):
            assert check_pod(metadata, spec, allowed_level) == [], allowed_level
    else:
        violations = check_pod(metadata, spec, level)
        assert violations
        named = {violation.check for violation in violations}
        assert named <= ALL_REASONS, named
        # the check the fixture is named after (or the restricted check replacing it) is the one blamed
        assert named & set(expected_reasons(path, level)), (check_of_fixture(path), violations)
        message = forbidden_message("pods", metadata["name"], level, violations)
        name = re.escape(metadata["name"])
        pattern = rf'^pods "{name}" is forbidden: violates PodSecurity "{level}:latest": .+ \(.+\)'
        assert re.match(pattern, message), message


def test_all_fixtures_are_present(shared_conformance) -> None:
    files = sorted(shared_conformance("pod-security").glob("*/*/*.yaml"))
    assert len(files) == EXPECTED_FIXTURE_COUNT
    assert {path.parts[-3] + "/" + path.parts[-2] for path in files} == {
        "baseline/pass", "baseline/fail", "restricted/pass", "restricted/fail",
    }


def test_missing_shared_fixtures_fail_in_ci_and_skip_elsewhere(shared_conformance, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true requires ../shared"):
        shared_conformance("no-such-fixture-set")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="not found at .*no-such-fixture-set"):
        shared_conformance("no-such-fixture-set")


# --- exact messages ----------------------------------------------------------------------------

def test_privileged_init_container_denied_at_baseline(load_fixture) -> None:
    metadata, spec = load_fixture("baseline/fail/privileged1.yaml")
    violations = check_pod(metadata, spec, "baseline")
    assert violations == [Violation("privileged", 'container "initcontainer1" must not set securityContext.privileged=true')]
    assert forbidden_message("pods", "privileged1", "baseline", violations) == (
        'pods "privileged1" is forbidden: violates PodSecurity "baseline:latest": '
        'privileged (container "initcontainer1" must not set securityContext.privileged=true)'
    )


def test_baseline_checks_come_before_restricted_ones(load_fixture) -> None:
    metadata, spec = load_fixture("restricted/fail/privileged0.yaml")
    assert describe(check_pod(metadata, spec, "restricted")) == (
        'privileged (container "container1" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "container1" must set securityContext.allowPrivilegeEscalation=false)'
    )


def test_baseline_checks_run_in_check_id_order(load_fixture) -> None:
    metadata, spec = load_fixture("baseline/fail/windowshostprocess1.yaml")
    assert describe(check_pod(metadata, spec, "baseline")) == (
        "host namespaces (hostNetwork=true), "
        'hostProcess (containers "initcontainer1", "container1" must not set securityContext.windowsOptions.hostProcess=true)'
    )


def test_bare_pod_gets_the_familiar_restricted_warning() -> None:
    spec = {"containers": [{"name": "nginx", "image": "nginx"}]}
    assert warning_message("restricted", check_pod({}, spec, "restricted")) == (
        'would violate PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "nginx" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "nginx" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )


UPSTREAM_CHECK_CASES = [
    pytest.param(
        {}, {"hostNetwork": True, "hostIPC": True, "hostPID": True},
        "host namespaces", "hostNetwork=true, hostPID=true, hostIPC=true",
        id="hostNamespaces",
    ),
    pytest.param(
        {}, {"containers": [
            {"name": "a", "ports": [{"hostPort": 0}]},
            {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]},
            {"name": "c", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]},
        ]},
        "hostPort", 'containers "b", "c" use hostPorts 10, 20, 30',
        id="hostPorts",
    ),
    pytest.param(
        {}, {"containers": [
            {"name": "a", "securityContext": {"capabilities": {"add": ["FOO", "BAR"]}}},
            {"name": "b", "securityContext": {"capabilities": {"add": ["BAR", "BAZ"]}}},
        ]},
        "non-default capabilities", 'containers "a", "b" must not include "BAR", "BAZ", "FOO" in securityContext.capabilities.add',
        id="capabilities_baseline",
    ),
    pytest.param(
        {}, {
            "securityContext": {"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
            "containers": [
                {"name": "a", "securityContext": {"seLinuxOptions": {"type": "container_t"}}},
                {"name": "d", "securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}},
                {"name": "e", "securityContext": {"seLinuxOptions": {"type": "bar"}}},
                {"name": "f", "securityContext": {"seLinuxOptions": {"user": "bar"}}},
                {"name": "g", "securityContext": {"seLinuxOptions": {"role": "baz"}}},
            ],
        },
        "seLinuxOptions",
        'pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: '
        'types "bar", "foo"; user may not be set; role may not be set',
        id="seLinuxOptions",
    ),
    pytest.param(
        {"annotations": {
            "container.apparmor.security.beta.kubernetes.io/": "bogus",
            "container.apparmor.security.beta.kubernetes.io/a": "",
            "container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
            "container.apparmor.security.beta.kubernetes.io/c": "localhost/",
            "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
            "container.apparmor.security.beta.kubernetes.io/e": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/f": "unknown",
        }}, {},
        "forbidden AppArmor profiles",
        'annotations must not set AppArmor profile type to '
        '"container.apparmor.security.beta.kubernetes.io/="bogus"", '
        '"container.apparmor.security.beta.kubernetes.io/e="unconfined"", '
        '"container.apparmor.security.beta.kubernetes.io/f="unknown""',
        id="appArmorProfile",
    ),
    pytest.param(
        {}, {"containers": [
            {"name": "valid"},
            {"name": "invalid1", "livenessProbe": {"httpGet": {"host": "a.com"}}},
            {"name": "invalid2", "lifecycle": {"preStop": {"tcpSocket": {"host": "b.com"}}},
             "startupProbe": {"httpGet": {"host": "a.com"}}},
        ]},
        "probe or lifecycle host", 'containers "invalid1", "invalid2" use probe or lifecycle hosts "a.com", "b.com"',
        id="hostProbesAndHostLifecycle",
    ),
    pytest.param(
        {}, {
            "securityContext": {"windowsOptions": {"hostProcess": True}},
            "containers": [
                {"name": "a"},
                {"name": "d", "securityContext": {"windowsOptions": {"hostProcess": False}}},
                {"name": "e", "securityContext": {"windowsOptions": {"hostProcess": True}}},
                {"name": "f", "securityContext": {"windowsOptions": {"hostProcess": True}}},
            ],
        },
        "hostProcess", 'pod and containers "e", "f" must not set securityContext.windowsOptions.hostProcess=true',
        id="windowsHostProcess",
    ),
]


@pytest.mark.parametrize(("metadata", "spec", "check", "detail"), UPSTREAM_CHECK_CASES)
def test_check_words_its_violation_as_upstream(metadata: dict, spec: dict, check: str, detail: str) -> None:
    assert Violation(check, detail) in check_pod(metadata, spec, "baseline")


def test_restricted_volume_types_are_named() -> None:
    spec = {"volumes": [
        {"name": "a1", "emptyDir": {}},
        {"name": "a9", "image": {"reference": "registry.k8s.io/pause"}},
        {"name": "defaulted"},
        {"name": "b1", "hostPath": {"path": "/"}},
        {"name": "b4", "gitRepo": {"repository": "r"}},
        {"name": "b5", "nfs": {"server": "s", "path": "/"}},
    ]}
    violations = check_pod({}, spec, "restricted")
    assert Violation(
        "restricted volume types",
        'volumes "b1", "b4", "b5" use restricted volume types "gitRepo", "hostPath", "nfs"',
    ) in violations
    assert not [violation for violation in violations if violation.check == "hostPath volumes"]


def test_user_namespaced_pod_is_relaxed_only_where_upstream_relaxes() -> None:
    spec = {
        "hostUsers": False,
        "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "c",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "procMount": "Unmasked",
            },
        }],
    }
    assert check_pod({}, spec, "baseline") == []
    assert check_pod({}, spec, "restricted") == [
        Violation("procMount", 'container "c" must not set securityContext.procMount to "Unmasked"'),
    ]


def test_pod_without_containers_is_allowed_at_every_level() -> None:
    for level in LEVELS:
        assert check_pod({}, {}, level) == []
    assert check_pod(None, None, "baseline") == []


@pytest.mark.parametrize("level", ["Baseline", "RESTRICTED", "latest", "", "baseline:latest"])
def test_unknown_level_is_rejected(level: str) -> None:
    with pytest.raises(ValueError):
        check_pod({}, {}, level)
    with pytest.raises(ValueError):
        forbidden_message("pods", "p", level, [])
    with pytest.raises(ValueError):
        warning_message(level, [])


def test_describe_writes_upstreams_placeholders() -> None:
    assert describe([Violation("", "x"), Violation("host ports", "")]) == "unknown forbidden reason (x), host ports"


def test_forbidden_message_words_missing_name_like_apimachinery() -> None:
    violations = [Violation("privileged", 'container "c" must not set securityContext.privileged=true')]
    assert forbidden_message("pods", "", "baseline", violations).startswith(
        'pods is forbidden: violates PodSecurity "baseline:latest": privileged ('
    )
