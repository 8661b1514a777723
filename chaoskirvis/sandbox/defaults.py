"""Objects as kube-apiserver 1.32 stores them: the defaults the registry's decoding sets, and empty fields.

A real API server decodes every written object with its scheme's defaulting functions (k8s.io/kubernetes
`pkg/apis/*/v1/defaults.go` and the `zz_generated.defaults.go` that call them for nested types), and
encodes what it stores with Go's encoding/json, so a field whose json tag has no `omitempty` is written
even when empty (`"rules": null`, `"creationTimestamp": null`, `"resources": {}`). Clients, and the CEL
of a ValidatingAdmissionPolicy, see those values; this module sets them on the sandbox's JSON objects.

`apply_defaults(resource, obj)` is the scheme defaulting, run on create and on update (every write is
decoded). Besides it, what the registries do on create only is here too, because it is what a create
answers with: a Service's cluster IPs, IP families and node ports (the service REST allocator), a Job's
generated selector (the Job strategy's PrepareForCreate), and each kind's empty status as encoded.

The Go functions followed are named in each docstring. Where a feature gate decides, 1.32's default is
taken (PodLevelResources off, JobPodReplacementPolicy on, MaxUnavailableStatefulSet off).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from chaoskirvis.sandbox import quantities
from chaoskirvis.sandbox.resources import ResourceType

Obj = dict[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"
# The service CIDR of a kubeadm or kind cluster; 10.96.0.1 is the `kubernetes` Service's address.
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORT_RANGE = (30000, 32767)


def _dicts(value: Any) -> Iterator[Obj]:
    """The objects of a list (a malformed entry is left to validation)."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _dict(obj: Obj, key: str) -> Obj | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _child(obj: Obj, key: str) -> Obj | None:
    """The object at `key`, created empty when absent or null; None when it is not an object (a malformed
    body, left as it is to validation)."""
    if obj.get(key) is None:
        obj[key] = {}
    value = obj[key]
    return value if isinstance(value, dict) else None


def _spec(obj: Obj) -> Obj | None:
    return _child(obj, "spec")


def _set_default(obj: Obj, key: str, value: Any) -> None:
    """Go's `if obj.X == "" / nil { obj.X = value }`: an absent, null or empty value is replaced."""
    if obj.get(key) in (None, ""):
        obj[key] = value


# Images (k8s.io/kubernetes pkg/util/parsers.ParseImageName, on github.com/distribution/reference).

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def image_tag(image: str) -> str:
    """The tag ParseImageName finds: `latest` when there is neither tag nor digest, "" when unparsable."""
    match = _REFERENCE.fullmatch(image)
    if match is None:
        return ""
    if match["tag"] is None and match["digest"] is None:
        return "latest"
    return match["tag"] or ""


# Fields that are `omitempty` without being pointers: Go stores their zero value (false, 0, "", an empty
# list or map) as unset, so the encoded object, and the CEL that reads it, does not have them.
_OMITTED_WHEN_EMPTY = {
    "PodSpec": ("volumes", "initContainers", "ephemeralContainers", "nodeSelector", "serviceAccountName",
                "nodeName", "hostNetwork", "hostPID", "hostIPC", "imagePullSecrets", "hostname", "subdomain",
                "tolerations", "hostAliases", "priorityClassName", "readinessGates", "topologySpreadConstraints",
                "schedulingGates", "resourceClaims"),
    "Container": ("command", "args", "workingDir", "ports", "envFrom", "env", "volumeMounts", "volumeDevices",
                  "resizePolicy", "stdin", "stdinOnce", "tty"),
    "ContainerPort": ("name", "hostPort", "hostIP"),
    "VolumeMount": ("readOnly", "subPath", "subPathExpr"),
    "EnvVar": ("value",),
    "Capabilities": ("add", "drop"),
    "Probe": ("initialDelaySeconds",),
    "Toleration": ("key", "operator", "value", "effect"),
    "ServiceSpec": ("ports", "selector", "externalIPs", "loadBalancerIP", "loadBalancerSourceRanges",
                    "externalName", "healthCheckNodePort", "publishNotReadyAddresses"),
    "ServicePort": ("name", "nodePort"),
    "DeploymentSpec": ("minReadySeconds", "paused"),
    "PolicyRule": ("apiGroups", "resources", "resourceNames", "nonResourceURLs"),
    "Subject": ("apiGroup", "namespace"),
}


