"""Who answered: only an admission control's refusal, by status code and Status body, counts as `blocked`."""
from __future__ import annotations

import pytest

from chaoskirvis.admission import answered_by


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


@pytest.mark.parametrize("code, reason, message, expected", [
    (403, "Forbidden", 'pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" '
     'must not set securityContext.privileged=true)', "PodSecurity"),
    (422, "Invalid", "pods \"p\" is forbidden: ValidatingAdmissionPolicy 'deny-privileged' with binding "
     "'deny-privileged-binding' denied request: privileged containers are not allowed",
     "ValidatingAdmissionPolicy deny-privileged"),
    (403, "Forbidden", 'admission webhook "validation.gatekeeper.sh" denied the request: [psp-privileged-container] '
     'Privileged container is not allowed: c', "admission webhook validation.gatekeeper.sh"),
    # failurePolicy Fail and the webhook unreachable (validating/dispatcher.go: NewInternalError(ErrCallingWebhook))
    (500, "InternalError", 'Internal error occurred: failed calling webhook "validate.kyverno.svc-fail": failed to '
     'call webhook: Post "https://kyverno-svc.kyverno.svc:443/validate/fail?timeout=10s": dial tcp 10.96.0.12:443: '
     'connect: connection refused', "admission webhook validate.kyverno.svc-fail (failed closed)"),
    (500, "InternalError", 'Internal error occurred: failed calling webhook "w.example.com"; no further details '
     'available', "admission webhook w.example.com (failed closed)"),
])
def test_policy_denials_name_the_control(code, reason, message, expected):
    assert answered_by(code, status(code, reason, message)) == expected


@pytest.mark.parametrize("code, reason, message", [
    (403, "Forbidden", 'pods is forbidden: User "sandbox-viewer" cannot create resource "pods" in API group "" '
     'in the namespace "a"'),
    (422, "Invalid", 'Pod "p" is invalid: spec.containers: Required value'),
    (404, "NotFound", 'namespaces "nope" not found'),
    (404, "NotFound", "the server could not find the requested resource"),
    # a failed webhook call only counts on the API server's own 500 InternalError, never another code or reason
    (403, "Forbidden", 'Internal error occurred: failed calling webhook "w.example.com": failed to call webhook'),
    (500, "ServiceUnavailable", 'Internal error occurred: failed calling webhook "w.example.com": timeout'),
    (500, "InternalError", 'Internal error occurred: etcdserver: request timed out'),
    (500, "InternalError", 'something failed calling webhook "w.example.com": refused'),
])
def test_other_refusals_are_not_blocks(code, reason, message):
    assert answered_by(code, status(code, reason, message)) is None


def test_a_denial_text_without_a_status_body_is_not_a_block():
    message = 'pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged'
    assert answered_by(403, {"message": message}) is None
    assert answered_by(403, None) is None
