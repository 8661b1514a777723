"""Run the real `chaos` CLI in a subprocess and read its journal."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
BIN = Path(sys.executable).parent


@dataclass
class ChaosRun:
    exit_code: int
    journal: dict[str, Any]
    output: str

    def outputs(self, name: str) -> list[Any]:
        """Outputs of the method activities called `name`."""
        return [run["output"] for run in self.journal.get("run", []) if run["activity"]["name"] == name]


def chaos_env(kubeconfig: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "KIRVIS_", "CHAOSTOOLKIT_"))}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    env.update(extra)
    return env


def run_chaos(
    experiment: Path, workdir: Path, kubeconfig: Path | None, *, variables: dict[str, str] | None = None,
    timeout: float = 120, no_validation: bool = False, **env: str,
) -> ChaosRun:
    journal = workdir / f"journal-{experiment.stem}.json"
    command = [str(BIN / "chaos"), "--log-file", str(workdir / "chaos.log"), "run", str(experiment),
               "--journal-path", str(journal), *(["--no-validation"] if no_validation else [])]
    for key, value in (variables or {}).items():
        command += ["--var", f"{key}={value}"]
    done = subprocess.run(
        command, cwd=workdir, env=chaos_env(kubeconfig, **env), capture_output=True, text=True, timeout=timeout,
    )
    return ChaosRun(done.returncode, json.loads(journal.read_text()), done.stdout + done.stderr)
