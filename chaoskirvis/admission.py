"""Ask the API server to admit an object and read its answer as a security outcome.

A denial by an admission control (Pod Security Admission, a ValidatingAdmissionPolicy, a validating
webhook) is the outcome ``blocked``; an object that was stored is ``allowed``; a dry run that a webhook
could not take part in is ``inconclusive``. Anything else (an invalid manifest, a missing namespace, our
own lack of permission, a server error) is not an outcome: the attempt itself went wrong and raises.

A denial is recognised by the status code and the Status body together, as the API server answers
each control (kubernetes/kubernetes, staging/src/k8s.io/...), never by its message alone:

- Pod Security Admission (`pod-security-admission/admission/response.go`, apierrors.NewForbidden):
  403, reason ``Forbidden``, ``pods "NAME" is forbidden: violates PodSecurity "LEVEL:VERSION": ...``;
- a ValidatingAdmissionPolicy (`apiserver/.../policy/validating/dispatcher.go`): the code for the
  validation's reason (``Forbidden`` 403, ``Unauthorized`` 401, ``RequestEntityTooLarge`` 413, ``Invalid``
  422, the default), ``... is forbidden: ValidatingAdmissionPolicy 'P' with binding 'B' denied request: ...``;
- a validating webhook (`apiserver/.../webhook/errors/statuserror.go`, ToStatusErr): the webhook's own
  4xx code (403 when it gave none), ``admission webhook "NAME" denied the request...``. A webhook that
  answered 5xx did not deny by policy: that is an error;
- a webhook that could not be called (unreachable, too slow, a 5xx or garbage answer) with ``failurePolicy:
  Fail`` (`validating/dispatcher.go` and `mutating/dispatcher.go`: apierrors.NewInternalError of
  ErrCallingWebhook): 500, reason ``InternalError``, ``Internal error occurred: failed calling webhook
  "NAME": ...``. The request was refused because the control failed closed: ``blocked`` by ``admission webhook
  NAME (failed closed)``. With ``Ignore`` the API server admits the request and says nothing.

The body must be a ``Status`` with ``status: Failure`` and the same ``code`` as the HTTP answer. A 500
whose text reads as a denial, a 2xx, RBAC's 403 (``User "x" cannot create resource ...``) or a schema
422 are errors.

An attempt made *as an identity* (`chaoskirvis.client.Identity`: impersonated, or with its own token)
tests RBAC too. RBAC's 403 is then ``blocked`` by ``RBAC`` when it names that identity: the authorizer's
``User "NAME" cannot VERB resource "R" ...`` (`apiserver/pkg/endpoints/handlers/responsewriters/errors.go`,
forbiddenMessage) or the escalation check's ``user "NAME" (groups=[...]) is attempting to grant RBAC
permissions not currently held`` (`pkg/registry/rbac/validation/rule.go`, ConfirmNoEscalation; newer
releases leave the groups out). A 403
refusing the impersonation itself (``User "RUNNER" cannot impersonate resource "users" ...``,
`apiserver/pkg/endpoints/filters/impersonation.go`) or naming anyone else is the runner's own missing
permission: an error, never a block.

A CertificateSigningRequest is created, then approved (`attempt_csr`). The CSR admission plugins
(`plugin/pkg/admission/certificates`) answer 403 ``Forbidden`` through admission.NewForbidden:
CertificateSubjectRestriction's ``use of kubernetes.io/kube-apiserver-client signer with system:masters group
is not allowed`` at create is its denial; CertificateApproval's ``user not permitted to approve requests with
signerName "S"`` is the authorizer's answer for the requesting user (``approve`` on ``signers``), so made as
the identity it is RBAC's block, and made as the runner the runner's own missing permission.

A change to an object that exists (`attempt_change`: a guardrail technique's patch or delete) is read the
same way: a denial by an admission control or RBAC refusing the identity is ``blocked``; the change stored
is ``allowed``. Its original is in the run's record before the request is sent (`chaoskirvis.ledger.changes`).
"""
from __future__ import annotations

import base64
import datetime as dt
import re
import time
from collections.abc import Mapping
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

from chaoskirvis.client import Answer, ApiError, Identity, KubeAPI
from chaoskirvis.ledger import record
from chaoskirvis.ledger.refs import ObjectRef
from chaoskirvis.ledger.restore import gone_by
from chaoskirvis.ledger.state import RunState
from chaoskirvis.targets import missing_namespace
from chaoskirvis.techniques.unit import Request

