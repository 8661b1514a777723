"""Apply the organisation's manifests to a fresh in-process sandbox and attempt each technique in each namespace.

The verdict of a cell is the experiments' own: `attempt_techniques` (dry-run) says blocked, allowed or
something else; only a block counts as held, an allowed attempt is a weakness, anything else is an error.
"""
from __future__ import annotations

import copy
import fnmatch
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from chaoskirvis.exposure.probes import exposure_admission
from chaoskirvis.injection import attempt_guardrail, attempt_techniques
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.techniques import CATALOG

__all__ = ["Cell", "Skipped", "ManifestError", "load_documents", "applicable", "rehearse"]

HELD, WEAKNESS, ERROR, NOT_APPLICABLE = "held", "weakness", "error", "n/a"
_FAMILIES = ("workload", "exposure", "rbac")
# A CSR cannot be dry run (only a stored one can be approved); exec and node-proxy requests need a running pod or
# node; a token request needs the experiment to name another service account.
_NOT_OFFLINE = ("csr-client-certificate", "exec-into-other-pod", "nodes-proxy", "token-request")
_SEED = 14  # the same port draws every run, so two rehearsals compare


class Cell(NamedTuple):
    technique: str
    namespace: str
    identity: str | None
    verdict: str
    detail: str


class Skipped(NamedTuple):
    kind: str
    name: str
    reason: str


class ManifestError(Exception):
    """A manifest that could not be read or applied (names the file and the object)."""


def load_documents(paths: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Every YAML document of the files and folders (recursively, sorted) given, with its file."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise ManifestError(f"no such manifest file or folder: {path}")
    documents = []
    for file in files:
        try:
            loaded = [doc for doc in yaml.safe_load_all(file.read_text()) if doc]
        except yaml.YAMLError as error:
            raise ManifestError(f"invalid YAML in {file}: {error}") from None
        for doc in loaded:
            if not isinstance(doc, dict):
                raise ManifestError(f"a document in {file} is not an object")
            items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else None
            documents.extend((file, item) for item in (items if items is not None else [doc]))
    return documents


def applicable(technique_ids: list[str] | None = None) -> list[str]:
    """The catalog techniques a rehearsal attempts: pod, service and policy creation, namespace guardrails,
    and the RBAC family (attempted as each service account of the namespace)."""
    # Guardrail techniques on the namespace itself need no object named by the experiment.
    chosen = [t.id for t in CATALOG.values() if t.id not in _NOT_OFFLINE and
              (t.family in _FAMILIES or (t.family == "guardrail" and t.target == "namespace"))]
    return chosen if technique_ids is None else [t for t in chosen if t in technique_ids]


def _object_name(doc: dict[str, Any]) -> str:
    metadata = doc.get("metadata") or {}
    ns = metadata.get("namespace")
    return f"{doc.get('kind')} {ns + '/' if ns else ''}{metadata.get('name')}"


def _apply(sandbox: Any, documents: list[tuple[Path, dict[str, Any]]]) -> None:
    # Namespaces and CRDs first, then policies, then the rest: a binding needs its policy, a Role its namespace, a
    # custom object (a Gatekeeper constraint) its CRD.
    order = {"Namespace": 0, "CustomResourceDefinition": 1, "ValidatingAdmissionPolicy": 2,
             "ValidatingAdmissionPolicyBinding": 3}
    for file, doc in sorted(documents, key=lambda fd: order.get(str(fd[1].get("kind")), 4)):
        try:
            sandbox.apply_object(doc, f" in {file}")
        except Exception as error:
            raise ManifestError(f"{file}: {_object_name(doc)} could not be applied: {error}") from None


def _verdict(outcome: dict[str, Any]) -> tuple[str, str]:
    if outcome.get("outcome") == "blocked" and outcome.get("blocked") is True:
        return HELD, f"blocked by {outcome.get('answered_by')}"
    if outcome.get("outcome") == "allowed":
        return WEAKNESS, "allowed"
    return ERROR, f"{outcome.get('outcome')}: {outcome.get('message', '')}".strip()


def _moot(technique: str, namespace_doc: dict[str, Any]) -> bool:
    """Whether the guardrail technique would not change the namespace: it is weakened that way already."""
    unit = CATALOG[technique]
    changed = copy.deepcopy(namespace_doc)
    changed.setdefault("metadata", {}).setdefault("labels", {})
    unit.apply(changed, unit.resolve_options(None))
    return (changed["metadata"].get("labels") or {}) == ((namespace_doc.get("metadata") or {}).get("labels") or {})


def _attempt(technique: str, namespace: str, identity: str | None, arguments: dict[str, Any]) -> Cell:
    try:
        if CATALOG[technique].family == "guardrail":
            outcome = attempt_guardrail(technique, namespace=namespace, mode="dry-run", **arguments)
        elif CATALOG[technique].family == "exposure":
            outcome = exposure_admission(technique, namespace=namespace, seed=_SEED, mode="dry-run", **arguments)
        else:
            outcome = attempt_techniques(namespace, [technique], mode="dry-run", as_service_account=identity,
                                         **arguments)
    except Exception as error:  # an error is an error, never a weakness nor a block
        return Cell(technique, namespace, identity, ERROR, str(error))
    return Cell(technique, namespace, identity, *_verdict(outcome))


def rehearse(documents: list[tuple[Path, dict[str, Any]]], *, namespaces: list[str] | None = None,
             exclude: list[str] = (), techniques: list[str] | None = None) -> list[Cell]:
    """Start a sandbox, apply `documents`, attempt every applicable technique in every namespace found."""
    from chaoskirvis.sandbox.server import Sandbox

    found = {doc["metadata"]["name"]: doc for _, doc in documents
             if doc.get("kind") == "Namespace" and (doc.get("metadata") or {}).get("name")}
    chosen = [ns for ns in found if (namespaces is None or any(fnmatch.fnmatchcase(ns, p) for p in namespaces))
              and not any(fnmatch.fnmatchcase(ns, p) for p in exclude)]
    accounts: dict[str, list[str]] = {}
    for _, doc in documents:
        metadata = doc.get("metadata") or {}
        if doc.get("kind") == "ServiceAccount" and metadata.get("name"):
            ns = metadata.get("namespace") or "default"
            accounts.setdefault(ns, []).append(f"{ns}/{metadata['name']}")
    cells: list[Cell] = []
    with Sandbox() as sandbox:
        _apply(sandbox, documents)
        kubeconfig = sandbox.write_kubeconfig(sandbox.ca_file.parent / "rehearse.kubeconfig")
        run_id = new_run_id()
        reset_run_id(run_id)
        arguments = {"configuration": {"kirvis_run_id": run_id}, "secrets": {"KUBECONFIG": str(kubeconfig)}}
        try:
            for namespace in chosen:
                for technique in applicable(techniques):
                    if CATALOG[technique].family == "guardrail" and _moot(technique, found[namespace]):
                        cells.append(Cell(technique, namespace, None, NOT_APPLICABLE, "the namespace is weakened "
                                          "that way already (see the workload cells)"))
                    elif CATALOG[technique].family == "rbac":
                        cells.extend(_attempt(technique, namespace, sa, arguments)
                                     for sa in accounts.get(namespace, []))
                    else:
                        cells.append(_attempt(technique, namespace, None, arguments))
        finally:
            restore_run(**arguments)
            reset_run_id()
    return cells
