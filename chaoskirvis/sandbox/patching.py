"""The three patch formats of PATCH requests.

- JSON merge patch (`application/merge-patch+json`, RFC 7386).
- JSON patch (`application/json-patch+json`, RFC 6902), applied with the `jsonpatch` library.
- Strategic merge patch (`application/strategic-merge-patch+json`), approximated: a merge patch, except
  that lists of named things are merged item by item on their merge key, chosen by the list's field name
  (containers, initContainers, ephemeralContainers, volumes, env, imagePullSecrets: `name`; volumeMounts:
  `mountPath`; volumeDevices: `devicePath`; ports: `containerPort` for container ports, `port` for service
  ports; hostAliases: `ip`; topologySpreadConstraints: `topologyKey`; conditions: `type`;
  ownerReferences: `uid`) and `finalizers` is merged as a set. Other lists are replaced. The directives
  `kubectl apply` sends are honoured: `$patch: replace|delete|merge`, `$retainKeys`,
  `$setElementOrder/FIELD` and `$deleteFromPrimitiveList/FIELD`. The real API server picks merge keys from
  each type's Go schema; this table covers the built-in types this sandbox serves.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "ownerReferences": "uid",
}
_SET_LISTS = {"finalizers"}
_SET_ELEMENT_ORDER = "$setElementOrder/"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"


class PatchError(ValueError):
    """A patch that cannot be read (`unreadable`: 400 BadRequest) or cannot be applied (422 Invalid)."""

    def __init__(self, message: str, *, unreadable: bool) -> None:
        super().__init__(message)
        self.unreadable = unreadable


def apply_patch(content_type: str, target: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The object `target` with the patch `body` of type `content_type` applied (target is not changed)."""
    try:
        patch = json.loads(body or b"null")
    except ValueError as error:
        raise PatchError(f"error decoding patch: {error}", unreadable=True) from None
    if content_type == JSON_PATCH:
        return json_patch(target, patch)
    if not isinstance(patch, dict):
        raise PatchError("patch must be a JSON object", unreadable=True)
    if content_type == MERGE_PATCH:
        return merge_patch(target, patch)
    return strategic_merge_patch(target, patch)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes a member, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 operations applied in order; any failing operation fails the whole patch."""
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", unreadable=True)
    try:
        result = jsonpatch.JsonPatch(operations).apply(target)
    except jsonpatch.InvalidJsonPatch as error:
        raise PatchError(str(error), unreadable=True) from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
        raise PatchError(str(error), unreadable=False) from None
    except (KeyError, TypeError, ValueError) as error:
        raise PatchError(f"invalid JSON patch: {error}", unreadable=True) from None
    if not isinstance(result, dict):
        raise PatchError("the patched document is not an object", unreadable=False)
    return result


def strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The approximated strategic merge patch described in the module docstring."""
    merged = _merge_map(target, patch)
    return merged if merged is not None else {}


def _merge_map(target: Any, patch: dict[str, Any]) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    plain = {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "replace":
        return copy.deepcopy(plain)
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive}", unreadable=False)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in plain.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    for key, values in patch.items():
        if key.startswith(_DELETE_FROM_PRIMITIVE_LIST):
            field = key.removeprefix(_DELETE_FROM_PRIMITIVE_LIST)
            result[field] = [item for item in result.get(field) or [] if item not in values]
    for key, order in patch.items():
        if key.startswith(_SET_ELEMENT_ORDER):
            field = key.removeprefix(_SET_ELEMENT_ORDER)
            if isinstance(result.get(field), list):
                result[field] = _ordered(field, result[field], order)
    if "$retainKeys" in patch:
        result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        return "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"
    return _MERGE_KEYS.get(field)


def _merge_list(field: str, target: Any, patch: list[Any]) -> list[Any]:
    current = copy.deepcopy(target) if isinstance(target, list) else []
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(item) for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    if field in _SET_LISTS:
        return current + [item for item in patch if item not in current]
    key = _merge_key(field, current + patch)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return copy.deepcopy(patch)
    for item in patch:
        position = next((i for i, old in enumerate(current)
                         if isinstance(old, dict) and old.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if position is not None:
                del current[position]
        elif position is None:
            current.append({k: v for k, v in copy.deepcopy(item).items() if v is not None})
        else:
            current[position] = _merge_map(current[position], item) or {}
    return current


def _ordered(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    key = _merge_key(field, items)
    if key is None:
        rank = {json.dumps(v, sort_keys=True): i for i, v in enumerate(order)}
        return sorted(items, key=lambda item: rank.get(json.dumps(item, sort_keys=True), len(rank)))
    rank = {json.dumps(entry.get(key)): i for i, entry in enumerate(order) if isinstance(entry, dict)}
    return sorted(items, key=lambda item: rank.get(json.dumps(item.get(key)), len(rank)))
