"""Who a request is: the bearer token's user, as kube-apiserver's authenticators find it.

A verified client certificate is tried first (`client_certificates`), as kube-apiserver's x509
authenticator comes before its token authenticators.

Tokens are tried as its authenticators try them: the sandbox's configured users' static tokens (the
--token-auth-file), then ServiceAccount JWTs (`sa_tokens`: bound tokens and legacy Secret tokens, checked
against the ServiceAccount, bound object and Secret as stored now). Every authenticated user is also in
`system:authenticated`. A request without credentials is anonymous (`system:anonymous`, in
`system:unauthenticated`) when anonymous auth is on, else unauthenticated (401); a bad token is always 401.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from types import MappingProxyType

from chaoskirvis.sandbox.rbac import ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, UserInfo, service_account_groups, \
    service_account_user
from chaoskirvis.sandbox.resources import PODS, SECRETS, SERVICE_ACCOUNTS
from chaoskirvis.sandbox.sa_tokens import LEGACY_TOKEN_TYPE, TokenIssuer, TokenSubject, subject_of
from chaoskirvis.sandbox.store import Store

ANONYMOUS = UserInfo("system:anonymous", groups=(ALL_UNAUTHENTICATED,))


def authenticated(user: UserInfo) -> UserInfo:
    """The user with `system:authenticated` among its groups (the authenticators' group adder)."""
    if ALL_AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, ALL_AUTHENTICATED), user.extra)


class Authenticator:
    """Bearer tokens of configured users and of ServiceAccounts; anonymous requests when allowed."""

    def __init__(self, tokens: Mapping[str, UserInfo], issuer: TokenIssuer, store: Store,
                 anonymous: bool = False) -> None:
        self.tokens = tokens  # shared with the sandbox, which adds users to it
        self.issuer = issuer
        self.store = store
        self.anonymous = anonymous

    def authenticate(self, authorization: str) -> UserInfo | None:
        """The user of an `Authorization` header value; None for a request that is not authenticated."""
        if not authorization.strip():
            return ANONYMOUS if self.anonymous else None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        user = self.tokens.get(token)
        if user is not None:
            return authenticated(user)
        claims = self.issuer.claims(token)
        subject = subject_of(claims) if claims is not None else None
        if subject is None or not self._still_valid(subject, token):
            return None
        extra: dict[str, tuple[str, ...]] = {}
        if subject.bound is not None and subject.bound.kind == "Pod":
            extra = {"authentication.kubernetes.io/pod-name": (subject.bound.name,),
                     "authentication.kubernetes.io/pod-uid": (subject.bound.uid,)}
        if claims and claims.get("jti"):
            extra["authentication.kubernetes.io/credential-id"] = (f"JTI={claims['jti']}",)
        return UserInfo(service_account_user(subject.namespace, subject.name), subject.sa_uid,
                        (*service_account_groups(subject.namespace), ALL_AUTHENTICATED), MappingProxyType(extra))

    def _still_valid(self, subject: TokenSubject, token: str) -> bool:
        """Whether the ServiceAccount (by uid), and the bound object or legacy Secret, still exist."""
        account = self.store.get(SERVICE_ACCOUNTS, subject.namespace, subject.name)
        if account is None or account["metadata"].get("uid") != subject.sa_uid:
            return False
        if subject.bound is not None:
            resource = PODS if subject.bound.kind == "Pod" else SECRETS
            bound = self.store.get(resource, subject.namespace, subject.bound.name)
            return bound is not None and bound["metadata"].get("uid") == subject.bound.uid
        if subject.secret_name is not None:
            secret = self.store.get(SECRETS, subject.namespace, subject.secret_name)
            if secret is None or secret.get("type") != LEGACY_TOKEN_TYPE:
                return False
            stored = (secret.get("data") or {}).get("token", "")
            try:
                return hmac.compare_digest(base64.b64decode(stored), token.encode())
            except ValueError:
                return False
        return True
