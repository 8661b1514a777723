"""`kirvis run --pushgateway` and `kirvis push-metrics` against Debian's real prometheus-pushgateway (1.5),
read back through the gateway's own API (`/api/v1/metrics`), as Prometheus would scrape them."""
from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chaosrun import BIN, EXPERIMENTS, ROOT, chaos_env
from detector import Detector
from programs import wait_ready

PRIVILEGED = EXPERIMENTS / "privileged-pod-denied.yaml"
RUN_AS_ROOT = EXPERIMENTS / "run-as-root-denied.yaml"
EVENT = EXPERIMENTS / "privileged-pod-policy-violation-event.yaml"
LAST_SUCCESS = "kirvis_suite_last_success_timestamp_seconds"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_pushgateway(tmp_path_factory.mktemp("pushgateway")) as url:
        yield url


@contextlib.contextmanager
def running_pushgateway(work: Path) -> Iterator[str]:
    """Debian's prometheus-pushgateway on 127.0.0.1, in memory only (Debian's default persists to
    /var/lib/prometheus: an empty --persistence.file turns that off)."""
    binary = shutil.which("prometheus-pushgateway")
    assert binary, "prometheus-pushgateway is not installed: apt-get install prometheus-pushgateway"
    log = work / "pushgateway.log"
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen([binary, f"--web.listen-address={url.removeprefix('http://')}", "--persistence.file="],
                               stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def kirvis(workdir: Path, kubeconfig: Path | None, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kirvis"), *arguments], cwd=workdir, env=chaos_env(kubeconfig),
                          capture_output=True, text=True, timeout=300)


def group(gateway: str, cluster: str, job: str = "kirvis") -> dict[str, list[tuple[dict, float]]]:
    """The gateway's group {job, cluster}: metric name -> [(labels without job/cluster/instance, value)]."""
    answer = json.load(urllib.request.urlopen(f"{gateway}/api/v1/metrics", timeout=5))
    assert answer["status"] == "success"
    found = [g for g in answer["data"] if g["labels"] == {"job": job, "cluster": cluster}]
    if not found:
        return {}
    [metrics] = found
    assert metrics["last_push_successful"] is True
    samples: dict[str, list[tuple[dict, float]]] = {}
    for name, family in metrics.items():
        if not isinstance(family, dict) or "metrics" not in family:
            continue
        for sample in family["metrics"]:
            labels = dict(sample["labels"])
            assert (labels.pop("job"), labels.pop("cluster"), labels.pop("instance")) == (job, cluster, "")
            samples.setdefault(name, []).append((labels, float(sample["value"])))
    return samples


def verdicts(samples: dict) -> dict[tuple[str, str, str], str]:
    """(experiment, technique, namespace) -> the verdict whose gauge is 1; each has exactly one of three."""
    seen: dict[tuple[str, str, str], dict[str, float]] = {}
    for labels, value in samples["kirvis_experiment_verdict"]:
        key = (labels["experiment"], labels.get("technique", ""), labels.get("namespace", ""))
        seen.setdefault(key, {})[labels["verdict"]] = value
    for key, values in seen.items():
        assert sorted(values) == ["error", "held", "weakness"] and sorted(values.values()) == [0, 0, 1], (key, values)
    return {key: next(word for word, value in values.items() if value == 1) for key, values in seen.items()}


def by_experiment(samples: dict, name: str) -> dict[str, float]:
    return {labels["experiment"]: value for labels, value in samples.get(name, [])}


def journal_end(path: Path) -> float:
    from chaoskirvis.evidence.journal import parse_time

    return parse_time(json.loads(path.read_text())["end"]).timestamp()


@pytest.fixture(scope="module")
def mixed_run(scenarios, pushgateway, tmp_path_factory):
    """One `kirvis run` in team-baseline (Pod Security "baseline"): privileged is blocked (held), running as
    root is admitted (weakness), a file that is not YAML cannot be run (error)."""
    work = tmp_path_factory.mktemp("mixed")
    (work / "broken.yaml").write_text("title: [not closed\n")
    done = kirvis(work, scenarios.kubeconfig, "run", str(PRIVILEGED), str(RUN_AS_ROOT), "broken.yaml",
                  "--var", "namespace=team-baseline", "--journals", "journals",
                  "--pushgateway", pushgateway, "--cluster-name", "mixed")
    return done, work / "journals"


def test_a_run_pushes_each_experiments_verdict_per_technique_and_namespace(mixed_run, pushgateway):
    done, journals = mixed_run
    samples = group(pushgateway, "mixed")

    assert done.returncode == 1, done.stdout + done.stderr  # the weakness decides the exit code
    assert "pushed the verdicts of 3 experiment(s) of cluster mixed to " in done.stdout
    assert verdicts(samples) == {
        ("privileged-pod-denied", "privileged", "team-baseline"): "held",
        ("run-as-root-denied", "run-as-root", "team-baseline"): "weakness",
        ("broken", "", ""): "error",  # not run: no technique was tried, and still a series to alert on
    }
    assert by_experiment(samples, "kirvis_experiment_as_expected") == {
        "privileged-pod-denied": 1, "run-as-root-denied": 0, "broken": 0}
    ends = {path.stem: journal_end(path) for path in journals.glob("*.json")}
    assert by_experiment(samples, "kirvis_experiment_last_run_timestamp_seconds") == pytest.approx(ends)
    assert 0 < by_experiment(samples, "kirvis_experiment_duration_seconds")["privileged-pod-denied"] < 30
    assert samples["kirvis_suite_last_run_timestamp_seconds"] == [({}, pytest.approx(max(ends.values())))]
    assert LAST_SUCCESS not in samples  # the suite did not pass, and no earlier run did
    assert "kirvis_experiment_time_to_detect_seconds" not in samples  # nothing here waits for a detector


def test_the_last_success_survives_a_failing_run_and_the_group_is_replaced(mixed_run, pushgateway, tmp_path):
    _, journals = mixed_run
    held = kirvis(tmp_path, None, "push-metrics", str(journals / "privileged-pod-denied.json"),
                  "--pushgateway", pushgateway, "--cluster-name", "carried")
    after_held = group(pushgateway, "carried")
    failing = kirvis(tmp_path, None, "push-metrics", str(journals / "run-as-root-denied.json"),
                     "--pushgateway", pushgateway, "--cluster-name", "carried")
    after_failing = group(pushgateway, "carried")

    assert (held.returncode, failing.returncode) == (0, 0), held.stderr + failing.stderr
    assert "(every verdict as expected)" in held.stdout and "(not every verdict as expected)" in failing.stdout
    success = journal_end(journals / "privileged-pod-denied.json")
    assert after_held[LAST_SUCCESS] == [({}, pytest.approx(success))]
    assert after_failing[LAST_SUCCESS] == [({}, pytest.approx(success))]
    assert after_failing["kirvis_suite_last_run_timestamp_seconds"] == [
        ({}, pytest.approx(journal_end(journals / "run-as-root-denied.json")))]
    # PUT replaces the group: the experiment this push did not carry is gone, not left stale.
    assert verdicts(after_failing) == {("run-as-root-denied", "run-as-root", "team-baseline"): "weakness"}


def test_without_a_cluster_name_the_journals_kubeconfig_context_is_the_cluster(mixed_run, scenarios, pushgateway,
                                                                               tmp_path):
    _, journals = mixed_run
    context = yaml.safe_load(scenarios.kubeconfig.read_text())["current-context"]
    done = kirvis(tmp_path, None, "push-metrics", *map(str, sorted(journals.glob("*.json"))),
                  "--pushgateway", pushgateway)

    assert done.returncode == 0, done.stderr
    assert f"pushed the verdicts of 3 experiment(s) of cluster {context} to " in done.stdout
    # the not-run journal records no cluster: it belongs to the one context the others name
    assert verdicts(group(pushgateway, context))[("broken", "", "")] == "error"


def test_a_detection_run_pushes_its_time_to_detect(scenarios, pushgateway, make_namespace, tmp_path):
    namespace = make_namespace(enforce="privileged")
    with Detector(scenarios.kubeconfig, delay=0.3, events=True):
        done = kirvis(tmp_path, scenarios.kubeconfig, "run", str(EVENT), "--var", f"namespace={namespace}",
                      "--var", "within:int=3", "--journals", "journals",
                      "--pushgateway", pushgateway, "--cluster-name", "detected")
    samples = group(pushgateway, "detected")
    journal = json.loads((tmp_path / "journals" / f"{EVENT.stem}.json").read_text())
    [found] = [o for o in journal["chaoskirvis"]["outcomes"] if o["outcome"] == "detected"]

    assert done.returncode == 0, done.stdout + done.stderr
    assert verdicts(samples) == {(EVENT.stem, "privileged", namespace): "held"}
    assert samples["kirvis_experiment_time_to_detect_seconds"] == [
        ({"experiment": EVENT.stem, "technique": "privileged", "namespace": namespace},
         pytest.approx(found["time_to_detect_s"]))]
    assert 0.2 < found["time_to_detect_s"] < 3


def test_each_technique_of_an_experiment_has_its_own_verdict_unless_the_run_is_an_error(scenarios, pushgateway,
                                                                                        tmp_path):
    experiment = yaml.safe_load(RUN_AS_ROOT.read_text())
    experiment["method"] = [
        {"type": "action", "name": f"introduce-{technique}", "provider": {
            "type": "python", "module": "chaoskirvis.workload.actions", "func": "inject_risky_pod",
            "arguments": {"namespace": "${namespace}", "techniques": [technique]}}}
        for technique in ("privileged", "run-as-root")
    ]
    (tmp_path / "two-techniques.yaml").write_text(yaml.safe_dump(experiment))
    restored = kirvis(tmp_path, scenarios.kubeconfig, "run", "two-techniques.yaml", "--var", "namespace=team-baseline",
                      "--journals", "restored", "--pushgateway", pushgateway, "--cluster-name", "two")
    one_run = verdicts(group(pushgateway, "two"))
    left = kirvis(tmp_path, scenarios.kubeconfig, "run", "two-techniques.yaml", "--var", "namespace=team-baseline",
                  "--journals", "left", "--rollback-strategy", "never", "--pushgateway", pushgateway,
                  "--cluster-name", "two")
    run_id = json.loads((tmp_path / "left" / "two-techniques.json").read_text())["chaoskirvis"]["run_id"]
    cleanup = kirvis(tmp_path, scenarios.kubeconfig, "cleanup", "--run-id", run_id)

    assert (restored.returncode, left.returncode, cleanup.returncode) == (1, 2, 0), restored.stdout + left.stdout
    assert one_run == {("two-techniques", "privileged", "team-baseline"): "held",
                       ("two-techniques", "run-as-root", "team-baseline"): "weakness"}
    # Not restored: the run is an error, so no technique of it reads as held or as a weakness.
    assert verdicts(group(pushgateway, "two")) == {("two-techniques", "privileged", "team-baseline"): "error",
                                                   ("two-techniques", "run-as-root", "team-baseline"): "error"}


def test_a_fleet_run_pushes_one_group_per_context(pushgateway, tmp_path):
    from chaoskirvis.sandbox.server import Sandbox
    from test_fleet import two_context_kubeconfig

    with Sandbox() as guarded, Sandbox() as open_:
        for manifest in sorted((ROOT / "scenarios").glob("*.yaml")):
            guarded.apply(manifest)
        open_.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-baseline\n")
        kubeconfig = two_context_kubeconfig(tmp_path / "kubeconfig", {"guarded": guarded, "open": open_})
        done = kirvis(tmp_path, kubeconfig, "run", str(PRIVILEGED), "--var", "namespace=team-baseline",
                      "--context", "guarded", "--context", "open", "--journals", "journals",
                      "--pushgateway", pushgateway)

    assert done.returncode == 1, done.stdout + done.stderr  # the open cluster's weakness
    assert verdicts(group(pushgateway, "guarded")) == {("privileged-pod-denied", "privileged", "team-baseline"): "held"}
    assert verdicts(group(pushgateway, "open")) == {
        ("privileged-pod-denied", "privileged", "team-baseline"): "weakness"}
    assert LAST_SUCCESS in group(pushgateway, "guarded") and LAST_SUCCESS not in group(pushgateway, "open")


def test_an_unreachable_gateway_is_exit_2_with_the_journals_written(scenarios, tmp_path):
    gateway = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), "--var", "namespace=team-baseline",
                  "--journals", "journals", "--pushgateway", gateway, "--cluster-name", "nowhere")

    assert done.returncode == 2, done.stdout + done.stderr
    assert "1 experiment(s): 1 held" in done.stdout
    assert f"kirvis run: metrics not pushed: cannot read the Pushgateway at {gateway}" in done.stderr
    assert "Connection refused" in done.stderr
    assert json.loads((tmp_path / "journals" / "privileged-pod-denied.json").read_text())[
        "chaoskirvis"]["verdict"]["result"] == "held"


