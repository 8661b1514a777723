"""RBAC's refusals read as kube-apiserver words them, for answers the sandbox does not give.

The texts are built as upstream builds them: apierrors.NewForbidden's ``RESOURCE "NAME" is forbidden: ERR``
around forbiddenMessage (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go:
``User %q cannot %s resource %q in API group %q in the namespace %q`` / ``at the cluster scope`` /
``User %q cannot %s path %q``) and ConfirmNoEscalation (pkg/registry/rbac/validation/rule.go:
``user %q (groups=%q) is attempting to grant RBAC permissions not currently held``, the groups left out
by newer releases). Go's %q escapes quotes with a backslash.
"""
from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.admission import rbac_refusal, refused_as
from chaoskirvis.client import Answer, ApiError, Identity

TEAM = Identity("system:serviceaccount:team-a:app")


def forbidden(resource: str, name: str, error: str, *, code: int = 403, reason: str = "Forbidden") -> ApiError:
    prefix = f'{resource} "{name}" is forbidden: ' if name else f"{resource} is forbidden: "
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": prefix + error,
            "reason": reason, "code": code}
    return ApiError("POST", "/", Answer(status=code, body=body))


@pytest.mark.parametrize("error", [
    'User "system:serviceaccount:team-a:app" cannot list resource "secrets" in API group "" in the namespace '
    '"kube-system"',
    'User "system:serviceaccount:team-a:app" cannot create resource "clusterrolebindings" in API group '
    '"rbac.authorization.k8s.io" at the cluster scope',
    'User "system:serviceaccount:team-a:app" cannot create resource "serviceaccounts/token" in API group "" in '
    'the namespace "team-b"',
    'user "system:serviceaccount:team-a:app" (groups=["system:serviceaccounts" "system:serviceaccounts:team-a" '
    '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
    '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}',
    'user "system:serviceaccount:team-a:app" is attempting to grant RBAC permissions not currently held:\n'
    '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}',
])
def test_rbac_refusing_the_identity_is_blocked(error):
    assert refused_as(forbidden("things", "x", error), TEAM, "the attempt") == {
        "outcome": "blocked", "blocked": True, "answered_by": "RBAC"}


def test_a_user_name_with_an_escaped_quote_is_read_whole():
    exc = forbidden("secrets", "", r'User "o\"brien" cannot list resource "secrets" in API group "" at the cluster scope')
    assert rbac_refusal(exc.status, exc.answer.body) == ('o"brien', "list")
    assert refused_as(exc, Identity('o"brien'), "the list")["answered_by"] == "RBAC"


def test_the_impersonation_refused_to_the_runner_is_an_error_naming_the_verb_to_grant():
    exc = forbidden("serviceaccounts", "app", 'User "ci-runner" cannot impersonate resource "serviceaccounts" in API '
                                              'group "" in the namespace "team-a"')
    with pytest.raises(ActivityFailed, match=r"refused the runner 'ci-runner' the impersonation.*impersonate verb on "
                                             r"serviceaccounts"):
        refused_as(exc, TEAM, "the attempt")


def test_rbac_naming_anyone_but_the_identity_is_an_error():
    exc = forbidden("secrets", "", 'User "ci-runner" cannot list resource "secrets" in API group "" at the cluster scope')
    with pytest.raises(ActivityFailed, match=r"RBAC refused 'ci-runner', not that identity"):
        refused_as(exc, TEAM, "the list")
    assert refused_as(exc, None, "the list") is None  # the runner acting as itself: the caller's error


@pytest.mark.parametrize("exc", [
    forbidden("secrets", "", 'User "system:serviceaccount:team-a:app" cannot list resource "secrets" in API group '
                             '"" at the cluster scope', reason="BadRequest"),
    forbidden("secrets", "", 'User "system:serviceaccount:team-a:app" cannot list resource "secrets" in API group '
                             '"" at the cluster scope', code=500, reason="InternalError"),
    forbidden("pods", "p", 'admission webhook "w" denied the request: User "system:serviceaccount:team-a:app" cannot '
                           'create resource "pods"'),
])
def test_the_words_on_another_answer_are_not_rbac(exc):
    assert rbac_refusal(exc.status, exc.answer.body) is None
    assert refused_as(exc, TEAM, "the attempt") is None
