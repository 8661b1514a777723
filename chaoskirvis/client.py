"""Kubernetes API access for every chaoskirvis activity.

The client is configured from the same secrets and environment keys as chaostoolkit-kubernetes, so one
`secrets` block serves both extensions in one experiment:

1. a kubeconfig: ``KUBECONFIG`` (a path or a colon-separated list of paths) or ``~/.kube/config``,
   with ``KUBERNETES_CONTEXT`` choosing the context;
2. the in-pod service account when ``CHAOSTOOLKIT_IN_POD=true``;
3. ``KUBERNETES_HOST`` with ``KUBERNETES_API_KEY`` (+ ``KUBERNETES_API_KEY_PREFIX``), or
   ``KUBERNETES_CERT_FILE``/``KUBERNETES_KEY_FILE``, or ``KUBERNETES_USERNAME``/``KUBERNETES_PASSWORD``;
   ``KUBERNETES_CA_CERT_FILE`` and ``KUBERNETES_VERIFY_SSL``.

Unlike chaostoolkit-kubernetes: TLS verification stays on unless ``KUBERNETES_VERIFY_SSL`` is explicitly
false (or the kubeconfig says ``insecure-skip-tls-verify``: allowed, but warned about once per process and
server and recorded in the evidence as ``tls_verified: false``), every call has a timeout
(``KIRVIS_REQUEST_TIMEOUT`` seconds, default 30), and no configuration at all is an error, never a
fallback to localhost.

Requests and answers are plain dicts (JSON) over our own urllib3 pool: the `kubernetes` package (0.2 to
0.9 s of imports, its generated models) is imported only for an exec plugin or auth-provider user
(`chaoskirvis.kubeconfig`) and for exec into a pod (its websocket client). One `ClusterClient` (connection
pool, kubeconfig parsed once) serves every activity of a process that resolves to the same configuration;
`kube_api` hands each activity a `KubeAPI` over it with that activity's timeout. `KubeAPI.acting_as(identity)`
is a `KubeAPI` over the same connections whose requests carry that `Identity`'s Impersonate-* headers (or
its own bearer token): the shared client never does, so only the requests made through it are the identity's.

Retries (`RetryPolicy`, ours alone: the urllib3 pool is told not to retry, so retries never multiply). Every request, writes included, is retried on 429 TooManyRequests, on 5xx
and when its answer is lost (a dropped connection, a read timeout), with capped exponential backoff
that honours ``Retry-After``; the whole request, retries and waits included, stays within its timeout,
and a ``Retry-After`` beyond what is left of it ends the request at once with an error that says so.
A 500 saying ``failed calling webhook`` is not retried: it is admission's answer (the webhook could not be
called and its failurePolicy is Fail), the same on every retry until the webhook is back, when a retry could only
turn "failed closed" into "the webhook denied it".
Writes stay idempotent: a merge patch or a delete may be sent twice; a create whose answer was lost is
first looked up by name (and is the created answer if the stored object carries our marks), and a 409
AlreadyExists on a create is read back the same way: our own object is the answer, anyone else's the
error.
"""
from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from logzero import logger

from chaoskirvis import __version__
from chaoskirvis.activity import REQUEST_TIMEOUT_SECONDS, configured_number
from chaoskirvis.kubeconfig import (
    ClusterConfiguration, KubeconfigError, context_names, from_environment, from_kubeconfig, in_pod,
)
from chaoskirvis.ledger.runid import current_run_id

__all__ = ["KubeAPI", "ApiError", "Answer", "ClusterClient", "Identity", "RetryPolicy", "is_intended", "kube_api",
           "kubeconfig_contexts", "path_for", "user_agent", "NO_CONFIGURATION_MESSAGE"]

DEFAULT_TIMEOUT_SECONDS = 30.0
POOL_SIZE = 8  # connections kept per API server (concurrent deletes, watches beside requests)
# Ours are the only retries (KubeAPI.request): the pool must neither retry nor sleep on Retry-After.
_NO_POOL_RETRIES = urllib3.Retry(total=0, redirect=0, raise_on_redirect=False, respect_retry_after_header=False)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The ownership labels that make a stored object the one we meant to create (chaoskirvis.ledger.ownership).
_MARK_LABELS = ("app.kubernetes.io/managed-by", "chaoskirvis.io/run-id", "chaoskirvis.io/technique")

