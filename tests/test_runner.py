"""`kirvis run`: a suite of experiments in one process against the sandbox scenarios, one journal each."""
from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from chaoskirvis.evidence.digest import verify
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos

SHIPPED = sorted(EXPERIMENTS.glob("*.yaml"))
PRIVILEGED = EXPERIMENTS / "privileged-pod-denied.yaml"


def kirvis_run(workdir: Path, kubeconfig: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "kirvis"), "run", *arguments], cwd=workdir, env=chaos_env(kubeconfig, **env),
        capture_output=True, text=True, timeout=300,
    )


def journals_in(folder: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


@pytest.fixture(scope="module")
def open_suite(scenarios, alertmanager, tmp_path_factory):
    """Every shipped experiment against the namespace without controls, in one `kirvis run`.

    Nothing raises alerts in the sandbox, so detection checks wait only one second (`within`); the
    detector backends are there (a real Alertmanager, a Falco pod that logs nothing), only the detection
    is missing.
    """
    core = client.CoreV1Api(config.new_client_from_config(str(scenarios.kubeconfig)))
    falco = f"quiet-falco-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": falco}})
    core.create_namespaced_pod(falco, {"metadata": {"name": "falco-quiet", "labels": {"app.kubernetes.io/name": "falco"}},
                                       "spec": {"containers": [{"name": "falco", "image": "falcosecurity/falco:0.39.2"}]}})
    work = tmp_path_factory.mktemp("suite")
    done = kirvis_run(work, scenarios.kubeconfig, str(EXPERIMENTS), "--var", "namespace=team-privileged",
                      "--var", "within:int=1", "--var", f"alertmanager_url={alertmanager.url}",
                      "--var", f"falco_namespace={falco}", "--journals", "journals", "--report", "report.html")
    yield done, work
    core.delete_namespace(falco)


def test_every_shipped_experiment_deviates_without_its_control(open_suite):
    done, work = open_suite
    written = journals_in(work / "journals")

    assert done.returncode == 1, done.stdout + done.stderr
    assert list(written) == [path.stem for path in SHIPPED]
    verdicts = {name: journal["chaoskirvis"]["verdict"] for name, journal in written.items()}
    assert {name: v["result"] for name, v in verdicts.items() if v["result"] != "weakness"} == {}, verdicts
    for name, journal in written.items():
        assert journal["deviated"] is True, name
        assert journal["chaoskirvis"]["ledger"]["restored"] is True, name
        assert verify(journal).ok, name
    assert len({journal["chaoskirvis"]["run_id"] for journal in written.values()}) == len(written)
    assert f"{len(SHIPPED)} experiment(s): {len(SHIPPED)} weakness" in done.stdout


def test_the_suite_shows_progress_and_writes_its_report(open_suite):
    done, work = open_suite
    starts = [line for line in done.stdout.splitlines() if re.match(r"^\[ *\d+/\d+\] start ", line)]
    report = (work / "report.html").read_text()

    assert len(starts) == len(SHIPPED)
    assert starts[0].startswith(f"[ 1/{len(SHIPPED)}] start   {SHIPPED[0].name}: ")
    assert f"html report of {len(SHIPPED)} journal(s): {work / 'report.html'}" in done.stdout
    assert report.count('<tr><td class="num">') == len(SHIPPED)
    assert (work / "journals" / "kirvis-run.log").stat().st_size > 0


def test_the_privileged_experiment_passes_where_pod_security_blocks(scenarios, tmp_path):
    done = kirvis_run(tmp_path, scenarios.kubeconfig, str(PRIVILEGED), "--var", "namespace=team-baseline",
                      "--journals", "journals")
    journal = journals_in(tmp_path / "journals")["privileged-pod-denied"]

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 experiment(s): 1 held" in done.stdout
    assert journal["chaoskirvis"]["verdict"]["result"] == "held"
    assert [o["outcome"] for o in journal["chaoskirvis"]["outcomes"]] == ["blocked", "blocked"]


def test_a_steady_state_not_met_before_the_method_fails_where_chaos_run_passes(scenarios, tmp_path):
    experiment = yaml.safe_load(PRIVILEGED.read_text())
    experiment["steady-state-hypothesis"]["probes"][0]["tolerance"] = False  # false before anything is tried
    source = tmp_path / "false-from-the-start.yaml"
    source.write_text(yaml.safe_dump(experiment))

    chaos = run_chaos(source, tmp_path, scenarios.kubeconfig, variables={"namespace": "team-baseline"})
    done = kirvis_run(tmp_path, scenarios.kubeconfig, str(source), "--var", "namespace=team-baseline",
                      "--journals", "journals")

    assert (chaos.exit_code, chaos.journal["status"], chaos.journal["deviated"]) == (0, "completed", False)
    assert done.returncode == 2
    assert "ERROR    false-from-the-start.yaml" in done.stdout
    assert "steady state not met before the method" in done.stdout


