"""Actions that start and stop the webhook receiver alerting systems post to."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.detection.receiver import start_receiver, stop_receiver

__all__ = ["start_alert_receiver", "stop_alert_receiver"]


@typed_activity
def start_alert_receiver(
    port: int = 0, host: str = "127.0.0.1", configuration: Configuration = None, secrets: Secrets = None,
) -> dict[str, Any]:
    """Start an HTTP receiver for alerts (Falcosidekick's webhook output, Alertmanager's webhook, any JSON).

    It runs in the chaos process until `stop_alert_receiver` (put that in the rollbacks). Returns its
    URL: point the alerting system's webhook at it. `host` 0.0.0.0 makes it reachable from a cluster;
    it accepts unauthenticated POSTs, so open it only where needed.
    """
    return {"url": start_receiver(host, port).url}


@typed_activity
def stop_alert_receiver(configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Stop the receiver; returns a summary of what it received (nothing when none was running)."""
    return stop_receiver() or {"received": 0, "note": "no alert receiver was running"}
