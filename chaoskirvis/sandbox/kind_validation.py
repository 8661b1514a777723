"""Field validation of the storage, ingress and policy kinds, as k8s.io/kubernetes pkg/apis/*/validation does it.

Only the checks a client meets first, with the API server's field paths and wording: a
PersistentVolumeClaim needs access modes and a storage request, a PersistentVolume access modes, a
storage capacity and a volume source, an Ingress rules or a default backend and a pathType on each path,
an IngressClass a controller, a StorageClass a provisioner, a RuntimeClass a handler that is a DNS label,
a Node's taints a valid key, value and effect, unique by key and effect, a ConfigMap's data and binaryData
and a Secret's data (stringData merged in) at most 1 MiB together. Names and metadata are checked by
`chaoskirvis.sandbox.store` already; anything else these kinds hold is stored as sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from chaoskirvis.sandbox.custom_resources import crd_causes
from chaoskirvis.sandbox.resources import ResourceType, dns_label_errors, label_value_errors, qualified_name_errors
from chaoskirvis.sandbox.store import Cause, invalid, required, unsupported

__all__ = ["kind_causes"]

MAX_DATA_BYTES = 1024 * 1024  # core.MaxSecretSize, the bound of a ConfigMap's and of a Secret's data

_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_VOLUME_SOURCES = (
    "awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "csi", "fc", "flexVolume", "flocker",
    "gcePersistentDisk", "glusterfs", "hostPath", "iscsi", "local", "nfs", "photonPersistentDisk",
    "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "vsphereVolume",
)


def kind_causes(resource: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    """The field errors of an object of one of the kinds this module validates (none for other kinds)."""
    check = _CHECKS.get((resource.group, resource.kind))
    return check(obj) if check else []


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if isinstance(obj.get("spec"), dict) else {}


def _access_modes(modes: Any, path: str, detail: str) -> list[Cause]:
    """ValidatePersistentVolumeClaimSpec / ValidatePersistentVolumeSpec: at least one, each supported."""
    if not modes:
        return [required(path, detail)]
    return [unsupported(path, mode, _ACCESS_MODES) for mode in modes if mode not in _ACCESS_MODES]


def _claim(obj: dict[str, Any]) -> list[Cause]:
    spec = _spec(obj)
    causes = _access_modes(spec.get("accessModes"), "spec.accessModes", "at least 1 access mode is required")
    requests = (spec.get("resources") or {}).get("requests") or {}
    if "storage" not in requests:
        causes.append(required("spec.resources[storage]"))
    return causes


def _volume(obj: dict[str, Any]) -> list[Cause]:
    spec = _spec(obj)
    causes = _access_modes(spec.get("accessModes"), "spec.accessModes", "")
    capacity = spec.get("capacity") or {}
    if not capacity:
        causes += [required("spec.capacity"), Cause("spec.capacity", "FieldValueNotSupported",
                                                    'Unsupported value: core.ResourceList(nil): supported values: '
                                                    '"storage"')]
    elif "storage" not in capacity or len(capacity) > 1:
        causes.append(unsupported("spec.capacity", capacity, ("storage",)))
    if not any(spec.get(source) for source in _VOLUME_SOURCES):
        causes.append(required("spec", "must specify a volume type"))
    return causes


def _ingress(obj: dict[str, Any]) -> list[Cause]:
    spec = _spec(obj)
    rules = spec.get("rules") or []
    causes: list[Cause] = []
    if not rules and not spec.get("defaultBackend"):
        causes.append(Cause("spec", "FieldValueInvalid", "Invalid value: []networking.IngressRule(nil): "
                                                         "either `defaultBackend` or `rules` must be specified"))
    for rule_index, rule in enumerate(rules):
        paths = ((rule or {}).get("http") or {}).get("paths") or []
        for path_index, ingress_path in enumerate(paths):
            where = f"spec.rules[{rule_index}].http.paths[{path_index}]"
            path_type = (ingress_path or {}).get("pathType")
            if not path_type:
                causes.append(required(f"{where}.pathType", "pathType must be specified"))
            elif path_type not in _PATH_TYPES:
                causes.append(unsupported(f"{where}.pathType", path_type, _PATH_TYPES))
            elif path_type in ("Exact", "Prefix") and not str((ingress_path or {}).get("path", "")).startswith("/"):
                value = json.dumps((ingress_path or {}).get("path", ""))
                causes.append(Cause(f"{where}.path", "FieldValueInvalid", f"Invalid value: {value}: "
                                                                          "must be an absolute path"))
    return causes


def _ingress_class(obj: dict[str, Any]) -> list[Cause]:
    return [] if _spec(obj).get("controller") else [required("spec.controller")]


def _storage_class(obj: dict[str, Any]) -> list[Cause]:
    return [] if obj.get("provisioner") else [required("provisioner")]


def _runtime_class(obj: dict[str, Any]) -> list[Cause]:
    handler = str(obj.get("handler") or "")
    return [invalid("handler", handler, message) for message in dns_label_errors(handler)]


def _node(obj: dict[str, Any]) -> list[Cause]:
    """validateNodeTaints."""
    causes: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for index, taint in enumerate(_spec(obj).get("taints") or []):
        path, taint = f"spec.taints[{index}]", taint if isinstance(taint, dict) else {}
        key, value, effect = str(taint.get("key", "")), str(taint.get("value", "")), str(taint.get("effect", ""))
        causes += [invalid(f"{path}.key", key, message) for message in qualified_name_errors(key)]
        if errors := label_value_errors(value):
            causes.append(invalid(f"{path}.value", value, ";".join(errors)))
        if not effect:
            causes.append(required(f"{path}.effect"))
        elif effect not in _TAINT_EFFECTS:
            causes.append(unsupported(f"{path}.effect", effect, _TAINT_EFFECTS))
        if (key, effect) in seen:
            shown = f'core.Taint{{Key:{json.dumps(key)}, Value:{json.dumps(value)}, Effect:{json.dumps(effect)}, ' \
                    'TimeAdded:(*v1.Time)(nil)}'
            causes.append(Cause(path, "FieldValueDuplicate",
                                f"Duplicate value: {shown}: taints must be unique by key and effect pair"))
        seen.add((key, effect))
    return causes


def _text_bytes(values: Any) -> dict[str, int]:
    """The length in bytes of each string value (Go's len of a string: its UTF-8 bytes)."""
    return {key: len(str(value).encode()) for key, value in values.items()} if isinstance(values, dict) else {}


def _base64_bytes(values: Any) -> dict[str, int]:
    """The decoded length of each base64 value ([]byte on the wire); an undecodable one counts as sent."""
    lengths = {}
    for key, value in (values.items() if isinstance(values, dict) else ()):
        try:
            lengths[key] = len(base64.b64decode(str(value)))
        except (binascii.Error, ValueError):
            lengths[key] = len(str(value))
    return lengths


def _too_long(path: str) -> Cause:
    return Cause(path, "FieldValueTooLong", f"Too long: must have at most {MAX_DATA_BYTES} bytes")


def _config_map(obj: dict[str, Any]) -> list[Cause]:
    """ValidateConfigMap's size check: data and binaryData together, on the path `field.NewPath("")` prints."""
    total = sum(_text_bytes(obj.get("data")).values()) + sum(_base64_bytes(obj.get("binaryData")).values())
    return [_too_long("[]")] if total > MAX_DATA_BYTES else []


def _secret(obj: dict[str, Any]) -> list[Cause]:
    """ValidateSecret's size check, on data after stringData is merged into it (its keys win)."""
    total = sum((_base64_bytes(obj.get("data")) | _text_bytes(obj.get("stringData"))).values())
    return [_too_long("data")] if total > MAX_DATA_BYTES else []


_CHECKS: dict[tuple[str, str], Callable[[dict[str, Any]], list[Cause]]] = {
    ("apiextensions.k8s.io", "CustomResourceDefinition"): crd_causes,
    ("", "ConfigMap"): _config_map,
    ("", "Node"): _node,
    ("", "Secret"): _secret,
    ("", "PersistentVolumeClaim"): _claim,
    ("", "PersistentVolume"): _volume,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("networking.k8s.io", "IngressClass"): _ingress_class,
    ("storage.k8s.io", "StorageClass"): _storage_class,
    ("node.k8s.io", "RuntimeClass"): _runtime_class,
}
