"""Identity experiments, acted as a team's service account against the sandbox's real RBAC.

Each experiment of experiments/identity/ holds where the teams have least privilege
(scenarios/identity-least-privilege.yaml) and shows a weakness where a team was over-granted
(scenarios/identity-over-granted.yaml), run with the real `chaos` CLI; nothing it made stays. A runner
that may not impersonate makes the run an error, never held. Kubernetes' answers are the reference:
RBAC's 403 names the requesting user (`User "system:serviceaccount:NS:NAME" cannot ...`), the
impersonation filter's names the runner (`User "RUNNER" cannot impersonate resource ...`).
"""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.runid import new_run_id, reset_run_id
from chaoskirvis.rbac.actions import inject_identity_technique, inject_rbac_grant
from chaoskirvis.sandbox.server import Sandbox
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos
from identities import limited_user

ROOT = Path(__file__).resolve().parents[1]
IDENTITY_EXPERIMENTS = sorted((EXPERIMENTS / "identity").glob("*.yaml"))
OVER_GRANTED = {"namespace": "granted-a", "other_namespace": "granted-b"}
TEAM_APP = "system:serviceaccount:team-a:app"
# What a run leaves behind if its restore missed something, by run id label.
LEFTOVER_LISTS = ("list_secret_for_all_namespaces", "list_config_map_for_all_namespaces",
                  "list_pod_for_all_namespaces")
RBAC_LISTS = ("list_cluster_role_binding", "list_cluster_role", "list_role_binding_for_all_namespaces",
              "list_role_for_all_namespaces")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[Sandbox, Path]]:
    """A sandbox of its own with both identity scenarios applied (their namespaces differ)."""
    with Sandbox() as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path_factory.mktemp("identity") / "kubeconfig")
        for name in ("identity-least-privilege.yaml", "identity-over-granted.yaml"):
            sandbox.apply(ROOT / "scenarios" / name)
        yield sandbox, kubeconfig


@pytest.fixture
def activity(cluster) -> Iterator[dict]:
    """Arguments for activities called in this process as one fresh run, restored afterwards."""
    run_id = new_run_id()
    reset_run_id(run_id)
    arguments = {"configuration": {"kirvis_run_id": run_id}, "secrets": {"KUBECONFIG": str(cluster[1])}}
    yield arguments
    restore_run(**arguments)
    reset_run_id()


def leftovers(kubeconfig: Path, run_id: str) -> list[str]:
    api = config.new_client_from_config(str(kubeconfig))
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    selector = f"chaoskirvis.io/run-id={run_id}"
    found = [f"{o.kind or lister}/{o.metadata.namespace}/{o.metadata.name}"
             for lister in LEFTOVER_LISTS for o in getattr(core, lister)(label_selector=selector).items]
    found += [f"{lister}/{o.metadata.namespace}/{o.metadata.name}"
              for lister in RBAC_LISTS for o in getattr(rbac, lister)(label_selector=selector).items]
    return found


def attempt_of(run) -> dict:
    (outcome,) = [r["output"] for r in run.journal["run"] if r["activity"]["type"] == "action"
                  and isinstance(r.get("output"), dict)]
    return outcome


def test_every_identity_experiment_is_shipped_with_its_scenarios():
    assert len(IDENTITY_EXPERIMENTS) >= 4
    for path in IDENTITY_EXPERIMENTS:
        experiment = yaml.safe_load(path.read_text())
        assert any(tag.startswith("attack:T") for tag in experiment["tags"]), path.name
        arguments = experiment["method"][0]["provider"]["arguments"]
        assert arguments["as_service_account"] == "${namespace}/app", path.name
        assert experiment["rollbacks"][0]["provider"]["func"] == "restore_run"
        assert experiment["controls"][0]["provider"]["module"] == "chaoskirvis.controls.evidence"
        done = subprocess.run([str(BIN / "chaos"), "--no-log-file", "validate", str(path)], env=chaos_env(None),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{path.name}: {done.stdout}{done.stderr}"


@pytest.mark.parametrize("path", IDENTITY_EXPERIMENTS, ids=lambda p: p.stem)
def test_holds_with_least_privilege_and_is_a_weakness_when_over_granted(cluster, tmp_path, path):
    sandbox, kubeconfig = cluster
    held = run_chaos(path, tmp_path, kubeconfig)
    weak = run_chaos(path, tmp_path, kubeconfig, variables=OVER_GRANTED)

    assert (held.exit_code, held.journal["status"], held.journal["deviated"]) == (0, "completed", False), held.output
    blocked = attempt_of(held)
    assert blocked["outcome"] == "blocked" and blocked["answered_by"] == "RBAC", blocked
    assert blocked["status"] == 403 and f'"{TEAM_APP}"' in blocked["message"], blocked
    assert blocked["as"] == {"user": TEAM_APP, "groups": [], "via": "impersonation"}

    assert (weak.exit_code, weak.journal["deviated"]) == (1, True), weak.output
    allowed = attempt_of(weak)
    assert allowed["outcome"] == "allowed" and allowed["as"]["user"] == "system:serviceaccount:granted-a:app"
    for run in (held, weak):
        assert leftovers(kubeconfig, run.journal["chaoskirvis"]["run_id"]) == []


@pytest.fixture(scope="module")
def limited_runner(cluster, tmp_path_factory) -> Path:
    """The kubeconfig of a runner that may write its record and create bindings, but not impersonate."""
    sandbox, kubeconfig = cluster
    return limited_user(sandbox, config.new_client_from_config(str(kubeconfig)), "kirvis-runner-no-impersonate", [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch", "get", "list", "delete"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"],
         "verbs": ["create", "get", "delete"]}], tmp_path_factory.mktemp("runner") / "kubeconfig")


