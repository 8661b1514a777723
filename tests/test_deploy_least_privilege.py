"""Least privilege, proven on the sandbox (which enforces RBAC and issues ServiceAccount tokens): the manifests
`kirvis deploy` renders for the default selection, keeping the journals in the deployment's own namespace and
pushing the verdicts to a real Pushgateway, are applied (`--apply`'s code), the CronJob's commands run as its
ServiceAccount (a TokenRequest token, read as a pod reads its own with CHAOSTOOLKIT_IN_POD; the experiments read
back from the applied ConfigMap) and the suite holds; every request the ServiceAccount sent, in the sandbox's
request log, is covered by a generated rule. Then each generated rule is removed alone, re-applied, and the job
run again (the token in a kubeconfig): it fails every time, an experiment ending `error` (the runner's own
403), and the cleanup step failing too where it sweeps that kind; for the kept journals' rule, the run ending 2
saying the journals were not kept. No rule is there for the cleanup step alone: it sweeps only the kinds the
selection creates (`kirvis cleanup --kind`). So every rule is needed. The commands run in this process
(`chaoskirvis.cli.main`), as the pod would run them."""
from __future__ import annotations

import base64
import copy
import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from chaoskirvis import kubeconfig as kubeconfig_module
from chaoskirvis.cli import main
from chaoskirvis.client import KubeAPI, kube_api
from chaoskirvis.deploy.apply import apply_all
from chaoskirvis.ledger.kinds import kind_named
from chaoskirvis.ledger.ownership import RUN_ID_LABEL
from chaoskirvis.ledger.refs import CONFIG_MAP, SWEPT_KINDS
from chaoskirvis.deploy.permissions import experiment_grants
from chaoskirvis.deploy.render import EXPERIMENTS_DIR, WORK_DIR, Options, load_experiments, render
from chaoskirvis.run.keep import KEPT_LABEL, PART_OF_LABEL
from chaoskirvis.sandbox.api import parse_api_path
from test_deploy_render import DEFAULT_SELECTION
from test_metrics_push import group as gateway_group, running_pushgateway, verdicts

SERVICE_ACCOUNT = "kirvis"
CLUSTER = "prod-eu-1"  # --cluster-name: a run in a pod records no kubeconfig context
PROGRESS = re.compile(r"^\[\d+/\d+\] ([A-Z]+(?: \(EXPECTED\))?)\s+(\S+\.yaml) in ", re.M)  # a verdict line


@dataclass
class Deployed:
    api: KubeAPI  # the admin's
    manifests: list[dict]
    kubeconfig: Path  # the ServiceAccount's token
    token: str
    server: tuple[str, int]  # the API server's host and port, as a pod's environment gives them
    ca_pem: bytes
    namespace: str


def deploy(scenarios, selection: list[Path], folder: Path, pushgateway: str | None = None,
           keep: int | None = None) -> Deployed:
    """`selection` rendered for a fresh deployment namespace, keeping the journals there (and pushing to
    `pushgateway` as cluster CLUSTER), applied twice (the second only replaces), and a kubeconfig holding a
    TokenRequest token of its ServiceAccount."""
    sandbox = scenarios.sandbox
    api = kube_api(secrets={"KUBECONFIG": str(scenarios.kubeconfig)})
    namespace = f"kirvis-lp-{uuid.uuid4().hex[:6]}"
    options = Options(namespace=namespace, keep_journals_in=namespace, keep=keep, pushgateway=pushgateway,
                      cluster_name=CLUSTER if pushgateway else None)
    manifests = render(load_experiments(selection), options)
    lines = list(apply_all(api, manifests))
    assert lines[0] == f"created Namespace {namespace}" and all(line.startswith("created ") for line in lines)
    assert all(line.startswith("configured ") for line in apply_all(api, manifests))  # idempotent
    answer = api.create(f"/api/v1/namespaces/{namespace}/serviceaccounts/{SERVICE_ACCOUNT}/token",
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                         "spec": {"audiences": [], "expirationSeconds": 3600}})
    kubeconfig = folder / "service-account.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "job",
        "clusters": [{"name": "sandbox", "cluster": {
            "server": sandbox.url, "certificate-authority-data": base64.b64encode(sandbox.ca_pem).decode()}}],
        "users": [{"name": "job", "user": {"token": answer.body["status"]["token"]}}],
        "contexts": [{"name": "job", "context": {"cluster": "sandbox", "user": "job"}}]}))
    kubeconfig.chmod(0o600)
    return Deployed(api, manifests, kubeconfig, answer.body["status"]["token"],
                    ("127.0.0.1", int(sandbox.url.rsplit(":", 1)[1])), sandbox.ca_pem, namespace)


