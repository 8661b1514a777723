"""How many API requests an experiment makes, pinned per experiment from the sandbox's request log.

A blocked attempt needs its run record's intent (POST, written before the create so a SIGKILL leaves a
trail), the denied create, and the record's removal: 3, at most 4. An allowed one needs the intent, the
create, the read that checks our marks before the delete, the delete (on the uid and resourceVersion read)
and the record's removal: 5 (README, "Requests a run makes"). Requests are told apart by the User-Agent,
which carries the run id (so chaostoolkit-kubernetes' probes, with their own User-Agent, are not counted).

Besides, once per process: the cluster's identity for the evidence (GET /version, a SelfSubjectReview),
once per API server, and the sweep of earlier runs' expired leftovers (one list of run records), once
per namespace. In a `kirvis run` suite they come with the first experiment that needs them; a `chaos run`
is one process, so with its experiment. Requests an experiment's own other activities add are listed
per experiment in `EXTRA`.

A fresh sandbox per module: a shared one may hold other tests' expired leftovers, which the sweep would
remove (and count).
"""
from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoskirvis.ledger.runid import new_run_id
from chaoskirvis.sandbox.server import Sandbox
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos

ROOT = Path(__file__).resolve().parents[1]
BLOCKING = sorted(p for p in EXPERIMENTS.glob("*.yaml") if "injections_blocked" in p.read_text())
BLOCKED_AT_MOST, ALLOWED_AT_MOST = 4, 5
BLOCKED = ["POST configmaps", "POST {kind} 4xx", "DELETE configmaps/NAME"]
ALLOWED = ["POST configmaps", "POST {kind} 201", "GET {kind}/NAME", "DELETE {kind}/NAME", "DELETE configmaps/NAME"]
# What an experiment's other activities ask, on top of its attempt.
EXTRA = {
    # ask-admission-by-dry-run: the same pod by server-side dry run
    "privileged-pod-denied": ["POST pods dryRun"],
    # a second controller (a CronJob beside the Deployment): its intent (a PATCH of the record), create,
    # read and delete; and the dry run of each controller's pod template (which Pod Security judges)
    "privileged-controllers-denied": ["PATCH configmaps/NAME", "POST cronjobs 201", "GET cronjobs/NAME",
                                      "DELETE cronjobs/NAME", "POST pods dryRun", "POST pods dryRun"],
}
IDENTITY = ["GET /version", "POST selfsubjectreviews"]
SWEEP = "GET configmaps labelSelector"
_ONCE = (*IDENTITY, SWEEP)


def kind_of(request) -> str:
    """`METHOD resource[/NAME]` with the answer's class for creates, e.g. ``POST pods 4xx``."""
    parts = request.path.strip("/").split("/")
    if request.path == "/version":
        return "GET /version"
    name = None
    if "namespaces" in parts[:-1] and parts.index("namespaces") + 2 < len(parts):
        resource = parts[parts.index("namespaces") + 2:]
    else:
        resource = parts[3:] if parts[0] == "apis" else parts[2:]
    plural, name = resource[0], (resource[1] if len(resource) > 1 else None)
    if request.method == "POST" and "dryRun" in request.query:
        return f"POST {plural} dryRun"
    if request.method == "POST" and plural not in ("configmaps", "selfsubjectreviews"):
        return f"POST {plural} {'201' if request.status == 201 else '4xx' if 400 <= request.status < 500 else request.status}"
    if request.method == "GET" and name is None and "labelSelector" in request.query:
        return f"GET {plural} labelSelector"
    return f"{request.method} {plural}" + ("/NAME" if name else "")


def by_run(requests, journals: dict[str, dict]) -> dict[str, list[str]]:
    """Request kinds per experiment, by the run id in each request's User-Agent."""
    names = {journal["chaoskirvis"]["run_id"]: name for name, journal in journals.items()}
    found: dict[str, list[str]] = {name: [] for name in journals}
    for request in requests:
        match = re.search(r"\(run ([a-z0-9-]+)\)", request.user_agent or "")
        if match and match.group(1) in names:
            found[names[match.group(1)]].append(kind_of(request))
    return found


def attempted_kind(path: Path) -> str:
    """The resource the experiment's attempt creates: pods, or services/networkpolicies for exposures."""
    text = path.read_text()
    if "nodeport-service" in text or "external-ips" in text or "load-balancer" in text:
        return "services"
    if "open-ingress" in text:
        return "networkpolicies"
    if "controller: Deployment" in text:
        return "deployments"
    return "pods"


def admitted(path: Path, allowed: bool) -> bool:
    """Whether the attempt is admitted: where nothing blocks, and always for a controller (Pod Security
    judges its pods, here by dry run of its template)."""
    return allowed or attempted_kind(path) == "deployments"


