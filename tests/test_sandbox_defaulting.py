"""Objects as a real kube-apiserver 1.32 answers and stores them: defaulted, with non-omitempty fields
null, and pods changed by the ServiceAccount, Priority and DefaultTolerationSeconds admission plugins.

Every expected object is written from the Go code that makes it (named beside it: k8s.io/kubernetes
pkg/apis/*/v1/defaults.go, the registries, plugin/pkg/admission/*), and read back as raw JSON through
the real `kubernetes` client (`_preload_content=False`, so null and absent are told apart) or kubectl.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import uuid
from typing import Any

import pytest
from kubernetes import client

PAUSE = "registry.k8s.io/pause:3.10"
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def raw(response: Any) -> dict[str, Any]:
    return json.loads(response.data)


def created(call: Any, *args: Any) -> dict[str, Any]:
    """The body a create (or other call) answers, as JSON."""
    return raw(call(*args, _preload_content=False))


def denial(call: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(client.ApiException) as caught:
        call(*args)
    return caught.value.status, json.loads(caught.value.body)["message"]


def server_set(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without the metadata the server sets anyway (checked to be there), for comparison."""
    metadata = dict(obj["metadata"])
    assert re.fullmatch(r"[0-9a-f-]{36}", metadata.pop("uid"))
    assert metadata.pop("resourceVersion").isdigit()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", metadata.pop("creationTimestamp"))
    return dict(obj, metadata=metadata)


def token_volume_name(pod: dict[str, Any]) -> str:
    """The ServiceAccount plugin's generated name: kube-api-access- and five SimpleNameGenerator letters."""
    names = [v["name"] for v in pod["spec"].get("volumes") or [] if v["name"].startswith("kube-api-access-")]
    assert len(names) == 1 and re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", names[0])
    return names[0]


# What TokenVolumeSource (plugin/pkg/admission/serviceaccount) adds, and the two tolerations of
# DefaultTolerationSeconds (plugin/pkg/admission/defaulttolerationseconds).
def token_volume(name: str) -> dict[str, Any]:
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}


DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]

