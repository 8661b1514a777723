"""Actions that start and stop the webhook receiver alerting systems post to."""
from __future__ import annotations

import ipaddress
import re
import secrets as tokens
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.detection.receiver import start_receiver, stop_receiver

__all__ = ["start_alert_receiver", "stop_alert_receiver"]

MIN_TOKEN_LENGTH = 16
# RFC 6750's b64token: what fits in "Authorization: Bearer <token>" as sent by Alertmanager and by
# Falcosidekick (whose WEBHOOK_CUSTOMHEADERS splits on "," and ":", which it excludes).
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@typed_activity
def start_alert_receiver(
    port: int = 0, host: str = "127.0.0.1", token_secret: str | None = None, token_file: str | None = None,
    configuration: Configuration = None, secrets: Secrets = None,
) -> dict[str, Any]:
    """Start an HTTP receiver for alerts (Falcosidekick's webhook output, Alertmanager's webhook, any JSON).

    It runs in the chaos process until `stop_alert_receiver` (put that in the rollbacks). It takes only
    POSTs carrying ``Authorization: Bearer <token>``; any other POST is answered 401 and reported as a
    rejection (source address, time, reason) in the outcome of `alert_at_receiver`.

    The token: `token_secret` names a secret holding yours (at least 16 characters of RFC 6750's
    b64token: letters, digits, ``-._~+/``), which you configure on the alerting side too. Without it, a
    token is generated for this run and written, readable by you only (0600), to `token_file` (default: a
    new private temporary directory); the file is removed when the receiver stops. The token itself is
    never returned, logged or journaled: the result names its secret or its file.

    `host` 0.0.0.0 (or any address but loopback) makes it reachable from a cluster and requires
    `token_secret`: a generated token cannot reach a remote alerting system before it posts.
    Returns the URL to point the alerting system's webhook at.
    """
    if token_secret:
        token = _user_token(secrets, token_secret)
        receiver = start_receiver(host, port, token)
        return {"url": receiver.url, "auth": "bearer", "token_from_secret": token_secret}
    if not _is_loopback(host):
        raise ActivityFailed(
            f"an alert receiver on {host or 'every address'!r} needs a token of yours: set token_secret to a "
            "secret holding it (and configure the alerting side to send it), or bind 127.0.0.1"
        )
    receiver = start_receiver(host, port, tokens.token_urlsafe(32))
    try:
        path = receiver.write_token_file(token_file or None)
    except Exception:
        stop_receiver()
        raise
    return {"url": receiver.url, "auth": "bearer", "token_file": str(path)}


@typed_activity
def stop_alert_receiver(configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Stop the receiver (and remove its generated token file); returns a summary of what it received and
    refused (nothing when none was running)."""
    return stop_receiver() or {"received": 0, "note": "no alert receiver was running"}


def _user_token(secrets: Secrets | None, name: str) -> str:
    token = (secrets or {}).get(name)
    if not isinstance(token, str) or not token:
        raise ActivityFailed(f"secret {name} is not set: add it to the experiment's secrets (and to the "
                             "activity's secrets list when they are grouped)")
    if len(token) < MIN_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
        raise ActivityFailed(f"the token in secret {name} must be at least {MIN_TOKEN_LENGTH} characters of "
                             "letters, digits and -._~+/ (RFC 6750's b64token), e.g. from `openssl rand -hex 32`")
    return token


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
