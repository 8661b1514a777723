"""The kubernetes.io/kube-apiserver-client signer: kube-controller-manager's csrsigning controller.

As pkg/controller/certificates/signer does it: a CertificateSigningRequest for this signer that is Approved,
not Denied, not Failed and not yet issued gets `status.certificate`, signed by the sandbox's client CA
(`tls.ClientCa`), with the request's subject and subject alternative names, the requested usages, and a
lifetime of spec.expirationSeconds capped to --cluster-signing-duration (8760h, its default) with 10
minutes as the floor, backdated 5 minutes unless shorter than 8 hours, and never past the CA's own expiry.
A request whose usages this signer does not issue gets the Failed condition (SignerValidationFailure)
instead. Requests for other signers are left as they are: no other signer runs.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from chaoskirvis.sandbox import csr
from chaoskirvis.sandbox.store import now_timestamp
from chaoskirvis.sandbox.tls import ClientCa

CLUSTER_SIGNING_DURATION = datetime.timedelta(hours=8760)
_MINIMUM = datetime.timedelta(minutes=10)
_BACKDATE = datetime.timedelta(minutes=5)
_SHORT = datetime.timedelta(hours=8)
_CLIENT_USAGES = ("digital signature", "key encipherment", "client auth")
_KEY_USAGES = {"signing": "digital_signature", "digital signature": "digital_signature",
               "content commitment": "content_commitment", "key encipherment": "key_encipherment",
               "key agreement": "key_agreement", "data encipherment": "data_encipherment",
               "cert sign": "key_cert_sign", "crl sign": "crl_sign", "encipher only": "encipher_only",
               "decipher only": "decipher_only"}
_EXTENDED_USAGES = {"any": x509.ObjectIdentifier("2.5.29.37.0"), "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
                    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH, "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
                    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
                    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
                    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
                    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
                    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
                    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING, "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
                    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
                    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1")}


class ClientCertificateSigner:
    """Issues the certificates of approved kubernetes.io/kube-apiserver-client requests with the client CA."""

    def __init__(self, ca: ClientCa, certificate_ttl: datetime.timedelta = CLUSTER_SIGNING_DURATION) -> None:
        self.ca = ca
        self.certificate_ttl = certificate_ttl

    def signed_status(self, request: dict[str, Any],
                      now: datetime.datetime | None = None) -> dict[str, Any] | None:
        """The status the signer writes for this CSR (certificate issued, or Failed); None when it leaves it."""
        spec, status = request.get("spec") or {}, request.get("status") or {}
        types = csr.condition_types(request)
        if csr.APPROVED not in types or csr.DENIED in types or _failed(status) or status.get("certificate"):
            return None
        if spec.get("signerName") != csr.KUBE_APISERVER_CLIENT:
            return None
        try:
            parsed = csr.parse_request(spec.get("request"))
        except csr.RequestError:
            return None  # the controller logs "unable to parse csr" and retries; nothing is written
        usages = [str(u) for u in spec.get("usages") or []]
        problem = _client_usage_problem(usages)
        if problem is not None:
            stamp = now_timestamp()
            failed = {"type": csr.FAILED, "status": "True", "reason": "SignerValidationFailure", "message": problem,
                      "lastUpdateTime": stamp, "lastTransitionTime": stamp}
            return dict(status, conditions=[*(status.get("conditions") or []), failed])
        pem = self.sign(parsed, usages, spec.get("expirationSeconds"), now or datetime.datetime.now(datetime.UTC))
        return dict(status, certificate=base64.b64encode(pem).decode())

    def sign(self, request: x509.CertificateSigningRequest, usages: list[str], expiration_seconds: int | None,
             now: datetime.datetime) -> bytes:
        """The PEM certificate for `request`, as the signer's PermissiveSigningPolicy makes it."""
        ttl = self._duration(expiration_seconds)
        not_before = now - (_BACKDATE if ttl >= _SHORT else datetime.timedelta(0))
        not_after = min(not_before + ttl, self.ca.certificate.not_valid_after_utc)
        builder = (x509.CertificateBuilder()
                   .subject_name(request.subject).issuer_name(self.ca.certificate.subject)
                   .public_key(request.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca.key.public_key()),
                                  critical=False))
        flags = {name: False for name in set(_KEY_USAGES.values())}
        for usage in usages:
            if usage in _KEY_USAGES:
                flags[_KEY_USAGES[usage]] = True
        if any(flags.values()):
            builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
        order = list(_EXTENDED_USAGES.values())  # Go's x509.ExtKeyUsage order, which the signer sorts by
        extended = sorted({_EXTENDED_USAGES[u] for u in usages if u in _EXTENDED_USAGES}, key=order.index)
        if extended:
            builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
        try:
            names = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        except x509.ExtensionNotFound:
            pass
        return builder.sign(self.ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def _duration(self, expiration_seconds: int | None) -> datetime.timedelta:
        if expiration_seconds is None:
            return self.certificate_ttl
        return max(min(datetime.timedelta(seconds=expiration_seconds), self.certificate_ttl), _MINIMUM)


def _failed(status: dict[str, Any]) -> bool:
    return any(isinstance(c, dict) and c.get("type") == csr.FAILED and c.get("status") == "True"
               for c in status.get("conditions") or [])


def _client_usage_problem(usages: list[str]) -> str | None:
    """validAPIServerClientUsages: client auth required, digital signature and key encipherment allowed."""
    for usage in usages:
        if usage not in _CLIENT_USAGES:
            return f"invalid usage for client certificate: {usage}"
    if "client auth" not in usages:
        return "missing required usage for client certificate: client auth"
    return None


__all__ = ["CLUSTER_SIGNING_DURATION", "ClientCertificateSigner"]
