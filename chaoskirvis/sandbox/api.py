"""The sandbox's Kubernetes API handler: an aiohttp low-level handler (served by `aiohttp.web.Server`).

`KubernetesApiHandler.__call__` parses a request (`parse_request`, into an `ApiRequest`), authenticates
it, serves it with `_serve` and keeps the request log; a refusal is a `status.StatusError`, answered with
a Status body. The API semantics live in `store`, `admission`, `patching`, `selectors` and `resources`,
and are orchestrated here. The pods/exec and pods/log subresources are routed here (authorization,
admission, the pod and its container) and served by `exec_ws` and `logs`; the scale subresource by
`scale`. What kubectl needs besides: `protobuf` (its request bodies), `tables` (media type negotiation and
the Tables `kubectl get` prints), `openapi` (`kubectl explain`), `access_reviews` (`kubectl auth can-i`).

Before anything is served, a request is authenticated (`client_certificates`: a client certificate the TLS
handshake verified, then `authentication`: static, ServiceAccount and legacy Secret tokens), takes on the
identity it impersonates (`impersonation`), and is authorized by RBAC
(`rbac.Authorizer`, kept as `KubernetesApiHandler.authorizer`) on the attributes the API server's
RequestInfoFactory finds, resource and non-resource paths alike, in that order, as kube-apiserver's filters
run. Writes of roles and bindings are refused when they would escalate (`escalation`); TokenRequest
(serviceaccounts/NAME/token) is served by `_serve_token_request` (`sa_tokens`). CertificateSigningRequests
are prepared, validated and admitted as their registry and admission plugins do (`csr`), their `approval`
and `status` subresources served by `_serve_csr_subresource`; the store signs approved ones (`csr_signer`).

Behaviours a simple emulator gets wrong (tests/test_sandbox_api_layer.py has one test each):

1. Paths under /api/v1/namespaces: /api/v1/namespaces/NAME is the namespace NAME, not a namespace
   with no resource. `parse_api_path` follows the API server's RequestInfoFactory.
2. labelSelector and fieldSelector apply to list and watch (`selectors`, applied by `_list` and
   `_watch`), with MODIFIED events turned into ADDED/DELETED as objects enter or leave the selection.
3. PUT replaces (`_replace`), with 409 Conflict on a stale metadata.resourceVersion.
4. A refused request stores nothing: validation and the admission chain run before the store writes.
5. Discovery documents are the real shapes (core groupVersion "v1", singularName, verbs sorted):
   they come from `resources`.
6. uid, resourceVersion, creationTimestamp and namespace are filled in (`store.prepare_create`, a
   global resourceVersion counter); lists are `KIND List` documents; create answers 201.
7. A watch ends cleanly at timeoutSeconds (and when the sandbox stops), replays changes after a
   resourceVersion, and answers 410 Expired for one no longer retained.
8. Errors are Status bodies with the API server's reasons and wording, never tracebacks: an unexpected
   exception is logged on the server and answered 500 InternalError.
9. Two sandboxes in one process start and stop in any order (nothing process-wide is patched).
10. `watch` takes every Go boolean spelling (`1`, `t`, `True`, ...), as the API server does (`_flag`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web
import yaml
from multidict import CIMultiDictProxy, MultiMapping

from chaoskirvis.sandbox import access_reviews, client_certificates, csr, custom_resources, escalation, impersonation, \
    openapi, patching, protobuf, resources, sa_tokens, scale, tables
from chaoskirvis.sandbox.admission import AdmissionChain, AdmissionRequest, AdmissionResult, Denial, Operation
from chaoskirvis.sandbox.authentication import Authenticator
from chaoskirvis.sandbox.exec_ws import ExecOptions, ExecSessions
from chaoskirvis.sandbox.logs import LogOptions, PodLogs
from chaoskirvis.sandbox.request_log import RequestLog
from chaoskirvis.sandbox.rbac import Attributes, Authorizer, UserInfo, forbidden_error
from chaoskirvis.sandbox.resources import CERTIFICATE_SIGNING_REQUESTS, NAMESPACES, NODES, PODS, SECRETS, \
    SELF_SUBJECT_REVIEWS, SERVICE_ACCOUNTS, ResourceType
from chaoskirvis.sandbox.status import (
    METHOD_NOT_ALLOWED,
    NO_SUCH_PATH,
    UNAUTHORIZED,
    StatusError,
    bad_request,
    details_of,
    forbidden,
    invalid,
    json_response,
    not_found,
    status_body,
    status_error,
    store_error,
)
from chaoskirvis.sandbox.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    field_value,
    parse_field_selector,
    parse_label_selector,
)
from chaoskirvis.sandbox.store import (
    ObjectConflict,
    Store,
    StoreError,
    WatchEvent,
    decode_error,
    now_timestamp,
    prepare_create,
    prepare_update,
    stream_container,
    validate_create,
    validate_update,
)

logger = logging.getLogger(__name__)

# Namespaces the API server refuses to delete (NamespaceLifecycle's immortal namespaces).
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
# How often a PATCH (or a PUT without resourceVersion) is tried again when the object changed during its
# admission (GuaranteedUpdate retries until it wins; a bound keeps a hostile writer from spinning a request).
_UPDATE_ATTEMPTS = 5
# The API server ends a watch without timeoutSeconds after a random 30-60 minutes; we take 30.
DEFAULT_WATCH_SECONDS = 1800
# kube-apiserver's MaxRequestBodyBytes default (k8s.io/apiserver server.NewConfig): a larger body is refused
# 413 RequestEntityTooLarge by the handler that reads it (limitedReadBody), after authentication and RBAC.
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
APPLY_PATCH = "application/apply-patch+yaml"
# Subresources that kubectl uses and the API server serves, but the sandbox cannot: why, in the refusal.
UNSERVED_SUBRESOURCES = {
    ("pods", "attach"): "no container runs, so there is no process to attach to (kubectl attach)",
    ("pods", "portforward"): "no container runs, so nothing listens to forward to (kubectl port-forward)",
    ("pods", "ephemeralcontainers"): "no container runs, so no debug container can be added (kubectl debug)",
    ("pods", "eviction"): "evictions and the disruption budgets they respect are not modelled (kubectl drain)",
}


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the sandbox answered it."""

    method: str
    path: str
    query: dict[str, str]
    user_agent: str
    user: str | None  # the effective user: the impersonated one, when the request impersonates
    status: int
    impersonator: str | None = None  # who impersonated `user`, if anyone


