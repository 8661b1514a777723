"""`kirvis run --context A --context B`: one suite against two clusters, and `kirvis report` over both.

Two sandboxes differ only in the controls: "guarded" has the repository's scenarios applied (team-baseline
under Pod Security baseline, the policies), "open" has a team-baseline namespace with no label and no
policy. One kubeconfig names both (their servers, CAs and tokens differ), as a user with two clusters has.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from chaoskirvis.report.markdown import md
from chaoskirvis.sandbox.server import Sandbox
from chaosrun import BIN, EXPERIMENTS, ROOT, chaos_env

BLOCKING = ["privileged-pod-denied", "host-path-denied", "host-network-denied"]
CONTEXTS = ["guarded", "open"]


def kirvis(workdir: Path, kubeconfig: Path | None, *arguments: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kirvis"), *arguments], cwd=workdir, env=chaos_env(kubeconfig, **env),
                          capture_output=True, text=True, timeout=300)


def two_context_kubeconfig(path: Path, sandboxes: dict[str, Sandbox]) -> Path:
    """One kubeconfig whose contexts, clusters and users are named after the sandboxes."""
    merged: dict = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": [],
                    "current-context": "guarded"}
    for name, sandbox in sandboxes.items():
        written = yaml.safe_load(sandbox.write_kubeconfig(path.parent / f"{name}.kubeconfig").read_text())
        merged["clusters"].append({"name": name, "cluster": written["clusters"][0]["cluster"]})
        merged["users"].append({"name": f"{name}-admin", "user": written["users"][0]["user"]})
        merged["contexts"].append({"name": name, "context": {"cluster": name, "user": f"{name}-admin"}})
    path.write_text(yaml.safe_dump(merged))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with Sandbox() as guarded, Sandbox() as open_:
        for manifest in sorted((ROOT / "scenarios").glob("*.yaml")):
            guarded.apply(manifest)
        open_.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-baseline\n")
        work = tmp_path_factory.mktemp("fleet")
        kubeconfig = two_context_kubeconfig(work / "kubeconfig", {"guarded": guarded, "open": open_})
        yield work, kubeconfig, {"guarded": guarded, "open": open_}


@pytest.fixture(scope="module")
def fleet_run(fleet):
    work, kubeconfig, sandboxes = fleet
    suite = work / "suite"
    suite.mkdir()
    for name in BLOCKING:
        shutil.copy(EXPERIMENTS / f"{name}.yaml", suite)
    done = kirvis(work, kubeconfig, "run", "suite", "--context", "guarded", "--context", "open", "--parallel", "2",
                  "--journals", "journals", "--report", "fleet.md")
    return done, work, kubeconfig, sandboxes


def printed_matrix(stdout: str) -> dict[str, list[str]]:
    """The matrix `kirvis run` printed at the end, as {cluster: cells} ("cluster": the experiments)."""
    lines = stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("fleet: "))
    clusters = int(lines[start].split()[1])
    return {row.split()[0]: row.split()[1:] for row in lines[start + 1:start + 2 + clusters]}


def printed_errors(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("error in ")]


def matrix_rows(markdown: str) -> dict[str, dict[str, str]]:
    """The Fleet section's table as {cluster: {experiment: cell}}."""
    section = markdown.split("## Fleet\n", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    rows = {}
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], cells[1:]))
    return rows


def test_the_fleet_run_shows_guarded_held_and_open_weak(fleet_run):
    done, work, _, _ = fleet_run
    output = done.stdout + done.stderr

    assert done.returncode == 1, output
    assert "fleet: 2 cluster(s) x 3 experiment(s)" in done.stdout
    assert printed_matrix(done.stdout) == {"cluster": sorted(BLOCKING), "guarded": ["held", "held", "held"],
                                           "open": ["weakness", "weakness", "weakness"]}, output
    assert printed_errors(done.stdout) == []
    assert "[guarded] kirvis run exited 0" in done.stdout
    assert "[open] kirvis run exited 1" in done.stdout


