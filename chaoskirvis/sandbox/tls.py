"""Throwaway TLS for the sandbox: a certificate authority of its own and a server certificate it signs.

Each sandbox makes a new CA when it starts, signs one server certificate for its loopback address (an IP
subject alternative name) and `localhost` (a DNS one), and forgets the CA's private key at once: nothing
else can ever be signed by it. The CA certificate is kept in memory and in `ca.crt` of a private
temporary directory (0700, files 0600) for clients that need a path; the server key is written there
only while the server's `ssl.SSLContext` loads it. `ServerTls.remove` deletes the directory.

A second CA, the client CA (kube-apiserver's --client-ca-file, and kube-controller-manager's
--cluster-signing-cert-file for `csr_signer`), signs client certificates: its key stays in memory only
(`ClientCa.key`), for the life of the sandbox, and is never written anywhere. The server context asks every
client for a certificate (optional) and verifies one it is given against the client CA. Python's `ssl`
verifies during the handshake, so a certificate from another CA ends the handshake (an "unknown ca" alert)
where kube-apiserver, which requests without verifying and lets its x509 authenticator decide, answers 401.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)
_CLOCK_SKEW = datetime.timedelta(minutes=5)  # a client whose clock is a little behind still accepts it
_NO_USAGES = dict(content_commitment=False, key_encipherment=False, data_encipherment=False,
                  key_agreement=False, encipher_only=False, decipher_only=False)


@dataclass(frozen=True)
class ClientCa:
    """The CA that client certificates are verified against and signed by: its certificate and its key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class ServerTls:
    """A sandbox's CA certificate (PEM, and its file), its client CA and its server's TLS context."""

    ca_pem: bytes
    ca_file: Path
    client_ca: ClientCa
    context: ssl.SSLContext

    def remove(self) -> None:
        """Delete the private directory holding `ca_file`."""
        shutil.rmtree(self.ca_file.parent, ignore_errors=True)


def create_server_tls(host: str) -> ServerTls:
    """A new CA, a server certificate for `host` and `localhost`, a client CA, and a TLS 1.2+ server context
    that verifies the client certificates it is given against the client CA."""
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_certificate = _ca_certificate(ca_key, "kirvis-sandbox-ca")
    client_ca_key = ec.generate_private_key(ec.SECP256R1())
    client_ca = ClientCa(_ca_certificate(client_ca_key, "kirvis-sandbox-client-ca"), client_ca_key)
    server_certificate = _server_certificate(server_key, ca_certificate, ca_key, ipaddress.ip_address(host))
    directory = Path(tempfile.mkdtemp(prefix="kirvis-sandbox-tls-"))
    try:
        ca_pem = ca_certificate.public_bytes(serialization.Encoding.PEM)
        ca_file = _write_private(directory / "ca.crt", ca_pem)
        context = _server_context(directory, server_certificate, server_key, client_ca)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return ServerTls(ca_pem=ca_pem, ca_file=ca_file, client_ca=client_ca, context=context)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chaoskirvis sandbox"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    """A certificate valid from a little before now for `VALIDITY`, with a random serial number."""
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _ca_certificate(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    name = _name(common_name)
    return (_builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **_NO_USAGES),
                           critical=True)
            .sign(key, hashes.SHA256()))


def _server_certificate(key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                        address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> x509.Certificate:
    names = [x509.IPAddress(address), x509.DNSName("localhost")]
    return (_builder(_name("kirvis-sandbox"), ca.subject, key.public_key())
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **_NO_USAGES),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _server_context(directory: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey,
                    client_ca: ClientCa) -> ssl.SSLContext:
    """A TLS 1.2+ server context asking for an optional client certificate signed by `client_ca`; the key file
    exists only while the context loads it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=client_ca.pem.decode())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    certificate_file = _write_private(directory / "server.crt", certificate.public_bytes(serialization.Encoding.PEM))
    key_file = _write_private(directory / "server.key", key_pem)
    try:
        context.load_cert_chain(certificate_file, key_file)
    finally:
        key_file.unlink()
        certificate_file.unlink()
    return context


def _write_private(path: Path, content: bytes) -> Path:
    """Write a new file readable by its owner only (0600 from the start, never wider)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    return path


__all__ = ["VALIDITY", "ClientCa", "ServerTls", "create_server_tls"]