# Request parsing (1 and 10).

@dataclass(frozen=True)
class ApiPath:
    """A path under /api/v1 or /apis/GROUP[/VERSION], split as the API server's RequestInfoFactory does."""

    group: str
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get", "DELETE": "delete"}


def parse_api_path(path: str) -> ApiPath | None:
    """Split an API path; None for anything that is not under /api/VERSION or /apis/GROUP."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 2 and parts[0] == "apis":
        group, version, rest = parts[1], (parts[2] if len(parts) > 2 else None), parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if not rest:
        return ApiPath(group, version)
    plural, name = [*rest, None][:2]
    return ApiPath(group, version, plural, namespace, name, "/".join(rest[2:]) or None)


def _flag(value: str | None) -> bool:
    return value in _TRUE


def api_verb(method: str, path: ApiPath | None, params: Mapping[str, str]) -> str | None:
    """The Kubernetes verb (as RBAC names it) of a resource request; None when the method has none there."""
    if path is None or path.plural is None:
        return None
    if method == "GET":
        return "watch" if _flag(params.get("watch")) else "get" if path.name else "list"
    if method == "POST" and not path.name:
        return "create"
    if method == "PUT" and path.name:
        return "update"
    if method == "PATCH" and path.name:
        return "patch"
    if method == "DELETE":
        return "delete" if path.name else "deletecollection"
    return None


@dataclass(frozen=True)
class ApiRequest:
    """A request read in full: its API path (None outside /api and /apis) and its verb."""

    raw: aiohttp.web.BaseRequest
    body: bytes
    api_path: ApiPath | None
    verb: str | None

    @property
    def body_too_large(self) -> bool:
        return len(self.body) > MAX_REQUEST_BODY_BYTES

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def path(self) -> str:
        return self.raw.path

    @property
    def params(self) -> MultiMapping[str]:
        return self.raw.query

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.raw.headers

    @property
    def namespace(self) -> str | None:
        return self.api_path.namespace if self.api_path else None

    @property
    def name(self) -> str | None:
        return self.api_path.name if self.api_path else None

    @property
    def subresource(self) -> str | None:
        return self.api_path.subresource if self.api_path else None

    def attributes(self) -> Attributes:
        """What the request asks, as the authorizer sees it (RequestInfoFactory's verb, resource and path)."""
        path = self.api_path
        if path is None or path.plural is None:
            return Attributes(self.method.lower(), path=self.path)
        verb = self.verb or _METHOD_VERBS.get(self.method, self.method.lower())
        subresource = (path.subresource or "").split("/")[0]  # nodes/NAME/proxy/healthz: the subresource is proxy
        return Attributes(verb, path.group, path.plural, subresource, path.namespace or "", path.name or "")


async def parse_request(raw_request: aiohttp.web.BaseRequest) -> ApiRequest:
    """The request with its body read up to MAX_REQUEST_BODY_BYTES (the rest left unread: `body_too_large`)."""
    path = parse_api_path(raw_request.path)
    body = bytearray()
    while len(body) <= MAX_REQUEST_BODY_BYTES and (chunk := await raw_request.content.read(2 ** 16)):
        body += chunk
    return ApiRequest(raw_request, bytes(body), path, api_verb(raw_request.method, path, raw_request.query))


@dataclass(frozen=True)
class RequestSelection:
    """What a list or watch request selects; called on an object (None: no object), whether it is selected."""

    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector

    def __call__(self, obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            return False
        metadata = obj.get("metadata", {})
        return ((self.namespace is None or metadata.get("namespace") == self.namespace)
                and self.labels.matches(metadata.get("labels")) and self.fields_match(obj))

    def fields_match(self, obj: Mapping[str, Any]) -> bool:
        return self.fields.matches(lambda path: field_value(obj, path))


def _typed(resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": resource.kind, "apiVersion": resource.api_version} | obj


def _untyped(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


@dataclass(kw_only=True)
class KubernetesApiHandler:
    """The Kubernetes API over a `Store`: authentication, authorization, verbs, admission, dry run."""

    store: Store
    admission: AdmissionChain
    authenticator: Authenticator
    exec_sessions: ExecSessions = field(default_factory=ExecSessions)
    pod_logs: PodLogs = field(default_factory=PodLogs)
    request_log: RequestLog[LoggedRequest] = field(default_factory=RequestLog)  # the latest 10,000
    authorizer: Authorizer  # over `store`; the VAP plugin's authorizer checks ask it too

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        request = await parse_request(raw_request)
        user = self._authenticate(request)
        impersonator = None
        try:
            if user is None:
                raise UNAUTHORIZED
            acting = impersonation.impersonated(user, request.headers, self.authorizer)
            if acting is not None:
                impersonator, user = user, acting
            attributes = request.attributes()
            if not self.authorizer.authorize(user, attributes).allowed:
                raise forbidden_error(user, attributes)
            if request.body_too_large:
                raise status_error(413, "RequestEntityTooLarge",
                                   f"Request entity too large: limit is {MAX_REQUEST_BODY_BYTES}")
            response = await self._serve(request, user)
        except Exception as error:  # answered as the API server does, never with a traceback
            if not isinstance(error, StatusError):
                logger.exception("sandbox: %s %s failed", raw_request.method, raw_request.path_qs)
            response = render_error(error)
        self.request_log.append(LoggedRequest(
            method=raw_request.method, path=raw_request.path, query=dict(raw_request.query),
            user_agent=raw_request.headers.get("User-Agent", ""), user=user.name if user else None,
            status=response.status, impersonator=impersonator.name if impersonator else None,
        ))
        return response

    def _authenticate(self, request: ApiRequest) -> UserInfo | None:
        """The client certificate's user, else the bearer token's (or anonymous); None for no one."""
        transport = request.raw.transport
        der = client_certificates.peer_certificate(transport.get_extra_info("ssl_object") if transport else None)
        user = client_certificates.user_of(der) if der else None
        return user or self.authenticator.authenticate(request.headers.get("Authorization", ""))

    async def _serve(self, request: ApiRequest, user: UserInfo) -> aiohttp.web.StreamResponse:
        resource_path = request.api_path
        if resource_path is None:
            return self._serve_non_resource(request)
        if resource_path.plural is None:
            if request.method != "GET":
                raise METHOD_NOT_ALLOWED
            return self._serve_discovery(resource_path.group, resource_path.version)
        resource = resources.find_resource(resource_path.group, resource_path.version or "", resource_path.plural) \
            or custom_resources.find(self.store, resource_path.group, resource_path.version or "", resource_path.plural)
        namespace = request.namespace
        if resource is None or (not resource.namespaced and namespace and resource != NAMESPACES):
            raise NO_SUCH_PATH
        if request.subresource:
            if resource == PODS and namespace and request.name and request.subresource in ("exec", "log"):
                return await self._serve_pod_stream(request, user, namespace, request.name)
            if request.subresource == "scale" and scale.scalable(resource) and namespace and request.name:
                return await self._serve_scale(request, user, resource, namespace, request.name)
            if resource == SERVICE_ACCOUNTS and request.subresource == "token" and namespace and request.name:
                return self._serve_token_request(request, namespace, request.name)
            if resource == NODES and request.subresource.split("/")[0] == "proxy" and request.name:
                return self._serve_node_proxy(request, request.name)
            if resource == CERTIFICATE_SIGNING_REQUESTS and request.subresource in ("approval", "status") and \
                    request.name:
                return await self._serve_csr_subresource(request, user, request.name, request.subresource)
            why = UNSERVED_SUBRESOURCES.get((resource.plural, request.subresource))
            if why is not None:
                raise status_error(404, "NotFound", f"the sandbox does not serve {resource.plural}/"
                                                    f"{request.subresource}: {why}", {})
            raise NO_SUCH_PATH
        media = tables.negotiate(request.headers.get("Accept", ""))
        if media is None:
            raise status_error(406, "NotAcceptable", f"only the following media types are accepted: "
                                                     f"{', '.join(tables.SERVED_MEDIA_TYPES)}")
        if resource == SELF_SUBJECT_REVIEWS:
            return self._review_self(request, user)
        if resource.plural in access_reviews.REVIEWS and resource.group == "authorization.k8s.io":
            if request.method != "POST" or request.name or (resource.namespaced and not namespace):
                raise METHOD_NOT_ALLOWED
            review = access_reviews.answer(resource.plural, self._decode_object(request, resource), user,
                                           self.authorizer, namespace)
            return json_response(review, 201)
        verb = request.verb
        if verb is None or verb == "deletecollection" or (verb == "create" and resource.namespaced and not namespace):
            raise METHOD_NOT_ALLOWED
        namespace = namespace if resource.namespaced else None
        match verb:
            case "get":
                return self._get(request, resource, namespace, request.name or "", media)
            case "list":
                return self._list(request, resource, namespace, media)
            case "watch":
                return await self._watch(request, resource, namespace)
            case "create":
                return await self._create(request, user, resource, namespace)
            case "update":
                return await self._replace(request, user, resource, namespace, request.name or "")
            case "patch":
                return await self._patch(request, user, resource, namespace, request.name or "")
            case _:
                return await self._delete(request, user, resource, namespace, request.name or "")

    @staticmethod
    def _review_self(request: ApiRequest, user: UserInfo) -> aiohttp.web.StreamResponse:
        """SelfSubjectReview (authentication.k8s.io/v1): who the request is (the impersonated user, when it
        impersonates). Answered, never stored."""
        if request.method != "POST" or request.name:
            raise METHOD_NOT_ALLOWED
        user_info: dict[str, Any] = {"username": user.name}
        if user.uid:
            user_info["uid"] = user.uid
        user_info["groups"] = list(user.groups)
        if user.extra:
            user_info["extra"] = {key: list(values) for key, values in user.extra.items()}
        review = {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                  "metadata": {"creationTimestamp": None}, "status": {"userInfo": user_info}}
        return json_response(review, 201)

    def _serve_token_request(self, request: ApiRequest, namespace: str, name: str) -> aiohttp.web.StreamResponse:
        """serviceaccounts/NAME/token (TokenRequest, authentication.k8s.io/v1), as the serviceaccount registry's
        TokenREST answers it: a bound JWT for an existing ServiceAccount (`sa_tokens`)."""
        if request.method != "POST":
            raise METHOD_NOT_ALLOWED
        review = _decode_token_request(request)
        if review.get("kind", "TokenRequest") != "TokenRequest" or \
                review.get("apiVersion", "authentication.k8s.io/v1") != "authentication.k8s.io/v1":
            raise bad_request(f"the kind in the data ({review.get('kind')}) does not match the expected kind "
                              "(TokenRequest in authentication.k8s.io/v1)")
        metadata = review.get("metadata") or {}
        for field_name, expected, what in (("name", name, "name"), ("namespace", namespace, "namespace")):
            if metadata.get(field_name) and metadata[field_name] != expected:
                raise _invalid_token_request(name, f"metadata.{field_name}", f'"{metadata[field_name]}"',
                                       f"must match the service account {what} if specified")
        account = self.store.get(SERVICE_ACCOUNTS, namespace, name)
        if account is None:
            raise not_found(SERVICE_ACCOUNTS, name)
        spec = review.get("spec") or {}
        if not isinstance(spec, dict):
            raise bad_request("TokenRequest.spec must be an object")
        seconds = spec.get("expirationSeconds")
        seconds = sa_tokens.DEFAULT_EXPIRATION_SECONDS if seconds is None else seconds
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            raise bad_request("TokenRequest.spec.expirationSeconds must be an integer")
        problem = ("may not specify a duration less than 10 minutes" if seconds < sa_tokens.MIN_EXPIRATION_SECONDS
                   else "may not specify a duration larger than 2^32 seconds"
                   if seconds > sa_tokens.MAX_EXPIRATION_SECONDS else None)
        if problem is not None:
            raise _invalid_token_request(name, "spec.expirationSeconds", str(seconds), problem)
        audiences = [str(a) for a in spec.get("audiences") or []] or [sa_tokens.ISSUER]
        bound_ref, bound = self._bound_object(spec.get("boundObjectRef"), namespace)
        token, expiry = self.authenticator.issuer.issue(namespace, name, account["metadata"]["uid"], audiences,
                                                        seconds, bound)
        answered_spec: dict[str, Any] = {"audiences": audiences, "expirationSeconds": seconds}
        if bound_ref is not None:
            answered_spec["boundObjectRef"] = bound_ref
        answer = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                  "metadata": {**metadata, "name": name, "namespace": namespace, "creationTimestamp": now_timestamp()},
                  "spec": answered_spec,
                  "status": {"token": token, "expirationTimestamp": sa_tokens.expiration_timestamp(expiry)}}
        return json_response(answer, 201)

    def _serve_node_proxy(self, request: ApiRequest, name: str) -> aiohttp.web.StreamResponse:
        """nodes/NAME/proxy/PATH, the API server's proxy to the node's kubelet: no kubelet runs, so only its
        /healthz answers ("ok", as a healthy kubelet does); any other path is refused naming why."""
        if self.store.get(NODES, None, name) is None:
            raise not_found(NODES, name)
        kubelet_path = (request.subresource or "").partition("/")[2]
        if request.method == "GET" and kubelet_path == "healthz":
            return aiohttp.web.Response(text="ok")
        raise status_error(404, "NotFound", f"the sandbox does not serve nodes/proxy/{kubelet_path}: no kubelet "
                                            "runs, only its /healthz answers", {})

    def _bound_object(self, ref: Any, namespace: str) -> tuple[dict[str, Any] | None, sa_tokens.BoundObject | None]:
        """A TokenRequest's boundObjectRef (a Pod or Secret that must exist, uid filled in) and what it binds."""
        if not ref:
            return None, None
        if not isinstance(ref, dict):
            raise bad_request("TokenRequest.spec.boundObjectRef must be an object")
        kind, api_version, name = ref.get("kind", ""), ref.get("apiVersion", ""), str(ref.get("name") or "")
        resource = {"Pod": PODS, "Secret": SECRETS}.get(kind) if api_version == "v1" else None
        if resource is None:
            group_version = api_version if "/" in api_version else f"/{api_version}"
            raise bad_request(f"cannot bind token to object of type {group_version}, Kind={kind}")
        obj = self.store.get(resource, namespace, name)
        if obj is None:
            raise not_found(resource, name)
        uid = obj["metadata"]["uid"]
        if ref.get("uid") and ref["uid"] != uid:
            raise status_error(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the UID in the '
                                                f"bound object reference ({ref['uid']}) does not match the UID in "
                                                "record. The object might have been deleted and then recreated",
                               {"name": name, "kind": kind})
        return {"kind": kind, "apiVersion": "v1", "name": name, "uid": uid}, sa_tokens.BoundObject(kind, name, uid)

    async def _serve_pod_stream(self, request: ApiRequest, user: UserInfo, namespace: str,
                                name: str) -> aiohttp.web.StreamResponse:
        """pods/log (get) and pods/exec (connect), in the order of the pod registry's LogREST and ExecREST."""
        raw_request = request.raw
        if request.subresource == "log":
            if request.method != "GET":
                raise METHOD_NOT_ALLOWED
            log_options = LogOptions.parse(name, raw_request.query, datetime.datetime.now(datetime.UTC))
            pod, container = self._stream_target(namespace, name, log_options.container)
            return await self.pod_logs.serve(raw_request, self.store, pod, container, log_options)
        if request.method not in ("GET", "POST"):
            raise METHOD_NOT_ALLOWED
        # A WebSocket upgrade is a GET, authorized as get (by the filter, as every request) and then also as
        # create (the compound check that Kubernetes 1.35 makes by default,
        # AuthorizePodWebsocketUpgradeCreatePermission); SPDY is a POST, authorized as create.
        if request.method == "GET":
            create = Attributes("create", "", "pods", "exec", namespace, name)
            if not self.authorizer.authorize(user, create).allowed:
                raise forbidden_error(user, create)
        if "dryRun" in request.params:  # any value, as ConnectResource's isDryRun
            raise bad_request("dryRun is not supported")
        exec_options = ExecOptions.parse(raw_request.query)
        await self._admit("CONNECT", user, PODS, namespace, name, exec_options.admission_object(), None, False,
                    subresource="exec")
        pod, container = self._stream_target(namespace, name, exec_options.container)
        return await self.exec_sessions.serve(raw_request, exec_options, pod, container, user.name)

    async def _serve_scale(self, request: ApiRequest, user: UserInfo, resource: ResourceType, namespace: str,
                     name: str) -> aiohttp.web.StreamResponse:
        """GET, PUT and PATCH of PLURAL/scale (`scale`): they read and change the object's spec.replicas only."""
        verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(request.method)
        if verb is None:
            raise METHOD_NOT_ALLOWED
        old = self.store.get(resource, namespace, name)
        if old is None:
            raise not_found(resource, name)
        current = scale.scale_of(old)
        if verb == "get":
            return json_response(current)
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
        if verb == "update":
            dry_run = _dry_run(request.params.get("dryRun"), "UpdateOptions")
            wanted = scale.decode(request.body, content_type)
        else:
            dry_run = _dry_run(request.params.get("dryRun"), "PatchOptions")
            if content_type not in patching.PATCH_TYPES:
                raise status_error(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                                                                f"accepted media types include: "
                                                                f"{', '.join(patching.PATCH_TYPES)}")
            try:
                wanted = patching.apply_patch(content_type, current, request.body)
            except patching.PatchError as error:
                raise bad_request(str(error)) from None
        replicas = scale.wanted_replicas(wanted, name)
        expected = (wanted.get("metadata") or {}).get("resourceVersion")
        if expected and expected != old["metadata"]["resourceVersion"]:
            raise store_error(ObjectConflict(resource, name, "the object has been modified; please apply your "
                                                              "changes to the latest version and try again"))
        spec = (old.get("spec") or {}) | {"replicas": replicas}
        obj = prepare_update(resource, _typed(resource, old | {"spec": spec}), old)
        admitted = await self._admitted_update(user, resource, namespace, name, obj, old, dry_run, "scale",
                                               scale.scale_of(obj), current)
        updated = self.store.update(resource, obj, dry_run=dry_run)
        return json_response(scale.scale_of(updated), 200, admitted.warnings)

    def _stream_target(self, namespace: str, name: str, requested: str) -> tuple[dict[str, Any], str]:
        """The pod of a log or exec request, and the container it is for (404 / 400 as the registry answers)."""
        pod = self.store.get(PODS, namespace, name)
        if pod is None:
            raise not_found(PODS, name)
        try:
            return pod, stream_container(pod, requested)
        except ValueError as error:
            raise bad_request(str(error)) from None

    def _serve_non_resource(self, request: ApiRequest) -> aiohttp.web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if request.method != "GET":
            raise METHOD_NOT_ALLOWED
        if path in ("/api", "/apis"):
            return self._serve_discovery(None if path == "/apis" else "", None)
        if path == "/version":
            return json_response(resources.SERVER_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok")
        if path == "/openapi/v3":
            return json_response(custom_resources.openapi_index(self.store, openapi.index()))
        gv_path = path.removeprefix("/openapi/v3/")
        document = openapi.document(gv_path) or custom_resources.openapi_document(self.store, gv_path)
        if path.startswith("/openapi/v3/") and document is not None:
            return json_response(document)
        raise NO_SUCH_PATH

    def _serve_discovery(self, group: str | None, version: str | None) -> aiohttp.web.StreamResponse:
        if group is None:
            document = resources.group_list()
        elif version is None:
            document = resources.core_versions() if group == "" else resources.group_document(group)
        else:
            document = resources.resource_list(group, version)
            if document is not None:  # with the subresources served, after their resources
                document["resources"] = [
                    item for entry in document["resources"]
                    for served in (resources.find_resource(group, version, entry["name"]),)
                    for item in (entry, *scale.discovery_entries(served), *csr.discovery_entries(served))]
        document = custom_resources.discovery(self.store, group, version, document)
        if document is None:
            raise NO_SUCH_PATH
        return json_response(document)

    # Reading.

    def _get(self, request: ApiRequest, resource: ResourceType, namespace: str | None, name: str,
             media: str) -> aiohttp.web.StreamResponse:
        """One object, as it is stored or as the one-row Table kubectl asked for (`tables`)."""
        obj = self.store.get(resource, namespace, name)
        if obj is None:
            raise not_found(resource, name)
        include = _include_object(request)
        if media == tables.TABLE:
            return json_response(tables.table(resource, [_untyped(obj)], _version_of(obj), include,
                                              datetime.datetime.now(datetime.UTC)))
        return json_response(_typed(resource, obj))

    def _selection(self, request: ApiRequest, resource: ResourceType, namespace: str | None) -> RequestSelection:
        """What a list or watch selects: the namespace, the labelSelector and the fieldSelector."""
        try:
            labels = parse_label_selector(request.params.get("labelSelector"))
            fields = parse_field_selector(
                request.params.get("fieldSelector"),
                ("metadata.name", "metadata.namespace", *resource.selectable_fields),
            )
        except SelectorError as error:
            raise bad_request(str(error)) from None
        if request.name:
            fields = FieldSelector((*fields.terms, ("metadata.name", "=", request.name)))
        return RequestSelection(namespace, labels, fields)

    def _list(self, request: ApiRequest, resource: ResourceType, namespace: str | None,
              media: str) -> aiohttp.web.StreamResponse:
        """A page of a list (`limit`, `continue`), as a `KIND List` document or as the Table kubectl asked for.

        The document is written from each stored object's JSON, encoded once (`Store.select_json`): a list
        costs a join of what it returns, not an encoding of it."""
        selection = self._selection(request, resource, namespace)
        after = _decode_continue(request.params.get("continue"))
        limit = _non_negative_int(request.params.get("limit"), "limit")
        # The store's index has already chosen the namespace and the labels: only a fieldSelector is left.
        where = selection.fields_match if selection.fields.terms else None
        metadata: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        if media == tables.TABLE:
            page = self.store.select(resource, namespace, selection.labels, where, after=after, limit=limit)
            include = _include_object(request)
            if page.remaining:
                metadata |= _continuation(_list_position(page.items[-1]), page.remaining)
            return json_response(tables.table(resource, [_untyped(obj) for obj in page.items], metadata, include,
                                              datetime.datetime.now(datetime.UTC)))
        encoded = self.store.select_json(resource, namespace, selection.labels, where, after=after, limit=limit)
        _include_object(request)
        if encoded.remaining and encoded.last is not None:
            metadata |= _continuation(encoded.last, encoded.remaining)
        head = json.dumps({"kind": resource.list_kind, "apiVersion": resource.api_version, "metadata": metadata})
        # What json.dumps writes for the whole document (items, the last field, after the others), in one join:
        # the head glued to the first item and the end to the last, so the body is copied once.
        items = encoded.items or [b""]
        items[0] = head[:-1].encode() + b', "items": [' + items[0]
        items[-1] += b"]}"
        return aiohttp.web.Response(body=b", ".join(items), content_type="application/json", charset="utf-8")

    async def _watch(self, request: ApiRequest, resource: ResourceType,
                     namespace: str | None) -> aiohttp.web.StreamResponse:
        selected = self._selection(request, resource, namespace)
        timeout = _non_negative_int(request.params.get("timeoutSeconds"), "timeoutSeconds")
        deadline = _loop_time() + (timeout or DEFAULT_WATCH_SECONDS)  # 0 means the default, as upstream
        since = request.params.get("resourceVersion", "")
        if since not in ("", "0") and not since.isdigit():
            raise bad_request(f'resourceVersion: Invalid value: "{since}": must be a non-negative integer')
        subscription = self.store.subscribe(resource)
        try:
            if since in ("", "0"):
                backlog: list[WatchEvent] | None = [
                    WatchEvent("ADDED", resource, obj, None, self.store.resource_version)
                    for obj in self.store.select(resource, namespace, selected.labels, selected).items
                ]
            else:
                backlog = self.store.events_after(resource, int(since))
            response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await response.prepare(request.raw)
            if backlog is None:
                expired = status_error(410, "Expired", f"too old resource version: {since} "
                                                       f"({self.store.oldest_retained_version})")
                await _write_error_event(response, expired)
            else:
                await self._stream_events(response, _event_object(request, resource), selected, backlog,
                                          subscription.queue, deadline)
            await response.write_eof()
            return response
        finally:
            self.store.unsubscribe(subscription)

    async def _stream_events(self, response: aiohttp.web.StreamResponse, render: Callable[[dict[str, Any]], Any],
                             selected: Callable[[dict[str, Any] | None], bool], backlog: list[WatchEvent],
                             queue: asyncio.Queue[WatchEvent | None], deadline: float) -> None:
        for event in backlog:
            await _write_event(response, render, event, selected)
        while (remaining := deadline - _loop_time()) > 0:
            try:
                event = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                return
            if event is None:
                return
            await _write_event(response, render, event, selected)

    # Writing.

    def _decode_object(self, request: ApiRequest, resource: ResourceType) -> dict[str, Any]:
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
        try:
            if content_type in ("application/yaml", "application/x-yaml"):
                obj = yaml.safe_load(request.body)
            elif content_type == protobuf.MEDIA_TYPE:
                obj = protobuf.decode_object(request.body)
            else:
                obj = json.loads(request.body)
        except protobuf.ProtobufError as error:
            if error.unsupported:
                raise status_error(415, "UnsupportedMediaType", str(error)) from None
            raise bad_request(str(error)) from None
        except (ValueError, yaml.YAMLError) as error:
            raise bad_request(f"couldn't get version/kind; json parse error: {error}") from None
        problem = decode_error(resource, obj)
        if problem is not None:
            raise bad_request(problem)
        api_version, kind = obj.get("apiVersion", resource.api_version), obj.get("kind", resource.kind)
        if api_version != resource.api_version:
            raise bad_request(f"the API version in the data ({api_version}) does not match the expected API "
                              f"version ({resource.api_version})")
        if kind != resource.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})")
        obj.setdefault("metadata", {})
        return _typed(resource, obj)

    def _place(self, resource: ResourceType, obj: dict[str, Any], namespace: str | None) -> None:
        """Set the object's namespace from the URL; a different one in the body is a bad request."""
        metadata = obj["metadata"]
        if not resource.namespaced:
            metadata.pop("namespace", None)
        elif metadata.get("namespace", namespace) != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        else:
            metadata["namespace"] = namespace

    async def _admit(self, operation: Operation, user: UserInfo, resource: ResourceType, namespace: str | None,
               name: str, obj: dict[str, Any] | None, old: dict[str, Any] | None, dry_run: bool,
               subresource: str | None = None) -> AdmissionResult:
        """The admission chain's answer (awaited: a webhook call lets other requests be served meanwhile); a
        denial is raised as its Status, with the warnings given so far. An object a mutating webhook changed is
        validated again, as the registry validates what mutating admission left."""
        result = await self.admission.admit(AdmissionRequest(
            operation=operation, resource=resource, namespace=namespace, name=name, object=obj,
            old_object=old, dry_run=dry_run, user=user.name, subresource=subresource, groups=user.groups,
            uid=user.uid,
        ), self.store)
        if result.denial is not None:
            raise _WarnedStatusError.of(_denial_error(result.denial, resource, name), result.warnings)
        if result.mutated and obj is not None and subresource is None:
            causes = validate_create(resource, obj) if old is None else validate_update(resource, obj, old)
            if causes:
                raise _WarnedStatusError.of(invalid(resource, name, causes), result.warnings)
        return result

    async def _create(self, request: ApiRequest, user: UserInfo, resource: ResourceType,
                namespace: str | None) -> aiohttp.web.StreamResponse:
        dry_run = _dry_run(request.params.get("dryRun"), "CreateOptions")
        obj = self._decode_object(request, resource)
        self._place(resource, obj, namespace)
        if namespace and self.store.get(NAMESPACES, None, namespace) is None:
            raise not_found(NAMESPACES, namespace)
        obj = prepare_create(resource, obj, self.store.address_taken)
        name = obj["metadata"].get("name", "")
        is_csr = resource == CERTIFICATE_SIGNING_REQUESTS
        if is_csr:
            csr.prepare_create(obj, user)
        causes = validate_create(resource, obj) + (csr.causes(obj) if is_csr else [])
        if causes:
            raise invalid(resource, name, causes)
        self._confirm_no_escalation(user, resource, namespace, name, obj, None)
        if is_csr:
            self._refuse_by_csr_admission(user, name, obj, None, None)
        admitted = await self._admit("CREATE", user, resource, namespace, name, obj, None, dry_run)
        try:
            created = self.store.create(resource, obj, dry_run=dry_run)
        except StoreError as error:
            raise store_error(error) from None
        return json_response(created, 201, admitted.warnings)

    async def _replace(self, request: ApiRequest, user: UserInfo, resource: ResourceType, namespace: str | None,
                 name: str) -> aiohttp.web.StreamResponse:
        dry_run = _dry_run(request.params.get("dryRun"), "UpdateOptions")
        for attempt in range(_UPDATE_ATTEMPTS):
            obj = self._decode_object(request, resource)
            old = self.store.get(resource, namespace, name)
            if old is None:
                raise not_found(resource, name)
            try:
                return await self._update(user, resource, namespace, name, obj, old, dry_run)
            except _StoredObjectMoved:
                if obj["metadata"].get("resourceVersion") or attempt == _UPDATE_ATTEMPTS - 1:
                    raise  # a precondition on the version: 409, as upstream
        raise AssertionError("unreachable")

    async def _patch(self, request: ApiRequest, user: UserInfo, resource: ResourceType, namespace: str | None,
               name: str) -> aiohttp.web.StreamResponse:
        dry_run = _dry_run(request.params.get("dryRun"), "PatchOptions")
        for attempt in range(_UPDATE_ATTEMPTS):
            obj, old = self._patched(request, resource, self.store.get(resource, namespace, name), name)
            try:
                return await self._update(user, resource, namespace, name, obj, old, dry_run)
            except _StoredObjectMoved:
                if attempt == _UPDATE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _patched(request: ApiRequest, resource: ResourceType, old: dict[str, Any] | None,
                 name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The stored object `old` with the request's patch applied, and `old` (404 when there is none)."""
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type not in patching.PATCH_TYPES:
            limit = ("the sandbox does not serve server-side apply (application/apply-patch+yaml: field managers, "
                     "managedFields and conflicts are not modelled); " if content_type == APPLY_PATCH else "")
            raise status_error(415, "UnsupportedMediaType",
                               f"{limit}the body of the request was in an unknown format - accepted media types "
                               f"include: {', '.join(patching.PATCH_TYPES)}")
        if old is None:
            raise not_found(resource, name)
        try:
            obj = patching.apply_patch(content_type, _typed(resource, old), request.body)
        except patching.PatchError as error:
            if error.unreadable:
                raise bad_request(str(error)) from None
            raise status_error(422, "Invalid", "the server rejected our request due to an error in our request",
                               {"causes": [{"reason": "UnexpectedServerResponse", "message": str(error)}]}) from None
        if not isinstance(obj.get("metadata"), dict):
            raise bad_request("the patched object has no metadata")
        return obj, old

    async def _update(self, user: UserInfo, resource: ResourceType, namespace: str | None, name: str,
                obj: dict[str, Any], old: dict[str, Any], dry_run: bool,
                subresource: str | None = None) -> aiohttp.web.StreamResponse:
        """The shared tail of PUT and PATCH: `obj` is the whole new state of the stored object `old` (through
        `subresource`, a CertificateSigningRequest's approval or status, when given)."""
        self._place(resource, obj, namespace)
        if obj["metadata"].get("name") != name:
            raise bad_request(f"the name of the object ({obj['metadata'].get('name', '')}) does not match the name "
                              f"on the URL ({name})")
        expected = obj["metadata"].get("resourceVersion")
        if expected and expected != old["metadata"]["resourceVersion"]:
            raise store_error(ObjectConflict(resource, name, "the object has been modified; please apply your "
                                                              "changes to the latest version and try again"))
        requested_status = obj.get("status")
        obj = prepare_update(resource, _typed(resource, obj), old, self.store.address_taken)
        is_csr = resource == CERTIFICATE_SIGNING_REQUESTS
        if is_csr:
            obj["status"] = requested_status
            csr.prepare_update(obj, old, subresource)
        causes = validate_update(resource, obj, old) + (csr.causes(obj, old, subresource) if is_csr else [])
        if causes:
            raise invalid(resource, name, causes)
        self._confirm_no_escalation(user, resource, namespace, name, obj, old)
        if is_csr:
            self._refuse_by_csr_admission(user, name, obj, old, subresource)
        admitted = await self._admitted_update(user, resource, namespace, name, obj, old, dry_run, subresource)
        updated = self.store.update(resource, obj, dry_run=dry_run)
        return json_response(updated, 200, admitted.warnings)

    async def _admitted_update(self, user: UserInfo, resource: ResourceType, namespace: str | None, name: str,
                               obj: dict[str, Any], old: dict[str, Any], dry_run: bool,
                               subresource: str | None, admitted_object: dict[str, Any] | None = None,
                               admitted_old: dict[str, Any] | None = None) -> AdmissionResult:
        """Admission of an update; `_StoredObjectMoved` (409 Conflict) when the stored object changed while
        admission waited (on a webhook): the registry's GuaranteedUpdate then tries a PATCH, or a PUT without a
        resourceVersion, again on the new version, and refuses the others."""
        written = self.store.resource_version
        admitted = await self._admit("UPDATE", user, resource, namespace, name,
                                     obj if admitted_object is None else admitted_object,
                                     old if admitted_old is None else admitted_old, dry_run, subresource)
        if self.store.resource_version != written:
            current = self.store.get(resource, namespace, name)
            if current is None:
                raise not_found(resource, name)
            if current["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]:
                conflict = store_error(ObjectConflict(resource, name, "the object has been modified; please apply "
                                                                      "your changes to the latest version and try "
                                                                      "again"))
                raise _StoredObjectMoved(conflict.status, conflict.reason, conflict.message, conflict.details)
        return admitted

    def _refuse_by_csr_admission(self, user: UserInfo, name: str, obj: dict[str, Any], old: dict[str, Any] | None,
                                 subresource: str | None) -> None:
        """The CertificateSubjectRestriction, CertificateApproval and CertificateSigning plugins' 403s."""
        reason = csr.admission_refusal(self.authorizer, user, obj, old, subresource)
        if reason is not None:
            raise forbidden(CERTIFICATE_SIGNING_REQUESTS, name, reason)

    async def _serve_csr_subresource(self, request: ApiRequest, user: UserInfo, name: str,
                               subresource: str) -> aiohttp.web.StreamResponse:
        """certificatesigningrequests/NAME/approval and /status: get, update (PUT) and patch the whole object,
        of which only the conditions (approval) or the status (status) may change."""
        resource = CERTIFICATE_SIGNING_REQUESTS
        old = self.store.get(resource, None, name)
        if request.method == "GET":
            if old is None:
                raise not_found(resource, name)
            return json_response(_typed(resource, old))
        if request.method == "PATCH":
            dry_run = _dry_run(request.params.get("dryRun"), "PatchOptions")
            obj, old = self._patched(request, resource, old, name)
            return await self._update(user, resource, None, name, obj, old, dry_run, subresource)
        if request.method != "PUT":
            raise METHOD_NOT_ALLOWED
        dry_run = _dry_run(request.params.get("dryRun"), "UpdateOptions")
        obj = self._decode_object(request, resource)
        if old is None:
            raise not_found(resource, name)
        return await self._update(user, resource, None, name, obj, old, dry_run, subresource)

    def _confirm_no_escalation(self, user: UserInfo, resource: ResourceType, namespace: str | None, name: str,
                               obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """The RBAC registries' escalation checks, for writes of roles and bindings (dry runs too)."""
        if resource.group != escalation.RBAC_GROUP:
            return
        if resource.kind in ("Role", "ClusterRole"):
            escalation.check_role_write(self.authorizer, user, resource.kind, namespace or "", name, obj, old)
        else:
            escalation.check_binding_write(self.authorizer, user, resource.kind, namespace or "", name, obj, old)

    async def _delete(self, request: ApiRequest, user: UserInfo, resource: ResourceType, namespace: str | None,
                name: str) -> aiohttp.web.StreamResponse:
        options = self._delete_options(request)
        dry_run = _dry_run(",".join(options.get("dryRun") or []) or request.params.get("dryRun"), "DeleteOptions")
        old = self.store.get(resource, namespace, name)
        if old is None:
            raise not_found(resource, name)
        if resource == NAMESPACES and name in IMMORTAL_NAMESPACES:
            raise forbidden(resource, name, "this namespace may not be deleted")
        admitted = await self._admit("DELETE", user, resource, namespace, name, None, old, dry_run)
        orphan = (options.get("propagationPolicy") or request.params.get("propagationPolicy")) == "Orphan"
        try:
            deleted = self.store.delete(resource, namespace, name, preconditions=options.get("preconditions"),
                                        orphan_dependents=orphan, dry_run=dry_run)
        except StoreError as error:
            raise store_error(error) from None
        if resource == NAMESPACES:
            deleted["metadata"]["deletionTimestamp"] = now_timestamp()
            deleted["status"] = {"phase": "Terminating"}
        if resource.returns_deleted_object:
            return json_response(deleted, 200, admitted.warnings)
        details = details_of(resource, name, uid=deleted["metadata"]["uid"])
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                               "details": details}, 200, admitted.warnings)

    def _delete_options(self, request: ApiRequest) -> dict[str, Any]:
        if not request.body.strip():
            return {}
        try:
            options = json.loads(request.body)
        except ValueError as error:
            raise bad_request(f"couldn't get version/kind; json parse error: {error}") from None
        if not isinstance(options, dict):
            raise bad_request("DeleteOptions must be a JSON object")
        return options


def _invalid_token_request(name: str, field_path: str, value: str, detail: str) -> StatusError:
    """A TokenRequest refused by validation, in the API server's Invalid wording."""
    message = f"Invalid value: {value}: {detail}"
    return status_error(422, "Invalid", f'TokenRequest.authentication.k8s.io "{name}" is invalid: {field_path}: '
                                        f"{message}",
                        {"name": name, "group": "authentication.k8s.io", "kind": "TokenRequest",
                         "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field_path}]})


def _decode_token_request(request: ApiRequest) -> dict[str, Any]:
    """A TokenRequest body: JSON, YAML, or protobuf as kubectl sends it."""
    if request.headers.get("Content-Type", "").split(";")[0].strip() == protobuf.MEDIA_TYPE:
        try:
            return protobuf.decode_object(request.body)
        except protobuf.ProtobufError as error:
            raise bad_request(f"the TokenRequest could not be decoded: {error}") from None
    try:
        try:
            obj = json.loads(request.body)
        except ValueError:
            obj = yaml.safe_load(request.body)
    except yaml.YAMLError as error:
        raise bad_request(f"couldn't get version/kind; json parse error: {error}") from None
    if not isinstance(obj, dict):
        raise bad_request("the request body must be an object")
    return obj


def render_error(error: Exception) -> aiohttp.web.Response:
    """The Status answer of a refusal; any other exception is a 500 InternalError (its text, no traceback)."""
    if not isinstance(error, StatusError):
        error = status_error(500, "InternalError", f"Internal error occurred: {type(error).__name__}: {error}")
    warnings = error.warnings if isinstance(error, _WarnedStatusError) else ()
    return json_response(status_body(error), error.status, warnings)


class _StoredObjectMoved(StatusError):
    """409 Conflict: the object changed in the store while the update's admission waited on a webhook."""


@dataclass(eq=False)
class _WarnedStatusError(StatusError):
    """A refusal by admission, with the warnings admission gave before it (sent as Warning headers)."""

    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, error: StatusError, warnings: tuple[str, ...]) -> StatusError:
        if not warnings:
            return error
        return cls(error.status, error.reason, error.message, error.details, warnings)


def _denial_error(denial: Denial, resource: ResourceType, name: str) -> StatusError:
    """The Status of an admission denial: field errors as object validation words them, a webhook's own
    details as it sent them, else the resource's name and kind with the causes."""
    if denial.code == 422 and denial.causes and all(cause.field for cause in denial.causes):
        return invalid(resource, name, denial.causes)
    if denial.own_details:
        return status_error(denial.code, denial.reason, denial.message, denial.details)
    causes = [{key: value for key, value in (("reason", c.reason), ("message", c.message), ("field", c.field))
               if value} for c in denial.causes]  # StatusCause fields are omitempty
    return status_error(denial.code, denial.reason, denial.message,
                        details_of(resource, name, **({"causes": causes} if causes else {})))


async def _write_error_event(response: aiohttp.web.StreamResponse, error: StatusError) -> None:
    await response.write(json.dumps({"type": "ERROR", "object": status_body(error)}).encode() + b"\n")


def _event_object(request: ApiRequest, resource: ResourceType) -> Callable[[dict[str, Any]], Any]:
    """What a watch event carries: the object, or the one-row Table of it when the watcher asked for Tables
    (`kubectl get -w`), as the API server transforms each event's object."""
    include = request.params.get("includeObject") or "Metadata"
    if tables.negotiate(request.headers.get("Accept", "")) != tables.TABLE:
        return lambda obj: _typed(resource, obj)
    return lambda obj: tables.table(resource, [obj], _version_of(obj), include, datetime.datetime.now(datetime.UTC))


def _include_object(request: ApiRequest) -> str:
    """The includeObject of a Table request ("Metadata" when not given); a 400 for any other value, as the API
    server checks it on every get and list."""
    include = request.params.get("includeObject") or "Metadata"
    if include not in ("None", "Metadata", "Object"):
        raise bad_request(f'includeObject: Unsupported value: "{include}": supported values: "Metadata", '
                          '"None", "Object"')
    return include


def _version_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The Table metadata of one object: its resourceVersion, as the table convertor copies it."""
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return {"resourceVersion": version} if version else {}


async def _write_event(response: aiohttp.web.StreamResponse, render: Callable[[dict[str, Any]], Any],
                       event: WatchEvent, selected: Callable[[dict[str, Any] | None], bool]) -> None:
    """Write an event as the watcher sees it: objects moving in or out of its selection are ADDED/DELETED."""
    now, before = selected(event.object), selected(event.previous)
    if event.type == "MODIFIED" and now != before:
        event_type = "ADDED" if now else "DELETED"
    elif now:
        event_type = event.type
    else:
        return
    line = json.dumps({"type": event_type, "object": render(event.object)})
    await response.write(line.encode() + b"\n")


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _non_negative_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise bad_request(f'{name}: Invalid value: "{value}": must be a non-negative integer')
    return int(value)


def _dry_run(value: str | None, options_kind: str) -> bool:
    if not value:
        return False
    if value != "All":
        message = (f'{options_kind}.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{{"{value}"}}: '
                   'supported values: "All"')
        raise status_error(422, "Invalid", message, {"group": "meta.k8s.io", "kind": options_kind})
    return True


def _list_position(obj: dict[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata", {})
    return metadata.get("namespace", ""), metadata.get("name", "")


def _encode_continue(position: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode()


def _continuation(last: tuple[str, str], remaining: int) -> dict[str, Any]:
    """The list metadata of a page that is not the last: where the next one starts, and how many remain."""
    return {"continue": _encode_continue(last), "remainingItemCount": remaining}


def _decode_continue(token: str | None) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(namespace), str(name)
    except (ValueError, TypeError, binascii.Error):
        raise bad_request(f"continue key is not valid: {token}") from None
