"""The scale subresource (autoscaling/v1 Scale) of deployments, replicasets and statefulsets: `kubectl scale`.

As the apps registry serves it: GET answers the Scale of the object (its spec.replicas; status.replicas
and the selector as a string), PUT and PATCH change the object's spec.replicas and nothing else, and
discovery lists `PLURAL/scale` with its group, version and kind, which kubectl's scale client looks up.
The Deployment and ReplicaSet controllers (`workload_controllers`) act on it at once.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from chaoskirvis.sandbox.resources import ResourceType
from chaoskirvis.sandbox.status import StatusError, bad_request, status_error
from chaoskirvis.sandbox.tables import format_label_selector

SCALABLE = (("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"))
GROUP, VERSION, KIND = "autoscaling", "v1", "Scale"


def scalable(resource: ResourceType) -> bool:
    return (resource.group, resource.plural) in SCALABLE


def discovery_entries(resource: ResourceType | None) -> list[dict[str, Any]]:
    """The `PLURAL/scale` entries of a group version's APIResourceList."""
    if resource is None or not scalable(resource):
        return []
    return [{"name": f"{resource.plural}/scale", "singularName": "", "namespaced": resource.namespaced,
             "group": GROUP, "version": VERSION, "kind": KIND, "verbs": ["get", "patch", "update"]}]


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The Scale of a stored object."""
    metadata = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    replicas = spec.get("replicas")
    selector = format_label_selector(spec.get("selector"))  # as the selector's String(): "" for none
    return {"kind": KIND, "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {key: metadata[key] for key in ("name", "namespace", "uid", "resourceVersion",
                                                         "creationTimestamp") if key in metadata},
            "spec": {"replicas": replicas} if replicas else {},
            "status": {"replicas": status.get("replicas", 0),
                       "selector": "" if selector == "<none>" else selector}}


def decode(body: bytes, content_type: str) -> dict[str, Any]:
    """A Scale sent with PUT."""
    try:
        scale = yaml.safe_load(body) if content_type in ("application/yaml", "application/x-yaml") else json.loads(body)
    except (ValueError, yaml.YAMLError) as error:
        raise bad_request(f"couldn't get version/kind; json parse error: {error}") from None
    if not isinstance(scale, dict):
        raise bad_request("a Scale must be an object")
    if scale.get("kind", KIND) != KIND:
        raise bad_request(f"the kind in the data ({scale.get('kind')}) does not match the expected kind ({KIND})")
    return scale


def wanted_replicas(scale: dict[str, Any], name: str) -> int:
    """spec.replicas of a Scale sent, validated as ValidateScale does."""
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise bad_request(f"spec.replicas: expected an integer, not {json.dumps(replicas)}")
    if replicas < 0:
        raise _invalid(name, replicas)
    return replicas


def _invalid(name: str, replicas: int) -> StatusError:
    message = f"Invalid value: {replicas}: must be greater than or equal to 0"
    return status_error(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: {message}',
                        {"name": name, "group": GROUP, "kind": KIND,
                         "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "spec.replicas"}]})
