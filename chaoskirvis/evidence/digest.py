"""The journal's digest: SHA-256 over its canonical JSON, so that any later edit shows.

The digest lives in the journal itself, at ``chaoskirvis.digest``. It covers the whole journal except
that field and the top-level ``interruption`` key, which Chaos Toolkit adds after the controls have run
when a signal interrupted the run. Canonical JSON: keys sorted, no whitespace, UTF-8.

A digest shows an edit; it does not prove who wrote the journal (anyone who edits it can recompute it).
Keep the digests printed by `kirvis run` in the CI log, or sign the journal, when that matters.
"""
from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import uuid
from typing import Any, NamedTuple

__all__ = ["ALGORITHM", "UNSEALED_KEYS", "to_plain", "digest_of", "seal", "verify", "Verification"]

ALGORITHM = "sha256"
UNSEALED_KEYS = ("interruption",)
COVERS = "the whole journal as canonical JSON (sorted keys, no whitespace, UTF-8), without this digest field " \
         "and without the top-level 'interruption' key that Chaos Toolkit adds after the controls"


def to_plain(value: Any) -> Any:
    """`value` as Chaos Toolkit writes it into the journal file: plain JSON types only."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=_encode))


def digest_of(journal: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the journal's canonical JSON, without the digest field and the unsealed keys."""
    covered = {key: value for key, value in journal.items() if key not in UNSEALED_KEYS}
    section = covered.get("chaoskirvis")
    if isinstance(section, dict):
        covered["chaoskirvis"] = {key: value for key, value in section.items() if key != "digest"}
    canonical = json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_encode)
    return f"{ALGORITHM}:{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def seal(journal: dict[str, Any]) -> str:
    """Write the digest into ``journal["chaoskirvis"]["digest"]`` and return it."""
    value = digest_of(journal)
    journal.setdefault("chaoskirvis", {})["digest"] = {"algorithm": ALGORITHM, "value": value, "covers": COVERS}
    return value


class Verification(NamedTuple):
    """The result of checking a journal against its digest: ``verified``, ``modified`` or ``unsealed``."""

    state: str
    message: str
    sealed: str | None = None
    actual: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "verified"


def verify(journal: Any) -> Verification:
    """Check `journal` (as read from its file) against the digest it carries."""
    section = journal.get("chaoskirvis") if isinstance(journal, dict) else None
    digest = section.get("digest") if isinstance(section, dict) else None
    sealed = digest.get("value") if isinstance(digest, dict) else None
    if not isinstance(sealed, str):
        return Verification(
            "unsealed", "not sealed: the journal carries no chaoskirvis digest (was the evidence control on?)",
        )
    actual = digest_of(journal)
    if actual == sealed:
        return Verification("verified", f"verified: the journal matches its digest {sealed}", sealed, actual)
    return Verification(
        "modified",
        f"MODIFIED: the journal was changed after it was sealed (sealed {sealed}, now {actual})",
        sealed, actual,
    )


def _encode(value: Any) -> Any:
    """Chaos Toolkit's journal encoding (dates, decimals, UUIDs), plus enums by value (its `Dry`)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"Object of type '{type(value).__name__}' is not JSON serializable")
