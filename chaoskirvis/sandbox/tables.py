"""Media type negotiation, and meta.k8s.io/v1 Table answers (what `kubectl get` prints) for get and list.

kubectl asks `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...,application/json`; the API server
answers with the first media type of the client's list that it serves. A Table has the columns of
kube-apiserver's printers (pkg/printers/internalversion/printers.go, Kubernetes 1.32), one for each
served resource: the server always fills every cell, wide ones included (`priority: 1`), and kubectl shows
those with `-o wide`. A resource without a printer would get the default Name / Created At table. `includeObject` (None, Metadata: the default,
Object) says what each row carries besides its cells.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any

from chaoskirvis.sandbox.resources import ResourceType

SERVED_MEDIA_TYPES = ("application/json",)
_JSON_RANGES = ("application/json", "application/*", "*/*")
TABLE, JSON = "table", "json"

_NAME_DOC = ("Name must be unique within a namespace. Is required when creating resources, although some resources "
             "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
             "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
             "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_CREATED_DOC = ("CreationTimestamp is a timestamp representing the server time when this object was created. It is "
                "not guaranteed to be set in happens-before order across separate operations. Clients may not set "
                "this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. "
                "Null for lists. More info: "
                "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")


def negotiate(accept: str) -> str | None:
    """TABLE or JSON: the first of the client's media types that the sandbox serves; None when none is."""
    if not accept.strip():
        return JSON
    for media_range in accept.split(","):
        media_type, *parameters = [part.strip() for part in media_range.split(";")]
        if media_type.lower() not in _JSON_RANGES:
            continue
        options = dict(p.partition("=")[::2] for p in parameters)
        options.pop("q", None)
        if "as" not in options:
            return JSON
        if options == {"as": "Table", "v": "v1", "g": "meta.k8s.io"}:
            return TABLE
    return None


def accepts_json(accept: str) -> bool:
    return negotiate(accept) is not None


# Cells, as the printers compute them.

