"""The permissions README documents are the ones the activities need, read from what they really send.

Every shipped experiment is played with `kirvis run` against the sandbox (blocking ones where their
control is and where it is not, detection ones without a detector, so both the blocked and the admitted
paths run; the identity and guardrail experiments as the least-privileged team and the over-granted one (the
identity ones by impersonation and by token); the fail-closed pair failing closed and open; the posture
experiments as the cluster is; the node experiments on kubeadm trees, with kube-bench and the kubelet played),
then what the code can do that no experiment does (every guardrail unit as the runner itself), and a `kirvis
cleanup` of a run's leftovers of every kind, guardrail changes and a node file included. The sandbox's request
log holds each request with its User-Agent, which carries the run id. Each request is turned into what RBAC
authorizes *for the runner* and must be covered by a rule of chaoskirvis.permissions for the families of
activities the experiment uses. As kube-apiserver authorizes them: a resource request as its API group,
resource, verb and scope (as RequestInfo reads the URL); a request impersonating someone as the verb
impersonate on that user (a service account's, in its namespace) and on each group (the request itself is
then authorized as the identity, not the runner); a request made with a service account's own token
needs nothing of the runner (its TokenRequest did).
"""
from __future__ import annotations

import fnmatch
import json
import re
import socket
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaoskirvis.exposure.actions import inject_exposure
from chaoskirvis.guardrails.actions import tamper_guardrail
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.ownership import RUN_ID_LABEL
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.nodes.actions import inject_node_fault
from chaoskirvis.permissions import CLUSTER, NAMESPACE, NONRESOURCE, PERMISSIONS, markdown_table
from chaoskirvis.rbac.actions import inject_identity_technique
from chaoskirvis.sandbox.api import LoggedRequest, parse_api_path
from chaoskirvis.sandbox.rbac import split_service_account
from chaoskirvis.sandbox.server import ADMIN
from chaoskirvis.techniques import CATALOG
from chaoskirvis.techniques.identity import IDENTITY_TECHNIQUES
from chaoskirvis.workload.actions import inject_risky_workload
from chaosrun import BIN, EXPERIMENTS, ROOT, chaos_env
from tests.node_players import KubeBench, Kubelet
from tests.node_tree import make_node_tree, nodes_attached

Need = tuple[str, str, str, str]  # (group, resource, verb, scope) as RBAC checks it

SHIPPED = sorted(EXPERIMENTS.rglob("*.yaml"))
POSTURE = [p for p in SHIPPED if "chaoskirvis.posture." in p.read_text()]
IDENTITY = sorted((EXPERIMENTS / "identity").glob("*.yaml"))
GUARDRAIL_EXPERIMENTS = sorted((EXPERIMENTS / "guardrails").glob("*.yaml"))
FAIL_CLOSED = sorted((EXPERIMENTS / "fail-closed").glob("*.yaml"))
NODES = sorted((EXPERIMENTS / "nodes").glob("*.yaml"))
TOP_LEVEL = [p for p in sorted(EXPERIMENTS.glob("*.yaml")) if p not in POSTURE]
BLOCKING = [p for p in TOP_LEVEL if "injections_blocked" in p.read_text()]
DETECTING = [p for p in TOP_LEVEL if p not in BLOCKING]
EVERY_EXPERIMENT = next(family for family in PERMISSIONS if family.startswith("every experiment"))
IDENTITY_FAMILY = next(family for family in PERMISSIONS if family.startswith("identity "))
CLEANUP = next(family for family in PERMISSIONS if family.startswith("`kirvis cleanup`"))
GUARDRAIL_FAMILY = next(family for family in PERMISSIONS if family.startswith("guardrail "))
GUARDRAILS = [t for t in CATALOG.values() if t.family == "guardrail"]
# The guardrails of scenarios/guardrails-team-open.yaml (gr-granted) and -guarded.yaml (gr-team) by target, as
# tamper_guardrail names them; "namespace" is also where the run keeps its record.
GUARDRAIL_OBJECTS = {team: {"namespace": {}, "networkpolicy": {"name": "default-deny"},
                            "validatingadmissionpolicybinding": {"name": f"{team}-deny-host-network"},
                            "validatingwebhookconfiguration": {"name": f"{team}-policy-engine"}}
                     for team in ("gr-granted", "gr-team")}
