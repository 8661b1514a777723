"""The sandbox's Deployment, ReplicaSet and endpoints controllers, through the real `kubernetes` client, the
real `kubectl` and the real chaostoolkit-kubernetes actions.

What Kubernetes does, from kube-controller-manager 1.32: pkg/controller/deployment/sync.go (getNewReplicaSet:
`NAME-HASH`, the hash in labels, selector and template; scaleReplicaSet's "Scaled up/down replica set"),
pkg/controller/deployment/util/deployment_util.go (revisions; the Available and Progressing conditions),
pkg/controller/replicaset/replica_set.go (manageReplicas: pods `RS-XXXXX` owned by the ReplicaSet, a refused
create recorded as the FailedCreate event "Error creating: ..." and the ReplicaFailure condition),
pkg/controller/endpoint/endpoints_controller.go (syncService) and the garbage collector (dependents of a
deleted owner are deleted).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from chaosk8s.deployment.actions import scale_deployment
from chaosk8s.pod.actions import terminate_pods
from kubernetes import client, config

from chaoskirvis.sandbox.admission import ALLOWED, AdmissionChain, AdmissionRequest, AdmissionResult, Denial
from chaoskirvis.sandbox.controllers import ClusterStore
from chaoskirvis.sandbox.resources import ENDPOINTS, EVENTS, NAMESPACES, PODS, SERVICES
from chaoskirvis.sandbox.server import Sandbox
from chaoskirvis.sandbox.store import Store, prepare_create
from chaoskirvis.sandbox.workload_controllers import REPLICA_SETS

SAFE = "[bcdfghjklmnpqrstvwxz2456789]"  # k8s.io/apimachinery/pkg/util/rand's alphabet, of hashes and name suffixes


def deployment(name: str = "web", replicas: int = 2, image: str = "registry.k8s.io/pause:3.10",
               privileged: bool = False) -> dict:
    container = {"name": "app", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {"metadata": {"name": name, "labels": {"team": "a"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}}


def service(name: str = "web", target_port: int | str = "http") -> dict:
    return {"metadata": {"name": name, "labels": {"tier": "front"}},
            "spec": {"selector": {"app": name}, "ports": [{"name": "web", "port": 80, "targetPort": target_port}]}}


@pytest.fixture(scope="module")
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


def use_kubeconfig(monkeypatch: pytest.MonkeyPatch, kubeconfig: Path) -> None:
    """What `KUBECONFIG=PATH` set before the process started does for chaosk8s.create_k8s_api_client: it checks
    the variable, then load_kube_config reads the path kubernetes.config took from it at import. The default
    client configuration load_kube_config installs is put back after the test."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.setattr(client.Configuration, "_default", client.Configuration._default)


@pytest.fixture
def chaosk8s_env(sandbox, monkeypatch) -> None:
    use_kubeconfig(monkeypatch, sandbox.kubeconfig)


def owned_by(items: list, uid: str) -> list:
    return [item for item in items if any(ref.uid == uid for ref in item.metadata.owner_references or [])]


