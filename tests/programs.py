"""The real programs the tests start (Alertmanager, the Pushgateway): waiting until one answers."""
from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path


def wait_ready(url: str, process: subprocess.Popen, log: Path, within: float = 20) -> None:
    """Until `url`/-/ready answers 200; fails with the program's log when it exits or `within` s pass first."""
    deadline = time.monotonic() + within
    while True:
        try:
            if urllib.request.urlopen(f"{url}/-/ready", timeout=1).status == 200:
                return
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
