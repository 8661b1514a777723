"""OpenAPI v3 documents (/openapi/v3/...) with the real Kubernetes 1.32 schemas, for `kubectl explain`.

Each group version's document has the paths `resources` publishes (every write takes `fieldValidation`,
so kubectl leaves validation to the server) and, in components/schemas, the definitions of the kinds
served there and of everything they refer to, as kube-apiserver publishes them: named as in Kubernetes
(`io.k8s.api.core.v1.Pod`), with `x-kubernetes-group-version-kind`, references as
`#/components/schemas/...` wrapped in allOf (kubectl explain names a type by such a reference).

The definitions come from a maintained source, the `kubernetes-validate` package's JSON schemas of
Kubernetes 1.32 (generated from the API server's OpenAPI), turned back into OpenAPI v3: nullable types
become the plain type (also in the oneOf of Quantity and IntOrString) and the enum it adds to apiVersion
and kind goes. Without that package the documents carry no schemas and `kubectl
explain` answers that it finds none.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources as package_files
from typing import Any

from chaoskirvis.sandbox import resources

KUBERNETES_VERSION = "v1.32.0"
_REF_PREFIX, _COMPONENTS = "#/$defs/", "#/components/schemas/"


@functools.cache
def _definitions() -> dict[str, Any]:
    """Kubernetes 1.32's definitions, by name ({} without the kubernetes-validate package)."""
    try:
        schemas = package_files.files("kubernetes_validate") / "kubernetes-json-schema"
    except ModuleNotFoundError:
        return {}
    path = schemas / f"{KUBERNETES_VERSION}-local" / "_definitions.json"
    return json.loads(path.read_text())["$defs"]


def _converted(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON-schema definition as the API server's OpenAPI v3 writes it."""
    converted = _node(schema)
    for field in ("apiVersion", "kind"):  # kubernetes-validate pins these with an enum; the API server does not
        converted.get("properties", {}).get(field, {}).pop("enum", None)
    return converted


def _node(node: Any) -> Any:
    if isinstance(node, list):
        return [_node(item) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref") if isinstance(node.get("$ref"), str) else None  # not a property named "$ref"
    converted = {key: _node(value) for key, value in node.items() if key != "$ref" or reference is None}
    kind = node.get("type")
    if isinstance(kind, list):
        plain = [t for t in kind if t != "null"]
        converted["type"] = plain[0] if len(plain) == 1 else plain
    if reference is not None:
        return {"allOf": [{"$ref": _COMPONENTS + reference.removeprefix(_REF_PREFIX)}], **converted}
    return converted


def _references(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["$ref"].removeprefix(_REF_PREFIX)} if isinstance(node.get("$ref"), str) else set()
    return found.union(*(_references(value) for value in node.values()))


def _kind_definition(definitions: dict[str, Any], group: str, version: str, kind: str) -> str | None:
    """The definition whose x-kubernetes-group-version-kind is this kind."""
    wanted = {"group": group, "version": version, "kind": kind}
    return next((name for name, schema in definitions.items()
                 if wanted in schema.get("x-kubernetes-group-version-kind", [])), None)


@functools.cache
def _schemas(group: str, version: str) -> dict[str, Any]:
    definitions = _definitions()
    served = [r for r in resources.RESOURCES if r.group == group and r.version == version]
    kinds = [kind for r in served for kind in (r.kind, r.list_kind)]
    pending = {name for kind in kinds if (name := _kind_definition(definitions, group, version, kind))}
    included: dict[str, Any] = {}
    while pending:
        name = pending.pop()
        if name in included or name not in definitions:
            continue
        included[name] = _converted(definitions[name])
        pending |= _references(definitions[name]) - included.keys()
    return dict(sorted(included.items()))


def document(gv_path: str) -> dict[str, Any] | None:
    """The document at /openapi/v3/GV_PATH (`api/v1`, `apis/apps/v1`), or None when nothing is served there."""
    answer = resources.openapi_v3_document_at(gv_path)
    if answer is None:
        return None
    answer["components"]["schemas"] = _schemas(*_group_version(gv_path))
    return answer


def index() -> dict[str, Any]:
    """GET /openapi/v3: where each group version's document is, with a hash of that document (kubectl caches
    documents by URL, so the hash changes whenever the document does)."""
    paths = resources.openapi_v3_index()["paths"]
    return {"paths": {gv_path: {"serverRelativeURL": f"/openapi/v3/{gv_path}?hash={_hash(gv_path)}"}
                      for gv_path in paths}}


@functools.cache
def _hash(gv_path: str) -> str:
    return hashlib.sha512(json.dumps(document(gv_path), sort_keys=True).encode()).hexdigest()[:32].upper()


def _group_version(gv_path: str) -> tuple[str, str]:
    parts = gv_path.split("/")
    return ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