def test_a_deployment_gets_a_replica_set_named_by_its_template_hash_and_the_pods(apps, core, make_namespace):
    namespace = make_namespace()
    created = apps.create_namespaced_deployment(namespace, deployment(replicas=2))

    [rs] = apps.list_namespaced_replica_set(namespace).items
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert re.fullmatch(f"{SAFE}{{1,10}}", pod_hash)
    assert rs.metadata.name == f"web-{pod_hash}"
    [owner] = rs.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller, owner.block_owner_deletion) == (
        "Deployment", "web", created.metadata.uid, True, True)
    assert rs.spec.selector.match_labels == {"app": "web", "pod-template-hash": pod_hash}
    assert rs.spec.template.metadata.labels == {"app": "web", "pod-template-hash": pod_hash}
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert (rs.spec.replicas, rs.status.replicas, rs.status.ready_replicas, rs.status.available_replicas) == (
        2, 2, 2, 2)

    pods = core.list_namespaced_pod(namespace).items
    assert len(pods) == 2
    for pod in pods:
        assert re.fullmatch(f"web-{pod_hash}-{SAFE}{{5}}", pod.metadata.name)
        assert pod.metadata.labels == {"app": "web", "pod-template-hash": pod_hash}
        [pod_owner] = pod.metadata.owner_references
        assert (pod_owner.kind, pod_owner.uid, pod_owner.controller) == ("ReplicaSet", rs.metadata.uid, True)
        assert pod.status.phase == "Running"

    status = apps.read_namespaced_deployment(namespace=namespace, name="web").status
    assert (status.observed_generation, status.replicas, status.updated_replicas, status.ready_replicas,
            status.available_replicas, status.unavailable_replicas) == (1, 2, 2, 2, 2, None)
    assert [(c.type, c.status, c.reason) for c in status.conditions] == [
        ("Available", "True", "MinimumReplicasAvailable"), ("Progressing", "True", "NewReplicaSetAvailable")]
    assert status.conditions[1].message == f'ReplicaSet "web-{pod_hash}" has successfully progressed.'
    reasons = {(e.involved_object.kind, e.reason, e.message, e.source.component)
               for e in core.list_namespaced_event(namespace).items}
    assert ("Deployment", "ScalingReplicaSet", f"Scaled up replica set web-{pod_hash} from 0 to 2",
            "deployment-controller") in reasons
    assert {(kind, reason) for kind, reason, _, component in reasons if component == "replicaset-controller"} == {
        ("ReplicaSet", "SuccessfulCreate")}


def test_a_template_change_makes_a_new_replica_set_and_scales_the_old_to_zero_and_back(apps, core, make_namespace):
    namespace = make_namespace()
    apps.create_namespaced_deployment(namespace, deployment(replicas=1))
    [first] = apps.list_namespaced_replica_set(namespace).items

    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}}})

    by_name = {rs.metadata.name: rs for rs in apps.list_namespaced_replica_set(namespace).items}
    [second] = [rs for name, rs in by_name.items() if name != first.metadata.name]
    assert second.metadata.labels["pod-template-hash"] != first.metadata.labels["pod-template-hash"]
    assert (by_name[first.metadata.name].spec.replicas, second.spec.replicas) == (0, 1)
    assert second.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    [pod] = core.list_namespaced_pod(namespace).items
    assert pod.metadata.owner_references[0].uid == second.metadata.uid
    assert pod.spec.containers[0].image == "registry.k8s.io/pause:3.9"
    assert apps.read_namespaced_deployment("web", namespace).metadata.annotations[
        "deployment.kubernetes.io/revision"] == "2"

    # back to the first template: its ReplicaSet is reused (EqualIgnoreHash) with the next revision
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "registry.k8s.io/pause:3.10", "ports": [{"name": "http", "containerPort": 8080}]}]}}}})
    by_name = {rs.metadata.name: rs for rs in apps.list_namespaced_replica_set(namespace).items}
    assert len(by_name) == 2
    assert (by_name[first.metadata.name].spec.replicas, by_name[second.metadata.name].spec.replicas) == (1, 0)
    assert by_name[first.metadata.name].metadata.annotations["deployment.kubernetes.io/revision"] == "3"