NO_CONFIGURATION_MESSAGE = (
    "no Kubernetes cluster configuration found: set KUBECONFIG to a kubeconfig file "
    "(or create ~/.kube/config), or set KUBERNETES_HOST and KUBERNETES_API_KEY, "
    "or set CHAOSTOOLKIT_IN_POD=true inside a pod"
)

_FALSE_WORDS = {"false", "0", "no", "off"}


class Answer:
    """One API answer: HTTP status, the decoded JSON body, PSA/admission warnings and the latency.

    A plain class, not a dataclass: a dataclass costs about half a millisecond at every `chaos run` start.
    """

    def __init__(self, status: int, body: dict[str, Any], warnings: list[str] | None = None,
                 latency_ms: float = 0.0, attempts: int = 1, retry_after: str | None = None,
                 recovered: str | None = None):
        self.status = status
        self.body = body
        self.warnings = [] if warnings is None else warnings
        self.latency_ms = latency_ms
        self.attempts = attempts
        self.retry_after = retry_after  # the Retry-After header of an error answer
        self.recovered = recovered  # how a create whose answer was lost or refused as existing was read back


class ApiError(Exception):
    """The API server answered with an error status (its Status object is in `body`).

    `note` says why no retry was made or could help (retries exhausted, Retry-After beyond the budget).
    """

    def __init__(self, method: str, path: str, answer: Answer, note: str | None = None):
        self.method = method
        self.path = path
        self.answer = answer
        self.status = answer.status
        self.reason = answer.body.get("reason", "")
        self.message = (answer.body.get("message") or f"HTTP {answer.status}") + (f" ({note})" if note else "")
        super().__init__(f"{method} {path}: {self.status} {self.reason}: {self.message}")


class RetryPolicy(NamedTuple):
    """How one request is retried: `attempts` in all, waits doubling from `first_delay` up to `max_delay`
    (with jitter), or as long as ``Retry-After`` says, always within the request's timeout."""

    attempts: int = 5
    first_delay: float = 0.2
    max_delay: float = 4.0

    def delay(self, retry: int, retry_after: str | None) -> float:
        if retry_after is not None:
            seconds = _retry_after_seconds(retry_after)
            if seconds is not None:
                return seconds
        backoff = min(self.max_delay, self.first_delay * 2 ** (retry - 1))
        return backoff * (0.5 + random.random() / 2)


class Identity:
    """Who an attempt is made as, instead of the runner: impersonated (``Impersonate-User`` and one
    ``Impersonate-Group`` header per group) or, `via` ``token``, with a bearer token of its own.

    The token never appears in `repr`, `summary`, logs or the journal. Not a tuple (it would serialise the
    token) nor a dataclass (about half a millisecond at every `chaos run` start): set once, never changed.
    """

    __slots__ = ("user", "groups", "via", "token", "bound_to")

    def __init__(self, user: str, groups: tuple[str, ...] = (), via: str = "impersonation",
                 token: str | None = None, bound_to: str | None = None):
        self.user = user
        self.groups = groups
        self.via = via
        self.token = token
        self.bound_to = bound_to  # the Secret a token is bound to (its delete kills the token)

    def __repr__(self) -> str:
        return f"Identity(user={self.user!r}, groups={self.groups!r}, via={self.via!r}, bound_to={self.bound_to!r})"

    def headers(self) -> list[tuple[str, str]]:
        """The request headers that make a request this identity's."""
        if self.via == "token":
            return [("Authorization", f"Bearer {self.token}")]
        return [("Impersonate-User", self.user), *(("Impersonate-Group", group) for group in self.groups)]

    def summary(self) -> dict[str, Any]:
        """The identity as the outcome records it (never the token)."""
        shown: dict[str, Any] = {"user": self.user, "groups": list(self.groups), "via": self.via}
        if self.bound_to:
            shown["bound_to"] = self.bound_to  # the Secret whose delete ends the token
        return shown


def _is_admission_answer(answer: Answer) -> bool:
    """A 500 InternalError of a webhook call that failed closed (apierrors.NewInternalError(ErrCallingWebhook))."""
    message = answer.body.get("message") if isinstance(answer.body, dict) else None
    return answer.status == 500 and answer.body.get("reason") == "InternalError" and isinstance(message, str) \
        and message.startswith('Internal error occurred: failed calling webhook "')


