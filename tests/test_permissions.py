"""The permissions README documents are the ones the activities need, read from what they really send.

Every shipped experiment is played with `kirvis run` against the sandbox (blocking ones where their
control is and where it is not, detection ones without a detector, so both the blocked and the admitted
paths run), then `kirvis cleanup` without `-n`. The sandbox's request log holds each request with its
User-Agent, which carries the run id. Each request is turned into what RBAC authorizes (API group,
resource, verb, namespaced or not, as the API server's RequestInfo reads a URL) and must be covered by a
rule of chaoskirvis.permissions for the families of activities the experiment uses.
"""
from __future__ import annotations

import json
import re
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from chaoskirvis.exposure.actions import inject_exposure
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.permissions import CLUSTER, NAMESPACE, NONRESOURCE, PERMISSIONS, markdown_table
from chaoskirvis.sandbox.api import parse_api_path
from chaoskirvis.workload.actions import inject_risky_workload
from chaosrun import BIN, EXPERIMENTS, ROOT, chaos_env

EXPERIMENT_FILES = sorted(EXPERIMENTS.glob("*.yaml"))
BLOCKING = [p for p in EXPERIMENT_FILES if "injections_blocked" in p.read_text()]
DETECTING = [p for p in EXPERIMENT_FILES if p not in BLOCKING]
EVERY_EXPERIMENT = next(family for family in PERMISSIONS if family.startswith("every experiment"))
CLEANUP = next(family for family in PERMISSIONS if family.startswith("`kirvis cleanup`"))


def family_of(module: str) -> str | None:
    """`chaoskirvis.workload.probes` -> the family `workload (...)`; the ledger is every experiment's."""
    package = module.split(".")[1] if module.startswith("chaoskirvis.") else None
    if package is None:
        return None  # another extension's activity (chaosk8s): its own identity needs, not ours
    if package == "ledger":
        return EVERY_EXPERIMENT
    return next(family for family in PERMISSIONS if family.startswith(f"{package} "))


def families_of(experiment: dict) -> set[str]:
    activities = [*experiment.get("steady-state-hypothesis", {}).get("probes", []), *experiment["method"],
                  *experiment.get("rollbacks", [])]
    found = {family_of(a["provider"]["module"]) for a in activities if a["provider"]["type"] == "python"}
    return (found - {None}) | {EVERY_EXPERIMENT}


