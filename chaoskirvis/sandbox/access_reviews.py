"""SelfSubjectAccessReview and SelfSubjectRulesReview (authorization.k8s.io/v1): `kubectl auth can-i`.

Both are create-only and answered, never stored, as the API server's registry answers them: the review
sent, with its status filled in by the authorizer (`User.may`, the same decision that refuses requests).
"""

from __future__ import annotations

from typing import Any

from chaoskirvis.sandbox.resources import READ_VERBS
from chaoskirvis.sandbox.status import bad_request, status_error
from chaoskirvis.sandbox.users import SELF_REVIEWS, User

ACCESS_REVIEW, RULES_REVIEW = "selfsubjectaccessreviews", "selfsubjectrulesreviews"


def answer(plural: str, review: dict[str, Any], user: User) -> dict[str, Any]:
    """The review with its status: whether `user` may do what it asks, or what `user` may do."""
    spec = review.get("spec") or {}
    if not isinstance(spec, dict):
        raise bad_request(f"{review.get('kind')}.spec must be an object")
    answered = dict(review, metadata={**(review.get("metadata") or {}), "creationTimestamp": None})
    if plural == ACCESS_REVIEW:
        return answered | {"status": _access(spec, user)}
    return answered | {"status": _rules(user)}


def _access(spec: dict[str, Any], user: User) -> dict[str, Any]:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        problem = 'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified'
        raise status_error(422, "Invalid", f'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                                           f"spec.resourceAttributes: {problem}",
                           {"group": "authorization.k8s.io", "kind": "SelfSubjectAccessReview",
                            "causes": [{"reason": "FieldValueInvalid", "message": problem,
                                        "field": "spec.resourceAttributes"}]})
    if resource is not None:
        allowed = user.may(resource.get("verb", ""), resource.get("group", ""), resource.get("resource", ""))
    else:
        allowed = user.may(non_resource.get("verb", ""))
    return {"allowed": allowed}


def _rules(user: User) -> dict[str, Any]:
    verbs = list(READ_VERBS) if user.read_only else ["*"]
    resource_rules: list[dict[str, Any]] = [{"verbs": verbs, "apiGroups": ["*"], "resources": ["*"]}]
    if user.read_only:
        for group in dict.fromkeys(group for group, _ in SELF_REVIEWS):
            resource_rules.append({"verbs": ["create"], "apiGroups": [group],
                                   "resources": [resource for g, resource in SELF_REVIEWS if g == group]})
    return {"resourceRules": resource_rules, "nonResourceRules": [{"verbs": verbs, "nonResourceURLs": ["*"]}],
            "incomplete": False}
