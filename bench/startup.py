"""Startup: a blocked experiment's whole `chaos run` against `chaos --help`, and what chaoskirvis imports.

Starts a sandbox, makes the experiments' target namespace (Pod Security enforce=baseline), then runs
`chaos --help` and `chaos run EXPERIMENT` in turns (paired runs, the order alternating) and prints the
medians and their ratio (issue 11's goal: at most 1.3x), wall clock and, beside it, CPU time (less
sensitive to other work on the machine; the run's wall clock also waits on the sandbox's answers). Then the import time of the modules the
experiment names (`python -X importtime`, median of the runs) and whether the `kubernetes` package was
imported. Last, one `kirvis run` of the catalog's experiments that need no detector (against the
scenarios' namespaces and policies): how many API clients and connections (TLS handshakes) its process made.
Usage: python bench/startup.py [--runs 7] [--experiment experiments/host-pid-denied.yaml ...]
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from chaoskirvis.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAMESPACE = "team-baseline"
DEFAULT_EXPERIMENTS = ["experiments/host-pid-denied.yaml", "experiments/privileged-pod-denied.yaml"]
GOAL = 1.3
# Experiments that need a detector or an outage arranged beside the sandbox: left out of the suite figure.
NEEDS_MORE = ("falco", "alertmanager", "webhook", "outage", "policy-violation")
SUITE_PROBE = """
import sys
from chaoskirvis import client
from chaoskirvis.cli import main
status = main(sys.argv[1:])
print("clients", len(client._CLIENTS), "connections", sum(c.connections_opened() for c in client._CLIENTS.values()))
"""


def environment(kubeconfig: Path, pycache: Path) -> dict[str, str]:
    """The runs' environment: the sandbox's kubeconfig, and bytecode cached as an installed package has it
    (in the scratch folder, whatever PYTHONDONTWRITEBYTECODE says: compiling every module on every start is
    not what a user's `chaos run` pays)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KUBE", "KIRVIS_", "CHAOSTOOLKIT_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(KUBECONFIG=str(kubeconfig), PYTHONPYCACHEPREFIX=str(pycache))
    return env


def timed(command: list[str], env: dict[str, str], cwd: Path, expect: int = 0) -> tuple[float, float]:
    """Wall-clock seconds and CPU seconds (user + system) of one run of `command`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def experiment_modules(experiment: Path) -> list[str]:
    """Every Python module the experiment's activities and controls name."""
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("type") == "python" and isinstance(node.get("module"), str):
                found.add(node["module"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(experiment.read_text()))
    return sorted(found)


# What `chaos run` has imported before it imports an experiment's modules: their cost is not the extension's.
BASELINE = ("chaostoolkit.cli", "chaostoolkit.commands.run", "chaoslib.experiment", "chaoslib.run")


def import_times(modules: list[str], env: dict[str, str], runs: int) -> tuple[float, dict[str, float], bool]:
    """What importing `modules` adds after `BASELINE` (ms, medians of `runs`): in all, per module imported
    (cumulative), and whether the kubernetes package was among them."""
    code = ("import sys, time\n" + "".join(f"import {m}\n" for m in BASELINE)
            # as `chaos run` does when it configures logging: activity modules then import chaoslib's stand-in
            + "from chaoslib.log import override_logzero_module\noverride_logzero_module()\n"
            + "print('-- baseline', file=sys.stderr)\n"
            "started = time.perf_counter()\n" + "".join(f"import {m}\n" for m in modules)
            + "print((time.perf_counter() - started) * 1000, 'kubernetes' in sys.modules)\n")
    totals: list[float] = []
    samples: dict[str, list[float]] = {}
    kubernetes_imported = False
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True,
                              text=True, check=True)
        total, imported = done.stdout.split()
        totals.append(float(total))
        kubernetes_imported = imported == "True"
        added = done.stderr.split("-- baseline", 1)[1]
        for line in added.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)$", line)
            if match and (not match.group(2) or match.group(3).startswith("chaoskirvis")):
                samples.setdefault(match.group(3), []).append(int(match.group(1)) / 1000)
    return (statistics.median(totals), {name: statistics.median(values) for name, values in samples.items()},
            kubernetes_imported)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="paired runs (medians; at least 5)")
    parser.add_argument("--experiment", action="append", help="experiment file (repeatable)")
    options = parser.parse_args()
    runs = max(5, options.runs)
    experiments = [ROOT / e for e in (options.experiment or DEFAULT_EXPERIMENTS)]
    with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="kirvis-startup-") as scratch:
        work = Path(scratch)
        kubeconfig = sandbox.write_kubeconfig(work / "kubeconfig")
        sandbox.apply(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n  labels:\n"
                      "    pod-security.kubernetes.io/enforce: baseline\n")
        env = environment(kubeconfig, work / "pycache")
        print(f"startup, medians of {runs} paired runs (sandbox {sandbox.url}, python {sys.version.split()[0]})")
        for experiment in experiments:
            help_times, run_times = [], []
            run = [str(BIN / "chaos"), "--log-file", str(work / "chaos.log"), "run", str(experiment),
                   "--journal-path", str(work / "journal.json"), "--var", f"namespace={NAMESPACE}"]
            timed([str(BIN / "chaos"), "--help"], env, work)  # warm the caches once, unmeasured
            timed(run, env, work)
            for index in range(runs):
                pair = [("help", [str(BIN / "chaos"), "--help"]), ("run", run)]
                for kind, command in pair if index % 2 == 0 else reversed(pair):
                    (help_times if kind == "help" else run_times).append(timed(command, env, work))
            help_median, run_median = (statistics.median(t[0] for t in times) for times in (help_times, run_times))
            help_cpu, run_cpu = (statistics.median(t[1] for t in times) for times in (help_times, run_times))
            ratio = run_median / help_median
            print(f"\n{experiment.relative_to(ROOT)}")
            print(f"  chaos --help        {help_median * 1000:7.0f} ms  (CPU {help_cpu * 1000:.0f} ms)")
            print(f"  chaos run (blocked) {run_median * 1000:7.0f} ms  (CPU {run_cpu * 1000:.0f} ms)")
            print(f"  ratio               {ratio:7.2f}x  (goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'}); "
                  f"CPU {run_cpu / help_cpu:.2f}x")
            total, times, kubernetes_imported = import_times(experiment_modules(experiment), env, runs)
            print(f"  importing {', '.join(experiment_modules(experiment))} after chaos run's own imports: "
                  f"{total:.0f} ms; per module (cumulative ms, median, the largest):")
            for name, ms in sorted(times.items(), key=lambda item: -item[1])[:12]:
                print(f"    {ms:7.1f}  {name}")
            print(f"  kubernetes package imported: {'yes' if kubernetes_imported else 'no'}")
        suite_connections(sandbox, env, work)
    return 0


def suite_connections(sandbox: Sandbox, env: dict[str, str], work: Path) -> None:
    for manifest in sorted((ROOT / "scenarios").glob("*.yaml")):
        sandbox.apply(manifest)
    experiments = [str(p) for p in sorted((ROOT / "experiments").glob("*.yaml"))
                   if not any(word in p.name for word in NEEDS_MORE)]
    done = subprocess.run([sys.executable, "-c", SUITE_PROBE, "run", *experiments, "--journals", str(work / "journals")],
                          env=env, cwd=work, capture_output=True, text=True)
    figures = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    print(f"\nkirvis run of {len(experiments)} experiments in one process: {figures} (our client; chaosk8s probes "
          "build their own)")


if __name__ == "__main__":
    raise SystemExit(main())
