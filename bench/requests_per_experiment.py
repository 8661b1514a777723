"""How many API requests does each blocking experiment make, beside the fewest it could make?

Starts a sandbox with scenarios/ applied and runs every blocking experiment in one `kirvis run` against a
namespace with the controls (team-restricted: every attempt blocked) and one without (team-privileged,
--expect weakness: the pod attempts are allowed). Each experiment runs under its own run id, which is in
its User-Agent; its requests are read from the sandbox's request log by that User-Agent and counted by
kind (method and resource). Requests of other clients during the run (e.g. chaostoolkit-kubernetes'
probes, which the experiment itself asks for) are counted apart.

The goal beside each count is the fewest requests the experiment's attempts can make: the run record's
intent before each create (a POST for the first, a PATCH for each later one), 1 per attempt (the create or
dry run), 2 more for each object the cluster admitted (the read of our marks, then the delete on its uid),
1 for each admitted controller whose pod template is judged by dry run, and the record's removal. That is
3 for a single blocked attempt (issue 11's ceiling: 4) and 5 for an allowed one (ceiling: 5). Requests a
process makes once, whatever it runs (the cluster's identity for the evidence: GET /version and a
SelfSubjectReview; the sweep of earlier runs' expired leftovers: one list of run records per namespace),
are shown apart, on their own line.

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
# Asked once per process (see the docstring), by kind_of's names.
ONCE_PER_PROCESS = ("GET /version", "POST selfsubjectreviews", "GET configmaps (list)")
NAMESPACES = (("team-restricted", "held", "rqheld"), ("team-privileged", "weakness", "rqweak"))


def blocking_experiments() -> list[Path]:
    """The experiments whose hypothesis is `injections_blocked` (as scripts/demo picks them)."""
    return sorted(p for p in (ROOT / "experiments").glob("*.yaml") if "injections_blocked" in p.read_text())


def goal_requests(journal: dict[str, Any]) -> int:
    """The fewest requests the experiment's attempts can make (see the module's docstring)."""
    count = creates = 0
    for outcome in recorded_outcomes(journal):
        count += 1
        if outcome.get("mode") == "create":
            creates += 1
            count += 2 * (200 <= int(outcome.get("status") or 0) < 300)
        count += "pod_admission" in outcome
    return count + (creates + 1 if creates else 0)


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
            once: Counter[str] = Counter()
            for index, path in enumerate(experiments, 1):
                journal = json.loads((journals / f"{path.stem}.json").read_text())
                agent = f"(run {run_id}-{index})"
                mine = [r for r in logged if agent in r.user_agent]
                own = [r for r in mine if kind_of(r.method, r.path) not in ONCE_PER_PROCESS]
                once.update(k for k in (kind_of(r.method, r.path) for r in mine) if k in ONCE_PER_PROCESS)
                kinds = Counter(kind_of(r.method, r.path) for r in own)
                outcomes = Counter(str(o.get("outcome")) for o in recorded_outcomes(journal))
                goal = goal_requests(journal)
                totals["made"] += len(own)
                totals["goal"] += goal
                totals["over"] += len(own) > goal
                print(f"{path.stem:<{width}}  {', '.join(f'{n} {o}' for o, n in sorted(outcomes.items())):<18}"
                      f"  {len(own):>4}  {goal:>4}{'!' if len(own) > goal else ' '} "
                      + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()))
            print("once for the process (identity for the evidence, expired sweep): "
                  + (", ".join(f"{n} {kind}" for kind, n in sorted(once.items())) or "none"))
            print(f"requests of other clients during the run (the experiments' chaostoolkit-kubernetes probes): {others}")
    print(f"\nall: {totals['made']} requests made, goal at most {totals['goal']} "
          f"({totals['made'] / totals['goal']:.2f}x); {totals['over']} experiment run(s) over their goal (marked !)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
