"""The ``chaoskirvis`` section of a journal: everything an auditor needs about one run, in one place."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from chaoskirvis import __version__
from chaoskirvis.evidence.cluster import ClusterFacts
from chaoskirvis.evidence.digest import to_plain
from chaoskirvis.evidence.journal import activity_runs, attack_ids, is_outcome
from chaoskirvis.evidence.ledger import ledger_evidence
from chaoskirvis.evidence.verdict import verdict_of
from chaoskirvis.ledger.state import RunState

__all__ = [
    "SCHEMA", "ExperimentSource", "experiment_source", "collect_outcomes", "build_section", "tool_versions",
    "not_run_journal",
]

SCHEMA = "chaoskirvis.evidence/v1"
_DISTRIBUTIONS = ("chaostoolkit", "chaostoolkit-lib", "chaostoolkit-kubernetes", "kubernetes")


class ExperimentSource(NamedTuple):
    """Where the experiment came from and its SHA-256: of the file, or of its canonical JSON."""

    path: str | None
    sha256: str
    hashed: str  # "file" or "canonical-json"

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.path, "sha256": self.sha256, "sha256_of": self.hashed}


def experiment_source(path: str | None, experiment: dict[str, Any]) -> ExperimentSource:
    """Hash the experiment file when `path` is a readable local file, else the experiment's canonical JSON.

    The canonical JSON is of the experiment as Chaos Toolkit runs it (title already substituted,
    without the runtime's ``dry`` key): sorted keys, no whitespace, UTF-8.
    """
    if path and Path(path).is_file():
        return ExperimentSource(path, hashlib.sha256(Path(path).read_bytes()).hexdigest(), "file")
    loaded = {key: value for key, value in to_plain(experiment).items() if key != "dry"}
    canonical = json.dumps(loaded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return ExperimentSource(path, hashlib.sha256(canonical.encode("utf-8")).hexdigest(), "canonical-json")


def collect_outcomes(
    journal: dict[str, Any], recorded: list[dict[str, Any]], attributed: dict[int, list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Every security outcome of the run, each with the activity and phase it came from.

    `recorded` is what the run's in-process ledger holds (admission outcomes and detections), which
    includes the outcomes of yes/no probes and of attempts that failed; `attributed` maps ``id(run)`` of
    a journal activity run to the outcomes recorded while it played. An outcome that no activity claims
    keeps ``activity: null``.
    """
    seen: set[int] = set()
    collected = []
    for played in activity_runs(journal):
        candidates = [*attributed.get(id(played.run), []), *([played.output] if is_outcome(played.output) else [])]
        for outcome in candidates:
            if id(outcome) not in seen:
                seen.add(id(outcome))
                collected.append({"activity": played.name, "phase": played.phase, **outcome})
    collected.extend(
        {"activity": None, "phase": None, **outcome} for outcome in recorded if id(outcome) not in seen
    )
    return collected


def build_section(
    *,
    journal: dict[str, Any],
    experiment: dict[str, Any],
    source: ExperimentSource,
    facts: ClusterFacts,
    state: RunState,
    outcomes: list[dict[str, Any]],
    expected: str = "held",
    fallback_restore: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The evidence section, as plain JSON data (not yet redacted nor sealed).

    `expected` is the verdict the run was expected to give: ``held``, or ``weakness`` for a negative
    control (configuration key ``kirvis_expect``).
    """
    exercised = sorted({a for o in outcomes for a in o.get("attack") or []})
    ledger = to_plain(ledger_evidence(journal, state, outcomes, facts.api, fallback_restore))
    tagged = attack_ids(experiment.get("tags"))
    every = [*tagged, *(a for a in exercised if a not in tagged)]
    return to_plain({
        "schema": SCHEMA,
        "run_id": state.run_id,
        "experiment": {"title": experiment.get("title"), **source.as_dict()},
        "cluster": facts.cluster,
        "identity": facts.identity,
        "tools": tool_versions(),
        "attack": {"tagged": tagged, "exercised": exercised, "all": every},
        "outcomes": outcomes,
        "summary": dict(Counter(str(o.get("outcome")) for o in outcomes)),
        "ledger": ledger,
        "expected": expected,
        "verdict": verdict_of(journal, outcomes, expected, ledger=ledger, run_id=state.run_id).as_dict(),
    })


def tool_versions() -> dict[str, str]:
    found = _dist_info_versions(_DISTRIBUTIONS)
    versions = {"chaoskirvis": __version__}
    versions.update((name, found.get(name) or _version(name)) for name in _DISTRIBUTIONS)
    versions["python"] = platform.python_version()
    return versions


def _dist_info_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Versions read off the installed ``NAME-VERSION.dist-info`` folders' names, the first on sys.path as
    importlib.metadata finds them: one listing per path entry for every name, where `metadata.version`
    scans sys.path once per name (~7 ms for four at a `chaos run`'s start). Names not found this way are
    left to `metadata.version`."""
    wanted = {_normalized(name): name for name in names}
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            children = os.listdir(entry or ".")
        except OSError:
            continue
        for child in children:
            name, dash, version = child.removesuffix(".dist-info").partition("-")
            if child.endswith(".dist-info") and dash and wanted.get(_normalized(name)) not in (None, *found):
                found[wanted[_normalized(name)]] = version
    return found


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def not_run_journal(path: str, experiment: dict[str, Any] | None, reason: str, expected: str = "held") -> dict[str, Any]:
    """A sealed journal for an experiment that could not be run at all (unreadable, invalid, bad configuration).

    Chaos Toolkit writes no journal then; this one carries the cause, so a report or CI never loses the
    experiment: it shows as an error, never as missing.
    """
    import datetime as dt

    from chaoskirvis.evidence.digest import seal

    experiment = experiment if isinstance(experiment, dict) else {}
    title = experiment.get("title") or Path(path).stem
    now = dt.datetime.now(dt.UTC).isoformat()
    journal: dict[str, Any] = {
        "chaoslib-version": _version("chaostoolkit-lib"), "platform": platform.platform(), "node": platform.node(),
        "experiment": to_plain({**experiment, "title": title}), "start": now, "end": now, "duration": 0.0,
        "status": "failed", "deviated": False, "steady_states": {"before": None, "after": None, "during": []},
        "run": [], "rollbacks": [],
    }
    source = experiment_source(path, experiment)
    journal["chaoskirvis"] = {
        "schema": SCHEMA, "run_id": None, "experiment": {"title": title, **source.as_dict()}, "tools": tool_versions(),
        "outcomes": [], "summary": {}, "not_run": reason, "expected": expected,
    }
    journal["chaoskirvis"]["verdict"] = verdict_of(journal, [], expected).as_dict()
    seal(journal)
    return journal


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