def test_an_interrupted_experiment_fails_the_suite_and_the_next_one_still_runs(scenarios, tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (tmp_path / "interrupting.py").write_text(
        "from chaoslib.exceptions import InterruptExecution\n\n\n"
        "def stop():\n    raise InterruptExecution('stopped on purpose')\n"
    )
    (suite / "a-interrupted.yaml").write_text(yaml.safe_dump({
        "version": "1.0.0", "title": "interrupted on purpose", "description": "test",
        "method": [{"type": "action", "name": "stop",
                    "provider": {"type": "python", "module": "interrupting", "func": "stop"}}],
    }))
    (suite / "b-privileged.yaml").write_text(PRIVILEGED.read_text())

    done = kirvis_run(tmp_path, scenarios.kubeconfig, str(suite), "--var", "namespace=team-restricted",
                      "--journals", "journals", PYTHONPATH=str(tmp_path))
    written = journals_in(tmp_path / "journals")

    assert done.returncode == 2, done.stdout + done.stderr
    assert {name: (j["chaoskirvis"]["verdict"]["result"], j["chaoskirvis"]["verdict"]["status"])
            for name, j in written.items()} == {
        "a-interrupted": ("error", "interrupted"), "b-privileged": ("held", "completed"),
    }


def test_the_rollback_strategy_applies_and_the_ledger_shows_what_is_left(scenarios, tmp_path):
    done = kirvis_run(tmp_path, scenarios.kubeconfig, str(PRIVILEGED), "--var", "namespace=team-privileged",
                      "--journals", "journals", "--rollback-strategy", "never")
    section = journals_in(tmp_path / "journals")["privileged-pod-denied"]["chaoskirvis"]
    run_id = section["run_id"]
    cleanup = subprocess.run([str(BIN / "kirvis"), "cleanup", "--run-id", run_id],
                             env=chaos_env(scenarios.kubeconfig), capture_output=True, text=True, timeout=60)

    # Skipping the restore is deliberate, but the cluster is left changed: an error naming what is left and
    # the command that removes it (the weakness the run found follows in the reason), never a pass.
    assert done.returncode == 2
    assert section["ledger"]["restore"]["status"] == "not run"
    assert section["ledger"]["restored"] is False
    assert sorted(section["ledger"]["left_in_cluster"]) == sorted([
        *section["ledger"]["created"], f"record ConfigMap kirvis-ledger-{run_id} in namespace team-privileged",
    ])
    assert section["verdict"]["result"] == "error"
    assert f"in the cluster: run `kirvis cleanup --run-id {run_id}`; otherwise weakness: " in section["verdict"]["reason"]
    assert cleanup.returncode == 0, cleanup.stderr


def test_nothing_to_run_is_a_usage_error(tmp_path):
    done = subprocess.run([str(BIN / "kirvis"), "run", str(tmp_path / "missing")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"kirvis run: no such experiment file or folder: {tmp_path / 'missing'}" in done.stderr


def test_a_run_id_given_for_the_suite_gets_a_suffix_per_experiment(scenarios, tmp_path):
    done = kirvis_run(tmp_path, scenarios.kubeconfig, str(PRIVILEGED), str(EXPERIMENTS / "host-pid-denied.yaml"),
                      "--var", "namespace=team-baseline", "--journals", "journals", KIRVIS_RUN_ID="ci-build-77")

    assert done.returncode == 0, done.stdout + done.stderr
    run_ids = sorted(j["chaoskirvis"]["run_id"] for j in journals_in(tmp_path / "journals").values())
    assert run_ids == ["ci-build-77-1", "ci-build-77-2"]


def test_a_negative_control_shows_its_weakness_as_expected(scenarios, tmp_path):
    done = kirvis_run(tmp_path, scenarios.kubeconfig, str(PRIVILEGED), "--var", "namespace=team-privileged",
                      "--journals", "journals", "--expect", "weakness")
    verdict = journals_in(tmp_path / "journals")["privileged-pod-denied"]["chaoskirvis"]["verdict"]

    assert done.returncode == 0, done.stdout + done.stderr
    assert (verdict["result"], verdict["label"], verdict["as_expected"]) == ("weakness", "weakness (expected)", True)
    assert "WEAKNESS (EXPECTED) privileged-pod-denied.yaml" in done.stdout
    assert re.search(r"privileged-pod-denied\.yaml in (\d+ ms|\d+\.\d s) \(run ", done.stdout), done.stdout
    assert " in 0 ms " not in done.stdout and " in 0.0 s " not in done.stdout  # a run takes time: never shown as none


def test_a_negative_control_that_holds_is_an_error(scenarios, tmp_path):
    done = kirvis_run(tmp_path, scenarios.kubeconfig, str(PRIVILEGED), "--var", "namespace=team-baseline",
                      "--journals", "journals", "--expect", "weakness")
    verdict = journals_in(tmp_path / "journals")["privileged-pod-denied"]["chaoskirvis"]["verdict"]

    assert done.returncode == 2, done.stdout + done.stderr
    assert verdict["result"] == "error"
    assert "a weakness was expected (negative control) but the control held" in verdict["reason"]


def test_a_var_that_no_experiment_declares_is_refused_before_anything_runs(scenarios, tmp_path):
    done = kirvis_run(tmp_path, scenarios.kubeconfig, str(PRIVILEGED), "--var", "namesapce=team-baseline",
                      "--journals", "journals")

    assert done.returncode == 2
    assert "--var namesapce: no experiment declares such a configuration key" in done.stderr
    assert not (tmp_path / "journals").exists() or not list((tmp_path / "journals").glob("*.json"))