def _omit_empty(obj: Obj, struct: str) -> None:
    for key in _OMITTED_WHEN_EMPTY[struct]:
        value = obj.get(key, None)
        if key in obj and (value is None or value is False or value in ("", [], {})
                           or (type(value) is int and value == 0)):
            del obj[key]


def _resource_list(resources: Any) -> None:
    """SetDefaults_ResourceList (rounded up to milli-units), in the canonical form the encoding writes."""
    if isinstance(resources, dict):
        for name, amount in resources.items():
            resources[name] = quantities.canonical(amount, round_to_milli=True)


def _requirements(requirements: Any) -> None:
    if isinstance(requirements, dict):
        for key in ("limits", "requests"):
            _resource_list(requirements.get(key))


# Pods and pod templates (pkg/apis/core/v1/defaults.go).

def _container(container: Obj) -> None:
    """SetDefaults_Container and the nested defaulters zz_generated.defaults.go calls for a container."""
    if container.get("imagePullPolicy") in (None, ""):
        container["imagePullPolicy"] = "Always" if image_tag(str(container.get("image") or "")) == "latest" \
            else "IfNotPresent"
    _set_default(container, "terminationMessagePath", "/dev/termination-log")
    _set_default(container, "terminationMessagePolicy", "File")
    _omit_empty(container, "Container")
    for port in _dicts(container.get("ports")):
        _omit_empty(port, "ContainerPort")
        _set_default(port, "protocol", "TCP")
    for mount in _dicts(container.get("volumeMounts")):
        _omit_empty(mount, "VolumeMount")
    security_context = _dict(container, "securityContext")
    capabilities = _dict(security_context, "capabilities") if security_context else None
    if capabilities is not None:
        _omit_empty(capabilities, "Capabilities")
    for env in _dicts(container.get("env")):
        _omit_empty(env, "EnvVar")
        value_from = _dict(env, "valueFrom")
        field_ref = _dict(value_from, "fieldRef") if value_from else None
        if field_ref is not None:
            _set_default(field_ref, "apiVersion", "v1")  # SetDefaults_ObjectFieldSelector
    # `resources` is a struct (ResourceRequirements) with omitempty, which encoding/json never omits.
    if not isinstance(container.get("resources"), dict):
        container["resources"] = {}
    _requirements(container["resources"])
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _dict(container, probe_name)
        if probe is not None:
            _probe(probe)
    lifecycle = _dict(container, "lifecycle")
    for hook_name in ("postStart", "preStop"):
        hook = _dict(lifecycle, hook_name) if lifecycle else None
        http_get = _dict(hook, "httpGet") if hook else None
        if http_get is not None:
            _http_get(http_get)


def _probe(probe: Obj) -> None:
    """SetDefaults_Probe, SetDefaults_HTTPGetAction, and GRPCAction's `+default=""` on `service`."""
    _omit_empty(probe, "Probe")
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    http_get = _dict(probe, "httpGet")
    if http_get is not None:
        _http_get(http_get)
    grpc = _dict(probe, "grpc")
    if grpc is not None and grpc.get("service") is None:
        grpc["service"] = ""


def _http_get(action: Obj) -> None:
    _set_default(action, "path", "/")
    _set_default(action, "scheme", "HTTP")


_VOLUME_SOURCE_DEFAULT_MODE = ("secret", "configMap", "downwardAPI", "projected")