def test_a_runner_that_may_not_impersonate_makes_the_run_an_error(cluster, limited_runner, tmp_path):
    """The impersonation filter refuses the runner (403 naming the runner): an error, never blocked."""
    _, kubeconfig = cluster
    done = run_chaos(EXPERIMENTS / "identity" / "team-cannot-bind-cluster-admin.yaml", tmp_path, limited_runner)

    assert done.exit_code == 1 and done.journal["status"] == "failed", done.output
    verdict = done.journal["chaoskirvis"]["verdict"]
    assert verdict["result"] == "error", verdict
    outcomes = done.journal["chaoskirvis"]["outcomes"]
    assert [o["outcome"] for o in outcomes] == ["error"], outcomes
    message = outcomes[0]["message"]
    assert 'User "kirvis-runner-no-impersonate" cannot impersonate resource "serviceaccounts"' in message
    assert "impersonate verb" in message
    assert leftovers(kubeconfig, done.journal["chaoskirvis"]["run_id"]) == []


def test_the_escalation_check_refusing_the_runner_itself_is_an_error_not_a_block(limited_runner, activity):
    """Without an identity the attempt is the runner's: RBAC's escalation check refusing it the
    cluster-admin binding is its own missing permission, an error."""
    runner = {**activity, "secrets": {"KUBECONFIG": str(limited_runner)}}
    with pytest.raises(Exception, match=r"could not attempt to create ClusterRoleBinding .*403 Forbidden") as refused:
        inject_rbac_grant("team-a", **runner)
    assert 'user "kirvis-runner-no-impersonate"' in str(refused.value)
    assert "attempting to grant RBAC permissions not currently held" in str(refused.value)


def test_groups_are_impersonated_one_header_each(cluster, activity):
    """A RoleBinding to the second group alone lets the read through: each group reached the API server
    as a group of its own (a comma-joined header would be one group named "team-a-devs, auditors")."""
    _, kubeconfig = cluster
    rbac = client.RbacAuthorizationV1Api(config.new_client_from_config(str(kubeconfig)))
    rbac.create_namespaced_role_binding("team-b", {
        "metadata": {"name": "auditors-view-secrets"},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "auditors"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}})
    try:
        allowed = inject_identity_technique("team-a", "list-secrets", options={"in_namespace": "team-b"},
                                            as_user="alice", as_groups=["team-a-devs", "auditors"], **activity)
        blocked = inject_identity_technique("team-a", "list-secrets", options={"in_namespace": "team-b"},
                                            as_user="alice", as_groups=["team-a-devs"], **activity)
    finally:
        rbac.delete_namespaced_role_binding("auditors-view-secrets", "team-b")
    assert allowed["outcome"] == "allowed" and allowed["as"]["groups"] == ["team-a-devs", "auditors"]
    assert blocked["outcome"] == "blocked" and blocked["answered_by"] == "RBAC"
    assert re.search(r'User "alice" cannot list resource "secrets" in API group "" in the namespace "team-b"',
                     blocked["message"]), blocked["message"]


