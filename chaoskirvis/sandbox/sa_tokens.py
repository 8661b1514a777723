"""ServiceAccount tokens: the JWTs kube-apiserver issues (TokenRequest, legacy token Secrets) and checks.

Signed ES256 with a key pair made per sandbox (kube-apiserver's --service-account-signing-key-file). A bound
token (TokenRequest) carries the claims kube-apiserver writes: iss, sub `system:serviceaccount:NS:NAME`, aud,
exp, iat, nbf, jti and the `kubernetes.io` claim (namespace, serviceaccount name and uid, the bound pod or
secret); it authenticates until it expires or until its ServiceAccount or bound object (by uid) is gone, and
only when one of its audiences is the API server's. A legacy token (the tokens controller's, in a
`kubernetes.io/service-account-token` Secret) has no expiry and authenticates while its Secret, holding that
very token, and its ServiceAccount exist.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature


# kind's (and kubeadm's) --service-account-issuer, also the API server's audience.
ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600  # "may not specify a duration less than 10 minutes"
MAX_EXPIRATION_SECONDS = 1 << 32
_LEGACY = "kubernetes.io/serviceaccount/"
LEGACY_TOKEN_TYPE = "kubernetes.io/service-account-token"  # the Secret type the tokens controller fills


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class BoundObject:
    """The Pod or Secret a token is bound to (its boundObjectRef, uid filled in)."""

    kind: str
    name: str
    uid: str


class TokenIssuer:
    """Signs and verifies this sandbox's ServiceAccount JWTs."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._public = self._key.public_key()
        self._key_id = _b64(uuid.uuid4().bytes)

    def _sign(self, claims: Mapping[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "ES256", "kid": self._key_id}, separators=(",", ":")).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(self._key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
        return f"{header}.{payload}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def issue(self, namespace: str, name: str, sa_uid: str, audiences: list[str], expiration_seconds: int,
              bound: BoundObject | None, now: float | None = None) -> tuple[str, int]:
        """A bound token for the ServiceAccount NAMESPACE/NAME; and its expiry (a Unix time)."""
        issued = int(now if now is not None else time.time())
        expiry = issued + expiration_seconds
        kubernetes: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": sa_uid}}
        if bound is not None:
            kubernetes[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        claims = {"aud": audiences, "exp": expiry, "iat": issued, "iss": ISSUER, "jti": str(uuid.uuid4()),
                  "kubernetes.io": kubernetes, "nbf": issued, "sub": f"system:serviceaccount:{namespace}:{name}"}
        return self._sign(claims), expiry

    def issue_legacy(self, namespace: str, name: str, sa_uid: str, secret_name: str) -> str:
        """The token the tokens controller writes into a `kubernetes.io/service-account-token` Secret."""
        return self._sign({"iss": LEGACY_ISSUER, f"{_LEGACY}namespace": namespace,
                           f"{_LEGACY}secret.name": secret_name, f"{_LEGACY}service-account.name": name,
                           f"{_LEGACY}service-account.uid": sa_uid,
                           "sub": f"system:serviceaccount:{namespace}:{name}"})

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this issuer signed (signature checked, times not); None for any other."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signature = _unb64(parts[2])
            if len(signature) != 64:
                return None
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            self._public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
            header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
        except (InvalidSignature, ValueError):
            return None
        if not isinstance(claims, dict) or not isinstance(header, dict) or not hmac.compare_digest(
                str(header.get("kid", "")), self._key_id):
            return None
        return claims


@dataclass(frozen=True)
class TokenSubject:
    """Who a verified token speaks for, and what must still exist for it to stay valid."""

    namespace: str
    name: str
    sa_uid: str
    bound: BoundObject | None = None  # a bound token's pod or secret
    secret_name: str | None = None  # a legacy token's secret


def subject_of(claims: Mapping[str, Any], now: float | None = None) -> TokenSubject | None:
    """The ServiceAccount a token's claims name, if the token is current and meant for the API server."""
    current = now if now is not None else time.time()
    if claims.get("iss") == LEGACY_ISSUER:
        namespace, name = claims.get(f"{_LEGACY}namespace"), claims.get(f"{_LEGACY}service-account.name")
        sa_uid, secret = claims.get(f"{_LEGACY}service-account.uid"), claims.get(f"{_LEGACY}secret.name")
        if all(isinstance(v, str) and v for v in (namespace, name, sa_uid, secret)):
            return TokenSubject(namespace, name, sa_uid, secret_name=secret)
        return None
    if claims.get("iss") != ISSUER or ISSUER not in (claims.get("aud") or []):
        return None
    if not (isinstance(claims.get("exp"), int) and isinstance(claims.get("nbf"), int)
            and claims["nbf"] <= current < claims["exp"]):
        return None
    kubernetes = claims.get("kubernetes.io") or {}
    account = kubernetes.get("serviceaccount") or {}
    bound = next((BoundObject(kind, kubernetes[key]["name"], kubernetes[key]["uid"])
                  for key, kind in (("pod", "Pod"), ("secret", "Secret")) if isinstance(kubernetes.get(key), dict)),
                 None)
    if not (kubernetes.get("namespace") and account.get("name") and account.get("uid")):
        return None
    return TokenSubject(kubernetes["namespace"], account["name"], account["uid"], bound=bound)


def expiration_timestamp(expiry: int) -> str:
    return datetime.datetime.fromtimestamp(expiry, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

