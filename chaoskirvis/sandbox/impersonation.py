"""Impersonation (`kubectl --as`, `--as-group`, `--as-uid`, Impersonate-Extra-*), as kube-apiserver's
impersonation filter (k8s.io/apiserver/pkg/endpoints/filters/impersonation.go) serves it.

Each thing asked for is authorized as the verb `impersonate` for the requesting user: users, groups and
serviceaccounts (for a `system:serviceaccount:NS:NAME` user, in NS) in the core group, uids and
userextras/KEY in authentication.k8s.io; the first one refused answers 403 in the filter's words. The
impersonated user gets `system:authenticated` (or `system:unauthenticated` for system:anonymous), and a
ServiceAccount impersonated without groups gets its ServiceAccount groups.
"""

from __future__ import annotations

import urllib.parse
from types import MappingProxyType

from multidict import CIMultiDictProxy

from chaoskirvis.sandbox.rbac import ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, Attributes, Authorizer, UserInfo, \
    forbidden_error, service_account_groups, split_service_account
from chaoskirvis.sandbox.status import status_error

USER, GROUP, UID, EXTRA = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-"
AUTHENTICATION_GROUP = "authentication.k8s.io"
ANONYMOUS = "system:anonymous"
_PREFIX = "impersonate-"
_PREFIX_LENGTH = len(_PREFIX)


def impersonated(requester: UserInfo, headers: CIMultiDictProxy[str], authorizer: Authorizer) -> UserInfo | None:
    """The user the request acts as; None when it asks for no impersonation. Raises 403 when not allowed."""
    if not any(name[:_PREFIX_LENGTH].lower() == _PREFIX for name in headers.keys()):
        return None  # one pass over the header names: most requests impersonate no one
    users = [value for value in headers.getall(USER, []) if value]  # an empty header asks for nothing
    groups_asked = headers.getall(GROUP, [])
    uids = [value for value in headers.getall(UID, []) if value]
    extras: dict[str, list[str]] = {}
    for header, value in headers.items():
        if header.lower().startswith(EXTRA.lower()):
            key = urllib.parse.unquote(header[len(EXTRA):]).lower()
            extras.setdefault(key, []).append(value)
    if not (users or groups_asked or uids or extras):
        return None
    if not users:
        # the ObjectReferences asked for, as Go's %v prints them (Kind Namespace Name UID APIVersion
        # ResourceVersion FieldPath)
        asked = [*(("Group", group, "") for group in groups_asked),
                 *(("UserExtra", value, key) for key, values in extras.items() for value in values),
                 *(("UID", uid, "") for uid in uids[:1])]
        printed = " ".join(f"{{{kind}  {name}    {path}}}" for kind, name, path in asked)
        raise status_error(500, "InternalError",
                           f"Internal error occurred: requested [{printed}] without impersonating a user")
    user_name = users[0]
    checks: list[Attributes] = []
    groups: list[str] = []
    account = split_service_account(user_name)
    if account is not None:
        checks.append(Attributes("impersonate", "", "serviceaccounts", namespace=account[0], name=account[1]))
        if not groups_asked:
            groups.extend(service_account_groups(account[0]))
    else:
        checks.append(Attributes("impersonate", "", "users", name=user_name))
    for group in groups_asked:
        checks.append(Attributes("impersonate", "", "groups", name=group))
        groups.append(group)
    extra: dict[str, tuple[str, ...]] = {}
    for key, values in extras.items():
        checks.extend(Attributes("impersonate", AUTHENTICATION_GROUP, "userextras", subresource=key, name=value)
                      for value in values)
        extra[key] = tuple(values)
    uid = uids[0] if uids else ""
    if uids:
        checks.append(Attributes("impersonate", AUTHENTICATION_GROUP, "uids", name=uid))
    for attributes in checks:
        if not authorizer.authorize(requester, attributes).allowed:
            raise forbidden_error(requester, attributes)
    added = ALL_UNAUTHENTICATED if user_name == ANONYMOUS else ALL_AUTHENTICATED
    if added not in groups:
        groups.append(added)
    return UserInfo(user_name, uid, tuple(groups), MappingProxyType(extra))


