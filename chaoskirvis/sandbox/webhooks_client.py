"""Calling one admission webhook: the AdmissionReview sent, the HTTPS call, and the checks on the answer.

Follows kubernetes `staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/request/admissionreview.go`
(`CreateV1AdmissionReview`, `VerifyAdmissionResponse`), the dispatchers' `callHook` (validating/dispatcher.go,
mutating/dispatcher.go) and client-go's rest client for the wording of what goes wrong:

- The request is `POST` of an AdmissionReview in the first of the webhook's admissionReviewVersions that the
  API server speaks (v1, then v1beta1), with a fresh uid, to `clientConfig.url` or to the service
  `https://NAME.NAMESPACE.svc:PORT/PATH`, with `?timeout=Ns` (timeoutSeconds), TLS verified against
  `clientConfig.caBundle` (else the system's roots) for the URL's host or the service's DNS name.
  A service must be stored with a ready endpoint (`endpoint`), and is reached at the local address the
  sandbox maps it to (`ServiceMap`): nothing resolves cluster DNS names here.
- What fails is a `CallError` whose text is upstream's `Reason`: ``failed to call webhook: Post "URL": dial
  tcp 127.0.0.1:PORT: connect: connection refused``, ``... context deadline exceeded`` when timeoutSeconds
  passed, ``... tls: failed to verify certificate: x509: ...``, ``an error on the server ("BODY") has
  prevented the request from succeeding`` for a 5xx without a Status body (a Status body's own message
  otherwise), ``couldn't get version/kind; json parse error: ...`` for a body that is not JSON, and
  ``received invalid webhook response: ...`` for an absent response, a wrong kind, a wrong uid or a patch
  where none may be (the texts of VerifyAdmissionResponse).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl

from chaoskirvis.sandbox.admission import AdmissionRequest
from chaoskirvis.sandbox.endpoints import has_ready_endpoint
from chaoskirvis.sandbox.resources import SERVICES
from chaoskirvis.sandbox.store import Store
from chaoskirvis.sandbox.vap import admission_request
from chaoskirvis.sandbox.webhooks_config import REVIEW_VERSIONS, Webhook

# (namespace, name, port) or (namespace, name) of a Service -> "HOST:PORT" where the sandbox reaches it.
ServiceMap = Mapping[tuple[str, ...], str]
_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}
_SUBRESOURCE_KINDS = {("pods", "exec"): {"group": "", "version": "v1", "kind": "PodExecOptions"},
                      ("*", "scale"): {"group": "autoscaling", "version": "v1", "kind": "Scale"}}
_MAX_ERROR_BODY = 1024  # client-go's maxUnstructuredResponseTextBytes is larger; a message stays short here


class CallError(Exception):
    """The webhook could not be called or answered wrongly (ErrCallingWebhook): subject to failurePolicy."""


@dataclass(frozen=True)
class Answer:
    """A verified AdmissionResponse: allowed, the Status of a denial, warnings, and a JSONPatch if any."""

    allowed: bool
    result: dict[str, Any] | None
    warnings: tuple[str, ...]
    patch: bytes | None


def review(webhook: Webhook, request: AdmissionRequest, obj: dict[str, Any] | None,
           old: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The uid and the AdmissionReview (CreateV1AdmissionReview) sent to `webhook` for `request`."""
    version = next((v for v in webhook.review_versions if v in REVIEW_VERSIONS), None)
    if version is None:
        raise CallError("webhook does not accept known AdmissionReview versions (v1, v1beta1)")
    uid = str(uuid.uuid4())
    body = admission_request(request)
    subresource_kind = _SUBRESOURCE_KINDS.get((request.resource.plural, request.subresource or "")) or \
        _SUBRESOURCE_KINDS.get(("*", request.subresource or ""))
    if subresource_kind is not None:  # what the subresource's REST serves: PodExecOptions, Scale
        body["kind"], body["requestKind"] = dict(subresource_kind), dict(subresource_kind)
    user_info = body.pop("userInfo")
    body = {"uid": uid, **body}
    body.pop("dryRun")
    body |= {"userInfo": user_info, "object": obj, "oldObject": old, "dryRun": request.dry_run,
             "options": _options(request)}
    return uid, {"kind": "AdmissionReview", "apiVersion": f"admission.k8s.io/{version}", "request": body}


def _options(request: AdmissionRequest) -> dict[str, Any] | None:
    """The operation's options as admission attributes carry them (none for CONNECT)."""
    kind = _OPTIONS_KIND.get(request.operation)
    if kind is None:
        return None
    options: dict[str, Any] = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    if request.dry_run:
        options["dryRun"] = ["All"]
    return options


