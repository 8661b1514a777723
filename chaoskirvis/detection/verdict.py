"""Turn a backend's stream of alerts into a detection outcome, recorded in the run's ledger."""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
import time
from typing import Any, Callable, Iterable, Iterator

from logzero import logger

from chaoskirvis.detection.alerts import Alert, mentions
from chaoskirvis.detection.window import Window, now
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state

__all__ = ["judge", "poll", "records_errors"]


def judge(backend: str, alerts: Iterable[Alert], window: Window, matches: Callable[[Alert], bool],
          **evidence: Any) -> dict[str, Any]:
    """Take the first alert of this run that matches, began after the injection and came in time.

    `alerts` yields alerts as the backend sees them and ends at the window's deadline. Returns the
    outcome (``detected`` or ``missed``) with the matching alert and the time to detect, and records
    it in the run's ledger.
    """
    found: Alert | None = None
    not_counted = 0
    with _waiting(backend, window, evidence):
        for alert in alerts:
            if not mentions(alert.raw, window.run_id) or not matches(alert):
                continue
            if window.admits(alert.started_at, alert.detected_at):
                found = alert
                break
            not_counted += 1
    outcome = {
        "backend": backend, "run_id": window.run_id, "within_s": window.within,
        "injected_at": window.injected_at.isoformat(timespec="milliseconds"),
        "outcome": "detected" if found else "missed", "detected": found is not None,
        "time_to_detect_s": found.summary(window.injected_at)["time_to_detect_s"] if found else None,
        "alert": found.summary(window.injected_at) if found else None,
        "alerts_of_run_not_counted": not_counted, **evidence,
    }
    run_state(window.run_id).add_detection(outcome)
    logger.info(
        f"[{window.run_id}] {backend}: {outcome['outcome']}"
        + (f" '{found.name}' after {outcome['time_to_detect_s']} s" if found else f" within {window.within} s")
    )
    return outcome


def poll(fetch: Callable[[], list[Alert]], key: Callable[[Alert], Any], window: Window,
         interval: float) -> Iterator[Alert]:
    """Yield each new alert `fetch` returns, asking every `interval` seconds until the deadline.

    `fetch` stamps `seen_at` when the answer came. A polled alert counts at its own start time (when the
    source gives one), not at the poll that found it, kept after the previous ask that did not find it
    (`Window.counted_at`): the interval decides how soon the probe returns, not what it measures.
    """
    seen: set[Any] = set()
    absent_at: dt.datetime | None = None  # when the last ask began: what it did not find came later
    while True:
        asked = now()
        for alert in fetch():
            if key(alert) not in seen:
                seen.add(key(alert))
                alert.detected_at = window.counted_at(alert.started_at, alert.seen_at, absent_at)
                yield alert
        absent_at = asked
        remaining = window.remaining()
        if remaining <= 0:
            return
        time.sleep(min(interval, remaining))


PROGRESS_EVERY_S = 10.0


@contextlib.contextmanager
def _waiting(backend: str, window: Window, evidence: dict[str, Any]) -> Iterator[None]:
    """Log what the probe waits for and how long; on a long wait, a progress line every 10 s."""
    what = ", ".join(f"{k}={v!r}" for k, v in evidence.items() if v not in (None, [], {}, ""))
    remaining = max(window.remaining(), 0.0)
    logger.info(f"[{window.run_id}] {backend}: waiting up to {remaining:.1f} s (until "
                f"{window.deadline.strftime('%H:%M:%S')} UTC, {window.within:g} s after the injection) for an "
                f"alert naming run {window.run_id}" + (f" with {what}" if what else ""))
    done = threading.Event()

    def progress() -> None:
        while not done.wait(PROGRESS_EVERY_S):
            left = window.remaining()
            if left <= 0:
                return
            logger.info(f"[{window.run_id}] {backend}: still waiting, {left:.0f} s left")

    if remaining > PROGRESS_EVERY_S:
        threading.Thread(target=progress, name=f"kirvis-wait-{backend}", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def records_errors(backend: str):
    """A detection probe that fails records an ``error`` outcome first, so the run cannot pass on it."""
    def decorate(probe: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        @functools.wraps(probe)
        def wrapper(*args: Any, **kwargs: Any) -> dict[str, Any]:
            try:
                return probe(*args, **kwargs)
            except Exception as exc:
                run_id = current_run_id(kwargs.get("configuration"))
                run_state(run_id).add_detection(
                    {"backend": backend, "run_id": run_id, "outcome": "error", "detected": False, "message": str(exc)}
                )
                raise
        return wrapper
    return decorate
