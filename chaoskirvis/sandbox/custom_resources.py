"""CustomResourceDefinitions: the resources a stored CRD adds to the API, served like the built-in ones.

What the API server's apiextensions part does, at the depth the sandbox needs (k8s.io/apiextensions-apiserver
`pkg/apis/apiextensions/validation`, `pkg/apiserver/customresource_handler.go`):

- A CRD is validated on write: `metadata.name` must be `<spec.names.plural>.<spec.group>`, the group must
  contain a dot, `spec.names` needs plural and kind, `spec.scope` is Cluster or Namespaced, `spec.versions`
  is non-empty with exactly one storage version. (singular and listKind are stored as sent, not defaulted.)
- Each version with `served: true` is served at /apis/GROUP/VERSION/PLURAL from the moment the CRD is stored
  (a real server takes a moment to establish it), with its discovery documents (/apis, /apis/GROUP,
  /apis/GROUP/VERSION): create, get, list, watch, update, patch, delete, as for any other resource; a
  ValidatingAdmissionPolicy's paramKind finds it the same way.
- Each served version keeps its own objects: there is no conversion, so an object written at one version
  is not read at another (a real server stores them once, at the storage version).
- /openapi/v3 lists each served group version, its document with the write paths taking `fieldValidation`
  (as for the built-in resources), so that kubectl leaves validation to the server; no schemas are published.
- Custom objects are stored as sent: their openAPIV3Schema is neither checked nor used to prune unknown
  fields. Without `subresources.status` a version's status is an ordinary field, stored as sent; with it,
  status is server-owned (dropped on create, kept on update), but /status and /scale are not served. Deleting a CRD stops serving its resources; the
  objects stored under it are left in the store, unreachable (a real server deletes them).

A resource is looked up in the store's CRDs at request time (there are few), and the same `ResourceType`
instance stands for the same definition every time, since the store indexes objects by resource identity.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chaoskirvis.sandbox.resources import ResourceType, dns_subdomain_errors, find_resource, openapi_v3_paths
from chaoskirvis.sandbox.store import Cause, Store, invalid, required, unsupported

__all__ = ["CRDS", "find", "find_kind", "group_versions", "resource_list", "crd_causes", "discovery", "openapi_index",
           "openapi_document"]

CRDS = find_resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
_INTERNED: dict[tuple[Any, ...], ResourceType] = {}


def _served(store: Store) -> list[tuple[str, ResourceType]]:
    """(version, resource) for every version the store's CRDs serve, in the order the CRDs are named."""
    served = []
    for crd in sorted(store.list(CRDS), key=lambda c: c["metadata"]["name"]):
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        for version in spec.get("versions") or []:
            if not version.get("served"):
                continue
            subresources = version.get("subresources") if isinstance(version.get("subresources"), dict) else {}
            key = (spec["group"], version["name"], names["plural"], names["kind"], spec["scope"] == "Namespaced",
                   tuple(names.get("shortNames") or ()), tuple(names.get("categories") or ()),
                   "status" in subresources)
            if key not in _INTERNED:
                _INTERNED[key] = ResourceType(*key[:5], short_names=key[5], categories=key[6],
                                              status_subresource=key[7])
            served.append((version["name"], _INTERNED[key]))
    return served


def find(store: Store, group: str, version: str, plural: str) -> ResourceType | None:
    """The custom resource served at /apis/GROUP/VERSION/PLURAL, if a stored CRD serves it."""
    return next((r for v, r in _served(store) if (r.group, v, r.plural) == (group, version, plural)), None)


def find_kind(store: Store, api_version: str, kind: str) -> ResourceType | None:
    """The custom resource whose objects have this apiVersion and kind, if a stored CRD serves it."""
    return next((r for v, r in _served(store) if f"{r.group}/{v}" == api_version and r.kind == kind), None)