# SetDefaults_Container, with `resources: {}` (a struct: encoding/json never omits it).
CONTAINER_DEFAULTS = {"imagePullPolicy": "IfNotPresent", "resources": {},
                      "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
# SetDefaults_PodSpec: what pods and pod templates both get.
POD_SPEC_DEFAULTS = {"dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "securityContext": {}, "terminationGracePeriodSeconds": 30}


def test_a_minimal_pod_is_answered_and_stored_as_kube_apiserver_makes_it(core, make_namespace):
    namespace = make_namespace()
    pod = created(core.create_namespaced_pod, namespace,
                  {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": PAUSE}]}})
    volume = token_volume_name(pod)
    mount = {"name": volume, "readOnly": True, "mountPath": TOKEN_PATH}
    assert server_set(pod) == {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "containers": [{"name": "c", "image": PAUSE, **CONTAINER_DEFAULTS, "volumeMounts": [mount]}],
            **POD_SPEC_DEFAULTS,
            "enableServiceLinks": True,  # SetDefaults_Pod
            "serviceAccountName": "default", "serviceAccount": "default",  # ServiceAccount admission, v1 alias
            "volumes": [token_volume(volume)],
            "priority": 0, "preemptionPolicy": "PreemptLowerPriority",  # Priority admission, no default class
            "tolerations": DEFAULT_TOLERATIONS,
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"},  # podStrategy.PrepareForCreate
    }
    stored = raw(core.read_namespaced_pod("web", namespace, _preload_content=False))
    assert dict(stored["spec"], nodeName=None) == dict(pod["spec"], nodeName=None)  # then bound by the scheduler


@pytest.mark.parametrize(("image", "policy"), [
    ("nginx", "Always"),                      # no tag: ParseImageName says latest
    ("nginx:latest", "Always"),
    ("nginx:1.27", "IfNotPresent"),
    ("localhost:5000/team/app", "Always"),    # a registry port is no tag
    ("localhost:5000/team/app:v2", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),  # a digest and no tag: tag ""
    ("nginx:latest@sha256:" + "a" * 64, "Always"),
])
def test_image_pull_policy_follows_the_tag(core, make_namespace, image, policy):
    pod = created(core.create_namespaced_pod, make_namespace(),
                  {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": image}]}})
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_an_explicit_value_is_kept_and_never_defaulted_over(core, make_namespace):
    spec = {"containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Never",
                            "terminationMessagePolicy": "FallbackToLogsOnError"}],
            "restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0,
            "enableServiceLinks": False, "securityContext": {"runAsNonRoot": True}}
    pod = created(core.create_namespaced_pod, make_namespace(), {"metadata": {"name": "p"}, "spec": spec})
    container = pod["spec"]["containers"][0]
    assert (container["imagePullPolicy"], container["terminationMessagePolicy"]) == ("Never", "FallbackToLogsOnError")
    assert {k: pod["spec"][k] for k in ("restartPolicy", "dnsPolicy", "terminationGracePeriodSeconds",
                                        "enableServiceLinks", "securityContext")} == \
        {"restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0,
         "enableServiceLinks": False, "securityContext": {"runAsNonRoot": True}}


def test_nested_pod_fields_get_their_defaulters(core, make_namespace):
    """zz_generated.defaults.go's SetObjectDefaults_Pod: ports, env fieldRefs, probes, lifecycle hooks, volumes,
    and SetDefaults_Pod's requests from limits (hence a Guaranteed pod)."""
    probe_port = {"httpGet": {"port": 8080}}
    spec = {
        "containers": [{
            "name": "c", "image": PAUSE, "ports": [{"containerPort": 8080}],
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
            "livenessProbe": probe_port, "readinessProbe": {"grpc": {"port": 9090}},
            "startupProbe": {"exec": {"command": ["true"]}, "periodSeconds": 5},
            "lifecycle": {"preStop": {"httpGet": {"port": 80}}},
        }],
        "volumes": [{"name": "scratch"}, {"name": "host", "hostPath": {"path": "/data"}},
                    {"name": "secret", "secret": {"secretName": "s"}},
                    {"name": "config", "configMap": {"name": "c"}},
                    {"name": "info", "downwardAPI": {"items": [{"path": "n",
                                                                "fieldRef": {"fieldPath": "metadata.name"}}]}}],
        "automountServiceAccountToken": False,
    }
    pod = created(core.create_namespaced_pod, make_namespace(), {"metadata": {"name": "p"}, "spec": spec})
    container = pod["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["env"][0]["valueFrom"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}
    assert container["resources"] == {"limits": {"cpu": "500m", "memory": "128Mi"},
                                      "requests": {"cpu": "500m", "memory": "128Mi"}}
    thresholds = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert container["livenessProbe"] == {"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, **thresholds}
    assert container["readinessProbe"] == {"grpc": {"port": 9090, "service": ""}, **thresholds}
    assert container["startupProbe"] == {"exec": {"command": ["true"]}, **thresholds, "periodSeconds": 5}
    assert container["lifecycle"] == {"preStop": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}}}
    assert pod["spec"]["volumes"] == [
        {"name": "scratch", "emptyDir": {}},                           # SetDefaults_Volume
        {"name": "host", "hostPath": {"path": "/data", "type": ""}},   # HostPathUnset
        {"name": "secret", "secret": {"secretName": "s", "defaultMode": 420}},
        {"name": "config", "configMap": {"name": "c", "defaultMode": 420}},
        {"name": "info", "downwardAPI": {"defaultMode": 420, "items": [
            {"path": "n", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}]}},
    ]
    assert "serviceAccountName" in pod["spec"] and "volumeMounts" not in container  # automount refused
    assert pod["status"]["qosClass"] == "Guaranteed"


@pytest.mark.parametrize(("resources", "qos"), [
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}}, "Guaranteed"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
    ({"limits": {"cpu": "1"}}, "Burstable"),                    # memory has no limit
    ({"requests": {"ephemeral-storage": "1Gi"}}, "BestEffort"),  # only cpu and memory count
])
def test_qos_class_is_computed_as_get_pod_qos_does(core, make_namespace, resources, qos):
    namespace = make_namespace()
    pod = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": PAUSE, "resources": resources}]}})
    assert pod["status"]["qosClass"] == qos
    running = raw(core.read_namespaced_pod("p", namespace, _preload_content=False))
    assert (running["status"]["phase"], running["status"]["qosClass"]) == ("Running", qos)  # the kubelet keeps it


def test_host_network_pods_get_host_ports(core, make_namespace):
    pod = created(core.create_namespaced_pod, make_namespace(), {"metadata": {"name": "p"}, "spec": {
        "hostNetwork": True, "containers": [{"name": "c", "image": PAUSE, "ports": [{"containerPort": 9100}]}]}})
    assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 9100, "hostPort": 9100, "protocol": "TCP"}]


