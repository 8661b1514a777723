"""Ask the API server to admit an object and read its answer as a security outcome.

A denial by an admission control (Pod Security Admission, a ValidatingAdmissionPolicy, a validating
webhook) is the outcome ``blocked``; an object that was stored is ``allowed``; a dry run that a webhook
could not take part in is ``inconclusive``. Anything else (an invalid manifest, a missing namespace, our
own lack of permission, a server error) is not an outcome: the attempt itself went wrong and raises.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.ledger import record
from chaoskirvis.ledger.refs import ObjectRef
from chaoskirvis.ledger.state import RunState

__all__ = ["MODES", "attempt_create", "answered_by"]

MODES = ("dry-run", "create", "create-and-delete")

_DENIERS = (
    (re.compile(r'violates PodSecurity "'), lambda m: "PodSecurity"),
    (re.compile(r"ValidatingAdmissionPolicy '([^']+)'.* denied request"),
     lambda m: f"ValidatingAdmissionPolicy {m.group(1)}"),
    (re.compile(r'admission webhook "([^"]+)" denied the request'), lambda m: f"admission webhook {m.group(1)}"),
)
_NO_DRY_RUN = re.compile(r"does not support dry run")


def answered_by(message: str) -> str | None:
    """Which admission control a refusal message comes from, or None when it is not a policy denial."""
    for pattern, name in _DENIERS:
        match = pattern.search(message)
        if match:
            return name(match)
    return None


def attempt_create(
    api: KubeAPI,
    ref: ObjectRef,
    manifest: dict[str, Any],
    *,
    mode: str,
    state: RunState,
    configuration: Configuration | None = None,
    **context: Any,
) -> dict[str, Any]:
    """Try to create `manifest` at `ref` and return the outcome with its evidence.

    `mode` is ``dry-run`` (server-side dry run, nothing stored), ``create`` (the object stays, recorded
    in the ledger, until the run is restored) or ``create-and-delete`` (a real create, deleted at once).
    """
    if mode not in MODES:
        raise ActivityFailed(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    evidence = {
        "kind": ref.kind.kind, "namespace": ref.record_namespace, "name": ref.name, "mode": mode,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **context,
    }
    dry_run = mode == "dry-run"
    technique = manifest["metadata"]["labels"].get("chaoskirvis.io/technique", "")
    if not dry_run:
        _write_ahead(api, state, ref, "intended", configuration, technique=technique)
    try:
        answer = api.create(ref.kind.collection_path(ref.namespace), manifest, dry_run=dry_run)
    except ApiError as exc:
        outcome = _refusal_outcome(exc, evidence, dry_run)
        if not dry_run:
            record.write_entry(api, state.run_id, ref, "denied", configuration, technique=technique)
        return outcome
    outcome = {
        **evidence, "outcome": "allowed", "blocked": False, "answered_by": None, "status": answer.status,
        "message": f"the API server admitted {ref}" + (" (dry run: not stored)" if dry_run else ""),
        "warnings": answer.warnings, "latency_ms": answer.latency_ms,
    }
    if not dry_run:
        state.add_created(ref)
        record.write_entry(api, state.run_id, ref, "created", configuration, technique=technique)
    if mode == "create-and-delete":
        _delete_now(api, state, ref, configuration, technique)
    return outcome


def _refusal_outcome(exc: ApiError, evidence: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    common = {
        **evidence, "status": exc.status, "reason": exc.reason, "message": exc.message,
        "warnings": exc.answer.warnings, "latency_ms": exc.answer.latency_ms,
    }
    denier = answered_by(exc.message)
    if denier:
        return {**common, "outcome": "blocked", "blocked": True, "answered_by": denier}
    if dry_run and exc.status == 400 and _NO_DRY_RUN.search(exc.message):
        return {**common, "outcome": "inconclusive", "blocked": False, "answered_by": None}
    where = f" in namespace {evidence['namespace']}" if evidence.get("namespace") else ""
    raise ActivityFailed(
        f"could not attempt to create {evidence['kind']} {evidence['name']}{where}: the API answered "
        f"{exc.status} {exc.reason or ''}: {exc.message}{_hint(exc)}"
    )


def _hint(exc: ApiError) -> str:
    if exc.status == 403:
        return " (this refusal is not an admission control's: the run's identity lacks permission)"
    if exc.status in (400, 422):
        return " (the request is invalid, so it tested no control)"
    return ""


def _write_ahead(
    api: KubeAPI, state: RunState, ref: ObjectRef, status: str, configuration: Configuration | None,
    **details: Any,
) -> None:
    try:
        record.write_entry(api, state.run_id, ref, status, configuration, **details)
    except ApiError as exc:
        raise ActivityFailed(
            f"could not record the run's intent to create {ref} before creating it "
            f"({exc.status} {exc.reason}: {exc.message}){_hint(exc)}; nothing was created"
        ) from None


def _delete_now(
    api: KubeAPI, state: RunState, ref: ObjectRef, configuration: Configuration | None, technique: str,
) -> None:
    try:
        api.delete(ref.path)
    except ApiError as exc:
        if exc.status != 404:
            raise ActivityFailed(
                f"created {ref} to test admission but could not delete it ({exc.status} {exc.message}); "
                "the run's rollback or `kirvis cleanup` will remove it"
            ) from None
    record.write_entry(api, state.run_id, ref, "restored", configuration, technique=technique)
