"""The technique catalog: every technique chaoskirvis can introduce, looked up by id."""
from __future__ import annotations

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.techniques.exposure import EXPOSURE_TECHNIQUES
from chaoskirvis.techniques.guardrails import GUARDRAIL_TECHNIQUES
from chaoskirvis.techniques.identity import IDENTITY_TECHNIQUES
from chaoskirvis.techniques.rbac import RBAC_TECHNIQUES
from chaoskirvis.techniques.runtime import RUNTIME_TECHNIQUES
from chaoskirvis.techniques.unit import RULE_SOURCES, Detection, Option, Technique
from chaoskirvis.techniques.workload import WORKLOAD_TECHNIQUES

__all__ = ["CATALOG", "Technique", "Detection", "Option", "lookup", "lookup_all"]

CATALOG: dict[str, Technique] = {
    t.id: t for t in (*WORKLOAD_TECHNIQUES, *EXPOSURE_TECHNIQUES, *RBAC_TECHNIQUES, *IDENTITY_TECHNIQUES,
                      *RUNTIME_TECHNIQUES, *GUARDRAIL_TECHNIQUES)
}
_UNKNOWN_SOURCES = [f"{t.id}: rule {r.name!r} has unknown source {r.source!r}"
                    for t in CATALOG.values() for r in t.detection.rules if r.source not in RULE_SOURCES]
if _UNKNOWN_SOURCES:
    raise ValueError(f"technique catalog: {'; '.join(_UNKNOWN_SOURCES)}; known sources: {', '.join(RULE_SOURCES)}")


def lookup(technique_id: str) -> Technique:
    """The technique with this id, or `ActivityFailed` naming the known ids."""
    try:
        return CATALOG[technique_id]
    except (KeyError, TypeError):
        known = ", ".join(sorted(CATALOG))
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
