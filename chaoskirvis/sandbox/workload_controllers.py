"""The Deployment and ReplicaSet controllers of kube-controller-manager 1.32, as `ClusterStore` runs them.

Followed: pkg/controller/deployment (sync.go getNewReplicaSet / calculateStatus, progress.go, util/
deployment_util.go) and pkg/controller/replicaset (replica_set.go manageReplicas, replica_set_utils.go
calculateStatus). What differs, and why:

- The pod-template-hash is a stand-in: upstream hashes the Go struct printed by spew (DeepHashObject) with
  FNV-32a, which Python cannot reproduce from JSON; here FNV-32a of the template's canonical JSON (and the
  collisionCount), encoded as upstream encodes its hash (rand.SafeEncodeString of the decimal number). The
  names have upstream's shape (`web-5d8f9c7b6d`), not its values.
- A rollout ends at once: a template change creates (or reuses, EqualIgnoreHash) the new ReplicaSet at the
  full replica count and scales the old ones to 0 (Recreate semantics, for RollingUpdate too: the end state
  of a rolling update, without its steps). `paused` is not honoured; old ReplicaSets beyond
  revisionHistoryLimit are deleted, as cleanupDeployment does.
- Neither controller adopts orphans (pods or ReplicaSets matching the selector without a controller).
- The ReplicaSet controller creates pods through the cluster's admission (`Cluster.create_controller_pod`:
  what the API server does with the controller's create, as the replicaset-controller's service account)
  and stops at the first refusal (slowStartBatch's first batch is one pod): the ReplicaSet gets the
  ReplicaFailure condition (reason FailedCreate, the refusal's message) and a Warning `FailedCreate` event
  "Error creating: MESSAGE"; no pod is made. A create whose admission waits (a webhook call) is counted
  as made until it is answered (upstream's expectations), then stored or refused the same way. It tries
  again whenever the ReplicaSet's spec, one of its pods or its namespace changes (upstream retries with a
  rate-limited requeue; here a refusal alone does not bring a retry).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Protocol

from chaoskirvis.sandbox.resources import PODS, find_resource
from chaoskirvis.sandbox.selectors import label_selector_from_object
from chaoskirvis.sandbox.store import Page, now_timestamp, prepare_create

DEPLOYMENTS = find_resource("apps", "v1", "deployments")
REPLICA_SETS = find_resource("apps", "v1", "replicasets")
assert DEPLOYMENTS is not None and REPLICA_SETS is not None
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
DEPLOYMENT_CONTROLLER = "deployment-controller"
REPLICA_SET_CONTROLLER = "replicaset-controller"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand alphanums


class Cluster(Protocol):
    """What the controllers need of `ClusterStore`: its reads and writes, events, and pod admission."""

    def get(self, resource: Any, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    def select(self, resource: Any, namespace: str | None = None, labels: Any = None,
               where: Callable[[Any], bool] | None = None) -> Page: ...

    def create(self, resource: Any, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]: ...

    def update(self, resource: Any, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]: ...

    def delete(self, resource: Any, namespace: str | None, name: str) -> dict[str, Any]: ...

    def controller_event(self, resource: Any, obj: dict[str, Any], kind: str, reason: str, message: str,
                         component: str) -> None: ...

    def create_controller_pod(self, pod: dict[str, Any], owner: dict[str, Any]) -> str | None: ...

    def pods_in_admission(self, owner: dict[str, Any]) -> int: ...


def template_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """The pod-template-hash stand-in (see the module docstring): FNV-32a, SafeEncodeString'd."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += collision_count.to_bytes(4, "little")
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHABET[ord(char) % len(_SAFE_ALPHABET)] for char in str(value))


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with controller: true, if any."""
    return next((ref for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("controller")), None)


def owner_reference(owner: dict[str, Any], kind: str) -> dict[str, Any]:
    """How a controller names itself in what it creates (metav1.NewControllerRef)."""
    return {"apiVersion": "apps/v1", "kind": kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def controlled_by(cluster: Cluster, resource: Any, owner: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of `resource` in the owner's namespace whose controller is `owner`."""
    uid = owner["metadata"]["uid"]
    return cluster.select(resource, owner["metadata"]["namespace"],
                          where=lambda obj: any(ref.get("uid") == uid and ref.get("controller")
                                                for ref in obj["metadata"].get("ownerReferences") or [])).items


