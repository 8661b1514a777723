"""`kirvis deploy` renders manifests Kubernetes 1.32 accepts, a CronJob shaped as docs/deploy.md says, RBAC
computed from the experiments, and clear errors (exit 2) for what it cannot deploy."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from chaoskirvis.cli import main
from chaoskirvis.deploy.render import EXPERIMENTS_DIR, Options, load_experiments, render
from chaosrun import EXPERIMENTS

# The default selection of tests/test_deploy_least_privilege.py: blocking experiments over every kind a
# workload or exposure technique creates, in two of scenarios/namespaces.yaml's namespaces, and a guardrail
# experiment changing a namespace itself (a cluster-scoped object: scenarios/guardrails-team-guarded.yaml's).
DEFAULT_SELECTION = [EXPERIMENTS / f"{name}.yaml" for name in (
    "privileged-pod-denied", "privileged-controllers-denied", "nodeport-service-blocked",
    "open-ingress-policy-blocked", "latest-tag-denied", "guardrails/pod-security-labels-guarded-by-policy")]
KUBERNETES = "1.32.0"


def rendered(tmp_path: Path, *arguments: str) -> list[dict]:
    out = tmp_path / "deploy.yaml"
    assert main(["deploy", *map(str, DEFAULT_SELECTION), *arguments, "-o", str(out)]) == 0
    return [document for document in yaml.safe_load_all(out.read_text()) if document]


def by_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def test_the_installed_validator_has_the_1_32_schemas():
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    assert (schemas / f"v{KUBERNETES}-local-strict").is_dir()


def test_every_manifest_validates_against_the_kubernetes_1_32_schemas(tmp_path):
    manifests = rendered(tmp_path, "--schedule", "*/30 1-5 * * MON-FRI", "--namespace", "chaos",
                         "--time-zone", "Europe/Vilnius")
    assert manifests[-1]["spec"]["timeZone"] == "Europe/Vilnius"
    assert [m["kind"] for m in manifests] == ["Namespace", "ServiceAccount", *["Role", "RoleBinding"] * 3,
                                              "ConfigMap", "CronJob"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_validator_refuses_what_kubernetes_would():
    """The schema check can fail: a misspelt field and a string where a number goes are refused."""
    manifest = render(load_experiments(DEFAULT_SELECTION), Options())[-1]
    manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    manifest = render(load_experiments(DEFAULT_SELECTION), Options())[-1]
    manifest["spec"]["startingDeadlineSeconds"] = "600"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_the_cron_job_runs_cleanup_then_the_suite_in_a_restricted_pod(tmp_path):
    manifests = rendered(tmp_path, "--image", "registry.example/kirvis:1", "--schedule", "@daily")
    job = by_kind(manifests, "CronJob")[0]
    assert job["metadata"]["namespace"] == "kirvis-system"
    spec = job["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"], spec["startingDeadlineSeconds"]) == ("@daily", "Forbid", 600)
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "kirvis" and pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    cleanups, (run,) = pod["initContainers"], pod["containers"]
    # one cleanup per set of namespaces sweeping the same kinds: those the selection stores there; where it
    # stores nothing (gr-team: a guardrail change), the run records only
    assert [(c["name"], c["args"]) for c in cleanups] == [
        ("cleanup-expired-1", ["cleanup", "--expired", "-n", "gr-team", "--kind", "configmaps"]),
        ("cleanup-expired-2", ["cleanup", "--expired", "-n", "team-baseline", "--kind", "deployments.apps",
                               "--kind", "cronjobs.batch", "--kind", "pods", "--kind", "services",
                               "--kind", "networkpolicies.networking.k8s.io"]),
        ("cleanup-expired-3", ["cleanup", "--expired", "-n", "team-restricted", "--kind", "pods"])]
    assert run["args"][:1] == ["run"]
    assert run["args"][1:-2] == [f"{EXPERIMENTS_DIR}/{p.name}" for p in DEFAULT_SELECTION]
    assert run["args"][-2:] == ["--journals", "/var/lib/kirvis/journals"]
    for container in (*cleanups, run):
        assert container["command"] == ["kirvis"] and container["image"] == "registry.example/kirvis:1"
        assert {"name": "CHAOSTOOLKIT_IN_POD", "value": "true"} in container["env"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]} and context["runAsNonRoot"] is True
    config_map = by_kind(manifests, "ConfigMap")[0]
    assert config_map["data"] == {p.name: p.read_text() for p in DEFAULT_SELECTION}
    labels = by_kind(manifests, "Namespace")[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_pod_is_admitted_by_pod_security_restricted(sandbox, tmp_path):
    """The sandbox's Pod Security Admission (checked against upstream's fixtures) admits the job's pod at
    `restricted`, by server-side dry run in a namespace enforcing it, as the rendered Namespace does."""
    from chaoskirvis.client import kube_api

    api = kube_api(secrets={"KUBECONFIG": str(sandbox.kubeconfig)})
    manifests = rendered(tmp_path, "--namespace", "kirvis-psa-check")
    api.create("/api/v1/namespaces", by_kind(manifests, "Namespace")[0])
    try:
        api.create("/api/v1/namespaces/kirvis-psa-check/serviceaccounts", by_kind(manifests, "ServiceAccount")[0])
        template = by_kind(manifests, "CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kirvis-job", **template["metadata"]},
               "spec": template["spec"]}
        assert api.create("/api/v1/namespaces/kirvis-psa-check/pods", pod, dry_run=True).status == 201
        del pod["spec"]["containers"][0]["securityContext"]["capabilities"]
        with pytest.raises(Exception, match="restricted"):
            api.create("/api/v1/namespaces/kirvis-psa-check/pods", pod, dry_run=True)
    finally:
        api.delete("/api/v1/namespaces/kirvis-psa-check")


def test_rbac_is_namespaced_and_computed_from_the_experiments(tmp_path):
    manifests = rendered(tmp_path)
    roles = {role["metadata"]["namespace"]: {(rule["apiGroups"][0], rule["resources"][0]): rule["verbs"]
                                             for rule in role["rules"]} for role in by_kind(manifests, "Role")}
    assert set(roles) == {"gr-team", "team-baseline", "team-restricted"}
    # the namespace the guardrail experiment changes, by name, in a Role there: a request on namespace N is
    # authorized as one in N; nothing cluster-wide
    assert not by_kind(manifests, "ClusterRole") and not by_kind(manifests, "ClusterRoleBinding")
    (namespace_rule,) = [r for r in by_kind(manifests, "Role")[0]["rules"] if r["resources"] == ["namespaces"]]
    assert by_kind(manifests, "Role")[0]["metadata"]["namespace"] == "gr-team"
    assert namespace_rule == {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["gr-team"],
                              "verbs": ["get", "update", "patch"]}
    # the guardrail run's record, in its namespace
    assert roles["gr-team"][("", "configmaps")] == ["get", "list", "create", "patch", "delete"]
    baseline, restricted = roles["team-baseline"], roles["team-restricted"]
    # what the experiments create in each namespace: create, and restore's get and delete; cleanup's list
    assert baseline[("", "pods")] == ["get", "list", "create", "delete"]
    assert baseline[("apps", "deployments")] == ["get", "list", "create", "delete"]
    assert baseline[("batch", "cronjobs")] == ["get", "list", "create", "delete"]
    assert baseline[("", "services")] == ["get", "list", "create", "delete"]
    assert baseline[("networking.k8s.io", "networkpolicies")] == ["get", "list", "create", "delete"]
    assert restricted[("", "pods")] == ["get", "list", "create", "delete"]
    # kirvis cleanup sweeps only the kinds the selection stores: nothing of team-restricted's Services, Secrets,
    # Roles; nothing in gr-team but the records
    assert set(restricted) == {("", "pods"), ("", "configmaps")}
    assert set(roles["gr-team"]) == {("", "namespaces"), ("", "configmaps")}
    assert set(baseline) == {("", "configmaps"), ("", "pods"), ("", "services"), ("apps", "deployments"),
                             ("batch", "cronjobs"), ("networking.k8s.io", "networkpolicies")}
    assert baseline[("", "configmaps")] == ["get", "list", "create", "patch", "delete"]
    for binding in by_kind(manifests, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kirvis", "namespace": "kirvis-system"}]
    for role in by_kind(manifests, "Role"):
        assert all(verb in ("get", "list", "create", "update", "patch", "delete") for rule in role["rules"]
                   for verb in rule["verbs"])


@pytest.mark.parametrize("arguments, says", [
    # a namespace drawn at run time is not known to grant a Role in
    ({"technique": "nodeport-service", "opt_in_label": "chaoskirvis.io/opt-in=true"}, "opt_in_label"),
    ({"technique": "nodeport-service", "namespace": "${nowhere}"}, "'${nowhere}' is not a namespace name"),
    ({"technique": "nodeport-service", "namespace": "kube-system"}, "protected"),
    ({"technique": "privileged", "namespace": "team-baseline"}, "not a port-injection technique"),
    ({"technique": "no-such-technique", "namespace": "team-baseline"}, "unknown technique"),
    ({"technique": "nodeport-service", "namespace": "team-baseline", "mode": "dry-run"}, "unknown argument(s) mode"),
    # as an identity, the runner needs impersonate on it: not computed, so not guessed
    ({"technique": "nodeport-service", "namespace": "team-baseline", "as_user": "dev"}, "impersonation"),
])
def test_what_cannot_be_granted_exactly_is_an_error_naming_the_activity(arguments, says, tmp_path, capsys):
    experiment = yaml.safe_load((EXPERIMENTS / "nodeport-service-blocked.yaml").read_text())
    experiment["method"][0]["provider"]["arguments"] = arguments
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert main(["deploy", str(path)]) == 2
    err = capsys.readouterr().err
    assert "changed.yaml: activity 'open-port-with-nodeport-service'" in err and says in err, err


@pytest.mark.parametrize("experiment, activity, arguments, says", [
    # the runtime pod is the run's own: exec into a named workload is not granted
    ("terminal-shell-detected-by-falco", "spawn-shell-in-container",
     {"technique": "terminal-shell", "namespace": "team-privileged", "pod": "api-0"}, "only into the run's own pod"),
    ("terminal-shell-detected-by-falco", "spawn-shell-in-container",
     {"technique": "terminal-shell", "namespace": "kube-system"}, "namespace kube-system is protected"),
    ("terminal-shell-detected-by-falco", "spawn-shell-in-container",
     {"technique": "privileged", "namespace": "team-privileged"}, "privileged is not a runtime technique"),
    ("terminal-shell-detected-by-falco", "falco-alert", {"namespace": "${nowhere}"},
     "namespace '${nowhere}' is not a namespace name"),
    ("posture/security-webhooks-fail-closed", "security-webhooks-fail-closed", {"kinds": ["WebhookConfiguration"]},
     "unknown webhook kind(s) WebhookConfiguration"),
    # nothing of Kubernetes, but what the job's pod would need is not rendered
    ("privileged-pod-alerted-in-alertmanager", "alert-reaches-alertmanager",
     {"url": "https://alertmanager.example:9093", "token_secret": "AM_TOKEN"}, "token_secret would have to be in"),
    ("nodes/apiserver-profiling-detected-by-kube-bench", "turn-on-apiserver-profiling",
     {"technique": "no-such-fault", "node": "kirvis-control-plane"}, "'no-such-fault' is not a node technique"),
    ("nodes/apiserver-profiling-detected-by-kube-bench", "kube-bench-reports-1.2.15",
     {"checks": ["1.2.15"], "node": "kirvis-control-plane", "namespace": "kube-system"}, "protected"),
])
def test_a_new_family_s_argument_that_cannot_be_granted_exactly_is_refused(experiment, activity, arguments, says,
                                                                           tmp_path, capsys):
    document = yaml.safe_load((EXPERIMENTS / f"{experiment}.yaml").read_text())
    activities = [*document["steady-state-hypothesis"]["probes"], *document["method"]]
    next(a for a in activities if a["name"] == activity)["provider"]["arguments"] = arguments
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["deploy", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"changed.yaml: activity '{activity}'" in err and says in err, err


def test_a_probe_of_mirror_pods_is_granted_only_for_a_manifest_content_change(tmp_path):
    """A mode change restarts nothing: no rule in kube-system; a flag change reads that one mirror pod."""
    def kube_system(name: str) -> list[dict]:
        manifests = render(load_experiments([EXPERIMENTS / "nodes" / f"{name}.yaml"]), Options())
        return [rule for m in manifests if m["kind"] == "Role" and m["metadata"]["namespace"] == "kube-system"
                for rule in m["rules"]]
    assert kube_system("apiserver-manifest-mode-detected-by-kube-bench") == []
    assert kube_system("apiserver-profiling-detected-by-kube-bench") == [
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["kube-apiserver-kirvis-control-plane"],
         "verbs": ["get"]}]


def test_a_mode_the_activity_does_not_have_is_refused(tmp_path, capsys):
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    experiment["method"][1]["provider"]["arguments"]["mode"] = "dryrun"
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert main(["deploy", str(path)]) == 2
    assert ("activity 'ask-admission-by-dry-run' (chaoskirvis.workload.probes.risky_pod_admission): "
            "unknown mode 'dryrun'") in capsys.readouterr().err


def test_a_cluster_scoped_guardrail_is_granted_cluster_wide_by_name_only(tmp_path):
    """A ValidatingAdmissionPolicyBinding is cluster-scoped: a ClusterRole, on that one binding (its record stays
    in the experiment's namespace, a Role there)."""
    experiment = yaml.safe_load((EXPERIMENTS / "guardrails/pod-security-labels-guarded-by-policy.yaml").read_text())
    experiment["method"] = [{"type": "action", "name": "binding-to-warn", "provider": {
        "type": "python", "module": "chaoskirvis.guardrails.actions", "func": "tamper_guardrail",
        "arguments": {"technique": "vap-binding-not-denying", "namespace": "gr-team", "mode": "change",
                      "name": "gr-team-deny-host-network"}}}]
    path = tmp_path / "binding.yaml"
    path.write_text(yaml.safe_dump(experiment))
    manifests = render(load_experiments([path]), Options())
    (cluster_role,) = by_kind(manifests, "ClusterRole")
    assert cluster_role["rules"] == [{
        "apiGroups": ["admissionregistration.k8s.io"], "resources": ["validatingadmissionpolicybindings"],
        "resourceNames": ["gr-team-deny-host-network"], "verbs": ["get", "update", "patch"]}]
    (binding,) = by_kind(manifests, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"] == "kirvis-runner-kirvis-system"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kirvis", "namespace": "kirvis-system"}]
    (role,) = by_kind(manifests, "Role")
    assert role["metadata"]["namespace"] == "gr-team"
    assert {r["resources"][0] for r in role["rules"] if "create" in r["verbs"]} == {"configmaps"}
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_a_deleted_guardrail_is_put_back_by_a_create_no_resource_name_can_restrict(tmp_path):
    """Kubernetes cannot restrict a create by resourceNames (its URL names no object): the delete and the reads
    stay on the one binding, the create that puts it back is a rule of its own."""
    experiment = yaml.safe_load((EXPERIMENTS / "guardrails/pod-security-labels-guarded-by-policy.yaml").read_text())
    experiment["method"] = [{"type": "action", "name": "binding-deleted", "provider": {
        "type": "python", "module": "chaoskirvis.guardrails.actions", "func": "tamper_guardrail",
        "arguments": {"technique": "vap-binding-deleted", "namespace": "gr-team", "mode": "change",
                      "name": "gr-team-deny-host-network"}}}]
    path = tmp_path / "deleted.yaml"
    path.write_text(yaml.safe_dump(experiment))
    (cluster_role,) = by_kind(render(load_experiments([path]), Options()), "ClusterRole")
    group, plural = ["admissionregistration.k8s.io"], ["validatingadmissionpolicybindings"]
    assert cluster_role["rules"] == [
        {"apiGroups": group, "resources": plural, "verbs": ["create"]},
        {"apiGroups": group, "resources": plural, "resourceNames": ["gr-team-deny-host-network"],
         "verbs": ["get", "delete"]}]