def test_a_token_identity_is_bound_to_a_secret_of_the_run_and_dies_with_it(cluster, activity):
    """identity_via: token acts with the service account's own token (RBAC names it, no impersonation);
    the token is bound to a Secret the run owns, and a token bound to that Secret stops authenticating
    once restore deletes it."""
    sandbox, kubeconfig = cluster
    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    outcome = inject_identity_technique("team-a", "list-secrets", options={"in_namespace": "kube-system"},
                                        as_service_account="team-a/app", identity_via="token", **activity)

    assert outcome["outcome"] == "blocked" and outcome["answered_by"] == "RBAC"
    assert f'User "{TEAM_APP}" cannot list resource "secrets"' in outcome["message"]
    assert outcome["as"]["via"] == "token" and outcome["as"]["user"] == TEAM_APP
    run_id = activity["configuration"]["kirvis_run_id"]
    (binding,) = core.list_namespaced_secret("team-a", label_selector=f"chaoskirvis.io/run-id={run_id}").items
    assert outcome["as"]["bound_to"] == f"team-a/{binding.metadata.name}"
    assert "eyJ" not in json.dumps(outcome)  # no JWT anywhere in the evidence
    token = core.create_namespaced_service_account_token("app", "team-a", {"spec": {
        "audiences": [], "expirationSeconds": 600,
        "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": binding.metadata.name,
                           "uid": binding.metadata.uid}}}).status.token
    assert whoami(sandbox, token) == TEAM_APP

    restore_run(**activity)

    with pytest.raises(ApiException) as refused:
        whoami(sandbox, token)
    assert refused.value.status == 401
    assert leftovers(kubeconfig, run_id) == []


@pytest.mark.parametrize("variables, held", [({"identity_via": "token"}, True),
                                             ({**OVER_GRANTED, "identity_via": "token"}, False)],
                         ids=["least-privilege", "over-granted"])
def test_an_experiment_acts_with_the_service_accounts_own_token(cluster, tmp_path, variables, held):
    """--var identity_via=token: the same verdicts, with the service account's bound token instead of
    impersonation; the Secret the token was bound to is gone after the run."""
    _, kubeconfig = cluster
    done = run_chaos(EXPERIMENTS / "identity" / "team-cannot-read-kube-system-secrets.yaml", tmp_path, kubeconfig,
                     variables=variables)

    assert (done.exit_code, done.journal["deviated"]) == ((0, False) if held else (1, True)), done.output
    outcome = attempt_of(done)
    assert outcome["as"]["via"] == "token", outcome["as"]
    assert re.fullmatch(r"(team|granted)-a/kirvis-[a-z0-9]+-token-binding-[a-z0-9]{5}", outcome["as"]["bound_to"])
    assert outcome["outcome"] == ("blocked" if held else "allowed")
    assert leftovers(kubeconfig, done.journal["chaoskirvis"]["run_id"]) == []
    assert "eyJ" not in json.dumps(done.journal)


def test_an_allowed_token_request_leaves_no_token_that_authenticates(cluster, tmp_path):
    """Over-granted, the team's TokenRequest for another namespace's deployer succeeds: the token it got
    was bound to the run's Secret beside the deployer, which the rollback deleted."""
    sandbox, kubeconfig = cluster
    done = run_chaos(EXPERIMENTS / "identity" / "team-cannot-request-other-namespace-token.yaml", tmp_path,
                     kubeconfig, variables=OVER_GRANTED)
    assert (done.exit_code, done.journal["deviated"]) == (1, True), done.output
    allowed = attempt_of(done)
    assert allowed["outcome"] == "allowed" and allowed["kind"] == "TokenRequest"
    assert "token" not in allowed
    run_id = done.journal["chaoskirvis"]["run_id"]
    assert leftovers(kubeconfig, run_id) == []
    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    assert core.list_namespaced_secret("granted-b", label_selector=f"chaoskirvis.io/run-id={run_id}").items == []