def undeploy(deployed: Deployed) -> None:
    for manifest in deployed.manifests:  # the RBAC elsewhere; the rest goes with the namespace
        metadata = manifest["metadata"]
        if manifest["kind"] in ("Role", "RoleBinding"):
            deployed.api.delete(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{metadata['namespace']}/"
                                f"{manifest['kind'].lower()}s/{metadata['name']}")
        elif manifest["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            deployed.api.delete(f"/apis/rbac.authorization.k8s.io/v1/{manifest['kind'].lower()}s/{metadata['name']}")
    deployed.api.delete(f"/api/v1/namespaces/{deployed.namespace}")


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory) -> Iterator[str]:
    with running_pushgateway(tmp_path_factory.mktemp("pushgateway")) as url:
        yield url


@pytest.fixture(scope="module")
def deployed(scenarios, pushgateway, tmp_path_factory) -> Iterator[Deployed]:
    done = deploy(scenarios, DEFAULT_SELECTION, tmp_path_factory.mktemp("deploy"), pushgateway)
    yield done
    undeploy(done)


@dataclass
class Job:
    cleanup: int
    cleanup_err: str
    run: int
    verdicts: dict[str, str]
    output: str
    run_ids: list[str]


def run_job(deployed: Deployed, work: Path, monkeypatch, capsys, *, in_pod: bool = False) -> Job:
    """The CronJob's init containers then container, as stored in the cluster, with the stored ConfigMap's
    experiments: their paths in the pod mapped into `work`; as credentials the ServiceAccount's kubeconfig or,
    `in_pod`, what a pod has: its token and CA where the kubelet mounts them (here under `work`), the API
    server in KUBERNETES_SERVICE_HOST/PORT, no kubeconfig (HOME=/tmp, the container's, has none)."""
    namespace = deployed.namespace
    job = deployed.api.get(f"/apis/batch/v1/namespaces/{namespace}/cronjobs/kirvis")
    data = deployed.api.get(f"/api/v1/namespaces/{namespace}/configmaps/kirvis-experiments")["data"]
    (work / "experiments").mkdir(parents=True)
    for key, text in data.items():
        (work / "experiments" / key).write_text(text)
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    cleanups, (container,) = pod.get("initContainers", []), pod["containers"]  # none: nothing to sweep
    if in_pod:
        mounted = work / "serviceaccount"
        mounted.mkdir()
        (mounted / "token").write_text(deployed.token)
        (mounted / "ca.crt").write_bytes(deployed.ca_pem)
        monkeypatch.setattr(kubeconfig_module, "SERVICE_ACCOUNT", mounted)
        monkeypatch.delenv("KUBECONFIG", raising=False)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", deployed.server[0])
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(deployed.server[1]))
        assert not Path("/tmp/.kube/config").exists()
    else:
        monkeypatch.setenv("KUBECONFIG", str(deployed.kubeconfig))
    results = []
    chaostoolkit = logging.getLogger("chaostoolkit")  # `kirvis run` configures it, as a process would once
    handlers, filters = list(chaostoolkit.handlers), list(chaostoolkit.filters)
    for step in (*cleanups, container):
        assert step["command"] == ["kirvis"]
        for variable in step["env"]:
            monkeypatch.setenv(variable["name"], variable["value"])
        arguments = [a.replace(EXPERIMENTS_DIR, str(work / "experiments")).replace(WORK_DIR, str(work))
                     for a in step["args"]]
        try:
            results.append((main(arguments), capsys.readouterr()))
        finally:
            for handler in set(chaostoolkit.handlers) - set(handlers):
                handler.close()
            chaostoolkit.handlers[:], chaostoolkit.filters[:] = handlers, filters
    *cleaned, (run_code, run_out) = results
    run_ids = [json.loads(journal.read_text())["chaoskirvis"]["run_id"]
               for journal in (work / "journals").glob("*.json")]
    return Job(max((code for code, _ in cleaned), default=0), "".join(out.err for _, out in cleaned), run_code,
               {name: word for word, name in PROGRESS.findall(run_out.out)}, run_out.out + run_out.err, run_ids)