def test_a_technique_whose_object_needs_more_than_its_verbs_is_refused(tmp_path, capsys):
    """A ClusterRoleBinding's create also needs `bind` on its role (RBAC escalation prevention): not computed."""
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    experiment["method"][1]["provider"].update(func="techniques_admission")
    experiment["method"][1]["provider"]["arguments"]["techniques"] = ["cluster-admin-binding"]
    path = tmp_path / "binding.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert main(["deploy", str(path)]) == 2
    assert "cluster-admin-binding (target clusterrolebinding)" in capsys.readouterr().err


@pytest.mark.parametrize("schedule, says", [
    ("* * * *", "4 field(s)"), ("60 * * * *", "minute '60': 60 is outside 0-59"),
    ("0 3 * * FUNDAY", "day of week 'FUNDAY'"), ("0 3 31-1 * *", "ends before it starts"),
    ("*/0 * * * *", "step '0'"), ("@fortnightly", "unknown descriptor"), ("TZ=UTC 0 3 * * *", "timeZone"),
])
def test_a_bad_schedule_is_refused_naming_the_field(schedule, says, capsys):
    assert main(["deploy", str(DEFAULT_SELECTION[0]), "--schedule", schedule]) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("schedule", ["0 3 * * *", "*/15 * * * *", "5,35 1-5/2 ? JAN-JUN sun", "@hourly",
                                      "@every 90m"])