def endpoint(webhook: Webhook, services: ServiceMap, store: Store) -> tuple[str, str | None, str]:
    """(the URL as upstream names it, where the sandbox connects instead (None: the URL itself), the TLS name).

    A service is resolved as kube-apiserver's default (ClusterIP) service resolver and kube-proxy resolve it:
    the Service must be stored (``service "NAME" not found``), have a cluster IP and the port; without a
    ready address in its Endpoints on that port the connection to the cluster IP is refused (kube-proxy's
    REJECT), as when the policy engine's pods are gone. Its backends are at the mapped local address."""
    client_config = webhook.client_config
    timeout = f"?timeout={webhook.timeout_seconds}s"
    if client_config.get("url"):
        url = str(client_config["url"])
        return url + timeout, None, yarl.URL(url).host or ""
    reference = client_config.get("service") or {}
    namespace, name, port = reference.get("namespace", ""), reference.get("name", ""), int(reference.get("port") or 443)
    host = f"{name}.{namespace}.svc"
    path = reference.get("path") or ""
    url = f"https://{host}:{port}{path}{timeout}"
    failed = f'failed to call webhook: Post "{url}": '
    service = store.get(SERVICES, namespace, name)
    if service is None:
        raise CallError(f'{failed}service "{name}" not found')
    spec = service.get("spec") or {}
    cluster_ip = spec.get("clusterIP") or ""
    if spec.get("type") != "ExternalName":
        if cluster_ip == "None":
            raise CallError(f'{failed}cannot route to service with ClusterIP "None"')
        service_port = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
        if service_port is None:
            raise CallError(f'{failed}no service port {port} found for service "{name}"')
        if not has_ready_endpoint(store, namespace, name, port):
            raise CallError(f"{failed}dial tcp {cluster_ip}:{port}: connect: connection refused")
    address = services.get((namespace, name, port)) or services.get((namespace, name))
    if address is None:
        raise CallError(f"{failed}dial tcp {cluster_ip or spec.get('externalName')}:{port}: the sandbox has no local "
                        f"address for service {namespace}/{name} (Sandbox(webhook_services=...) or "
                        "map_webhook_service)")
    return url, f"https://{address}{path or '/'}{timeout}", host


class WebhookCaller:
    """POSTs AdmissionReviews from the sandbox's event loop, one aiohttp session shared by every call."""

    def __init__(self, services: ServiceMap) -> None:
        self.services = services
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[bytes | None, ssl.SSLContext] = {}

    async def call(self, webhook: Webhook, uid: str, admission_review: dict[str, Any], store: Store) -> Answer:
        """Send the review and verify the answer; raises CallError (failurePolicy applies). `store` holds the
        Services and Endpoints a service reference is resolved with."""
        url, connect_to, tls_name = endpoint(webhook, self.services, store)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        try:
            async with asyncio.timeout(webhook.timeout_seconds):
                async with self._session.post(
                        connect_to or url, data=json.dumps(admission_review).encode(),
                        headers={"Content-Type": "application/json", "Accept": "application/json, */*"},
                        ssl=self._tls(webhook.ca_bundle), server_hostname=tls_name) as response:
                    body = await response.read()
                    status, content_type = response.status, response.headers.get("Content-Type", "")
        except TimeoutError:
            raise CallError(f'failed to call webhook: Post "{url}": context deadline exceeded') from None
        except aiohttp.ClientConnectorCertificateError as error:
            raise CallError(f'failed to call webhook: Post "{url}": tls: failed to verify certificate: x509: '
                            f"{_certificate_problem(error)}") from None
        except aiohttp.ClientConnectorSSLError:
            raise CallError(f'failed to call webhook: Post "{url}": tls: first record does not look like a TLS '
                            "handshake") from None
        except aiohttp.ClientConnectorError as error:
            raise CallError(f'failed to call webhook: Post "{url}": dial tcp {error.host}:{error.port}: connect: '
                            f"{_connect_problem(error)}") from None
        except aiohttp.ClientError as error:
            raise CallError(f'failed to call webhook: Post "{url}": {error}') from None
        if not 200 <= status < 300:
            raise CallError(f"failed to call webhook: {_http_error(status, content_type, body)}")
        return verify(uid, webhook.mutating, admission_review["apiVersion"], _decode(body))

    def _tls(self, ca_bundle: bytes | None) -> ssl.SSLContext:
        context = self._contexts.get(ca_bundle)
        if context is None:
            context = ssl.create_default_context(cadata=ca_bundle.decode() if ca_bundle else None)
            self._contexts[ca_bundle] = context
        return context

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _certificate_problem(error: aiohttp.ClientConnectorCertificateError) -> str:
    certificate_error = error.certificate_error
    message = str(getattr(certificate_error, "verify_message", "") or certificate_error)
    if "unable to get local issuer certificate" in message or "self-signed" in message or "self signed" in message:
        return "certificate signed by unknown authority"
    mismatch = re.search(r"mismatch, certificate is not valid for '([^']*)'", message)
    if mismatch:  # Go names the certificate's names too ("is valid for A, B, not C"): they are not at hand here
        return f"certificate is not valid for {mismatch.group(1)}"
    return message