# The Deployment controller.

def sync_deployment(cluster: Cluster, deployment: dict[str, Any]) -> None:
    """Make the new ReplicaSet (or find it), scale it to spec.replicas and the old ones to 0, write status."""
    if deployment["metadata"].get("deletionTimestamp"):
        return
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    owned = controlled_by(cluster, REPLICA_SETS, deployment)
    template = spec.get("template") or {}
    new = next((rs for rs in owned if _without_hash(rs["spec"]["template"]) == template), None)
    old = [rs for rs in owned if rs is not new]
    newest_old = max((_revision(rs) for rs in old), default=0)
    conditions = list((deployment.get("status") or {}).get("conditions") or [])
    collision_count = (deployment.get("status") or {}).get("collisionCount")
    # Recreate (recreate.go) scales the old ReplicaSets to 0 first; a rolling update (rolling.go) last
    recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
    running_old = [rs for rs in old if rs["spec"].get("replicas", 0)]
    for rs in running_old if recreate else ():
        _scale(cluster, deployment, rs, 0)
    if new is None:
        new, collision_count = _create_replica_set(cluster, deployment, template, replicas, newest_old + 1)
        conditions = _set_condition(conditions, "Progressing", "True", "NewReplicaSetCreated",
                                    f'Created new replica set "{new["metadata"]["name"]}"')
        if replicas:
            cluster.controller_event(DEPLOYMENTS, deployment, "Normal", "ScalingReplicaSet",
                                     f"Scaled up replica set {new['metadata']['name']} from 0 to {replicas}",
                                     DEPLOYMENT_CONTROLLER)
    new = _scale(cluster, deployment, new, replicas, newest_old + 1 if _revision(new) <= newest_old else None)
    for rs in () if recreate else running_old:
        _scale(cluster, deployment, rs, 0)
    _clean_up(cluster, spec, controlled_by(cluster, REPLICA_SETS, deployment), new)
    _write_deployment_status(cluster, deployment, new, controlled_by(cluster, REPLICA_SETS, deployment), conditions,
                             collision_count)


def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    """EqualIgnoreHash: the ReplicaSet's template without the pod-template-hash label."""
    metadata = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != HASH_LABEL}
    if labels:
        metadata["labels"] = labels
    else:
        metadata.pop("labels", None)
    return dict(template, metadata=metadata) if metadata else {k: v for k, v in template.items() if k != "metadata"}


def _revision(rs: dict[str, Any]) -> int:
    value = (rs["metadata"].get("annotations") or {}).get(REVISION, "0")
    return int(value) if value.isdigit() else 0