GUARDRAIL_PATHS = {"namespace": "/api/v1/namespaces/{namespace}",
                   "networkpolicy": "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}",
                   "validatingadmissionpolicybinding":
                       "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/{name}",
                   "validatingwebhookconfiguration":
                       "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}"}
AS_IDENTITY = ("as_user", "as_groups", "as_service_account")
RUNNER = ADMIN.name  # the scenarios' kubeconfig is the sandbox admin's
# The over-granted scenario's team, for the identity experiments' negative control.
GRANTED = ["--var", "namespace=granted-a", "--var", "other_namespace=granted-b", "--expect", "weakness"]
# The fail-open scenario: its webhook ignores the engine's outage (the shared sandbox maps no webhook Service,
# so the engine is unreachable on both sides: failed closed there, admitted here).
FAIL_OPEN = ["--var", "namespace=fail-open-target", "--var", "engine_namespace=policy-engine-open", "--expect",
             "weakness"]
WORKER = "kirvis-permissions-worker"  # a pod of team-b and of granted-b, for exec-into-other-pod
# nodes-proxy is left out: the sandbox does not serve nodes/proxy yet (tests/test_identity.py's strict xfail);
# as an identity it asks the runner only for the impersonation the other techniques ask for too.
PLAYED_TECHNIQUES = [t for t in IDENTITY_TECHNIQUES if t.id != "nodes-proxy"]
NODE_WORKER, NODE_CONTROL = "kirvis-worker", "kirvis-control-plane"  # the sandbox's nodes the node experiments name
LEFT_NODE_FILE = "/var/lib/kubelet/config.yaml"  # what node_leftover changes (kubelet-anonymous-auth)


def name_of(path: Path) -> str:
    """`posture/no-wildcard-clusterrole-bound`, `identity/team-cannot-bind-cluster-admin`: an experiment's test id."""
    return path.relative_to(EXPERIMENTS).with_suffix("").as_posix()


def family_of(module: str, func: str) -> str | None:
    """The family of the activity `module.func`: the one whose title names the function (`risky_pod_*` is a
    pattern), else the one named after its package (`chaoskirvis.workload` -> `workload (...)`); the
    ledger's is every experiment's. None for another extension's activity (chaosk8s): its own needs, not ours."""
    if not module.startswith("chaoskirvis."):
        return None
    naming = [family for family in PERMISSIONS
              if any(fnmatch.fnmatchcase(func, name) for name in re.findall(r"`([\w*]+)`", family))]
    assert len(naming) <= 1, f"{func} is named by more than one family: {naming}"
    if naming:
        return naming[0]
    package = module.split(".")[1]
    if package == "ledger":
        return EVERY_EXPERIMENT
    return next(family for family in PERMISSIONS if family.startswith(f"{package} "))


def families_of_activity(provider: dict[str, Any]) -> set[str]:
    """The activity's family, and the identity family when it is called as an identity (`as_*` arguments)."""
    found = {family_of(provider["module"], provider["func"])}
    if any(provider.get("arguments", {}).get(argument) for argument in AS_IDENTITY):
        found.add(IDENTITY_FAMILY)
    return found - {None}


def families_of(experiment: dict) -> set[str]:
    activities = [*experiment.get("steady-state-hypothesis", {}).get("probes", []), *experiment["method"],
                  *experiment.get("rollbacks", [])]
    return {family for a in activities if a["provider"]["type"] == "python"
            for family in families_of_activity(a["provider"])} | {EVERY_EXPERIMENT}


def authorized_as(method: str, path: str, query: dict[str, str]) -> list[Need]:
    """(group, resource, verb, scope) that RBAC checks for one request of the requester's own."""
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


def runner_needs(request: LoggedRequest, groups: Mapping[str, set[str]]) -> list[Need]:
    """What RBAC checks of the runner for `request`. Impersonating, only the impersonation (the request itself
    is authorized as the identity): impersonate on the user, or on the service account in its namespace, and
    on the groups asked for with it (`groups`: per user acted as). With a service account's own token, nothing."""
    if request.impersonator is not None:
        assert request.impersonator == RUNNER, f"{request.method} {request.path} by {request.impersonator}"
        acted = ("", "serviceaccounts", "impersonate", NAMESPACE) if split_service_account(request.user) \
            else ("", "users", "impersonate", CLUSTER)
        return [acted, *([("", "groups", "impersonate", CLUSTER)] if groups.get(request.user) else [])]
    if request.user != RUNNER:
        assert request.user and split_service_account(request.user), \
            f"{request.method} {request.path} authenticated as {request.user!r}, neither the runner nor a token of ours"
        return []  # identity_via: token: the service account's own token, which the runner's TokenRequest issued
    return authorized_as(request.method, request.path, request.query)