class _Lost(Exception):
    """No answer came: the connection failed or dropped, or the read timed out (`cause` says how); the
    request may or may not have reached the server."""

    def __init__(self, cause: Exception):
        self.cause = cause


class ClusterClient:
    """One API server's connection pool and resolved configuration, shared by every `KubeAPI` of the process
    that resolves to it (see `kube_api`); urllib3's pool is safe across threads."""

    def __init__(self, configuration: ClusterConfiguration):
        self.configuration = configuration
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED" if configuration.verify_ssl else "CERT_NONE"}
        if configuration.verify_ssl:
            tls["ca_certs"] = configuration.ca_file or _default_ca_file()
        else:
            tls["assert_hostname"] = False
        if configuration.cert_file:
            tls.update(cert_file=configuration.cert_file, key_file=configuration.key_file)
        if configuration.tls_server_name:
            tls["server_hostname"] = configuration.tls_server_name
        options = {"num_pools": 4, "maxsize": POOL_SIZE, "block": False, "retries": _NO_POOL_RETRIES, **tls}
        if configuration.proxy and not _bypasses_proxy(configuration.host, configuration.no_proxy):
            self.pool: urllib3.PoolManager = urllib3.ProxyManager(configuration.proxy, **options)
        else:
            self.pool = urllib3.PoolManager(**options)
        self._kubernetes_client = None
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return self.configuration.host

    def connections_opened(self) -> int:
        """How many connections (TLS handshakes, for https) the pool has opened so far."""
        return sum(self.pool.pools[key].num_connections for key in self.pool.pools.keys())

    def kubernetes_client(self):
        """The kubernetes package's ApiClient on the same configuration, for what only it does (exec's
        websocket); built, and the package imported, on first use."""
        with self._lock:
            if self._kubernetes_client is None:
                self._kubernetes_client = _kubernetes_api_client(self.configuration)
            return self._kubernetes_client