__all__ = ["MODES", "CHANGE_MODES", "CERTIFICATE_WAIT_SECONDS", "attempt_create", "attempt_csr", "attempt_request",
           "attempt_change", "answered_by",
           "issued_certificate", "rbac_refusal", "refused_as", "looks_like_denial"]

MODES = ("dry-run", "create", "create-and-delete")
CHANGE_MODES = ("dry-run", "change")
CERTIFICATE_WAIT_SECONDS = 10.0  # kube-controller-manager's csrsigning controller signs within a second or two

# The patterns below are compiled on first use (by `re`, which keeps them): most runs need one or two.
# apierrors.NewForbidden's prefix: `RESOURCE "NAME" is forbidden: `, `RESOURCE is forbidden: ` or `forbidden: `.
_FORBIDDEN = r'(?:[a-z0-9][a-z0-9./-]*(?: "(?:[^"\\]|\\.)*")? is )?forbidden: '
_POD_SECURITY = rf'{_FORBIDDEN}violates PodSecurity "(?:privileged|baseline|restricted):(?:latest|v1\.\d+)": '
_POLICY = rf"{_FORBIDDEN}ValidatingAdmissionPolicy '([^']+)'(?: with binding '[^']+')? denied request: "
_WEBHOOK = rf'(?:{_FORBIDDEN})?admission webhook "([^"]+)" denied the request(?::| without explanation)'
# reasonToCode in policy/validating: the only reasons a validation may give, and their codes.
_POLICY_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}
_WEBHOOK_FAILED_CLOSED = \
    r'Internal error occurred: failed calling webhook "([^"]+)"(?:: |; no further details available$)'
_NOT_A_DECISION = {408, 429}  # a timeout or a throttle is no webhook's verdict, whatever its text says
# The same texts anywhere in a message: only to say why an answer that reads as a denial is not one.
_LOOKS_LIKE = (
    (r'violates PodSecurity "', "PodSecurity"),
    (r"ValidatingAdmissionPolicy '[^']+'.* denied request", "a ValidatingAdmissionPolicy"),
    (r'admission webhook "[^"]+" denied the request', "an admission webhook"),
)
_NO_DRY_RUN = r"does not support dry run"
# plugin/pkg/admission/certificates: subjectrestriction (at create) and approval (the approval subresource).
_SUBJECT_RESTRICTION = rf"{_FORBIDDEN}use of \S+ signer with system:masters group is not allowed$"
_NOT_PERMITTED_TO_APPROVE = rf'{_FORBIDDEN}user not permitted to approve requests with signerName "'
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
# The authorizer's refusal (forbiddenMessage) and the RBAC escalation check's, after NewForbidden's prefix.
_RBAC_DENIED = rf'{_FORBIDDEN}User {_QUOTED} cannot ([a-z]+) (?:resource|path) '
_RBAC_ESCALATION = \
    rf'{_FORBIDDEN}user {_QUOTED}(?: \(groups=\[[^\]]*\]\))? is attempting to grant RBAC permissions not currently held'


def answered_by(status: int, body: Mapping[str, Any] | None) -> str | None:
    """Which admission control denied the request, from the HTTP status and the Status body it answered.

    None when the answer is not an admission control's denial (see the module docstring): an RBAC
    refusal, a server error or a forged text on the wrong code are not blocks.
    """
    if not isinstance(body, Mapping) or body.get("kind") != "Status" or body.get("status") != "Failure":
        return None
    if body.get("code") != status or not isinstance(body.get("message"), str):
        return None
    message, reason = body["message"], body.get("reason") or ""
    if status == 403 and reason == "Forbidden" and re.match(_POD_SECURITY, message):
        return "PodSecurity"
    if status == 403 and reason == "Forbidden" and re.match(_SUBJECT_RESTRICTION, message):
        return "CertificateSubjectRestriction"
    policy = re.match(_POLICY, message)
    if policy and _POLICY_CODES.get(reason) == status:
        return f"ValidatingAdmissionPolicy {policy.group(1)}"
    webhook = re.match(_WEBHOOK, message)
    if webhook and 400 <= status < 500 and status not in _NOT_A_DECISION and reason != "InternalError":
        return f"admission webhook {webhook.group(1)}"
    failed_closed = re.match(_WEBHOOK_FAILED_CLOSED, message)
    if failed_closed and status == 500 and reason == "InternalError":
        return f"admission webhook {failed_closed.group(1)} (failed closed)"
    return None