def _surge_and_unavailable(spec: dict[str, Any], replicas: int) -> tuple[int, int]:
    """ResolveFenceposts of a RollingUpdate (surge rounded up, unavailable down, never both 0); 0, 0 for Recreate."""
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}

    def resolve(value: Any, round_up: bool) -> int:
        if isinstance(value, str) and value.endswith("%"):
            scaled = int(value[:-1]) * replicas / 100
            return math.ceil(scaled) if round_up else math.floor(scaled)
        return int(value)

    surge, unavailable = resolve(rolling.get("maxSurge", "25%"), True), resolve(rolling.get("maxUnavailable", "25%"),
                                                                                 False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def _replica_annotations(deployment: dict[str, Any], replicas: int) -> dict[str, str]:
    spec = deployment.get("spec") or {}
    surge, _ = _surge_and_unavailable(spec, replicas)
    annotations = {DESIRED_REPLICAS: str(replicas)}
    if (spec.get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
        annotations[MAX_REPLICAS] = str(replicas + surge)
    return annotations


def _create_replica_set(cluster: Cluster, deployment: dict[str, Any], template: dict[str, Any], replicas: int,
                        revision: int) -> tuple[dict[str, Any], int | None]:
    """getNewReplicaSet's create: `NAME-HASH`, the hash in its labels, selector and template labels. A name
    taken by a ReplicaSet that is not this one is a hash collision: collisionCount goes up and the hash with
    it (upstream stores the count and retries on the next sync). Returns it and the collisionCount."""
    metadata, spec = deployment["metadata"], deployment.get("spec") or {}
    collision_count = (deployment.get("status") or {}).get("collisionCount")
    template_metadata = dict(template.get("metadata") or {})
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()  # SkipCopyAnnotation
                   if k != "kubectl.kubernetes.io/last-applied-configuration"
                   and not k.startswith("deployment.kubernetes.io/")}
    while True:
        pod_hash = template_hash(template, collision_count)
        labels = dict(template_metadata.get("labels") or {}, **{HASH_LABEL: pod_hash})
        selector = dict(spec.get("selector") or {})
        selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{HASH_LABEL: pod_hash})
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{metadata['name']}-{pod_hash}", "namespace": metadata["namespace"],
                           "labels": labels, "ownerReferences": [owner_reference(deployment, "Deployment")],
                           "annotations": annotations | _replica_annotations(deployment, replicas)
                           | {REVISION: str(revision)}},
              "spec": {"replicas": replicas, "minReadySeconds": spec.get("minReadySeconds", 0), "selector": selector,
                       "template": dict(template, metadata=dict(template_metadata, labels=labels))}}
        if cluster.get(REPLICA_SETS, metadata["namespace"], rs["metadata"]["name"]) is None:
            return cluster.create(REPLICA_SETS, prepare_create(REPLICA_SETS, rs)), collision_count
        collision_count = (collision_count or 0) + 1


def _scale(cluster: Cluster, deployment: dict[str, Any], rs: dict[str, Any], replicas: int,
           revision: int | None = None) -> dict[str, Any]:
    """scaleReplicaSet: spec.replicas and the replica annotations (and the revision, for a reused one)."""
    before = rs["spec"].get("replicas", 0)
    annotations = dict(rs["metadata"].get("annotations") or {})
    wanted = annotations | _replica_annotations(deployment, int((deployment.get("spec") or {}).get("replicas", 1)))
    if revision is not None:
        wanted[REVISION] = str(revision)
    if before == replicas and wanted == annotations:
        return rs
    scaled = cluster.update(REPLICA_SETS, dict(rs, metadata=dict(rs["metadata"], annotations=wanted),
                                                spec=dict(rs["spec"], replicas=replicas)))
    if before != replicas:
        direction = "up" if replicas > before else "down"
        cluster.controller_event(DEPLOYMENTS, deployment, "Normal", "ScalingReplicaSet",
                                 f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {replicas}",
                                 DEPLOYMENT_CONTROLLER)
    return scaled


def _clean_up(cluster: Cluster, spec: dict[str, Any], owned: list[dict[str, Any]], new: dict[str, Any]) -> None:
    """cleanupDeployment: old ReplicaSets with no replicas beyond revisionHistoryLimit, oldest first."""
    limit = int(spec.get("revisionHistoryLimit", 10))
    idle = sorted((rs for rs in owned if rs["metadata"]["uid"] != new["metadata"]["uid"]
                   and not rs["spec"].get("replicas") and not (rs.get("status") or {}).get("replicas")),
                  key=_revision)
    for rs in idle[:max(len(idle) - limit, 0)]:
        cluster.delete(REPLICA_SETS, rs["metadata"]["namespace"], rs["metadata"]["name"])