def test_each_context_has_its_own_journals_recording_its_cluster(fleet_run):
    _, work, _, sandboxes = fleet_run
    servers = {}
    for context in CONTEXTS:
        folder = work / "journals" / context
        journals = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
        assert sorted(journals) == sorted(BLOCKING)
        assert (folder / "kirvis-run.log").stat().st_size > 0
        recorded = {j["chaoskirvis"]["cluster"]["context"] for j in journals.values()}
        assert recorded == {context}
        servers[context] = {j["chaoskirvis"]["cluster"]["server"] for j in journals.values()}
        expected = "held" if context == "guarded" else "weakness"
        assert {j["chaoskirvis"]["verdict"]["result"] for j in journals.values()} == {expected}
        assert all(j["chaoskirvis"]["ledger"]["restored"] for j in journals.values())
    assert servers == {name: {sandbox.url} for name, sandbox in sandboxes.items()}
    run_ids = [json.loads(p.read_text())["chaoskirvis"]["run_id"] for p in (work / "journals").glob("*/*.json")]
    assert len(set(run_ids)) == len(run_ids) == 6


def test_the_report_of_both_folders_shows_the_matrix(fleet_run):
    _, work, kubeconfig, _ = fleet_run
    journals = [str(p.relative_to(work)) for p in sorted((work / "journals").glob("*/*.json"))]
    markdown = kirvis(work, kubeconfig, "report", *journals, "--format", "md")
    summary = kirvis(work, kubeconfig, "report", *journals, "--format", "json")
    html = kirvis(work, kubeconfig, "report", *journals, "--format", "html")
    assert markdown.returncode == summary.returncode == html.returncode == 0, markdown.stderr + summary.stderr

    rows = matrix_rows(markdown.stdout)
    assert list(rows) == CONTEXTS
    for experiment in BLOCKING:
        assert rows["guarded"][experiment] == "held"
        assert rows["open"][experiment] == "weakness"
    assert rows["guarded"]["Verdicts"] == "3 held" and rows["open"]["Verdicts"] == "3 weakness"
    assert matrix_rows((work / "fleet.md").read_text()) == rows  # the run's --report: the same matrix

    fleet = json.loads(summary.stdout)["fleet"]
    assert [c["name"] for c in fleet["clusters"]] == CONTEXTS
    assert sorted(e["name"] for e in fleet["experiments"]) == sorted(BLOCKING)
    for experiment in BLOCKING:
        guarded, open_ = fleet["matrix"]["guarded"][experiment], fleet["matrix"]["open"][experiment]
        assert (guarded["verdict"], guarded["as_expected"]) == ("held", True)
        assert (open_["verdict"], open_["as_expected"]) == ("weakness", False)
        assert Path(guarded["journal"]).parent.name == "guarded" and Path(open_["journal"]).parent.name == "open"

    assert 'id="fleet"' in html.stdout
    assert html.stdout.count('data-cluster="guarded"') == html.stdout.count('data-cluster="open"') == 3
    assert html.stdout.count('data-cluster="open" data-experiment="host-path-denied" data-label="weakness"') == 1


def test_one_cluster_keeps_the_report_without_a_fleet(fleet_run):
    _, work, kubeconfig, _ = fleet_run
    journals = [str(p) for p in sorted((work / "journals" / "guarded").glob("*.json"))]
    markdown = kirvis(work, kubeconfig, "report", *journals, "--format", "md")
    summary = kirvis(work, kubeconfig, "report", *journals, "--format", "json")
    html = kirvis(work, kubeconfig, "report", *journals, "--format", "html")

    assert "## Fleet" not in markdown.stdout
    assert "fleet" not in json.loads(summary.stdout)
    assert 'id="fleet"' not in html.stdout


def test_an_unknown_context_is_an_error_before_anything_runs(fleet):
    work, kubeconfig, sandboxes = fleet
    before = {name: len(sandbox.requests) for name, sandbox in sandboxes.items()}
    done = kirvis(work, kubeconfig, "run", str(EXPERIMENTS / "privileged-pod-denied.yaml"), "--context", "guarded",
                  "--context", "staging", "--journals", "unknown-journals")

    assert done.returncode == 2, done.stdout + done.stderr
    assert "no context 'staging' in the kubeconfig (its contexts: guarded, open)" in done.stderr
    assert not (work / "unknown-journals").exists()
    assert {name: len(sandbox.requests) for name, sandbox in sandboxes.items()} == before


