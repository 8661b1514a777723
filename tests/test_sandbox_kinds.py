"""What a real cluster always has, through real HTTP: nodes, namespace contents, events, the storage,
ingress and policy kinds. Expected values are kind 1.32's (`kubectl get nodes -o yaml`, the kubelet's and
the scheduler's event wording), not what the sandbox happens to return."""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client, config, watch

from chaoskirvis.sandbox.nodes import SandboxNode
from chaoskirvis.sandbox.server import Sandbox

PAUSE = "registry.k8s.io/pause:3.10"
CONTROL_PLANE, WORKER = "kirvis-control-plane", "kirvis-worker"
TOLERATE_CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture
def kubectl(sandbox, tmp_path):
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not on PATH"

    def run(*args: str) -> str:
        env = dict(os.environ, KUBECONFIG=str(sandbox.kubeconfig), KUBECACHEDIR=str(tmp_path / "cache"))
        result = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result.stdout
    return run


def request(sandbox: Sandbox, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """(status, JSON answer) of a raw HTTPS request as the sandbox admin: what a typed client would not send."""
    raw = urllib.request.Request(sandbox.url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {sandbox.admin_token}",
                                          "Content-Type": "application/json"})
    try:
        context = ssl.create_default_context(cafile=sandbox.ca_file)
        with urllib.request.urlopen(raw, timeout=10, context=context) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def pod(name: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "app", "image": PAUSE}], **spec}}


def events_of(core: client.CoreV1Api, namespace: str, pod_name: str) -> list[client.CoreV1Event]:
    return [e for e in core.list_namespaced_event(namespace).items if e.involved_object.name == pod_name]


def test_default_nodes_are_a_control_plane_and_a_worker_as_kind_registers_them(core):
    nodes = {node.metadata.name: node for node in core.list_node().items}
    assert list(nodes) == [CONTROL_PLANE, WORKER]
    control_plane, worker = nodes[CONTROL_PLANE], nodes[WORKER]
    assert control_plane.metadata.labels["node-role.kubernetes.io/control-plane"] == ""
    assert "node-role.kubernetes.io/control-plane" not in worker.metadata.labels
    assert [(t.key, t.effect, t.value) for t in control_plane.spec.taints] == [
        ("node-role.kubernetes.io/control-plane", "NoSchedule", None)]
    assert worker.spec.taints is None
    for name, node in nodes.items():
        labels = node.metadata.labels
        assert (labels["kubernetes.io/hostname"], labels["kubernetes.io/os"], labels["kubernetes.io/arch"]) == (
            name, "linux", "amd64")
        conditions = {c.type: (c.status, c.reason) for c in node.status.conditions}
        assert conditions["Ready"] == ("True", "KubeletReady")
        assert conditions["MemoryPressure"] == ("False", "KubeletHasSufficientMemory")
        addresses = {a.type: a.address for a in node.status.addresses}
        assert addresses["Hostname"] == name and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", addresses["InternalIP"])
        assert re.fullmatch(r"v1\.32\.\d+", node.status.node_info.kubelet_version)
        assert node.status.capacity["pods"] == node.status.allocatable["pods"] == "110"
    lease = client.CoordinationV1Api(core.api_client).read_namespaced_lease(WORKER, "kube-node-lease")
    assert (lease.spec.holder_identity, lease.spec.lease_duration_seconds) == (WORKER, 40)
    assert lease.metadata.owner_references[0].uid == worker.metadata.uid


def test_kubectl_get_nodes_and_nodes_are_cluster_scoped(kubectl, sandbox):
    assert kubectl("get", "no", "-o", "name").split() == [f"node/{CONTROL_PLANE}", f"node/{WORKER}"]
    table = kubectl("get", "nodes")  # kubectl's columns, from the server's Table
    assert re.search(rf"^{CONTROL_PLANE}\s+Ready\s+control-plane\s+\S+\s+v1\.32\.0$", table, re.MULTILINE)
    assert re.search(rf"^{WORKER}\s+Ready\s+<none>\s+\S+\s+v1\.32\.0$", table, re.MULTILINE)
    shown = json.loads(kubectl("get", "node", WORKER, "-o", "json"))
    assert (shown["kind"], shown["status"]["nodeInfo"]["operatingSystem"]) == ("Node", "linux")
    status, answer = request(sandbox.sandbox, "GET", "/api/v1/namespaces/default/nodes")
    assert (status, answer["reason"]) == (404, "NotFound")


