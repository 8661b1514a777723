"""The record of what a run changed, kept in the cluster so any machine can restore it.

One ConfigMap per run and namespace, ``kirvis-ledger-<run id>``, labelled like every object of the run
plus ``chaoskirvis.io/record=ledger``. Each data key names one object (``pods.team-a.kirvis-...``) and
holds a JSON entry. The entry is written *before* the object is created (state ``intended``), so a run
killed with SIGKILL between the two leaves a trail that ``kirvis cleanup`` follows.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chaoslib.types import Configuration

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger.ownership import RECORD_LABEL, ownership_metadata
from chaoskirvis.ledger.refs import CONFIG_MAP, ObjectRef

__all__ = ["record_name", "write_entry", "entries_of", "RECORD_SELECTOR"]

RECORD_SELECTOR = f"{RECORD_LABEL}=ledger"


def record_name(run_id: str) -> str:
    return f"kirvis-ledger-{run_id}"


def write_entry(
    api: KubeAPI, run_id: str, ref: ObjectRef, state: str, configuration: Configuration | None = None,
    **details: Any,
) -> None:
    """Create or update the entry for `ref` in the run's record in `ref`'s (home) namespace."""
    entry = {
        "apiVersion": ref.kind.api_version, "plural": ref.kind.plural, "kind": ref.kind.kind,
        "namespace": ref.namespace, "name": ref.name, "state": state,
        "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), **details,
    }
    record = ObjectRef(CONFIG_MAP, ref.record_namespace, record_name(run_id))
    patch = {"data": {ref.key: json.dumps(entry, sort_keys=True)}}
    try:
        api.merge_patch(record.path, patch)
    except ApiError as exc:
        if exc.status != 404:
            raise
        metadata = ownership_metadata(run_id, "ledger", configuration)
        metadata["labels"][RECORD_LABEL] = "ledger"
        body = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": record.name, "namespace": record.namespace, **metadata},
            **patch,
        }
        api.create(CONFIG_MAP.collection_path(record.namespace), body)


def entries_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of one record ConfigMap (malformed entries are skipped)."""
    entries = []
    for raw in (record.get("data") or {}).values():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("name") and entry.get("plural"):
            entries.append(entry)
    return entries