def test_a_journal_from_another_cluster_than_asked_is_an_error(fleet, tmp_path):
    """An experiment whose secrets pin KUBERNETES_CONTEXT tests that cluster whatever --context says: the
    fleet must not count the guarded cluster's pass for the open one."""
    work, kubeconfig, _ = fleet
    pinned = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    pinned["secrets"] = {"kubernetes": {"KUBERNETES_CONTEXT": "guarded"}}
    (tmp_path / "privileged-pod-denied.yaml").write_text(yaml.safe_dump(pinned))
    done = kirvis(work, kubeconfig, "run", str(tmp_path), "--context", "guarded", "--context", "open",
                  "--journals", str(tmp_path / "journals"))

    assert done.returncode == 2, done.stdout + done.stderr
    assert printed_matrix(done.stdout) == {"cluster": ["privileged-pod-denied"], "guarded": ["held"], "open": ["error"]}
    assert printed_errors(done.stdout) == [
        "error in open, privileged-pod-denied: the journal records context guarded, not open (do the experiment's "
        "secrets choose a KUBERNETES_CONTEXT or KUBECONFIG of their own?)"]


def test_stale_journals_do_not_pass_a_run_that_wrote_none(fleet, tmp_path):
    """Journals left from an earlier run (here: forged "held" ones) are not this run's: a context whose run
    stopped before writing any shows errors, and the fleet exits 2."""
    work, kubeconfig, _ = fleet
    for context in CONTEXTS:
        (tmp_path / "journals" / context).mkdir(parents=True)
        (tmp_path / "journals" / context / "privileged-pod-denied.json").write_text(json.dumps(
            {"experiment": {"title": "forged"}, "status": "completed", "deviated": False,
             "chaoskirvis": {"cluster": {"context": context}, "verdict": {"result": "held"}}}))
    done = kirvis(work, kubeconfig, "run", str(EXPERIMENTS / "privileged-pod-denied.yaml"), "--all-contexts",
                  "--var-file", str(tmp_path / "missing.yaml"), "--journals", str(tmp_path / "journals"))

    assert done.returncode == 2, done.stdout + done.stderr
    assert "[open] kirvis run: no such var file" in done.stdout
    assert printed_matrix(done.stdout) == {"cluster": ["privileged-pod-denied"], **{c: ["error"] for c in CONTEXTS}}
    assert printed_errors(done.stdout) == [
        f"error in {context}, privileged-pod-denied: no journal of this run: kirvis run in this context exited 2 "
        "before writing it" for context in CONTEXTS]


@pytest.mark.parametrize("arguments, message", [
    (["--context", "guarded", "--all-contexts"], "--context and --all-contexts: choose one"),
    (["--parallel", "2"], "--parallel goes with --context or --all-contexts"),
    (["--context", "guarded", "--parallel", "0"], "--parallel 0: run at least one context at a time"),
])
def test_fleet_options_that_cannot_run(fleet, arguments, message):
    work, kubeconfig, _ = fleet
    done = kirvis(work, kubeconfig, "run", str(EXPERIMENTS / "privileged-pod-denied.yaml"), *arguments,
                  "--journals", "never")

    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (work / "never").exists()


@pytest.mark.parametrize("choice, running", [
    (["--all-contexts"], 2),
    (["--context", "open", "--context", "guarded", "--parallel", "1"], 1),  # guarded waits its turn
])
def test_a_signal_to_the_fleet_reaches_every_running_context_which_restores_its_run(fleet, tmp_path, choice, running):
    """Ctrl-C at the terminal reaches the fleet only (each context runs in its own session): the fleet passes
    it on to every running context, which restores what it introduced, as a single `kirvis run` does; a
    context not started yet is not started."""
    work, kubeconfig, _ = fleet
    slow = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    slow["method"][0]["pauses"] = {"after": 120}
    (tmp_path / "slow-privileged.yaml").write_text(yaml.safe_dump(slow))
    core = client.CoreV1Api(config.new_client_from_config(str(work / "open.kubeconfig")))
    marked = "app.kubernetes.io/managed-by=chaoskirvis"
    process = subprocess.Popen(
        [str(BIN / "kirvis"), "run", str(tmp_path / "slow-privileged.yaml"), *choice, "--journals",
         str(tmp_path / "journals")], cwd=work, env=chaos_env(kubeconfig), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 60
    while not core.list_namespaced_pod("team-baseline", label_selector=marked).items:
        assert process.poll() is None and time.monotonic() < deadline, "the open cluster's injection never happened"
        time.sleep(0.1)
    time.sleep(0.5)  # the record's "created" entry is written just after the create
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=90)

    assert process.returncode == 2, output  # an interrupted run is an error, as in a single `kirvis run`
    assert f"kirvis run: SIGINT: passed to {running} running context(s), the others are not started" in output
    assert core.list_namespaced_pod("team-baseline", label_selector=marked).items == []
    assert core.list_namespaced_config_map("team-baseline", label_selector=marked).items == []
    journal = json.loads((tmp_path / "journals" / "open" / "slow-privileged.json").read_text())
    assert journal["status"] == "interrupted" and journal["chaoskirvis"]["ledger"]["restored"] is True
    assert printed_matrix(output) == {"cluster": ["slow-privileged"], "guarded": ["error"], "open": ["error"]}, output
    assert (tmp_path / "journals" / "guarded").exists() == (running == 2)
    if running == 1:
        assert "error in guarded, slow-privileged: not run: the fleet was stopped by a signal first" in output