class KubeAPI:
    """A thin JSON client over a `ClusterClient`, with this activity's timeout and retry policy."""

    def __init__(self, api_client: ClusterClient, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                 retry: RetryPolicy | None = None, identity: Identity | None = None):
        self.api_client = api_client
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.identity = identity

    def acting_as(self, identity: Identity | None) -> KubeAPI:
        """A client over the same connections whose every request is made as `identity` (this one when
        None); this client, and so the ledger's requests, stay the runner's."""
        if identity is None:
            return self
        return KubeAPI(self.api_client, timeout=self.timeout, retry=self.retry, identity=identity)

    @property
    def host(self) -> str:
        return self.api_client.host

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Answer:
        """Send one request, retried as the module docstring says; return the answer on 2xx.

        Raises `ApiError` for an error answer (the last one, once retries cannot help) and
        `ActivityFailed` when the API server cannot be reached or its answers keep getting lost.
        """
        started = time.monotonic()
        deadline = started + self.timeout
        is_create = method == "POST" and not (query or {}).get("dryRun") and isinstance(body, dict) \
            and bool((body.get("metadata") or {}).get("name"))
        attempt, lost = 0, False
        while True:
            attempt += 1
            try:
                answer = self._exchange(method, path, query, body, content_type, max(deadline - time.monotonic(), 0.1))
            except _Lost as failure:
                lost = True
                if is_create:
                    found = self._read_back(path, body, started, attempt, "its answer was lost")
                    if found is not None:
                        return found
                if not self._may_retry(attempt, deadline, None):
                    raise self._unreachable(method, path, failure.cause, attempt) from None
                continue
            answer.latency_ms = round((time.monotonic() - started) * 1000, 1)
            answer.attempts = attempt
            if answer.status < 400:
                return answer
            if is_create and answer.status == 409 and answer.body.get("reason") == "AlreadyExists":
                why = "its first answer was lost" if lost else "409 AlreadyExists"
                found = self._read_back(path, body, started, attempt, why)
                if found is not None:
                    return found
                raise ApiError(method, path, answer)
            if answer.status not in RETRY_STATUSES or _is_admission_answer(answer):
                raise ApiError(method, path, answer)
            if is_create and answer.status != 429:  # a 5xx may come after the server stored it
                found = self._read_back(path, body, started, attempt, f"it was answered {answer.status}")
                if found is not None:
                    return found
            wait = self.retry.delay(attempt, answer.retry_after)
            left = deadline - time.monotonic()
            if answer.retry_after is not None and wait > left:
                raise ApiError(method, path, answer, note=(
                    f"the server asked to retry after Retry-After {answer.retry_after} s, beyond what is left of "
                    f"the request's {self.timeout:g} s timeout (KIRVIS_REQUEST_TIMEOUT): gave up after "
                    f"{attempt} attempt{'s' if attempt > 1 else ''}"))
            if not self._may_retry(attempt, deadline, wait):
                raise ApiError(method, path, answer, note=(
                    f"gave up after {attempt} attempts in {time.monotonic() - started:.1f} s"
                    if attempt > 1 else None))
            lost = False

    def _may_retry(self, attempt: int, deadline: float, wait: float | None) -> bool:
        """Sleep before the next attempt when one is allowed: attempts left and time left after the wait."""
        if attempt >= self.retry.attempts:
            return False
        wait = self.retry.delay(attempt, None) if wait is None else wait
        if time.monotonic() + wait >= deadline - 0.05:
            return False
        time.sleep(wait)
        return True

    def _exchange(self, method: str, path: str, query: dict[str, Any] | None, body: dict[str, Any] | None,
                  content_type: str, timeout: float) -> Answer:
        """One request and its whole answer; `_Lost` when the answer did not come."""
        response = self._send(method, path, query, body, content_type, timeout)
        try:
            raw = response.read()
        except urllib3.exceptions.HTTPError as exc:
            response.close()  # a half-read answer must not go back to the pool
            raise _Lost(exc) from None
        finally:
            response.release_conn()
        return Answer(
            status=response.status, body=_decode(raw), warnings=_warnings(response.headers),
            retry_after=response.headers.get("Retry-After") if response.status >= 400 else None,
        )

    def _read_back(self, collection: str, body: dict[str, Any], started: float, attempt: int,
                   why: str) -> Answer | None:
        """The object a create meant to store, if it is stored and ours (see `is_intended`), else None."""
        name = body["metadata"]["name"]
        try:
            timeout = max(1.0, min(5.0, self.timeout / 4))  # a short look, even when the budget is spent
            answer = self._exchange("GET", f"{collection}/{quote(name, safe='')}", None, None,
                                    "application/json", timeout)
        except (_Lost, ActivityFailed):
            return None
        if answer.status != 200 or not is_intended(answer.body, body):
            return None
        return Answer(status=201, body=answer.body, latency_ms=round((time.monotonic() - started) * 1000, 1),
                      attempts=attempt, recovered=f"{why}: read back by name, stored with our marks")

    def stream_lines(self, path: str, *, query: dict[str, Any] | None = None, timeout: float) -> Iterator[str]:
        """GET a streaming response (a watch, or logs with follow) and yield its lines as they arrive.

        Opening the stream is retried as any GET (429, 5xx, connection refused), within the request
        timeout. Ends when the server ends the stream or `timeout` seconds pass without data.
        """
        response = self._open_stream(path, query, timeout)
        buffer, complete = b"", False
        try:
            for chunk in response.stream(4096, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield line.decode("utf-8", "replace")
            complete = True
        except urllib3.exceptions.ReadTimeoutError:
            return
        except urllib3.exceptions.ProtocolError as exc:  # cut mid-stream: what was not read is unknown
            raise ActivityFailed(
                f"the stream of GET {path} from {self.host} was cut: {_short_network_error(exc)}"
            ) from None
        finally:
            if not complete:  # a half-read stream must not go back to the pool
                response.close()
            response.release_conn()
        if buffer.strip():
            yield buffer.decode("utf-8", "replace")

    def _open_stream(self, path: str, query: dict[str, Any] | None, timeout: float):
        started = time.monotonic()
        deadline = started + self.timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send("GET", path, query, None, "application/json",
                                      (max(deadline - time.monotonic(), 0.1), timeout))
            except _Lost as failure:
                if not self._may_retry(attempt, deadline, None):
                    raise self._unreachable("GET", path, failure.cause, attempt) from None
                continue
            if response.status < 400:
                return response
            try:
                raw = response.read()
            except urllib3.exceptions.HTTPError:
                response.close()
                raw = b""
            finally:
                response.release_conn()
            answer = Answer(status=response.status, body=_decode(raw),
                            retry_after=response.headers.get("Retry-After"), attempts=attempt)
            if answer.status not in RETRY_STATUSES:
                raise ApiError("GET", path, answer)
            wait = self.retry.delay(attempt, answer.retry_after)
            if answer.retry_after is not None and wait > deadline - time.monotonic():
                raise ApiError("GET", path, answer, note=(
                    f"the server asked to retry after Retry-After {answer.retry_after} s, beyond what is left of "
                    f"the request's {self.timeout:g} s timeout: gave up"))
            if not self._may_retry(attempt, deadline, wait):
                raise ApiError("GET", path, answer, note=f"gave up after {attempt} attempts" if attempt > 1 else None)

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: dict[str, Any] | None,
              content_type: str, timeout: float | tuple[float, float]):
        """One HTTP exchange up to the answer's headers; `_Lost` when there is no answer (yet)."""
        headers = urllib3.HTTPHeaderDict({"Accept": "application/json", "Content-Type": content_type,
                                          "User-Agent": user_agent()})
        authorization = self.api_client.configuration.authorization()
        if authorization:
            headers["Authorization"] = authorization
        for name, value in self.identity.headers() if self.identity else ():
            if name == "Authorization":
                headers[name] = value  # the identity's own token replaces the runner's credentials
            else:
                headers.add(name, value)
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        url = self.host + path + (f"?{urlencode(params)}" if params else "")
        encoded = None if body is None else json.dumps(body).encode()
        timeouts = urllib3.Timeout(connect=timeout[0], read=timeout[1]) if isinstance(timeout, tuple) \
            else urllib3.Timeout(total=timeout)
        try:
            return self.api_client.pool.request(method, url, body=encoded, headers=headers, timeout=timeouts,
                                                retries=_NO_POOL_RETRIES, preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            cause = getattr(exc, "reason", None) or exc
            if isinstance(cause, urllib3.exceptions.SSLError):  # a TLS failure does not heal by retrying
                raise self._unreachable(method, path, exc) from None
            raise _Lost(exc) from None

    def _unreachable(self, method: str, path: str, exc: Exception, attempts: int = 1) -> ActivityFailed:
        tries = f" (after {attempts} attempts within {self.timeout:g} s)" if attempts > 1 else ""
        if isinstance(getattr(exc, "reason", None) or exc, urllib3.exceptions.SSLError):
            return ActivityFailed(
                f"the Kubernetes API server at {self.host} failed TLS verification ({method} {path}): "
                f"{_short_network_error(exc)}; check the kubeconfig's certificate-authority (nothing was sent)"
            )
        return ActivityFailed(
            f"cannot reach the Kubernetes API server at {self.host} ({method} {path}): "
            f"{_short_network_error(exc)}{tries}"
        )

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self.request("GET", path, query=query).body

    def create(self, path: str, body: dict[str, Any], *, dry_run: bool = False) -> Answer:
        return self.request("POST", path, body=body, query={"dryRun": "All" if dry_run else None})

    def merge_patch(self, path: str, patch: dict[str, Any]) -> Answer:
        return self.request("PATCH", path, body=patch, content_type="application/merge-patch+json")

    def delete(self, path: str, *, dry_run: bool = False) -> Answer:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        return self.request("DELETE", path, body=body, query={"dryRun": "All" if dry_run else None})


def kube_api(configuration: Configuration | None = None, secrets: Secrets | None = None) -> KubeAPI:
    """The API client from secrets, then the environment (see the module docstring): the process's one
    `ClusterClient` for that configuration, with this activity's timeout."""
    secrets = secrets or {}

    def lookup(key: str) -> str | None:
        value = secrets.get(key, os.environ.get(key))
        return None if value is None else str(value)

    setting, configured = "kirvis_request_timeout", (configuration or {}).get("kirvis_request_timeout")
    if configured is None or configured == "":
        setting, configured = "KIRVIS_REQUEST_TIMEOUT", lookup("KIRVIS_REQUEST_TIMEOUT")
    timeout = configured_number(configured, setting, DEFAULT_TIMEOUT_SECONDS, REQUEST_TIMEOUT_SECONDS)
    return KubeAPI(cluster_client(lookup), timeout=timeout)


_CLIENTS: dict[tuple, ClusterClient] = {}
_CLIENTS_LOCK = threading.Lock()
# What selects the configuration besides the kubeconfig files themselves.
_SELECTING_KEYS = ("KUBERNETES_CONTEXT", "KUBERNETES_VERIFY_SSL", "CHAOSTOOLKIT_IN_POD", "KUBERNETES_HOST",
                   "KUBERNETES_API_KEY", "KUBERNETES_API_KEY_PREFIX", "KUBERNETES_CERT_FILE", "KUBERNETES_KEY_FILE",
                   "KUBERNETES_USERNAME", "KUBERNETES_PASSWORD", "KUBERNETES_CA_CERT_FILE")


def cluster_client(lookup: Callable[[str], str | None]) -> ClusterClient:
    """The process's client for the configuration `lookup` selects, resolved once: keyed by every setting
    that selects it and by the kubeconfig files' paths, sizes and modification times (an edited kubeconfig
    is read again)."""
    kubeconfig = _existing_kubeconfig(lookup("KUBECONFIG"))
    files = tuple(_file_version(p) for p in kubeconfig or ())
    key = (files, tuple(lookup(k) for k in _SELECTING_KEYS),
           tuple(os.environ.get(k) for k in ("HTTP_PROXY", "NO_PROXY", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            resolved = _resolve_configuration(kubeconfig, lookup)
            warn_if_tls_unverified(resolved)
            client = _CLIENTS[key] = ClusterClient(resolved)
        return client


_WARNED_UNVERIFIED: set[str] = set()


def tls_verified(configuration: ClusterConfiguration) -> bool:
    """Whether the API server's answers are authenticated: HTTPS with its certificate verified."""
    return str(configuration.host or "").lower().startswith("https://") and bool(configuration.verify_ssl)


def warn_if_tls_unverified(configuration: ClusterConfiguration) -> None:
    """One WARNING per process and API server whose answers are not authenticated (allowed, never silent)."""
    if tls_verified(configuration):
        return
    parts = urlsplit(str(configuration.host or ""))
    server = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"  # no userinfo, no path: never a credential
    if server in _WARNED_UNVERIFIED:
        return
    _WARNED_UNVERIFIED.add(server)
    # this WARNING replaces urllib3's InsecureRequestWarning, which would otherwise repeat it on the console
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    logger.warning(
        f"TLS verification is off for the Kubernetes API server {server} (insecure-skip-tls-verify in the "
        "kubeconfig, KUBERNETES_VERIFY_SSL=false, or plain http): anyone on the network path can answer for it, "
        "a forged denial included; the run goes on and its evidence records tls_verified: false"
    )


def is_intended(stored: dict[str, Any], sent: dict[str, Any]) -> bool:
    """Whether a stored object is the one `sent` meant to create: it carries every ownership mark the
    body carried, with the same values, and (a ConfigMap) the data it was sent with."""
    sent_labels = (sent.get("metadata") or {}).get("labels") or {}
    stored_labels = (stored.get("metadata") or {}).get("labels") or {}
    marks = [label for label in _MARK_LABELS if label in sent_labels]
    if _MARK_LABELS[0] not in marks or any(stored_labels.get(label) != sent_labels[label] for label in marks):
        return False
    sent_data, stored_data = sent.get("data") or {}, stored.get("data") or {}
    return all(stored_data.get(key) == value for key, value in sent_data.items())


def user_agent() -> str:
    """The User-Agent that ties every request (and so audit logs and alerts) to this run."""
    return f"chaoskirvis/{__version__} (run {current_run_id()}) urllib3/{urllib3.__version__}"


def _resolve_configuration(kubeconfig: list[str] | None, lookup) -> ClusterConfiguration:
    verify_ssl = not _is_false(lookup("KUBERNETES_VERIFY_SSL"))
    if kubeconfig:
        context = lookup("KUBERNETES_CONTEXT")
        try:
            resolved = from_kubeconfig(kubeconfig, context)
        except (KubeconfigError, OSError, ValueError) as exc:
            raise ActivityFailed(f"cannot use kubeconfig {os.pathsep.join(kubeconfig)} "
                                 f"(context {context or 'current'}): {exc}") from None
        resolved.verify_ssl = resolved.verify_ssl and verify_ssl
        return resolved
    if lookup("CHAOSTOOLKIT_IN_POD") == "true":
        try:
            return in_pod()
        except KubeconfigError as exc:
            raise ActivityFailed(f"CHAOSTOOLKIT_IN_POD=true but no in-pod service account: {exc}") from None
    if lookup("KUBERNETES_HOST"):
        return from_environment(lookup, verify_ssl)
    raise ActivityFailed(NO_CONFIGURATION_MESSAGE)


def kubeconfig_contexts() -> list[str]:
    """The context names of the kubeconfig this process reads (``KUBECONFIG``, else ``~/.kube/config``), as
    ``KUBERNETES_CONTEXT`` may name them; raises `ActivityFailed` when there is none or it cannot be read."""
    paths = _existing_kubeconfig(os.environ.get("KUBECONFIG"))
    if not paths:
        raise ActivityFailed("no kubeconfig to take contexts from: set KUBECONFIG or write ~/.kube/config")
    try:
        return context_names(paths)
    except (KubeconfigError, OSError) as exc:
        raise ActivityFailed(f"cannot read the contexts of kubeconfig {os.pathsep.join(paths)}: {exc}") from None


def _existing_kubeconfig(kubeconfig_env: str | None) -> list[str] | None:
    """The KUBECONFIG value restricted to files that exist, or ~/.kube/config, or None."""
    if kubeconfig_env:
        paths = [p for p in kubeconfig_env.split(os.pathsep) if p and Path(p).expanduser().is_file()]
        if not paths:
            raise ActivityFailed(f"KUBECONFIG is set to {kubeconfig_env!r} but no such file exists")
        return paths
    default = Path("~/.kube/config").expanduser()
    return [str(default)] if default.is_file() else None


def _file_version(path: str) -> tuple[str, int, int]:
    try:
        status = os.stat(Path(path).expanduser())
    except OSError as exc:
        raise ActivityFailed(f"cannot use kubeconfig {path}: {exc.strerror}") from None
    return path, status.st_mtime_ns, status.st_size


def _default_ca_file() -> str | None:
    """The CA bundle the kubernetes package verifies with when the configuration names none (certifi's)."""
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def _bypasses_proxy(host: str, no_proxy: str | None) -> bool:
    """Whether NO_PROXY (comma-separated hosts or domain suffixes, ``*`` for all) exempts `host`."""
    hostname = (urlsplit(host).hostname or "").lower()
    for entry in (no_proxy or "").split(","):
        entry = entry.strip().lower().lstrip(".")
        if entry and (entry == "*" or hostname == entry or hostname.endswith(f".{entry}")):
            return True
    return False


def _kubernetes_api_client(configuration: ClusterConfiguration):
    """A kubernetes package ApiClient configured as `configuration` (host, TLS, credentials, proxy)."""
    from kubernetes import client as k8s_client

    settings = k8s_client.Configuration()
    settings.host = configuration.host
    settings.verify_ssl = configuration.verify_ssl
    settings.ssl_ca_cert = configuration.ca_file or _default_ca_file()
    settings.cert_file, settings.key_file = configuration.cert_file, configuration.key_file
    settings.tls_server_name = configuration.tls_server_name
    settings.proxy = None if _bypasses_proxy(configuration.host, configuration.no_proxy) else configuration.proxy
    settings.retries = _NO_POOL_RETRIES
    if configuration.authorization():  # the header as we send it, re-read (a rotated token) on each use
        settings.api_key["BearerToken"] = configuration.authorization()
        settings.refresh_api_key_hook = lambda s: s.api_key.update(BearerToken=configuration.authorization())
    api_client = k8s_client.ApiClient(settings)
    api_client.user_agent = user_agent()
    return api_client


def _is_false(value: str | None) -> bool:
    return value is not None and value.strip().lower() in _FALSE_WORDS


def _decode(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {"message": raw.decode("utf-8", "replace")[:500]}
    return decoded if isinstance(decoded, dict) else {"items": decoded}


def _warnings(headers) -> list[str]:
    """Warning headers (`299 - "quoted text"`, RFC 7234) as plain texts; PSA's warn mode speaks through them."""
    texts = []
    for value in headers.getlist("Warning"):
        text = value.split(" - ", 1)[-1].strip()
        if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        texts.append(text)
    return texts


def _retry_after_seconds(value: str) -> float | None:
    """Retry-After as seconds (RFC 9110: delay-seconds or an HTTP date), or None when unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short_network_error(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    return text.split(": ", 1)[-1] if "NewConnectionError" in text else text


def path_for(api_version: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    """The REST path of a resource (collection when `name` is None)."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{plural}"
    return f"{base}/{quote(name, safe='')}" if name else base