def test_empty_omitempty_fields_are_not_stored(core, make_namespace):
    """`HostPort int32 json:"hostPort,omitempty"`, `HostNetwork bool json:"hostNetwork,omitempty"`, ...: Go keeps
    a zero value as unset, so the pod a client or a policy reads has no such key."""
    pod = created(core.create_namespaced_pod, make_namespace(), {"metadata": {"name": "p"}, "spec": {
        "hostNetwork": False, "hostPID": False, "nodeSelector": {}, "tolerations": [], "priorityClassName": "",
        "containers": [{"name": "c", "image": PAUSE, "tty": False, "command": [], "workingDir": "",
                        "ports": [{"containerPort": 8000, "hostPort": 0, "name": ""}]}]}})
    for key in ("hostNetwork", "hostPID", "nodeSelector", "priorityClassName"):
        assert key not in pod["spec"]
    assert pod["spec"]["tolerations"] == DEFAULT_TOLERATIONS
    container = pod["spec"]["containers"][0]
    assert not {"tty", "command", "workingDir"} & container.keys()
    assert container["ports"] == [{"containerPort": 8000, "protocol": "TCP"}]


# ServiceAccount admission.

def test_a_missing_service_account_is_refused_and_the_default_one_is_not(core, make_namespace):
    namespace = make_namespace()
    spec = {"serviceAccountName": "robot", "containers": [{"name": "c", "image": PAUSE}]}
    assert denial(core.create_namespaced_pod, namespace, {"metadata": {"name": "p"}, "spec": spec}) == (
        403, f'pods "p" is forbidden: error looking up service account {namespace}/robot: '
             'serviceaccount "robot" not found')
    assert core.list_namespaced_pod(namespace).items == []
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "robot"}})
    pod = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "p"}, "spec": spec})
    assert (pod["spec"]["serviceAccountName"], pod["spec"]["serviceAccount"]) == ("robot", "robot")


def test_the_deprecated_service_account_field_names_the_account(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "legacy"}})
    pod = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "p"}, "spec": {
        "serviceAccount": "legacy", "containers": [{"name": "c", "image": PAUSE}]}})
    assert (pod["spec"]["serviceAccountName"], pod["spec"]["serviceAccount"]) == ("legacy", "legacy")


def test_the_token_is_mounted_in_every_container_unless_automount_is_off(core, make_namespace):
    namespace = make_namespace()
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "quiet"},
                                                       "automountServiceAccountToken": False,
                                                       "imagePullSecrets": [{"name": "registry"}]})
    containers = [{"name": "init", "image": PAUSE}], [{"name": "a", "image": PAUSE}, {
        "name": "b", "image": PAUSE, "volumeMounts": [{"name": "own", "mountPath": TOKEN_PATH}]}]
    spec = {"initContainers": containers[0], "containers": containers[1], "volumes": [{"name": "own"}]}
    pod = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "mounted"}, "spec": spec})
    volume = token_volume_name(pod)
    mount = {"name": volume, "readOnly": True, "mountPath": TOKEN_PATH}
    assert pod["spec"]["initContainers"][0]["volumeMounts"] == [mount]
    assert pod["spec"]["containers"][0]["volumeMounts"] == [mount]
    assert pod["spec"]["containers"][1]["volumeMounts"] == [{"name": "own", "mountPath": TOKEN_PATH}]  # its own
    assert pod["spec"]["volumes"] == [{"name": "own", "emptyDir": {}}, token_volume(volume)]

    by_account = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "by-account"}, "spec": {
        "serviceAccountName": "quiet", "containers": [{"name": "c", "image": PAUSE}]}})
    assert "volumes" not in by_account["spec"] and "volumeMounts" not in by_account["spec"]["containers"][0]
    assert by_account["spec"]["imagePullSecrets"] == [{"name": "registry"}]  # the account's
    overridden = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "by-pod"}, "spec": {
        "serviceAccountName": "quiet", "automountServiceAccountToken": True,
        "containers": [{"name": "c", "image": PAUSE}]}})
    token_volume_name(overridden)  # the pod's preference wins


# Priority and DefaultTolerationSeconds admission.

def test_priority_comes_from_the_priority_class(core, make_namespace):
    namespace = make_namespace()

    def pod(name: str, **spec: Any) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": PAUSE}], **spec}}

    critical = created(core.create_namespaced_pod, namespace, pod("critical", priorityClassName="system-node-critical"))
    assert (critical["spec"]["priority"], critical["spec"]["preemptionPolicy"]) == (2000001000, "PreemptLowerPriority")
    assert denial(core.create_namespaced_pod, namespace, pod("gold", priorityClassName="gold")) == (
        403, 'pods "gold" is forbidden: no PriorityClass with name gold was found')
    scheduling = client.SchedulingV1Api(core.api_client)
    scheduling.create_priority_class({"metadata": {"name": "gold"}, "value": 1000, "preemptionPolicy": "Never"})
    try:
        gold = created(core.create_namespaced_pod, namespace, pod("gold", priorityClassName="gold"))
    finally:
        scheduling.delete_priority_class("gold")
    assert (gold["spec"]["priority"], gold["spec"]["preemptionPolicy"]) == (1000, "Never")
    assert denial(core.create_namespaced_pod, namespace, pod("forged", priority=1000)) == (
        403, 'pods "forged" is forbidden: the integer value of priority (1000) must not be provided in pod spec; '
             'priority admission controller computed 0 from the given PriorityClass name')


