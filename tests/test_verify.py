"""`kirvis verify`: an untouched journal verifies, any edit fails, an unsealed journal cannot pass."""
from __future__ import annotations

import json
import subprocess

import pytest

from chaoskirvis.cli import main
from chaosrun import BIN, EXPERIMENTS, run_chaos


@pytest.fixture(scope="module")
def sealed(scenarios, tmp_path_factory) -> dict:
    """A journal the evidence control sealed, from a real `chaos run` against the sandbox."""
    workdir = tmp_path_factory.mktemp("sealed")
    result = run_chaos(EXPERIMENTS / "privileged-pod-denied.yaml", workdir, scenarios.kubeconfig,
                       variables={"namespace": "team-baseline"})
    assert result.exit_code == 0, result.output
    return result.journal


def verify_file(tmp_path, journal, capsys, name="journal.json") -> tuple[int, str]:
    path = tmp_path / name
    path.write_text(json.dumps(journal, indent=2, ensure_ascii=False))
    code = main(["verify", str(path)])
    return code, capsys.readouterr().out


def test_the_untouched_journal_verifies(sealed, tmp_path):
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(sealed, indent=2, ensure_ascii=False))
    done = subprocess.run([str(BIN / "kirvis"), "verify", str(path)], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0
    digest = sealed["chaoskirvis"]["digest"]["value"]
    assert done.stdout == f"OK {path}: verified: the journal matches its digest {digest}\n  not signed\n"


def test_reformatting_the_file_changes_nothing(sealed, tmp_path, capsys):
    code, out = verify_file(tmp_path, json.loads(json.dumps(sealed, separators=(",", ":"), sort_keys=True)), capsys)
    assert code == 0, out


@pytest.mark.parametrize("edit", [
    pytest.param(lambda j: j["chaoskirvis"]["outcomes"][0].update(outcome="allowed"), id="evidence-outcome"),
    pytest.param(lambda j: j["run"][0]["output"].update(outcome="allowed"), id="method-output"),
    pytest.param(lambda j: j.update(deviated=True), id="deviated-flag"),
    pytest.param(lambda j: j["chaoskirvis"]["ledger"].update(restored=False), id="ledger"),
    pytest.param(lambda j: j["chaoskirvis"]["cluster"].update(server="https://elsewhere:6443"), id="cluster"),
])
def test_editing_the_journal_fails(sealed, tmp_path, capsys, edit):
    journal = json.loads(json.dumps(sealed))
    edit(journal)
    code, out = verify_file(tmp_path, journal, capsys)

    assert code == 1
    assert out.startswith(f"FAILED {tmp_path / 'journal.json'}: MODIFIED: the journal was changed after it was sealed")


def test_a_journal_without_a_digest_fails(sealed, tmp_path, capsys):
    journal = {key: value for key, value in sealed.items() if key != "chaoskirvis"}
    code, out = verify_file(tmp_path, journal, capsys)

    assert code == 1
    assert "not sealed" in out


def test_the_interruption_note_chaos_adds_after_the_controls_is_not_covered(sealed, tmp_path, capsys):
    journal = json.loads(json.dumps(sealed))
    journal["interruption"] = {"kind": "signal", "name": "SIGTERM", "reason": "received SIGTERM"}
    code, out = verify_file(tmp_path, journal, capsys)
    assert code == 0, out


def test_several_journals_fail_if_one_does(sealed, tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(sealed))
    bad.write_text("{not json")
    code = main(["verify", str(good), str(bad)])
    lines = capsys.readouterr().out.splitlines()

    assert code == 1
    assert lines[0].startswith(f"OK {good}")
    assert lines[1] == "  not signed"
    assert lines[2].startswith(f"FAILED {bad}: cannot read it as a journal")