def test_a_gateway_that_refuses_the_push_is_exit_2(mixed_run, tmp_path):
    _, journals = mixed_run
    with running_pushgateway(tmp_path) as gateway:  # a gateway of its own: the suite's names are new there
        # Another job holds the suite's metric as a counter: the Pushgateway refuses a push that would make
        # its exposition inconsistent (HTTP 400), whatever the group.
        body = b"# TYPE kirvis_experiment_duration_seconds counter\nkirvis_experiment_duration_seconds 1\n"
        urllib.request.urlopen(urllib.request.Request(f"{gateway}/metrics/job/other", data=body, method="PUT"),
                               timeout=5)
        done = kirvis(tmp_path, None, "push-metrics", str(journals / "privileged-pod-denied.json"),
                      "--pushgateway", gateway, "--cluster-name", "refused")

        assert done.returncode == 2, done.stdout + done.stderr
        assert (f"kirvis push-metrics: metrics not pushed: cannot push the metrics of cluster 'refused' to the "
                f"Pushgateway at {gateway}: ") in done.stderr
        assert "400" in done.stderr
        answer = json.load(urllib.request.urlopen(f"{gateway}/api/v1/metrics", timeout=5))
        [refused] = [g for g in answer["data"] if g["labels"] == {"job": "kirvis", "cluster": "refused"}]
        assert refused["last_push_successful"] is False  # the gateway's own record of the refusal
        assert not [name for name in refused if name.startswith("kirvis_")]


