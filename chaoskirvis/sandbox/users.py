"""The sandbox's users, and the one decision of what each may do (the sandbox has no RBAC yet).

`User.may` is the sandbox's authorizer: requests are refused by it (`api`'s `_authorize`) and
`kubectl auth can-i` is answered by it (`access_reviews`), so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaoskirvis.sandbox.resources import READ_VERBS

# What every authenticated user may create, as the API server's system:basic-user ClusterRole grants it.
SELF_REVIEWS = (("authorization.k8s.io", "selfsubjectaccessreviews"),
                ("authorization.k8s.io", "selfsubjectrulesreviews"),
                ("authentication.k8s.io", "selfsubjectreviews"))


@dataclass(frozen=True)
class User:
    name: str
    read_only: bool = False
    groups: tuple[str, ...] = ("system:authenticated",)

    def may(self, verb: str, group: str = "", resource: str = "") -> bool:
        """Whether this user may `verb` the `resource` of `group` (any resource: ""), in any namespace."""
        if not self.read_only or verb in READ_VERBS:
            return True
        return verb == "create" and (group, resource) in SELF_REVIEWS