def test_a_good_schedule_is_rendered(schedule, tmp_path):
    assert by_kind(rendered(tmp_path, "--schedule", schedule), "CronJob")[0]["spec"]["schedule"] == schedule


@pytest.mark.parametrize("experiment, activities, says", [
    # chaostoolkit-kubernetes' activity: its permissions are its own, not computed here
    ("fail-closed/privileged-pod-denied-while-policy-engine-scaled-to-zero.yaml",
     "activity 'scale-policy-engine-to-zero' (chaosk8s.deployment.actions.scale_deployment), activity "
     "'scale-policy-engine-back' (chaosk8s.deployment.actions.scale_deployment): each is an activity of "
     "chaostoolkit-kubernetes", "not computed here"),
    # a binding's `bind`, an identity's `impersonate`: a person's decision, never generated
    ("identity/team-cannot-bind-cluster-admin.yaml", "(chaoskirvis.rbac.actions.inject_rbac_grant): it creates role "
                                                     "bindings", "would need `bind` on the bound role"),
    ("identity/team-cannot-read-kube-system-secrets.yaml", "(chaoskirvis.rbac.actions.inject_identity_technique): "
                                                           "it makes identity objects", "`impersonate` on users"),
    ("guardrails/team-cannot-lower-pod-security.yaml", "(chaoskirvis.guardrails.actions.tamper_guardrail): kirvis "
                                                       "deploy does not grant an activity that runs as another "
                                                       "identity", "a privilege decision for a person to make"),
    # a receiver in the job's pod nothing can post to
    ("nodeport-alerted-at-webhook.yaml", "(chaoskirvis.detection.actions.start_alert_receiver): it listens",
     "poll the alerting system instead"),
])
def test_an_activity_deploy_will_not_grant_is_refused_saying_why(experiment, activities, says, capsys):
    assert main(["deploy", str(EXPERIMENTS / experiment)]) == 2
    err = capsys.readouterr().err
    assert activities in err and says in err, err