def rbac_refusal(status: int, body: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(user, verb) of an RBAC 403 (the authorizer's or the escalation check's, verb ``escalate`` then),
    from a well-formed Status; None for any other answer."""
    if status != 403 or not isinstance(body, Mapping) or body.get("kind") != "Status":
        return None
    if body.get("code") != 403 or body.get("reason") != "Forbidden" or not isinstance(body.get("message"), str):
        return None
    denied = re.match(_RBAC_DENIED, body["message"])
    if denied:
        return _unquote(denied.group(1)), denied.group(2)
    escalation = re.match(_RBAC_ESCALATION, body["message"])
    return (_unquote(escalation.group(1)), "escalate") if escalation else None


def blocked_by(exc: ApiError, identity: Identity | None, attempted: str) -> dict[str, Any] | None:
    """The ``blocked`` evidence when a control refused the attempt (an admission control, or RBAC refusing
    `identity` itself); None for any other answer. Raises as `refused_as` does when RBAC refused the runner."""
    denier = answered_by(exc.status, exc.answer.body)
    if denier:
        return {"outcome": "blocked", "blocked": True, "answered_by": denier}
    return refused_as(exc, identity, attempted)


def refused_as(exc: ApiError, identity: Identity | None, attempted: str) -> dict[str, Any] | None:
    """The ``blocked`` evidence when RBAC refused `identity` itself; None when the answer is no RBAC
    refusal. Raises `ActivityFailed` when RBAC refused the runner (the impersonation, or its own request):
    the test could not be carried out as the identity."""
    refusal = rbac_refusal(exc.status, exc.answer.body)
    if refusal is None:
        return None
    user, verb = refusal
    if identity is not None and user == identity.user and verb != "impersonate":
        return {"outcome": "blocked", "blocked": True, "answered_by": "RBAC"}
    if verb == "impersonate":
        kind = "serviceaccounts" if identity and identity.user.startswith("system:serviceaccount:") else "users"
        raise ActivityFailed(
            f"could not attempt {attempted} as {identity.user if identity else 'another identity'}: the API server "
            f"refused the runner {user!r} the impersonation ({exc.message}); grant the runner the impersonate verb "
            f"on {kind} (and on groups when as_groups is given), or use identity_via: token for a service account"
        )
    if identity is None:
        return None  # the runner's own refusal: the caller's error explains it
    raise ActivityFailed(
        f"could not attempt {attempted} as {identity.user}: RBAC refused {user!r}, not that identity "
        f"({exc.message}); the request was not made as the identity, so it tested nothing"
    )


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def looks_like_denial(message: str) -> str | None:
    """The control whose denial `message` reads as, wherever the text is: for an error's explanation only."""
    return next((name for pattern, name in _LOOKS_LIKE if re.search(pattern, message or "")), None)


def attempt_create(
    api: KubeAPI,
    ref: ObjectRef,
    manifest: dict[str, Any],
    *,
    mode: str,
    state: RunState,
    configuration: Configuration | None = None,
    identity: Identity | None = None,
    **context: Any,
) -> dict[str, Any]:
    """Try to create `manifest` at `ref` and return the outcome with its evidence.

    `mode` is ``dry-run`` (server-side dry run, nothing stored), ``create`` (the object stays, recorded
    in the ledger, until the run is restored) or ``create-and-delete`` (a real create, deleted at once).
    With `identity` the create alone is made as that identity; the record's intent and the delete of
    create-and-delete stay the runner's (`api`).
    """
    return _admit(api, ref, manifest, mode=mode, state=state, configuration=configuration, identity=identity,
                  **context)[0]


def _admit(
    api: KubeAPI, ref: ObjectRef, manifest: dict[str, Any], *, mode: str, state: RunState,
    configuration: Configuration | None, identity: Identity | None, **context: Any,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """`attempt_create`'s outcome, and the object the API server stored (None unless it stored one)."""
    if mode not in MODES:
        raise ActivityFailed(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    evidence = {
        "kind": ref.kind.kind, "namespace": ref.record_namespace, "name": ref.name, "mode": mode,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **context,
    }
    if identity is not None:
        evidence["as"] = identity.summary()
    dry_run = mode == "dry-run"
    technique = manifest["metadata"]["labels"].get("chaoskirvis.io/technique", "")
    if not dry_run:
        _write_ahead(api, state, ref, configuration, technique=technique)
    try:
        answer = api.acting_as(identity).create(ref.kind.collection_path(ref.namespace), manifest, dry_run=dry_run)
    except ApiError as exc:
        outcome = _refusal_outcome(exc, evidence, dry_run, api.host, identity)
        if not dry_run and exc.answer.attempts == 1:  # refused at once: nothing was stored
            state.add_gone(ref.path)
        return outcome, None
    _require_the_object(answer, manifest, evidence)
    outcome = {
        **evidence, "outcome": "allowed", "blocked": False, "answered_by": None, "status": answer.status,
        "message": f"the API server admitted {ref}" + (" (dry run: not stored)" if dry_run else ""),
        "warnings": answer.warnings, "latency_ms": answer.latency_ms,
    }
    if answer.recovered:
        outcome["recovered"] = answer.recovered
    if not dry_run:
        state.add_created(ref)
    if mode == "create-and-delete":
        _delete_now(api, state, ref, answer.body)
        return outcome, None
    return outcome, None if dry_run else answer.body


def attempt_request(api: KubeAPI, request: Request, *, identity: Identity | None = None,
                    **context: Any) -> dict[str, Any]:
    """Make a technique's request (as `identity` when given) and return the outcome with its evidence.

    ``allowed`` when the answer is a success, or one of the request's `authorized` statuses (answered only
    after authorization); ``blocked`` when RBAC refused the identity (see `refused_as`) or an admission
    control denied it. The answer's body is never kept (a list of secrets, a token). Anything else raises.
    """
    evidence: dict[str, Any] = {
        "kind": request.kind, "name": request.name, "mode": "request", "request": f"{request.method} {request.path}",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **context,
    }
    if identity is not None:
        evidence["as"] = identity.summary()
    attempted = f"{request.method} {request.path}"
    acting = api.acting_as(identity)
    try:
        answer = acting.request(request.method, request.path, query=request.query or None, body=request.body)
        status, latency, warnings = answer.status, answer.latency_ms, answer.warnings
        message = f"the API server answered {status}: {request.name} allowed"
    except ApiError as exc:
        common = {**evidence, "status": exc.status, "reason": exc.reason, "message": exc.message,
                  "warnings": exc.answer.warnings, "latency_ms": exc.answer.latency_ms}
        blocked = blocked_by(exc, identity, attempted)
        if blocked:
            return {**common, **blocked}
        if exc.status not in request.authorized:
            who = f" as {identity.user}" if identity else ""
            raise ActivityFailed(f"could not attempt {attempted}{who}: the API server answered {exc.status} "
                                 f"{exc.reason or ''}: {exc.message}{_hint(exc)}") from None
        status, latency, warnings = exc.status, exc.answer.latency_ms, exc.answer.warnings
        message = (f"the API server answered {exc.status} ({exc.message}), which it gives only to an authorized "
                   f"request: {request.name} allowed")
    return {**evidence, "outcome": "allowed", "blocked": False, "answered_by": None, "status": status,
            "message": message, "warnings": warnings, "latency_ms": latency}


def attempt_csr(
    api: KubeAPI, ref: ObjectRef, manifest: dict[str, Any], *, mode: str, state: RunState,
    configuration: Configuration | None = None, identity: Identity | None = None, **context: Any,
) -> dict[str, Any]:
    """Create the CertificateSigningRequest `manifest` and approve it, both as `identity`: a team identity
    minting itself a client certificate. Returns the outcome with its evidence.

    ``blocked`` when either step is refused (`step` says which): by RBAC naming the identity, by the
    CertificateApproval plugin's check of ``approve`` on the signer (the authorizer's answer for the identity:
    ``RBAC`` too), or by an admission control; ``allowed`` once the signer issued ``status.certificate``,
    read back by the runner for up to `CERTIFICATE_WAIT_SECONDS`. The outcome names the certificate's
    subject and serial only. The request stays until restore (`mode` ``create``) or is deleted at once
    (``create-and-delete``); a dry run cannot be approved, so it is refused.
    """
    if mode == "dry-run":
        raise ActivityFailed(f"{ref.kind.kind} techniques cannot be asked by dry run: only a stored request can be "
                             "approved; use mode create-and-delete (or create)")
    created_outcome, created = _admit(api, ref, manifest, mode="create" if mode == "create-and-delete" else mode,
                                      state=state, configuration=configuration, identity=identity, **context)
    created_outcome["mode"] = mode  # its delete, for create-and-delete, waits for the approval
    if created is None:
        return {**created_outcome, "step": "create"}
    evidence = {k: v for k, v in created_outcome.items()
                if k not in ("outcome", "blocked", "answered_by", "status", "message", "warnings", "latency_ms")}
    try:
        outcome = _approve(api, ref, created, evidence, identity, created_outcome["latency_ms"])
    finally:
        if mode == "create-and-delete":
            _delete_now(api, state, ref, created)
    return outcome


def _approve(api: KubeAPI, ref: ObjectRef, created: dict[str, Any], evidence: dict[str, Any],
             identity: Identity | None, create_ms: float) -> dict[str, Any]:
    """The approval as `identity`, then the certificate the signer issued: the outcome."""
    attempted = f"to approve {ref}"
    body = {**created, "status": {**(created.get("status") or {}), "conditions": [
        {"type": "Approved", "status": "True", "reason": "KirvisApprove",
         "message": f"approved as {identity.user if identity else 'the runner'} by chaoskirvis run "
                    f"{created['metadata']['labels'].get('chaoskirvis.io/run-id', '')}"}]}}
    try:
        answer = api.acting_as(identity).request("PUT", f"{ref.path}/approval", body=body)
    except ApiError as exc:
        common = {**evidence, "step": "approval", "status": exc.status, "reason": exc.reason, "message": exc.message,
                  "warnings": exc.answer.warnings, "latency_ms": round(create_ms + exc.answer.latency_ms, 1)}
        blocked = blocked_by(exc, identity, attempted)
        if blocked:
            return {**common, **blocked}
        if exc.status == 403 and re.match(_NOT_PERMITTED_TO_APPROVE, exc.message or "") and identity is not None:
            return {**common, "outcome": "blocked", "blocked": True, "answered_by": "RBAC"}
        raise ActivityFailed(f"could not attempt {attempted}: the API answered {exc.status} {exc.reason or ''}: "
                             f"{exc.message}{_hint(exc)}") from None
    issued = issued_certificate(api, ref, answer.body)
    return {**evidence, "step": "approval", "outcome": "allowed", "blocked": False, "answered_by": None,
            "status": answer.status, "certificate": issued, "warnings": answer.warnings,
            "latency_ms": round(create_ms + answer.latency_ms, 1),
            "message": f"the signer issued a client certificate for {issued['subject']} through {ref}"}


def issued_certificate(api: KubeAPI, ref: ObjectRef, approved: dict[str, Any],
                       wait_seconds: float = CERTIFICATE_WAIT_SECONDS) -> dict[str, str]:
    """Subject and serial of the certificate in `approved`'s status, or read back by the runner until the signer
    wrote it (it signs asynchronously on a real cluster). Raises when it failed, was denied, or never came."""
    deadline, delay, csr = time.monotonic() + wait_seconds, 0.1, approved
    while True:
        status = csr.get("status") or {}
        if status.get("certificate"):
            from cryptography import x509  # only a CSR technique needs it: see techniques.identity

            try:
                certificate = x509.load_pem_x509_certificate(base64.b64decode(status["certificate"]))
            except ValueError as exc:
                raise ActivityFailed(f"{ref} was issued a status.certificate that is no PEM certificate ({exc}); "
                                     "the signer's answer tested nothing") from None
            return {"subject": certificate.subject.rfc4514_string(), "serial": f"{certificate.serial_number:x}"}
        ended = [c for c in status.get("conditions") or [] if c.get("type") in ("Failed", "Denied")
                 and c.get("status") == "True"]
        if ended:
            raise ActivityFailed(f"{ref} was approved but then {ended[0]['type']} ({ended[0].get('reason')}: "
                                 f"{ended[0].get('message')}): no certificate, so the attempt tested nothing")
        if time.monotonic() >= deadline:
            raise ActivityFailed(f"{ref} was approved but no certificate was issued within "
                                 f"{wait_seconds:g} s: is kube-controller-manager's csrsigning "
                                 "controller running (--cluster-signing-cert-file)? The attempt tested nothing")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
        try:
            csr = api.request("GET", ref.path).body
        except ApiError as exc:
            raise ActivityFailed(f"could not read {ref} back for its certificate ({exc.status} {exc.reason}: "
                                 f"{exc.message}); the runner needs get on certificatesigningrequests") from None


def _require_the_object(answer: Answer, manifest: dict[str, Any], evidence: dict[str, Any]) -> None:
    """A create's success answer is the object admitted; anything else (a Status, say) tested nothing."""
    body = answer.body
    kind, name = body.get("kind"), (body.get("metadata") or {}).get("name")
    if kind == manifest.get("kind") and name == manifest["metadata"].get("name"):
        return
    where = f" in namespace {evidence['namespace']}" if evidence.get("namespace") else ""
    raise ActivityFailed(
        f"could not attempt to create {evidence['kind']} {evidence['name']}{where}: the API answered "
        f"{answer.status} with {kind or 'no kind'} {name or ''}, not the object"
        f"{not_a_denial_hint(answer.status, body, str(body.get('message') or ''))}; a success code never "
        "carries a denial"
    )


def _refusal_outcome(exc: ApiError, evidence: dict[str, Any], dry_run: bool, host: str,
                     identity: Identity | None = None) -> dict[str, Any]:
    common = {
        **evidence, "status": exc.status, "reason": exc.reason, "message": exc.message,
        "warnings": exc.answer.warnings, "latency_ms": exc.answer.latency_ms,
    }
    missing_namespace(exc, evidence.get("namespace"), host)
    where = f" in namespace {evidence['namespace']}" if evidence.get("namespace") else ""
    blocked = blocked_by(exc, identity, f"to create {evidence['kind']} {evidence['name']}{where}")
    if blocked:
        return {**common, **blocked}
    if dry_run and exc.status == 400 and re.search(_NO_DRY_RUN, exc.message):
        return {**common, "outcome": "inconclusive", "blocked": False, "answered_by": None}
    raise ActivityFailed(
        f"could not attempt to create {evidence['kind']} {evidence['name']}{where}: the API answered "
        f"{exc.status} {exc.reason or ''}: {exc.message}{_hint(exc)}"
    )


def not_a_denial_hint(status: int, body: Any, message: str) -> str:
    """Why an answer whose text reads as a denial was not counted as one ("" when it does not read so)."""
    control = looks_like_denial(message)
    if not control:
        return ""
    code = body.get("code") if isinstance(body, Mapping) else None
    reason = body.get("reason") if isinstance(body, Mapping) else None
    return (f" (its text reads as a denial by {control}, but the answer is not the one that control gives: "
            f"HTTP {status}, Status reason {reason or 'none'}, code {code}; not counted as blocked)")


def _hint(exc: ApiError) -> str:
    forged = not_a_denial_hint(exc.status, exc.answer.body, exc.message)
    if forged:
        return forged
    if exc.status == 403:
        return " (this refusal is not an admission control's: the run's identity lacks permission)"
    if exc.status in (400, 422):
        return " (the request is invalid, so it tested no control)"
    return ""


def _write_ahead(
    api: KubeAPI, state: RunState, ref: ObjectRef, configuration: Configuration | None, **details: Any,
) -> None:
    """The run's intent to create `ref`, in its record in the cluster, before the create (SIGKILL-safe)."""
    try:
        record.write_intent(api, state, ref, configuration, **details)
    except ApiError as exc:
        missing_namespace(exc, ref.record_namespace, api.host)
        raise ActivityFailed(
            f"could not record the run's intent to create {ref} before creating it "
            f"({exc.status} {exc.reason}: {exc.message}){_hint(exc)}; nothing was created"
        ) from None


def _delete_now(api: KubeAPI, state: RunState, ref: ObjectRef, created: dict[str, Any]) -> None:
    """Delete the object just created (on its uid: the very object the create stored); the run's restore
    confirms it gone when this answer does not show it so."""
    body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    uid = (created.get("metadata") or {}).get("uid")
    if uid:
        body["preconditions"] = {"uid": uid}
    try:
        answer = api.request("DELETE", ref.path, body=body)
    except ApiError as exc:
        if exc.status != 404:
            raise ActivityFailed(
                f"created {ref} to test admission but could not delete it ({exc.status} {exc.message}); "
                "the run's rollback or `kirvis cleanup` will remove it"
            ) from None
        state.add_gone(ref.path)
        return
    if gone_by(answer.body):
        state.add_gone(ref.path)


def attempt_change(
    api: KubeAPI, ref: ObjectRef, original: dict[str, Any], intended: dict[str, Any] | None, *, mode: str,
    state: RunState, configuration: Configuration | None = None, identity: Identity | None = None, **context: Any,
) -> dict[str, Any]:
    """Try to change the existing object `ref` from `original` (as the runner read it) to `intended` (None:
    delete it), as `identity` when given, and return the outcome with its evidence.

    The patch is the JSON merge patch from `original` to `intended`, carrying `original`'s resourceVersion
    (the API server answers 409 if the object changed since it was read); the delete carries its uid and
    resourceVersion as preconditions. With `mode` ``change``, the original is written into the run's record
    first (nothing is sent if that fails) and, once the API server stored the change, the entry is confirmed
    (`chaoskirvis.ledger.changes`); with ``dry-run`` the request is a server-side dry run and nothing is
    recorded or stored. Raises `ActivityFailed` for any answer that is neither a block nor the change.
    """
    from chaoskirvis.ledger import changes  # a guardrail technique's: a run that changes nothing never imports it

    if mode not in CHANGE_MODES:
        raise ActivityFailed(f"unknown mode {mode!r}: use one of {', '.join(CHANGE_MODES)}")
    verb = "delete" if intended is None else "patch"
    evidence = {
        "kind": ref.kind.kind, "namespace": ref.record_namespace, "name": ref.name, "mode": mode, "verb": verb,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **context,
    }
    if identity is not None:
        evidence["as"] = identity.summary()
    dry_run = mode == "dry-run"
    attempted = f"to {verb} {ref}"
    with state.lock:
        earlier = state.changes.get(ref.path)
    if not dry_run:
        try:
            changes.record_change(api, state, ref, original, intended, configuration,
                                  technique=",".join(context.get("techniques") or []))
        except ApiError as exc:
            raise ActivityFailed(f"could not record the original of {ref} before changing it ({exc.status} "
                                 f"{exc.reason}: {exc.message}){_hint(exc)}; nothing was changed") from None
    metadata = original["metadata"]
    query = {"dryRun": "All" if dry_run else None}
    acting = api.acting_as(identity)
    try:
        if intended is None:
            answer = acting.request("DELETE", ref.path, query=query, body={
                "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                "preconditions": {"uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"]}})
        else:
            patch = changes.merge_patch(changes.content(original), changes.content(intended))
            patch.setdefault("metadata", {})["resourceVersion"] = metadata["resourceVersion"]
            answer = acting.request("PATCH", ref.path, query=query, body=patch,
                                    content_type="application/merge-patch+json")
    except ApiError as exc:
        common = {**evidence, "status": exc.status, "reason": exc.reason, "message": exc.message,
                  "warnings": exc.answer.warnings, "latency_ms": exc.answer.latency_ms}
        blocked = blocked_by(exc, identity, attempted)
        if blocked:
            if not dry_run:
                changes.withdraw_change(api, state, ref, earlier, configuration)
            return {**common, **blocked}
        changed = " (it changed since it was read: try again)" if exc.status == 409 else ""
        who = f" as {identity.user}" if identity else ""
        raise ActivityFailed(f"could not attempt {attempted}{who}: the API answered {exc.status} {exc.reason or ''}: "
                             f"{exc.message}{changed}{_hint(exc)}") from None
    outcome = {
        **evidence, "outcome": "allowed", "blocked": False, "answered_by": None, "status": answer.status,
        "message": f"the API server let {ref} be {'deleted' if intended is None else 'changed'}"
                   + (" (dry run: not stored)" if dry_run else "; its original is in the run's record for restore"),
        "warnings": answer.warnings, "latency_ms": answer.latency_ms,
    }
    if not dry_run and not changes.confirm_change(api, state, ref, answer.body, configuration):
        outcome["message"] += " (confirming the change in the record failed: restore judges it by its content)"
    return outcome
