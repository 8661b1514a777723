"""Every `kirvis` subcommand answers a bad flag or path with one line and a non-zero exit, never a traceback."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from chaosrun import BIN, EXPERIMENTS, chaos_env

PRIVILEGED = str(EXPERIMENTS / "privileged-pod-denied.yaml")


def kirvis(workdir: Path, *arguments: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kirvis"), *arguments], cwd=workdir, env=chaos_env(kubeconfig, HOME=str(workdir)),
                          capture_output=True, text=True, timeout=120)


def a_file(workdir: Path, name: str = "a-file", text: str = "x") -> str:
    path = workdir / name
    path.write_text(text)
    return str(path)


CASES = {
    "run --journals on a file": (lambda w: ["run", PRIVILEGED, "--journals", a_file(w)], 2,
                                 "is a file: name a folder"),
    "run --var without =": (lambda w: ["run", PRIVILEGED, "--var", "namespace"], 2,
                            "invalid --var 'namespace': write KEY=VALUE"),
    "run --var with a bad type": (lambda w: ["run", PRIVILEGED, "--var", "within:int=soon"], 2, "invalid --var"),
    "run --report out.pdf": (lambda w: ["run", PRIVILEGED, "--report", str(w / "out.pdf")], 2,
                             "cannot write a .pdf report"),
    "run a missing experiment": (lambda w: ["run", str(w / "missing.yaml")], 2, "no such experiment file or folder"),
    "run --var-file missing": (lambda w: ["run", PRIVILEGED, "--var-file", str(w / "nope.yaml")], 2,
                               "no such var file"),
    "run --log-file in a file": (lambda w: ["run", PRIVILEGED, "--log-file", f"{a_file(w)}/log"], 2,
                                 "cannot write the log file"),
    "report -o out.pdf": (lambda w: ["report", PRIVILEGED, "-o", str(w / "out.pdf")], 2,
                          "cannot write a .pdf report"),
    "report a missing journal": (lambda w: ["report", str(w / "missing.json")], 1, "cannot read journal"),
    "report a folder": (lambda w: ["report", str(w)], 1, "cannot read journal"),
    "report a file that is not a journal": (lambda w: ["report", a_file(w, "x.json", "{}")], 1,
                                            "is not a Chaos Toolkit journal"),
    "report into an unwritable place": (lambda w: ["report", PRIVILEGED, "-o", f"{a_file(w)}/r.html"], 1,
                                        "kirvis report:"),
    "verify a missing journal": (lambda w: ["verify", str(w / "missing.json")], 1, "cannot read it as a journal"),
    "verify with a missing key": (lambda w: ["verify", a_file(w, "j.json", "{}"), "--key", str(w / "no.pem")], 2,
                                  "kirvis verify:"),
    "sandbox --apply missing": (lambda w: ["sandbox", "--apply", str(w / "missing")], 1,
                                "no such manifest file or folder"),
    "cleanup without choosing": (lambda w: ["cleanup"], 2, "choose what to remove"),
    "cleanup without a cluster": (lambda w: ["cleanup", "--all"], 1, "no Kubernetes cluster configuration found"),
    "cleanup with a bad run id": (lambda w: ["cleanup", "--run-id", "Not A Run"], 1, "run id"),
    "an unknown flag": (lambda w: ["run", PRIVILEGED, "--no-such-flag"], 2, "unrecognized arguments"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_no_traceback(case, tmp_path):
    arguments, code, text = CASES[case]
    done = kirvis(tmp_path, *arguments(tmp_path))
    errors = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]

    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == code, done.stdout + done.stderr
    assert any(text in line for line in errors), errors
    assert len(errors) <= 3, errors  # argparse prints its usage line before the error