def sa_requests(sandbox, seen: int, namespace: str) -> list:
    user = f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"
    return [r for r in sandbox.requests[seen:] if r.user == user]


def granted(manifests: list[dict]) -> set[tuple[str | None, str, str, str]]:
    """(namespace, group, resource, verb) every generated rule grants."""
    return {(m["metadata"].get("namespace") if m["kind"] == "Role" else None, group, resource, verb)
            for m in manifests if m["kind"] in ("Role", "ClusterRole") for rule in m["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]}


def verb_of(method: str, named: bool, query: dict) -> str:
    if method == "GET":
        return "watch" if query.get("watch") in ("true", "1") else "get" if named else "list"
    return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method]


def needs_of(requests: list) -> set[tuple[str | None, str, str, str]]:
    """(namespace, group, resource, verb) RBAC checked for each request, as RequestInfo reads its URL; the
    requests every authenticated identity may make (/version, selfsubjectreviews) left out."""
    needs = set()
    for request in requests:
        if not request.path.startswith(("/api/", "/apis/")):
            continue  # /version: system:public-info-viewer's
        parsed = parse_api_path(request.path)
        if parsed.plural == "selfsubjectreviews":  # system:basic-user's
            continue
        resource = parsed.plural + (f"/{parsed.subresource}" if parsed.subresource else "")
        verbs = ("get", "create") if (request.method, parsed.subresource) == ("GET", "exec") \
            else (verb_of(request.method, bool(parsed.name), request.query),)  # a WebSocket exec is both
        needs |= {(parsed.namespace, parsed.group, resource, verb) for verb in verbs}
    return needs


def kept_journals(deployed: Deployed) -> dict[str, str]:
    """The kept journals in the deployment's namespace: ConfigMap name -> the experiment it keeps."""
    items = deployed.api.get(CONFIG_MAP.collection_path(deployed.namespace),
                             labelSelector=f"{PART_OF_LABEL}=chaoskirvis")["items"]
    return {item["metadata"]["name"]: item["metadata"]["labels"][KEPT_LABEL] for item in items}


def test_the_job_holds_as_its_service_account_and_every_request_is_a_generated_rule(
        deployed, scenarios, pushgateway, tmp_path, monkeypatch, capsys):
    sandbox = scenarios.sandbox
    seen = len(sandbox.requests)
    job = run_job(deployed, tmp_path, monkeypatch, capsys, in_pod=True)
    assert job.cleanup == 0, job.cleanup_err
    assert job.run == 0, job.output
    assert job.verdicts == {p.name: "HELD" for p in DEFAULT_SELECTION}, job.output
    requests = sa_requests(sandbox, seen, deployed.namespace)
    assert len(requests) > 20
    assert needs_of(requests) <= granted(deployed.manifests), needs_of(requests) - granted(deployed.manifests)
    # the journals outlive the pod, in the deployment's namespace; the verdicts reached the gateway under the
    # cluster name deploy passed (the pod's run has no kubeconfig context to name it)
    assert kept_journals(deployed) == {f"kirvis-journal-{run_id}": stem for run_id, stem in job_journals(tmp_path)}
    assert sorted(kept_journals(deployed).values()) == sorted(p.stem for p in DEFAULT_SELECTION)
    pushed = verdicts(gateway_group(pushgateway, CLUSTER))
    assert len({experiment for experiment, _, _ in pushed}) == len(DEFAULT_SELECTION), pushed
    assert set(pushed.values()) == {"held"}, pushed


def job_journals(work: Path) -> list[tuple[str, str]]:
    """(run id, experiment file stem) of each journal the job wrote under `work`."""
    return [(json.loads(path.read_text())["chaoskirvis"]["run_id"], path.stem)
            for path in (work / "journals").glob("*.json")]


def test_where_the_controls_are_missing_the_verbs_a_held_run_leaves_unused_are_used(
        scenarios, tmp_path, monkeypatch, capsys):
    """The same selection aimed where no control is (team-privileged; gr-granted, whose Pod Security labels no
    policy guards): every introduction admitted, each a weakness expected as one, and restore now reads and
    deletes each admitted object, and puts the namespace back; an older kept journal of one experiment, beyond
    --keep 1, is deleted. Every verb of every rule is used by the job (list by the cleanup step; the get of a
    record without changes only on a conflict). Still nothing outside the rules."""
    selection = []
    for path in DEFAULT_SELECTION:
        experiment = yaml.safe_load(path.read_text())
        open_namespace = "gr-granted" if "guardrail" in experiment["tags"] else "team-privileged"
        experiment["configuration"].update(namespace=open_namespace, kirvis_expect="weakness")
        selection.append(tmp_path / path.name)
        selection[-1].write_text(yaml.safe_dump(experiment, sort_keys=False))
    deployed = deploy(scenarios, selection, tmp_path, keep=1)
    try:
        deployed.api.create(CONFIG_MAP.collection_path(deployed.namespace), {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": "kirvis-journal-older", "annotations": {"chaoskirvis.io/ended": "2000-01-01T00:00:00+00:00"},
                "labels": {PART_OF_LABEL: "chaoskirvis", KEPT_LABEL: DEFAULT_SELECTION[0].stem}}})
        seen = len(scenarios.sandbox.requests)
        job = run_job(deployed, tmp_path / "job", monkeypatch, capsys)
        assert (job.cleanup, job.run) == (0, 0), job.output
        assert set(job.verdicts.values()) == {"WEAKNESS (EXPECTED)"}, job.output
        assert len(job.verdicts) == len(DEFAULT_SELECTION), job.output
        needs = needs_of(sa_requests(scenarios.sandbox, seen, deployed.namespace))
        assert sorted(kept_journals(deployed)) == sorted(f"kirvis-journal-{run_id}" for run_id in job.run_ids)
    finally:
        undeploy(deployed)
    assert needs <= granted(deployed.manifests), needs - granted(deployed.manifests)
    for where, rule in each_rule(deployed.manifests):
        key = (where, rule["apiGroups"][0], rule["resources"][0])
        used = {verb for *at, verb in needs if tuple(at) == key}
        expected = set(rule["verbs"])
        # restore reads a record by name again when it holds changes (the guardrail's, in gr-granted), else only
        # when someone changed it since the run wrote it (tests/test_permissions.py plays that)
        if key[1:] == ("", "configmaps") and where != "gr-granted":
            expected.discard("get")
        assert used == expected, (rule, used)