def _connect_problem(error: aiohttp.ClientConnectorError) -> str:
    if isinstance(error.os_error, ConnectionRefusedError):
        return "connection refused"
    return error.os_error.strerror or str(error.os_error)


def _http_error(status: int, content_type: str, body: bytes) -> str:
    """client-go's error for a non-2xx answer: a Status body's message, else NewGenericServerResponse's."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status" and decoded.get("message"):
        return str(decoded["message"])
    text = body[:_MAX_ERROR_BODY].decode(errors="replace").strip() if content_type.startswith("text/") else "unknown"
    if status >= 500:
        return f"an error on the server ({json.dumps(text)}) has prevented the request from succeeding"
    return {400: "the server rejected our request for an unknown reason",
            401: "the server has asked for the client to provide credentials",
            404: "the server could not find the requested resource",
            429: "the server has received too many requests and has asked us to try again later"}.get(
        status, f"the server responded with the status code {status} but did not return more information")


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        stripped = body.lstrip()
        first = stripped[:1].decode(errors="replace")
        detail = (f"invalid character '{first}' looking for beginning of value" if stripped
                  else "unexpected end of JSON input")
        raise CallError(f"failed to call webhook: couldn't get version/kind; json parse error: {detail}") from None


def verify(uid: str, mutating: bool, api_version: str, review_answer: Any) -> Answer:
    """VerifyAdmissionResponse for the version sent; raises CallError with its reason."""
    if not isinstance(review_answer, dict) or "kind" not in review_answer:
        raise CallError(f"failed to call webhook: Object 'Kind' is missing in '{json.dumps(review_answer)[:200]}'")
    response = review_answer.get("response")
    if not isinstance(response, dict):
        raise CallError("received invalid webhook response: webhook response was absent")
    v1 = api_version == "admission.k8s.io/v1"
    if v1 and response.get("uid") != uid:
        raise CallError(f"received invalid webhook response: expected response.uid={json.dumps(uid)}, got "
                        f"{json.dumps(str(response.get('uid') or ''))}")
    if v1 and (review_answer.get("apiVersion"), review_answer.get("kind")) != (api_version, "AdmissionReview"):
        group, _, version = str(review_answer.get("apiVersion") or "").rpartition("/")
        raise CallError("received invalid webhook response: expected webhook response of admission.k8s.io/v1, "
                        f"Kind=AdmissionReview, got {group}/{version}, Kind={review_answer.get('kind')}")
    raw_patch, patch_type = response.get("patch"), response.get("patchType")
    try:
        patch = base64.b64decode(raw_patch, validate=True) if raw_patch else None
    except (binascii.Error, ValueError, TypeError):
        raise CallError("failed to call webhook: illegal base64 data in response.patch") from None
    if v1 and mutating:
        if patch and patch_type is None:
            raise CallError("received invalid webhook response: webhook returned response.patch but not "
                            "response.patchType")
        if not patch and patch_type is not None:
            raise CallError("received invalid webhook response: webhook returned response.patchType but not "
                            "response.patch")
        if patch_type is not None and patch_type != "JSONPatch":
            raise CallError(f'unsupported patch type "{patch_type}"')
    elif v1:
        if patch:
            raise CallError("received invalid webhook response: validating webhook may not return response.patch")
        if patch_type is not None:
            raise CallError("received invalid webhook response: validating webhook may not return "
                            "response.patchType")
    result = response.get("status")
    return Answer(allowed=response.get("allowed") is True, result=result if isinstance(result, dict) else None,
                  warnings=tuple(str(w) for w in response.get("warnings") or []),
                  patch=patch if mutating else None)


__all__ = ["Answer", "CallError", "ServiceMap", "WebhookCaller", "endpoint", "review", "verify"]
