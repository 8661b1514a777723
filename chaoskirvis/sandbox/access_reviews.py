"""Access reviews (authorization.k8s.io/v1): `kubectl auth can-i`, its `--list`, and who-can checks.

SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview (cluster-scoped) and
LocalSubjectAccessReview (namespaced) are create-only and answered, never stored, as the API server's
registries answer them: the review sent, with its status filled in by the same RBAC authorizer that decides
every request (`rbac.Authorizer`), so a review and the request it asks about never disagree.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from chaoskirvis.sandbox.rbac import Attributes, Authorizer, UserInfo
from chaoskirvis.sandbox.status import StatusError, bad_request, status_error

ACCESS_REVIEW, RULES_REVIEW = "selfsubjectaccessreviews", "selfsubjectrulesreviews"
SUBJECT_REVIEW, LOCAL_REVIEW = "subjectaccessreviews", "localsubjectaccessreviews"
REVIEWS = (ACCESS_REVIEW, RULES_REVIEW, SUBJECT_REVIEW, LOCAL_REVIEW)
_KINDS = {ACCESS_REVIEW: "SelfSubjectAccessReview", RULES_REVIEW: "SelfSubjectRulesReview",
          SUBJECT_REVIEW: "SubjectAccessReview", LOCAL_REVIEW: "LocalSubjectAccessReview"}


def answer(plural: str, review: dict[str, Any], user: UserInfo, authorizer: Authorizer,
           namespace: str | None = None) -> dict[str, Any]:
    """The review with its status: whether its subject may do what it asks, or what `user` may do.

    `user` is the requester (the subject of the self reviews); `namespace` is a LocalSubjectAccessReview's."""
    spec = review.get("spec") or {}
    if not isinstance(spec, dict):
        raise bad_request(f"{review.get('kind')}.spec must be an object")
    metadata = {**(review.get("metadata") or {}), "creationTimestamp": None}
    if plural == RULES_REVIEW:
        resource_rules, non_resource_rules = authorizer.rules_for(user, str(spec.get("namespace") or ""))
        return dict(review, metadata=metadata, status={"resourceRules": resource_rules,
                                                       "nonResourceRules": non_resource_rules, "incomplete": False})
    subject = user
    if plural in (SUBJECT_REVIEW, LOCAL_REVIEW):
        subject = _subject(plural, spec)
    attributes = _attributes(plural, spec, namespace)
    decision = authorizer.authorize(subject, attributes)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return dict(review, metadata=metadata, status=status)


def _invalid(plural: str, field: str, value: str, detail: str) -> StatusError:
    problem = f'Invalid value: "{value}": {detail}'
    return status_error(422, "Invalid", f'{_KINDS[plural]}.authorization.k8s.io "" is invalid: {field}: {problem}',
                        {"group": "authorization.k8s.io", "kind": _KINDS[plural],
                         "causes": [{"reason": "FieldValueInvalid", "message": problem, "field": field}]})


def _subject(plural: str, spec: dict[str, Any]) -> UserInfo:
    """The user a SubjectAccessReview asks about, as its spec names it (nothing is added to its groups)."""
    user, groups = str(spec.get("user") or ""), [str(g) for g in spec.get("groups") or []]
    if not user and not groups:
        raise _invalid(plural, "spec.user", "", "at least one of user or group must be specified")
    extra = {str(key): tuple(str(v) for v in values or []) for key, values in (spec.get("extra") or {}).items()}
    return UserInfo(user, str(spec.get("uid") or ""), tuple(groups), MappingProxyType(extra))


def _attributes(plural: str, spec: dict[str, Any], namespace: str | None) -> Attributes:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise _invalid(plural, "spec.resourceAttributes", "null",
                       "exactly one of nonResourceAttributes or resourceAttributes must be specified")
    if non_resource is not None:
        if plural == LOCAL_REVIEW:
            raise _invalid(plural, "spec.nonResourceAttributes", "null", "disallowed on this kind of request")
        return Attributes(str(non_resource.get("verb") or ""), path=str(non_resource.get("path") or ""))
    attributes_namespace = str(resource.get("namespace") or "")
    if plural == LOCAL_REVIEW and attributes_namespace != namespace:
        raise _invalid(plural, "spec.resourceAttributes.namespace", attributes_namespace,
                       "must match metadata.namespace")
    return Attributes(str(resource.get("verb") or ""), str(resource.get("group") or ""),
                      str(resource.get("resource") or ""), str(resource.get("subresource") or ""),
                      attributes_namespace, str(resource.get("name") or ""))
