"""Alerts from any backend, reduced to what matching and evidence need."""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Alert", "parse_time", "mentions"]


@dataclass
class Alert:
    """One alert as a detection probe sees it.

    `started_at` is when the source says the alert began (None when it does not say); `seen_at` is when
    the probe first saw it (wall clock). `detected_at` is when it counts as raised, which is what the
    deadline and time to detect are measured with: `seen_at` for an alert the probe saw arrive (a watch,
    a followed log, the webhook receiver), else its own time (see `Window.counted_at`); `seen_at` when
    left out.
    """

    source: str
    name: str
    started_at: dt.datetime | None
    seen_at: dt.datetime
    text: str
    raw: dict[str, Any] = field(repr=False)
    details: dict[str, Any] = field(default_factory=dict)
    detected_at: dt.datetime = None  # type: ignore[assignment]  # seen_at unless given

    def __post_init__(self) -> None:
        if self.detected_at is None:
            self.detected_at = self.seen_at

    def summary(self, injected_at: dt.datetime) -> dict[str, Any]:
        return {
            "source": self.source, "name": self.name,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "seen_at": self.seen_at.isoformat(timespec="milliseconds"),
            "detected_at": self.detected_at.isoformat(timespec="milliseconds"),
            "time_to_detect_s": round((self.detected_at - injected_at).total_seconds(), 3),
            **self.details,
        }


def parse_time(value: Any) -> dt.datetime | None:
    """RFC 3339 / ISO 8601 (nanoseconds and ``Z`` accepted) to an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    match = re.match(r"^(.*?\.\d{6})\d*(.*)$", text)
    if match:
        text = match.group(1) + match.group(2)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def mentions(value: Any, needle: str) -> bool:
    """True when `needle` (a run id) appears anywhere in the alert's data."""
    return needle in (value if isinstance(value, str) else json.dumps(value, default=str))