def swept_by_job(deployed: Deployed) -> set[tuple[str, str, str]]:
    """(namespace, group, resource) the stored CronJob's cleanup steps list: each `--kind` in each `-n`, and the
    run records (ConfigMaps) there."""
    job = deployed.api.get(f"/apis/batch/v1/namespaces/{deployed.namespace}/cronjobs/kirvis")
    swept = set()
    for step in job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"]:
        args = step["args"]
        namespaces = [value for flag, value in zip(args, args[1:]) if flag == "-n"]
        kinds = [kind_named(value) for flag, value in zip(args, args[1:]) if flag == "--kind"]
        assert args[:2] == ["cleanup", "--expired"] and namespaces and kinds and None not in kinds, args
        swept |= {(namespace, kind.api_version.rpartition("/")[0], kind.plural)
                  for namespace in namespaces for kind in (*kinds, CONFIG_MAP)}
    return swept


def experiments_need(selection: list[Path]) -> set[tuple[str | None, str, str]]:
    """(namespace, group, resource) some experiment's activity needs (the rest is the cleanup sweep's)."""
    return {(grant.namespace, grant.group, grant.resource) for experiment in load_experiments(selection)
            for grant in experiment_grants(experiment.key, experiment.document)}


def each_rule(manifests: list[dict]) -> list[tuple[str | None, dict]]:
    return [(m["metadata"].get("namespace"), rule) for m in manifests if m["kind"] in ("Role", "ClusterRole")
            for rule in m["rules"]]


