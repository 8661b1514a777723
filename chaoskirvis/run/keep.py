"""`kirvis run --keep-journals-in NAMESPACE`: each journal, gzip-compressed, in a labelled ConfigMap, so the
evidence outlives the CronJob's pod; the newest N per experiment are kept, older ones this deleted.

A kept journal is ours when it carries the labels ``app.kubernetes.io/part-of: chaoskirvis`` and
``chaoskirvis.io/kept-journal: <experiment>`` and its name starts with ``kirvis-journal-``: only those
are ever deleted. They carry no run id label and no ``managed-by`` mark on purpose: `kirvis cleanup`
removes what runs left behind, and evidence is not a leftover.

Kubernetes refuses a ConfigMap whose values (binaryData decoded) exceed 1 MiB (1,048,576 bytes); a
journal over that once compressed is named as too big and stays only in the journals folder.
"""
from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger.refs import CONFIG_MAP, ObjectRef
from chaoskirvis.report.model import ReportError, load_view

__all__ = ["KeptJournals", "keep_journals", "PART_OF_LABEL", "KEPT_LABEL", "NAME_PREFIX", "MAX_BYTES",
           "DEFAULT_KEEP"]

PART_OF_LABEL = "app.kubernetes.io/part-of"
KEPT_LABEL = "chaoskirvis.io/kept-journal"
NAME_PREFIX = "kirvis-journal-"
MAX_BYTES = 1024 * 1024  # Kubernetes' core.MaxSecretSize, which ValidateConfigMap applies to data + binaryData
DEFAULT_KEEP = 10
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class KeptJournals:
    stored: list[str] = field(default_factory=list)  # ConfigMap names
    deleted: list[str] = field(default_factory=list)
    too_big: list[str] = field(default_factory=list)  # why a journal was not kept
    failed: list[str] = field(default_factory=list)


def keep_journals(api: KubeAPI, namespace: str, journals: list[Path], keep: int = DEFAULT_KEEP) -> KeptJournals:
    """Store each journal in `namespace`, then delete the experiment's kept journals beyond the newest `keep`."""
    report = KeptJournals()
    experiments = []
    for path in journals:
        try:
            body = _config_map(path)
        except (OSError, ReportError) as exc:
            report.failed.append(f"{path}: {exc}")
            continue
        if isinstance(body, str):
            report.too_big.append(body)
            continue
        try:
            api.create(CONFIG_MAP.collection_path(namespace), body)
        except (ApiError, ActivityFailed) as exc:
            report.failed.append(f"{path}: cannot create ConfigMap {body['metadata']['name']} in namespace "
                                 f"{namespace}: {exc}")
            continue
        report.stored.append(body["metadata"]["name"])
        experiments.append(body["metadata"]["labels"][KEPT_LABEL])
    for experiment in dict.fromkeys(experiments):
        _prune(api, namespace, experiment, keep, report)
    return report


def _config_map(path: Path) -> dict | str:
    """The ConfigMap that keeps the journal at `path`, or why it cannot be kept (too big)."""
    view = load_view(path)
    raw = path.read_bytes()
    compressed = gzip.compress(raw, mtime=0)
    key = f"{_label_value(path.stem)}.json.gz"
    if len(compressed) > MAX_BYTES:
        return (f"{path} is {len(compressed):,} bytes gzip-compressed ({len(raw):,} uncompressed), over the "
                f"{MAX_BYTES:,} bytes a ConfigMap can hold: not kept in the cluster, only in {path.parent}")
    suffix = view.run_id or f"unrun-{hashlib.sha256(raw).hexdigest()[:12]}"
    annotations = {"chaoskirvis.io/journal": path.name, "chaoskirvis.io/verdict": view.verdict.label}
    if view.run_id:
        annotations["chaoskirvis.io/run-id"] = view.run_id
    if view.ended or view.started:
        annotations["chaoskirvis.io/ended"] = (view.ended or view.started).astimezone(dt.UTC).isoformat(
            timespec="microseconds")
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": f"{NAME_PREFIX}{suffix}",
            "labels": {PART_OF_LABEL: "chaoskirvis", KEPT_LABEL: _label_value(path.stem)},
            "annotations": annotations,
        },
        "binaryData": {key: base64.b64encode(compressed).decode("ascii")},
    }


def _prune(api: KubeAPI, namespace: str, experiment: str, keep: int, report: KeptJournals) -> None:
    selector = f"{PART_OF_LABEL}=chaoskirvis,{KEPT_LABEL}={experiment}"
    try:
        items = api.get(CONFIG_MAP.collection_path(namespace), labelSelector=selector).get("items") or []
    except (ApiError, ActivityFailed) as exc:
        report.failed.append(f"cannot list the kept journals of {experiment} in namespace {namespace}: {exc}")
        return
    ours = [item for item in items if str((item.get("metadata") or {}).get("name", "")).startswith(NAME_PREFIX)]
    ours.sort(key=_age, reverse=True)
    for item in ours[keep:]:
        ref = ObjectRef(CONFIG_MAP, namespace, item["metadata"]["name"])
        if ref.problem():
            report.failed.append(f"left alone ConfigMap {ref.name!r}: {ref.problem()}")
            continue
        try:
            api.delete(ref.path)
        except ApiError as exc:
            if exc.status != 404:  # already gone is what was wanted
                report.failed.append(f"cannot delete the kept journal {ref.name} in namespace {namespace}: {exc}")
                continue
        except ActivityFailed as exc:
            report.failed.append(f"cannot delete the kept journal {ref.name} in namespace {namespace}: {exc}")
            continue
        report.deleted.append(ref.name)


def _age(item: dict) -> tuple[str, str]:
    """Sort key, oldest first: the journal's end time (ISO 8601 in UTC to the microsecond, so it sorts as
    text), then the object's creation time."""
    metadata = item.get("metadata") or {}
    return (str((metadata.get("annotations") or {}).get("chaoskirvis.io/ended", "")),
            str(metadata.get("creationTimestamp", "")))


def _label_value(text: str) -> str:
    """`text` as a label value (63 characters of [A-Za-z0-9._-], alphanumeric at both ends)."""
    return _NOT_LABEL.sub("-", text)[:63].strip("-._") or "unnamed"