def expected(path: Path, allowed: bool) -> list[str]:
    shape = ALLOWED if admitted(path, allowed) else BLOCKED
    return sorted([line.format(kind=attempted_kind(path)) for line in shape] + EXTRA.get(path.stem, []))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Iterator[tuple[Sandbox, Path]]:
    with Sandbox() as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path_factory.mktemp("counts") / "kubeconfig")
        for manifest in sorted((ROOT / "scenarios").glob("*.yaml")):
            sandbox.apply(manifest)
        yield sandbox, kubeconfig


def kirvis_suite(fresh, work: Path, *arguments: str) -> tuple[dict[str, list[str]], list[str]]:
    """Run every blocking experiment in one `kirvis run`: the request kinds per experiment, in run order."""
    sandbox, kubeconfig = fresh
    since = len(sandbox.requests)
    done = subprocess.run([str(BIN / "kirvis"), "run", *map(str, BLOCKING), "--journals", "journals", *arguments],
                          cwd=work, env=chaos_env(kubeconfig), capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1) and "error" not in done.stdout.splitlines()[-1], done.stdout + done.stderr
    journals = {p.stem: json.loads((work / "journals" / f"{p.stem}.json").read_text()) for p in BLOCKING}
    # asked once, the identity is still in every journal's evidence, where it always was
    facts = {(json.dumps(j["chaoskirvis"]["cluster"], sort_keys=True), json.dumps(j["chaoskirvis"]["identity"],
                                                                                 sort_keys=True))
             for j in journals.values()}
    assert len(facts) == 1 and all(j["chaoskirvis"]["identity"].get("username") and j["chaoskirvis"]["cluster"]
                                   .get("version") for j in journals.values()), facts
    return by_run(sandbox.requests[since:], journals), [p.stem for p in BLOCKING]


def split_once(kinds: dict[str, list[str]]) -> tuple[dict[str, list[str]], Counter]:
    """Each experiment's own requests, and the once-per-process ones (identity, expired sweep) of the suite."""
    own, once = {}, Counter()
    for name, found in kinds.items():
        own[name] = sorted(kind for kind in found if kind not in _ONCE)
        once.update(kind for kind in found if kind in _ONCE)
    return own, once


def namespaces_of(paths: list[Path], override: str | None) -> set[str]:
    if override:
        return {override}
    return {re.search(r"^  namespace: (\S+)", p.read_text(), re.M).group(1) for p in paths}


@pytest.mark.parametrize("allowed", [False, True], ids=["blocked", "allowed"])
def test_kirvis_run_makes_the_fewest_requests_per_experiment(fresh, tmp_path, allowed):
    arguments = ["--var", "namespace=team-privileged", "--expect", "weakness"] if allowed else []
    kinds, order = kirvis_suite(fresh, tmp_path, *arguments)
    own, once = split_once(kinds)

    for path in BLOCKING:
        assert own[path.stem] == expected(path, allowed), path.stem
        limit = ALLOWED_AT_MOST if admitted(path, allowed) else BLOCKED_AT_MOST
        assert len(own[path.stem]) - len(EXTRA.get(path.stem, [])) <= limit, (path.stem, own[path.stem])
    # once for the whole suite: the identity (one process, one cluster), a sweep per namespace targeted
    assert once == Counter({**{kind: 1 for kind in IDENTITY},
                            SWEEP: len(namespaces_of(BLOCKING, "team-privileged" if allowed else None))})
    assert set(IDENTITY) <= set(kinds[order[0]])


@pytest.mark.parametrize("experiment, allowed, control", [
    ("host-pid-denied", False, False),
    ("host-pid-denied", True, False),
    ("privileged-pod-denied", False, True),
])
def test_one_chaos_run_adds_only_its_process_requests(fresh, tmp_path, experiment, allowed, control):
    """`chaos run` is one process: the experiment's own requests, the sweep of its namespace, and the
    identity when the experiment declares the evidence control (privileged-pod-denied does)."""
    sandbox, kubeconfig = fresh
    path = EXPERIMENTS / f"{experiment}.yaml"
    run_id = new_run_id()
    since = len(sandbox.requests)
    done = run_chaos(path, tmp_path, kubeconfig, variables={"namespace": "team-privileged"} if allowed else None,
                     KIRVIS_RUN_ID=run_id)
    assert done.exit_code == (1 if allowed else 0), done.output
    kinds = by_run(sandbox.requests[since:], {experiment: {"chaoskirvis": {"run_id": run_id}}})[experiment]
    own = sorted(kind for kind in kinds if kind not in _ONCE)

    assert own == expected(path, allowed)
    assert len(own) - len(EXTRA.get(experiment, [])) <= (ALLOWED_AT_MOST if admitted(path, allowed) else BLOCKED_AT_MOST)
    assert sorted(kind for kind in kinds if kind in _ONCE) == sorted([SWEEP, *(IDENTITY if control else [])])