def _write_deployment_status(cluster: Cluster, deployment: dict[str, Any], new: dict[str, Any],
                             owned: list[dict[str, Any]], conditions: list[dict[str, Any]],
                             collision_count: int | None) -> None:
    """calculateStatus and syncRolloutStatus: counts over the ReplicaSets, Available and Progressing."""
    current = cluster.get(DEPLOYMENTS, deployment["metadata"]["namespace"], deployment["metadata"]["name"])
    if current is None or current["metadata"]["uid"] != deployment["metadata"]["uid"]:
        return
    spec, status_of = current.get("spec") or {}, (lambda rs: rs.get("status") or {})
    new = next((rs for rs in owned if rs["metadata"]["uid"] == new["metadata"]["uid"]), new)
    wanted = int(spec.get("replicas", 1))
    total = sum(int(rs["spec"].get("replicas", 0)) for rs in owned)
    available = sum(int(status_of(rs).get("availableReplicas", 0)) for rs in owned)
    counts = {"replicas": sum(int(status_of(rs).get("replicas", 0)) for rs in owned),
              "updatedReplicas": int(status_of(new).get("replicas", 0)),
              "readyReplicas": sum(int(status_of(rs).get("readyReplicas", 0)) for rs in owned),
              "availableReplicas": available, "unavailableReplicas": max(total - available, 0)}
    _, max_unavailable = _surge_and_unavailable(spec, wanted)
    if available >= wanted - max_unavailable:
        conditions = _set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                                    "Deployment has minimum availability.")
    else:
        conditions = _set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                                    "Deployment does not have minimum availability.")
    rs_name = new["metadata"]["name"]
    complete = (counts["updatedReplicas"] == wanted and counts["replicas"] == wanted and available == wanted)
    if complete:
        conditions = _set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                                    f'ReplicaSet "{rs_name}" has successfully progressed.')
    elif not any(c["type"] == "Progressing" and c["reason"] == "NewReplicaSetCreated" for c in conditions):
        conditions = _set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                                    f'ReplicaSet "{rs_name}" is progressing.')
    status = {"observedGeneration": current["metadata"].get("generation", 1),
              **{key: value for key, value in counts.items() if value},  # every count is omitempty
              "conditions": conditions, **({"collisionCount": collision_count} if collision_count is not None else {})}
    annotations = dict(current["metadata"].get("annotations") or {}, **{REVISION: str(_revision(new))})
    if status != current.get("status") or annotations != current["metadata"].get("annotations"):
        cluster.update(DEPLOYMENTS, dict(current, status=status, metadata=dict(current["metadata"],
                                                                                 annotations=annotations)))


def _set_condition(conditions: list[dict[str, Any]], kind: str, status: str, reason: str,
                   message: str) -> list[dict[str, Any]]:
    """SetDeploymentCondition: unchanged when status and reason are; else replaced (moved to the end),
    keeping lastTransitionTime while the status is the same."""
    current = next((c for c in conditions if c["type"] == kind), None)
    if current is not None and current["status"] == status and current["reason"] == reason:
        return conditions
    now = now_timestamp()
    transition = current["lastTransitionTime"] if current is not None and current["status"] == status else now
    return [*(c for c in conditions if c["type"] != kind),
            {"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": transition,
             "reason": reason, "message": message}]


# The ReplicaSet controller.

def sync_replica_set(cluster: Cluster, rs: dict[str, Any]) -> None:
    """manageReplicas (create or delete pods to match spec.replicas), then the status."""
    if rs["metadata"].get("deletionTimestamp"):
        return
    replicas = int(rs["spec"].get("replicas", 1))
    pods = [pod for pod in controlled_by(cluster, PODS, rs) if _active(pod)]
    in_admission = cluster.pods_in_admission(rs)  # creates waiting for a webhook: upstream's expectations
    failure: str | None = None
    if len(pods) + in_admission < replicas:
        for _ in range(replicas - len(pods) - in_admission):
            failure = cluster.create_controller_pod(_pod_from_template(rs), rs)
            if failure is not None:
                cluster.controller_event(REPLICA_SETS, rs, "Warning", "FailedCreate", f"Error creating: {failure}",
                                         REPLICA_SET_CONTROLLER)
                break
    elif len(pods) > replicas:
        for pod in sorted(pods, key=_deletion_rank)[:len(pods) - replicas]:
            cluster.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
            cluster.controller_event(REPLICA_SETS, rs, "Normal", "SuccessfulDelete",
                                     f"Deleted pod: {pod['metadata']['name']}", REPLICA_SET_CONTROLLER)
    write_replica_set_status(cluster, rs, failure)


