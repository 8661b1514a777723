"""How many API requests does each blocking experiment make, beside the fewest it could make?

Starts a sandbox with scenarios/ applied and runs every blocking experiment in one `kirvis run` against a
namespace with the controls (team-restricted: every attempt blocked) and one without (team-privileged,
--expect weakness: the pod attempts are allowed). Each experiment runs under its own run id, which is in
its User-Agent; its requests are read from the sandbox's request log by that User-Agent and counted by
kind (method and resource). Requests of other clients during the run (e.g. chaostoolkit-kubernetes'
probes, which the experiment itself asks for) are counted apart.

The goal (issue 11's ceiling) beside each count: 3 for the run record (intent written, updated with what
happened, removed), 1 per attempt (the create or dry run), 1 more for each object the cluster admitted (its
delete) and 1 for each admitted controller whose pod template is judged by dry run: a single blocked attempt
is at most 4, an allowed one at most 5. Requests made once per process (the cluster's identity for the
evidence) fall on the first experiment.

Usage: .venv/bin/python bench/requests_per_experiment.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from chaoskirvis.evidence.journal import recorded_outcomes
from chaoskirvis.sandbox.api import parse_api_path
from chaoskirvis.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RECORD_REQUESTS = 3  # the run record: intent written, updated, removed (the goal's allowance)
NAMESPACES = (("team-restricted", "held", "rqheld"), ("team-privileged", "weakness", "rqweak"))


def blocking_experiments() -> list[Path]:
    """The experiments whose hypothesis is `injections_blocked` (as scripts/demo picks them)."""
    return sorted(p for p in (ROOT / "experiments").glob("*.yaml") if "injections_blocked" in p.read_text())


def goal_requests(journal: dict[str, Any]) -> int:
    """The most requests the experiment's attempts may make (see the module's docstring)."""
    count = RECORD_REQUESTS
    for outcome in recorded_outcomes(journal):
        count += 1
        admitted = outcome.get("mode") == "create" and 200 <= int(outcome.get("status") or 0) < 300
        count += admitted + ("pod_admission" in outcome)
    return count


def kind_of(method: str, path: str) -> str:
    parsed = parse_api_path(path)
    if parsed is None or parsed.plural is None:
        return f"{method} {path}"
    resource = parsed.plural + (f"/{parsed.subresource}" if parsed.subresource else "")
    return f"{method} {resource}{'' if parsed.name or method != 'GET' else ' (list)'}"


def main() -> int:
    experiments = blocking_experiments()
    width = max(len(p.stem) for p in experiments)
    totals: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="kirvis-bench-") as tmp, Sandbox() as sandbox:
        folder = Path(tmp)
        for manifest in sorted((ROOT / "scenarios").glob("*.yaml")):
            sandbox.apply(manifest)
        kubeconfig = sandbox.write_kubeconfig(folder / "kubeconfig")
        for namespace, expect, run_id in NAMESPACES:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "KIRVIS_", "CHAOSTOOLKIT_"))}
            env.update(KUBECONFIG=str(kubeconfig), KIRVIS_RUN_ID=run_id)
            journals = folder / namespace
            seen = len(sandbox.requests)
            done = subprocess.run(
                [str(BIN / "kirvis"), "run", *map(str, experiments), "--var", f"namespace={namespace}",
                 "--expect", expect, "--journals", str(journals)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            if done.returncode != 0:
                raise SystemExit(f"bench: kirvis run against {namespace} exited {done.returncode}:\n{done.stdout}")
            logged = sandbox.requests[seen:]
            others = sum(1 for r in logged if "chaoskirvis/" not in r.user_agent)
            print(f"\n{namespace} (--expect {expect}): requests per experiment, by its run's User-Agent")
            print(f"{'experiment':<{width}}  outcomes            made  goal  by kind")
            for index, path in enumerate(experiments, 1):
                journal = json.loads((journals / f"{path.stem}.json").read_text())
                agent = f"(run {run_id}-{index})"
                own = [r for r in logged if agent in r.user_agent]
                kinds = Counter(kind_of(r.method, r.path) for r in own)
                outcomes = Counter(str(o.get("outcome")) for o in recorded_outcomes(journal))
                goal = goal_requests(journal)
                totals["made"] += len(own)
                totals["goal"] += goal
                totals["over"] += len(own) > goal
                print(f"{path.stem:<{width}}  {', '.join(f'{n} {o}' for o, n in sorted(outcomes.items())):<18}"
                      f"  {len(own):>4}  {goal:>4}{'!' if len(own) > goal else ' '} "
                      + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()))
            print(f"requests of other clients during the run (the experiments' chaostoolkit-kubernetes probes): {others}")
    print(f"\nall: {totals['made']} requests made, goal at most {totals['goal']} "
          f"({totals['made'] / totals['goal']:.2f}x); {totals['over']} experiment run(s) over their goal (marked !)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
