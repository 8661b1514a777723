"""The technique catalog: every technique chaoskirvis can introduce, looked up by id.

A family's techniques are imported when first needed: `lookup` imports the families in `FAMILIES`' order
until one holds the id (a `chaos run` of a workload technique imports only the workload family), and
`CATALOG` (every technique, in that order) imports them all. Registering a family is one line in
`FAMILIES`: its module under ``chaoskirvis.techniques`` and the name of its tuple of `Technique` units.
"""
from __future__ import annotations

import importlib
import threading

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.techniques.unit import RULE_SOURCES, Detection, Option, Technique

__all__ = ["CATALOG", "FAMILIES", "Technique", "Detection", "Option", "lookup", "lookup_all"]

# The catalog's order (`kirvis catalog`, the generated docs page): one line a family.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("workload", "WORKLOAD_TECHNIQUES"),
    ("exposure", "EXPOSURE_TECHNIQUES"),
    ("rbac", "RBAC_TECHNIQUES"),
    ("identity", "IDENTITY_TECHNIQUES"),
    ("runtime", "RUNTIME_TECHNIQUES"),
    ("guardrails", "GUARDRAIL_TECHNIQUES"),
    ("nodes", "NODE_TECHNIQUES"),
)

_loaded: dict[str, Technique] = {}  # the techniques of the families imported so far, in catalog order
_families_loaded = 0
_lock = threading.Lock()


def _load_next_family() -> bool:
    """Import the next family of `FAMILIES` into `_loaded` (its rules' sources checked); False when all are."""
    global _families_loaded
    with _lock:
        if _families_loaded == len(FAMILIES):
            return False
        module, name = FAMILIES[_families_loaded]
        units = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        problems = [f"{t.id}: rule {r.name!r} has unknown source {r.source!r}"
                    for t in units for r in t.detection.rules if r.source not in RULE_SOURCES]
        if problems:
            raise ValueError(f"technique catalog: {'; '.join(problems)}; known sources: {', '.join(RULE_SOURCES)}")
        twice = sorted(t.id for t in units if t.id in _loaded)
        if twice:
            raise ValueError(f"technique catalog: {', '.join(twice)} defined again by the {module} family")
        _loaded.update((t.id, t) for t in units)
        _families_loaded += 1
        return True


def _catalog() -> dict[str, Technique]:
    while _load_next_family():
        pass
    return _loaded


def __getattr__(name: str):
    if name == "CATALOG":  # every family imported once, then a plain module attribute
        globals()["CATALOG"] = _catalog()
        return _loaded
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lookup(technique_id: str) -> Technique:
    """The technique with this id, or `ActivityFailed` naming the known ids."""
    try:
        while technique_id not in _loaded:
            if not _load_next_family():
                break
        return _loaded[technique_id]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_catalog()))
        raise ActivityFailed(f"unknown technique {technique_id!r}; known techniques: {known}") from None


def lookup_all(technique_ids: list[str]) -> list[Technique]:
    """Several techniques; at least one, no duplicates."""
    if isinstance(technique_ids, str):
        technique_ids = [technique_ids]
    if not technique_ids:
        raise ActivityFailed("no technique given: name at least one, e.g. techniques: [privileged]")
    if len(set(technique_ids)) != len(technique_ids):
        raise ActivityFailed(f"technique listed twice in {technique_ids}")
    return [lookup(t) for t in technique_ids]
