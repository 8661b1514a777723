"""CertificateSigningRequests (certificates.k8s.io/v1) as kube-apiserver's registry and admission treat them.

Following pkg/registry/certificates/certificates/strategy.go, pkg/apis/certificates/validation and the
CertificateApproval, CertificateSigning and CertificateSubjectRestriction admission plugins (Kubernetes 1.32):

- create: spec.username, uid, groups and extra are the requesting user's, whatever the client sent, and the
  status starts empty (no pre-approved requests);
- validation: spec.request a PEM "CERTIFICATE REQUEST" whose signature checks, spec.usages present, known
  and unique, spec.signerName a qualified `DOMAIN/PATH` (the legacy-unknown one refused), expirationSeconds
  at least 600, conditions with a type and a status (True only for Approved, Denied and Failed), no
  duplicates, never Approved and Denied together, never removed once added, status.certificate PEM
  CERTIFICATE blocks set once;
- updates: the main resource changes metadata only, `status` changes the status but not the Approved and
  Denied conditions, `approval` changes the conditions only; missing condition timestamps are filled in;
- admission: `approval` needs `approve` on signers (resourceName the signer name or `DOMAIN/*`), a status
  change needs `sign` on signers, and a kubernetes.io/kube-apiserver-client request may not ask for the
  system:masters group.

Signing approved requests is `csr_signer`'s (kube-controller-manager's csrsigning controller).
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from chaoskirvis.sandbox.rbac import MASTERS, Attributes, Authorizer, UserInfo
from chaoskirvis.sandbox.resources import ResourceType, dns_label_errors, dns_subdomain_errors
from chaoskirvis.sandbox.store import Cause, duplicate, forbidden, invalid, now_timestamp, required, unsupported

GROUP = "certificates.k8s.io"
KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
LEGACY_UNKNOWN = "kubernetes.io/legacy-unknown"
APPROVED, DENIED, FAILED = "Approved", "Denied", "Failed"
VALID_USAGES = tuple(sorted((
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement", "data encipherment",
    "cert sign", "crl sign", "encipher only", "decipher only", "any", "server auth", "client auth", "code signing",
    "email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
    "microsoft sgc", "netscape sgc",
)))
MIN_EXPIRATION_SECONDS = 600
_TRUE_ONLY = (APPROVED, DENIED, FAILED)
_STATUS_VALUES = ("False", "True", "Unknown")
_SIGNATURE_FAILURES = ((ec.EllipticCurvePublicKey, "x509: ECDSA verification failure"),
                       (rsa.RSAPublicKey, "crypto/rsa: verification error"),
                       (ed25519.Ed25519PublicKey, "x509: Ed25519 verification failure"))


class RequestError(ValueError):
    """spec.request is not a PEM certificate request with a valid signature (the message is the API server's)."""


def parse_request(request: Any) -> x509.CertificateSigningRequest:
    """spec.request (base64 of PEM, as JSON carries []byte) as the certificate request it holds."""
    pem = _bytes_of(request)
    begin = pem.find(b"-----BEGIN ")
    if begin < 0 or not pem[begin:].startswith(b"-----BEGIN CERTIFICATE REQUEST-----"):
        raise RequestError("PEM block type must be CERTIFICATE REQUEST")
    end = pem.find(b"-----END CERTIFICATE REQUEST-----", begin)
    if end < 0:
        raise RequestError("PEM block type must be CERTIFICATE REQUEST")
    try:
        parsed = x509.load_pem_x509_csr(pem[begin:end + len(b"-----END CERTIFICATE REQUEST-----")])
        public_key = parsed.public_key()
    except ValueError:
        raise RequestError("x509: malformed certificate request") from None
    if not parsed.is_signature_valid:
        failure = next((text for kind, text in _SIGNATURE_FAILURES if isinstance(public_key, kind)),
                       "x509: cannot verify signature: algorithm unimplemented")
        raise RequestError(failure)
    return parsed


def organizations(request: x509.CertificateSigningRequest) -> list[str]:
    """The subject's O values, in order: the groups a certificate issued for it authenticates with."""
    return [str(attribute.value) for attribute in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def _bytes_of(value: Any) -> bytes:
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""


def discovery_entries(resource: ResourceType | None) -> list[dict[str, Any]]:
    """The `certificatesigningrequests/approval` and `/status` entries of certificates.k8s.io/v1's resource list."""
    if resource is None or resource.group != GROUP or resource.kind != "CertificateSigningRequest":
        return []
    return [{"name": f"{resource.plural}/{subresource}", "singularName": "", "namespaced": False,
             "kind": resource.kind, "verbs": ["get", "patch", "update"]} for subresource in ("approval", "status")]


# Create and update, as the strategies prepare them.

def prepare_create(obj: dict[str, Any], user: UserInfo) -> None:
    """The requesting user in spec (username, uid, groups, extra; nothing the client sent) and an empty status."""
    spec = obj["spec"] = dict(obj["spec"]) if isinstance(obj.get("spec"), dict) else {}
    for key in ("username", "uid", "groups", "extra"):
        spec.pop(key, None)
    spec["username"] = user.name
    if user.uid:
        spec["uid"] = user.uid
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {key: list(values) for key, values in user.extra.items()}
    obj["status"] = {}


def prepare_update(obj: dict[str, Any], old: dict[str, Any], subresource: str | None) -> None:
    """What an update may change: metadata (the main resource), the status but its Approved and Denied
    conditions (`status`), or the conditions only (`approval`); missing condition timestamps filled in."""
    old_status = old.get("status") or {}
    obj["spec"] = copy.deepcopy(old.get("spec") or {})
    if subresource is None:
        obj["status"] = copy.deepcopy(old_status)
        return
    status = obj["status"] = dict(obj.get("status") or {}) if isinstance(obj.get("status"), dict) else {}
    conditions = [dict(c) if isinstance(c, dict) else c for c in status.get("conditions") or []]
    if subresource == "status":
        for kind in (APPROVED, DENIED):
            _preserve(conditions, old_status.get("conditions") or [], kind)
    _fill_timestamps(conditions, old_status.get("conditions") or [])
    if subresource == "approval":
        status = obj["status"] = copy.deepcopy(old_status)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def _preserve(conditions: list[Any], old_conditions: list[Any], kind: str) -> None:
    """The old instances of a condition type in place of the new ones, when there are as many of each."""
    new_at = [i for i, c in enumerate(conditions) if _type_of(c) == kind]
    old_of = [c for c in old_conditions if _type_of(c) == kind]
    if len(new_at) == len(old_of):
        for index, condition in zip(new_at, old_of):
            conditions[index] = copy.deepcopy(condition)


def _fill_timestamps(conditions: list[Any], old_conditions: list[Any]) -> None:
    now = now_timestamp()
    for condition in conditions:
        if not isinstance(condition, dict):
            continue
        if not condition.get("lastUpdateTime"):
            condition["lastUpdateTime"] = now
        if not condition.get("lastTransitionTime"):
            condition["lastTransitionTime"] = next(
                (old["lastTransitionTime"] for old in old_conditions if isinstance(old, dict)
                 and old.get("type") == condition.get("type") and old.get("status") == condition.get("status")
                 and old.get("lastTransitionTime")), now)


def _type_of(condition: Any) -> str:
    return str(condition.get("type") or "") if isinstance(condition, dict) else ""


def condition_types(obj: dict[str, Any]) -> list[str]:
    return [_type_of(c) for c in (obj.get("status") or {}).get("conditions") or []]


# Validation (pkg/apis/certificates/validation).

def causes(obj: dict[str, Any], old: dict[str, Any] | None = None, subresource: str | None = None) -> list[Cause]:
    """The field errors of a create (`old` None) or of an update through the main resource or a subresource."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    old_spec = (old or {}).get("spec") or {}
    old_types = condition_types(old) if old else []
    found: list[Cause] = []
    try:
        parse_request(spec.get("request"))
    except RequestError as error:
        found.append(Cause("spec.request", "FieldValueInvalid",
                           f"Invalid value: {_go_bytes(spec.get('request'))}: {error}"))
    usages = spec.get("usages") or []
    if not usages:
        found.append(required("spec.usages"))
    if not (old and any(u not in VALID_USAGES for u in old_spec.get("usages") or [])):
        found += [unsupported(f"spec.usages[{i}]", u, VALID_USAGES) for i, u in enumerate(usages)
                  if u not in VALID_USAGES]
    if not (old and len(set(old_spec.get("usages") or [])) < len(old_spec.get("usages") or [])):
        found += [duplicate(f"spec.usages[{i}]", u) for i, u in enumerate(usages) if u in usages[:i]]
    signer = spec.get("signerName") or ""
    if signer == LEGACY_UNKNOWN and not (old and old_spec.get("signerName") == LEGACY_UNKNOWN):
        found.append(invalid("spec.signerName", signer, "the legacy signerName is not allowed via this API version"))
    else:
        found += _signer_name_causes(signer)
    seconds = spec.get("expirationSeconds")
    if isinstance(seconds, int) and seconds < MIN_EXPIRATION_SECONDS:
        found.append(Cause("spec.expirationSeconds", "FieldValueInvalid", f"Invalid value: {seconds}: may not "
                           "specify a duration less than 600 seconds (10 minutes)"))
    found += _condition_causes(obj, old_types)
    status = obj.get("status") or {}
    old_certificate = ((old or {}).get("status") or {}).get("certificate")
    if old is None or status.get("certificate") != old_certificate:
        problem = _certificate_problem(_bytes_of(status.get("certificate")) if status.get("certificate") else b"")
        if problem and not (old and _certificate_problem(_bytes_of(old_certificate or "")) is not None):
            found.append(invalid("status.certificate", "<certificate data>", problem))
    if old is not None:
        found += _update_causes(obj, old, subresource)
    return found


def _signer_name_causes(signer: str) -> list[Cause]:
    """ValidateSignerName: DOMAIN/PATH, the domain dot-separated DNS labels (two at least), the path
    dot-separated DNS subdomains; only the first bad label of each is reported, as upstream."""
    path_name = "spec.signerName"
    if not signer:
        return [required(path_name)]
    segments = signer.split("/")
    if len(segments) != 2:
        return [invalid(path_name, signer,
                        "must be a fully qualified domain and path of the form 'example.com/signer-name'")]
    domain, path = segments
    found = [_too_long(path_name, 253)] if len(domain) > 253 else []
    domain_labels = domain.split(".")
    for checks, labels, segment in ((dns_label_errors, domain_labels, domain),
                                    (dns_subdomain_errors, path.split("."), path)):
        bad = next(((label, errors) for label in labels if (errors := checks(label))), None)
        if bad is not None:
            found += [invalid(path_name, segment, f'validating label "{bad[0]}": {error}') for error in bad[1]]
        if checks is dns_label_errors and len(domain_labels) < 2:
            found.append(invalid(path_name, domain, "should be a domain with at least two segments separated by dots"))
    if len(signer) > 253 + 63 + 253 + 2:
        found.append(_too_long(path_name, 253 + 63 + 253 + 2))
    return found


def _too_long(field_path: str, limit: int) -> Cause:
    return Cause(field_path, "FieldValueTooLong", f"Too long: may not be more than {limit} bytes")


def _condition_causes(obj: dict[str, Any], old_types: list[str]) -> list[Cause]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    allow_empty_type = "" in old_types
    allow_duplicates = len(set(old_types)) < len(old_types)
    allow_both = APPROVED in old_types and DENIED in old_types
    found: list[Cause] = []
    seen: set[str] = set()
    approved = denied = False
    for index, condition in enumerate(conditions):
        path = f"status.conditions[{index}]"
        condition = condition if isinstance(condition, dict) else {}
        kind, status = str(condition.get("type") or ""), str(condition.get("status") or "")
        if not kind and not allow_empty_type:
            found.append(required(f"{path}.type"))
        allowed = ("True",) if kind in _TRUE_ONLY else _STATUS_VALUES
        if not status:
            found.append(required(f"{path}.status"))
        elif status not in allowed:
            found.append(unsupported(f"{path}.status", status, allowed))
        if not allow_both and ((kind == APPROVED and denied) or (kind == DENIED and approved)):
            found.append(invalid(f"{path}.type", kind, "Approved and Denied conditions are mutually exclusive"))
        approved, denied = approved or kind == APPROVED, denied or kind == DENIED
        if kind in seen and not allow_duplicates:
            found.append(duplicate(f"{path}.type", kind))
        seen.add(kind)
    return found


def _update_causes(obj: dict[str, Any], old: dict[str, Any], subresource: str | None) -> list[Cause]:
    found: list[Cause] = []
    new_conditions = [c for c in (obj.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    old_conditions = [c for c in (old.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    for kind in (APPROVED, DENIED, FAILED):
        if _count(new_conditions, kind) < _count(old_conditions, kind):
            found.append(forbidden("status.conditions", f'updates may not remove a condition of type "{kind}"'))
    if subresource != "approval":
        for kind in (APPROVED, DENIED):
            new_of = [c for c in new_conditions if c.get("type") == kind]
            old_of = [c for c in old_conditions if c.get("type") == kind]
            if len(new_of) > len(old_of):
                found.append(forbidden("status.conditions", f'updates may not add a condition of type "{kind}"'))
            elif len(new_of) == len(old_of) and new_of != old_of:
                found.append(forbidden("status.conditions", f'updates may not modify a condition of type "{kind}"'))
    certificate, old_certificate = (obj.get("status") or {}).get("certificate"), (old.get("status") or {}).get(
        "certificate")
    if (certificate or None) != (old_certificate or None):
        if subresource != "status":
            found.append(forbidden("status.certificate", "updates may not set certificate content"))
        elif old_certificate:
            found.append(forbidden("status.certificate", "updates may not modify existing certificate content"))
    return found


def _count(conditions: list[dict[str, Any]], kind: str) -> int:
    return sum(1 for c in conditions if c.get("type") == kind)


def _certificate_problem(pem: bytes) -> str | None:
    """validateCertificate: empty, or one or more CERTIFICATE PEM blocks without headers, each parsing."""
    if not pem:
        return None
    blocks = 0
    rest = pem
    while (begin := rest.find(b"-----BEGIN ")) >= 0:
        label_end = rest.find(b"-----", begin + 11)
        label = rest[begin + 11:label_end].decode(errors="replace")
        end_marker = f"-----END {label}-----".encode()
        end = rest.find(end_marker, label_end)
        if label_end < 0 or end < 0:
            break
        if label != "CERTIFICATE":
            return f'only CERTIFICATE PEM blocks are allowed, found "{label}"'
        block = rest[begin:end + len(end_marker)]
        if any(b":" in line for line in block.splitlines()[1:-1]):  # base64 has no colon; a header line does
            return "no PEM block headers are permitted"
        try:
            x509.load_pem_x509_certificate(block)
        except ValueError:
            return "x509: malformed certificate"
        blocks += 1
        rest = rest[end + len(end_marker):]
    return None if blocks else "must contain at least one CERTIFICATE PEM block"


def _go_bytes(value: Any) -> str:
    """A []byte as Go's %#v prints it in a field error: []byte{0x2d, 0x2d} (nil: []byte(nil))."""
    if value is None:
        return "[]byte(nil)"
    data = _bytes_of(value)
    return "[]byte{" + ", ".join(f"0x{byte:x}" for byte in data) + "}"


# Admission (plugin/pkg/admission/certificates).

def authorized_for_signer(authorizer: Authorizer, user: UserInfo, verb: str, signer: str) -> bool:
    """IsAuthorizedForSignerName: VERB on signers named the signer, or else named `DOMAIN/*`."""
    names = [signer]
    if "/" in signer:
        names.append(signer.split("/", 1)[0] + "/*")
    return any(authorizer.authorize(user, Attributes(verb, GROUP, "signers", name=name)).allowed for name in names)


def admission_refusal(authorizer: Authorizer, user: UserInfo, obj: dict[str, Any], old: dict[str, Any] | None,
                      subresource: str | None) -> str | None:
    """Why the CSR admission plugins forbid this write (the reason of a 403), if they do."""
    signer = str((obj.get("spec") or {}).get("signerName") or "")
    if old is None and signer == KUBE_APISERVER_CLIENT:  # CertificateSubjectRestriction
        try:
            groups = organizations(parse_request(obj["spec"].get("request")))
        except RequestError as error:
            return f"failed to parse CSR: {error}"
        if MASTERS in groups:
            return f"use of {signer} signer with {MASTERS} group is not allowed"
    if subresource == "approval" and not authorized_for_signer(authorizer, user, "approve", signer):
        return f'user not permitted to approve requests with signerName "{signer}"'
    if subresource == "status" and old is not None:
        old_status, status = old.get("status") or {}, obj.get("status") or {}
        changed = (status.get("certificate") != old_status.get("certificate")
                   or status.get("conditions") != old_status.get("conditions"))
        old_signer = str((old.get("spec") or {}).get("signerName") or "")
        if changed and not authorized_for_signer(authorizer, user, "sign", old_signer):
            return f'user not permitted to sign requests with signerName "{old_signer}"'
    return None


__all__ = ["APPROVED", "DENIED", "FAILED", "GROUP", "KUBE_APISERVER_CLIENT", "RequestError", "admission_refusal",
           "authorized_for_signer", "causes", "condition_types", "discovery_entries", "organizations",
           "parse_request", "prepare_create", "prepare_update"]