def acted_as(document: Any) -> dict[str, set[str]]:
    """User acted as -> the groups asked for with it, from every outcome in `document` (a journal, outcomes)."""
    found: dict[str, set[str]] = {}
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            identity = node.get("as")
            if isinstance(identity, dict) and isinstance(identity.get("user"), str):
                found.setdefault(identity["user"], set()).update(identity.get("groups") or ())
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def covered(need: Need, families: set[str]) -> bool:
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


def technique_options(technique: str, other_namespace: str) -> dict[str, str] | None:
    """What a team's attempt of `technique` targets: the other team's deployer or pod, its own deployer."""
    return {"list-secrets": {"in_namespace": other_namespace},
            "token-request": {"service_account": f"{other_namespace}/deployer"},
            "exec-into-other-pod": {"pod": f"{other_namespace}/{WORKER}"},
            "service-account-token-secret": {"service_account": "deployer"},
            "privileged-service-account-pod": {"service_account": "deployer"}}.get(technique)


@pytest.fixture(scope="module")
def workers(scenarios, core) -> Iterator[None]:
    """A pod in team-b and granted-b that exec-into-other-pod targets (stored; no container runs)."""
    for namespace in ("team-b", "granted-b"):
        core.create_namespaced_pod(namespace, {"metadata": {"name": WORKER}, "spec": {
            "containers": [{"name": "worker", "image": "registry.k8s.io/pause:3.10"}]}})
    yield
    for namespace in ("team-b", "granted-b"):
        core.delete_namespaced_pod(WORKER, namespace)


