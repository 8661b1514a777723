"""Request bodies in Kubernetes protobuf (`application/vnd.kubernetes.protobuf`), decoded to JSON objects.

kubectl's typed clients send their objects as protobuf: every `kubectl create namespace|configmap|secret|
deployment|serviceaccount|role|rolebinding|clusterrole|clusterrolebinding|job|cronjob|service|quota|
priorityclass|poddisruptionbudget|ingress` and every
`kubectl auth can-i` (a SelfSubjectAccessReview, or with --list a SelfSubjectRulesReview), `kubectl create
token` (a TokenRequest) and `kubectl certificate approve|deny` (a CertificateSigningRequest), and
client-go does not fall back to JSON when a server answers 415. The envelope is the API server's: the
magic ``k8s\\x00``, then a runtime.Unknown message (1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3
contentEncoding, 4 contentType) whose raw is the object's message, numbered as in k8s.io/api's
generated.proto files.

`MESSAGES` models the messages of those objects, field by field (number, JSON name, type). Go's gogo
encoding writes every non-pointer field, zero or not, and a pointer field only when it is set; JSON
leaves out the zero value of an `omitempty` field. So a zero scalar of a non-pointer field is dropped
and a pointer field (`optional=True` here: `*int32`, `*bool`, `*string`) keeps its zero, as a JSON
client would have sent it (`replicas: 0` stays 0). A field the table does not model is refused
(`ProtobufError`): the sandbox never guesses what a field number means.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from typing import Any

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

STRING, INT, BOOL, BYTES, TIME, QUANTITY, INT_OR_STRING = "string", "int", "bool", "bytes", "time", "quantity", \
    "intorstring"
STRINGS = "strings"  # a message {1 repeated string} that JSON writes as the list itself (ExtraValue)
_SCALARS = (STRING, INT, BOOL, BYTES)


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # a scalar above, TIME/QUANTITY/INT_OR_STRING, or a message name in MESSAGES
    repeated: bool = False
    optional: bool = False  # a Go pointer: written (and kept) even when zero
    map_of: str | None = None  # map<string, map_of>: repeated entries {1 key, 2 value}
    null_when_empty: bool = False  # a list JSON writes even when empty (no omitempty): null
    inline: bool = False  # an embedded struct JSON writes inline (`json:",inline"`): its fields join the parent's


def _f(name: str, type_: str = STRING, **options: Any) -> Field:
    return Field(name, type_, **options)


def _list(name: str, type_: str = STRING, null_when_empty: bool = False) -> Field:
    return Field(name, type_, repeated=True, null_when_empty=null_when_empty)


def _map(name: str, value: str = STRING) -> Field:
    return Field(name, "map", map_of=value)


def _ptr(name: str, type_: str) -> Field:
    return Field(name, type_, optional=True)


_OBJECT = {1: _f("metadata", "ObjectMeta")}

MESSAGES: dict[str, dict[int, Field]] = {
    # k8s.io/apimachinery/pkg/apis/meta/v1
    "ObjectMeta": {1: _f("name"), 2: _f("generateName"), 3: _f("namespace"), 4: _f("selfLink"), 5: _f("uid"),
                   6: _f("resourceVersion"), 7: _f("generation", INT), 8: _f("creationTimestamp", TIME),
                   9: _ptr("deletionTimestamp", TIME), 10: _ptr("deletionGracePeriodSeconds", INT),
                   11: _map("labels"), 12: _map("annotations"), 13: _list("ownerReferences", "OwnerReference"),
                   14: _list("finalizers")},
    "OwnerReference": {1: _f("kind"), 3: _f("name"), 4: _f("uid"), 5: _f("apiVersion"),
                       6: _ptr("controller", BOOL), 7: _ptr("blockOwnerDeletion", BOOL)},
    "LabelSelector": {1: _map("matchLabels"), 2: _list("matchExpressions", "LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: _f("key"), 2: _f("operator"), 3: _list("values")},
    # k8s.io/api/core/v1
    "Namespace": _OBJECT | {2: _f("spec", "NamespaceSpec"), 3: _f("status", "NamespaceStatus")},
    "NamespaceSpec": {1: _list("finalizers")},
    "NamespaceStatus": {1: _f("phase")},
    "ConfigMap": _OBJECT | {2: _map("data"), 3: _map("binaryData", BYTES), 4: _ptr("immutable", BOOL)},
    "Secret": _OBJECT | {2: _map("data", BYTES), 3: _f("type"), 4: _map("stringData"), 5: _ptr("immutable", BOOL)},
    "ServiceAccount": _OBJECT | {2: _list("secrets", "ObjectReference"),
                                 3: _list("imagePullSecrets", "LocalObjectReference"),
                                 4: _ptr("automountServiceAccountToken", BOOL)},
    "ObjectReference": {1: _f("kind"), 2: _f("namespace"), 3: _f("name"), 4: _f("uid"), 5: _f("apiVersion"),
                        6: _f("resourceVersion"), 7: _f("fieldPath")},
    "LocalObjectReference": {1: _f("name")},
    "Service": _OBJECT | {2: _f("spec", "ServiceSpec"), 3: _f("status", "ServiceStatus")},
    "ServiceSpec": {1: _list("ports", "ServicePort"), 2: _map("selector"), 3: _f("clusterIP"), 4: _f("type"),
                    5: _list("externalIPs"), 7: _f("sessionAffinity"), 8: _f("loadBalancerIP"),
                    9: _list("loadBalancerSourceRanges"), 10: _f("externalName"), 11: _f("externalTrafficPolicy"),
                    12: _f("healthCheckNodePort", INT), 13: _f("publishNotReadyAddresses", BOOL)},
    "ServicePort": {1: _f("name"), 2: _f("protocol"), 3: _f("port", INT), 4: _f("targetPort", INT_OR_STRING),
                    5: _f("nodePort", INT), 6: _ptr("appProtocol", STRING)},
    "ServiceStatus": {1: _f("loadBalancer", "LoadBalancerStatus")},
    "LoadBalancerStatus": {},
    "PodTemplateSpec": _OBJECT | {2: _f("spec", "PodSpec")},
    "PodSpec": {2: _list("containers", "Container"), 3: _f("restartPolicy"),
                4: _ptr("terminationGracePeriodSeconds", INT), 5: _ptr("activeDeadlineSeconds", INT),
                6: _f("dnsPolicy"), 7: _map("nodeSelector"), 8: _f("serviceAccountName"), 9: _f("serviceAccount"),
                10: _f("nodeName"), 11: _f("hostNetwork", BOOL), 12: _f("hostPID", BOOL), 13: _f("hostIPC", BOOL),
                14: _ptr("securityContext", "PodSecurityContext"),
                15: _list("imagePullSecrets", "LocalObjectReference"), 16: _f("hostname"), 17: _f("subdomain"),
                19: _f("schedulerName"), 20: _list("initContainers", "Container"),
                21: _ptr("automountServiceAccountToken", BOOL), 24: _f("priorityClassName")},
    "Container": {1: _f("name"), 2: _f("image"), 3: _list("command"), 4: _list("args"), 5: _f("workingDir"),
                  6: _list("ports", "ContainerPort"), 7: _list("env", "EnvVar"),
                  8: _f("resources", "ResourceRequirements"), 13: _f("terminationMessagePath"),
                  14: _f("imagePullPolicy"), 16: _f("stdin", BOOL), 17: _f("stdinOnce", BOOL), 18: _f("tty", BOOL),
                  20: _f("terminationMessagePolicy")},
    "PodSecurityContext": {},  # as defaulting leaves it: an empty one
    "ResourceQuota": _OBJECT | {2: _f("spec", "ResourceQuotaSpec"), 3: _f("status", "ResourceQuotaStatus")},
    "ResourceQuotaSpec": {1: _map("hard", QUANTITY), 2: _list("scopes")},
    "ResourceQuotaStatus": {1: _map("hard", QUANTITY), 2: _map("used", QUANTITY)},
    "ContainerPort": {1: _f("name"), 2: _f("hostPort", INT), 3: _f("containerPort", INT), 4: _f("protocol"),
                      5: _f("hostIP")},
    "EnvVar": {1: _f("name"), 2: _f("value")},
    "ResourceRequirements": {1: _map("limits", QUANTITY), 2: _map("requests", QUANTITY)},
    # k8s.io/api/apps/v1
    "Deployment": _OBJECT | {2: _f("spec", "DeploymentSpec"), 3: _f("status", "DeploymentStatus")},
    "DeploymentSpec": {1: _ptr("replicas", INT), 2: _f("selector", "LabelSelector"),
                       3: _f("template", "PodTemplateSpec"), 4: _f("strategy", "DeploymentStrategy"),
                       5: _f("minReadySeconds", INT), 6: _ptr("revisionHistoryLimit", INT), 7: _f("paused", BOOL),
                       9: _ptr("progressDeadlineSeconds", INT)},
    "DeploymentStrategy": {1: _f("type")},
    "DeploymentStatus": {1: _f("observedGeneration", INT), 2: _f("replicas", INT), 3: _f("updatedReplicas", INT),
                         4: _f("availableReplicas", INT), 5: _f("unavailableReplicas", INT),
                         7: _f("readyReplicas", INT)},
    # k8s.io/api/batch/v1
    "Job": _OBJECT | {2: _f("spec", "JobSpec"), 3: _f("status", "JobStatus")},
    "JobSpec": {1: _ptr("parallelism", INT), 2: _ptr("completions", INT), 3: _ptr("activeDeadlineSeconds", INT),
                4: _f("selector", "LabelSelector"), 5: _ptr("manualSelector", BOOL),
                6: _f("template", "PodTemplateSpec"), 7: _ptr("backoffLimit", INT),
                8: _ptr("ttlSecondsAfterFinished", INT), 9: _ptr("completionMode", STRING),
                10: _ptr("suspend", BOOL)},
    "JobStatus": {4: _f("active", INT), 5: _f("succeeded", INT), 6: _f("failed", INT), 7: _f("completedIndexes")},
    "CronJob": _OBJECT | {2: _f("spec", "CronJobSpec"), 3: _f("status", "CronJobStatus")},
    "CronJobSpec": {1: _f("schedule"), 2: _ptr("startingDeadlineSeconds", INT), 3: _f("concurrencyPolicy"),
                    4: _ptr("suspend", BOOL), 5: _f("jobTemplate", "JobTemplateSpec"),
                    6: _ptr("successfulJobsHistoryLimit", INT), 7: _ptr("failedJobsHistoryLimit", INT),
                    8: _ptr("timeZone", STRING)},
    "JobTemplateSpec": _OBJECT | {2: _f("spec", "JobSpec")},
    "CronJobStatus": {},
    # k8s.io/api/scheduling/v1, policy/v1, networking/v1
    "PriorityClass": _OBJECT | {2: _ptr("value", INT), 3: _f("globalDefault", BOOL), 4: _f("description"),
                                5: _ptr("preemptionPolicy", STRING)},
    "PodDisruptionBudget": _OBJECT | {2: _f("spec", "PodDisruptionBudgetSpec"),
                                      3: _f("status", "PodDisruptionBudgetStatus")},
    "PodDisruptionBudgetSpec": {1: _ptr("minAvailable", INT_OR_STRING), 2: _f("selector", "LabelSelector"),
                                3: _ptr("maxUnavailable", INT_OR_STRING),
                                4: _ptr("unhealthyPodEvictionPolicy", STRING)},
    "PodDisruptionBudgetStatus": {1: _f("observedGeneration", INT), 3: _ptr("disruptionsAllowed", INT),
                                  4: _ptr("currentHealthy", INT), 5: _ptr("desiredHealthy", INT),
                                  6: _ptr("expectedPods", INT)},
    "Ingress": _OBJECT | {2: _f("spec", "IngressSpec"), 3: _f("status", "IngressStatus")},
    "IngressSpec": {1: _f("defaultBackend", "IngressBackend"), 2: _list("tls", "IngressTLS"),
                    3: _list("rules", "IngressRule"), 4: _ptr("ingressClassName", STRING)},
    "IngressTLS": {1: _list("hosts"), 2: _f("secretName")},
    "IngressRule": {1: _f("host"), 2: Field("ingressRuleValue", "IngressRuleValue", inline=True)},
    "IngressRuleValue": {1: _f("http", "HTTPIngressRuleValue")},
    "HTTPIngressRuleValue": {1: _list("paths", "HTTPIngressPath")},
    "HTTPIngressPath": {1: _f("path"), 2: _f("backend", "IngressBackend"), 3: _ptr("pathType", STRING)},
    "IngressBackend": {4: _f("service", "IngressServiceBackend")},
    "IngressServiceBackend": {1: _f("name"), 2: _f("port", "ServiceBackendPort")},
    "ServiceBackendPort": {1: _f("name"), 2: _f("number", INT)},
    "IngressStatus": {1: _f("loadBalancer", "IngressLoadBalancerStatus")},
    "IngressLoadBalancerStatus": {},
    # k8s.io/api/rbac/v1
    "Role": _OBJECT | {2: _list("rules", "PolicyRule", null_when_empty=True)},
    "ClusterRole": _OBJECT | {2: _list("rules", "PolicyRule", null_when_empty=True),
                              3: _f("aggregationRule", "AggregationRule")},
    "PolicyRule": {1: _list("verbs"), 2: _list("apiGroups"), 3: _list("resources"), 4: _list("resourceNames"),
                   5: _list("nonResourceURLs")},
    "AggregationRule": {1: _list("clusterRoleSelectors", "LabelSelector")},
    "RoleBinding": _OBJECT | {2: _list("subjects", "Subject"), 3: _f("roleRef", "RoleRef")},
    "ClusterRoleBinding": _OBJECT | {2: _list("subjects", "Subject"), 3: _f("roleRef", "RoleRef")},
    "Subject": {1: _f("kind"), 2: _f("apiGroup"), 3: _f("name"), 4: _f("namespace")},
    "RoleRef": {1: _f("apiGroup"), 2: _f("kind"), 3: _f("name")},
    # k8s.io/api/authorization/v1 (kubectl auth can-i)
    "SelfSubjectAccessReview": _OBJECT | {2: _f("spec", "SelfSubjectAccessReviewSpec"),
                                          3: _f("status", "SubjectAccessReviewStatus")},
    "SelfSubjectAccessReviewSpec": {1: _f("resourceAttributes", "ResourceAttributes"),
                                    2: _f("nonResourceAttributes", "NonResourceAttributes")},
    "ResourceAttributes": {1: _f("namespace"), 2: _f("verb"), 3: _f("group"), 4: _f("version"), 5: _f("resource"),
                           6: _f("subresource"), 7: _f("name")},
    "NonResourceAttributes": {1: _f("path"), 2: _f("verb")},
    "SubjectAccessReviewStatus": {1: _f("allowed", BOOL), 2: _f("reason"), 3: _f("evaluationError"),
                                  4: _f("denied", BOOL)},
    "SelfSubjectRulesReview": _OBJECT | {2: _f("spec", "SelfSubjectRulesReviewSpec"),
                                         3: _f("status", "SubjectRulesReviewStatus")},
    "SelfSubjectRulesReviewSpec": {1: _f("namespace")},
    "SubjectRulesReviewStatus": {3: _f("incomplete", BOOL), 4: _f("evaluationError")},
    # k8s.io/api/authentication/v1 (kubectl create token)
    "TokenRequest": _OBJECT | {2: _f("spec", "TokenRequestSpec"), 3: _f("status", "TokenRequestStatus")},
    "TokenRequestSpec": {1: _list("audiences"), 3: _f("boundObjectRef", "BoundObjectReference"),
                         4: _ptr("expirationSeconds", INT)},
    "BoundObjectReference": {1: _f("kind"), 2: _f("apiVersion"), 3: _f("name"), 4: _f("uid")},
    "TokenRequestStatus": {1: _f("token"), 2: _f("expirationTimestamp", TIME)},
    # k8s.io/api/certificates/v1 (kubectl certificate approve|deny: the approval subresource)
    "CertificateSigningRequest": _OBJECT | {2: _f("spec", "CertificateSigningRequestSpec"),
                                            3: _f("status", "CertificateSigningRequestStatus")},
    "CertificateSigningRequestSpec": {1: _f("request", BYTES), 2: _f("username"), 3: _f("uid"), 4: _list("groups"),
                                      5: _list("usages"), 6: _map("extra", STRINGS), 7: _f("signerName"),
                                      8: _ptr("expirationSeconds", INT)},
    "CertificateSigningRequestStatus": {1: _list("conditions", "CertificateSigningRequestCondition"),
                                        2: _f("certificate", BYTES)},
    "CertificateSigningRequestCondition": {1: _f("type"), 6: _f("status"), 2: _f("reason"), 3: _f("message"),
                                           4: _f("lastUpdateTime", TIME), 5: _f("lastTransitionTime", TIME)},
}
# The kinds whose objects are decoded; (apiVersion, kind) as the envelope's typeMeta names them.
KINDS = {("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount"), ("v1", "Service"),
         ("v1", "ResourceQuota"), ("apps/v1", "Deployment"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
         ("scheduling.k8s.io/v1", "PriorityClass"), ("policy/v1", "PodDisruptionBudget"),
         ("networking.k8s.io/v1", "Ingress"),
         *(("rbac.authorization.k8s.io/v1", kind) for kind in ("Role", "ClusterRole", "RoleBinding",
                                                               "ClusterRoleBinding")),
         ("authorization.k8s.io/v1", "SelfSubjectAccessReview"), ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
         ("authentication.k8s.io/v1", "TokenRequest"), ("certificates.k8s.io/v1", "CertificateSigningRequest")}


class ProtobufError(ValueError):
    """A body that is not Kubernetes protobuf, or holds what the sandbox does not decode."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported  # well-formed, but beyond what `MESSAGES` models (a 415, not a 400)


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON object of a protobuf request body (the envelope's apiVersion and kind included)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
    envelope = _fields(body[len(MAGIC):])
    type_meta = _fields(_last(envelope, 1) or b"")
    api_version = (_last(type_meta, 1) or b"").decode()
    kind = (_last(type_meta, 2) or b"").decode()
    if (_last(envelope, 3) or b"") not in (b"", b"identity"):
        raise ProtobufError("the sandbox reads uncompressed protobuf only", unsupported=True)
    if (api_version, kind) not in KINDS:
        raise ProtobufError(f"the sandbox decodes protobuf for the objects kubectl create sends, not {kind} in "
                            f"{api_version or 'no API version'}: send it as JSON", unsupported=True)
    return {"apiVersion": api_version, "kind": kind} | _message(kind, _last(envelope, 2) or b"")


def _message(name: str, data: bytes) -> dict[str, Any]:
    schema = MESSAGES[name]
    obj: dict[str, Any] = {}
    for number, value in _pairs(data):
        field = schema.get(number)
        if field is None:
            raise ProtobufError(f"field {number} of {name} is not one the sandbox decodes: send the object as JSON",
                                unsupported=True)
        if field.map_of is not None:
            entry = _fields(_bytes(value, name, field))
            key = (_last(entry, 1) or b"").decode()
            obj.setdefault(field.name, {})[key] = _value(field.map_of, _last(entry, 2) or b"", name, field)
        elif field.inline:
            obj.update(_message(field.type, _bytes(value, name, field)))
        elif field.repeated:
            obj.setdefault(field.name, []).append(_value(field.type, value, name, field))
        else:
            decoded = _value(field.type, value, name, field)
            if field.optional or field.type not in _SCALARS or decoded not in ("", 0, False):
                obj[field.name] = decoded
            else:
                obj.pop(field.name, None)
    for field in schema.values():
        if field.null_when_empty:
            obj.setdefault(field.name, None)
    return obj


def _value(type_: str, value: int | bytes, owner: str, field: Field) -> Any:
    if type_ == INT:
        return _signed(_int(value, owner, field))
    if type_ == BOOL:
        return bool(_int(value, owner, field))
    data = _bytes(value, owner, field)
    if type_ == STRING:
        return data.decode()
    if type_ == BYTES:
        return base64.b64encode(data).decode()
    if type_ == TIME:  # google.protobuf.Timestamp {1 seconds, 2 nanos}; the zero time is JSON's null
        stamp = _fields(data)
        seconds = _signed(_last(stamp, 1) or 0)
        if not seconds:
            return None
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if type_ == STRINGS:
        return [bytes(item).decode() for item in _fields(data).get(1, [])]
    if type_ == QUANTITY:  # resource.Quantity {1 string}
        return (_last(_fields(data), 1) or b"").decode()
    if type_ == INT_OR_STRING:  # intstr.IntOrString {1 type, 2 intVal, 3 strVal}
        parts = _fields(data)
        return (_last(parts, 3) or b"").decode() if _last(parts, 1) else _signed(_last(parts, 2) or 0)
    return _message(type_, data)


def _int(value: int | bytes, owner: str, field: Field) -> int:
    if not isinstance(value, int):
        raise ProtobufError(f"{owner}.{field.name}: expected a varint")
    return value


def _bytes(value: int | bytes, owner: str, field: Field) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError(f"{owner}.{field.name}: expected a length-delimited value")
    return value


def _signed(value: Any) -> int:
    """A varint as Go's int32/int64: negative numbers are 64-bit two's complement."""
    value = int(value)
    return value - (1 << 64) if value >= 1 << 63 else value


def _last(fields: dict[int, list[int | bytes]], number: int) -> Any:
    values = fields.get(number)
    return values[-1] if values else None


def _fields(data: bytes) -> dict[int, list[int | bytes]]:
    fields: dict[int, list[int | bytes]] = {}
    for number, value in _pairs(data):
        fields.setdefault(number, []).append(value)
    return fields


def _pairs(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of each field in wire order: an int for a varint, bytes when length-delimited."""
    pairs: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            pairs.append((number, value))
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ProtobufError("truncated protobuf message")
            pairs.append((number, data[position:position + length]))
            position += length
        else:  # Kubernetes objects have no fixed-width or group fields
            raise ProtobufError(f"unexpected protobuf wire type {wire_type} for field {number}")
    return pairs


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ProtobufError("truncated protobuf varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, position
