"""The evidence control through the real `chaos` CLI against the sandbox: what lands in the journal file."""
from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata

import pytest
import yaml
from kubernetes import client, config

from chaoskirvis import __version__
from chaoskirvis.client import NO_CONFIGURATION_MESSAGE
from chaoskirvis.evidence.digest import verify
from chaosrun import BIN, EXPERIMENTS, chaos_env, run_chaos

EXPERIMENT = EXPERIMENTS / "privileged-pod-denied.yaml"


@pytest.fixture(scope="module")
def runs(scenarios, tmp_path_factory):
    """The shipped experiment where Pod Security blocks privileged pods, and where it does not."""
    results = {}
    for namespace in ("team-baseline", "team-privileged"):
        workdir = tmp_path_factory.mktemp(namespace)
        results[namespace] = run_chaos(EXPERIMENT, workdir, scenarios.kubeconfig, variables={"namespace": namespace})
    return results


def test_blocked_run_carries_its_evidence_into_the_journal_file(runs, scenarios):
    result = runs["team-baseline"]
    section = result.journal["chaoskirvis"]
    injected = result.outputs("introduce-privileged-pod")[0]
    kubeconfig = yaml.safe_load(scenarios.kubeconfig.read_text())
    version = client.VersionApi(config.new_client_from_config(str(scenarios.kubeconfig))).get_code()

    assert result.exit_code == 0, result.output
    assert section["run_id"] == injected["run_id"]
    assert section["experiment"] == {
        "title": result.journal["experiment"]["title"], "source": str(EXPERIMENT),
        "sha256": hashlib.sha256(EXPERIMENT.read_bytes()).hexdigest(), "sha256_of": "file",
    }
    assert section["cluster"]["server"].startswith(scenarios.sandbox.url)
    assert section["cluster"]["version"] == version.git_version
    assert section["cluster"]["context"] == kubeconfig["current-context"]
    assert section["cluster"]["user"] == kubeconfig["contexts"][0]["context"]["user"]
    assert section["identity"]["username"] == "sandbox-admin"
    assert section["identity"]["verified_by"] == "SelfSubjectReview"
    assert "system:masters" in section["identity"]["groups"]
    assert section["tools"] == {
        "chaoskirvis": __version__, **{name: metadata.version(name) for name in (
            "chaostoolkit", "chaostoolkit-lib", "chaostoolkit-kubernetes", "kubernetes")},
        "python": section["tools"]["python"],
    }
    assert section["attack"]["tagged"] == ["T1610", "T1611"]
    assert [(o["activity"], o["phase"], o["outcome"], o["answered_by"]) for o in section["outcomes"]] == [
        ("introduce-privileged-pod", "method", "blocked", "PodSecurity"),
        ("ask-admission-by-dry-run", "method", "blocked", "PodSecurity"),
    ]
    assert section["outcomes"][0]["message"] == injected["message"]
    assert section["ledger"]["created"] == []
    assert section["ledger"]["denied"] == [f"Pod {injected['name']} in namespace team-baseline"]
    assert section["ledger"]["restore"]["status"] == "succeeded"
    assert section["ledger"]["left_in_cluster"] == [] and section["ledger"]["restored"] is True
    assert section["verdict"]["result"] == "held"
    assert verify(result.journal).ok


def test_deviated_run_records_what_it_created_and_that_it_was_restored(runs):
    result = runs["team-privileged"]
    section = result.journal["chaoskirvis"]
    injected = result.outputs("introduce-privileged-pod")[0]
    pod = f"Pod {injected['name']} in namespace team-privileged"

    assert result.exit_code == 1
    assert [o["outcome"] for o in section["outcomes"]] == ["allowed", "allowed"]
    assert section["ledger"]["created"] == [pod]
    assert section["ledger"]["restore"]["removed"] == [pod]
    assert section["ledger"]["restored"] is True
    assert section["verdict"]["result"] == "weakness"
    assert verify(result.journal).ok


def test_the_kubeconfig_token_never_reaches_the_journal(runs, scenarios):
    for result in runs.values():
        assert scenarios.sandbox.admin_token not in json.dumps(result.journal)
        assert result.journal["chaoskirvis"]["redaction"]["secret_values_known"] >= 1


def test_a_run_without_cluster_configuration_fails_and_is_still_sealed(tmp_path):
    result = run_chaos(EXPERIMENT, tmp_path, None, variables={"namespace": "team-baseline"}, HOME=str(tmp_path))
    section = result.journal["chaoskirvis"]

    assert result.exit_code == 1
    assert result.journal["status"] == "failed"
    assert NO_CONFIGURATION_MESSAGE in section["cluster"]["unavailable"]
    assert (section["verdict"]["result"], section["verdict"]["status"]) == ("error", "failed")
    assert NO_CONFIGURATION_MESSAGE in section["verdict"]["reason"]
    assert verify(result.journal).ok


def test_declared_in_settings_it_also_keeps_the_detail_of_yes_no_probes(scenarios, tmp_path):
    """A global control (settings), and a hypothesis probe that answers only true/false."""
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    del experiment["controls"]
    experiment["method"] = [{
        "type": "probe", "name": "privileged-pod-is-denied", "tolerance": True,
        "provider": {"type": "python", "module": "chaoskirvis.workload.probes", "func": "risky_pod_is_denied",
                     "arguments": {"namespace": "${namespace}", "techniques": ["privileged"]}},
    }]
    source = tmp_path / "yes-no.yaml"
    source.write_text(yaml.safe_dump(experiment))
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump(
        {"controls": {"kirvis-evidence": {"provider": {"type": "python", "module": "chaoskirvis.controls.evidence"}}}}
    ))
    journal_path = tmp_path / "journal.json"
    done = subprocess.run(
        [str(BIN / "chaos"), "--no-version-check", "--settings", str(settings), "--log-file", str(tmp_path / "log"),
         "run", str(source), "--var", "namespace=team-restricted", "--journal-path", str(journal_path)],
        cwd=tmp_path, env=chaos_env(scenarios.kubeconfig), capture_output=True, text=True, timeout=120,
    )
    journal = json.loads(journal_path.read_text())

    assert done.returncode == 0, done.stdout + done.stderr
    assert journal["run"][0]["output"] is True
    (outcome,) = journal["chaoskirvis"]["outcomes"]
    assert (outcome["activity"], outcome["outcome"], outcome["mode"]) == ("privileged-pod-is-denied", "blocked",
                                                                         "dry-run")
    assert 'violates PodSecurity "restricted:latest"' in outcome["message"]
    assert journal["chaoskirvis"]["experiment"]["source"] == str(source)
    assert verify(journal).ok