def identity_plays(arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """Every identity technique as a team's user (with a group: RBAC refuses it all) and as the over-granted
    team's service account (RBAC allows it all, so restore has each kind to remove); the object techniques
    as the runner itself too (what only an admission policy would block; granted-a has none): their outcomes."""
    outcomes = []
    for technique in PLAYED_TECHNIQUES:
        refused = inject_identity_technique(
            "team-a", technique.id, options=technique_options(technique.id, "team-b"),
            as_user="kirvis-permissions-developer", as_groups=["kirvis-permissions-team-a"], **arguments)
        allowed = [inject_identity_technique(
            "granted-a", technique.id, options=technique_options(technique.id, "granted-b"),
            as_service_account="granted-a/app", **arguments)]
        if technique.target != "request":
            allowed.append(inject_identity_technique(
                "granted-a", technique.id, options=technique_options(technique.id, "granted-b"), **arguments))
        assert (refused["outcome"], refused["answered_by"]) == ("blocked", "RBAC"), refused
        assert all(outcome["outcome"] == "allowed" for outcome in allowed), allowed
        outcomes += [refused, *allowed]
    return outcomes


def plant_leftovers(arguments: dict[str, Any]) -> set[str]:
    """What a killed run leaves: every kind an identity technique creates, made by the over-granted team's
    service account and never restored. The kinds made."""
    made = set()
    for technique in PLAYED_TECHNIQUES:
        if technique.target != "request" or technique.binds_token:
            outcome = inject_identity_technique(
                "granted-a", technique.id, options=technique_options(technique.id, "granted-b"),
                as_service_account="granted-a/app", **arguments)
            assert outcome["outcome"] == "allowed", outcome
            made.add(outcome["kind"] if technique.target != "request" else "Secret")
    return made


def guardrail_play(technique: str, arguments: dict[str, Any]) -> None:
    """A guardrail unit as the runner itself (no identity: its own patch or delete), really made in gr-granted,
    then put back (update, or create for a deleted one). One run each: a run that puts an object back and then
    changes it again is left alone by its second restore once the first recreated it (/tmp/h/experiments-requests.md)."""
    outcome = tamper_guardrail(technique, "gr-granted", mode="change",
                               **GUARDRAIL_OBJECTS["gr-granted"][CATALOG[technique].target], **arguments)
    assert outcome["outcome"] == "allowed", outcome
    restore_run(**arguments)


def guardrail_leftovers(arguments: dict[str, Any]) -> None:
    """What a run killed after its changes leaves: a patch of each kind (gr-granted's) and a delete of each
    kind that may be deleted (gr-team's), made by the runner and never put back."""
    for technique, namespace in (("pod-security-privileged", "gr-granted"), ("network-policy-opened", "gr-granted"),
                                 ("vap-binding-not-denying", "gr-granted"), ("webhook-fail-open", "gr-granted"),
                                 ("network-policy-deleted", "gr-team"), ("vap-binding-deleted", "gr-team"),
                                 ("webhook-configuration-deleted", "gr-team")):
        target = GUARDRAIL_OBJECTS[namespace][CATALOG[technique].target]
        outcome = tamper_guardrail(technique, namespace, mode="change", **target, **arguments)
        assert outcome["outcome"] == "allowed", outcome


def guardrail_contents(api: client.ApiClient) -> dict[str, Any]:
    """Every guardrail object of both teams, without what the API server sets on each write (and on a create)."""
    found = {}
    for namespace, objects in GUARDRAIL_OBJECTS.items():
        for target, name in objects.items():
            path = GUARDRAIL_PATHS[target].format(namespace=namespace, **name)
            response = api.call_api(*api.param_serialize("GET", path, auth_settings=["BearerToken"]))
            response.read()
            obj = json.loads(response.data) if response.status == 200 else None
            for field in ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"):
                (obj or {}).get("metadata", {}).pop(field, None)
            found[path] = obj
    return found


def leftovers_of(api: client.ApiClient, run_id: str) -> list[str]:
    """The objects carrying `run_id`'s label, of every kind a technique creates, in any namespace."""
    selector = f"{RUN_ID_LABEL}={run_id}"
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    lists = [core.list_pod_for_all_namespaces, core.list_secret_for_all_namespaces,
             core.list_config_map_for_all_namespaces, rbac.list_role_for_all_namespaces,
             rbac.list_role_binding_for_all_namespaces, rbac.list_cluster_role,
             rbac.list_cluster_role_binding]
    return [f"{listed.__name__}: {found.metadata.namespace or ''}/{found.metadata.name}" for listed in lists
            for found in listed(label_selector=selector).items]


def node_leftover(arguments: dict[str, Any]) -> str:
    """What a run killed after its node change leaves, its agent pod gone too (deleted, or its node restarted):
    kubelet-anonymous-auth made on the worker, never put back. The agent pod's name."""
    configuration = {**arguments["configuration"], "allow_node_faults": True}
    outcome = inject_node_fault("kubelet-anonymous-auth", NODE_WORKER, within=10, configuration=configuration,
                                secrets=arguments["secrets"])
    assert outcome["outcome"] == "allowed" and outcome["path"] == LEFT_NODE_FILE, outcome
    return outcome["agent"]


@pytest.fixture(scope="module")
def nodes(scenarios, core, tmp_path_factory) -> Iterator[dict[str, Path]]:
    """Both nodes opted in to node faults, each with a kubeadm tree as its filesystem (as
    tests/test_nodes_experiments.py's fixture); labels and trees taken away afterwards."""
    work = tmp_path_factory.mktemp("node-trees")
    roots = {node: make_node_tree(work / node) for node in (NODE_WORKER, NODE_CONTROL)}
    with nodes_attached(scenarios.sandbox, core, roots):
        yield roots


@pytest.fixture(scope="module")
def played(scenarios, api, core, alertmanager, falco, workers, nodes, tmp_path_factory) -> dict[str, list]:
    """Per experiment (and for what no experiment does, and cleanup): [(families, requests, groups acted as)]."""
    work = tmp_path_factory.mktemp("permissions")
    sandbox = scenarios.sandbox
    token = ["--var", "identity_via=token"]
    # (suite, experiments, options, exit codes: 2 is some experiment ended in error, its requests still count)
    suites = [
        ("held", BLOCKING, [], (0, 2)),
        ("open", BLOCKING, ["--var", "namespace=team-privileged", "--expect", "weakness"], (0, 2)),
        ("undetected", DETECTING, ["--var", "namespace=team-privileged", "--var", "within:int=1",
                                   "--var", f"alertmanager_url={alertmanager.url}",
                                   "--var", f"receiver_port:int={free_port()}", "--expect", "weakness"], (0, 2)),
        # the sandbox's own viewer reads everything through a wildcard ClusterRole: a posture weakness
        ("posture", POSTURE, ["--expect", "weakness"], (0,)),
        ("identity-team", IDENTITY, [], (0,)),
        ("identity-granted", IDENTITY, GRANTED, (0,)),
        ("identity-team-token", IDENTITY, token, (0,)),
        ("identity-granted-token", IDENTITY, [*GRANTED, *token], (0,)),
        ("guardrails-team", GUARDRAIL_EXPERIMENTS, [], (0,)),
        ("guardrails-granted", GUARDRAIL_EXPERIMENTS, ["--var", "namespace=gr-granted", "--expect", "weakness"], (0,)),
        ("fail-closed", FAIL_CLOSED, [], (0,)),
        ("fail-open", FAIL_CLOSED, FAIL_OPEN, (0,)),
    ]
    journals = []

    def play(suite: str, files: list[Path], options: list[str], codes: tuple[int, ...]) -> None:
        done = kirvis("run", *map(str, files), "--journals", str(work / suite), *options,
                      kubeconfig=scenarios.kubeconfig, cwd=work)
        assert done.returncode in codes, done.stdout + done.stderr
        journals.extend((work / suite / f"{path.stem}.json", path) for path in files)

    for suite in suites:
        play(*suite)
    # the node experiments with what is not in the sandbox played: kube-bench (judging the trees) and the kubelet
    bench = KubeBench(api, sandbox, "default", nodes[NODE_CONTROL], nodes[NODE_WORKER])
    kubelet = Kubelet(core, nodes[NODE_CONTROL], "kube-apiserver", NODE_CONTROL)
    try:
        play("nodes", NODES, ["--var", "within:int=10"], (0,))
    finally:
        bench.close()
        kubelet.close()
    assert len(bench.answered) == 3 * len(NODES), bench.answered  # before, after the change, after the restore

    def runs_requests(run_id: str) -> list:
        # The User-Agent names the run; an exec (a WebSocket, whose client sends no User-Agent of ours)
        # is known by its pod, whose name holds the run id.
        mine = [r for r in sandbox.requests
                if f"(run {run_id})" in r.user_agent or (run_id in r.path and r.path.endswith("/exec"))]
        assert mine, f"no request of run {run_id} in the sandbox's log"
        return mine

    played: dict[str, list] = {}
    for journal_path, path in journals:
        journal = json.loads(journal_path.read_text())
        played.setdefault(name_of(path), []).append(
            (families_of(yaml.safe_load(path.read_text())), runs_requests(journal["chaoskirvis"]["run_id"]),
             acted_as(journal)))

    def as_one_run(act) -> tuple[str, Any]:
        run_id = new_run_id()
        reset_run_id(run_id)
        try:
            return run_id, act({"configuration": {"kirvis_run_id": run_id},
                                "secrets": {"KUBECONFIG": str(scenarios.kubeconfig)}})
        finally:
            reset_run_id()

    # What the code can do that no shipped experiment does: a DaemonSet, a namespace drawn by opt-in label.
    opt_in = f"kirvis-permissions-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": opt_in, "labels": {opt_in: "true"}}})

    def workload_and_exposure(arguments: dict[str, Any]) -> None:
        inject_risky_workload("team-privileged", ["privileged"], controller="DaemonSet", **arguments)
        inject_exposure("nodeport-service", opt_in_label=f"{opt_in}=true", **arguments)
        # a record changed since the run wrote it is read again (configmaps get) before its delete
        touched = {"metadata": {"annotations": {"example.com/touched": "true"}}}
        core.patch_namespaced_config_map(f"kirvis-ledger-{arguments['configuration']['kirvis_run_id']}",
                                         "team-privileged", touched)
        restore_run(**arguments)

    try:
        workload_run, _ = as_one_run(workload_and_exposure)
    finally:
        core.delete_namespace(opt_in)
    identity_run, outcomes = as_one_run(lambda arguments: [*identity_plays(arguments), restore_run(**arguments)])
    assert leftovers_of(api, identity_run) == []
    left_run, planted = as_one_run(plant_leftovers)  # no restore: as a run killed before its rollbacks
    guardrails_before = guardrail_contents(api)
    guardrail_runs = [as_one_run(lambda arguments, t=t.id: guardrail_play(t, arguments))[0] for t in GUARDRAILS]
    assert guardrail_contents(api) == guardrails_before
    guardrail_left_run, _ = as_one_run(guardrail_leftovers)  # no restore: a run killed after its changes
    assert guardrail_contents(api) != guardrails_before
    node_file = nodes[NODE_WORKER] / LEFT_NODE_FILE.lstrip("/")
    node_file_before = node_file.read_bytes()
    node_left_run, node_agent = as_one_run(node_leftover)  # no restore, and its agent deleted
    core.delete_namespaced_pod(node_agent, "default", grace_period_seconds=0)
    assert node_file.read_bytes() != node_file_before
    guardrail_families = {EVERY_EXPERIMENT, GUARDRAIL_FAMILY}
    played["beyond-the-experiments"] = [
        ({EVERY_EXPERIMENT, family_of("chaoskirvis.workload.actions", "inject_risky_workload"),
          family_of("chaoskirvis.exposure.actions", "inject_exposure")}, runs_requests(workload_run), {}),
        ({EVERY_EXPERIMENT, IDENTITY_FAMILY}, runs_requests(identity_run), acted_as(outcomes)),
        ({EVERY_EXPERIMENT, IDENTITY_FAMILY}, runs_requests(left_run), {}),
        *((guardrail_families, runs_requests(run), {}) for run in guardrail_runs),
        (guardrail_families, runs_requests(guardrail_left_run), {}),
        ({EVERY_EXPERIMENT, family_of("chaoskirvis.nodes.actions", "inject_node_fault")},
         runs_requests(node_left_run), {}),
    ]

    seen = len(sandbox.requests)
    done = kirvis("cleanup", "--run-id", left_run, kubeconfig=scenarios.kubeconfig, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    removed = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("removing ")}
    assert planted <= removed and leftovers_of(api, left_run) == [], done.stdout
    # the guardrails a killed run changed are put back only by naming the run (cluster-scoped ones)
    done = kirvis("cleanup", "--run-id", guardrail_left_run, kubeconfig=scenarios.kubeconfig, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert guardrail_contents(api) == guardrails_before, done.stdout
    # a node file a killed run changed is put back through an agent pod cleanup starts
    done = kirvis("cleanup", "--run-id", node_left_run, kubeconfig=scenarios.kubeconfig, cwd=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert node_file.read_bytes() == node_file_before and leftovers_of(api, node_left_run) == [], done.stdout
    # an exec (a WebSocket: no User-Agent of ours) is known by the agent pod's name, which holds the run id
    ours = [r for r in sandbox.requests[seen:] if r.user_agent.startswith("chaoskirvis/")
            or (node_left_run in r.path and r.path.endswith("/exec"))]
    played["kirvis-cleanup"] = [({CLEANUP}, ours, {})]
    return played


def test_every_shipped_experiment_is_played():
    """A new experiment (or folder of them) is played here, or this fails: its requests must be documented."""
    assert sorted({*BLOCKING, *DETECTING, *POSTURE, *IDENTITY, *GUARDRAIL_EXPERIMENTS, *FAIL_CLOSED, *NODES}) == SHIPPED
    assert POSTURE and IDENTITY and GUARDRAIL_EXPERIMENTS and FAIL_CLOSED and NODES


@pytest.mark.parametrize("name", [name_of(p) for p in SHIPPED] + ["beyond-the-experiments", "kirvis-cleanup"])
def test_every_request_is_covered_by_the_documented_permissions(played, name):
    uncovered = set()
    for families, requests, groups in played[name]:
        for request in requests:
            for need in runner_needs(request, groups):
                if not covered(need, families):
                    uncovered.add((need, f"{request.method} {request.path}"))
    assert not uncovered, sorted(uncovered)


def test_every_documented_request_is_sent_by_some_run(played):
    """No rule is there for nothing: each (but those checked while authorizing another) is needed by a request."""
    needed = {need for runs in played.values() for _, requests, groups in runs for request in requests
              for need in runner_needs(request, groups)}
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