def test_a_running_pod_is_bound_to_the_worker_with_its_host_ip(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, pod("web"))
    web = core.read_namespaced_pod("web", namespace)
    worker_ip = next(a.address for a in core.read_node(WORKER).status.addresses if a.type == "InternalIP")
    assert (web.status.phase, web.spec.node_name, web.status.host_ip) == ("Running", WORKER, worker_ip)
    assert [ip.ip for ip in web.status.host_ips] == [worker_ip]
    assert core.read_node(WORKER).spec.pod_cidr == "10.244.1.0/24"
    assert web.status.pod_ip.startswith("10.244.1.")
    listed = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={WORKER},metadata.namespace={namespace}")
    assert [p.metadata.name for p in listed.items] == ["web"]

    core.create_namespaced_pod(namespace, pod("host", hostNetwork=True))
    host = core.read_namespaced_pod("host", namespace)
    assert host.status.pod_ip == host.status.host_ip == worker_ip


def test_tolerations_node_selectors_and_affinity_decide_the_node(core, make_namespace):
    namespace = make_namespace()
    on_control_plane = {"kubernetes.io/hostname": CONTROL_PLANE}
    core.create_namespaced_pod(namespace, pod("tolerates", tolerations=[TOLERATE_CONTROL_PLANE],
                                              nodeSelector=on_control_plane))
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]}]}}}
    core.create_namespaced_pod(namespace, pod("affine", affinity=affinity, tolerations=[TOLERATE_CONTROL_PLANE]))
    core.create_namespaced_pod(namespace, pod("pinned", nodeName=CONTROL_PLANE))
    placed = {name: core.read_namespaced_pod(name, namespace) for name in ("tolerates", "affine", "pinned")}
    assert {name: (p.spec.node_name, p.status.phase) for name, p in placed.items()} == {
        "tolerates": (CONTROL_PLANE, "Running"), "affine": (WORKER, "Running"), "pinned": (CONTROL_PLANE, "Running")}
    # A pod that names its node skips the scheduler: the kubelet's events only.
    assert "Scheduled" not in {e.reason for e in events_of(core, namespace, "pinned")}
    assert "Scheduled" in {e.reason for e in events_of(core, namespace, "affine")}


def test_a_pod_no_node_accepts_stays_pending_with_the_schedulers_reasons(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, pod("nowhere", nodeSelector={"kubernetes.io/hostname": CONTROL_PLANE}))
    stuck = core.read_namespaced_pod("nowhere", namespace)
    assert (stuck.status.phase, stuck.spec.node_name, stuck.status.host_ip) == ("Pending", None, None)
    expected = ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had "
                "untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: "
                "2 Preemption is not helpful for scheduling.")
    [condition] = stuck.status.conditions
    assert (condition.type, condition.status, condition.reason, condition.message) == (
        "PodScheduled", "False", "Unschedulable", expected)
    [event] = events_of(core, namespace, "nowhere")
    assert (event.type, event.reason, event.message, event.reporting_component) == (
        "Warning", "FailedScheduling", expected, "default-scheduler")

    core.create_namespaced_pod(namespace, pod("ghost", nodeName="no-such-node"))
    ghost = core.read_namespaced_pod("ghost", namespace)
    assert (ghost.status.phase, ghost.spec.node_name) == ("Pending", "no-such-node")
    assert events_of(core, namespace, "ghost") == []