def test_one_cluster_name_for_a_fleets_metrics_is_refused(fleet):
    """Every context would push its verdicts under the same cluster label, each replacing the other's."""
    work, kubeconfig, sandboxes = fleet
    before = {name: len(sandbox.requests) for name, sandbox in sandboxes.items()}
    done = kirvis(work, kubeconfig, "run", str(EXPERIMENTS / "privileged-pod-denied.yaml"), "--all-contexts",
                  "--pushgateway", "http://127.0.0.1:9", "--cluster-name", "prod", "--journals", "never")

    assert done.returncode == 2, done.stdout + done.stderr
    assert "--cluster-name names one cluster" in done.stderr
    assert {name: len(sandbox.requests) for name, sandbox in sandboxes.items()} == before


def test_two_clusters_behind_one_context_name_are_two_rows_named_by_server(fleet, tmp_path):
    """Two kubeconfigs that both call their context kirvis-sandbox (as `kirvis sandbox` writes them), each
    run on its own: the report still tells the clusters apart, by the server each journal records."""
    work, _, sandboxes = fleet
    journals = []
    for name, sandbox in sandboxes.items():
        own = sandbox.write_kubeconfig(tmp_path / f"{name}.kubeconfig")  # context "kirvis-sandbox" in both
        done = kirvis(tmp_path, own, "run", str(EXPERIMENTS / "privileged-pod-denied.yaml"), "--journals", name)
        assert done.returncode in (0, 1), done.stdout + done.stderr
        journals.append(f"{name}/privileged-pod-denied.json")
    summary = json.loads(kirvis(tmp_path, None, "report", *journals, "--format", "json").stdout)
    rows = matrix_rows(kirvis(tmp_path, None, "report", *journals, "--format", "md").stdout)

    names = {name: f"kirvis-sandbox ({sandbox.url})" for name, sandbox in sandboxes.items()}
    assert [c["name"] for c in summary["fleet"]["clusters"]] == [names["guarded"], names["open"]]
    assert summary["fleet"]["matrix"][names["guarded"]]["privileged-pod-denied"]["verdict"] == "held"
    assert summary["fleet"]["matrix"][names["open"]]["privileged-pod-denied"]["verdict"] == "weakness"
    assert {cluster: row["privileged-pod-denied"] for cluster, row in rows.items()} == {
        md(names["guarded"]): "held", md(names["open"]): "weakness"}