def _volume(volume: Obj) -> None:
    """SetDefaults_Volume and the defaulters of its sources (mode 0644 is 420, HostPathUnset is "")."""
    if all(key == "name" for key in volume):
        volume["emptyDir"] = {}
    empty_dir = _dict(volume, "emptyDir")
    if empty_dir is not None and empty_dir.get("sizeLimit") is not None:
        empty_dir["sizeLimit"] = quantities.canonical(empty_dir["sizeLimit"])
    host_path = _dict(volume, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    for source_name in _VOLUME_SOURCE_DEFAULT_MODE:
        source = _dict(volume, source_name)
        if source is not None and source.get("defaultMode") is None:
            source["defaultMode"] = 420
    downward_api = _dict(volume, "downwardAPI")
    if downward_api is not None:
        _downward_api_items(downward_api)
    projected = _dict(volume, "projected")
    for projection in _dicts(projected.get("sources")) if projected else ():
        if _dict(projection, "downwardAPI") is not None:
            _downward_api_items(projection["downwardAPI"])
        token = _dict(projection, "serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = 3600  # SetDefaults_ServiceAccountTokenProjection
    ephemeral = _dict(volume, "ephemeral")
    claim = _dict(ephemeral, "volumeClaimTemplate") if ephemeral else None
    if claim is not None:
        _embedded_metadata(claim)
        if (claim_spec := _child(claim, "spec")) is not None:
            _claim_spec(claim_spec)


def _downward_api_items(source: Obj) -> None:
    for item in _dicts(source.get("items")):
        field_ref = _dict(item, "fieldRef")
        if field_ref is not None:
            _set_default(field_ref, "apiVersion", "v1")


def _claim_spec(spec: Obj) -> None:
    """SetDefaults_PersistentVolumeClaimSpec; `resources` is a struct, always encoded."""
    _set_default(spec, "volumeMode", "Filesystem")
    if not isinstance(spec.get("resources"), dict):
        spec["resources"] = {}
    _requirements(spec["resources"])


def _service_account_names(spec: Obj) -> None:
    """The v1 conversion of PodSpec: `serviceAccount` (deprecated) is an alias of `serviceAccountName`."""
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    else:
        spec.pop("serviceAccount", None)
        spec.pop("serviceAccountName", None)


def _pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec, then the defaulters of its containers and volumes (for pods and templates)."""
    _set_default(spec, "dnsPolicy", "ClusterFirst")
    _set_default(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    _set_default(spec, "schedulerName", "default-scheduler")
    _omit_empty(spec, "PodSpec")
    for toleration in _dicts(spec.get("tolerations")):
        _omit_empty(toleration, "Toleration")
    _service_account_names(spec)
    for volume in _dicts(spec.get("volumes")):
        _volume(volume)
    for list_name in ("initContainers", "containers", "ephemeralContainers"):
        for container in _dicts(spec.get(list_name)):
            _container(container)


def _pod(pod: Obj) -> None:
    """SetObjectDefaults_Pod: SetDefaults_Pod (requests from limits, enableServiceLinks, host ports)."""
    spec = pod.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    for list_name in ("containers", "initContainers"):
        for container in _dicts(spec.get(list_name)):
            resources = _dict(container, "resources") or {}
            limits = resources.get("limits")
            if isinstance(limits, dict) and limits:
                requests = _child(resources, "requests")
                if requests is not None:
                    for name, quantity in limits.items():
                        requests.setdefault(name, quantity)
    _resource_list(spec.get("overhead"))
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for list_name in ("containers", "initContainers"):
            for container in _dicts(spec.get(list_name)):
                for port in _dicts(container.get("ports")):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")
    _pod_spec(spec)


def _pod_template(template: Obj) -> None:
    """A PodTemplateSpec: its ObjectMeta is embedded, so an unset creationTimestamp is encoded as null."""
    _embedded_metadata(template)
    spec = _child(template, "spec")
    if spec is not None:
        _pod_spec(spec)


def _embedded_metadata(template: Obj) -> None:
    """An embedded ObjectMeta (templates): its unset creationTimestamp, a struct, is encoded as null."""
    metadata = _child(template, "metadata")
    if metadata is not None:
        metadata.setdefault("creationTimestamp", None)


def _template_of(obj: Obj) -> Obj | None:
    spec = _dict(obj, "spec")
    return _dict(spec, "template") if spec else None


# Workloads (pkg/apis/apps/v1/defaults.go, pkg/apis/batch/v1/defaults.go).

def _deployment(deployment: Obj) -> None:
    """SetDefaults_Deployment."""
    spec = _spec(deployment)
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _child(spec, "strategy")
    if strategy is not None:
        _set_default(strategy, "type", "RollingUpdate")
    rolling = _child(strategy, "rollingUpdate") if strategy and strategy["type"] == "RollingUpdate" else None
    if rolling is not None:
        for key in ("maxUnavailable", "maxSurge"):
            if rolling.get(key) is None:
                rolling[key] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _omit_empty(spec, "DeploymentSpec")


def _daemon_set(daemon_set: Obj) -> None:
    """SetDefaults_DaemonSet."""
    spec = _spec(daemon_set)
    if spec is None:
        return
    strategy = _child(spec, "updateStrategy")
    if strategy is not None:
        _set_default(strategy, "type", "RollingUpdate")
    rolling = _child(strategy, "rollingUpdate") if strategy and strategy["type"] == "RollingUpdate" else None
    if rolling is not None:
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10


def _stateful_set(stateful_set: Obj) -> None:
    """SetDefaults_StatefulSet, and the claim templates' PersistentVolumeClaim defaulters."""
    spec = _spec(stateful_set)
    if spec is None:
        return
    _set_default(spec, "podManagementPolicy", "OrderedReady")
    strategy = _child(spec, "updateStrategy")
    if strategy is not None:
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            _child(strategy, "rollingUpdate")
        rolling = _dict(strategy, "rollingUpdate")
        if strategy["type"] == "RollingUpdate" and rolling is not None and rolling.get("partition") is None:
            rolling["partition"] = 0
    retention = _child(spec, "persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        _set_default(retention, "whenDeleted", "Retain")
        _set_default(retention, "whenScaled", "Retain")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    for claim in _dicts(spec.get("volumeClaimTemplates")):
        _embedded_metadata(claim)
        if (claim_spec := _child(claim, "spec")) is not None:
            _claim_spec(claim_spec)
        if (claim_status := _child(claim, "status")) is not None:
            _set_default(claim_status, "phase", "Pending")  # SetDefaults_PersistentVolumeClaim


def _replica_set(replica_set: Obj) -> None:
    """SetDefaults_ReplicaSet."""
    spec = _spec(replica_set)
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1


def _job(job: Obj) -> None:
    """SetDefaults_Job (the JobPodReplacementPolicy gate is on in 1.32)."""
    spec = _spec(job)
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    template = _dict(spec, "template") or {}
    template_labels = (_dict(template, "metadata") or {}).get("labels")
    metadata = job["metadata"]
    if template_labels is not None and not metadata.get("labels"):
        metadata["labels"] = dict(template_labels)
    _set_default(spec, "completionMode", "NonIndexed")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    failure_policy = _dict(spec, "podFailurePolicy")
    for rule in _dicts(failure_policy.get("rules")) if failure_policy else ():
        for pattern in _dicts(rule.get("onPodConditions")):
            _set_default(pattern, "status", "True")
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if failure_policy is not None else "TerminatingOrFailed"


def generate_job_selector(job: Obj) -> None:
    """The Job strategy's PrepareForCreate (generateSelector) unless `manualSelector` is true; then the
    labels the stored Job gets when it is decoded again (SetDefaults_Job copies the template's labels)."""
    spec = _spec(job)
    template = _child(spec, "template") if spec is not None else None
    template_metadata = _child(template, "metadata") if template is not None else None
    if spec is None or template_metadata is None or spec.get("manualSelector") is True:
        return
    metadata = job["metadata"]
    labels = dict(template_metadata.get("labels") or {})
    # SetDefaults_Job's `obj.Labels = labels` shares the template's map, which generateSelector then fills
    labels_shared = bool(labels) and metadata.get("labels") == labels
    for key in ("job-name", "batch.kubernetes.io/job-name"):
        labels.setdefault(key, metadata.get("name", ""))
    for key in ("controller-uid", "batch.kubernetes.io/controller-uid"):
        labels.setdefault(key, metadata.get("uid", ""))
    template_metadata["labels"] = labels
    selector = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
    match_labels = selector.get("matchLabels") or {}
    match_labels.setdefault("batch.kubernetes.io/controller-uid", metadata.get("uid", ""))
    spec["selector"] = dict(selector, matchLabels=match_labels)
    if labels_shared or not metadata.get("labels"):
        metadata["labels"] = dict(labels)


def _cron_job(cron_job: Obj) -> None:
    """SetDefaults_CronJob (the job template's JobSpec gets no SetDefaults_Job: that is for Jobs)."""
    spec = _spec(cron_job)
    if spec is None:
        return
    _set_default(spec, "concurrencyPolicy", "Allow")
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = _child(spec, "jobTemplate")
    if job_template is not None:
        _embedded_metadata(job_template)
        job_spec = _child(job_template, "spec")
        if job_spec is not None and isinstance(job_spec.get("template"), dict):
            _pod_template(job_spec["template"])


# Services (SetDefaults_Service; pkg/registry/core/service/storage/alloc.go for what is allocated).

def _service(service: Obj) -> None:
    """SetDefaults_Service, with the ServicePort protocol default."""
    spec = _spec(service)
    if spec is None:
        return
    _set_default(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _dict(_dict(spec, "sessionAffinityConfig") or {}, "clientIP") or {}
        timeout = client_ip.get("timeoutSeconds")
        if timeout is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _set_default(spec, "type", "ClusterIP")
    _omit_empty(spec, "ServiceSpec")
    for port in _dicts(spec.get("ports")):
        _omit_empty(port, "ServicePort")
        _set_default(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    service_type = spec["type"]
    externally_accessible = service_type in ("NodePort", "LoadBalancer") or (
        service_type == "ClusterIP" and bool(spec.get("externalIPs")))
    if externally_accessible:
        _set_default(spec, "externalTrafficPolicy", "Cluster")
    if spec.get("internalTrafficPolicy") is None and service_type in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if service_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]  # the v1 conversion: clusterIP is clusterIPs[0]


def allocate_service(service: Obj, old: Obj | None, taken: Callable[[str | int], bool] = lambda _: False) -> None:
    """What the service REST storage allocates (initIPFamilyFields, allocClusterIPs, initNodePorts) on a
    single-stack IPv4 cluster; on update the allocated values the new object leaves out are kept
    (patchAllocatedValues), as is the old ipFamilyPolicy. `taken` says whether another Service holds a
    cluster IP (str) or node port (int): like the allocators, the sandbox picks free ones."""
    spec = _spec(service)
    if spec is None:
        return
    old_spec = (old or {}).get("spec") or {}
    if spec.get("type") == "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            spec.pop(key, None)
        return
    if old is not None and old_spec.get("type") != "ExternalName":
        for key in ("clusterIP", "clusterIPs"):
            if not spec.get(key) and old_spec.get(key):
                spec[key] = list(old_spec[key]) if isinstance(old_spec[key], list) else old_spec[key]
    headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = old_spec.get("ipFamilyPolicy") or (
            "RequireDualStack" if headless_selectorless else "SingleStack")
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]
        if headless_selectorless and spec["ipFamilyPolicy"] != "SingleStack":
            spec["ipFamilies"].append("IPv6")
    if not spec.get("clusterIP"):
        address = _free(_random_service_ip, taken)
        spec["clusterIP"], spec["clusterIPs"] = address, [address]
    _allocate_node_ports(spec, old_spec, taken)


def _random_service_ip() -> str:
    """An address of the dynamic band: the allocator keeps the lowest 256 of a /12 for static requests."""
    first_dynamic = int(SERVICE_CIDR.network_address) + 256
    last = int(SERVICE_CIDR.broadcast_address) - 1
    return str(ipaddress.ip_address(first_dynamic + secrets.randbelow(last - first_dynamic + 1)))


def _free(pick: Callable[[], Any], taken: Callable[[str | int], bool]) -> Any:
    """A random pick that is not taken (the allocators hand out free values; the bands are large enough
    that a few tries find one), else the last pick, which the allocation check then refuses as taken."""
    for _ in range(64):
        value = pick()
        if not taken(value):
            return value
    return value


def _allocate_node_ports(spec: Obj, old_spec: Obj, taken: Callable[[str | int], bool]) -> None:
    """initNodePorts: one node port per service port number (shared across protocols)."""
    service_type = spec.get("type")
    allocates = service_type == "NodePort" or (
        service_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False)
    if service_type not in ("NodePort", "LoadBalancer"):
        return
    old_ports = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in _dicts(old_spec.get("ports"))}
    by_port: dict[Any, int] = {}
    ports = list(_dicts(spec.get("ports")))
    for port in ports:
        if not port.get("nodePort") and old_ports.get((port.get("port"), port.get("protocol"))):
            port["nodePort"] = old_ports[(port.get("port"), port.get("protocol"))]
        if port.get("nodePort"):
            by_port.setdefault(port.get("port"), port["nodePort"])
    for port in ports:
        if port.get("nodePort") or not allocates:
            continue
        if port.get("port") not in by_port:
            by_port[port.get("port")] = _free(_random_node_port, lambda p: taken(p) or p in by_port.values())
        port["nodePort"] = by_port[port.get("port")]
    needs_health_check = service_type == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"
    if needs_health_check and not spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old_spec.get("healthCheckNodePort") or _free(
            _random_node_port, lambda p: taken(p) or p in by_port.values())


def _random_node_port() -> int:
    """A port of the default --service-node-port-range (the port allocator picks at random too)."""
    return NODE_PORT_RANGE[0] + secrets.randbelow(NODE_PORT_RANGE[1] - NODE_PORT_RANGE[0] + 1)


# Other kinds.

def _secret(secret: Obj) -> None:
    """SetDefaults_Secret."""
    _set_default(secret, "type", "Opaque")


def _event(event: Obj) -> None:
    """core/v1 Event has no defaulter, but its structs and times are never omitted, nor the two
    `reporting*` strings (`json:"reportingComponent"`, `json:"reportingInstance"`)."""
    for key in ("involvedObject", "source"):
        if not isinstance(event.get(key), dict):
            event[key] = {}
    for key in ("firstTimestamp", "lastTimestamp", "eventTime"):
        event.setdefault(key, None)
    for key in ("reportingComponent", "reportingInstance"):
        if event.get(key) is None:
            event[key] = ""


def _network_policy(policy: Obj) -> None:
    """SetDefaults_NetworkPolicy and SetDefaults_NetworkPolicyPort; podSelector is a struct."""
    spec = _spec(policy)
    if spec is None:
        return
    if not isinstance(spec.get("podSelector"), dict):
        spec["podSelector"] = {}
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                _set_default(port, "protocol", "TCP")


def _role(role: Obj) -> None:
    """Role and ClusterRole: `Rules []PolicyRule json:"rules"` and `Verbs []string json:"verbs"` have no
    omitempty, so unset they are null."""
    role.setdefault("rules", None)
    for rule in _dicts(role.get("rules")):
        rule.setdefault("verbs", None)
        _omit_empty(rule, "PolicyRule")


def _role_binding(binding: Obj) -> None:
    """SetDefaults_RoleBinding / SetDefaults_ClusterRoleBinding and SetDefaults_Subject."""
    role_ref = binding.setdefault("roleRef", {})
    if isinstance(role_ref, dict):
        _set_default(role_ref, "apiGroup", RBAC_GROUP)
    for subject in _dicts(binding.get("subjects")):
        _omit_empty(subject, "Subject")
        if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def _persistent_volume_claim(claim: Obj) -> None:
    """SetObjectDefaults_PersistentVolumeClaim: the spec's volumeMode (its status is the create's)."""
    spec = _spec(claim)
    if spec is not None:
        _claim_spec(spec)


def _persistent_volume(volume: Obj) -> None:
    """SetDefaults_PersistentVolume (its status phase is the create's) and its hostPath's type."""
    spec = _spec(volume)
    if spec is None:
        return
    _set_default(spec, "persistentVolumeReclaimPolicy", "Retain")
    _resource_list(spec.get("capacity"))
    _set_default(spec, "volumeMode", "Filesystem")
    host_path = _dict(spec, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""


def _endpoints(endpoints: Obj) -> None:
    """SetDefaults_Endpoints."""
    for subset in _dicts(endpoints.get("subsets")):
        for port in _dicts(subset.get("ports")):
            _set_default(port, "protocol", "TCP")


def _limit_range(limit_range: Obj) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default limit from max, default request from the
    default limit, then from min."""
    spec = _spec(limit_range)
    for item in _dicts(spec.get("limits")) if spec else ():
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            _resource_list(item.get(key))
        lists = {key: item.get(key) or {} for key in ("max", "min", "default", "defaultRequest")}
        if item.get("type") != "Container" or not all(isinstance(v, dict) for v in lists.values()):
            continue
        default = {**lists["max"], **lists["default"]}
        default_request = {**lists["min"], **default, **lists["defaultRequest"]}
        for key, value in (("default", default), ("defaultRequest", default_request)):
            if value:  # an empty ResourceList is omitted
                item[key] = value


def _resource_quota(quota: Obj) -> None:
    """SetObjectDefaults_ResourceQuota: the hard limits' SetDefaults_ResourceList."""
    spec = _spec(quota)
    if spec is not None:
        _resource_list(spec.get("hard"))


def _priority_class(priority_class: Obj) -> None:
    """SetDefaults_PriorityClass (scheduling/v1)."""
    _set_default(priority_class, "preemptionPolicy", "PreemptLowerPriority")


def _storage_class(storage_class: Obj) -> None:
    """SetDefaults_StorageClass (storage/v1)."""
    _set_default(storage_class, "reclaimPolicy", "Delete")
    _set_default(storage_class, "volumeBindingMode", "Immediate")


def _match_resources(match: Obj) -> None:
    """SetDefaults_MatchResources and, for each of its rules, SetDefaults_Rule (admissionregistration/v1)."""
    _set_default(match, "matchPolicy", "Equivalent")
    for selector in ("namespaceSelector", "objectSelector"):
        if match.get(selector) is None:
            match[selector] = {}
    for rules in ("resourceRules", "excludeResourceRules"):
        for rule in _dicts(match.get(rules)):
            _set_default(rule, "scope", "*")


def _validating_admission_policy(policy: Obj) -> None:
    """SetDefaults_ValidatingAdmissionPolicySpec (failurePolicy Fail) and its matchConstraints."""
    spec = _spec(policy)
    if spec is None:
        return
    _set_default(spec, "failurePolicy", "Fail")
    match = _dict(spec, "matchConstraints")
    if match is not None:
        _match_resources(match)


def _validating_admission_policy_binding(binding: Obj) -> None:
    """The binding's matchResources get SetDefaults_MatchResources when present."""
    spec = _spec(binding)
    match = _dict(spec, "matchResources") if spec else None
    if match is not None:
        _match_resources(match)


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "Pod": _pod,
    "Service": _service,
    "Secret": _secret,
    "Event": _event,
    "Deployment": _deployment,
    "DaemonSet": _daemon_set,
    "StatefulSet": _stateful_set,
    "ReplicaSet": _replica_set,
    "Job": _job,
    "CronJob": _cron_job,
    "NetworkPolicy": _network_policy,
    "Role": _role,
    "ClusterRole": _role,
    "RoleBinding": _role_binding,
    "ClusterRoleBinding": _role_binding,
    "PersistentVolumeClaim": _persistent_volume_claim,
    "PersistentVolume": _persistent_volume,
    "Endpoints": _endpoints,
    "LimitRange": _limit_range,
    "ResourceQuota": _resource_quota,
    "PriorityClass": _priority_class,
    "StorageClass": _storage_class,
    "ValidatingAdmissionPolicy": _validating_admission_policy,
    "ValidatingAdmissionPolicyBinding": _validating_admission_policy_binding,
}

# Status as a create encodes it (the registry resets it; zero numbers without omitempty are written).
_EMPTY_STATUS: dict[str, Obj] = {
    "Service": {"loadBalancer": {}},
    "Deployment": {},
    "ReplicaSet": {"replicas": 0},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "DaemonSet": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                  "numberReady": 0},
    "Job": {},
    "CronJob": {},
    "PersistentVolumeClaim": {"phase": "Pending"},  # SetDefaults_PersistentVolumeClaim
    "PersistentVolume": {"phase": "Pending"},       # SetDefaults_PersistentVolume
    "Ingress": {"loadBalancer": {}},
    "PodDisruptionBudget": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0},
    "ResourceQuota": {},
}


