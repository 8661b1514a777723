"""What Kubernetes' Pod Security Admission says about each upstream conformance fixture.

Taken from upstream, not from chaoskirvis.sandbox.podsecurity: the check ids and the `ForbiddenReason`
each check returns are those of kubernetes/kubernetes
staging/src/k8s.io/pod-security-admission/policy/check_*.go (the same package as
kubernetes/pod-security-admission/policy), e.g. check_privileged.go `ID: "privileged"`,
`ForbiddenReason: "privileged"`; check_hostPorts.go `ID: "hostPorts"`, `ForbiddenReason: "hostPort"`.
The restricted checks that replace a baseline one at restricted are their `OverrideCheckIDs`
(check_capabilities_restricted.go, check_restrictedVolumes.go, check_seccompProfile_restricted.go,
check_procMount_restricted.go).

A fail fixture's file name is its check id, lower-cased, with a number: upstream's
test/fixtures_test.go writes `fmt.Sprintf("%s%d", strings.ToLower(checkID), i)`.
"""

from __future__ import annotations

import re
from pathlib import Path

# check id -> the ForbiddenReason(s) it answers with (appArmorProfile pluralizes its reason:
# pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", n) in check_appArmorProfile.go).
REASONS: dict[str, tuple[str, ...]] = {
    # baseline (policy/check_*.go, Level: api.LevelBaseline)
    "appArmorProfile": ("forbidden AppArmor profile", "forbidden AppArmor profiles"),
    "capabilities_baseline": ("non-default capabilities",),
    "hostNamespaces": ("host namespaces",),
    "hostPathVolumes": ("hostPath volumes",),
    "hostPorts": ("hostPort",),
    "hostProbesAndHostLifecycle": ("probe or lifecycle host",),
    "privileged": ("privileged",),
    "procMount": ("procMount",),  # check_procMount_baseline.go (ID "procMount_baseline" since 1.35)
    "seccompProfile_baseline": ("seccompProfile",),
    "seLinuxOptions": ("seLinuxOptions",),
    "sysctls": ("forbidden sysctls",),
    "windowsHostProcess": ("hostProcess",),
    # restricted (Level: api.LevelRestricted)
    "allowPrivilegeEscalation": ("allowPrivilegeEscalation != false",),
    "capabilities_restricted": ("unrestricted capabilities",),
    "procMount_restricted": ("procMount",),
    "restrictedVolumes": ("restricted volume types",),
    "runAsNonRoot": ("runAsNonRoot != true",),
    "runAsUser": ("runAsUser=0",),
    "seccompProfile_restricted": ("seccompProfile",),
}

# baseline check id -> the restricted check that runs instead of it at restricted (OverrideCheckIDs).
OVERRIDDEN_AT_RESTRICTED = {
    "capabilities_baseline": "capabilities_restricted",
    "hostPathVolumes": "restrictedVolumes",
    "seccompProfile_baseline": "seccompProfile_restricted",
    "procMount": "procMount_restricted",
}

ALL_REASONS = frozenset(reason for reasons in REASONS.values() for reason in reasons)
_CHECK_BY_FILE_STEM = {check_id.lower(): check_id for check_id in REASONS}


def check_of_fixture(path: Path) -> str:
    """The upstream check id a fail fixture is named after: `hostpathvolumes1.yaml` -> `hostPathVolumes`."""
    stem = re.sub(r"\d+$", "", path.stem)
    if stem not in _CHECK_BY_FILE_STEM:
        raise AssertionError(f"fixture {path.name} names no known upstream check")
    return _CHECK_BY_FILE_STEM[stem]


def expected_reasons(path: Path, level: str) -> tuple[str, ...]:
    """The reasons Pod Security Admission gives for a fail fixture at `level` (one of them must appear)."""
    check_id = check_of_fixture(path)
    if level == "restricted":
        check_id = OVERRIDDEN_AT_RESTRICTED.get(check_id, check_id)
    return REASONS[check_id]


def reasons_in(message: str) -> list[str]:
    """The reasons of a `violates PodSecurity "LEVEL:latest": REASON (DETAIL), REASON (DETAIL)` message.

    Upstream joins `reason (detail)` with ", " (admission.go, aggregateCheckResults); a reason has no
    parentheses, so each one is the text before " (" at the start or after "), ".
    """
    _, _, violations = message.partition(':latest": ')
    return re.findall(r"(?:^|\), )([^()]+?) \(", violations)
