"""Where the API server is and how to authenticate to it: kubeconfig files, the in-pod service account, or
chaostoolkit-kubernetes' environment keys, resolved into one `ClusterConfiguration`.

Kubeconfig files are read as kubectl reads them (client-go ``clientcmd``): several files merge with the first
file that defines a name (or sets ``current-context``) winning, and relative paths inside a file are taken
from that file's folder. The common cases are read here without importing the `kubernetes` package: a
``token`` or ``tokenFile``, a client certificate and key (data or files), a CA (data or file),
``insecure-skip-tls-verify``, ``tls-server-name``, ``proxy-url``, basic auth. A user with an ``exec`` plugin or
an ``auth-provider`` is handed to the kubernetes package's loader (its import is paid only then), which runs
the plugin and refreshes its credentials. Impersonation (``as``) is refused: the API server would see
another identity than the kubeconfig names, and neither client here sends it.
"""
from __future__ import annotations

import atexit
import base64
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from chaoslib.exceptions import ActivityFailed

__all__ = ["ClusterConfiguration", "KubeconfigError", "from_kubeconfig", "context_names", "in_pod",
           "from_environment"]

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_FILE_REREAD_SECONDS = 60.0  # client-go re-reads a tokenFile (rotated service account tokens) each minute


class KubeconfigError(Exception):
    """The kubeconfig cannot be used as written (the message says what, as kubectl would)."""


class ClusterConfiguration:
    """One resolved API server and identity. Files only (data is written to private temp files), so both
    urllib3 and, for exec, the kubernetes package can take them. No repr: it would show the token and
    password. (A plain class: a dataclass costs about half a millisecond at every `chaos run` start.)"""

    def __init__(
        self, host: str, verify_ssl: bool = True, ca_file: str | None = None, cert_file: str | None = None,
        key_file: str | None = None, tls_server_name: str | None = None, proxy: str | None = None,
        no_proxy: str | None = None, token: str | None = None, token_file: str | None = None,
        token_prefix: str = "Bearer", username: str | None = None, password: str | None = None,
        context: str | None = None, user: str | None = None,
        authorization_hook: Callable[[], str | None] | None = None,
    ):
        self.host = host
        self.verify_ssl = verify_ssl
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.tls_server_name = tls_server_name
        self.proxy = proxy
        self.no_proxy = no_proxy
        self.token = token
        self.token_file = token_file
        self.token_prefix = token_prefix
        self.username = username
        self.password = password
        self.context = context  # the kubeconfig context and user names, for the evidence (names only)
        self.user = user
        # Set by the kubernetes package's loader (exec plugins, auth-providers): the Authorization header,
        # refreshed by the package when the credential expires.
        self.authorization_hook = authorization_hook
        self._read_token: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def authorization(self) -> str | None:
        """The Authorization header value, or None (a client certificate, or no credentials)."""
        if self.authorization_hook is not None:
            return self.authorization_hook()
        if self.token_file:
            return f"{self.token_prefix} {self._file_token()}"
        if self.token:
            return f"{self.token_prefix} {self.token}"
        if self.username is not None:
            pair = f"{self.username}:{self.password or ''}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        return None

    def credentials(self) -> list[str]:
        """The secrets this configuration sends, so that the evidence can redact them wherever they appear."""
        values = [self.password] if self.password else []
        header = self.authorization()
        if header and not header.startswith("Basic "):
            values.append(header.split(" ", 1)[-1])
        return values

    def _file_token(self) -> str:
        with self._lock:
            now = time.monotonic()
            if self._read_token is None or now - self._read_token[0] >= TOKEN_FILE_REREAD_SECONDS:
                try:
                    token = Path(self.token_file).read_text().strip()
                except OSError as exc:
                    raise ActivityFailed(f"cannot read the token file {self.token_file}: {exc.strerror}") from None
                self._read_token = (now, token)
            return self._read_token[1]


