"""The detection window: from the run's injection time, for `within` seconds."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.ledger.state import RunState

__all__ = ["Window", "window_of", "now"]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Window:
    run_id: str
    injected_at: dt.datetime
    within: float
    clock_skew: float = 0.0

    @property
    def deadline(self) -> dt.datetime:
        return self.injected_at + dt.timedelta(seconds=self.within)

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it passed)."""
        return (self.deadline - now()).total_seconds()

    def admits(self, started_at: dt.datetime | None, detected_at: dt.datetime) -> bool:
        """An alert counts if it began after the injection (when its source says when) and came in time.

        `detected_at` is when it counts as raised (`Alert.detected_at`). Sources that stamp whole seconds
        (Kubernetes' creationTimestamp) are compared at that precision.
        """
        earliest = self.injected_at - dt.timedelta(seconds=self.clock_skew)
        if started_at is not None and started_at.microsecond == 0:
            earliest = earliest.replace(microsecond=0)
        if started_at is not None and started_at < earliest:
            return False
        return detected_at <= self.deadline

    def counted_at(self, started_at: dt.datetime | None, seen_at: dt.datetime,
                   absent_at: dt.datetime | None = None) -> dt.datetime:
        """When an alert the probe found already there (a poll, a list, a log's backlog) counts as raised.

        Its own start time, kept between the injection (or `absent_at`, a look that did not find it yet)
        and `seen_at`, when the probe found it: a probe that starts late, or polls, times an alert by
        the source's clock, not by its own schedule. Without a start time, `seen_at`.
        """
        if started_at is None:
            return seen_at
        earliest = max(self.injected_at, absent_at) if absent_at else self.injected_at
        return min(max(started_at, earliest), seen_at)


def window_of(state: RunState, within: float, technique: str | None = None, clock_skew: float = 0.0) -> Window:
    """The window of the run's latest injection (of `technique`, when given) that reached the API."""
    if within <= 0:
        raise ActivityFailed(f"within must be a positive number of seconds, got {within}")
    candidates = [
        o for o in state.outcomes
        if o.get("at") and o.get("outcome") in ("allowed", "blocked")
        and (technique is None or technique in o.get("techniques", []))
    ]
    if not candidates:
        what = f"of technique {technique} " if technique else ""
        raise ActivityFailed(
            f"run {state.run_id} has introduced nothing {what}yet: put an inject action before this probe"
        )
    injected_at = max(dt.datetime.fromisoformat(o["at"]) for o in candidates)
    return Window(state.run_id, injected_at, float(within), float(clock_skew))