def test_a_pod_that_tolerates_the_node_taints_gets_no_default_tolerations(core, make_namespace):
    namespace = make_namespace()
    everything = [{"operator": "Exists"}]  # empty key and effect: tolerates every taint
    pod = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "p"}, "spec": {
        "tolerations": everything, "containers": [{"name": "c", "image": PAUSE}]}})
    assert pod["spec"]["tolerations"] == everything
    own = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
           "tolerationSeconds": 6000}
    pod = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "q"}, "spec": {
        "tolerations": [own], "containers": [{"name": "c", "image": PAUSE}]}})
    assert pod["spec"]["tolerations"] == [own, DEFAULT_TOLERATIONS[0]]


# Workloads: the template gets SetDefaults_PodSpec (not SetDefaults_Pod, nor admission) and an embedded
# ObjectMeta whose unset creationTimestamp is encoded as null.

LABELS = {"app": "web"}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "c", "image": PAUSE}]}}
DEFAULTED_TEMPLATE = {"metadata": {"labels": LABELS, "creationTimestamp": None},
                      "spec": {"containers": [{"name": "c", "image": PAUSE, **CONTAINER_DEFAULTS}],
                               **POD_SPEC_DEFAULTS}}


@pytest.fixture(scope="module")
def apps(api):
    return client.AppsV1Api(api)


@pytest.fixture(scope="module")
def batch(api):
    return client.BatchV1Api(api)


def test_a_deployment_is_defaulted_as_set_defaults_deployment_does(apps, make_namespace):
    namespace = make_namespace()
    deployment = created(apps.create_namespaced_deployment, namespace, {
        "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}})
    assert server_set(deployment) == {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": namespace, "generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": LABELS}, "template": DEFAULTED_TEMPLATE,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                 "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
        "status": {},
    }
    # Every write is defaulted: a replacement without replicas stores 1 again, and a Recreate strategy
    # gets no rollingUpdate.
    replacement = dict(deployment, spec=dict(deployment["spec"], strategy={"type": "Recreate"}))
    del replacement["spec"]["replicas"]
    # the Deployment controller has written status since the create: replace without a resourceVersion
    replacement["metadata"] = {k: v for k, v in deployment["metadata"].items() if k != "resourceVersion"}
    replaced = created(apps.replace_namespaced_deployment, "web", namespace, replacement)
    assert replaced["spec"]["replicas"] == 1 and replaced["spec"]["strategy"] == {"type": "Recreate"}
    patched = created(apps.patch_namespaced_deployment, "web", namespace, {"spec": {"replicas": None}})
    assert patched["spec"]["replicas"] == 1


def test_stateful_daemon_and_replica_sets_are_defaulted(apps, make_namespace):
    namespace = make_namespace()
    base = {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "1Gi"}}}}
    stateful = created(apps.create_namespaced_stateful_set, namespace, {
        "metadata": {"name": "db"}, "spec": {**base, "serviceName": "db", "volumeClaimTemplates": [claim]}})
    assert stateful["spec"] == {  # SetDefaults_StatefulSet, SetDefaults_PersistentVolumeClaim(Spec)
        **base, "template": DEFAULTED_TEMPLATE, "serviceName": "db", "replicas": 1, "revisionHistoryLimit": 10,
        "podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate",
                                                                  "rollingUpdate": {"partition": 0}},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
        "volumeClaimTemplates": [{"metadata": {"name": "data", "creationTimestamp": None},
                                  "spec": {**claim["spec"], "volumeMode": "Filesystem"},
                                  "status": {"phase": "Pending"}}],
    }
    assert stateful["status"] == {"replicas": 0, "availableReplicas": 0}
    daemon = created(apps.create_namespaced_daemon_set, namespace, {"metadata": {"name": "agent"}, "spec": base})
    # SetDefaults_DaemonSet
    assert daemon["spec"] == {**base, "template": DEFAULTED_TEMPLATE, "revisionHistoryLimit": 10,
                              "updateStrategy": {"type": "RollingUpdate",
                                                 "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}
    assert daemon["status"] == {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                                "numberReady": 0}
    replica = created(apps.create_namespaced_replica_set, namespace, {"metadata": {"name": "rs"}, "spec": base})
    assert replica["spec"] == {**base, "template": DEFAULTED_TEMPLATE, "replicas": 1}
    assert replica["status"] == {"replicas": 0}


def test_a_job_gets_its_defaults_and_a_generated_selector(batch, make_namespace):
    namespace = make_namespace()
    job = created(batch.create_namespaced_job, namespace, {"metadata": {"name": "once"}, "spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": PAUSE}]}}}})
    uid = job["metadata"]["uid"]
    generated = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "once",
                 "controller-uid": uid, "job-name": "once"}
    assert job["metadata"]["labels"] == generated  # copied from the template when the stored Job is decoded
    assert job["spec"] == {  # SetDefaults_Job, then jobStrategy.PrepareForCreate's generateSelector
        "parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed", "suspend": False,
        "podReplacementPolicy": "TerminatingOrFailed",
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
        "template": {"metadata": {"labels": generated, "creationTimestamp": None},
                     "spec": {"containers": [{"name": "c", "image": PAUSE, **CONTAINER_DEFAULTS}],
                              **POD_SPEC_DEFAULTS, "restartPolicy": "Never"}},
    }
    assert job["status"] == {}