def authorized_as(method: str, path: str, query: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(group, resource, verb, scope) that RBAC checks for one request."""
    if not path.startswith(("/api/", "/apis/")):
        return [(NONRESOURCE, path, method.lower(), CLUSTER)]
    parsed = parse_api_path(path)
    assert parsed is not None and parsed.plural, f"a discovery request: {method} {path}"
    resource = parsed.plural + (f"/{parsed.subresource}" if parsed.subresource else "")
    scope = NAMESPACE if parsed.namespace else CLUSTER
    if method == "GET" and parsed.subresource == "exec":
        verbs = ["get", "create"]  # a WebSocket upgrade is a GET, authorized as get and as create
    elif method == "GET":
        verbs = ["watch" if query.get("watch") in ("true", "1") else "get" if parsed.name else "list"]
    else:
        verbs = [{"POST": "create", "PATCH": "patch", "PUT": "update",
                  "DELETE": "delete" if parsed.name else "deletecollection"}[method]]
    return [(parsed.group, resource, verb, scope) for verb in verbs]


def covered(need: tuple[str, str, str, str], families: set[str]) -> bool:
    group, resource, verb, scope = need
    return any(rule.group == group and rule.resource == resource and verb in rule.verbs
               and (rule.scope == CLUSTER or scope == NAMESPACE)
               for family in families for rule in PERMISSIONS[family])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def kirvis(*arguments: str, kubeconfig: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kirvis"), *arguments], cwd=cwd, env=chaos_env(kubeconfig),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def played(scenarios, core, alertmanager, falco, tmp_path_factory) -> dict[str, list]:
    """Per experiment (and for cleanup): [(families, the requests of its runs)]."""
    work = tmp_path_factory.mktemp("permissions")
    sandbox = scenarios.sandbox
    suites = [
        ("held", BLOCKING, []),
        ("open", BLOCKING, ["--var", "namespace=team-privileged", "--expect", "weakness"]),
        ("undetected", DETECTING, ["--var", "namespace=team-privileged", "--var", "within:int=1",
                                   "--var", f"alertmanager_url={alertmanager.url}",
                                   "--var", f"receiver_port:int={free_port()}", "--expect", "weakness"]),
    ]
    journals = []
    for name, files, options in suites:
        done = kirvis("run", *map(str, files), "--journals", str(work / name), *options,
                      kubeconfig=scenarios.kubeconfig, cwd=work)
        # 0: every verdict as expected; 2: some experiment ended in error (its requests still count)
        assert done.returncode in (0, 2), done.stdout + done.stderr
        journals += [(work / name / f"{path.stem}.json", path) for path in files]

    def runs_requests(run_id: str) -> list:
        # The User-Agent names the run; an exec (a WebSocket, whose client sends no User-Agent of ours)
        # is known by its pod, whose name holds the run id.
        mine = [r for r in sandbox.requests
                if f"(run {run_id})" in r.user_agent or (run_id in r.path and r.path.endswith("/exec"))]
        assert mine, f"no request of run {run_id} in the sandbox's log"
        return mine

    played: dict[str, list] = {}
    for journal, path in journals:
        run_id = json.loads(journal.read_text())["chaoskirvis"]["run_id"]
        played.setdefault(path.stem, []).append((families_of(yaml.safe_load(path.read_text())), runs_requests(run_id)))

    # What the code can do that no shipped experiment does: a DaemonSet, a namespace drawn by opt-in label.
    run_id = new_run_id()
    reset_run_id(run_id)
    arguments = {"configuration": {"kirvis_run_id": run_id}, "secrets": {"KUBECONFIG": str(scenarios.kubeconfig)}}
    opt_in = f"kirvis-permissions-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": opt_in, "labels": {opt_in: "true"}}})
    try:
        inject_risky_workload("team-privileged", ["privileged"], controller="DaemonSet", **arguments)
        inject_exposure("nodeport-service", opt_in_label=f"{opt_in}=true", **arguments)
        # a record changed since the run wrote it is read again (configmaps get) before its delete
        core.patch_namespaced_config_map(f"kirvis-ledger-{run_id}", "team-privileged",
                                         {"metadata": {"annotations": {"example.com/touched": "true"}}})
        restore_run(**arguments)
    finally:
        reset_run_id()
        core.delete_namespace(opt_in)
    played["beyond-the-experiments"] = [({EVERY_EXPERIMENT, family_of("chaoskirvis.workload.actions"),
                                          family_of("chaoskirvis.exposure.actions")}, runs_requests(run_id))]

    seen = len(sandbox.requests)
    done = kirvis("cleanup", "--run-id", "rnothingleft", kubeconfig=scenarios.kubeconfig, cwd=work)
    assert done.returncode == 0 and "nothing to remove" in done.stdout, done.stdout + done.stderr
    ours = [r for r in sandbox.requests[seen:] if r.user_agent.startswith("chaoskirvis/")]
    played["kirvis-cleanup"] = [({CLEANUP}, ours)]
    return played


@pytest.mark.parametrize("name", [p.stem for p in EXPERIMENT_FILES] + ["beyond-the-experiments", "kirvis-cleanup"])
def test_every_request_is_covered_by_the_documented_permissions(played, name):
    uncovered = set()
    for families, requests in played[name]:
        for request in requests:
            for need in authorized_as(request.method, request.path, request.query):
                if not covered(need, families):
                    uncovered.add((need, f"{request.method} {request.path}"))
    assert not uncovered, sorted(uncovered)


def test_every_documented_request_is_sent_by_some_run(played):
    """No rule is there for nothing: each (but those checked while authorizing another) is needed by a request."""
    needed = {need for runs in played.values() for _, requests in runs for request in requests
              for need in authorized_as(request.method, request.path, request.query)}
    unused = set()
    for family, rules in PERMISSIONS.items():
        for rule in rules:
            if rule.checked_only:
                continue
            for verb in rule.verbs:
                need = (rule.group, rule.resource, verb, rule.scope)
                wider = {need, (rule.group, rule.resource, verb, NAMESPACE)} if rule.scope == CLUSTER else {need}
                if not (wider & needed):
                    unused.add((family, need))
    assert not unused, "\n".join(map(str, sorted(unused)))


def test_readme_shows_the_permissions_table():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme
    assert re.search(r"chaoskirvis/permissions\.py", readme)
