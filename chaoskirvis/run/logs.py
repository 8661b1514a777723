"""Logging for `kirvis run`: everything to the log file, only warnings and errors to the console."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path

from chaoslib.log import configure_logger

__all__ = ["configure_logging"]


def configure_logging(log_file: Path, verbose: bool = False) -> None:
    """Set up Chaos Toolkit's logger as `chaos run` does, with a quieter console (the progress lines)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    configure_logger(verbose=verbose, log_file=str(log_file), log_file_level="debug", context_id=str(uuid.uuid4()))
    if not verbose:
        for handler in logging.getLogger("chaostoolkit").handlers:
            if type(handler) is logging.StreamHandler:
                handler.setLevel(logging.WARNING)