def human_duration(delta: datetime.timedelta) -> str:
    """apimachinery's duration.HumanDuration: the AGE kubectl prints."""
    seconds = int(delta.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m" if seconds % 60 == 0 else f"{minutes}m{seconds % 60}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    days = hours // 24
    if hours < 24 * 365 * 8:
        return f"{days // 365}y" if days % 365 == 0 else f"{days // 365}y{days % 365}d"
    return f"{days // 365}y"


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class _Row:
    """What the printers read of one object, with `now` for ages."""

    def __init__(self, obj: dict[str, Any], now: datetime.datetime) -> None:
        self.obj, self.now = obj, now
        self.metadata = obj.get("metadata") or {}
        self.spec = obj.get("spec") or {}
        self.status = obj.get("status") or {}

    @property
    def name(self) -> str:
        return self.metadata.get("name", "")

    def since(self, value: Any) -> str:
        """translateTimestampSince: <unknown> for no time."""
        moment = _parse_time(value)
        return "<unknown>" if moment is None else human_duration(self.now - moment)

    @property
    def age(self) -> str:
        return self.since(self.metadata.get("creationTimestamp"))

    def template_spec(self, *path: str) -> dict[str, Any]:
        node: Any = self.obj
        for key in path:
            node = (node or {}).get(key)
        return node or {}


def _none(text: str) -> str:
    return text or "<none>"


def format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: sorted key=value pairs, <none> for none."""
    return _none(",".join(f"{key}={value}" for key, value in sorted((labels or {}).items())))


def format_label_selector(selector: dict[str, Any] | None) -> str:
    """metav1.FormatLabelSelector, as the selector's String(): requirements sorted by key."""
    if not selector:
        return "<none>"
    requirements: list[tuple[str, str]] = [(key, f"{key}={value}")
                                           for key, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(sorted(expression.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                "DoesNotExist": f"!{key}"}.get(operator)
        if text is None:
            return "<error>"
        requirements.append((key, text))
    return _none(",".join(text for _, text in sorted(requirements)))


def _containers(pod_spec: dict[str, Any]) -> tuple[str, str]:
    containers = pod_spec.get("containers") or []
    return (",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers))


def _pod_status(row: _Row) -> str:
    """printPod's STATUS: the phase, or the reason a container gives (the last one that gives one)."""
    status = row.status
    reason = status.get("reason") or status.get("phase") or ""
    has_running = False
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated")
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated is not None:
            reason = terminated.get("reason") or (f"Signal:{terminated['signal']}" if terminated.get("signal")
                                                  else f"ExitCode:{terminated.get('exitCode', 0)}")
        elif "running" in state and container.get("ready"):
            has_running = True
    if reason == "Completed" and has_running:
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        reason = "Running" if ready else "NotReady"
    if row.metadata.get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason


def _pod_readiness(row: _Row) -> tuple[int, int, int]:
    """printPod's (ready, total, restarts): running ready containers and started ready sidecars (init
    containers with restartPolicy Always, which 1.32 counts as containers), restarts of both."""
    sidecars = {c.get("name") for c in row.spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}
    total = len(row.spec.get("containers") or []) + len(sidecars)
    ready = restarts = 0
    for container in row.status.get("initContainerStatuses") or []:
        restarts += int(container.get("restartCount") or 0)
        if container.get("name") in sidecars and container.get("started") and container.get("ready"):
            ready += 1
    for container in row.status.get("containerStatuses") or []:
        restarts += int(container.get("restartCount") or 0)
        if container.get("ready") and "running" in (container.get("state") or {}):
            ready += 1
    return ready, total, restarts


def _pod(row: _Row) -> list[Any]:
    ready, total, restarts = _pod_readiness(row)
    ips = row.status.get("podIPs") or []
    gates = row.spec.get("readinessGates") or []
    conditions = {c.get("type"): c.get("status") for c in row.status.get("conditions") or []}
    gates_cell = (f"{sum(1 for g in gates if conditions.get(g.get('conditionType')) == 'True')}/{len(gates)}"
                  if gates else "<none>")
    return [row.name, f"{ready}/{total}", _pod_status(row), str(restarts), row.age,
            _none(ips[0].get("ip", "") if ips else row.status.get("podIP", "")), _none(row.spec.get("nodeName", "")),
            _none(row.status.get("nominatedNodeName", "")), gates_cell]


def _deployment(row: _Row) -> list[Any]:
    names, images = _containers(row.template_spec("spec", "template", "spec"))
    desired = row.spec.get("replicas", 1)
    return [row.name, f"{row.status.get('readyReplicas', 0)}/{desired}", row.status.get("updatedReplicas", 0),
            row.status.get("availableReplicas", 0), row.age, names, images,
            format_label_selector(row.spec.get("selector"))]


def _replica_set(row: _Row) -> list[Any]:
    names, images = _containers(row.template_spec("spec", "template", "spec"))
    return [row.name, row.spec.get("replicas", 1), row.status.get("replicas", 0), row.status.get("readyReplicas", 0),
            row.age, names, images, format_label_selector(row.spec.get("selector"))]


def _daemon_set(row: _Row) -> list[Any]:
    pod_spec = row.template_spec("spec", "template", "spec")
    names, images = _containers(pod_spec)
    status = row.status
    return [row.name, status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            format_labels(pod_spec.get("nodeSelector")), row.age, names, images,
            format_label_selector(row.spec.get("selector"))]


def _stateful_set(row: _Row) -> list[Any]:
    names, images = _containers(row.template_spec("spec", "template", "spec"))
    return [row.name, f"{row.status.get('readyReplicas', 0)}/{row.spec.get('replicas', 1)}", row.age, names, images]


def _job_status(row: _Row) -> str:
    conditions = {c.get("type") for c in row.status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in conditions:
        return "Complete"
    if "Failed" in conditions:
        return "Failed"
    if row.metadata.get("deletionTimestamp"):
        return "Terminating"
    for condition in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if condition in conditions:
            return condition
    return "Running"


def _job(row: _Row) -> list[Any]:
    names, images = _containers(row.template_spec("spec", "template", "spec"))
    succeeded = row.status.get("succeeded", 0)
    if row.spec.get("completions") is not None:
        completions = f"{succeeded}/{row.spec['completions']}"
    else:
        parallelism = row.spec.get("parallelism") or 0
        completions = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
    start, end = _parse_time(row.status.get("startTime")), _parse_time(row.status.get("completionTime"))
    duration = "" if start is None else human_duration((end or row.now) - start)
    return [row.name, _job_status(row), completions, duration, row.age, names, images,
            format_label_selector(row.spec.get("selector"))]


def _cron_job(row: _Row) -> list[Any]:
    job_spec = row.template_spec("spec", "jobTemplate", "spec")
    names, images = _containers((job_spec.get("template") or {}).get("spec") or {})
    last = row.status.get("lastScheduleTime")
    return [row.name, row.spec.get("schedule", ""), _none(row.spec.get("timeZone") or ""),
            bool(row.spec.get("suspend")), len(row.status.get("active") or []),
            row.since(last) if last else "<none>", row.age, names, images,
            format_label_selector(job_spec.get("selector"))]


def _service_external_ip(spec: dict[str, Any], status: dict[str, Any]) -> str:
    kind = spec.get("type") or "ClusterIP"
    external = list(spec.get("externalIPs") or [])
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        balancers = (status.get("loadBalancer") or {}).get("ingress") or []
        ingress = [i.get("ip") or i.get("hostname") or "" for i in balancers]
        return ",".join([*ingress, *external]) or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _service(row: _Row) -> list[Any]:
    ports = []
    for port in row.spec.get("ports") or []:
        protocol = port.get("protocol", "TCP")
        node_port = port.get("nodePort")
        ports.append(f"{port.get('port')}:{node_port}/{protocol}" if node_port else f"{port.get('port')}/{protocol}")
    return [row.name, row.spec.get("type", "ClusterIP"), _none(row.spec.get("clusterIP", "")),
            _service_external_ip(row.spec, row.status), _none(",".join(ports)), row.age,
            format_labels(row.spec.get("selector"))]


def _node(row: _Row) -> list[Any]:
    conditions = {c.get("type"): c.get("status") for c in row.status.get("conditions") or []}
    ready = conditions.get("Ready")
    status = ["Ready" if ready == "True" else "NotReady" if ready == "False" else "Unknown"]
    if row.spec.get("unschedulable"):
        status.append("SchedulingDisabled")
    labels = row.metadata.get("labels") or {}
    roles = sorted({key.removeprefix("node-role.kubernetes.io/") for key in labels
                    if key.startswith("node-role.kubernetes.io/")}
                   | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set()))
    addresses = row.status.get("addresses") or []
    info = row.status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        return next((a.get("address", "") for a in addresses if a.get("type") == kind), "") or "<none>"

    return [row.name, ",".join(status), ",".join(roles) or "<none>", row.age, info.get("kubeletVersion", ""),
            address("InternalIP"), address("ExternalIP"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


def _event(row: _Row) -> list[Any]:
    obj = row.obj
    first = row.since(obj.get("firstTimestamp")) if obj.get("firstTimestamp") else row.since(obj.get("eventTime"))
    last = row.since(obj.get("lastTimestamp")) if obj.get("lastTimestamp") else first
    count = obj.get("count", 0)
    series = obj.get("series")
    if series:
        last, count = row.since(series.get("lastObservedTime")), series.get("count", 0)
    involved = obj.get("involvedObject") or {}
    source = obj.get("source") or {}  # formatEventSource: the source, or the reporting controller
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return [last, obj.get("type", ""), obj.get("reason", ""),
            f"{involved.get('kind', '').lower()}/{involved.get('name', '')}", involved.get("fieldPath", ""),
            f"{component}, {instance}" if instance else component, (obj.get("message") or "").strip(), first, count,
            row.name]


def _binding(row: _Row) -> list[Any]:
    role = row.obj.get("roleRef") or {}
    subjects = row.obj.get("subjects") or []

    def named(kind: str) -> str:
        def name(subject: dict[str, Any]) -> str:
            if kind == "ServiceAccount":
                return f"{subject.get('namespace', '')}/{subject.get('name', '')}"
            return subject.get("name", "")

        return ", ".join(name(s) for s in subjects if s.get("kind") == kind)

    return [row.name, f"{role.get('kind', '')}/{role.get('name', '')}", row.age, named("User"), named("Group"),
            named("ServiceAccount")]


def _endpoints(row: _Row) -> str:
    """formatEndpoints: ip:port pairs, at most three then "+ N more...", <none> for none."""
    pairs = [f"{address.get('ip', '')}:{port.get('port')}" if port.get("port") is not None else address.get("ip", "")
             for subset in row.obj.get("subsets") or []
             for address in subset.get("addresses") or []
             for port in (subset.get("ports") or [{}])]
    if not pairs:
        return "<none>"
    return ",".join(pairs[:3]) + (f" + {len(pairs) - 3} more..." if len(pairs) > 3 else "")


_ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _access_modes(modes: list[str] | None) -> str:
    """GetAccessModesAsString: the short forms, in this order."""
    return ",".join(short for mode, short in _ACCESS_MODES.items() if mode in (modes or []))


def _persistent_volume(row: _Row) -> list[Any]:
    claim = row.spec.get("claimRef") or {}
    return [row.name, (row.spec.get("capacity") or {}).get("storage", ""), _access_modes(row.spec.get("accessModes")),
            row.spec.get("persistentVolumeReclaimPolicy", ""), row.status.get("phase", ""),
            f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "",
            row.spec.get("storageClassName", ""), row.spec.get("volumeAttributesClassName") or "<unset>",
            row.status.get("reason", ""), row.age, row.spec.get("volumeMode") or "<unset>"]


def _persistent_volume_claim(row: _Row) -> list[Any]:
    bound = bool(row.spec.get("volumeName"))
    return [row.name, row.status.get("phase", ""), row.spec.get("volumeName", ""),
            (row.status.get("capacity") or {}).get("storage", "") if bound else "",
            _access_modes(row.status.get("accessModes")) if bound else "", row.spec.get("storageClassName") or "",
            row.spec.get("volumeAttributesClassName") or "<unset>", row.age, row.spec.get("volumeMode") or "<unset>"]


def _ingress(row: _Row) -> list[Any]:
    hosts = [rule.get("host") or "*" for rule in row.spec.get("rules") or []]
    hosts_cell = ",".join(hosts[:3]) + (f" + {len(hosts) - 3} more..." if len(hosts) > 3 else "") if hosts else "*"
    balancers = (row.status.get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(b.get("ip") or b.get("hostname") or "" for b in balancers)
    return [row.name, row.spec.get("ingressClassName") or "<none>", hosts_cell, address,
            "80, 443" if row.spec.get("tls") else "80", row.age]


def _ingress_class(row: _Row) -> list[Any]:
    parameters = row.spec.get("parameters")
    text = "<none>"
    if parameters:
        kind = parameters.get("kind", "") + (f".{parameters['apiGroup']}" if parameters.get("apiGroup") else "")
        text = f"{kind}/{parameters.get('name', '')}"
    return [row.name, row.spec.get("controller", ""), text, row.age]


def _pod_disruption_budget(row: _Row) -> list[Any]:
    def bound(key: str) -> str:
        value = row.spec.get(key)
        return "N/A" if value is None else str(value)

    return [row.name, bound("minAvailable"), bound("maxUnavailable"), row.status.get("disruptionsAllowed", 0),
            row.age]


def _storage_class(row: _Row) -> list[Any]:
    annotations = row.metadata.get("annotations") or {}
    default = any(annotations.get(key) == "true" for key in ("storageclass.kubernetes.io/is-default-class",
                                                              "storageclass.beta.kubernetes.io/is-default-class"))
    obj = row.obj
    return [f"{row.name} (default)" if default else row.name, obj.get("provisioner", ""),
            obj.get("reclaimPolicy") or "Delete", obj.get("volumeBindingMode") or "Immediate",
            "true" if obj.get("allowVolumeExpansion") else "false", row.age]


def _resource_quota(row: _Row) -> list[Any]:
    hard, used = row.status.get("hard") or {}, row.status.get("used") or {}  # as the quota controller reports
    requests, limits = [], []
    for name in sorted(hard):
        text = f"{name}: {used.get(name, '0')}/{hard[name]}"
        (limits if name.startswith("limits.") else requests).append(text)
    return [row.name, row.age, ", ".join(requests), ", ".join(limits)]


def _policy(row: _Row) -> list[Any]:
    kind = row.spec.get("paramKind")
    return [row.name, len(row.spec.get("validations") or []),
            f"{kind.get('apiVersion', '')}/{kind.get('kind', '')}" if kind else "<unset>", row.age]


def _policy_binding(row: _Row) -> list[Any]:
    reference, text = row.spec.get("paramRef"), "<unset>"
    if reference and reference.get("name"):
        text = f"{reference.get('namespace') or '*'}/{reference['name']}"
    elif reference and reference.get("selector") is not None:
        text = format_label_selector(reference["selector"])
    return [row.name, row.spec.get("policyName", ""), text, row.age]


def _webhook_configuration(row: _Row) -> list[Any]:
    """printValidatingWebhook / printMutatingWebhook: the number of webhooks."""
    return [row.name, len(row.obj.get("webhooks") or []), row.age]


def _certificate_signing_request(row: _Row) -> list[Any]:
    """printCertificateSigningRequest: the condition is Denied, Approved or Pending, then Failed and Issued."""
    types = {c.get("type") for c in row.status.get("conditions") or [] if isinstance(c, dict)}
    condition = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    condition += ",Failed" if "Failed" in types else ""
    condition += ",Issued" if row.status.get("certificate") else ""
    seconds = row.spec.get("expirationSeconds")
    requested = human_duration(datetime.timedelta(seconds=seconds)) if isinstance(seconds, int) else "<none>"
    return [row.name, row.age, row.spec.get("signerName") or "<none>", row.spec.get("username", ""), requested,
            condition]


def _created_at(row: _Row) -> list[Any]:
    return [row.name, row.metadata.get("creationTimestamp")]


Column = tuple[str, str, int]  # name, type, priority
_NAME: Column = ("Name", "string", 0)
_AGE: Column = ("Age", "string", 0)
_WORKLOAD: tuple[Column, ...] = (("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1))
_PRINTERS: dict[str, tuple[tuple[Column, ...], Callable[[_Row], list[Any]]]] = {
    "pods": ((_NAME, ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "string", 0), _AGE,
              ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
              ("Readiness Gates", "string", 1)), _pod),
    "namespaces": ((_NAME, ("Status", "string", 0), _AGE), lambda row: [row.name, row.status.get("phase", ""),
                                                                       row.age]),
    "deployments": ((_NAME, ("Ready", "string", 0), ("Up-to-date", "integer", 0), ("Available", "integer", 0), _AGE,
                     *_WORKLOAD), _deployment),
    "replicasets": ((_NAME, ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0), _AGE,
                     *_WORKLOAD), _replica_set),
    "daemonsets": ((_NAME, ("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0),
                    ("Up-to-date", "integer", 0), ("Available", "integer", 0), ("Node Selector", "string", 0), _AGE,
                    *_WORKLOAD), _daemon_set),
    "statefulsets": ((_NAME, ("Ready", "string", 0), _AGE, *_WORKLOAD[:2]), _stateful_set),
    "jobs": ((_NAME, ("Status", "string", 0), ("Completions", "string", 0), ("Duration", "string", 0), _AGE,
              *_WORKLOAD), _job),
    "cronjobs": ((_NAME, ("Schedule", "string", 0), ("Timezone", "string", 0), ("Suspend", "boolean", 0),
                  ("Active", "integer", 0), ("Last Schedule", "string", 0), _AGE, *_WORKLOAD), _cron_job),
    "services": ((_NAME, ("Type", "string", 0), ("Cluster-IP", "string", 0), ("External-IP", "string", 0),
                  ("Port(s)", "string", 0), _AGE, ("Selector", "string", 1)), _service),
    "nodes": ((_NAME, ("Status", "string", 0), ("Roles", "string", 0), _AGE, ("Version", "string", 0),
               ("Internal-IP", "string", 1), ("External-IP", "string", 1), ("OS-Image", "string", 1),
               ("Kernel-Version", "string", 1), ("Container-Runtime", "string", 1)), _node),
    "events": ((("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0), ("Object", "string", 0),
                ("Subobject", "string", 1), ("Source", "string", 1), ("Message", "string", 0),
                ("First Seen", "string", 1), ("Count", "string", 1), ("Name", "string", 1)), _event),
    "configmaps": ((_NAME, ("Data", "string", 0), _AGE),
                   lambda row: [row.name, len(row.obj.get("data") or {}) + len(row.obj.get("binaryData") or {}),
                                row.age]),
    "secrets": ((_NAME, ("Type", "string", 0), ("Data", "string", 0), _AGE),
                lambda row: [row.name, row.obj.get("type", ""), len(row.obj.get("data") or {}), row.age]),
    "serviceaccounts": ((_NAME, ("Secrets", "string", 0), _AGE),
                        lambda row: [row.name, len(row.obj.get("secrets") or []), row.age]),
    "roles": ((_NAME, ("Created At", "date", 0)), _created_at),
    "clusterroles": ((_NAME, ("Created At", "date", 0)), _created_at),
    "rolebindings": ((_NAME, ("Role", "string", 0), _AGE, ("Users", "string", 1), ("Groups", "string", 1),
                      ("ServiceAccounts", "string", 1)), _binding),
    "clusterrolebindings": ((_NAME, ("Role", "string", 0), _AGE, ("Users", "string", 1), ("Groups", "string", 1),
                             ("ServiceAccounts", "string", 1)), _binding),
    "leases": ((_NAME, ("Holder", "string", 0), _AGE),
               lambda row: [row.name, row.spec.get("holderIdentity") or "", row.age]),
    "endpoints": ((_NAME, ("Endpoints", "string", 0), _AGE), lambda row: [row.name, _endpoints(row), row.age]),
    "persistentvolumes": ((_NAME, ("Capacity", "string", 0), ("Access Modes", "string", 0),
                           ("Reclaim Policy", "string", 0), ("Status", "string", 0), ("Claim", "string", 0),
                           ("StorageClass", "string", 0), ("VolumeAttributesClass", "string", 0),
                           ("Reason", "string", 0), _AGE, ("VolumeMode", "string", 1)), _persistent_volume),
    "persistentvolumeclaims": ((_NAME, ("Status", "string", 0), ("Volume", "string", 0), ("Capacity", "string", 0),
                                ("Access Modes", "string", 0), ("StorageClass", "string", 0),
                                ("VolumeAttributesClass", "string", 0), _AGE, ("VolumeMode", "string", 1)),
                               _persistent_volume_claim),
    "ingresses": ((_NAME, ("Class", "string", 0), ("Hosts", "string", 0), ("Address", "string", 0),
                   ("Ports", "string", 0), _AGE), _ingress),
    "ingressclasses": ((_NAME, ("Controller", "string", 0), ("Parameters", "string", 0), _AGE), _ingress_class),
    "poddisruptionbudgets": ((_NAME, ("Min Available", "string", 0), ("Max Unavailable", "string", 0),
                              ("Allowed Disruptions", "integer", 0), _AGE), _pod_disruption_budget),
    "storageclasses": ((_NAME, ("Provisioner", "string", 0), ("ReclaimPolicy", "string", 0),
                        ("VolumeBindingMode", "string", 0), ("AllowVolumeExpansion", "string", 0), _AGE),
                       _storage_class),
    "resourcequotas": ((_NAME, _AGE, ("Request", "string", 0), ("Limit", "string", 0)), _resource_quota),
    "limitranges": ((_NAME, ("Created At", "date", 0)), _created_at),
    "priorityclasses": ((_NAME, ("Value", "integer", 0), ("Global-Default", "boolean", 0), _AGE,
                         ("PreemptionPolicy", "string", 0)),
                        lambda row: [row.name, row.obj.get("value", 0), bool(row.obj.get("globalDefault")), row.age,
                                     row.obj.get("preemptionPolicy") or ""]),
    "validatingadmissionpolicies": ((_NAME, ("Validations", "integer", 0), ("ParamKind", "string", 0), _AGE),
                                    _policy),
    "validatingadmissionpolicybindings": ((_NAME, ("PolicyName", "string", 0), ("ParamRef", "string", 0), _AGE),
                                          _policy_binding),
    "validatingwebhookconfigurations": ((_NAME, ("Webhooks", "integer", 0), _AGE), _webhook_configuration),
    "mutatingwebhookconfigurations": ((_NAME, ("Webhooks", "integer", 0), _AGE), _webhook_configuration),
    "certificatesigningrequests": ((_NAME, _AGE, ("SignerName", "string", 0), ("Requestor", "string", 0),
                                    ("RequestedDuration", "string", 0), ("Condition", "string", 0)),
                                   _certificate_signing_request),
    "networkpolicies": ((_NAME, ("Pod-Selector", "string", 0), _AGE),
                        lambda row: [row.name, format_label_selector(row.spec.get("podSelector")), row.age]),
}
# What the API server prints for a resource without a printer (a custom resource's default columns).
_DEFAULT: tuple[tuple[Column, ...], Callable[[_Row], list[Any]]] = ((_NAME, ("Created At", "date", 0)), _created_at)


def _column(column: Column) -> dict[str, Any]:
    name, type_, priority = column
    description = {"Name": _NAME_DOC, "Age": _CREATED_DOC, "Created At": _CREATED_DOC}.get(name, "")
    return {"name": name, "type": type_, "format": "name" if column == _NAME else "", "description": description,
            "priority": priority}


def table(resource: ResourceType, objects: Iterable[dict[str, Any]], list_metadata: dict[str, Any],
          include_object: str, now: datetime.datetime) -> dict[str, Any]:
    """The Table of `objects` (typed or not), with the list's metadata (resourceVersion, continue)."""
    columns, cells = _PRINTERS.get(resource.plural, _DEFAULT)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(_Row(obj, now))}
        if include_object == "Object":
            row["object"] = {"kind": resource.kind, "apiVersion": resource.api_version} | obj
        elif include_object == "Metadata":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata") or {}}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_metadata,
            "columnDefinitions": [_column(column) for column in columns], "rows": rows}
