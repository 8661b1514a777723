"""Hosting the sandbox: a Kubernetes API emulator on 127.0.0.1, for tests and demos only.

`Sandbox` serves the API over HTTPS from its own event loop in a daemon thread, with a certificate signed
by a throwaway CA of its own (`tls`), writes kubeconfigs for its users (the CA, the server URL and the
user's bearer token: the admin and the viewer, and any added with `add_user`) and applies manifests through the same HTTPS path (and admission) as any client.
Clients may also authenticate with a certificate from its client CA (`client_ca_pem`), which signs approved
kubernetes.io/kube-apiserver-client CertificateSigningRequests (`csr_signer`).
Tests script what an exec answers (`script_exec`), read what was exec'd (`execs`) and write pod logs
(`append_log`): no container runs. A test may attach a directory as a node's filesystem (`attach_node_root`):
the node agent's fixed commands exec'd into a pod on that node then run for real on it (`node_exec`).
Admission webhooks (`webhooks`) are called where their configurations say; the Services they name are reached
at the local addresses given as `webhook_services` or to `map_webhook_service`, and `store_legacy` stores a
configuration as an upgraded cluster may still hold it (sideEffects Unknown or Some).
`run_foreground` is the `kirvis sandbox` command.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import errno
import ipaddress
import json
import secrets
import signal
import ssl
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp.web
import yaml

from chaoskirvis.sandbox.admission import AdmissionChain, PodSecurityAdmission
from chaoskirvis.sandbox.controllers import ClusterStore
from chaoskirvis.sandbox.csr_signer import ClientCertificateSigner
from chaoskirvis.sandbox import gc_tuning
from chaoskirvis.sandbox.exec_ws import ExecAnswer, ExecMatch, ExecRecord, ExecSessions
from chaoskirvis.sandbox.node_exec import NodeRoots
from chaoskirvis.sandbox.nodes import DEFAULT_NODES, SandboxNode
from chaoskirvis.sandbox.api import KubernetesApiHandler, LoggedRequest
from chaoskirvis.sandbox.authentication import Authenticator, authenticated
from chaoskirvis.sandbox.rbac import MASTERS, Authorizer, UserInfo
from chaoskirvis.sandbox.rbac_bootstrap import cluster_role_bindings, cluster_roles
from chaoskirvis.sandbox.sa_tokens import TokenIssuer
from chaoskirvis.sandbox.pod_admission import MUTATING_POD_PLUGINS
from chaoskirvis.sandbox.service_allocation import ServiceAllocation
from chaoskirvis.sandbox.request_log import RequestLog
from chaoskirvis.sandbox.resources import NAMESPACES, ResourceType, find_by_kind
from chaoskirvis.sandbox.store import Store, prepare_create
from chaoskirvis.sandbox.tls import ServerTls, create_server_tls
from chaoskirvis.sandbox.vap import ValidatingAdmissionPolicyAdmission
from chaoskirvis.sandbox import webhooks_config
from chaoskirvis.sandbox.webhooks import MutatingWebhookAdmission, ValidatingWebhookAdmission, WebhookConfigurations
from chaoskirvis.sandbox.webhooks_client import WebhookCaller

ADMIN = UserInfo("sandbox-admin", groups=(MASTERS, "system:authenticated"))
# What the viewer may do is the bootstrap ClusterRole kirvis:sandbox-viewer: get, list and watch of everything.
VIEWER = UserInfo("sandbox-viewer", groups=("system:authenticated",))
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_SHUTDOWN_SECONDS = 2.0


class SandboxError(RuntimeError):
    """The sandbox could not start, or a manifest could not be applied."""


class Sandbox:
    """A local Kubernetes API server emulator. Use as a context manager, or `start()` and `stop()`."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", history_limit: int = 10_000,
                 nodes: Sequence[SandboxNode] = DEFAULT_NODES, users: Sequence[UserInfo] = (),
                 anonymous_auth: bool = False, webhook_services: Mapping[tuple[str, ...], str] | None = None,
                 pod_start_seconds: float = 0.0) -> None:
        """`history_limit` is how many changes are kept for watches that resume from a resourceVersion (the
        API server's compaction window): a watch from an older one gets the ERROR event 410 Expired.
        `nodes` are the nodes registered at start (default: `kirvis-control-plane`, tainted NoSchedule, and
        `kirvis-worker`); pods are scheduled to them (see `controllers`).
        `users` are users besides the admin and the viewer, each given a token (`token_of`); RBAC decides what
        they may do (they hold nothing until bound). `anonymous_auth` serves requests without credentials as
        `system:anonymous` (kube-apiserver's --anonymous-auth=true) instead of answering 401.
        `webhook_services` maps the Services that admission webhooks name in `clientConfig.service` to the
        local addresses that serve them: `{("kyverno", "kyverno-svc"): "127.0.0.1:8443"}` (any port), or with
        the service port as a third key element; also `map_webhook_service`. No cluster DNS resolves here.
        `pod_start_seconds`: how long a pod a ReplicaSet made stays Pending (not Ready, no endpoint) before it
        runs: the outage window after its pods are killed (docs/sandbox.md, Workload controllers and endpoints)."""
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the sandbox listens on a loopback address only, not {host}")
        self.host = host
        self.port = port
        self.history_limit = history_limit
        self.nodes = tuple(nodes)
        self.admin_token = secrets.token_urlsafe(32)
        self.viewer_token = secrets.token_urlsafe(32)
        self.anonymous_auth = anonymous_auth
        self.pod_start_seconds = pod_start_seconds
        self._tokens: dict[str, UserInfo] = {self.admin_token: ADMIN, self.viewer_token: VIEWER}
        self._token_by_user = {"admin": self.admin_token, "viewer": self.viewer_token,
                               ADMIN.name: self.admin_token, VIEWER.name: self.viewer_token}
        for user in users:
            self.add_user(user.name, user.groups, user.uid)
        self._node_roots = NodeRoots()
        self._exec_sessions = ExecSessions(local=self._node_roots.runner_for)
        self._webhook_services: dict[tuple[str, ...], str] = dict(webhook_services or {})
        self._handler: KubernetesApiHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: aiohttp.web.BaseRunner | None = None
        self._store: Store | None = None
        self._thread: threading.Thread | None = None
        self._tls: ServerTls | None = None
        self._webhook_caller: WebhookCaller | None = None

    def add_user(self, name: str, groups: Sequence[str] = (), uid: str = "") -> str:
        """A new user with a bearer token of its own (returned; also `token_of(name)`), also when running.

        It is in `groups` and `system:authenticated`, and may do what RBAC bindings to it or its groups grant."""
        if not name or name in self._token_by_user:
            raise ValueError(f"the sandbox already has a user {name!r}" if name else "a user needs a name")
        token = secrets.token_urlsafe(32)
        self._tokens[token] = authenticated(UserInfo(name, uid, tuple(groups)))
        self._token_by_user[name] = token
        return token

    def map_webhook_service(self, namespace: str, name: str, address: str, port: int | None = None) -> None:
        """Reach the Service NAMESPACE/NAME (on `port`, or any port) at `address` ("HOST:PORT") when a webhook's
        clientConfig.service names it; also while running. The call is still https to
        `NAME.NAMESPACE.svc`, its certificate verified against the webhook's caBundle for that name."""
        self._webhook_services[(namespace, name) if port is None else (namespace, name, port)] = address

    def store_legacy(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Store a webhook configuration as an upgraded cluster still holds it: one with `sideEffects: Unknown`
        or `Some`, which admissionregistration.k8s.io/v1beta1 accepted before 1.22 and v1 refuses to create
        (v1 still lets an update keep them). Defaulted and validated as such an update; no admission. Returns it."""
        if self._loop is None or self._store is None:
            raise SandboxError("start the sandbox before storing objects")
        resource = find_by_kind(str(manifest.get("apiVersion", "")), str(manifest.get("kind", "")))
        if resource is None or not resource.kind.endswith("WebhookConfiguration"):
            raise SandboxError(f"store_legacy takes webhook configurations, not {manifest.get('kind')}")
        store, mutating = self._store, resource.kind.startswith("Mutating")
        obj = prepare_create(resource, json.loads(json.dumps(manifest)))
        webhooks_config.apply_defaults(obj, mutating)
        causes = webhooks_config.validate(obj, obj, mutating)
        if causes:
            raise SandboxError(f"{resource.kind} {obj['metadata'].get('name')!r} is invalid: "
                               + ", ".join(str(cause) for cause in causes))

        async def create() -> dict[str, Any]:
            return store.create(resource, obj)

        return asyncio.run_coroutine_threadsafe(create(), self._loop).result()

    def token_of(self, user: str) -> str:
        """The bearer token of a configured user ("admin", "viewer" or a name given to `add_user`)."""
        try:
            return self._token_by_user[user]
        except KeyError:
            raise ValueError(f"the sandbox has no user {user!r}: add it with add_user") from None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        """The PEM certificate of this sandbox's CA, which signed its server certificate (while running)."""
        return self._running_tls().ca_pem

    @property
    def ca_file(self) -> Path:
        """A file holding `ca_pem`, for clients that take a path; deleted when the sandbox stops."""
        return self._running_tls().ca_file

    @property
    def client_ca_pem(self) -> bytes:
        """The PEM certificate of the CA that client certificates are verified against and signed by."""
        return self._running_tls().client_ca.pem

    def _running_tls(self) -> ServerTls:
        if self._tls is None:
            raise SandboxError("the sandbox has no certificate authority until it starts")
        return self._tls

    @property
    def requests(self) -> RequestLog[LoggedRequest]:
        """The requests answered so far (method, path, query, User-Agent, user, response status): the latest
        10,000 are kept, `len` counts them all, `requests[seen:]` is what came after the first `seen`."""
        return self._handler.request_log.snapshot() if self._handler else RequestLog()

    @property
    def execs(self) -> list[ExecRecord]:
        """Every exec answered so far (namespace, pod, container, command, tty, user, time): nothing ran."""
        return self._exec_sessions.records

    def script_exec(self, match: ExecMatch, stdout: str = "", stderr: str = "", exit_code: int = 0) -> None:
        """Answer the execs that `match` selects with this output and exit code (by default: none, and 0).

        `match` is a command prefix (a list of arguments, or a string split as a shell splits it: ``"cat
        /etc/shadow"`` matches ``cat /etc/shadow`` and ``cat /etc/shadow /etc/passwd``) or a predicate on
        the `ExecRecord`. The latest matching script answers; scripts last as long as the sandbox. An exec no
        script answers exits 127 with a line on stderr saying that the sandbox runs no processes.
        """
        self._exec_sessions.script(match, ExecAnswer(stdout, stderr, exit_code))

    def attach_node_root(self, node: str, root: Path | str | None) -> None:
        """Attach directory `root` as the host filesystem of node `node` (None detaches it).

        From then on an exec of one of the node agent's commands (`chaoskirvis.nodes.agent_commands`) into a
        pod on that node, on a path under one of its hostPath mounts, runs for real on the matching path
        under `root`, with the exec's stdin (`node_exec`); every other exec is answered as scripted.
        """
        if node not in {n.name for n in self.nodes}:
            raise SandboxError(f"the sandbox has no node {node!r} (nodes: {', '.join(n.name for n in self.nodes)})")
        if root is not None and not Path(root).is_dir():
            raise SandboxError(f"{root} is not a directory")
        self._node_roots.attach(node, root)

    def append_log(self, namespace: str, pod: str, line: str, container: str | None = None,
                   at: datetime.datetime | None = None) -> None:
        """Write `line` to the log of a container of a running pod, as logged at `at` (default: now, UTC).

        Clients following the log get it at once. `container` may be left out when the pod has one
        container. Safe from any thread; raises SandboxError for a missing pod or container.
        """
        if self._loop is None or self._handler is None or self._store is None:
            raise SandboxError("start the sandbox before writing pod logs")
        if at is not None and at.tzinfo is None:
            raise ValueError("append_log needs an aware datetime (e.g. datetime.now(datetime.UTC))")
        handler, store = self._handler, self._store

        async def append() -> None:
            handler.pod_logs.append(store, namespace, pod, line, container, at or datetime.datetime.now(datetime.UTC))

        try:
            asyncio.run_coroutine_threadsafe(append(), self._loop).result()
        except (LookupError, ValueError) as error:
            raise SandboxError(f"cannot log to {namespace}/{pod}: {error}") from None

    def start(self) -> Sandbox:
        """Start serving; return once the port is listening."""
        if self._thread is not None:
            raise SandboxError("the sandbox is already running")
        self._tls = create_server_tls(self.host)
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failures: list[Exception] = []
        thread = threading.Thread(target=self._serve, args=(loop, ready, failures), name="kirvis-sandbox",
                                  daemon=True)
        thread.start()
        ready.wait()
        if failures:
            thread.join()
            self._remove_tls()
            error = failures[0]
            if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
                raise SandboxError(f"port {self.port} on {self.host} is already in use") from None
            raise SandboxError(f"cannot listen on {self.host}:{self.port}: {error}") from error
        self._loop, self._thread = loop, thread
        gc_tuning.sandbox_started()
        return self

    def stop(self) -> None:
        """End every watch, close the server and its thread, delete the CA file; a stopped sandbox stays so."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        self._thread.join()
        self._loop = self._thread = None
        self._remove_tls()
        gc_tuning.sandbox_stopped()

    def _remove_tls(self) -> None:
        assert self._tls is not None
        self._tls.remove()
        self._tls = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def write_kubeconfig(self, path: Path | str, *, user: str = "admin", context: str = "kirvis-sandbox") -> Path:
        """Write a kubeconfig for `user`: "admin", "viewer" or a user added with `add_user` (the kubernetes
        client, kubectl and Chaos Toolkit read it).

        The cluster is the HTTPS URL with this sandbox's CA as `certificate-authority-data`, so clients
        verify the server certificate; the user's bearer token is its `token`, and nowhere else.
        """
        if self._thread is None:
            raise SandboxError("start the sandbox before writing its kubeconfig")
        token = self.token_of(user)
        user_name = f"kirvis-sandbox-{user}"
        cluster = {"server": self.url, "certificate-authority-data": base64.b64encode(self.ca_pem).decode()}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kirvis-sandbox", "cluster": cluster}],
            "users": [{"name": user_name, "user": {"token": token}}],
            "contexts": [{"name": context,
                          "context": {"cluster": "kirvis-sandbox", "user": user_name, "namespace": "default"}}],
            "current-context": context,
            "preferences": {},
        }
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(yaml.safe_dump(config, sort_keys=False))
        partial.chmod(0o600)
        partial.replace(path)  # readers never see a half-written file
        return path

    def apply(self, source: Path | str) -> list[dict[str, Any]]:
        """Create, or replace when it exists, each object of a multi-document YAML file or text.

        Goes through the API like any client (validation, admission); returns the stored objects.
        A string is read as a file path when it names an existing file, else as YAML text.
        """
        if self._thread is None:
            raise SandboxError("start the sandbox before applying manifests")
        is_file = isinstance(source, Path) or ("\n" not in source and Path(source).is_file())
        text = Path(source).read_text() if is_file else str(source)
        where = f" in {source}" if is_file else ""
        try:
            documents = [doc for doc in yaml.safe_load_all(text) if doc]
        except yaml.YAMLError as error:
            raise SandboxError(f"invalid YAML{where}: {error}") from None
        return [self.apply_object(obj, where) for obj in _expand_lists(documents)]

    def apply_object(self, obj: Any, where: str = "") -> dict[str, Any]:
        """Create, or replace when it exists, one object given as a dict (`where` ends its error messages)."""
        if not isinstance(obj, dict):
            raise SandboxError(f"a manifest document{where} is not an object")
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        resource = find_by_kind(api_version, kind) or self._discovered(api_version, kind, where)
        metadata = obj.get("metadata") or {}
        if resource is None:
            raise SandboxError(f"{obj.get('kind')} in {obj.get('apiVersion')}{where} is not served by the sandbox")
        name = metadata.get("name", "")
        prefix = f"/apis/{resource.api_version}" if resource.group else f"/api/{resource.version}"
        if resource.namespaced:
            prefix += f"/namespaces/{urllib.parse.quote(metadata.get('namespace') or 'default')}"
        collection = f"{prefix}/{resource.plural}"
        current = self._call("GET", f"{collection}/{urllib.parse.quote(name)}", None, where) if name else None
        if current is None:
            return self._call("POST", collection, obj, where)
        replacement = dict(obj, metadata=dict(metadata, resourceVersion=current["metadata"]["resourceVersion"]))
        return self._call("PUT", f"{collection}/{urllib.parse.quote(name)}", replacement, where)

    def _discovered(self, api_version: str, kind: str, where: str) -> ResourceType | None:
        """The resource a stored CRD serves for this kind, found as kubectl finds it: in the group version's
        discovery document."""
        if "/" not in api_version:
            return None
        listed = self._call("GET", f"/apis/{api_version}", None, where)
        entry = next((r for r in (listed or {}).get("resources", []) if r.get("kind") == kind and "/" not in r["name"]),
                     None)
        if entry is None:
            return None
        group, version = api_version.split("/", 1)
        return ResourceType(group, version, entry["name"], kind, entry["namespaced"])

    def _call(self, method: str, path: str, body: Any, where: str) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json",
                     "User-Agent": "kirvis-sandbox-apply"},
        )
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            status = json.loads(error.read() or b"{}")
            if method == "GET" and error.code == 404:
                return None
            raise SandboxError(f"{method} {path}{where}: {status.get('message', error.reason)}") from None

    def _serve(self, loop: asyncio.AbstractEventLoop, ready: threading.Event, failures: list[Exception]) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen())
        except Exception as error:  # reported to start(), in the caller's thread
            failures.append(error)
            ready.set()
            loop.close()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    async def _listen(self) -> None:
        issuer = TokenIssuer()
        tls = self._running_tls()
        store = ClusterStore(tls.ca_pem, self.nodes, self.history_limit, issuer, ClientCertificateSigner(tls.client_ca),
                             pod_start_seconds=self.pod_start_seconds)
        for name in INITIAL_NAMESPACES:
            store.create(NAMESPACES, prepare_create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                                  "metadata": {"name": name}}))
        store.register_nodes()
        for manifest in (*cluster_roles(), *cluster_role_bindings()):  # the RBAC post-start hook's policy
            resource = find_by_kind(manifest["apiVersion"], manifest["kind"])
            assert isinstance(resource, ResourceType)
            store.create(resource, prepare_create(resource, manifest))
        authorizer = Authorizer(store)
        webhook_caller, webhook_configurations = WebhookCaller(self._webhook_services), WebhookConfigurations()
        handler = KubernetesApiHandler(
            store=store,
            # the pods' mutating plugins, the mutating webhooks, the service allocators' checks, then PodSecurity,
            # ValidatingAdmissionPolicy and the validating webhooks: the API server's order (admission.py)
            admission=AdmissionChain([
                *(plugin() for plugin in MUTATING_POD_PLUGINS),
                MutatingWebhookAdmission(authorizer, webhook_caller, webhook_configurations),
                ServiceAllocation(), PodSecurityAdmission(), ValidatingAdmissionPolicyAdmission(authorizer),
                ValidatingWebhookAdmission(authorizer, webhook_caller, webhook_configurations)]),
            authorizer=authorizer,
            authenticator=Authenticator(self._tokens, issuer, store, self.anonymous_auth),
            exec_sessions=self._exec_sessions,
        )
        store.admission = handler.admission  # the replicaset-controller's pod creates are admitted as the API's
        runner = aiohttp.web.ServerRunner(aiohttp.web.Server(handler, handler_cancellation=True),
                                          shutdown_timeout=_SHUTDOWN_SECONDS)
        await runner.setup()
        try:
            await aiohttp.web.TCPSite(runner, self.host, self.port, ssl_context=tls.context).start()
        except OSError:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._handler, self._runner, self._store = handler, runner, store
        self._webhook_caller = webhook_caller

    async def _shutdown(self) -> None:
        assert self._store is not None and self._runner is not None and self._loop is not None
        self._store.close()
        await self._runner.cleanup()
        if self._webhook_caller is not None:
            await self._webhook_caller.close()
        self._loop.call_soon(self._loop.stop)


def _expand_lists(documents: list[Any]) -> Iterator[Any]:
    """Documents, with `kind: List` (and other `*List` kinds with items) unpacked as kubectl does."""
    for document in documents:
        if isinstance(document, dict) and str(document.get("kind", "")).endswith("List") and "items" in document:
            yield from document["items"] or []
        else:
            yield document


def run_foreground(port: int, kubeconfig: Path, manifests: list[Path]) -> int:
    """`kirvis sandbox`: serve until Ctrl-C or SIGTERM, with the manifests applied and a kubeconfig written."""
    sandbox = Sandbox(port)
    try:
        sandbox.start()
    except SandboxError as error:
        print(f"kirvis sandbox: {error}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for manifest in manifests:
            sandbox.apply(manifest)
        path = sandbox.write_kubeconfig(kubeconfig)
        print(f"kirvis sandbox: Kubernetes API emulator at {sandbox.url} (TLS with a throwaway CA, 127.0.0.1 "
              "only; test and demo infrastructure: it stores objects and runs no containers)", flush=True)
        print(f"kubeconfig: {path}\n\n  export KUBECONFIG={path}\n  kubectl get ns\n\nCtrl-C to stop.",
              flush=True)
        stop.wait()
    except SandboxError as error:
        print(f"kirvis sandbox: {error}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sandbox.stop()
    print("kirvis sandbox: stopped", flush=True)
    return 0


__all__ = ["ADMIN", "VIEWER", "Sandbox", "SandboxError", "UserInfo", "run_foreground"]
