"""Is `kirvis run` of the blocking experiments faster than the kubectl script a user would write instead?

Starts a sandbox with scenarios/ applied, writes the script itself: one `kubectl create --dry-run=server -f`
per object the blocking experiments would create (built as the techniques build them, see
`blocking_manifests`), and times, in paired rounds on the same sandbox and machine:

- the kubectl script (bash, one kubectl per manifest);
- `kirvis run` of every blocking experiment (one process);
- `chaos run` of each blocking experiment (one process each, one after the other).

Prints the median whole-process times, their ratio against the kubectl script's, and the median of each
round's ratio (robust to a machine that gets busier or quieter between rounds); the goal for `kirvis run`
is <= 1.0. Every `kirvis run` must exit 0 (every verdict as expected) or the bench fails.

Usage: .venv/bin/python bench/suite_vs_kubectl.py [--rounds 5] [--namespace team-restricted]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from chaoskirvis.sandbox.server import Sandbox
from chaoskirvis.techniques import lookup_all
from chaoskirvis.techniques.manifests import build_manifest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXPERIMENTS = ROOT / "experiments"
RUN_ID = "rbenchkubectl"
INJECTIONS = ("inject_risky_pod", "inject_risky_workload", "inject_exposure")


def blocking_experiments() -> list[Path]:
    """The experiments whose hypothesis is `injections_blocked` (as scripts/demo picks them)."""
    return sorted(p for p in EXPERIMENTS.glob("*.yaml") if "injections_blocked" in p.read_text())


def blocking_manifests(experiments: list[Path], namespace: str) -> list[dict[str, Any]]:
    """The objects the experiments' injecting actions create, built by `build_manifest` as they build them."""
    manifests = []
    for path in experiments:
        experiment = yaml.safe_load(path.read_text())
        for activity in experiment.get("method", []):
            provider = activity.get("provider") or {}
            if provider.get("func") not in INJECTIONS:
                continue
            arguments = provider.get("arguments") or {}
            options = dict(arguments.get("options") or {})
            if provider["func"] == "inject_exposure":
                techniques = [arguments["technique"]]
                options["port"] = 30000 + len(manifests)  # a valid node port too; the draw is the bench's own
            else:
                techniques = list(arguments["techniques"])
            _, manifest = build_manifest(lookup_all(techniques), namespace=namespace, run_id=RUN_ID,
                                         options=options, controller=arguments.get("controller"))
            manifests.append(manifest)
    return manifests


def write_kubectl_script(manifests: list[dict[str, Any]], folder: Path) -> Path:
    """A bash loop of `kubectl create --dry-run=server -f` over one file per manifest (denials go on)."""
    files = folder / "manifests"
    files.mkdir()
    for index, manifest in enumerate(manifests, 1):
        (files / f"{index:02d}-{manifest['kind'].lower()}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    script = folder / "kubectl-script.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'for f in "{files}"/*.yaml; do\n'
        '  kubectl create --dry-run=server -f "$f" -o name || true\n'
        "done\n"
    )
    script.chmod(0o755)
    return script


def timed(command: list[str], env: dict[str, str], expect_exit: int | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    if expect_exit is not None and done.returncode != expect_exit:
        raise SystemExit(f"bench: {' '.join(command[:3])} ... exited {done.returncode}, not {expect_exit}:\n"
                         f"{done.stdout[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--namespace", default="team-restricted")
    parser.add_argument("--no-chaos", action="store_true", help="leave out `chaos run` per experiment (slow)")
    args = parser.parse_args()
    if not shutil.which("kubectl"):
        raise SystemExit("bench: kubectl is not on PATH")
    experiments = blocking_experiments()
    with tempfile.TemporaryDirectory(prefix="kirvis-bench-") as tmp, Sandbox() as sandbox:
        folder = Path(tmp)
        for manifest in sorted((ROOT / "scenarios").glob("*.yaml")):
            sandbox.apply(manifest)
        kubeconfig = sandbox.write_kubeconfig(folder / "kubeconfig")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "KIRVIS_", "CHAOSTOOLKIT_"))}
        env.update(KUBECONFIG=str(kubeconfig), KUBECACHEDIR=str(folder / "kube-cache"))
        manifests = blocking_manifests(experiments, args.namespace)
        script = write_kubectl_script(manifests, folder)
        print(f"{len(experiments)} blocking experiments, {len(manifests)} manifests, namespace {args.namespace}, "
              f"{args.rounds} paired rounds; kubectl script {script.name}")
        suite = [str(BIN / "kirvis"), "run", *map(str, experiments), "--var", f"namespace={args.namespace}",
                 "--journals", str(folder / "journals")]
        # Warm-up (kubectl's discovery cache, the OS's file cache), and what the script's user would read.
        answers = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
        print(f"kubectl script: {answers.stderr.count('(Forbidden)')} of {len(manifests)} creates denied, "
              f"{len(answers.stdout.split())} admitted (controllers: Pod Security only warns on pod templates)")
        timed(suite, env, expect_exit=0)
        times: dict[str, list[float]] = {"kubectl script": [], "kirvis run": [], "chaos run per experiment": []}
        for _ in range(args.rounds):
            times["kubectl script"].append(timed(["bash", str(script)], env))
            times["kirvis run"].append(timed(suite, env, expect_exit=0))
            if not args.no_chaos:
                times["chaos run per experiment"].append(sum(
                    timed([str(BIN / "chaos"), "--log-file", str(folder / "chaos.log"), "run", str(path),
                           "--var", f"namespace={args.namespace}",
                           "--journal-path", str(folder / f"chaos-{path.stem}.json")], env, expect_exit=0)
                    for path in experiments))
        print(f"{'':<26} median time  ratio of the medians  median of the paired ratios  (each round's time)")
        baseline = times["kubectl script"]
        for name, samples in times.items():
            if not samples:
                continue
            median = statistics.median(samples)
            paired = statistics.median(s / b for s, b in zip(samples, baseline))
            runs = " ".join(f"{s:.2f}" for s in samples)
            print(f"{name:<26} {median:8.2f} s  {median / statistics.median(baseline):17.2f}x  "
                  f"{paired:25.2f}x  ({runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
