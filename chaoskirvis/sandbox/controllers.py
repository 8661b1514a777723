"""What the control plane and the kubelets of a real cluster write, written by the sandbox's store itself.

`ClusterStore` is the `Store` with these writers, each done at once, in the same request as the write that
prompts it (a real cluster takes a moment; tests and experiments must not race it):

- nodes: the configured `SandboxNode`s registered, Ready, each with its Lease in kube-node-lease;
- namespace contents: every namespace has the `default` ServiceAccount (the serviceaccount controller)
  and the `kube-root-ca.crt` ConfigMap holding the sandbox's CA (the root-ca-cert-publisher): made with
  the namespace, made again when deleted, and the ConfigMap's data and annotation put back when changed;
  `default` has the API server's own `kubernetes` Service (10.96.0.1:443) and Endpoints (the control
  plane's address, port 6443), made again when deleted (the API server's bootstrap controller);
- scheduling: a created pod is bound to a node (`nodes` has the rules), then reported Running with that
  node's InternalIP as `hostIP` and an IP of the node's pod network, as one change (a real cluster makes
  the binding and the kubelet's status two changes). A pod no node accepts stays Pending with
  `PodScheduled: False` (reason Unschedulable); a pod bound to a node that does not exist stays Pending;
- events: the scheduler's `Scheduled` (or `FailedScheduling`) and, per container, the kubelet's
  `Pulling`/`Pulled`, `Created` and `Started`, then `Killing` when a running pod is deleted, as core/v1
  Events stored like any other, so watches see them;
- RBAC: ClusterRoles with an aggregationRule get the rules of the roles they select (`role_aggregation`,
  kube-controller-manager's clusterrole-aggregation controller), whenever a ClusterRole is written;
- legacy ServiceAccount tokens: a `kubernetes.io/service-account-token` Secret annotated
  `kubernetes.io/service-account.name` with an existing ServiceAccount gets `data.token` (`sa_tokens`),
  `ca.crt` and `namespace`, and the `kubernetes.io/service-account.uid` annotation (the tokens controller);
- certificates: an approved kubernetes.io/kube-apiserver-client CertificateSigningRequest gets its
  certificate from the client CA, or the Failed condition (`csr_signer`, the csrsigning controller), when a
  signer is given;
- workloads: the Deployment and ReplicaSet controllers (`workload_controllers`): a Deployment gets its
  ReplicaSet, a ReplicaSet its pods, created through `admission` as the replicaset-controller's service
  account, and both their status; a pod a ReplicaSet made starts after `pod_start_seconds` (0: at once, as
  every other pod), Pending (ContainerCreating) until then, so killing one leaves an outage that long;
- endpoints: every Service with a selector has its Endpoints (`endpoints`, the endpoints controller).

These controllers react to what they write (a ReplicaSet's new pod changes its status, which changes its
Deployment's): the objects to sync are queued, and the queue is worked off before the outermost write
returns, so a request's answer comes after everything it set off, as a settled cluster would show it.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime
import itertools
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any

from chaoskirvis.sandbox import endpoints, workload_controllers
from chaoskirvis.sandbox.admission import AdmissionChain, AdmissionRequest, AdmissionResult, PodSecurityAdmission
from chaoskirvis.sandbox.nodes import DEFAULT_NODES, SandboxNode, choose, filter_failure, node_lease, \
    node_object, unschedulable_message
from chaoskirvis.sandbox.csr_signer import ClientCertificateSigner
from chaoskirvis.sandbox.resources import CERTIFICATE_SIGNING_REQUESTS, CONFIG_MAPS, ENDPOINTS, EVENTS, LEASES, \
    NAMESPACES, NODES, PODS, SECRETS, SERVICE_ACCOUNTS, SERVICES, ResourceType
from chaoskirvis.sandbox.pod_admission import MUTATING_POD_PLUGINS
from chaoskirvis.sandbox.rbac import CLUSTER_ROLES
from chaoskirvis.sandbox.role_aggregation import aggregate_all
from chaoskirvis.sandbox.sa_tokens import LEGACY_TOKEN_TYPE, TokenIssuer
from chaoskirvis.sandbox.store import HOST_IP, ObjectKey, Store, now_timestamp, prepare_create, running_pod_status
from chaoskirvis.sandbox.workload_controllers import DEPLOYMENTS, REPLICA_SETS, controller_of

ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
SERVICE_ACCOUNT_NAME = "kubernetes.io/service-account.name"
SERVICE_ACCOUNT_UID = "kubernetes.io/service-account.uid"
_ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as "
    "the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of "
    "Kubernetes clusters."
)
_SCHEDULER = "default-scheduler"
API_SERVER_SERVICE_IP = "10.96.0.1"  # the first address of kind's (and kubeadm's) service CIDR 10.96.0.0/12
API_SERVER_PORT = 6443
REPLICA_SET_CONTROLLER_USER = "system:serviceaccount:kube-system:replicaset-controller"
_CONTROLLER_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated")
_MAX_SYNCS = 100_000  # per write: a controller that never settles is a bug, not a cluster to wait for
SyncKey = tuple[str, str, str]  # what to sync: ("deployment" | "replicaset" | "service", namespace, name)


class ClusterStore(Store):
    """A `Store` whose writes are followed at once by what the control plane and kubelets would write."""

    def __init__(self, ca_pem: bytes, nodes: Sequence[SandboxNode] = DEFAULT_NODES,
                 history_limit: int = 10_000, token_issuer: TokenIssuer | None = None,
                 certificate_signer: ClientCertificateSigner | None = None, pod_start_seconds: float = 0.0,
                 admission: AdmissionChain | None = None) -> None:
        """`pod_start_seconds`: how long a pod a ReplicaSet made stays Pending before its containers run
        (image pull and start-up; it can be changed later). `admission`: what the API server does with a
        controller's pod create (default: the pods' mutating plugins and PodSecurity; server.py may assign
        the API's whole chain); a plugin answering with an awaitable needs the running event loop."""
        super().__init__(history_limit)
        self.pod_start_seconds = pod_start_seconds
        self.admission = admission or AdmissionChain([*(plugin() for plugin in MUTATING_POD_PLUGINS),
                                                      PodSecurityAdmission()])
        self._to_sync: dict[SyncKey, None] = {}  # an ordered set
        self._in_admission: collections.Counter[str] = collections.Counter()  # pod creates waiting, by owner uid
        self._admitting: set[asyncio.Task[None]] = set()
        self._depth = 0  # writes in progress: the queue is worked off when the outermost one ends
        self._ca_pem = ca_pem.decode()
        self._certificate_signer = certificate_signer
        self._token_issuer = token_issuer or TokenIssuer()
        self._aggregating_roles: set[str] = set()  # ClusterRoles with an aggregationRule, by name
        self._in_aggregation = False
        self._nodes = tuple(nodes)
        self._pod_networks = {node.name: _pod_network(index) for index, node in enumerate(self._nodes)}
        self._event_keys: dict[tuple[Any, ...], str] = {}
        self._event_names = itertools.count(int(datetime.datetime.now(datetime.UTC).timestamp() * 1e9))
        control_plane = next((n for n in self._nodes if n.control_plane), self._nodes[0] if self._nodes else None)
        self._control_plane_host = control_plane.name if control_plane else ""
        self._api_server_address = control_plane.internal_ip if control_plane else HOST_IP

    def register_nodes(self) -> None:
        """Each node as its kubelet registers it, and its Lease (kube-node-lease must exist)."""
        now, micro = now_timestamp(), _micro_time()
        for index, node in enumerate(self._nodes):
            stored = self.create(NODES, _prepared(NODES, node_object(node, index, now)))
            self.create(LEASES, prepare_create(LEASES, node_lease(stored, micro)))

    def create(self, resource: ResourceType, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self._depth += 1
        try:
            created = self._create(resource, obj, dry_run)
        finally:
            self._depth -= 1
        self._work_off()
        return created

    def update(self, resource: ResourceType, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self._depth += 1
        try:
            updated = self._update(resource, obj, dry_run)
        finally:
            self._depth -= 1
        self._work_off()
        return updated

    def delete(self, resource: ResourceType, namespace: str | None, name: str, *,
               preconditions: dict[str, Any] | None = None, orphan_dependents: bool = False,
               dry_run: bool = False) -> dict[str, Any]:
        self._depth += 1
        try:
            deleted = self._delete(resource, namespace, name, preconditions, orphan_dependents, dry_run)
        finally:
            self._depth -= 1
        self._work_off()
        return deleted

    def _create(self, resource: ResourceType, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        created = super().create(resource, obj, dry_run=dry_run)
        if not dry_run:
            self._queue_syncs(resource, created, None)
        if not dry_run and resource == NAMESPACES:
            self._populate_namespace(created["metadata"]["name"])
        elif not dry_run and resource == PODS:
            self._record_pod_events(created)
        elif not dry_run and resource == CLUSTER_ROLES:
            self._cluster_role_written(created)
        elif not dry_run and resource == SECRETS:
            self._fill_service_account_token(created)
        return created

    def _update(self, resource: ResourceType, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        previous = self._objects.get((resource, obj["metadata"].get("namespace", "") if resource.namespaced else "",
                                      obj["metadata"]["name"]))
        updated = super().update(resource, obj, dry_run=dry_run)
        if not dry_run:
            self._queue_syncs(resource, updated, previous)
        if not dry_run and resource == CONFIG_MAPS and updated["metadata"]["name"] == ROOT_CA_CONFIG_MAP:
            self._populate_namespace(updated["metadata"]["namespace"])
        elif not dry_run and resource == CLUSTER_ROLES:
            self._cluster_role_written(updated)
        elif not dry_run and resource == SECRETS:
            self._fill_service_account_token(updated)
        elif not dry_run and resource == CERTIFICATE_SIGNING_REQUESTS:
            self._sign_certificate(updated)
        return updated

    def _delete(self, resource: ResourceType, namespace: str | None, name: str,
                preconditions: dict[str, Any] | None, orphan_dependents: bool, dry_run: bool) -> dict[str, Any]:
        deleted = super().delete(resource, namespace, name, preconditions=preconditions,
                                 orphan_dependents=orphan_dependents, dry_run=dry_run)
        if not dry_run:
            self._queue_syncs(resource, deleted, None)
            if resource in (DEPLOYMENTS, REPLICA_SETS) and namespace:  # the garbage collector took their pods
                self._queue_services(namespace, (s["metadata"]["name"] for s in self.list(SERVICES, namespace)))
        if not dry_run and resource == CLUSTER_ROLES:
            self._aggregating_roles.discard(name)
            aggregate_all(self, self._aggregating_roles)
        if not dry_run and namespace and self.get(NAMESPACES, None, namespace) is not None:
            self._populate_namespace(namespace)
            if resource == PODS:
                self._record_pod_stop(deleted)
        return deleted

    # The workload and endpoints controllers (`workload_controllers`, `endpoints`).

    def has_ready_endpoint(self, namespace: str, name: str, port: int | None = None) -> bool:
        """Whether Service NAMESPACE/NAME has a ready endpoint (on Service port `port`):
        `endpoints.has_ready_endpoint`."""
        return endpoints.has_ready_endpoint(self, namespace, name, port)

    def controller_event(self, resource: ResourceType, obj: dict[str, Any], kind: str, reason: str, message: str,
                         component: str) -> None:
        """An event about `obj` as a kube-controller-manager controller records it (the core/v1 recorder)."""
        metadata, now = obj["metadata"], now_timestamp()
        involved = {"kind": resource.kind, "namespace": metadata["namespace"], "name": metadata["name"],
                    "uid": metadata["uid"], "apiVersion": resource.api_version,
                    "resourceVersion": metadata["resourceVersion"]}
        self._write_event(involved, {
            "reason": reason, "message": message, "source": {"component": component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": kind, "eventTime": None,
            "reportingComponent": component, "reportingInstance": ""})

    def create_controller_pod(self, pod: dict[str, Any], owner: dict[str, Any]) -> str | None:
        """Create a pod as the replicaset-controller does, through `admission`: the refusal's message if refused
        at once. A plugin answering later (a webhook call) finishes the create in a task of the running loop."""
        metadata = pod["metadata"]
        request = AdmissionRequest(operation="CREATE", resource=PODS, namespace=metadata["namespace"],
                                   name=metadata["name"], object=pod, old_object=None, dry_run=False,
                                   user=REPLICA_SET_CONTROLLER_USER, groups=_CONTROLLER_GROUPS)
        plugins = list(self.admission.plugins)
        for index, plugin in enumerate(plugins):
            answer = plugin.admit(request, self)
            if not isinstance(answer, AdmissionResult):
                self._in_admission[owner["metadata"]["uid"]] += 1
                task = asyncio.get_running_loop().create_task(
                    self._admit_later(answer, plugins[index + 1:], request, owner))
                self._admitting.add(task)
                task.add_done_callback(self._admitting.discard)
                return None
            if answer.denial is not None:
                return answer.denial.message
        workload_controllers.pod_created(self, owner, self.create(PODS, pod))
        return None

    def pods_in_admission(self, owner: dict[str, Any]) -> int:
        """How many pod creates of this owner wait for admission's answer."""
        return self._in_admission[owner["metadata"]["uid"]]

    async def _admit_later(self, answer: Awaitable[AdmissionResult], rest: list[Any], request: AdmissionRequest,
                           owner: dict[str, Any]) -> None:
        """The rest of a controller's pod create once admission answers: stored, or recorded as refused."""
        uid = owner["metadata"]["uid"]
        try:
            result = await answer
            for plugin in rest:
                if result.denial is not None:
                    break
                later = plugin.admit(request, self)
                result = later if isinstance(later, AdmissionResult) else await later
        finally:
            self._in_admission[uid] -= 1
        current = self.get(REPLICA_SETS, request.namespace, owner["metadata"]["name"])
        if current is None or current["metadata"]["uid"] != uid:
            return  # the ReplicaSet went meanwhile
        if result.denial is not None:
            workload_controllers.pod_refused(self, current, result.denial.message)
        elif request.object is not None:
            workload_controllers.pod_created(self, current, self.create(PODS, request.object))

    def _queue_syncs(self, resource: ResourceType, obj: dict[str, Any], previous: dict[str, Any] | None) -> None:
        """What the controllers' informers would queue for this change."""
        metadata = obj["metadata"]
        namespace = metadata.get("namespace", "")
        if resource == DEPLOYMENTS and not _status_written(obj, previous):
            self._to_sync[("deployment", namespace, metadata["name"])] = None
        elif resource == REPLICA_SETS:
            if not _status_written(obj, previous):  # a controller's status write does not sync it again
                self._to_sync[("replicaset", namespace, metadata["name"])] = None
            owner = controller_of(obj)
            if owner is not None and owner.get("kind") == "Deployment":
                self._to_sync[("deployment", namespace, owner["name"])] = None
        elif resource == PODS:
            owner = controller_of(obj)
            if owner is not None and owner.get("kind") == "ReplicaSet":
                self._to_sync[("replicaset", namespace, owner["name"])] = None
            pods = [obj] if previous is None else [obj, previous]
            self._queue_services(namespace, (name for _, name in endpoints.services_selecting(self, pods)))
        elif resource == SERVICES:
            self._to_sync[("service", namespace, metadata["name"])] = None
        elif resource == NAMESPACES and previous is not None:  # a new Pod Security level may let pods in
            for rs in self.list(REPLICA_SETS, metadata["name"]):
                if (rs.get("status") or {}).get("replicas", 0) != rs["spec"].get("replicas", 1):
                    self._to_sync[("replicaset", metadata["name"], rs["metadata"]["name"])] = None

    def _queue_services(self, namespace: str, names: Iterator[str]) -> None:
        for name in names:
            self._to_sync[("service", namespace, name)] = None

    def _work_off(self) -> None:
        """Sync what is queued, and what that queues, when no write is in progress."""
        if self._depth:
            return
        self._depth += 1
        try:
            for _ in range(_MAX_SYNCS):
                if not self._to_sync:
                    return
                key = next(iter(self._to_sync))
                del self._to_sync[key]
                self._sync(key)
            raise RuntimeError(f"the sandbox's controllers did not settle after {_MAX_SYNCS} syncs")
        finally:
            self._depth -= 1

    def _sync(self, key: SyncKey) -> None:
        kind, namespace, name = key
        if kind == "service":
            endpoints.sync_service(self, namespace, name)
        elif kind == "deployment" and (deployment := self.get(DEPLOYMENTS, namespace, name)) is not None:
            workload_controllers.sync_deployment(self, deployment)
        elif kind == "replicaset" and (rs := self.get(REPLICA_SETS, namespace, name)) is not None:
            workload_controllers.sync_replica_set(self, rs)

    def _cluster_role_written(self, role: dict[str, Any]) -> None:
        """Aggregate again: the written role may be an aggregating one, or one they select (or selected)."""
        if self._in_aggregation:
            return  # aggregate_all's own writes: it passes again until nothing changes
        name = role["metadata"]["name"]
        if role.get("aggregationRule"):
            self._aggregating_roles.add(name)
        else:
            self._aggregating_roles.discard(name)
        self._in_aggregation = True
        try:
            aggregate_all(self, self._aggregating_roles)
        finally:
            self._in_aggregation = False

    def _fill_service_account_token(self, secret: dict[str, Any]) -> None:
        """The tokens controller: a legacy token Secret of an existing ServiceAccount gets its token."""
        metadata = secret["metadata"]
        annotations = metadata.get("annotations") or {}
        account_name = annotations.get(SERVICE_ACCOUNT_NAME)
        if secret.get("type") != LEGACY_TOKEN_TYPE or not account_name or (secret.get("data") or {}).get(
                "token"):
            return
        account = self.get(SERVICE_ACCOUNTS, metadata["namespace"], account_name)
        if account is None:
            return
        uid = account["metadata"]["uid"]
        if annotations.get(SERVICE_ACCOUNT_UID, uid) != uid:
            return  # meant for an earlier ServiceAccount of that name
        token = self._token_issuer.issue_legacy(metadata["namespace"], account_name, uid, metadata["name"])
        data = dict(secret.get("data") or {}, token=_b64(token), **{"ca.crt": _b64(self._ca_pem)},
                    namespace=_b64(metadata["namespace"]))
        self.update(SECRETS, dict(secret, data=data,
                                  metadata=dict(metadata, annotations=annotations | {SERVICE_ACCOUNT_UID: uid})))

    def _sign_certificate(self, request: dict[str, Any]) -> None:
        """The csrsigning controller: the certificate (or the Failed condition) of an approved request."""
        if self._certificate_signer is None:
            return
        status = self._certificate_signer.signed_status(request)
        if status is not None:
            self.update(CERTIFICATE_SIGNING_REQUESTS, dict(request, status=status))

    def _populate_namespace(self, namespace: str) -> None:
        """The namespace's `default` ServiceAccount and root CA ConfigMap, made or put back as they should be."""
        if self.get(SERVICE_ACCOUNTS, namespace, "default") is None:
            self.create(SERVICE_ACCOUNTS, prepare_create(SERVICE_ACCOUNTS, {
                "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": namespace}}))
        data, annotations = {"ca.crt": self._ca_pem}, {"kubernetes.io/description": _ROOT_CA_DESCRIPTION}
        root_ca = self.get(CONFIG_MAPS, namespace, ROOT_CA_CONFIG_MAP)
        if root_ca is None:
            self.create(CONFIG_MAPS, prepare_create(CONFIG_MAPS, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIG_MAP, "namespace": namespace, "annotations": annotations},
                "data": data}))
        else:
            kept = root_ca["metadata"].get("annotations") or {}
            if root_ca.get("data") != data or not annotations.items() <= kept.items():
                metadata = dict(root_ca["metadata"], annotations=kept | annotations)
                self.update(CONFIG_MAPS, dict(root_ca, data=data, metadata=metadata))
        if namespace == "default":
            self._publish_api_server()

    def _publish_api_server(self) -> None:
        """The `kubernetes` Service and Endpoints that kube-apiserver keeps in `default` (its controlplane
        controller), pointing at the control plane's address."""
        if self.get(SERVICES, "default", "kubernetes") is None:
            self.create(SERVICES, prepare_create(SERVICES, {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": API_SERVER_SERVICE_IP, "clusterIPs": [API_SERVER_SERVICE_IP],
                         "type": "ClusterIP", "sessionAffinity": "None",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": API_SERVER_PORT}]}}))
        if self.get(ENDPOINTS, "default", "kubernetes") is None:
            self.create(ENDPOINTS, prepare_create(ENDPOINTS, {
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                "subsets": [{"addresses": [{"ip": self._api_server_address}],
                             "ports": [{"name": "https", "port": API_SERVER_PORT, "protocol": "TCP"}]}]}))

    # Scheduling and the kubelet: called by Store.create for every created pod.

    def _start_pod(self, key: ObjectKey) -> None:
        _, namespace, name = key
        pending = self.get(PODS, namespace, name)
        assert pending is not None  # stored by create just before
        spec = pending.get("spec") or {}
        node = self.get(NODES, None, spec["nodeName"]) if spec.get("nodeName") else self._schedule(pending)
        if node is None:
            return
        bound = dict(pending, spec=dict(spec, nodeName=node["metadata"]["name"]))
        host_ip = _internal_ip(node)
        owner = controller_of(pending)
        if self.pod_start_seconds > 0 and owner is not None and owner.get("kind") == "ReplicaSet":
            self.update(PODS, dict(bound, status=_starting_pod_status(bound, now_timestamp(), host_ip)))
            asyncio.get_running_loop().call_later(self.pod_start_seconds, self._finish_start, key,
                                                  pending["metadata"]["uid"], host_ip)
            return
        pod_ip = host_ip if spec.get("hostNetwork") else next(self._pod_network_of(node["metadata"]["name"]))
        self.update(PODS, dict(bound, status=running_pod_status(bound, pod_ip, now_timestamp(), host_ip)))

    def _finish_start(self, key: ObjectKey, uid: str, host_ip: str) -> None:
        """The kubelet's status once the containers of a pod that was starting run (`pod_start_seconds` later),
        and its events for them; nothing for a pod deleted (or replaced by one of its name) meanwhile."""
        _, namespace, name = key
        pod = self.get(PODS, namespace, name)
        if pod is None or pod["metadata"]["uid"] != uid or (pod.get("status") or {}).get("phase") != "Pending":
            return
        spec = pod.get("spec") or {}
        pod_ip = host_ip if spec.get("hostNetwork") else next(self._pod_network_of(spec["nodeName"]))
        self.update(PODS, dict(pod, status=running_pod_status(pod, pod_ip, now_timestamp(), host_ip)))
        self._record_container_starts(_involved(pod), spec)

    def _schedule(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """The node the default scheduler binds `pod` to; None (and the pod marked Unschedulable) for none."""
        if (pod.get("spec") or {}).get("schedulerName", _SCHEDULER) != _SCHEDULER:
            return None  # no such scheduler runs: the pod waits, as on a real cluster
        nodes = self.list(NODES)
        failures = {node["metadata"]["name"]: filter_failure(pod, node) for node in nodes}
        chosen = choose((name for name, failure in failures.items() if failure is None), self.pods_per_node())
        if chosen is None:
            message = unschedulable_message([failure for failure in failures.values() if failure])
            condition = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                         "lastTransitionTime": now_timestamp(), "reason": "Unschedulable", "message": message}
            self.update(PODS, dict(pod, status=dict(pod.get("status") or {}, conditions=[condition])))
            return None
        return next(node for node in nodes if node["metadata"]["name"] == chosen)

    def _pod_network_of(self, node_name: str) -> Iterator[str]:
        """The node's pod IPs; a node registered later through the API gets the next free /24."""
        return self._pod_networks.setdefault(node_name, _pod_network(len(self._pod_networks)))

    def _record_pod_events(self, created: dict[str, Any]) -> None:
        """The scheduler's event, then each container's kubelet events, of a pod just created."""
        metadata = created["metadata"]
        pod = self.get(PODS, metadata["namespace"], metadata["name"])
        if pod is None:
            return
        spec = pod.get("spec") or {}
        involved = _involved(created)
        node_name = spec.get("nodeName")
        if not (created.get("spec") or {}).get("nodeName"):  # the scheduler took part
            if node_name:
                self._scheduler_event(involved, "Normal", "Scheduled", "Binding",
                                      f"Successfully assigned {involved['namespace']}/{involved['name']} "
                                      f"to {node_name}")
            elif (pod.get("status") or {}).get("conditions"):
                self._scheduler_event(involved, "Warning", "FailedScheduling", "Scheduling",
                                      pod["status"]["conditions"][0]["message"])
        if node_name and (pod.get("status") or {}).get("phase") == "Running":
            self._record_container_starts(involved, spec)

    def _record_container_starts(self, involved: dict[str, Any], spec: dict[str, Any]) -> None:
        """Each container's kubelet events (pulled, created, started) of a pod bound to spec.nodeName whose
        containers now run."""
        for list_name in ("initContainers", "containers"):
            for container in spec.get(list_name) or []:
                target = dict(involved, fieldPath=f"spec.{list_name}{{{container['name']}}}")
                for reason, message in _container_start(container):
                    self._kubelet_event(target, spec["nodeName"], reason, message)

    def _record_pod_stop(self, pod: dict[str, Any]) -> None:
        """The kubelet's `Killing` for each container of a deleted running pod: its containers, then its
        sidecars (init containers with restartPolicy Always) in reverse order, as the kubelet stops them."""
        spec, node_name = pod.get("spec") or {}, (pod.get("spec") or {}).get("nodeName")
        if not node_name or (pod.get("status") or {}).get("phase") != "Running":
            return
        sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        stopped = [*(("containers", c) for c in spec.get("containers") or []),
                   *(("initContainers", c) for c in reversed(sidecars))]
        for list_name, container in stopped:
            target = dict(_involved(pod), fieldPath=f"spec.{list_name}{{{container['name']}}}")
            self._kubelet_event(target, node_name, "Killing", f"Stopping container {container['name']}")

    def _scheduler_event(self, involved: dict[str, Any], kind: str, reason: str, action: str, message: str) -> None:
        """As the scheduler writes it (the events.k8s.io recorder): eventTime and action, no count or source."""
        self._write_event(involved, {
            "reason": reason, "message": message, "source": {}, "firstTimestamp": None, "lastTimestamp": None,
            "type": kind, "eventTime": _micro_time(), "action": action, "reportingComponent": _SCHEDULER,
            "reportingInstance": f"{_SCHEDULER}-{self._control_plane_host}"})

    def _kubelet_event(self, involved: dict[str, Any], node_name: str, reason: str, message: str) -> None:
        """As a kubelet writes it (the core/v1 recorder): source, first and last timestamps, a count."""
        now = now_timestamp()
        self._write_event(involved, {
            "reason": reason, "message": message, "source": {"component": "kubelet", "host": node_name},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": "Normal", "eventTime": None,
            "reportingComponent": "kubelet", "reportingInstance": node_name})

    def _write_event(self, involved: dict[str, Any], fields: dict[str, Any]) -> None:
        """Store the event; the same event again (same object, type, reason, message and source) counts on the
        stored one instead, as client-go's EventCorrelator deduplicates (count, lastTimestamp)."""
        key = (involved["namespace"], involved.get("kind"), involved.get("name"), involved.get("uid"),
               involved.get("fieldPath"), fields.get("type"), fields.get("reason"),
               fields.get("message"), (fields.get("source") or {}).get("component"))
        seen = self.get(EVENTS, involved["namespace"], self._event_keys[key]) if key in self._event_keys else None
        if seen is not None:
            self.update(EVENTS, dict(seen, count=(seen.get("count") or 1) + 1,
                                     lastTimestamp=fields.get("lastTimestamp") or now_timestamp()))
            return
        name = f"{involved['name']}.{next(self._event_names):x}"
        self._event_keys[key] = name
        event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": involved["namespace"]},
                 "involvedObject": involved, **fields}
        self.create(EVENTS, prepare_create(EVENTS, event))


def _status_written(obj: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    """Whether this change of `previous` into `obj` was of the status alone (or the revision annotation a
    Deployment's controller writes with it)."""
    if previous is None or obj.get("spec") != previous.get("spec"):
        return False
    def rest(metadata: dict[str, Any]) -> dict[str, Any]:
        annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                       if k != workload_controllers.REVISION}
        return {k: v for k, v in metadata.items() if k not in ("resourceVersion", "annotations")} | {
            "annotations": annotations}
    return rest(obj["metadata"]) == rest(previous["metadata"])


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _involved(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod as an event's involvedObject names it."""
    metadata = pod["metadata"]
    return {"kind": "Pod", "namespace": metadata["namespace"], "name": metadata["name"], "uid": metadata["uid"],
            "apiVersion": "v1", "resourceVersion": metadata["resourceVersion"]}


def _container_start(container: dict[str, Any]) -> list[tuple[str, str]]:
    """The kubelet's events for starting a container: the image (pulled or present), created, started."""
    image, name = container["image"], container["name"]
    if _pull_policy(container) == "Always":
        pulls = [("Pulling", f'Pulling image "{image}"'),
                 ("Pulled", f'Successfully pulled image "{image}" in 0s (0s including waiting). Image size: 0 bytes.')]
    else:
        pulls = [("Pulled", f'Container image "{image}" already present on machine')]
    return [*pulls, ("Created", f"Created container: {name}"), ("Started", f"Started container {name}")]


def _starting_pod_status(pod: dict[str, Any], now: str, host_ip: str) -> dict[str, Any]:
    """A bound pod whose containers are being created (image pull, start-up): Pending, not Ready, no pod IP."""
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    not_ready = f"containers with unready status: [{' '.join(containers)}]"
    conditions = [{"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": now,
                   **({"reason": "ContainersNotReady", "message": not_ready} if status == "False" else {})}
                  for kind, status in (("PodReadyToStartContainers", "False"), ("Initialized", "True"),
                                       ("Ready", "False"), ("ContainersReady", "False"), ("PodScheduled", "True"))]
    for condition in conditions[:1]:
        condition.pop("reason"), condition.pop("message")
    return {"phase": "Pending", "conditions": conditions, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
            "startTime": now, "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
            "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                                   "started": False, "restartCount": 0, "lastState": {},
                                   "state": {"waiting": {"reason": "ContainerCreating"}}}
                                  for c in (pod.get("spec") or {}).get("containers") or []]}


def _pull_policy(container: dict[str, Any]) -> str:
    """imagePullPolicy as the API server defaults it: Always for `:latest` or no tag, else IfNotPresent."""
    if container.get("imagePullPolicy"):
        return str(container["imagePullPolicy"])
    image = str(container["image"])
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _prepared(resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """prepare_create, keeping the status: a Node is registered with its status (nodeStrategy keeps it)."""
    return dict(prepare_create(resource, obj), status=obj["status"])


def _internal_ip(node: dict[str, Any]) -> str:
    addresses = (node.get("status") or {}).get("addresses") or []
    return next((a["address"] for a in addresses if a.get("type") == "InternalIP"), "")


def _pod_network(index: int) -> Iterator[str]:
    """10.244.INDEX.1 ... 10.244.INDEX.254, then again: the node's /24 of kind's 10.244.0.0/16."""
    for host in itertools.cycle(range(1, 255)):
        yield f"10.244.{index}.{host}"


def _micro_time() -> str:
    """metav1.MicroTime, as the API server writes it."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