def apply_defaults(resource: ResourceType, obj: Obj) -> None:
    """The scheme's defaulting of a decoded object, in place (pod templates included)."""
    defaulter = _DEFAULTERS.get(resource.kind)
    if defaulter is not None:
        defaulter(obj)
    if resource.kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"):
        template = _template_of(obj)
        if template is not None:
            _pod_template(template)


def created_status(resource: ResourceType) -> Obj | None:
    """The status a new object of a kind with an empty one is stored with (None for the others)."""
    status = _EMPTY_STATUS.get(resource.kind)
    return dict(status) if status is not None else None


# Pods' QoS class (pkg/apis/core/helper/qos.GetPodQOS), which the pod strategy's PrepareForCreate stores.

def qos_class(spec: Obj) -> str:
    """GetPodQOS for cpu and memory: Guaranteed when every container's requests equal its limits for
    both, BestEffort when none has any, else Burstable."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for list_name in ("initContainers", "containers"):
        for container in _dicts(spec.get(list_name)):
            resources = _dict(container, "resources") or {}
            found: dict[str, set[str]] = {"requests": set(), "limits": set()}
            for kind, totals in (("requests", requests), ("limits", limits)):
                for name, raw in (_dict(resources, kind) or {}).items():
                    amount = quantities.value(raw)
                    if name not in ("cpu", "memory") or amount is None:
                        continue
                    if amount > 0:
                        found[kind].add(name)
                        totals[name] = totals.get(name, Decimal(0)) + amount
            if found["limits"] != {"cpu", "memory"}:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests.keys() == limits.keys() and all(limits[k] == requests[k] for k in requests):
        return "Guaranteed"
    return "Burstable"