def rules_of(manifests: list[dict]) -> list[tuple[int, int]]:
    """(manifest index, rule index) of every generated rule."""
    return [(i, j) for i, m in enumerate(manifests) if m["kind"] in ("Role", "ClusterRole")
            for j in range(len(m["rules"]))]


def test_every_generated_rule_is_needed(deployed, scenarios, tmp_path, monkeypatch, capsys):
    """Without any one rule the job fails: an experiment errors (and the cleanup step fails too where it sweeps
    that kind), or, for the kept journals' rule, the run says the journals were not kept. No rule is there for
    the cleanup step alone."""
    manifests = deployed.manifests
    needed = experiments_need(DEFAULT_SELECTION)
    swept = swept_by_job(deployed)
    assert swept <= needed  # the cleanup sweeps only what the experiments store (and the records)
    checked, run_ids = 0, []
    try:
        for attempt, (index, rule_index) in enumerate(rules_of(manifests)):
            role = copy.deepcopy(manifests[index])
            rule = role["rules"].pop(rule_index)
            list(apply_all(deployed.api, [role]))
            try:
                with monkeypatch.context() as patched:
                    job = run_job(deployed, tmp_path / str(attempt), patched, capsys)
            finally:
                list(apply_all(deployed.api, [manifests[index]]))  # the rule back before the next is removed
            group, resource = rule["apiGroups"][0], rule["resources"][0]
            where = role["metadata"].get("namespace")
            what = f"rule {resource}{'.' + group if group else ''} {rule['verbs']} in {where}"
            assert job.cleanup != 0 or job.run == 2, f"the job still passes without {what}:\n{job.output}"
            if where == deployed.namespace:  # the kept journals': the suite held, its evidence was not kept
                assert (group, resource) == ("", "configmaps"), what
                assert job.run == 2 and set(job.verdicts.values()) == {"HELD"}, f"{what}:\n{job.output}"
                assert "cannot create ConfigMap kirvis-journal-" in job.output, job.output
                assert f'in the namespace "{where}"' in job.output, job.output
            else:  # an experiment needs it: the runner's own 403 is an error
                assert (where, group, resource) in needed, f"{what} is needed by no experiment"
                assert job.run == 2 and "ERROR" in job.verdicts.values(), f"{what}:\n{job.output}"
                scope = f'in the namespace "{where}"' if where else "at the cluster scope"
                denied = f'cannot {{}} resource "{resource}" in API group "{group}" {scope}'
                assert any(denied.format(verb) in job.output for verb in rule["verbs"]), f"{what}:\n{job.output}"
            if (where, group, resource) in swept:  # and the cleanup step, sweeping that kind there, cannot list it
                assert job.cleanup == 1, f"{what}: {job.cleanup_err}"
                assert f"cannot list {resource} in namespace {where} (403" in job.cleanup_err, job.cleanup_err
            else:
                assert job.cleanup == 0, f"{what}: {job.cleanup_err}"
            checked += 1
            run_ids += job.run_ids
    finally:
        list(apply_all(deployed.api, manifests))
    assert checked == len(rules_of(manifests)) == 11  # as docs/deploy.md says
    # A run short of a permission leaves no object, only (when restore could not read what it meant to create)
    # its record, kept so that `kirvis cleanup --run-id` finishes the restore: done here with the admin's rights.
    assert len(run_ids) == len(DEFAULT_SELECTION) * checked
    left = leftovers(deployed.api, run_ids)
    assert {plural for _, plural, _ in left} <= {"configmaps"}, left
    monkeypatch.setenv("KUBECONFIG", str(scenarios.kubeconfig))
    for run_id in {name.removeprefix("kirvis-ledger-") for _, _, name in left}:
        assert main(["cleanup", "--run-id", run_id]) == 0, capsys.readouterr()
    assert leftovers(deployed.api, run_ids) == []


