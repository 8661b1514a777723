"""Ownership marks: every object a run creates carries them, and restore/cleanup touch nothing without them.

The marks `is_owned` requires: the labels managed-by ``chaoskirvis``, run id (a valid run id) and
technique, and the run id in the object's name by the fixed pattern ``kirvis-<run id>-...`` (the run record:
``kirvis-ledger-<run id>``), never as a mere substring. The experiment and expiry annotations are written
too, but not required.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from chaoslib.types import Configuration

from chaoskirvis.activity import TTL_SECONDS, configured_number

__all__ = [
    "MANAGED_BY_LABEL", "MANAGED_BY", "RUN_ID_LABEL", "TECHNIQUE_LABEL", "RECORD_LABEL",
    "EXPERIMENT_ANNOTATION", "EXPIRES_ANNOTATION", "TECHNIQUES_ANNOTATION",
    "ownership_metadata", "is_owned", "is_expired", "object_name", "name_is_of_run", "DEFAULT_TTL_SECONDS",
]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "chaoskirvis"
RUN_ID_LABEL = "chaoskirvis.io/run-id"
TECHNIQUE_LABEL = "chaoskirvis.io/technique"
RECORD_LABEL = "chaoskirvis.io/record"
EXPERIMENT_ANNOTATION = "chaoskirvis.io/experiment"
EXPIRES_ANNOTATION = "chaoskirvis.io/expires-at"
TECHNIQUES_ANNOTATION = "chaoskirvis.io/techniques"
DEFAULT_TTL_SECONDS = 3600


def ownership_metadata(
    run_id: str, technique: str, configuration: Configuration | None = None,
) -> dict[str, dict[str, str]]:
    """The labels and annotations that mark an object as this run's."""
    configuration = configuration or {}
    ttl = configured_number(configuration.get("kirvis_ttl_seconds"), "kirvis_ttl_seconds", DEFAULT_TTL_SECONDS,
                            TTL_SECONDS)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl)
    return {
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, RUN_ID_LABEL: run_id, TECHNIQUE_LABEL: technique},
        "annotations": {
            EXPERIMENT_ANNOTATION: str(configuration.get("kirvis_experiment") or "unnamed experiment"),
            EXPIRES_ANNOTATION: expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }


def object_name(run_id: str, slug: str, suffix: str) -> str:
    """A name that carries the run id, e.g. ``kirvis-r7x2k9q0ab-privileged-x1y2``."""
    return f"kirvis-{run_id}-{slug}"[:57].rstrip("-") + f"-{suffix}"


_RUN_ID = r"[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?"  # as chaoskirvis.ledger.runid validates it (compiled on first use)
_NAME_TAIL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


def name_is_of_run(name: Any, run_id: str) -> bool:
    """True when `name` is built for `run_id`: ``kirvis-<run id>-<rest>`` (as `object_name` builds it, and
    as controllers name the pods of such a workload) or the run record ``kirvis-ledger-<run id>``."""
    if not isinstance(name, str) or not isinstance(run_id, str):
        return False
    if name == f"kirvis-ledger-{run_id}":
        return True
    prefix = f"kirvis-{run_id}-"
    return name.startswith(prefix) and bool(re.fullmatch(_NAME_TAIL, name[len(prefix):]))


def is_owned(obj: dict[str, Any], run_id: str | None = None) -> bool:
    """True when `obj` carries every ownership mark of one run (of `run_id`, when given, matched exactly).

    The marks are the labels managed-by ``chaoskirvis``, a run id and a technique, and a name of the
    fixed shape ``kirvis-<that run id>-...`` (see `name_is_of_run`); the annotations (experiment, expiry)
    are informative and not required.
    """
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    owner_run = labels.get(RUN_ID_LABEL)
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(TECHNIQUE_LABEL):
        return False
    if not isinstance(owner_run, str) or not re.fullmatch(_RUN_ID, owner_run):
        return False
    if run_id is not None and owner_run != run_id:
        return False
    return name_is_of_run(metadata.get("name"), owner_run)


def is_expired(obj: dict[str, Any], now: dt.datetime | None = None) -> bool:
    """True when the object's expiry annotation has passed (objects without one never expire)."""
    stamp = ((obj.get("metadata") or {}).get("annotations") or {}).get(EXPIRES_ANNOTATION)
    if not stamp:
        return False
    try:
        expires = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return False
    return expires <= (now or dt.datetime.now(dt.UTC))