def group_versions(store: Store) -> dict[str, list[str]]:
    """The groups the stored CRDs serve, and their served versions."""
    groups: dict[str, list[str]] = {}
    for version, resource in _served(store):
        if version not in groups.setdefault(resource.group, []):
            groups[resource.group].append(version)
    return groups


def resource_list(store: Store, group: str, version: str) -> list[ResourceType]:
    """The custom resources served at /apis/GROUP/VERSION."""
    return [r for v, r in _served(store) if r.group == group and v == version]


def crd_causes(crd: dict[str, Any]) -> list[Cause]:
    """The field errors of a CustomResourceDefinition, with the API server's paths and wording."""
    spec = crd.get("spec") if isinstance(crd.get("spec"), dict) else {}
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    group, plural = spec.get("group") or "", names.get("plural") or ""
    causes: list[Cause] = []
    if not group:
        causes.append(required("spec.group"))
    elif "." not in group:
        causes.append(invalid("spec.group", group, "should be a domain with at least one dot"))
    else:
        causes += [invalid("spec.group", group, message) for message in dns_subdomain_errors(group)]
    for key in ("plural", "kind"):
        if not names.get(key):
            causes.append(required(f"spec.names.{key}"))
    if plural and group and crd["metadata"].get("name") != f"{plural}.{group}":
        causes.append(invalid("metadata.name", crd["metadata"].get("name"),
                              'must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Cluster", "Namespaced"):
        causes.append(unsupported("spec.scope", spec.get("scope"), ("Cluster", "Namespaced")) if spec.get("scope")
                      else required("spec.scope"))
    versions = spec.get("versions") if isinstance(spec.get("versions"), list) else []
    if not versions:
        causes.append(invalid("spec.versions", versions, "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        causes.append(invalid("spec.versions", versions, "must have exactly one version marked as storage version"))
    for index, version in enumerate(versions):
        if not isinstance(version, dict) or not version.get("name"):
            causes.append(required(f"spec.versions[{index}].name"))
    return causes


def discovery(store: Store, group: str | None, version: str | None,
              built_in: dict[str, Any] | None) -> dict[str, Any] | None:
    """The discovery document at /apis (group None), /apis/GROUP (version None) or /apis/GROUP/VERSION with the
    stored CRDs' groups and resources added to the built-in one (`built_in`, None where nothing is built in)."""
    groups = group_versions(store)
    if group is None:
        assert built_in is not None
        listed = {g["name"] for g in built_in["groups"]}
        built_in["groups"] += [_group(name, versions) for name, versions in groups.items() if name not in listed]
        return built_in
    if built_in is not None or group == "" or group not in groups:
        return built_in
    if version is None:
        return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, groups[group])}
    served = resource_list(store, group, version)
    if not served:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}",
            "resources": [{"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                           "verbs": list(r.verbs), **({"shortNames": list(r.short_names)} if r.short_names else {}),
                           **({"categories": list(r.categories)} if r.categories else {})} for r in served]}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def openapi_index(store: Store, index: dict[str, Any]) -> dict[str, Any]:
    """GET /openapi/v3: the built-in `index` with the stored CRDs' group versions added."""
    for group, versions in group_versions(store).items():
        for version in versions:
            document = json.dumps(openapi_document(store, f"apis/{group}/{version}"), sort_keys=True)
            digest = hashlib.sha512(document.encode()).hexdigest()[:32].upper()
            index["paths"][f"apis/{group}/{version}"] = {
                "serverRelativeURL": f"/openapi/v3/apis/{group}/{version}?hash={digest}"}
    return index


def openapi_document(store: Store, gv_path: str) -> dict[str, Any] | None:
    """The document at /openapi/v3/apis/GROUP/VERSION for a group version the stored CRDs serve, else None."""
    parts = gv_path.split("/")
    if len(parts) != 3 or parts[0] != "apis":
        return None
    served = resource_list(store, parts[1], parts[2])
    return openapi_v3_paths(parts[1], parts[2], served) if served else None