def test_a_cron_job_is_defaulted_but_its_job_template_gets_no_job_defaults(batch, make_namespace):
    cron = created(batch.create_namespaced_cron_job, make_namespace(), {"metadata": {"name": "nightly"}, "spec": {
        "schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": PAUSE}]}}}}}})
    assert cron["spec"] == {  # SetDefaults_CronJob
        "schedule": "0 3 * * *", "concurrencyPolicy": "Allow", "suspend": False, "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
        "jobTemplate": {"metadata": {"creationTimestamp": None}, "spec": {"template": {
            "metadata": {"creationTimestamp": None},
            "spec": {"containers": [{"name": "c", "image": PAUSE, **CONTAINER_DEFAULTS}], **POD_SPEC_DEFAULTS,
                     "restartPolicy": "OnFailure"}}}},
    }
    assert cron["status"] == {}


# Services: SetDefaults_Service, then the REST storage's allocator (alloc.go) on a single-stack IPv4 cluster.

def in_service_cidr(address: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network("10.96.0.0/12")


def test_a_cluster_ip_service_gets_an_address_and_keeps_it(core, make_namespace):
    namespace = make_namespace()
    service = created(core.create_namespaced_service, namespace, {"metadata": {"name": "web"}, "spec": {
        "selector": LABELS, "ports": [{"port": 80}, {"name": "alt", "port": 8080, "targetPort": "http"}]}})
    address = service["spec"]["clusterIP"]
    assert in_service_cidr(address)
    assert server_set(service) == {
        "kind": "Service", "apiVersion": "v1", "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": LABELS, "type": "ClusterIP", "sessionAffinity": "None",
                 "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
                           {"name": "alt", "port": 8080, "protocol": "TCP", "targetPort": "http"}],
                 "clusterIP": address, "clusterIPs": [address], "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
        "status": {"loadBalancer": {}},
    }
    replacement = dict(service, spec={k: v for k, v in service["spec"].items() if k not in ("clusterIP", "clusterIPs")})
    replaced = created(core.replace_namespaced_service, "web", namespace, replacement)
    assert (replaced["spec"]["clusterIP"], replaced["spec"]["clusterIPs"]) == (address, [address])


def test_node_port_headless_and_external_name_services(core, make_namespace):
    namespace = make_namespace()
    node_port = created(core.create_namespaced_service, namespace, {"metadata": {"name": "np"}, "spec": {
        "type": "NodePort", "selector": LABELS,
        "ports": [{"name": "tcp", "port": 53}, {"name": "udp", "port": 53, "protocol": "UDP"}]}})
    ports = node_port["spec"]["ports"]
    assert 30000 <= ports[0]["nodePort"] <= 32767 and ports[1]["nodePort"] == ports[0]["nodePort"]  # one per port
    assert node_port["spec"]["externalTrafficPolicy"] == "Cluster"
    balancer = created(core.create_namespaced_service, namespace, {"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": LABELS, "ports": [{"port": 443}]}})
    assert balancer["spec"]["allocateLoadBalancerNodePorts"] is True
    assert 30000 <= balancer["spec"]["healthCheckNodePort"] <= 32767
    headless = created(core.create_namespaced_service, namespace, {"metadata": {"name": "peers"}, "spec": {
        "clusterIP": "None", "ports": [{"port": 7000}]}})
    assert {k: headless["spec"][k] for k in ("clusterIP", "clusterIPs", "ipFamilyPolicy", "ipFamilies")} == {
        "clusterIP": "None", "clusterIPs": ["None"], "ipFamilyPolicy": "RequireDualStack",  # headless, selectorless
        "ipFamilies": ["IPv4", "IPv6"]}
    external = created(core.create_namespaced_service, namespace, {"metadata": {"name": "ext"}, "spec": {
        "type": "ExternalName", "externalName": "db.example.org"}})
    assert external["spec"] == {"type": "ExternalName", "externalName": "db.example.org", "sessionAffinity": "None"}


