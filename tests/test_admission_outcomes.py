"""Who answered: only an admission control's refusal counts as `blocked`."""
from __future__ import annotations

import pytest

from chaoskirvis.admission import answered_by


@pytest.mark.parametrize("message, expected", [
    ('pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set '
     'securityContext.privileged=true)', "PodSecurity"),
    ("pods \"p\" is forbidden: ValidatingAdmissionPolicy 'deny-privileged' with binding 'deny-privileged-binding' "
     "denied request: privileged containers are not allowed", "ValidatingAdmissionPolicy deny-privileged"),
    ('admission webhook "validation.gatekeeper.sh" denied the request: [psp-privileged-container] '
     'Privileged container is not allowed: c', "admission webhook validation.gatekeeper.sh"),
])
def test_policy_denials_name_the_control(message, expected):
    assert answered_by(message) == expected


@pytest.mark.parametrize("message", [
    'pods is forbidden: User "sandbox-viewer" cannot create resource "pods" in API group "" in the namespace "a"',
    'Pod "p" is invalid: spec.containers: Required value',
    'namespaces "nope" not found',
    "the server could not find the requested resource",
])
def test_other_refusals_are_not_blocks(message):
    assert answered_by(message) is None