def from_kubeconfig(paths: list[str], context: str | None) -> ClusterConfiguration:
    """The configuration of `context` (or the current one) in the merged kubeconfig `paths`."""
    merged = _merge([Path(p).expanduser() for p in paths])
    name = context or merged.current_context
    if not name:
        raise KubeconfigError("current-context is not set")
    if name not in merged.contexts:
        raise KubeconfigError(f'context "{name}" does not exist')
    chosen, _ = merged.contexts[name]
    cluster_name, user_name = chosen.get("cluster"), chosen.get("user")
    if cluster_name not in merged.clusters:
        raise KubeconfigError(f'cluster "{cluster_name}" of context "{name}" does not exist')
    cluster, cluster_dir = merged.clusters[cluster_name]
    user, user_dir = merged.users.get(user_name, ({}, cluster_dir))
    if user.get("exec") or user.get("auth-provider"):
        configuration = _through_kubernetes_package(paths, name)
    else:
        configuration = ClusterConfiguration(host=_server(cluster))
        _cluster_tls(configuration, cluster, cluster_dir)
        _user_credentials(configuration, user, user_dir)
    configuration.context, configuration.user = name, user_name
    return configuration


def context_names(paths: list[str]) -> list[str]:
    """The context names of the merged kubeconfig `paths`, in the order the files define them."""
    return list(_merge([Path(p).expanduser() for p in paths]).contexts)


def in_pod() -> ClusterConfiguration:
    """The pod's service account, as client-go's InClusterConfig reads it (its token re-read as it rotates)."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeconfigError("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                              "KUBERNETES_SERVICE_PORT must be defined")
    token_file, ca_file = SERVICE_ACCOUNT / "token", SERVICE_ACCOUNT / "ca.crt"
    if not token_file.is_file():
        raise KubeconfigError(f"no service account token at {token_file}")
    host = f"[{host}]" if ":" in host else host
    return ClusterConfiguration(host=f"https://{host}:{port}", token_file=str(token_file),
                                ca_file=str(ca_file) if ca_file.is_file() else None)


def from_environment(lookup: Callable[[str], str | None], verify_ssl: bool) -> ClusterConfiguration:
    """chaostoolkit-kubernetes' keys: KUBERNETES_HOST with an API key, a client certificate or basic auth."""
    configuration = ClusterConfiguration(host=lookup("KUBERNETES_HOST").rstrip("/"), verify_ssl=verify_ssl,
                                         ca_file=lookup("KUBERNETES_CA_CERT_FILE"))
    if lookup("KUBERNETES_API_KEY"):
        configuration.token = lookup("KUBERNETES_API_KEY")
        configuration.token_prefix = lookup("KUBERNETES_API_KEY_PREFIX") or "Bearer"
    elif lookup("KUBERNETES_CERT_FILE"):
        configuration.cert_file, configuration.key_file = lookup("KUBERNETES_CERT_FILE"), lookup("KUBERNETES_KEY_FILE")
    elif lookup("KUBERNETES_USERNAME"):
        configuration.username = lookup("KUBERNETES_USERNAME")
        configuration.password = lookup("KUBERNETES_PASSWORD") or ""
    configuration.proxy = os.environ.get("HTTP_PROXY") or None
    configuration.no_proxy = os.environ.get("NO_PROXY") or None
    return configuration


class _Merged:
    """Named entries with the folder of the file that defined them (for its relative paths)."""

    def __init__(self) -> None:
        self.clusters: dict[str, tuple[dict[str, Any], Path]] = {}
        self.users: dict[str, tuple[dict[str, Any], Path]] = {}
        self.contexts: dict[str, tuple[dict[str, Any], Path]] = {}
        self.current_context: str | None = None


def _merge(paths: list[Path]) -> _Merged:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    merged = _Merged()
    for path in paths:
        try:
            document = yaml.load(path.read_text(), Loader=loader) or {}
        except yaml.YAMLError as exc:
            raise KubeconfigError(f"error loading {path}: {exc}") from None
        if not isinstance(document, dict):
            raise KubeconfigError(f"error loading {path}: not a kubeconfig (a mapping)")
        folder = path.resolve().parent
        for section, key, entries in (("clusters", "cluster", merged.clusters), ("users", "user", merged.users),
                                      ("contexts", "context", merged.contexts)):
            for entry in document.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") and entry["name"] not in entries:
                    entries[entry["name"]] = (entry.get(key) or {}, folder)
        merged.current_context = merged.current_context or document.get("current-context") or None
    return merged


def _server(cluster: dict[str, Any]) -> str:
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise KubeconfigError("no server found for cluster")
    return server


