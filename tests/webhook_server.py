"""A small admission webhook for tests: a stand-in for a policy engine (Kyverno, Gatekeeper) on 127.0.0.1.

    with WebhookServer() as hook:                      # https, with a CA of its own
        sandbox.apply(hook.validating_configuration("deny-privileged.kirvis.test"))
        ...                                            # a privileged pod is now denied
        hook.delay = 5                                 # answer after 5 s (slower than timeoutSeconds)
        hook.answer = "garbage"                        # or "500", "wrong-uid", "wrong-kind", "review"
        hook.stop()                                    # nothing listens any more: unreachable
        hook.received                                  # every AdmissionReview it was sent, in order

The rule is the one policy engines ship first: a pod (or a workload's pod template) with a privileged
container is denied, `allowed: false` with `status.code` 403 and the message ``privileged containers are not
allowed: CONTAINER``, as Kyverno's disallow-privileged-containers policy and Gatekeeper's
k8spspprivilegedcontainer constraint deny them. Anything else is allowed. With `mutate_label` set, every
allowed object answered on the /mutate path gets that label (a JSONPatch, `patchType: JSONPatch`). A
review is answered with the request's uid and `apiVersion` as admission.k8s.io/v1 requires.

`WebhookServer(tls=False)` serves plain http (the API server calls webhooks over https only: for the
unreachable or refused-TLS cases). The certificate is for 127.0.0.1, localhost and `dns_names` (the
`NAME.NAMESPACE.svc` of the Services it stands for); `ca_bundle` is its CA, base64 as `clientConfig.caBundle`
takes it. The server runs in a daemon thread and answers each request in a thread of its own, so a slow answer
does not hold the others.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Answer = Literal["review", "garbage", "500", "wrong-uid", "wrong-kind"]
DENIAL_CODE = 403


def privileged_containers(obj: dict[str, Any] | None) -> list[str]:
    """The names of the privileged containers of a pod or of a workload's pod template (empty: none)."""
    spec = (obj or {}).get("spec") or {}
    for key in ("template", "jobTemplate"):
        while isinstance(spec.get(key), dict):
            spec = (spec[key].get("spec") or {})
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return [str(c.get("name", "")) for c in containers
            if isinstance(c, dict) and ((c.get("securityContext") or {}).get("privileged") is True)]


class WebhookServer:
    """An admission webhook on 127.0.0.1 enforcing "no privileged containers"; see the module docstring."""

    def __init__(self, *, tls: bool = True, dns_names: Sequence[str] = (), mutate_label: tuple[str, str] | None = None
                 ) -> None:
        self.tls = tls
        self.dns_names = tuple(dns_names)
        self.mutate_label = mutate_label
        self.delay = 0.0  # seconds to wait before answering
        self.answer: Answer = "review"
        self.denial_code: int | None = DENIAL_CODE  # status.code of a denial (None: left out)
        self.warnings: list[str] = []  # sent with every answer
        self.received: list[dict[str, Any]] = []  # the AdmissionReviews sent to it, in order
        self.paths: list[str] = []  # the request paths (with their query), in order
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ca_pem = b""

    @property
    def address(self) -> str:
        """HOST:PORT, as `Sandbox.map_webhook_service` takes it."""
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/validate") -> str:
        return f"{'https' if self.tls else 'http'}://{self.address}{path}"

    @property
    def ca_bundle(self) -> str:
        """The CA that signed the server certificate, base64 PEM as clientConfig.caBundle takes it."""
        return base64.b64encode(self._ca_pem).decode()

    def validating_configuration(self, name: str, *, failure_policy: str = "Fail", timeout_seconds: int = 10,
                                 webhook: dict[str, Any] | None = None) -> dict[str, Any]:
        """A ValidatingWebhookConfiguration NAME calling this server (url, caBundle) for pods and workloads;
        `webhook` fields replace the defaults given here (rules, selectors, sideEffects, ...)."""
        hook = {"name": name, "clientConfig": {"url": self.url("/validate"), "caBundle": self.ca_bundle},
                "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["", "apps"], "apiVersions": ["v1"],
                           "resources": ["pods", "deployments"]}],
                "failurePolicy": failure_policy, "sideEffects": "None", "admissionReviewVersions": ["v1"],
                "timeoutSeconds": timeout_seconds} | (webhook or {})
        return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": name}, "webhooks": [hook]}

    def start(self) -> WebhookServer:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        if self.tls:
            server.socket = self._tls_context().wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="kirvis-test-webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (the port refuses connections from now on); answers in progress are dropped."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def respond(self, path: str, review: dict[str, Any]) -> tuple[int, bytes]:
        """The HTTP status and body answering `review` sent to `path`, as the switches say."""
        with self._lock:
            self.received.append(review)
            self.paths.append(path)
        if self.delay:
            time.sleep(self.delay)
        if self.answer == "garbage":
            return 200, b"<html>not an AdmissionReview</html>"
        if self.answer == "500":
            return 500, b"policy engine unavailable"
        request = review.get("request") or {}
        response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": True}
        if self.answer == "wrong-uid":
            response["uid"] = "00000000-0000-0000-0000-000000000000"
        privileged = privileged_containers(request.get("object"))
        if self.warnings:
            response["warnings"] = list(self.warnings)
        if privileged:
            status: dict[str, Any] = {"message": f"privileged containers are not allowed: {', '.join(privileged)}"}
            if self.denial_code is not None:
                status["code"] = self.denial_code
            response |= {"allowed": False, "status": status}
        elif self.mutate_label is not None and path.startswith("/mutate") and request.get("object") is not None:
            key, value = self.mutate_label
            labels = ((request["object"].get("metadata") or {}).get("labels"))
            escaped = key.replace("~", "~0").replace("/", "~1")
            patch = ([{"op": "add", "path": f"/metadata/labels/{escaped}", "value": value}] if labels is not None
                     else [{"op": "add", "path": "/metadata/labels", "value": {key: value}}])
            response |= {"patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(patch).encode()).decode()}
        kind = "AdmissionReview" if self.answer != "wrong-kind" else "Status"
        return 200, json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": kind, "response": response}).encode()

    def _tls_context(self) -> ssl.SSLContext:
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kirvis-test-webhook-ca")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
                 *(x509.DNSName(name) for name in self.dns_names)]
        certificate = (x509.CertificateBuilder()
                       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kirvis-test-webhook")]))
                       .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(minutes=5))
                       .not_valid_after(now + datetime.timedelta(days=1))
                       .add_extension(x509.SubjectAlternativeName(names), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                      critical=False)
                       .sign(ca_key, hashes.SHA256()))
        self._ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="kirvis-test-webhook-") as directory:
            chain, key_file = Path(directory) / "server.crt", Path(directory) / "server.key"
            chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
            key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            context.load_cert_chain(chain, key_file)
        return context


def _handler(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                review = json.loads(body)
            except ValueError:
                review = {}
            status, answer = server.respond(self.path, review if isinstance(review, dict) else {})
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the API server gave up waiting (timeoutSeconds)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
            pass

    return Handler