def test_scheduler_and_kubelet_events_of_a_started_pod(core, make_namespace):
    namespace = make_namespace()
    created = core.create_namespaced_pod(namespace, {"metadata": {"name": "web"}, "spec": {
        "initContainers": [{"name": "setup", "image": PAUSE}],
        "containers": [{"name": "app", "image": PAUSE}, {"name": "side", "image": "busybox"}]}})
    events = events_of(core, namespace, "web")
    assert [(e.reason, e.involved_object.field_path, e.message) for e in events] == [
        ("Scheduled", None, f"Successfully assigned {namespace}/web to {WORKER}"),
        ("Pulled", "spec.initContainers{setup}", f'Container image "{PAUSE}" already present on machine'),
        ("Created", "spec.initContainers{setup}", "Created container: setup"),
        ("Started", "spec.initContainers{setup}", "Started container setup"),
        ("Pulled", "spec.containers{app}", f'Container image "{PAUSE}" already present on machine'),
        ("Created", "spec.containers{app}", "Created container: app"),
        ("Started", "spec.containers{app}", "Started container app"),
        ("Pulling", "spec.containers{side}", 'Pulling image "busybox"'),  # no tag: imagePullPolicy Always
        ("Pulled", "spec.containers{side}",
         'Successfully pulled image "busybox" in 0s (0s including waiting). Image size: 0 bytes.'),
        ("Created", "spec.containers{side}", "Created container: side"),
        ("Started", "spec.containers{side}", "Started container side"),
    ]
    scheduled, pulled = events[0], events[1]
    assert (scheduled.type, scheduled.reporting_component, scheduled.action, scheduled.count) == (
        "Normal", "default-scheduler", "Binding", None)
    assert scheduled.event_time is not None and scheduled.first_timestamp is None
    assert (pulled.source.component, pulled.source.host, pulled.reporting_component, pulled.count) == (
        "kubelet", WORKER, "kubelet", 1)
    assert pulled.first_timestamp == pulled.last_timestamp is not None
    for event in events:
        assert (event.involved_object.kind, event.involved_object.uid, event.metadata.namespace) == (
            "Pod", created.metadata.uid, namespace)
        assert event.metadata.name.startswith("web.")
    assert core.list_namespaced_event(namespace, field_selector="reason=Scheduled").items[0].message.endswith(WORKER)


