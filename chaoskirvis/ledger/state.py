"""What this process's run has tried so far: the in-memory side of the ledger.

The hypothesis probes read it; the cluster record (record.py) is what survives the process.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from chaoskirvis.ledger.refs import ObjectRef

__all__ = ["RunState", "run_state"]


@dataclass
class RunState:
    run_id: str
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    detections: list[dict[str, Any]] = field(default_factory=list)
    created: list[ObjectRef] = field(default_factory=list)
    namespaces: set[str] = field(default_factory=set)
    hypothesis_evaluations: dict[str, int] = field(default_factory=dict)
    swept_namespaces: set[str] = field(default_factory=set)  # where expired leftovers were swept (ledger.expiry)
    expired_swept: list[dict[str, Any]] = field(default_factory=list)  # what each of those sweeps did
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_outcome(self, outcome: dict[str, Any]) -> None:
        with self.lock:
            self.outcomes.append(outcome)
            if outcome.get("namespace"):
                self.namespaces.add(outcome["namespace"])

    def add_detection(self, outcome: dict[str, Any]) -> None:
        with self.lock:
            self.detections.append(outcome)

    def add_created(self, ref: ObjectRef) -> None:
        with self.lock:
            self.created.append(ref)
            if ref.record_namespace:
                self.namespaces.add(ref.record_namespace)


_states: dict[str, RunState] = {}
_states_lock = threading.Lock()


def run_state(run_id: str) -> RunState:
    with _states_lock:
        return _states.setdefault(run_id, RunState(run_id))