def test_contexts_that_are_not_file_names_get_their_own_folders_inside_the_journals(fleet, tmp_path):
    """An EKS context is an ARN (':' and '/'); a context may even be called '..': neither may write outside DIR."""
    work, kubeconfig, _ = fleet
    document = yaml.safe_load(kubeconfig.read_text())
    renamed = {"guarded": "arn:aws:eks:eu-west-1:111122223333:cluster/guarded", "open": ".."}
    for context in document["contexts"]:
        context["name"] = renamed[context["name"]]
    document["current-context"] = renamed["guarded"]
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(document))
    done = kirvis(tmp_path, tmp_path / "kubeconfig", "run", str(EXPERIMENTS / "privileged-pod-denied.yaml"),
                  "--all-contexts", "--journals", "journals")

    assert done.returncode == 1, done.stdout + done.stderr
    assert sorted(p.name for p in (tmp_path / "journals").iterdir()) == [
        "_..", "_arn_aws_eks_eu-west-1_111122223333_cluster_guarded"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journals", "kubeconfig"]
    assert printed_matrix(done.stdout) == {"cluster": ["privileged-pod-denied"], renamed["guarded"]: ["held"],
                                           "..": ["weakness"]}


def test_the_report_cell_is_the_latest_run_of_that_experiment_in_that_cluster(fleet_run, tmp_path):
    """A later run of one experiment in the open cluster, as a negative control (--expect weakness), replaces
    that cell only: the earlier journal stays in the summary, the matrix shows where things stand now."""
    done, work, kubeconfig, _ = fleet_run
    later = kirvis(work, kubeconfig, "run", str(EXPERIMENTS / "host-path-denied.yaml"), "--context", "open",
                   "--expect", "weakness", "--journals", str(tmp_path / "later"))
    assert later.returncode == 0, later.stdout + later.stderr
    journals = [*sorted((work / "journals").glob("*/*.json")), tmp_path / "later" / "open" / "host-path-denied.json"]
    summary = json.loads(kirvis(work, kubeconfig, "report", *map(str, journals), "--format", "json").stdout)

    assert len(summary["experiments"]) == 7
    assert {e: c["label"] for e, c in summary["fleet"]["matrix"]["open"].items()} == {
        "host-network-denied": "weakness", "host-path-denied": "weakness (expected)",
        "privileged-pod-denied": "weakness"}
    assert summary["fleet"]["matrix"]["open"]["host-path-denied"]["journal"] == str(journals[-1])
    assert {c["label"] for c in summary["fleet"]["matrix"]["guarded"].values()} == {"held"}


def test_a_journal_with_a_hostile_section_still_gets_its_cell(fleet_run, tmp_path):
    """A journal is data: an evidence section whose experiment is not a mapping and whose server is not a
    string falls back to the journal's own name and no server, and the JSON report still renders."""
    _, work, kubeconfig, _ = fleet_run
    guarded = work / "journals" / "guarded" / "host-path-denied.json"
    hostile = json.loads((work / "journals" / "open" / "host-path-denied.json").read_text())
    hostile["chaoskirvis"]["experiment"] = "host-path-denied"
    hostile["chaoskirvis"]["cluster"]["server"] = ["https://elsewhere"]
    (tmp_path / "forged.json").write_text(json.dumps(hostile))
    done = kirvis(work, kubeconfig, "report", str(guarded), str(tmp_path / "forged.json"), "--format", "json")
    fleet = json.loads(done.stdout)["fleet"]
    server = json.loads(guarded.read_text())["chaoskirvis"]["cluster"]["server"]

    assert fleet["clusters"] == [{"name": "guarded", "server": server}, {"name": "open", "server": None}]
    assert fleet["matrix"]["open"] == {"host-path-denied": None, "forged": fleet["matrix"]["open"]["forged"]}
    assert fleet["matrix"]["open"]["forged"]["verdict"] == "weakness"


def test_a_context_that_cannot_be_reached_or_used_is_an_error_with_its_cause(fleet, tmp_path):
    """One context's API server is down (nothing listens), another names a cluster the kubeconfig lacks: both
    rows are errors saying why, the guarded row still holds, and the fleet exits 2."""
    work, kubeconfig, _ = fleet
    document = yaml.safe_load(kubeconfig.read_text())
    document["clusters"].append({"name": "gone", "cluster": {**document["clusters"][0]["cluster"],
                                                             "server": "https://127.0.0.1:9"}})
    document["contexts"] = [document["contexts"][0],
                            {"name": "down", "context": {"cluster": "gone", "user": "guarded-admin"}},
                            {"name": "broken", "context": {"cluster": "nowhere", "user": "guarded-admin"}}]
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(document))
    done = kirvis(tmp_path, tmp_path / "kubeconfig", "run", str(EXPERIMENTS / "privileged-pod-denied.yaml"),
                  "--all-contexts", "--journals", "journals", KIRVIS_REQUEST_TIMEOUT="2")
    errors = printed_errors(done.stdout)

    assert done.returncode == 2, done.stdout + done.stderr
    assert printed_matrix(done.stdout) == {"cluster": ["privileged-pod-denied"], "guarded": ["held"],
                                           "down": ["error"], "broken": ["error"]}
    assert [line.split(":")[0] for line in errors] == ["error in down, privileged-pod-denied",
                                                       "error in broken, privileged-pod-denied"]
    assert "127.0.0.1:9" in errors[0]
    assert 'cluster "nowhere" of context "broken" does not exist' in errors[1]