def test_deleting_a_running_pod_records_the_kubelet_stopping_its_containers(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_pod(namespace, {"metadata": {"name": "web"}, "spec": {
        "initContainers": [{"name": "setup", "image": PAUSE},
                           {"name": "proxy", "image": PAUSE, "restartPolicy": "Always"}],
        "containers": [{"name": "app", "image": PAUSE}]}})
    core.delete_namespaced_pod("web", namespace, dry_run="All")
    assert "Killing" not in {e.reason for e in events_of(core, namespace, "web")}
    core.delete_namespaced_pod("web", namespace)
    killing = [(e.involved_object.field_path, e.message, e.source.component, e.source.host)
               for e in events_of(core, namespace, "web") if e.reason == "Killing"]
    assert killing == [("spec.containers{app}", "Stopping container app", "kubelet", WORKER),
                       ("spec.initContainers{proxy}", "Stopping container proxy", "kubelet", WORKER)]


def test_a_watch_on_events_sees_them_and_kubectl_lists_them(core, make_namespace, kubectl):
    namespace = make_namespace()
    since = core.list_namespaced_event(namespace).metadata.resource_version
    core.create_namespaced_pod(namespace, pod("web"))
    stream = watch.Watch().stream(core.list_namespaced_event, namespace, resource_version=since, timeout_seconds=1)
    assert [(e["type"], e["object"].reason) for e in stream] == [
        ("ADDED", "Scheduled"), ("ADDED", "Pulled"), ("ADDED", "Created"), ("ADDED", "Started")]
    columns = "TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message"
    table = kubectl("get", "events", "-n", namespace, "-o", f"custom-columns={columns}")
    assert re.search(rf"Normal\s+Scheduled\s+web\s+Successfully assigned {namespace}/web to {WORKER}", table)
    assert re.search(r"Normal\s+Started\s+web\s+Started container app", table)
    table = kubectl("get", "events", "-n", namespace)
    assert re.search(rf"Normal\s+Scheduled\s+pod/web\s+Successfully assigned {namespace}/web to {WORKER}", table)
    listed = kubectl("events", "-n", namespace, "--for", "pod/web")  # kubectl's own table, sorted by time
    assert re.search(r"Normal\s+Pulled\s+Pod/web\s+Container image", listed)


def test_a_new_namespace_has_its_default_service_account_and_root_ca_at_once(sandbox, core, make_namespace):
    namespace = make_namespace()
    account = core.read_namespaced_service_account("default", namespace)
    root_ca = core.read_namespaced_config_map("kube-root-ca.crt", namespace)
    assert root_ca.data == {"ca.crt": sandbox.sandbox.ca_pem.decode()}
    assert "kubernetes.default.svc" in root_ca.metadata.annotations["kubernetes.io/description"]
    assert account.metadata.labels is None and root_ca.metadata.labels is None  # nobody's marks, ours least
    for initial in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert core.read_namespaced_service_account("default", initial).metadata.name == "default"
        assert core.read_namespaced_config_map("kube-root-ca.crt", initial).data["ca.crt"].startswith(
            "-----BEGIN CERTIFICATE-----")


def test_default_has_the_api_servers_kubernetes_service_and_endpoints(core, kubectl):
    service = core.read_namespaced_service("kubernetes", "default")
    assert (service.spec.type, service.spec.cluster_ip, service.metadata.labels) == (
        "ClusterIP", "10.96.0.1", {"component": "apiserver", "provider": "kubernetes"})
    assert [(p.name, p.port, p.protocol, p.target_port) for p in service.spec.ports] == [("https", 443, "TCP", 6443)]
    control_plane_ip = next(a.address for a in core.read_node(CONTROL_PLANE).status.addresses if a.type == "InternalIP")
    [subset] = core.read_namespaced_endpoints("kubernetes", "default").subsets
    assert ([a.ip for a in subset.addresses], [(p.name, p.port) for p in subset.ports]) == (
        [control_plane_ip], [("https", 6443)])
    assert "service/kubernetes" in kubectl("get", "svc", "-n", "default", "-o", "name").split()
    core.delete_namespaced_service("kubernetes", "default")  # the API server's controller makes it again
    assert core.read_namespaced_service("kubernetes", "default").spec.cluster_ip == "10.96.0.1"


def test_the_controllers_put_the_namespace_contents_back(sandbox, core, make_namespace):
    """The serviceaccount controller re-creates `default`; the root-ca-cert-publisher re-creates
    kube-root-ca.crt and puts back its data (on a real cluster, a moment later)."""
    namespace = make_namespace()
    first = core.read_namespaced_config_map("kube-root-ca.crt", namespace)
    core.delete_namespaced_config_map("kube-root-ca.crt", namespace)
    core.delete_namespaced_service_account("default", namespace)
    again = core.read_namespaced_config_map("kube-root-ca.crt", namespace)
    assert again.metadata.uid != first.metadata.uid and again.data == first.data
    assert core.read_namespaced_service_account("default", namespace).metadata.name == "default"

    forged = core.patch_namespaced_config_map("kube-root-ca.crt", namespace, {"data": {"ca.crt": "forged"},
                                                                               "metadata": {"labels": {"x": "y"}}})
    assert forged.data == {"ca.crt": "forged"}  # the write itself succeeds; the publisher then undoes it
    restored = core.read_namespaced_config_map("kube-root-ca.crt", namespace)
    assert restored.data == {"ca.crt": sandbox.sandbox.ca_pem.decode()} and restored.metadata.labels == {"x": "y"}
    core.delete_namespaced_config_map("kube-root-ca.crt", namespace, dry_run="All")
    assert core.read_namespaced_config_map("kube-root-ca.crt", namespace).metadata.uid == again.metadata.uid


def test_storage_ingress_and_policy_kinds_are_served(sandbox, core, api, make_namespace, kubectl):
    namespace = make_namespace()
    core.create_namespaced_persistent_volume_claim(namespace, {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    networking, policy = client.NetworkingV1Api(api), client.PolicyV1Api(api)
    networking.create_namespaced_ingress(namespace, {"metadata": {"name": "web"}, "spec": {"rules": [{"http": {
        "paths": [{"path": "/", "pathType": "Prefix",
                   "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    policy.create_namespaced_pod_disruption_budget(namespace, {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})
    client.CoordinationV1Api(api).create_namespaced_lease(namespace, {"metadata": {"name": "leader"},
                                                                      "spec": {"holderIdentity": "me"}})
    core.create_namespaced_limit_range(namespace, {"metadata": {"name": "limits"}, "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "500m"}}]}})
    core.create_namespaced_resource_quota(namespace, {"metadata": {"name": "quota"},
                                                      "spec": {"hard": {"pods": "10"}}})
    for short_name, name in (("pvc", "data"), ("ing", "web"), ("pdb", "web"), ("leases", "leader"),
                             ("limits", "limits"), ("quota", "quota")):
        assert kubectl("get", short_name, "-n", namespace, "-o", "name").strip().endswith(f"/{name}")
    deleted = core.delete_namespaced_persistent_volume_claim("data", namespace)
    assert deleted.kind == "PersistentVolumeClaim"  # as the PVC registry answers (ReturnDeletedObject)
    status, answer = request(sandbox.sandbox, "DELETE",
                             f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/web")
    assert (status, answer["kind"], answer["status"]) == (200, "Status", "Success")  # its registry answers a Status

    resources = kubectl("api-resources", "-o", "wide")
    for plural, short_name, api_version, namespaced, kind in (
            ("nodes", "no", "v1", "false", "Node"),
            ("persistentvolumeclaims", "pvc", "v1", "true", "PersistentVolumeClaim"),
            ("persistentvolumes", "pv", "v1", "false", "PersistentVolume"),
            ("endpoints", "ep", "v1", "true", "Endpoints"),
            ("ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"),
            ("poddisruptionbudgets", "pdb", "policy/v1", "true", "PodDisruptionBudget"),
            ("storageclasses", "sc", "storage.k8s.io/v1", "false", "StorageClass"),
            ("priorityclasses", "pc", "scheduling.k8s.io/v1", "false", "PriorityClass")):
        assert re.search(rf"^{plural}\s+{short_name}\s+{re.escape(api_version)}\s+{namespaced}\s+{kind}\s", resources,
                         re.MULTILINE), plural
    assert re.search(r"^leases\s+coordination\.k8s\.io/v1\s+true\s+Lease\s", resources, re.MULTILINE)
    assert re.search(r"^ingressclasses\s+networking\.k8s\.io/v1\s+false\s+IngressClass\s", resources, re.MULTILINE)


def test_pod_templates_of_replication_controllers_and_pod_templates_are_judged_like_the_others(core, kubectl,
                                                                                              make_namespace):
    namespace = make_namespace(enforce="restricted", warn="baseline")
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
        {"name": "app", "image": PAUSE, "securityContext": {"privileged": True}}]}}
    _, code, headers = core.create_namespaced_replication_controller_with_http_info(namespace, {
        "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "template": template}})
    assert code == 201 and headers["Warning"].startswith('299 - "would violate PodSecurity \\"baseline:latest\\"')
    _, code, headers = core.create_namespaced_pod_template_with_http_info(namespace, {
        "metadata": {"name": "web"}, "template": template})
    assert code == 201 and "would violate PodSecurity" in headers["Warning"]
    assert kubectl("get", "rc,podtemplates", "-n", namespace, "-o", "name").split() == [
        "replicationcontroller/web", "podtemplate/web"]
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_replication_controller(namespace, {"metadata": {"name": "once"}, "spec": {
            "selector": {"app": "web"},
            "template": dict(template, spec=dict(template["spec"], restartPolicy="Never"))}})
    assert json.loads(refused.value.body)["details"]["causes"][0] == {
        "reason": "FieldValueNotSupported", "field": "spec.template.spec.restartPolicy",
        "message": 'Unsupported value: "Never": supported values: "Always"'}


def test_the_api_servers_validation_of_claims_volumes_ingresses_and_classes(sandbox, core, api, make_namespace):
    namespace = make_namespace()

    def refused(create, *args) -> dict:
        with pytest.raises(client.ApiException) as error:
            create(*args)
        assert error.value.status == 422
        return json.loads(error.value.body)

    claim = refused(core.create_namespaced_persistent_volume_claim, namespace, {"metadata": {"name": "c"}, "spec": {}})
    assert claim["message"] == ('PersistentVolumeClaim "c" is invalid: [spec.accessModes: Required value: at least 1 '
                                'access mode is required, spec.resources[storage]: Required value]')
    volume = refused(core.create_persistent_volume, {"metadata": {"name": "v"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}})
    assert volume["message"] == 'PersistentVolume "v" is invalid: spec: Required value: must specify a volume type'
    bare = refused(core.create_persistent_volume, {"metadata": {"name": "v"}, "spec": {"hostPath": {"path": "/"}}})
    assert bare["message"] == ('PersistentVolume "v" is invalid: [spec.accessModes: Required value, spec.capacity: '
                               'Required value, spec.capacity: Unsupported value: core.ResourceList(nil): supported '
                               'values: "storage"]')
    networking = client.NetworkingV1Api(api)
    backend = {"service": {"name": "s", "port": {"number": 80}}}
    status, ingress = request(sandbox.sandbox, "POST", f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses", {
        "metadata": {"name": "i"},  # the typed client refuses to send it: pathType is required
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": backend}]}}]}})
    assert status == 422 and ingress["details"]["causes"] == [{
        "reason": "FieldValueRequired", "message": "Required value: pathType must be specified",
        "field": "spec.rules[0].http.paths[0].pathType"}]
    empty = refused(networking.create_namespaced_ingress, namespace, {"metadata": {"name": "i"}, "spec": {}})
    assert "either `defaultBackend` or `rules` must be specified" in empty["message"]
    ingress_class = refused(networking.create_ingress_class, {"metadata": {"name": "k"}, "spec": {}})
    assert ingress_class["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.controller"}]
    status, runtime_class = request(sandbox.sandbox, "POST", "/apis/node.k8s.io/v1/runtimeclasses",
                                    {"metadata": {"name": "gvisor"}, "handler": "runsc_v2"})
    assert (status, runtime_class["details"]["causes"][0]["field"]) == (422, "handler")
    assert runtime_class["details"]["causes"][0]["message"].startswith(
        'Invalid value: "runsc_v2": a lowercase RFC 1123 label must consist of')
    status, storage_class = request(sandbox.sandbox, "POST", "/apis/storage.k8s.io/v1/storageclasses",
                                    {"metadata": {"name": "s"}})  # the typed client requires a provisioner
    assert status == 422 and storage_class["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "provisioner"}]
    host_path = core.create_persistent_volume({"metadata": {"name": f"{namespace}-hostpath"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/"}}})
    assert core.delete_persistent_volume(host_path.metadata.name).kind == "PersistentVolume"


def test_node_taints_are_validated_and_kubectl_taint_and_cordon_work(core, kubectl):
    kubectl("taint", "node", WORKER, "dedicated=chaos:NoSchedule")
    kubectl("cordon", WORKER)
    try:
        worker = core.read_node(WORKER)
        assert [(t.key, t.value, t.effect) for t in worker.spec.taints] == [("dedicated", "chaos", "NoSchedule")]
        assert worker.spec.unschedulable is True
        assert core.list_node(field_selector="spec.unschedulable=true").items[0].metadata.name == WORKER
        with pytest.raises(client.ApiException) as refused:
            core.patch_node(WORKER, {"spec": {"taints": [{"key": "a", "effect": "Sometimes"},
                                                         {"key": "a", "effect": "Sometimes"}]}})
        assert refused.value.status == 422
        assert json.loads(refused.value.body)["message"] == (
            'Node "kirvis-worker" is invalid: [spec.taints[0].effect: Unsupported value: "Sometimes": supported '
            'values: "NoSchedule", "PreferNoSchedule", "NoExecute", spec.taints[1].effect: Unsupported value: '
            '"Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute", spec.taints[1]: '
            'Duplicate value: core.Taint{Key:"a", Value:"", Effect:"Sometimes", TimeAdded:(*v1.Time)(nil)}: '
            'taints must be unique by key and effect pair]')
    finally:
        kubectl("uncordon", WORKER)
        kubectl("taint", "node", WORKER, "dedicated-")
    assert core.read_node(WORKER).spec.taints is None


def test_the_node_set_is_configurable(tmp_path):
    nodes = (SandboxNode("edge-1", "192.0.2.10", labels={"zone": "edge"}),)
    with Sandbox(nodes=nodes) as sandbox:
        core = client.CoreV1Api(config.new_client_from_config(str(sandbox.write_kubeconfig(tmp_path / "kubeconfig"))))
        assert [n.metadata.name for n in core.list_node().items] == ["edge-1"]
        assert core.read_node("edge-1").metadata.labels["zone"] == "edge"
        core.create_namespaced_pod("default", pod("web"))
        web = core.read_namespaced_pod("web", "default")
        assert (web.spec.node_name, web.status.host_ip, web.status.pod_ip.startswith("10.244.0.")) == (
            "edge-1", "192.0.2.10", True)
    with Sandbox(nodes=()) as empty:
        core = client.CoreV1Api(config.new_client_from_config(str(empty.write_kubeconfig(tmp_path / "empty"))))
        core.create_namespaced_pod("default", pod("web"))
        assert core.read_namespaced_pod("web", "default").status.conditions[0].message == \
            "no nodes available to schedule pods"
