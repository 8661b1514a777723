"""Signed evidence: who vouches for a journal, on top of the digest that shows whether it was edited.

A signature is a DSSE envelope (https://github.com/secure-systems-lab/dsse, v1) at
``chaoskirvis.digest.signature``, a place the digest does not cover. Its payload (type
``application/vnd.chaoskirvis.evidence+json``) is a small JSON statement naming the journal's digest, run id
and experiment title; each signature is Ed25519 over DSSE's pre-authentication encoding (PAE) of the
payload type and payload, and its ``keyid`` is the SHA-256 (hex) of the raw 32-byte public key.

Checking a journal against a key: the digest first (the journal is what was sealed), then the signature
(the key holder vouched for a statement), then the statement (it names this journal's digest, run id and
title, so a signature cannot be moved from one journal to another).

Keys are PEM files: PKCS#8 private keys, SubjectPublicKeyInfo public keys, as
``openssl genpkey -algorithm ed25519`` and ``openssl pkey -pubout`` write them (unencrypted). A private key
is only ever read into memory: no message here contains it or the file's content.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from chaoskirvis.evidence.digest import verify as verify_digest

__all__ = [
    "PAYLOAD_TYPE", "STATEMENT_SCHEMA", "SigningError", "SignatureCheck", "load_private_key", "load_public_key",
    "keyid_of", "pae", "statement_of", "sign", "sign_file", "signature_of", "signers_of", "check",
]

PAYLOAD_TYPE = "application/vnd.chaoskirvis.evidence+json"
STATEMENT_SCHEMA = "chaoskirvis.signed-evidence/v1"


class SigningError(Exception):
    """A key that cannot be used, or a journal that cannot be signed; the message is one line."""


# -- keys ---------------------------------------------------------------------------------------------

def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key of a PEM (PKCS#8) file; `SigningError` if it is missing or not one."""
    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        raise SigningError(f"signing key {path}: the key is encrypted; give an unencrypted PEM key") from None
    except (ValueError, UnsupportedAlgorithm):
        hint = "this is a public key: sign with its private key" if b"PUBLIC KEY-----" in data \
            else "make one with `openssl genpkey -algorithm ed25519`"
        raise SigningError(f"signing key {path}: not a PEM private key ({hint})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"signing key {path}: not an Ed25519 key ({_kind(key)})")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key of a PEM (SubjectPublicKeyInfo) file; `SigningError` if it is missing or not one."""
    data = _read_key_file(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        hint = " (this is a private key: give its public key, `openssl pkey -in KEY -pubout`)" \
            if b"PRIVATE KEY-----" in data else ""
        raise SigningError(f"public key {path}: not a PEM public key{hint}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"public key {path}: not an Ed25519 key ({_kind(key)})")
    return key


def keyid_of(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """SHA-256 (hex) of the raw 32-byte public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SigningError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise SigningError(f"{what} {path}: is a folder, not a key file") from None
    except OSError as exc:
        raise SigningError(f"{what} {path}: cannot read it: {exc.strerror or type(exc).__name__}") from None


def _kind(key: Any) -> str:
    return type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace("PublicKey", "") or "unknown"


# -- DSSE ---------------------------------------------------------------------------------------------

def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def statement_of(journal: dict[str, Any]) -> dict[str, Any]:
    """What a signature vouches for: the journal's digest, run id and experiment title."""
    section = journal.get("chaoskirvis") or {}
    digest = section.get("digest") or {}
    return {
        "schema": STATEMENT_SCHEMA,
        "digest": {"algorithm": digest.get("algorithm"), "value": digest.get("value")},
        "run_id": section.get("run_id"),
        "experiment": {"title": (section.get("experiment") or {}).get("title")},
    }


def sign(journal: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Add `key`'s signature to a sealed journal (in place) and return its keyid.

    The journal must match its digest (`SigningError` otherwise: signing would vouch for an edit). A
    signature by another key over the same statement is kept; one by the same key is replaced.
    """
    digest = verify_digest(journal)
    if not digest.ok:
        raise SigningError(f"will not sign it: {digest.message}")
    payload = json.dumps(statement_of(journal), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    keyid = keyid_of(key)
    signatures = []
    current = signature_of(journal)
    if isinstance(current, dict) and current.get("payloadType") == PAYLOAD_TYPE \
            and current.get("payload") == _b64(payload) and isinstance(current.get("signatures"), list):
        signatures = [s for s in current["signatures"] if isinstance(s, dict) and s.get("keyid") != keyid]
    signatures.append({"keyid": keyid, "sig": _b64(key.sign(pae(PAYLOAD_TYPE, payload)))})
    journal["chaoskirvis"]["digest"]["signature"] = {
        "payloadType": PAYLOAD_TYPE, "payload": _b64(payload), "signatures": signatures,
    }
    return keyid


def sign_file(path: Path, key: Ed25519PrivateKey) -> str:
    """Sign the journal file at `path` (rewritten in place); its keyid. `SigningError` if it cannot be."""
    try:
        journal = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SigningError(f"cannot read it as a journal: {exc}") from None
    if not isinstance(journal, dict):
        raise SigningError("cannot read it as a journal: not a JSON object")
    keyid = sign(journal, key)
    path = Path(path)
    partial = path.with_name(f".{path.name}.signing")
    try:  # a crash mid-write must not cost the journal
        partial.write_text(json.dumps(journal, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise SigningError(f"cannot write it: {exc.strerror or exc}") from None
    return keyid


def signature_of(journal: Any) -> Any:
    """The DSSE envelope a journal carries, or None."""
    section = journal.get("chaoskirvis") if isinstance(journal, dict) else None
    digest = section.get("digest") if isinstance(section, dict) else None
    return digest.get("signature") if isinstance(digest, dict) else None


def signers_of(journal: Any) -> list[str]:
    """The keyids a journal's envelope names (unchecked: a keyid is only a hint)."""
    envelope = signature_of(journal)
    signatures = envelope.get("signatures") if isinstance(envelope, dict) else None
    return [str(s.get("keyid")) for s in signatures or [] if isinstance(s, dict)]


@dataclass(frozen=True)
class SignatureCheck:
    """``signed`` (by one of the keys), ``modified``, ``unsealed``, ``unsigned``, ``other-key`` or ``broken``."""

    state: str
    message: str
    keyid: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "signed"


def check(journal: Any, keys: dict[str, Ed25519PublicKey]) -> SignatureCheck:
    """Check `journal` (as read from its file): its digest, then a signature by one of `keys` (keyid -> key)."""
    digest = verify_digest(journal)
    if not digest.ok:
        return SignatureCheck(digest.state, digest.message)
    envelope = signature_of(journal)
    if envelope is None:
        return SignatureCheck("unsigned", "not signed: the journal carries no signature, and a key is required")
    payload = _envelope_payload(envelope)
    if payload is None:
        return SignatureCheck("broken",
                              "BROKEN signature: the signature is not a DSSE envelope of chaoskirvis evidence")
    signatures = [s for s in envelope.get("signatures") or [] if isinstance(s, dict)]
    message = pae(PAYLOAD_TYPE, payload)
    for signature in signatures:
        raw = _unb64(signature.get("sig"))
        for keyid, key in keys.items():
            try:
                key.verify(raw or b"", message)
            except InvalidSignature:
                continue
            return _bound(journal, payload, keyid)
    named = [str(s.get("keyid")) for s in signatures]
    if ours := [keyid for keyid in named if keyid in keys]:
        return SignatureCheck("broken", f"BROKEN signature: the signature by keyid {_short(ours)} does not verify "
                                        "(the signature or its statement was changed)")
    if not named:
        return SignatureCheck("broken", "BROKEN signature: the envelope holds no signature")
    return SignatureCheck("other-key", f"signed by another key: keyid {_short(named)}, "
                                       f"not by the key(s) given (keyid {_short(list(keys))})")


def _bound(journal: dict[str, Any], payload: bytes, keyid: str) -> SignatureCheck:
    """A valid signature vouches for this journal only if its statement names this journal."""
    try:
        statement = json.loads(payload)
    except ValueError:
        statement = None
    if not isinstance(statement, dict) or statement.get("schema") != STATEMENT_SCHEMA:
        return SignatureCheck("broken", f"BROKEN signature: keyid {keyid} signed something that is not a "
                                        f"{STATEMENT_SCHEMA} statement", keyid)
    if statement != statement_of(journal):
        signed = (statement.get("digest") or {}).get("value") if isinstance(statement.get("digest"), dict) else None
        return SignatureCheck("broken", f"BROKEN signature: keyid {keyid} signed another journal "
                                        f"(digest {signed}, run {statement.get('run_id')}), not this one", keyid)
    return SignatureCheck("signed", "verified and signed: the journal matches its digest "
                                    f"{statement['digest']['value']}, signed by keyid {keyid}", keyid)


def _envelope_payload(envelope: Any) -> bytes | None:
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        return None
    if not isinstance(envelope.get("signatures"), list):
        return None
    return _unb64(envelope.get("payload"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes | None:
    """Standard or URL-safe base64, padded or not (DSSE accepts both); None if it is not base64."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _short(keyids: list[str]) -> str:
    return ", ".join(keyids) or "none"