def test_kubectl_scale_to_zero_empties_the_endpoints_and_back_fills_them(sandbox, kubectl, apps, core,
                                                                         make_namespace):
    namespace = make_namespace()
    core.create_namespaced_service(namespace, service())
    apps.create_namespaced_deployment(namespace, deployment(replicas=2))
    store = sandbox.sandbox._store  # noqa: SLF001 (the function the webhook caller uses; no API answers it)

    def listed() -> dict[str, list[dict]]:
        items = json.loads(kubectl("get", "rs,pods,endpoints", "-n", namespace, "-o", "json").stdout)["items"]
        return {kind: [i for i in items if i["kind"] == kind] for kind in ("ReplicaSet", "Pod", "Endpoints")}

    before = listed()
    [endpoints] = before["Endpoints"]
    assert endpoints["metadata"]["labels"] == {"tier": "front"}  # the Service's labels
    [subset] = endpoints["subsets"]
    assert subset["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]  # targetPort "http", resolved
    assert sorted(a["targetRef"]["name"] for a in subset["addresses"]) == sorted(
        p["metadata"]["name"] for p in before["Pod"])
    assert {a["ip"] for a in subset["addresses"]} == {p["status"]["podIP"] for p in before["Pod"]}
    assert store.has_ready_endpoint(namespace, "web") and store.has_ready_endpoint(namespace, "web", 80)
    assert not store.has_ready_endpoint(namespace, "web", 443)  # no such Service port

    assert kubectl("scale", "deployment", "web", "--replicas=0", "-n", namespace).stdout.strip() == \
        "deployment.apps/web scaled"
    empty = listed()
    assert empty["Pod"] == [] and [rs["spec"]["replicas"] for rs in empty["ReplicaSet"]] == [0]
    assert "subsets" not in empty["Endpoints"][0]
    assert not store.has_ready_endpoint(namespace, "web")
    status = apps.read_namespaced_deployment("web", namespace).status
    assert (status.replicas, status.ready_replicas, status.observed_generation) == (None, None, 2)

    kubectl("scale", "deployment", "web", "--replicas=2", "-n", namespace)
    again = listed()
    assert len(again["Pod"]) == 2 and len(again["Endpoints"][0]["subsets"][0]["addresses"]) == 2
    assert store.has_ready_endpoint(namespace, "web", 80)


def test_endpoints_follow_services_and_pods(sandbox, core, make_namespace):
    namespace = make_namespace()
    store = sandbox.sandbox._store  # noqa: SLF001
    core.create_namespaced_service(namespace, service("numbered", target_port=9000))
    core.create_namespaced_service(namespace, service("unnamed", target_port="metrics"))
    core.create_namespaced_service(namespace, {"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}})
    core.create_namespaced_endpoints(namespace, {"metadata": {"name": "manual"}, "subsets": [
        {"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]})
    for app in ("numbered", "unnamed"):
        core.create_namespaced_pod(namespace, {"metadata": {"name": f"{app}-pod", "labels": {"app": app}},
                                               "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})

    numbered = core.read_namespaced_endpoints("numbered", namespace)
    assert [(p.name, p.port) for p in numbered.subsets[0].ports] == [("web", 9000)]
    # a named targetPort no container declares: the pod is left out (podutil.FindPort fails)
    assert core.read_namespaced_endpoints("unnamed", namespace).subsets is None
    assert not store.has_ready_endpoint(namespace, "unnamed")
    # a Service without a selector: its Endpoints are the user's, left alone
    assert core.read_namespaced_endpoints("manual", namespace).subsets[0].addresses[0].ip == "192.0.2.1"

    core.patch_namespaced_pod("numbered-pod", namespace, {"metadata": {"labels": {"app": "elsewhere"}}})
    assert core.read_namespaced_endpoints("numbered", namespace).subsets is None
    core.delete_namespaced_service("numbered", namespace)
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_endpoints("numbered", namespace)
    assert gone.value.status == 404


def test_a_privileged_template_in_a_baseline_namespace_fails_to_create_pods(apps, core, make_namespace):
    namespace = make_namespace(enforce="baseline")
    apps.create_namespaced_deployment(namespace, deployment(replicas=2, privileged=True))

    assert core.list_namespaced_pod(namespace).items == []
    [rs] = apps.list_namespaced_replica_set(namespace).items
    [failure] = rs.status.conditions
    assert (failure.type, failure.status, failure.reason) == ("ReplicaFailure", "True", "FailedCreate")
    assert re.fullmatch(rf'pods "{rs.metadata.name}-{SAFE}{{5}}" is forbidden: violates PodSecurity "baseline:latest": '
                        r'privileged \(container "app" must not set securityContext.privileged=true\)', failure.message)
    assert (rs.status.replicas, rs.status.ready_replicas) == (0, None)
    events = [e for e in core.list_namespaced_event(namespace).items if e.reason == "FailedCreate"]
    # the controller tries again when something it watches changes (each try a new generated name, so a new
    # Event, as upstream records them): at least one, each the refusal of one of its pods
    assert events and {(e.type, e.involved_object.kind, e.involved_object.name, e.source.component)
                       for e in events} == {("Warning", "ReplicaSet", rs.metadata.name, "replicaset-controller")}
    assert f"Error creating: {failure.message}" in [e.message for e in events]
    available = {c.type: c for c in apps.read_namespaced_deployment("web", namespace).status.conditions}["Available"]
    assert (available.status, available.reason) == ("False", "MinimumReplicasUnavailable")

    # the namespace relaxed: the controller creates the pods and the condition goes
    core.patch_namespace(namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
    assert len(core.list_namespaced_pod(namespace).items) == 2
    assert apps.read_namespaced_replica_set(rs.metadata.name, namespace).status.conditions is None


def test_deleting_the_deployment_deletes_its_replica_sets_and_pods(apps, core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_service(namespace, service())
    apps.create_namespaced_deployment(namespace, deployment(replicas=2))
    assert len(core.list_namespaced_pod(namespace).items) == 2

    apps.delete_namespaced_deployment("web", namespace)

    assert apps.list_namespaced_replica_set(namespace).items == []
    assert core.list_namespaced_pod(namespace).items == []
    assert core.read_namespaced_endpoints("web", namespace).subsets is None  # the Service is still there


def test_deleting_a_replica_set_makes_the_deployment_create_it_again(apps, core, make_namespace):
    namespace = make_namespace()
    apps.create_namespaced_deployment(namespace, deployment(replicas=1))
    [rs] = apps.list_namespaced_replica_set(namespace).items

    apps.delete_namespaced_replica_set(rs.metadata.name, namespace)

    [again] = apps.list_namespaced_replica_set(namespace).items
    assert again.metadata.name == rs.metadata.name and again.metadata.uid != rs.metadata.uid
    [pod] = core.list_namespaced_pod(namespace).items
    assert pod.metadata.owner_references[0].uid == again.metadata.uid


def test_chaosk8s_scale_deployment_to_zero_and_back(sandbox, apps, core, make_namespace, chaosk8s_env):
    namespace = make_namespace()
    core.create_namespaced_service(namespace, service())
    apps.create_namespaced_deployment(namespace, deployment(replicas=2))
    store = sandbox.sandbox._store  # noqa: SLF001

    scale_deployment(name="web", replicas=0, ns=namespace)
    assert core.list_namespaced_pod(namespace).items == []
    assert not store.has_ready_endpoint(namespace, "web", 80)

    scale_deployment(name="web", replicas=2, ns=namespace)
    assert len(core.list_namespaced_pod(namespace).items) == 2
    assert store.has_ready_endpoint(namespace, "web", 80)
    assert apps.read_namespaced_deployment("web", namespace).status.available_replicas == 2


def test_chaosk8s_terminate_pods_gets_replacements_at_once_by_default(sandbox, apps, core, make_namespace,
                                                                     chaosk8s_env):
    namespace = make_namespace()
    core.create_namespaced_service(namespace, service())
    apps.create_namespaced_deployment(namespace, deployment(replicas=2))
    killed = {p.metadata.name for p in core.list_namespaced_pod(namespace).items}

    terminate_pods(label_selector="app=web", all=True, ns=namespace)

    pods = core.list_namespaced_pod(namespace).items
    assert len(pods) == 2 and not killed & {p.metadata.name for p in pods}
    assert all(p.status.phase == "Running" for p in pods)
    assert sandbox.sandbox._store.has_ready_endpoint(namespace, "web", 80)  # noqa: SLF001


@pytest.fixture(scope="module")
def slow_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    """A sandbox of its own whose ReplicaSet pods take 0.6 s to start."""
    with Sandbox(pod_start_seconds=0.6) as running:
        yield running, running.write_kubeconfig(tmp_path_factory.mktemp("slow") / "kubeconfig")


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.05)


def test_killing_the_pods_leaves_no_ready_endpoint_until_the_replacements_start(slow_start, monkeypatch):
    running, kubeconfig = slow_start
    use_kubeconfig(monkeypatch, kubeconfig)
    api = config.new_client_from_config(str(kubeconfig))
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": "engine"}})
    core.create_namespaced_service("engine", service())
    apps.create_namespaced_deployment("engine", deployment(replicas=1))
    store = running._store  # noqa: SLF001
    wait_for(lambda: store.has_ready_endpoint("engine", "web", 80))
    [first] = core.list_namespaced_pod("engine").items

    terminate_pods(label_selector="app=web", all=True, ns="engine")

    [replacement] = core.list_namespaced_pod("engine").items
    assert replacement.metadata.name != first.metadata.name
    assert replacement.status.phase == "Pending" and replacement.status.pod_ip is None
    assert replacement.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    assert not store.has_ready_endpoint("engine", "web", 80)
    available = {c.type: c for c in apps.read_namespaced_deployment("web", "engine").status.conditions}["Available"]
    assert available.status == "False"

    wait_for(lambda: store.has_ready_endpoint("engine", "web", 80))
    started = core.read_namespaced_pod(replacement.metadata.name, "engine")
    assert started.status.phase == "Running" and started.status.pod_ip
    assert apps.read_namespaced_deployment("web", "engine").status.available_replicas == 1
    # a bare pod (no ReplicaSet) starts at once, as before
    core.create_namespaced_pod("engine", {"metadata": {"name": "bare"},
                                          "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})
    assert core.read_namespaced_pod("bare", "engine").status.phase == "Running"


class RecordingAdmission:
    """An admission plugin that lets every request in and keeps it: who the API server would see create."""

    name = "Recording"

    def __init__(self) -> None:
        self.requests: list[AdmissionRequest] = []

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult:
        self.requests.append(request)
        return ALLOWED


class WaitingAdmission:
    """An admission plugin that answers a moment later, as a webhook call does: `answer` (allowed by default)."""

    name = "Waiting"

    def __init__(self, answer: AdmissionResult = ALLOWED) -> None:
        self.answer = answer
        self.calls = 0

    def admit(self, request: AdmissionRequest, store: Store) -> Awaitable[AdmissionResult]:
        self.calls += 1
        return self._later()

    async def _later(self) -> AdmissionResult:
        await asyncio.sleep(0.01)
        return self.answer


def _replica_set_manifest() -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "team"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}


def test_the_replica_set_controller_creates_pods_as_its_service_account():
    recording = RecordingAdmission()
    store = ClusterStore(b"CA", admission=AdmissionChain([recording]))
    store.create(NAMESPACES, prepare_create(NAMESPACES, {"metadata": {"name": "team"}}))
    store.create(REPLICA_SETS, prepare_create(REPLICA_SETS, _replica_set_manifest()))

    [request] = recording.requests
    assert (request.operation, request.resource.plural, request.namespace) == ("CREATE", "pods", "team")
    assert request.user == "system:serviceaccount:kube-system:replicaset-controller"
    assert "system:serviceaccounts:kube-system" in request.groups


def test_a_create_waiting_for_a_webhook_is_counted_until_answered_then_stored():
    async def scenario() -> None:
        waiting = WaitingAdmission()
        store = ClusterStore(b"CA", admission=AdmissionChain([waiting]))
        store.create(NAMESPACES, prepare_create(NAMESPACES, {"metadata": {"name": "team"}}))
        store.create(REPLICA_SETS, prepare_create(REPLICA_SETS, _replica_set_manifest()))
        rs = store.get(REPLICA_SETS, "team", "rs")
        store.update(REPLICA_SETS, dict(rs, metadata=dict(rs["metadata"], labels={"synced": "again"})))
        # that sync counted the create still in admission: no second pod asked for
        assert store.list(PODS, "team") == [] and waiting.calls == 1
        await asyncio.sleep(0.05)
        [pod] = store.list(PODS, "team")
        assert pod["metadata"]["ownerReferences"][0]["name"] == "rs"
        assert store.get(REPLICA_SETS, "team", "rs")["status"]["replicas"] == 1
        assert waiting.calls == 1

    asyncio.run(scenario())


def test_a_webhook_refusing_later_leaves_the_failed_create_and_no_pod():
    async def scenario() -> None:
        denial = AdmissionResult(denial=Denial(400, "BadRequest",
                                               'admission webhook "deny.example" denied the request'))
        store = ClusterStore(b"CA", admission=AdmissionChain([WaitingAdmission(denial)]))
        store.create(NAMESPACES, prepare_create(NAMESPACES, {"metadata": {"name": "team"}}))
        store.create(REPLICA_SETS, prepare_create(REPLICA_SETS, _replica_set_manifest()))
        await asyncio.sleep(0.05)
        assert store.list(PODS, "team") == []
        [condition] = store.get(REPLICA_SETS, "team", "rs")["status"]["conditions"]
        assert (condition["reason"], condition["message"]) == ("FailedCreate", denial.denial.message)
        [event] = [e for e in store.list(EVENTS, "team") if e["reason"] == "FailedCreate"]
        assert event["message"] == f"Error creating: {denial.denial.message}"

    asyncio.run(scenario())


def test_kubectl_rollout_status_history_and_undo_read_what_the_controllers_wrote(kubectl, apps, make_namespace):
    """kubectl's rollout status (observedGeneration, updated/available replicas), history and undo (the
    ReplicaSets' revision annotations, k8s.io/kubectl/pkg/polymorphichelpers) work on the controllers' output."""
    namespace = make_namespace()
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "-n", namespace)
    assert kubectl("rollout", "status", "deployment/web", "--timeout=5s", "-n", namespace).stdout == \
        'deployment "web" successfully rolled out\n'
    kubectl("set", "image", "deployment/web", "nginx=nginx:1.28", "-n", namespace)
    history = kubectl("rollout", "history", "deployment/web", "-n", namespace).stdout.split("\n")
    assert [line.split()[0] for line in history[2:] if line.strip()] == ["1", "2"]

    assert kubectl("rollout", "undo", "deployment/web", "-n", namespace).stdout == "deployment.apps/web rolled back\n"

    replica_sets = apps.list_namespaced_replica_set(namespace).items
    by_image = {rs.spec.template.spec.containers[0].image: rs for rs in replica_sets}
    assert len(replica_sets) == 2
    assert (by_image["nginx:1.27"].spec.replicas, by_image["nginx:1.28"].spec.replicas) == (2, 0)
    assert by_image["nginx:1.27"].metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    events = kubectl("get", "events", "-n", namespace, "--field-selector", "reason=ScalingReplicaSet",
                     "-o", "jsonpath={range .items[*]}{.count} {.message}{'\\n'}{end}").stdout.splitlines()
    first, second = by_image["nginx:1.27"].metadata.name, by_image["nginx:1.28"].metadata.name
    # a rolling update scales the new ReplicaSet up before the old one down (rolling.go); the undo's scale-up
    # repeats the first event, which client-go's EventCorrelator counts on the first Event (count 2)
    assert events == [f"2 Scaled up replica set {first} from 0 to 2", f"1 Scaled up replica set {second} from 0 to 2",
                      f"1 Scaled down replica set {first} from 2 to 0", f"1 Scaled down replica set {second} from 2 to 0"]


def test_a_recreate_deployment_scales_the_old_replica_set_down_first(apps, core, make_namespace):
    """recreate.go: the old ReplicaSets go to 0 before the new one is scaled up."""
    namespace = make_namespace()
    manifest = deployment(replicas=1)
    manifest["spec"]["strategy"] = {"type": "Recreate"}
    apps.create_namespaced_deployment(namespace, manifest)
    [first] = apps.list_namespaced_replica_set(namespace).items
    assert "deployment.kubernetes.io/max-replicas" not in first.metadata.annotations  # RollingUpdate's only

    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"metadata": {"labels": {"v": "2"}}}}})

    [second] = [rs for rs in apps.list_namespaced_replica_set(namespace).items if rs.metadata.uid != first.metadata.uid]
    messages = [e.message for e in core.list_namespaced_event(namespace).items if e.reason == "ScalingReplicaSet"]
    assert messages[1:] == [f"Scaled down replica set {first.metadata.name} from 1 to 0",
                            f"Scaled up replica set {second.metadata.name} from 0 to 1"]
    [pod] = core.list_namespaced_pod(namespace).items
    assert pod.metadata.labels["v"] == "2"


def test_a_replica_set_name_taken_by_another_is_a_hash_collision(apps, core, make_namespace):
    """sync.go getNewReplicaSet: the name NAME-HASH held by a ReplicaSet not of this Deployment raises
    status.collisionCount, which changes the hash."""
    namespace = make_namespace()
    apps.create_namespaced_deployment(namespace, deployment(replicas=1))
    [first] = apps.list_namespaced_replica_set(namespace).items
    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Orphan")  # the ReplicaSet stays

    apps.create_namespaced_deployment(namespace, deployment(replicas=1))

    status = apps.read_namespaced_deployment("web", namespace).status
    assert status.collision_count == 1
    names = {rs.metadata.name for rs in apps.list_namespaced_replica_set(namespace).items}
    assert first.metadata.name in names and len(names) == 2


def test_a_running_pod_that_is_not_ready_is_listed_under_not_ready_addresses():
    """endpoints_controller.go addEndpointSubset: a pod with an IP that is not Ready (a failing readiness
    probe, as its kubelet reports it) is under notReadyAddresses; a Succeeded one is not listed at all."""
    store = ClusterStore(b"CA")
    for namespace in ("kube-node-lease", "team"):
        store.create(NAMESPACES, prepare_create(NAMESPACES, {"metadata": {"name": namespace}}))
    store.register_nodes()  # pods get scheduled, and their IPs
    store.create(SERVICES, prepare_create(SERVICES, dict(service(target_port=8080), apiVersion="v1", kind="Service",
                                                         metadata={"name": "web", "namespace": "team"})))
    for name in ("probing", "done"):
        store.create(PODS, prepare_create(PODS, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "team", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}))
    for name, phase in (("probing", "Running"), ("done", "Succeeded")):
        pod = store.get(PODS, "team", name)
        conditions = [dict(c, status="False") if c["type"] in ("Ready", "ContainersReady") else c
                      for c in pod["status"]["conditions"]]
        store.update(PODS, dict(pod, status=dict(pod["status"], phase=phase, conditions=conditions)))

    [subset] = store.get(ENDPOINTS, "team", "web")["subsets"]
    assert "addresses" not in subset
    assert [a["targetRef"]["name"] for a in subset["notReadyAddresses"]] == ["probing"]
    assert not store.has_ready_endpoint("team", "web")


@pytest.fixture(scope="module")
def webhooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, client.ApiClient]]:
    """A sandbox of its own (controller pod creates go through the API's whole admission chain, webhooks
    included, as in every sandbox)."""
    with Sandbox() as running:
        yield running, config.new_client_from_config(str(running.write_kubeconfig(
            tmp_path_factory.mktemp("webhooked") / "kubeconfig")))


def test_a_policy_webhook_refuses_the_controllers_pods_and_fails_closed_when_down(webhooked):
    """The replicaset-controller's creates are admitted like any client's: the webhook's denial, then (the
    webhook down, failurePolicy Fail) the call's failure, end up in FailedCreate; allowed pods are stored
    once the webhook has answered."""
    from tests.webhook_server import WebhookServer

    running, api = webhooked
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": "team"}})

    def failure(name: str) -> str | None:
        [rs] = [rs for rs in apps.list_namespaced_replica_set("team").items if rs.metadata.name.startswith(name)]
        return next((c.message for c in rs.status.conditions or [] if c.type == "ReplicaFailure"), None)

    with WebhookServer() as hook:
        client.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(hook.validating_configuration(
            "deny-privileged.kirvis.test", webhook={"rules": [{"operations": ["CREATE"], "apiGroups": [""],
                                                               "apiVersions": ["v1"], "resources": ["pods"]}]}))
        apps.create_namespaced_deployment("team", deployment("risky", replicas=1, privileged=True))
        apps.create_namespaced_deployment("team", deployment("plain", replicas=1))
        wait_for(lambda: any(p.metadata.name.startswith("plain-") for p in core.list_namespaced_pod("team").items))
        wait_for(lambda: failure("risky-") is not None)
        assert "privileged containers are not allowed: app" in failure("risky-")
        assert [p.metadata.name.split("-")[0] for p in core.list_namespaced_pod("team").items] == ["plain"]
        assert [r["request"]["userInfo"]["username"] for r in hook.received][:2] == [
            "system:serviceaccount:kube-system:replicaset-controller"] * 2

    # the webhook is down and fails closed: the replacement of a killed pod is refused
    [plain] = core.list_namespaced_pod("team").items
    core.delete_namespaced_pod(plain.metadata.name, "team")
    wait_for(lambda: failure("plain-") is not None)
    assert 'failed calling webhook "deny-privileged.kirvis.test"' in failure("plain-")
    assert core.list_namespaced_pod("team").items == []
    assert not running._store.has_ready_endpoint("team", "plain")  # noqa: SLF001