def test_an_activity_whose_permissions_are_unknown_is_an_error_naming_it(tmp_path, capsys):
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    experiment["method"].append({"type": "probe", "name": "trivy", "provider": {
        "type": "python", "module": "chaoskirvis.nodes.probes", "func": "trivy_operator_detects",
        "arguments": {"technique": "kubelet-anonymous-auth", "node": "kirvis-worker"}}})
    (tmp_path / "trivy.yaml").write_text(yaml.safe_dump(experiment))
    assert main(["deploy", str(tmp_path / "trivy.yaml")]) == 2
    err = capsys.readouterr().err
    assert "the permissions of activity 'trivy' (chaoskirvis.nodes.probes.trivy_operator_detects) are not known; " \
           "those of chaoskirvis.ledger.probes.injections_blocked" in err, err


def test_bad_options_and_paths_are_errors(tmp_path, capsys):
    assert main(["deploy", str(tmp_path / "missing.yaml")]) == 2
    assert "no such experiment" in capsys.readouterr().err
    assert main(["deploy", str(DEFAULT_SELECTION[0]), "--namespace", "Kirvis_System"]) == 2
    assert "invalid --namespace" in capsys.readouterr().err
    assert main(["deploy", str(DEFAULT_SELECTION[0]), "--time-zone", "Mars/Olympus"]) == 2
    assert "invalid --time-zone 'Mars/Olympus'" in capsys.readouterr().err
    assert main(["deploy", str(DEFAULT_SELECTION[0]), "--image", "kirvis: 1"]) == 2
    assert "invalid --image" in capsys.readouterr().err
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "same.yaml").write_text(DEFAULT_SELECTION[0].read_text())
    assert main(["deploy", str(tmp_path)]) == 2
    assert "two experiments named same.yaml" in capsys.readouterr().err


