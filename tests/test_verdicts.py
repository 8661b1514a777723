"""Three verdicts: a test that could not be carried out is an *error*, never a *weakness*.

Each cause of an error runs the same way a user would: `chaos run` (status ``failed``, exit 1, the cause
in the journal), `kirvis run` (exit 2, the cause on its ``why`` line) and `kirvis report` (verdict error
with the cause). Beside them, the same experiment in a namespace without the control is a weakness
(status ``deviated``, `kirvis run` exit 1), so the two can never be confused.
"""
from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from chaoskirvis.evidence.journal import recorded_outcomes
from chaoskirvis.evidence.verdict import verdict_of
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos

PRIVILEGED = EXPERIMENTS / "privileged-pod-denied.yaml"
ALERTMANAGER = EXPERIMENTS / "privileged-pod-alerted-in-alertmanager.yaml"


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def typo_experiment(folder: Path) -> Path:
    experiment = yaml.safe_load(PRIVILEGED.read_text())
    experiment["method"][0]["provider"]["arguments"]["techniques"] = ["host-paht"]
    path = folder / "typo.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


def kubeconfig_with(sandbox, folder: Path, *, old: str, new: str, user: str = "admin") -> Path:
    path = sandbox.sandbox.write_kubeconfig(folder / f"{user}-{abs(hash(new))}.kubeconfig", user=user)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def cause_setup(cause: str, sandbox, folder: Path) -> tuple[Path, Path, dict[str, str], str]:
    """experiment, kubeconfig, variables and the text of the cause that must reach the user."""
    admin = sandbox.sandbox.write_kubeconfig(folder / "admin.kubeconfig")
    if cause == "typo-technique":
        return typo_experiment(folder), admin, {"namespace": "team-baseline"}, "unknown technique 'host-paht'"
    if cause == "unknown-namespace":
        return PRIVILEGED, admin, {"namespace": "no-such-team"}, "namespace no-such-team does not exist"
    if cause == "unreachable-api":
        port = dead_port()
        kubeconfig = kubeconfig_with(sandbox, folder, old=sandbox.sandbox.url, new=f"https://127.0.0.1:{port}")
        return PRIVILEGED, kubeconfig, {"namespace": "team-baseline"}, "cannot reach the Kubernetes API server"
    if cause == "unauthenticated-401":
        kubeconfig = kubeconfig_with(sandbox, folder, old=sandbox.sandbox.admin_token, new="not-a-valid-token")
        return PRIVILEGED, kubeconfig, {"namespace": "team-baseline"}, "401"
    if cause == "runner-lacks-permission":
        viewer = sandbox.sandbox.write_kubeconfig(folder / "viewer.kubeconfig", user="viewer")
        return PRIVILEGED, viewer, {"namespace": "team-baseline"}, "the run's identity lacks permission"
    if cause == "unreachable-alertmanager":
        return ALERTMANAGER, admin, {"namespace": "team-privileged", "within": "2",
                                     "alertmanager_url": f"http://127.0.0.1:{dead_port()}"}, "alertmanager"
    raise AssertionError(cause)


CAUSES = ["typo-technique", "unknown-namespace", "unreachable-api", "unauthenticated-401", "runner-lacks-permission",
          "unreachable-alertmanager"]


def kirvis(*arguments: str, workdir: Path, kubeconfig: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kirvis"), *arguments], cwd=workdir, env=chaos_env(kubeconfig),
                          capture_output=True, text=True, timeout=300)


def left_by_run(sandbox, run_id: str) -> list[str]:
    """Every object still carrying the run id's label, of the kinds the experiments create."""
    core = client.CoreV1Api(config.new_client_from_config(str(sandbox.kubeconfig)))
    selector = f"chaoskirvis.io/run-id={run_id}"
    found = core.list_pod_for_all_namespaces(label_selector=selector).items
    found += core.list_config_map_for_all_namespaces(label_selector=selector).items
    return [f"{o.kind or type(o).__name__} {o.metadata.namespace}/{o.metadata.name}" for o in found]


@pytest.mark.parametrize("cause", CAUSES)
def test_a_test_that_cannot_be_carried_out_is_an_error(cause, scenarios, tmp_path):
    experiment, kubeconfig, variables, text = cause_setup(cause, scenarios, tmp_path)
    run_id = f"err-{CAUSES.index(cause)}-{tmp_path.name[-4:].strip('_')}".lower()
    chaos = run_chaos(experiment, tmp_path, kubeconfig, variables=variables, no_validation=cause == "typo-technique",
                      KIRVIS_RUN_ID=run_id)
    verdict = verdict_of(chaos.journal, recorded_outcomes(chaos.journal))  # as the report reads any journal

    assert chaos.exit_code == 1, chaos.output
    assert chaos.journal["status"] == "failed", chaos.output
    assert verdict.result == "error"
    assert text in verdict.reason
    assert "Traceback" not in chaos.output
    assert left_by_run(scenarios, run_id) == []

    var_args = [a for key, value in variables.items() for a in ("--var", f"{key}={value}")]
    suite = kirvis("run", str(experiment), *var_args, "--journals", "journals", "--report", "report.md",
                   workdir=tmp_path, kubeconfig=kubeconfig)
    why = [line for line in suite.stdout.splitlines() if line.strip().startswith("why")]

    assert suite.returncode == 2, suite.stdout + suite.stderr
    assert f"ERROR    {experiment.name}" in suite.stdout
    assert len(why) == 1 and text in why[0], suite.stdout
    report = (tmp_path / "report.md").read_text()
    assert "Error" in report and "Weakness" not in report.split("## ATT&CK")[0]
    assert text.replace("'", "") in report.replace("\\", "").replace("'", "")