def test_the_allocators_hand_out_free_node_ports_and_cluster_ips(core, make_namespace):
    """400 NodePort Services in a band of 2,768 ports: random picks would clash (a birthday collision is all
    but certain past ~100); like the port and IP allocators, the sandbox picks free ones, so all are made."""
    namespace = make_namespace()
    services = [created(core.create_namespaced_service, namespace, {"metadata": {"name": f"np-{number}"}, "spec": {
        "type": "NodePort", "selector": LABELS, "ports": [{"port": 80}]}}) for number in range(400)]
    node_ports = [service["spec"]["ports"][0]["nodePort"] for service in services]
    cluster_ips = [service["spec"]["clusterIP"] for service in services]
    assert len(set(node_ports)) == len(set(cluster_ips)) == 400


# Other kinds.

def test_rbac_objects_have_null_rules_and_defaulted_api_groups(api, make_namespace):
    namespace = make_namespace()
    rbac = client.RbacAuthorizationV1Api(api)
    role = created(rbac.create_namespaced_role, namespace, {"metadata": {"name": "nothing"}})
    assert role["rules"] is None  # `Rules []PolicyRule json:"rules"`: no omitempty
    cluster_role = created(rbac.create_cluster_role, {"metadata": {"name": f"nothing-{uuid.uuid4().hex[:8]}"}})
    try:
        assert cluster_role["rules"] is None
    finally:
        rbac.delete_cluster_role(cluster_role["metadata"]["name"])
    binding = created(rbac.create_namespaced_role_binding, namespace, {
        "metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "nothing"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                     {"kind": "ServiceAccount", "name": "default", "namespace": namespace}]})
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "nothing"}
    assert binding["subjects"] == [  # SetDefaults_Subject
        {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "ServiceAccount", "name": "default", "namespace": namespace}]


def test_network_policy_secret_and_event_defaults(api, core, make_namespace):
    namespace = make_namespace()
    networking = client.NetworkingV1Api(api)
    policy = created(networking.create_namespaced_network_policy, namespace, {"metadata": {"name": "out"}, "spec": {
        "egress": [{"ports": [{"port": 53}]}]}})
    assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],  # SetDefaults_NetworkPolicy
                              "egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}]}
    ingress_only = created(networking.create_namespaced_network_policy, namespace, {"metadata": {"name": "in"}})
    assert ingress_only["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    secret = created(core.create_namespaced_secret, namespace, {"metadata": {"name": "s"}, "data": {}})
    assert secret["type"] == "Opaque"  # SetDefaults_Secret
    event = created(core.create_namespaced_event, namespace, {"metadata": {"name": "e"}, "reason": "Tested",
                                                              "involvedObject": {"kind": "Pod", "name": "p"}})
    assert {k: event[k] for k in ("source", "firstTimestamp", "lastTimestamp", "eventTime", "reportingComponent",
                                  "reportingInstance")} == {
        "source": {}, "firstTimestamp": None, "lastTimestamp": None, "eventTime": None,
        "reportingComponent": "", "reportingInstance": ""}


def test_a_policy_reads_the_defaults_a_real_cluster_would_show_it(sandbox, apps, make_namespace):
    """A ValidatingAdmissionPolicy that reads `spec.replicas` admits a Deployment that leaves it out, as a
    real API server does (it defaults before admission); without defaulting it errors, `no such key`."""
    namespace = make_namespace()
    name = f"replicas-{uuid.uuid4().hex[:8]}"
    sandbox.sandbox.apply(f"""\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  matchConstraints:
    resourceRules: [{{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}}]
  validations:
  - expression: "object.spec.replicas <= 3 && object.spec.template.spec.containers.all(c, c.imagePullPolicy != 'Never')"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {namespace}}}}}
""")
    admission = client.AdmissionregistrationV1Api(apps.api_client)
    try:
        body = {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": LABELS}, "template": TEMPLATE}}
        assert created(apps.create_namespaced_deployment, namespace, body)["spec"]["replicas"] == 1
        body = dict(body, metadata={"name": "big"}, spec=dict(body["spec"], replicas=5))
        status, message = denial(apps.create_namespaced_deployment, namespace, body)
        assert status == 422 and "denied request" in message
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def test_kubectl_shows_the_defaulted_pod(sandbox, make_namespace, tmp_path):
    namespace = make_namespace()
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: {namespace}}}\n"
                        "spec: {containers: [{name: c, image: nginx}]}\n")
    env = dict(os.environ, KUBECONFIG=str(sandbox.kubeconfig), KUBECACHEDIR=str(tmp_path / "cache"))
    subprocess.run(["kubectl", "create", "-f", str(manifest)], env=env, check=True, capture_output=True, timeout=60)
    shown = subprocess.run(["kubectl", "get", "pod", "p", "-n", namespace, "-o",
                            "jsonpath={.spec.containers[0].imagePullPolicy} {.spec.serviceAccountName} "
                            "{.spec.containers[0].volumeMounts[0].mountPath}"],
                           env=env, check=True, capture_output=True, text=True, timeout=60).stdout
    assert shown == f"Always default {TOKEN_PATH}"


