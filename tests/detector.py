"""A stand-in for a runtime detector (Falco + Falcosidekick, or a policy engine in audit mode).

It watches the sandbox for pods, Services and ClusterRoleBindings and, for a privileged pod, a NodePort
Service or a cluster-admin binding, raises an alert the way the real tools deliver theirs: to Alertmanager's API, to a webhook, or as a Kubernetes
Event. Tests use it to show that detection experiments hold with a detector and deviate without one.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.request
from pathlib import Path
from typing import Callable

from kubernetes import client, config, watch


class Detector:
    def __init__(self, kubeconfig: Path, *, alertmanager: str | None = None, webhook: str | None = None,
                 webhook_token: Callable[[], str] | None = None,
                 events: bool = False, falco_log: Callable[[str], None] | None = None,
                 execs: Callable[[], list] | None = None, delay: float = 0.2):
        """`webhook_token` gives the receiver's bearer token when an alert is sent (as Falcosidekick's
        ``webhook.customheaders`` sends ``Authorization: Bearer <token>``); `falco_log` writes a line to a
        Falco pod's log; `execs` lists the sandbox's execs (to see shells)."""
        self.api = config.new_client_from_config(str(kubeconfig))
        self.alertmanager, self.webhook, self.events, self.delay = alertmanager, webhook, events, delay
        self.webhook_token = webhook_token
        self.falco_log, self.execs = falco_log, execs
        self.raised: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, args=(kind,), daemon=True)
                         for kind in ("pod", "service", "clusterrolebinding")]
        if execs:
            self._threads.append(threading.Thread(target=self._watch_execs, daemon=True))

    def __enter__(self) -> Detector:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _watch(self, kind: str) -> None:
        core, rbac = client.CoreV1Api(self.api), client.RbacAuthorizationV1Api(self.api)
        lister = {"pod": core.list_pod_for_all_namespaces, "service": core.list_service_for_all_namespaces,
                  "clusterrolebinding": rbac.list_cluster_role_binding}[kind]
        version = lister().metadata.resource_version
        while not self._stop.is_set():
            for event in watch.Watch().stream(lister, resource_version=version, timeout_seconds=1):
                version = event["object"].metadata.resource_version
                if event["type"] == "ADDED":
                    rule = self._rule(kind, event["object"])
                    if rule:
                        threading.Timer(self.delay, self._raise, args=(rule, kind, event["object"])).start()

    def _watch_execs(self) -> None:
        seen = len(self.execs())
        while not self._stop.wait(0.02):
            records = self.execs()
            for record in records[seen:]:
                if record.tty and record.command and record.command[0] in ("sh", "bash"):
                    threading.Timer(self.delay, self._raise_for, args=(
                        "Terminal shell in container", "pod", record.pod, record.namespace)).start()
            seen = len(records)

    @staticmethod
    def _rule(kind: str, obj) -> str | None:
        if kind == "pod" and any((c.security_context and c.security_context.privileged) for c in obj.spec.containers):
            return "Launch Privileged Container"
        if kind == "service" and obj.spec.type == "NodePort":
            return "Create NodePort Service"
        if kind == "clusterrolebinding" and obj.role_ref.name == "cluster-admin":
            return "Attach to cluster-admin Role"
        return None

    def _raise(self, rule: str, kind: str, obj) -> None:
        self._raise_for(rule, kind, obj.metadata.name, obj.metadata.namespace or obj.subjects[0].namespace)

    def _raise_for(self, rule: str, kind: str, name: str, namespace: str) -> None:
        now = dt.datetime.now(dt.UTC)
        self.raised.append(f"{rule}: {namespace}/{name}")
        if self.alertmanager:
            _post(f"{self.alertmanager}/api/v2/alerts", [{
                "labels": {"alertname": rule, "priority": "Critical", "k8s_ns_name": namespace, f"k8s_{kind}_name": name},
                "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(minutes=5)).isoformat()}])
        if self.webhook:
            headers = {"Authorization": f"Bearer {self.webhook_token()}"} if self.webhook_token else {}
            _post(self.webhook, {"rule": rule, "priority": "Critical", "time": now.isoformat(), "source": "syscall",
                                 "output": f"{rule} ({kind}={name} ns={namespace})",
                                 "output_fields": {f"k8s.{kind}.name": name, "k8s.ns.name": namespace}},
                  headers)
        if self.falco_log:
            self.falco_log(json.dumps({
                "rule": rule, "priority": "Critical", "time": now.isoformat().replace("+00:00", "Z"),
                "source": "syscall", "output": f"{rule} (k8s.{kind}.name={name} k8s.ns.name={namespace})",
                "output_fields": {f"k8s.{kind}.name": name, "k8s.ns.name": namespace}}))
        if self.events:
            client.CoreV1Api(self.api).create_namespaced_event(namespace, {
                "metadata": {"generateName": f"{name}."},
                "involvedObject": {"kind": kind.capitalize(), "name": name, "namespace": namespace},
                "reason": "PolicyViolation", "message": f"{rule}: audit mode, not blocked", "type": "Warning",
                "source": {"component": "test-policy-engine"}})


def _post(url: str, payload, headers: dict[str, str] | None = None) -> None:
    request = urllib.request.Request(url, json.dumps(payload).encode(),
                                     {"Content-Type": "application/json", **(headers or {})})
    urllib.request.urlopen(request, timeout=5).read()