def test_a_failed_run_leaves_nothing_even_when_chaos_toolkit_skips_the_rollbacks(scenarios, tmp_path):
    """Chaos Toolkit's default rollback strategy skips a failed run's rollbacks; the evidence control restores."""
    experiment = yaml.safe_load(ALERTMANAGER.read_text())
    experiment.pop("runtime")
    experiment["controls"] = [{"name": "kirvis-evidence", "provider": {"type": "python",
                                                                       "module": "chaoskirvis.controls.evidence"}}]
    path = tmp_path / "no-rollback-strategy.yaml"
    path.write_text(yaml.safe_dump(experiment))
    chaos = run_chaos(path, tmp_path, scenarios.kubeconfig, KIRVIS_RUN_ID="skipped-rollbacks",
                      variables={"namespace": "team-privileged", "within": "1",
                                 "alertmanager_url": f"http://127.0.0.1:{dead_port()}"})
    ledger = chaos.journal["chaoskirvis"]["ledger"]

    assert (chaos.journal["status"], chaos.journal["rollbacks"]) == ("failed", [])
    assert len(ledger["created"]) == 1, ledger
    assert (ledger["restore"]["status"], ledger["restore"]["by"], ledger["restored"]) == \
        ("succeeded", "evidence control", True)
    assert left_by_run(scenarios, "skipped-rollbacks") == []


def test_a_typo_in_a_technique_is_caught_by_chaos_validate(tmp_path):
    done = subprocess.run([str(BIN / "chaos"), "--no-log-file", "validate", str(typo_experiment(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "inject_risky_pod: unknown technique 'host-paht'" in done.stdout + done.stderr


def test_an_unknown_option_is_caught_by_chaos_validate(tmp_path):
    experiment = yaml.safe_load(PRIVILEGED.read_text())
    experiment["method"][0]["provider"]["arguments"].update(techniques=["host-path"], options={"pth": "/etc"})
    path = tmp_path / "option-typo.yaml"
    path.write_text(yaml.safe_dump(experiment))
    done = subprocess.run([str(BIN / "chaos"), "--no-log-file", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "unknown option(s) pth for host-path; known: path" in done.stdout + done.stderr


def test_a_namespace_without_the_control_is_a_weakness_not_an_error(scenarios, tmp_path):
    chaos = run_chaos(PRIVILEGED, tmp_path, scenarios.kubeconfig, variables={"namespace": "team-privileged"})
    suite = kirvis("run", str(PRIVILEGED), "--var", "namespace=team-privileged", "--journals", "journals",
                   workdir=tmp_path, kubeconfig=scenarios.kubeconfig)
    journal = json.loads((tmp_path / "journals" / "privileged-pod-denied.json").read_text())

    assert (chaos.exit_code, chaos.journal["status"], chaos.journal["deviated"]) == (1, "completed", True)
    assert chaos.journal["chaoskirvis"]["verdict"]["result"] == "weakness"
    assert suite.returncode == 1, suite.stdout + suite.stderr
    assert journal["chaoskirvis"]["verdict"]["result"] == "weakness"
    assert "privileged in team-privileged: allowed" in journal["chaoskirvis"]["verdict"]["reason"]


def with_failing_setup(folder: Path) -> Path:
    """The privileged experiment with a method action before the injection that fails (chaosk8s scaling a
    Deployment that does not exist): Chaos Toolkit plays the injection anyway."""
    experiment = yaml.safe_load(PRIVILEGED.read_text())
    experiment["method"].insert(0, {
        "type": "action", "name": "scale-missing-engine",
        "provider": {"type": "python", "module": "chaosk8s.deployment.actions", "func": "scale_deployment",
                     "secrets": ["kubernetes"], "arguments": {"name": "no-such-engine", "replicas": 0,
                                                             "ns": "${namespace}"}},
    })
    experiment.setdefault("secrets", {}).setdefault("kubernetes", {})
    path = folder / "failing-setup.yaml"
    path.write_text(yaml.safe_dump(experiment))
    return path


def test_a_block_after_a_failed_method_action_is_an_error_not_held(scenarios, tmp_path):
    run = run_chaos(with_failing_setup(tmp_path), tmp_path, scenarios.kubeconfig, variables={"namespace": "team-baseline"})
    verdict = run.journal["chaoskirvis"]["verdict"]

    outcomes = {o["outcome"] for o in recorded_outcomes(run.journal)}
    assert outcomes == {"blocked"}
    assert verdict["result"] == "error", verdict
    assert "action 'scale-missing-engine' (method) failed" in verdict["reason"]


def test_an_admission_after_a_failed_method_action_is_still_a_weakness(scenarios, tmp_path):
    run = run_chaos(with_failing_setup(tmp_path), tmp_path, scenarios.kubeconfig,
                    variables={"namespace": "team-privileged"})

    assert run.journal["chaoskirvis"]["verdict"]["result"] == "weakness", run.journal["chaoskirvis"]["verdict"]