def pod_created(cluster: Cluster, rs: dict[str, Any], pod: dict[str, Any]) -> None:
    """The SuccessfulCreate event of a pod the controller made."""
    cluster.controller_event(REPLICA_SETS, rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                             REPLICA_SET_CONTROLLER)


def pod_refused(cluster: Cluster, rs: dict[str, Any], message: str) -> None:
    """A create refused after the sync that tried it (a webhook's late answer): the event and the condition."""
    cluster.controller_event(REPLICA_SETS, rs, "Warning", "FailedCreate", f"Error creating: {message}",
                             REPLICA_SET_CONTROLLER)
    write_replica_set_status(cluster, rs, message)


def _active(pod: dict[str, Any]) -> bool:
    """controller.FilterActivePods: not terminating, not Succeeded or Failed."""
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in (
        "Succeeded", "Failed")


def ready(pod: dict[str, Any]) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _deletion_rank(pod: dict[str, Any]) -> tuple[bool, bool, bool, str]:
    """ActivePods ordering, first to delete first: unassigned, then pending, then not ready, then newest."""
    status = pod.get("status") or {}
    created = pod["metadata"].get("creationTimestamp", "")
    newest_first = "".join(chr(0x10FFFF - ord(char)) for char in created)
    return bool((pod.get("spec") or {}).get("nodeName")), status.get("phase") == "Running", ready(pod), newest_first


def _pod_from_template(rs: dict[str, Any]) -> dict[str, Any]:
    """GetPodFromTemplate: generateName `RS-`, the template's labels, annotations and spec, owned by `rs`."""
    template = rs["spec"].get("template") or {}
    template_metadata = template.get("metadata") or {}
    metadata = {"generateName": f"{rs['metadata']['name']}-", "namespace": rs["metadata"]["namespace"],
                "ownerReferences": [owner_reference(rs, "ReplicaSet")]}
    for key in ("labels", "annotations", "finalizers"):
        if template_metadata.get(key):
            metadata[key] = template_metadata[key]
    return prepare_create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                                 "spec": template.get("spec") or {}})


def write_replica_set_status(cluster: Cluster, rs: dict[str, Any], failure: str | None) -> None:
    """calculateStatus: counts over the active pods, and ReplicaFailure while pod creation fails."""
    current = cluster.get(REPLICA_SETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
    if current is None or current["metadata"]["uid"] != rs["metadata"]["uid"]:
        return
    pods = [pod for pod in controlled_by(cluster, PODS, current) if _active(pod)]
    template_labels = ((current["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    labelled = label_selector_from_object({"matchLabels": template_labels})
    ready_pods = sum(1 for pod in pods if ready(pod))
    counts = {"fullyLabeledReplicas": sum(1 for pod in pods if labelled.matches(pod["metadata"].get("labels"))),
              "readyReplicas": ready_pods, "availableReplicas": ready_pods,  # minReadySeconds is not waited for
              "observedGeneration": current["metadata"].get("generation", 1)}
    conditions = list((current.get("status") or {}).get("conditions") or [])
    has_failure = any(c["type"] == "ReplicaFailure" for c in conditions)
    if failure is not None and not has_failure:
        conditions.append({"type": "ReplicaFailure", "status": "True", "lastTransitionTime": now_timestamp(),
                           "reason": "FailedCreate", "message": failure})
    elif failure is None and has_failure:
        conditions = [c for c in conditions if c["type"] != "ReplicaFailure"]
    status = {"replicas": len(pods), **{key: value for key, value in counts.items() if value},
              **({"conditions": conditions} if conditions else {})}
    if status != current.get("status"):
        cluster.update(REPLICA_SETS, dict(current, status=status))