def test_storage_scheduling_and_limit_kinds_are_defaulted(api, core, make_namespace):
    namespace = make_namespace()
    claim = created(core.create_namespaced_persistent_volume_claim, namespace, {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"] == {"phase": "Pending"}
    name = f"pv-{uuid.uuid4().hex[:8]}"
    volume = created(core.create_persistent_volume, {"metadata": {"name": name}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/srv"}}})
    core.delete_persistent_volume(name)
    assert {k: volume["spec"][k] for k in ("persistentVolumeReclaimPolicy", "volumeMode", "hostPath")} == {
        "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem", "hostPath": {"path": "/srv", "type": ""}}
    assert volume["status"] == {"phase": "Pending"}  # SetDefaults_PersistentVolume
    storage = client.StorageV1Api(api)
    storage_class = created(storage.create_storage_class, {"metadata": {"name": name}, "provisioner": "x.io/p"})
    storage.delete_storage_class(name)
    assert (storage_class["reclaimPolicy"], storage_class["volumeBindingMode"]) == ("Delete", "Immediate")
    scheduling = client.SchedulingV1Api(api)
    priority_class = created(scheduling.create_priority_class, {"metadata": {"name": name}, "value": 10})
    scheduling.delete_priority_class(name)
    assert priority_class["preemptionPolicy"] == "PreemptLowerPriority"  # SetDefaults_PriorityClass
    limits = created(core.create_namespaced_limit_range, namespace, {"metadata": {"name": "l"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}, "default": {"memory": "256Mi"}}]}})
    assert limits["spec"]["limits"][0] == {  # SetDefaults_LimitRangeItem
        "type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
        "default": {"cpu": "2", "memory": "256Mi"}, "defaultRequest": {"cpu": "2", "memory": "256Mi"}}
    endpoints = created(core.create_namespaced_endpoints, namespace, {"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 80}]}]})
    assert endpoints["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]


def test_admission_policies_store_their_defaults(api):
    admission = client.AdmissionregistrationV1Api(api)
    name = f"defaults-{uuid.uuid4().hex[:8]}"
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}
    policy = created(admission.create_validating_admission_policy, {"metadata": {"name": name}, "spec": {
        "matchConstraints": {"resourceRules": [rule]}, "validations": [{"expression": "true"}]}})
    binding = created(admission.create_validating_admission_policy_binding, {"metadata": {"name": name}, "spec": {
        "policyName": name, "validationActions": ["Audit"], "matchResources": {}}})
    admission.delete_validating_admission_policy_binding(name)
    admission.delete_validating_admission_policy(name)
    matched = {"matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {}}  # SetDefaults_MatchResources
    assert policy["spec"]["failurePolicy"] == "Fail"  # SetDefaults_ValidatingAdmissionPolicySpec
    assert policy["spec"]["matchConstraints"] == {"resourceRules": [{**rule, "scope": "*"}], **matched}  # and _Rule
    assert binding["spec"]["matchResources"] == matched


def test_a_disruption_budget_is_stored_with_its_zero_counters(api, make_namespace):
    policy = client.PolicyV1Api(api)
    budget = created(policy.create_namespaced_pod_disruption_budget, make_namespace(), {
        "metadata": {"name": "b"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": LABELS}}})
    # PodDisruptionBudgetStatus: four int32 fields without omitempty
    assert budget["status"] == {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}


def test_empty_omitempty_fields_of_other_structs_are_not_stored(api, core, apps, make_namespace):
    """VolumeMount.readOnly, Capabilities.drop, EnvVar.value, Probe.initialDelaySeconds, ServicePort.nodePort,
    ServiceSpec.externalIPs, DeploymentSpec.paused, PolicyRule.resourceNames: all `omitempty`, none pointers."""
    namespace = make_namespace()
    container = {"name": "c", "image": PAUSE, "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": False}],
                 "securityContext": {"capabilities": {"drop": []}}, "env": [{"name": "E", "value": ""}],
                 "livenessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 0}}
    pod = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "p"}, "spec": {
        "automountServiceAccountToken": False, "containers": [container], "volumes": [{"name": "v"}]}})
    stored = pod["spec"]["containers"][0]
    assert stored["volumeMounts"] == [{"name": "v", "mountPath": "/v"}]
    assert stored["securityContext"] == {"capabilities": {}} and stored["env"] == [{"name": "E"}]
    assert "initialDelaySeconds" not in stored["livenessProbe"]
    service = created(core.create_namespaced_service, namespace, {"metadata": {"name": "s"}, "spec": {
        "externalIPs": [], "ports": [{"port": 80, "nodePort": 0, "name": ""}]}})
    assert "externalIPs" not in service["spec"] and service["spec"]["ports"] == [
        {"port": 80, "protocol": "TCP", "targetPort": 80}]
    deployment = created(apps.create_namespaced_deployment, namespace, {"metadata": {"name": "d"}, "spec": {
        "paused": False, "minReadySeconds": 0, "selector": {"matchLabels": LABELS}, "template": TEMPLATE}})
    assert not {"paused", "minReadySeconds"} & deployment["spec"].keys()
    role = created(client.RbacAuthorizationV1Api(api).create_namespaced_role, namespace, {
        "metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "resourceNames": [],
                                              "verbs": ["get"]}]})
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]