def leftovers(api: KubeAPI, run_ids: list[str],
              namespaces: Iterable[str] = ("gr-team", "team-baseline", "team-restricted")) -> list[tuple[str, str, str]]:
    """(namespace, plural, name) of what carries one of `run_ids` in `namespaces`, of every swept kind and the
    records."""
    selector = f"{RUN_ID_LABEL} in ({','.join(run_ids)})"
    return [(namespace, kind.plural, item["metadata"]["name"])
            for namespace in sorted(namespaces) for kind in (*SWEPT_KINDS, CONFIG_MAP)
            if kind.namespaced
            for item in api.get(kind.collection_path(namespace), labelSelector=selector)["items"]]

def test_apply_through_the_command_is_idempotent_and_a_refusal_exits_1(scenarios, tmp_path, monkeypatch, capsys):
    """`kirvis deploy --apply` with the cluster's admin creates, then replaces; with an identity that may only
    read (the sandbox's viewer) it stops at the API's 403, exit 1, naming the request."""
    namespace = f"kirvis-apply-{uuid.uuid4().hex[:6]}"
    command = ["deploy", *map(str, DEFAULT_SELECTION), "--namespace", namespace, "--apply",
               "--image", "registry.example/chaostoolkit-kirvis:1"]
    assert main(command[:-2]) == 2  # the default image names no registry: never applied
    assert "--apply needs --image" in capsys.readouterr().err
    viewer = scenarios.sandbox.write_kubeconfig(tmp_path / "viewer.kubeconfig", user="viewer")
    monkeypatch.setenv("KUBECONFIG", str(viewer))
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "kirvis deploy: could not apply: POST /api/v1/namespaces: 403" in err, err
    monkeypatch.setenv("KUBECONFIG", str(scenarios.kubeconfig))
    api = kube_api(secrets={"KUBECONFIG": str(scenarios.kubeconfig)})
    try:
        assert main(command) == 0
        first = capsys.readouterr().out.splitlines()
        assert main(command) == 0
        second = capsys.readouterr().out.splitlines()
        assert first[0] == f"created Namespace {namespace}" and len(first) == len(second) == 10
        assert all(line.startswith("created ") for line in first), first
        assert [line.replace("configured ", "created ") for line in second] == first
        stored = api.get(f"/apis/batch/v1/namespaces/{namespace}/cronjobs/kirvis")
        assert stored["spec"]["concurrencyPolicy"] == "Forbid"
    finally:
        for target in ("gr-team", "team-baseline", "team-restricted"):
            for plural in ("roles", "rolebindings"):
                api.delete(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{target}/{plural}/kirvis-runner-{namespace}")
        api.delete(f"/api/v1/namespaces/{namespace}")
