"""Rehearsal speed: `kirvis rehearse` of the whole offline catalog against 10 namespaces, start-up included.

Writes a policy repository to a scratch folder: 10 namespaces (Pod Security restricted, baseline and
privileged in turn, each with a ServiceAccount for the RBAC techniques) and scenarios/policies.yaml's
ValidatingAdmissionPolicies. Then it runs the real `kirvis rehearse` console script on it `--runs` times
and prints each wall-clock time, the median and the matrix size (issue 14's goal: at most 10 s).
Usage: python bench/rehearse.py [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIRVIS = Path(sys.executable).parent / "kirvis"
LEVELS = ("restricted", "baseline", "privileged")
GOAL = 10.0


def write_repository(folder: Path) -> None:
    documents = []
    for index in range(10):
        name = f"team-{index:02d}"
        guarded = '\n    chaoskirvis.io/guarded: "true"' if index % 2 == 0 else ""
        documents.append(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n"
                         f"    pod-security.kubernetes.io/enforce: {LEVELS[index % 3]}{guarded}\n")
        documents.append(f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ci\n  namespace: {name}\n")
    (folder / "namespaces.yaml").write_text("---\n".join(documents))
    shutil.copy(ROOT / "scenarios" / "policies.yaml", folder / "policies.yaml")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kirvis-rehearse-bench-") as scratch:
        work = Path(scratch)
        (work / "policies").mkdir()
        write_repository(work / "policies")
        times = []
        for _ in range(max(1, options.runs)):
            started = time.perf_counter()
            done = subprocess.run([str(KIRVIS), "rehearse", "policies", "--output-dir", "out"], cwd=work,
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                print(done.stdout[-2000:], done.stderr[-2000:], sep="\n", file=sys.stderr)
                print(f"kirvis rehearse exited {done.returncode}", file=sys.stderr)
                return 1
        result = json.loads((work / "out" / "rehearse.json").read_text())
        techniques = len({c["technique"] for c in result["cells"]})
        namespaces = len({c["namespace"] for c in result["cells"]})
        median = statistics.median(times)
        print(f"kirvis rehearse: {techniques} techniques x {namespaces} namespaces = {len(result['cells'])} cells")
        print("  runs (s): " + ", ".join(f"{t:.2f}" for t in times))
        print(f"  median {median:.2f} s, start-up included (goal <= {GOAL:.0f} s: {'met' if median <= GOAL else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