def test_quantities_are_stored_in_canonical_form(core, make_namespace):
    """resource.Quantity is encoded canonically, resource lists rounded up to milli-units first
    (SetDefaults_ResourceList): 0.5 is 500m, 1024Mi is 1Gi, 1.5Gi is 1536Mi, 1000 is 1k, 0.0001 is 1m."""
    namespace = make_namespace()
    resources = {"limits": {"cpu": "0.5", "memory": "1024Mi", "ephemeral-storage": "1.5Gi"},
                 "requests": {"cpu": "0.0001", "memory": "1000"}}
    pod = created(core.create_namespaced_pod, namespace, {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": PAUSE, "resources": resources}],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "2048Mi"}}]}})
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1536Mi"},
        "requests": {"cpu": "1m", "memory": "1k", "ephemeral-storage": "1536Mi"}}  # the missing one from limits
    assert pod["spec"]["volumes"][0] == {"name": "scratch", "emptyDir": {"sizeLimit": "2Gi"}}
    claim = created(core.create_namespaced_persistent_volume_claim, namespace, {"metadata": {"name": "c"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1000Mi"}}}})
    assert claim["spec"]["resources"] == {"requests": {"storage": "1000Mi"}}


def test_the_allocators_refuse_an_address_out_of_range_or_taken(core, make_namespace):
    """ipallocator and portallocator (pkg/registry/core/service): 422 with their words."""
    namespace = make_namespace()
    first = created(core.create_namespaced_service, namespace, {"metadata": {"name": "first"}, "spec": {
        "type": "NodePort", "selector": LABELS, "ports": [{"port": 80}]}})
    address, node_port = first["spec"]["clusterIP"], first["spec"]["ports"][0]["nodePort"]

    def service(name: str, **spec: Any) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"selector": LABELS, "ports": [{"port": 80}], **spec}}

    assert denial(core.create_namespaced_service, namespace, service("outside", clusterIP="10.0.0.5")) == (
        422, 'Service "outside" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: failed to allocate '
             'IP 10.0.0.5: the provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is '
             '10.96.0.0/12')
    assert denial(core.create_namespaced_service, make_namespace(), service("twin", clusterIP=address)) == (
        422, f'Service "twin" is invalid: spec.clusterIPs: Invalid value: []string{{"{address}"}}: failed to '
             f'allocate IP {address}: provided IP is already allocated')
    status, message = denial(core.create_namespaced_service, namespace, service(
        "port-twin", type="NodePort", ports=[{"port": 81, "nodePort": node_port}]))
    assert (status, message) == (422, f'Service "port-twin" is invalid: spec.ports[0].nodePort: Invalid value: '
                                      f'{node_port}: provided port is already allocated')
    requested = created(core.create_namespaced_service, namespace, service("static", clusterIP="10.96.0.20"))
    assert requested["spec"]["clusterIPs"] == ["10.96.0.20"]
    first["spec"]["ports"][0]["name"] = "http"  # an update keeps its own address and port
    assert created(core.replace_namespaced_service, "first", namespace, first)["spec"]["clusterIP"] == address
