"""What this process's run has tried so far: the in-memory side of the ledger.

The hypothesis probes read it; restore and the evidence control confirm by name what it says the run
wrote (`intended`, `records`) instead of sweeping the cluster. The cluster record (record.py) is what
survives the process.
"""
from __future__ import annotations

import threading
from typing import Any

from chaoskirvis.ledger.record import record_ref
from chaoskirvis.ledger.refs import ObjectRef

__all__ = ["RunState", "run_state"]


class RunState:
    """What one run did, as this process knows it. (A plain class: a dataclass costs about half a millisecond at
    every `chaos run` start.)"""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.outcomes: list[dict[str, Any]] = []
        self.detections: list[dict[str, Any]] = []
        self.created: list[ObjectRef] = []
        self.namespaces: set[str] = set()
        self.hypothesis_evaluations: dict[str, int] = {}
        self.expired_swept: list[dict[str, Any]] = []  # what this run's sweeps did (ledger.expiry)
        # Every object the run's record names (by path), written there before its create.
        self.intended: dict[str, ObjectRef] = {}
        # The run's record in each home namespace, as the API server answered its last write.
        self.records: dict[str, dict[str, Any]] = {}
        # Home namespaces where a record write failed: the record may exist all the same.
        self.unsure_records: set[str] = set()
        # Paths the API server showed absent: a create denied at its first attempt, a delete or read that
        # answered so. Restore and the evidence control ask nothing more about them.
        self.gone: set[str] = set()
        # The change entry (chaoskirvis.ledger.changes) last written for each object the run changed, by path.
        self.changes: dict[str, dict[str, Any]] = {}
        # Home namespaces whose record holds change entries: restore reads those records again (a person may
        # have settled a conflict by editing one), instead of taking them as the run wrote them.
        self.change_homes: set[str] = set()
        self.lock = threading.Lock()

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
            self.gone.discard(ref.path)
            if ref.record_namespace:
                self.namespaces.add(ref.record_namespace)

    def add_intended(self, ref: ObjectRef) -> None:
        with self.lock:
            self.intended[ref.path] = ref
            self.gone.discard(ref.path)
            if ref.record_namespace:
                self.namespaces.add(ref.record_namespace)

    def add_gone(self, path: str) -> None:
        with self.lock:
            self.gone.add(path)

    def unconfirmed(self) -> tuple[list[ObjectRef], list[str]]:
        """The objects the run's record names and the record namespaces not yet shown gone."""
        with self.lock:
            objects = [ref for path, ref in self.intended.items() if path not in self.gone]
            homes = sorted(ns for ns in {*self.records, *self.unsure_records} if record_ref(self.run_id, ns).path
                           not in self.gone)
        return objects, homes


_states: dict[str, RunState] = {}
_states_lock = threading.Lock()


def run_state(run_id: str) -> RunState:
    with _states_lock:
        return _states.setdefault(run_id, RunState(run_id))