def test_what_cannot_be_pushed_is_said_before_anything_runs(scenarios, pushgateway, mixed_run, tmp_path):
    _, journals = mixed_run
    no_scheme = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), "--journals", "journals",
                       "--pushgateway", "pushgateway:9091")
    alone = kirvis(tmp_path, scenarios.kubeconfig, "run", str(PRIVILEGED), "--journals", "journals",
                   "--cluster-name", "a")
    twice = kirvis(tmp_path, None, "push-metrics", str(journals / "privileged-pod-denied.json"),
                   str(journals / "privileged-pod-denied.json"), "--pushgateway", pushgateway, "--cluster-name", "b")
    not_journal = kirvis(tmp_path, None, "push-metrics", str(RUN_AS_ROOT), "--pushgateway", pushgateway)

    assert (no_scheme.returncode, alone.returncode, twice.returncode, not_journal.returncode) == (2, 2, 2, 2)
    assert "--pushgateway 'pushgateway:9091': give the gateway's URL, e.g. http://" in no_scheme.stderr
    assert "--cluster-name goes with --pushgateway" in alone.stderr
    assert not (tmp_path / "journals").exists()
    assert "two journals of experiment 'privileged-pod-denied' for cluster 'b'" in twice.stderr
    assert "metrics not pushed: cannot read journal" in not_journal.stderr
    assert group(pushgateway, "b") == {}


def test_prometheus_client_is_imported_only_to_export():
    script = ("import sys\nfrom chaoskirvis.cli import _parser\nfrom chaoskirvis.metrics import command, series\n"
              "_parser().parse_args(['run', 'x', '--pushgateway', 'http://gateway:9091'])\n"
              "assert 'prometheus_client' not in sys.modules, 'imported before exporting'\n"
              "import chaoskirvis.metrics.push\nassert 'prometheus_client' in sys.modules\n")
    done = subprocess.run([str(BIN / "python"), "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
