"""Client-certificate authentication: kube-apiserver's x509 authenticator (--client-ca-file).

The TLS handshake has already verified the certificate against the client CA (`tls`), client auth usage
included. The user is the subject's CommonName, the groups its Organization values and
`system:authenticated`, with the certificate's SHA-256 as the credential id, as CommonNameUserConversion
makes them; a certificate without a CommonName authenticates no one, and the request's bearer token, if
any, is tried instead. Tried before tokens, as kube-apiserver's authenticators are.
"""

from __future__ import annotations

import hashlib
import ssl
from types import MappingProxyType

from cryptography import x509
from cryptography.x509.oid import NameOID

from chaoskirvis.sandbox.rbac import ALL_AUTHENTICATED, UserInfo

CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    """The DER of the verified client certificate of a TLS connection, if the client sent one."""
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True) or None


def user_of(der: bytes) -> UserInfo | None:
    """The user a verified client certificate authenticates, or None when it names no one."""
    certificate = x509.load_der_x509_certificate(der)
    subject = certificate.subject
    common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(common_names[-1].value) if common_names else ""  # Go's pkix.Name keeps the last CommonName
    if not name:
        return None
    groups = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if ALL_AUTHENTICATED not in groups:
        groups.append(ALL_AUTHENTICATED)
    extra = {CREDENTIAL_ID: (f"X509SHA256={hashlib.sha256(der).hexdigest()}",)}
    return UserInfo(name, "", tuple(groups), MappingProxyType(extra))


__all__ = ["CREDENTIAL_ID", "peer_certificate", "user_of"]