def test_the_dockerfile_installs_this_version_as_the_pod_s_non_root_user():
    """deploy/Dockerfile (not built here: no container engine) installs the published package of this version
    and runs as the numeric user the pod's runAsUser names, so runAsNonRoot can be checked."""
    from chaoskirvis import __version__

    dockerfile = (Path(__file__).resolve().parents[1] / "deploy" / "Dockerfile").read_text()
    assert f"ARG KIRVIS_VERSION={__version__}\n" in dockerfile
    assert 'pip install "chaostoolkit-kirvis==${KIRVIS_VERSION}"' in dockerfile
    pod = render(load_experiments(DEFAULT_SELECTION), Options())[-1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    user, group = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    assert re.search(rf"^USER {user}:{group}$", dockerfile, re.M)
    assert f"--uid {user} " in dockerfile


def test_every_activity_deploy_knows_is_one_the_extension_has():
    """A renamed or removed activity fails here, not in a user's `kirvis deploy`."""
    from chaoskirvis import activity_modules
    from chaoskirvis.deploy.permissions import ACTIVITIES

    modules = activity_modules()
    for module, func in ACTIVITIES:
        assert module in modules and callable(getattr(importlib.import_module(module), func)), (module, func)


def test_a_rollback_referring_to_an_earlier_activity_is_that_activity(tmp_path):
    experiment = yaml.safe_load(DEFAULT_SELECTION[0].read_text())
    experiment["method"].append({"ref": "introduce-privileged-pod"})
    path = tmp_path / "ref.yaml"
    path.write_text(yaml.safe_dump(experiment))
    assert rbac_of(render(load_experiments([path]), Options())) == \
        rbac_of(render(load_experiments([DEFAULT_SELECTION[0]]), Options()))


def rbac_of(manifests: list[dict]) -> list:
    return [m["rules"] for m in manifests if m["kind"] in ("Role", "ClusterRole")]


def test_a_cleanup_sweeps_the_controller_a_workload_stores_not_the_pods_it_only_dry_runs(tmp_path):
    """inject_risky_workload stores a DaemonSet and dry-runs its pod template: the cleanup sweeps daemonsets
    (list added to the attempt's get and delete), and pods are only created (by dry run), never listed."""
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-controllers-denied.yaml").read_text())
    experiment["method"] = [{"type": "action", "name": "daemon", "provider": {
        "type": "python", "module": "chaoskirvis.workload.actions", "func": "inject_risky_workload",
        "arguments": {"namespace": "team-baseline", "techniques": ["privileged"], "controller": "DaemonSet"}}}]
    experiment["rollbacks"] = []
    path = tmp_path / "daemon.yaml"
    path.write_text(yaml.safe_dump(experiment))
    manifests = render(load_experiments([path]), Options())
    (role,) = by_kind(manifests, "Role")
    assert {(r["apiGroups"][0], r["resources"][0]): r["verbs"] for r in role["rules"]} == {
        ("", "configmaps"): ["get", "list", "create", "patch", "delete"], ("", "pods"): ["create"],
        ("apps", "daemonsets"): ["get", "list", "create", "delete"]}
    (cleanup,) = by_kind(manifests, "CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"]
    assert cleanup["name"] == "cleanup-expired"
    assert cleanup["args"] == ["cleanup", "--expired", "-n", "team-baseline", "--kind", "daemonsets.apps"]


def test_the_run_pushes_and_keeps_its_journals_as_asked(tmp_path):
    """--pushgateway and --cluster-name, --keep-journals-in and --keep reach the job's `kirvis run`; the kept
    journals' namespace gets a Role of its own with exactly what chaoskirvis.run.keep sends there: a POST of
    each ConfigMap, a GET of the collection by label, a DELETE by name."""
    manifests = rendered(tmp_path, "--pushgateway", "http://pushgateway.monitoring:9091", "--cluster-name",
                         "prod-eu-1", "--keep-journals-in", "kirvis-system", "--keep", "3")
    (run,) = by_kind(manifests, "CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert run["args"][-8:] == ["--pushgateway", "http://pushgateway.monitoring:9091", "--cluster-name", "prod-eu-1",
                                "--keep-journals-in", "kirvis-system", "--keep", "3"]
    roles = {role["metadata"]["namespace"]: role for role in by_kind(manifests, "Role")}
    assert set(roles) == {"gr-team", "kirvis-system", "team-baseline", "team-restricted"}
    assert roles["kirvis-system"]["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                                                "verbs": ["list", "create", "delete"]}]
    (binding,) = [b for b in by_kind(manifests, "RoleBinding") if b["metadata"]["namespace"] == "kirvis-system"]
    assert binding["roleRef"]["name"] == roles["kirvis-system"]["metadata"]["name"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    # a target namespace keeping the journals: its Role's ConfigMap rule already holds those verbs
    manifests = rendered(tmp_path, "--keep-journals-in", "team-restricted")
    assert len(by_kind(manifests, "Role")) == 3
    (run,) = by_kind(manifests, "CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert run["args"][-2:] == ["--keep-journals-in", "team-restricted"] and "--pushgateway" not in run["args"]


@pytest.mark.parametrize("arguments, says", [
    (["--pushgateway", "http://pushgateway.monitoring:9091"], "--pushgateway needs --cluster-name"),
    (["--cluster-name", "prod"], "--cluster-name goes with --pushgateway"),
    (["--pushgateway", "pushgateway:9091", "--cluster-name", "prod"], "give the gateway's URL"),
    (["--keep", "3"], "--keep goes with --keep-journals-in"),
    (["--keep-journals-in", "kirvis-system", "--keep", "0"], "keep at least"),
    (["--keep-journals-in", "Kirvis_System"], "is not a DNS label"),
    # a Role that may list and delete every ConfigMap (names not known in advance) is not granted there
    (["--keep-journals-in", "kube-system"], "--keep-journals-in kube-system is a protected namespace"),
])
def test_export_options_the_run_would_refuse_are_refused_before_rendering(arguments, says, tmp_path, capsys):
    out = tmp_path / "deploy.yaml"
    assert main(["deploy", *map(str, DEFAULT_SELECTION), *arguments, "-o", str(out)]) == 2
    assert says in capsys.readouterr().err and not out.exists()