def _cluster_tls(configuration: ClusterConfiguration, cluster: dict[str, Any], folder: Path) -> None:
    configuration.verify_ssl = not cluster.get("insecure-skip-tls-verify")
    configuration.ca_file = _file_or_data(cluster, "certificate-authority", folder)
    configuration.tls_server_name = cluster.get("tls-server-name") or None
    proxy = cluster.get("proxy-url") or None
    if proxy and not str(proxy).lower().startswith(("http://", "https://")):
        raise KubeconfigError(f"proxy-url {proxy!r}: only http and https proxies are supported here")
    configuration.proxy = proxy


def _user_credentials(configuration: ClusterConfiguration, user: dict[str, Any], folder: Path) -> None:
    if user.get("as") or user.get("as-groups") or user.get("as-uid") or user.get("as-user-extra"):
        raise KubeconfigError("impersonation (as, as-groups, as-uid, as-user-extra) is not supported: "
                              "the requests would be sent as the user itself")
    configuration.cert_file = _file_or_data(user, "client-certificate", folder)
    configuration.key_file = _file_or_data(user, "client-key", folder)
    if configuration.cert_file or configuration.key_file:
        _check_key_pair(configuration.cert_file, configuration.key_file)
    if user.get("token"):
        configuration.token = str(user["token"])
    elif user.get("tokenFile"):
        configuration.token_file = str(folder / Path(user["tokenFile"]).expanduser())
    elif user.get("username") is not None:
        configuration.username, configuration.password = str(user["username"]), str(user.get("password") or "")


def _file_or_data(entry: dict[str, Any], key: str, folder: Path) -> str | None:
    """`key`-data (base64, written to a private file) or `key` (a path, relative to the kubeconfig's folder)."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            return _private_file(base64.b64decode(data, validate=False), key)
        except ValueError as exc:
            raise KubeconfigError(f"{key}-data is not base64: {exc}") from None
    if entry.get(key):
        path = folder / Path(str(entry[key])).expanduser()
        if not path.is_file():
            raise KubeconfigError(f"unable to read {key} {path}: no such file")
        return str(path)
    return None


def _check_key_pair(cert_file: str | None, key_file: str | None) -> None:
    """Refuse, before any request, a client certificate without its key or with another one."""
    if not cert_file or not key_file:
        raise KubeconfigError("client-certificate and client-key must be set together")
    import ssl

    try:
        ssl.create_default_context().load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise KubeconfigError(f"the client certificate and key are not a usable pair: {exc}") from None


_PRIVATE_DIR: list[str] = []


def _private_file(content: bytes, name: str) -> str:
    """A 0600 file in this process's own 0700 folder (removed at exit) holding `content`."""
    if not _PRIVATE_DIR:
        _PRIVATE_DIR.append(tempfile.mkdtemp(prefix="kirvis-kubeconfig-"))
        atexit.register(shutil.rmtree, _PRIVATE_DIR[0], True)
    descriptor, path = tempfile.mkstemp(prefix=f"{name}-", dir=_PRIVATE_DIR[0])
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    return path


def _through_kubernetes_package(paths: list[str], context: str) -> ClusterConfiguration:
    """An exec plugin or auth-provider user: the kubernetes package runs it and refreshes what it returns."""
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    loaded = k8s_client.Configuration()
    failures = _LoggedErrors()  # the package logs a failed plugin (and goes on without credentials)
    logging.getLogger().addHandler(failures)
    try:
        k8s_config.load_kube_config(config_file=os.pathsep.join(paths), context=context,
                                    client_configuration=loaded, persist_config=False)
    except ConfigException as exc:
        raise KubeconfigError(str(exc)) from None
    finally:
        logging.getLogger().removeHandler(failures)
    if not loaded.api_key.get("BearerToken") and not loaded.cert_file:
        why = "; ".join(failures.messages) or "no token and no client certificate"
        raise KubeconfigError(f"the user's exec plugin or auth-provider gave no credential: {why}")
    return ClusterConfiguration(
        host=loaded.host, verify_ssl=bool(loaded.verify_ssl), ca_file=loaded.ssl_ca_cert,
        cert_file=loaded.cert_file, key_file=loaded.key_file, tls_server_name=loaded.tls_server_name,
        proxy=loaded.proxy, authorization_hook=lambda: loaded.get_api_key_with_prefix("BearerToken") or None,
    )


class _LoggedErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