def whoami(sandbox: Sandbox, token: str) -> str:
    """The user a bearer token authenticates as, by a SelfSubjectReview (401 when it authenticates no one)."""
    configuration = client.Configuration()
    configuration.host = sandbox.url
    configuration.ssl_ca_cert = str(sandbox.ca_file)
    configuration.api_key = {"BearerToken": token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    api = client.AuthenticationV1Api(client.ApiClient(configuration))
    return api.create_self_subject_review({"apiVersion": "authentication.k8s.io/v1",
                                           "kind": "SelfSubjectReview"}).status.user_info.username


# Each technique, with what the team in each scenario targets: {scenario: options}.
TECHNIQUE_CASES = {
    "list-secrets": {"team": {"in_namespace": "kube-system"}, "granted": {"in_namespace": "kube-system"}},
    "wildcard-clusterrole": {},
    "privilege-verbs-role": {},
    "anonymous-binding": {},
    "service-account-token-secret": {"team": {"service_account": "deployer"}, "granted": {"service_account": "deployer"}},
    "token-request": {"team": {"service_account": "team-b/deployer"}, "granted": {"service_account": "granted-b/deployer"}},
    "exec-into-other-pod": {"team": {"pod": "team-b/worker"}, "granted": {"pod": "granted-b/worker"}},
    "cluster-admin-binding": {},
}


@pytest.fixture(scope="module")
def workers(cluster) -> None:
    """A pod in team-b and granted-b for the exec technique (it stores objects; no container runs)."""
    core = client.CoreV1Api(config.new_client_from_config(str(cluster[1])))
    for namespace in ("team-b", "granted-b"):
        core.create_namespaced_pod(namespace, {"metadata": {"name": "worker"}, "spec": {
            "containers": [{"name": "worker", "image": "registry.k8s.io/pause:3.10"}]}})


@pytest.mark.parametrize("technique", TECHNIQUE_CASES)
def test_each_technique_is_refused_to_the_least_privileged_team_and_allowed_when_over_granted(
        cluster, workers, activity, technique):
    cases = TECHNIQUE_CASES[technique]
    refused = inject_identity_technique("team-a", technique, options=cases.get("team"),
                                        as_service_account="team-a/app", **activity)
    allowed = inject_identity_technique("granted-a", technique, options=cases.get("granted"),
                                        as_service_account="granted-a/app", **activity)

    assert (refused["outcome"], refused["answered_by"], refused["status"]) == ("blocked", "RBAC", 403), refused
    assert refused["message"].count(f'User "{TEAM_APP}" cannot ') == 1, refused["message"]
    assert allowed["outcome"] == "allowed", allowed
    assert allowed["as"]["user"] == "system:serviceaccount:granted-a:app"
    summary = restore_run(**activity)
    assert summary["failed"] == [] and leftovers(cluster[1], activity["configuration"]["kirvis_run_id"]) == []


def test_what_rbac_does_not_check_is_allowed_even_to_the_least_privileged_team(activity):
    """RBAC checks neither which service account a pod names nor what a ConfigMap holds: only an
    admission policy can block these, so RBAC alone leaves them allowed (a weakness, as it should read)."""
    pod = inject_identity_technique("team-a", "privileged-service-account-pod", options={"service_account": "deployer"},
                                    as_service_account="team-a/app", **activity)
    config_map = inject_identity_technique("team-a", "credentials-in-configmap", as_service_account="team-a/app",
                                           **activity)
    assert pod["outcome"] == config_map["outcome"] == "allowed"
    assert {pod["kind"], config_map["kind"]} == {"Pod", "ConfigMap"}


def test_workload_and_exposure_attempts_act_as_the_identity_too(activity):
    """The same arguments on the workload and exposure actions: team-b's service account may create
    nothing in team-a (RBAC names it); team-a's own may create the pod, which Pod Security then judges."""
    from chaoskirvis.exposure.actions import inject_exposure
    from chaoskirvis.workload.actions import inject_risky_pod

    foreign = inject_risky_pod("team-a", ["host-pid"], as_service_account="team-b/app", **activity)
    exposed = inject_exposure("nodeport-service", namespace="team-a", as_service_account="team-b/app", **activity)
    own = inject_risky_pod("team-a", ["host-pid"], as_service_account="team-a/app", **activity)

    for outcome in (foreign, exposed):
        assert (outcome["outcome"], outcome["answered_by"]) == ("blocked", "RBAC"), outcome
        assert 'User "system:serviceaccount:team-b:app" cannot create resource' in outcome["message"]
    assert (own["outcome"], own["answered_by"]) == ("blocked", "PodSecurity"), own
    assert own["as"]["user"] == TEAM_APP


def test_a_blocked_identity_experiment_makes_no_more_requests_than_any_blocked_one(cluster, tmp_path):
    """Impersonation adds headers, not requests: the intent, the refused create, the record's removal."""
    sandbox, kubeconfig = cluster
    run_id = new_run_id()
    since = len(sandbox.requests)
    done = run_chaos(EXPERIMENTS / "identity" / "team-cannot-bind-cluster-admin.yaml", tmp_path, kubeconfig,
                     KIRVIS_RUN_ID=run_id)
    assert done.exit_code == 0, done.output
    once = ("/version", "selfsubjectreviews")  # the evidence's identity, and the sweep's list of records
    own = sorted((r.method, r.path.split("/")[-2 if r.method == "DELETE" else -1], r.status)
                 for r in sandbox.requests[since:] if f"(run {run_id})" in (r.user_agent or "")
                 and not r.path.endswith(once) and "labelSelector" not in r.query)
    assert own == [("DELETE", "configmaps", 200), ("POST", "clusterrolebindings", 403),
                   ("POST", "configmaps", 201)], own


def test_a_runner_with_only_the_documented_rules_tests_the_cluster_admin_binding(cluster, tmp_path):
    """README's table: impersonate on the team's service account, the run record, get and delete for the
    restore; no create on clusterrolebindings. Held for team-a, a weakness (restored) for granted-a."""
    sandbox, kubeconfig = cluster
    rbac = client.RbacAuthorizationV1Api(config.new_client_from_config(str(kubeconfig)))
    runner = "kirvis-runner-documented"
    sandbox.add_user(runner)
    rbac.create_cluster_role({"metadata": {"name": runner}, "rules": [
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"], "resourceNames": ["app"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch", "get", "list", "delete"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"], "verbs": ["get", "delete"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]})
    rbac.create_cluster_role_binding({"metadata": {"name": runner}, "subjects": [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": runner}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": runner}})
    runner_kubeconfig = sandbox.write_kubeconfig(tmp_path / "documented", user=runner)
    path = EXPERIMENTS / "identity" / "team-cannot-bind-cluster-admin.yaml"

    held = run_chaos(path, tmp_path, runner_kubeconfig)
    weak = run_chaos(path, tmp_path, runner_kubeconfig, variables=OVER_GRANTED)

    assert held.exit_code == 0 and attempt_of(held)["answered_by"] == "RBAC", held.output
    assert (weak.exit_code, weak.journal["deviated"]) == (1, True), weak.output
    assert weak.journal["chaoskirvis"]["ledger"]["restored"] is True
    assert leftovers(kubeconfig, weak.journal["chaoskirvis"]["run_id"]) == []


@pytest.mark.parametrize("acting, says", [
    ({"as_service_account": "team-a"}, "as_service_account must be namespace/name"),
    ({"as_service_account": "team-a/app", "identity_via": "tokn"}, "unknown identity_via 'tokn'"),
    ({"as_groups": ["auditors"]}, "as_groups needs as_user"),
    ({"as_user": "alice", "as_service_account": "team-a/app"}, "not both"),
    ({"as_user": "alice", "identity_via": "token"}, "identity_via: token needs as_service_account"),
    ({"as_service_account": "team-a/app", "as_groups": ["x"], "identity_via": "token"}, "as_groups cannot go with"),
])
def test_an_identity_that_cannot_be_acted_as_is_an_error_of_the_run(activity, acting, says):
    from chaoskirvis.ledger.probes import injections_blocked

    with pytest.raises(Exception, match=re.escape(says)):
        inject_identity_technique("team-a", "list-secrets", **acting, **activity)
    with pytest.raises(Exception, match="could not be carried out"):
        injections_blocked(**activity)


def test_nodes_proxy_is_authorized_as_get_on_nodes_proxy(activity):
    refused = inject_identity_technique("team-a", "nodes-proxy", options={"node": "kirvis-worker"},
                                        as_service_account="team-a/app", **activity)
    allowed = inject_identity_technique("granted-a", "nodes-proxy", options={"node": "kirvis-worker"},
                                        as_service_account="granted-a/app", **activity)

    assert (refused["outcome"], refused["answered_by"]) == ("blocked", "RBAC"), refused
    assert f'User "{TEAM_APP}" cannot get resource "nodes/proxy" in API group "" at the cluster scope' \
        in refused["message"], refused["message"]
    assert allowed["outcome"] == "allowed", allowed


def test_the_escalation_check_refusing_the_identity_is_blocked(cluster, activity):
    """An identity that may create Roles, but holds none of escalate, bind or impersonate, is refused the
    Role granting them by RBAC's escalation check, which names it: blocked by RBAC."""
    _, kubeconfig = cluster
    rbac = client.RbacAuthorizationV1Api(config.new_client_from_config(str(kubeconfig)))
    rbac.create_namespaced_role("team-b", {"metadata": {"name": "role-writer"}, "rules": [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["create", "get", "delete"]}]})
    rbac.create_namespaced_role_binding("team-b", {"metadata": {"name": "role-writer"}, "subjects": [
        {"kind": "ServiceAccount", "name": "app", "namespace": "team-b"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role-writer"}})
    try:
        outcome = inject_identity_technique("team-b", "privilege-verbs-role", as_service_account="team-b/app",
                                            **activity)
    finally:
        rbac.delete_namespaced_role_binding("role-writer", "team-b")
        rbac.delete_namespaced_role("role-writer", "team-b")
    assert (outcome["outcome"], outcome["answered_by"]) == ("blocked", "RBAC"), outcome
    assert re.search(r'user "system:serviceaccount:team-b:app" (\(groups=\[[^\]]*\]\) )?is attempting to grant RBAC '
                     r'permissions not currently held', outcome["message"]), outcome["message"]
