"""The run id: one per `chaos run` process, shared by every activity of the run.

Overridable with the configuration key ``kirvis_run_id`` or the environment variable ``KIRVIS_RUN_ID``.
It appears in object names, the ``chaoskirvis.io/run-id`` label and the HTTP User-Agent, so it must be
a lowercase DNS label of at most 20 characters.
"""
from __future__ import annotations

import os
import re
import secrets
import string
import threading

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration

__all__ = ["current_run_id", "validate_run_id", "new_run_id", "reset_run_id"]

_RUN_ID = r"[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?"  # fullmatch: "$" would admit a trailing newline
_lock = threading.Lock()
_run_id: str | None = None


def validate_run_id(run_id: str) -> str:
    """Return `run_id` if it can serve in names and labels, else raise `ActivityFailed`."""
    if not isinstance(run_id, str) or not re.fullmatch(_RUN_ID, run_id):
        raise ActivityFailed(
            f"invalid run id {run_id!r}: use 1-20 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit"
        )
    return run_id


def new_run_id() -> str:
    """A fresh random run id, e.g. ``r7x2k9q0ab``."""
    alphabet = string.ascii_lowercase + string.digits
    return "r" + "".join(secrets.choice(alphabet) for _ in range(9))


def current_run_id(configuration: Configuration | None = None) -> str:
    """The run id of this process: from configuration, else KIRVIS_RUN_ID, else generated once."""
    global _run_id
    configured = (configuration or {}).get("kirvis_run_id")
    with _lock:
        if configured:
            _run_id = validate_run_id(str(configured))
        elif _run_id is None:
            env = os.environ.get("KIRVIS_RUN_ID")
            _run_id = validate_run_id(env) if env else new_run_id()
        return _run_id


def reset_run_id(run_id: str | None = None) -> None:
    """Start a new run in this process (used by runners that play several experiments)."""
    global _run_id
    with _lock:
        _run_id = validate_run_id(run_id) if run_id else None
