"""kmock's pytest plugin imports pytest_asyncio; our configuration disables the plugin so pytest starts."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def collect(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *options,
                           "tests/test_admission_outcomes.py"], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_pytest_starts_with_kmock_installed_and_without_pytest_asyncio():
    assert importlib.util.find_spec("kmock") is not None
    assert importlib.util.find_spec("pytest_asyncio") is None
    assert collect().returncode == 0


def test_without_our_configuration_kmocks_plugin_breaks_pytest():
    done = collect("-o", "addopts=")
    assert done.returncode != 0
    assert "pytest_asyncio" in done.stdout + done.stderr
