"""The reliability suite: the catalog's experiments through a fault-injecting proxy, and under signals.

Every shipped experiment runs with `kirvis run` through `tests/fault_proxy.py` in front of the sandbox,
where a seeded share of the requests (10 %, then 30 %) gets a fault: 500, 503 or 429 with Retry-After,
a dropped connection, a delay, a write carried out whose answer is lost (504), or a forged denial (a
500 or 200 whose message reads like Pod Security's). Beside those runs, `chaos run` processes are
killed with SIGKILL, SIGINT or SIGTERM at random points and `kirvis cleanup --run-id` follows. Decoys
(objects with partial marks, another run's id, our name pattern without marks, a hostile run record)
sit in the target namespaces throughout.

What must hold, whatever the faults: no run passes without its control; no run passes, or shows a
weakness, on an attempt that failed or was forged; nothing of a run is left after its own restore, or
after `kirvis cleanup --run-id` for a killed run; no decoy is touched; every run ends within its time
limit. The figures are printed in one summary line at the end of the test session.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client, config

from chaosrun import BIN, EXPERIMENTS, chaos_env
from fault_proxy import Answer, Cut, Delay, Drop, FaultProxy, Lost, status_body

SEED = 20261201
SHIPPED = sorted(EXPERIMENTS.glob("*.yaml"))
BLOCKING = [p for p in SHIPPED if "injections_blocked" in p.read_text()]
RUN_LIMIT_S = 60.0  # a run's time limit: request timeout 5 s, retries bounded by it, detection within 1 s
REQUEST_TIMEOUT = "5"
MARKS = ("app.kubernetes.io/managed-by", "chaoskirvis.io/run-id", "chaoskirvis.io/technique")
PSA_DENIAL = ('pods "kirvis-forged" is forbidden: violates PodSecurity "restricted:latest": privileged '
              '(container "kirvis" must not set securityContext.privileged=true)')


@dataclass
class Tally:
    runs: int = 0
    faulted_requests: int = 0
    requests: int = 0
    held_without_control: list[str] = field(default_factory=list)
    false_verdicts_on_faults: list[str] = field(default_factory=list)
    left_after_restore: list[str] = field(default_factory=list)
    left_after_cleanup: list[str] = field(default_factory=list)
    decoys_touched: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    verdicts: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"reliability: {self.runs} runs ({self.faulted_requests} of {self.requests} requests faulted; verdicts "
            f"{', '.join(f'{n} {v}' for v, n in sorted(self.verdicts.items()))}): "
            f"{len(self.held_without_control)} passes without the control, "
            f"{len(self.false_verdicts_on_faults)} passes or weaknesses on a failed or forged attempt, "
            f"{len(self.left_after_restore)} objects left after a run's own restore, "
            f"{len(self.left_after_cleanup)} after kirvis cleanup --run-id, "
            f"{len(self.decoys_touched)} decoys touched; slowest run {self.slowest_s:.1f} s (limit {RUN_LIMIT_S:.0f} s)"
        )


class RandomFaults:
    """A proxy rule: each request gets a fault with probability `rate`, drawn from a seeded generator."""

    def __init__(self, rate: float, seed: int):
        self.rate = rate
        self.random = random.Random(seed)
        self.faulted = 0
        self.seen = 0

    def __call__(self, method: str, path: str, query: dict[str, str]):
        self.seen += 1
        if self.random.random() >= self.rate:
            return None
        self.faulted += 1
        faults = [
            Answer(500, status_body(500, "InternalError", "Internal error occurred: etcdserver: leader changed")),
            Answer(503, status_body(503, "ServiceUnavailable", "the server is currently unable to handle the request"),
                   {"Retry-After": "1"}),
            Answer(429, status_body(429, "TooManyRequests", "too many requests, please try again later"),
                   {"Retry-After": "1"}),
            Drop(),
            Delay(self.random.uniform(0.1, 0.8)),
        ]
        if query.get("watch") == "true" or query.get("follow") == "true":
            faults.append(Cut([]))
        if method in ("POST", "PATCH", "PUT", "DELETE"):
            faults.append(Lost(Answer(504, status_body(504, "Timeout", "the request timed out"))))
        if method == "POST" and path.endswith("/pods"):  # forgeries: a denial's words on a status that is not one
            faults.append(Answer(500, status_body(500, "InternalError", PSA_DENIAL)))
            faults.append(Answer(200, status_body(200, "", PSA_DENIAL)))
        return self.random.choice(faults)


def objects_of_run(api: client.ApiClient, run_id: str) -> list[str]:
    selector = f"chaoskirvis.io/run-id={run_id}"
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    batch, net, rbac = client.BatchV1Api(api), client.NetworkingV1Api(api), client.RbacAuthorizationV1Api(api)
    listings = [
        ("Pod", core.list_pod_for_all_namespaces), ("Service", core.list_service_for_all_namespaces),
        ("ConfigMap", core.list_config_map_for_all_namespaces),
        ("Deployment", apps.list_deployment_for_all_namespaces), ("DaemonSet", apps.list_daemon_set_for_all_namespaces),
        ("CronJob", batch.list_cron_job_for_all_namespaces),
        ("NetworkPolicy", net.list_network_policy_for_all_namespaces),
        ("ClusterRoleBinding", rbac.list_cluster_role_binding),
    ]
    return [f"{kind} {o.metadata.namespace or ''}/{o.metadata.name}" for kind, listing in listings
            for o in listing(label_selector=selector).items]


def decoy_pod(name: str, labels: dict[str, str]) -> dict:
    return {"metadata": {"name": name, "labels": labels,
                         "annotations": {"chaoskirvis.io/expires-at": "2099-01-01T00:00:00Z"}},
            "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 65535,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"limits": {"cpu": "10m", "memory": "16Mi"}},
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}


@pytest.fixture(scope="module")
def decoys(scenarios):
    """Objects no run may touch, in every target namespace: {namespace/name: resourceVersion}."""
    core = client.CoreV1Api(config.new_client_from_config(str(scenarios.kubeconfig)))
    ours = {"app.kubernetes.io/managed-by": "chaoskirvis"}
    made: dict[str, str] = {}
    for namespace in ("team-privileged", "team-restricted"):
        shapes = {
            "kirvis-decoyrun01-privileged-aaaaa": {**ours, "chaoskirvis.io/run-id": "decoyrun01"},  # no technique
            "kirvis-decoyrun02-privileged-bbbbb": {**ours, "chaoskirvis.io/run-id": "decoyrun02",
                                                   "chaoskirvis.io/technique": "privileged"},  # another run
            "kirvis-rel-10-p-1-privileged-ccccc": {},  # our name pattern, no marks at all
            "app-decoyrun03": {**ours, "chaoskirvis.io/run-id": "decoyrun03",
                               "chaoskirvis.io/technique": "privileged"},  # marks, but not our name
        }
        for name, labels in shapes.items():
            pod = core.create_namespaced_pod(namespace, decoy_pod(name, labels))
            made[f"pods/{namespace}/{name}"] = fingerprint(pod)
        secret = core.create_namespaced_secret(namespace, {"metadata": {"name": "decoy-secret"},
                                                           "stringData": {"k": "v"}})
        made[f"secrets/{namespace}/decoy-secret"] = fingerprint(secret)
        entries = {  # a hostile record: points at the namespace itself, at decoys, at another namespace
            "a": {"plural": "pods", "kind": "Pod", "apiVersion": "v1", "namespace": namespace, "name": "..",
                  "state": "created"},
            "b": {"plural": "pods", "kind": "Pod", "apiVersion": "v1", "namespace": namespace,
                  "name": "kirvis-decoyrun01-privileged-aaaaa", "state": "created"},
            "c": {"plural": "secrets", "kind": "Secret", "apiVersion": "v1", "namespace": namespace,
                  "name": "decoy-secret", "state": "created"},
            "d": {"plural": "pods", "kind": "Pod", "apiVersion": "v1", "namespace": "default",
                  "name": "kirvis-hostile01-x", "state": "created"},
        }
        record = core.create_namespaced_config_map(namespace, {
            "metadata": {"name": "kirvis-ledger-hostile01", "labels": {
                **ours, "chaoskirvis.io/run-id": "hostile01", "chaoskirvis.io/technique": "ledger",
                "chaoskirvis.io/record": "ledger"}},
            "data": {key: json.dumps(entry) for key, entry in entries.items()}})
        made[f"configmaps/{namespace}/kirvis-ledger-hostile01"] = fingerprint(record)
    yield made
    for key in made:
        kind, namespace, name = key.split("/")
        try:
            {"pods": core.delete_namespaced_pod, "secrets": core.delete_namespaced_secret,
             "configmaps": core.delete_namespaced_config_map}[kind](name, namespace)
        except client.ApiException as error:
            if error.status != 404:  # the hostile run's own record is removed by its cleanup
                raise


def fingerprint(obj) -> str:
    """What a run could change of a decoy: its identity (uid), its marks, its deletion (the kubelet's status
    updates move the resourceVersion of a pod, so that is not compared)."""
    meta = obj.metadata
    return json.dumps([meta.uid, meta.labels, meta.annotations, str(meta.deletion_timestamp)], sort_keys=True)


def touched_decoys(kubeconfig: Path, decoys: dict[str, str]) -> list[str]:
    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    read = {"pods": core.read_namespaced_pod, "secrets": core.read_namespaced_secret,
            "configmaps": core.read_namespaced_config_map}
    touched = []
    for key, version in decoys.items():
        kind, namespace, name = key.split("/")
        try:
            now = fingerprint(read[kind](name, namespace))
        except client.ApiException as error:
            now = f"gone ({error.status})"
        if now != version:
            touched.append(f"{key}: {now}")
    return touched


@pytest.fixture(scope="module")
def quiet_falco(scenarios):
    core = client.CoreV1Api(config.new_client_from_config(str(scenarios.kubeconfig)))
    namespace = "reliability-falco"
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_pod(namespace, {"metadata": {"name": "falco-quiet", "labels": {"app.kubernetes.io/name": "falco"}},
                                           "spec": {"containers": [{"name": "falco", "image": "falcosecurity/falco:0.39.2"}]}})
    yield namespace
    core.delete_namespace(namespace)


@pytest.fixture(scope="module")
def tally(request) -> Tally:
    """The suite's figures, printed as one line when the module's tests are done."""
    tally = Tally()
    yield tally
    summaries = getattr(request.config, "kirvis_summaries", [])
    request.config.kirvis_summaries = [*summaries, tally.line()]  # printed by conftest's terminal summary


def kirvis(workdir: Path, kubeconfig: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "kirvis"), *arguments], cwd=workdir, env=chaos_env(kubeconfig, **env),
                          capture_output=True, text=True, timeout=1800)


SUITES = [("team-privileged", 0.1), ("team-privileged", 0.3), ("team-restricted", 0.1), ("team-restricted", 0.3)]


@dataclass
class SuiteRun:
    namespace: str
    rate: float
    faults: RandomFaults
    done: subprocess.CompletedProcess
    workdir: Path
    elapsed_s: float


@pytest.fixture(scope="module")
def fault_suites(scenarios, alertmanager, quiet_falco, decoys, tmp_path_factory) -> dict[tuple[str, float], SuiteRun]:
    """The four suites run at once (each through its own proxy), so the suite costs the slowest one's time."""
    proxies, started, processes = {}, {}, {}
    for index, (namespace, rate) in enumerate(SUITES):
        guarded = namespace != "team-privileged"
        experiments = BLOCKING if guarded else SHIPPED  # detection experiments inject where nothing blocks
        work = tmp_path_factory.mktemp(f"faults-{namespace}-{int(rate * 100)}")
        faults = RandomFaults(rate, SEED + index)
        proxy = FaultProxy(scenarios.sandbox, faults).__enter__()
        kubeconfig = proxy.write_kubeconfig(work / "proxied.kubeconfig")
        detection_vars = [] if guarded else [
            "--var", "within:int=1", "--var", f"alertmanager_url={alertmanager.url}",
            "--var", f"falco_namespace={quiet_falco}", "--var", "receiver_port:int=0"]
        command = [str(BIN / "kirvis"), "run", *map(str, experiments), "--var", f"namespace={namespace}",
                   *detection_vars, "--journals", "journals"]
        env = chaos_env(kubeconfig, KIRVIS_RUN_ID=f"rel-{int(rate * 100)}-{namespace[5]}",
                        KIRVIS_REQUEST_TIMEOUT=REQUEST_TIMEOUT)
        proxies[(namespace, rate)] = (proxy, faults, work)
        started[(namespace, rate)] = time.monotonic()
        processes[(namespace, rate)] = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE, text=True)
    runs = {}
    try:
        for key, process in processes.items():
            stdout, stderr = process.communicate(timeout=1200)
            proxy, faults, work = proxies[key]
            runs[key] = SuiteRun(*key, faults, subprocess.CompletedProcess(process.args, process.returncode, stdout,
                                                                           stderr), work, time.monotonic() - started[key])
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
        for proxy, _, _ in proxies.values():
            proxy.__exit__(None, None, None)
    return runs


@pytest.mark.parametrize("namespace, rate", SUITES, ids=[f"{n}-{int(r * 100)}pct" for n, r in SUITES])
def test_faults_never_turn_into_a_pass_nor_a_weakness_and_leave_nothing(
        namespace, rate, fault_suites, scenarios, decoys, tally):
    suite = fault_suites[(namespace, rate)]
    guarded = namespace != "team-privileged"
    experiments = BLOCKING if guarded else SHIPPED
    done = suite.done
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert done.returncode in (0, 1, 2), done.stdout + done.stderr
    journals = {p.stem: json.loads(p.read_text()) for p in sorted((suite.workdir / "journals").glob("*.json"))}
    assert len(journals) == len(experiments), done.stdout + done.stderr

    admin = config.new_client_from_config(str(scenarios.kubeconfig))
    tally.runs += len(journals)
    tally.faulted_requests += suite.faults.faulted
    tally.requests += suite.faults.seen
    for name, journal in journals.items():
        section = journal["chaoskirvis"]
        verdict, run_id = section["verdict"], section["run_id"]
        tally.verdicts[verdict["result"]] = tally.verdicts.get(verdict["result"], 0) + 1
        tally.slowest_s = max(tally.slowest_s, float(journal.get("duration") or 0.0))
        if not guarded and verdict["result"] == "held":
            tally.held_without_control.append(f"{name} ({run_id}): {verdict['reason']}")
        if guarded and verdict["result"] == "weakness":
            tally.false_verdicts_on_faults.append(f"{name} ({run_id}): {verdict['reason']}")
        left = objects_of_run(admin, run_id)
        if left:
            tally.left_after_restore.extend(f"{run_id}: {o}" for o in left)
            assert verdict["result"] == "error", f"{name} left {left} but its verdict is {verdict}"
            assert f"kirvis cleanup --run-id {run_id}" in verdict["reason"], verdict
            kirvis(suite.workdir, scenarios.kubeconfig, "cleanup", "--run-id", run_id)
            tally.left_after_cleanup.extend(f"{run_id}: {o}" for o in objects_of_run(admin, run_id))
    tally.decoys_touched = touched_decoys(scenarios.kubeconfig, decoys)

    assert tally.held_without_control == [], tally.held_without_control
    assert tally.false_verdicts_on_faults == [], tally.false_verdicts_on_faults
    # A restore can itself meet more faults in a row than its retries outlast (0.3^5 per request at 30 %):
    # then the run is an error naming `kirvis cleanup --run-id` (asserted above), and that command clears it.
    assert len(tally.left_after_restore) <= max(1, tally.runs // 50), tally.left_after_restore
    assert tally.left_after_cleanup == [], tally.left_after_cleanup
    assert tally.decoys_touched == [], tally.decoys_touched
    assert tally.slowest_s <= RUN_LIMIT_S, tally.slowest_s


KILLS = [(signal.SIGKILL, 0.8), (signal.SIGKILL, 1.6), (signal.SIGKILL, 2.4), (signal.SIGINT, 1.0),
         (signal.SIGINT, 1.8), (signal.SIGINT, 2.6), (signal.SIGTERM, 1.2), (signal.SIGTERM, 2.0),
         (signal.SIGTERM, 2.8), (signal.SIGKILL, 3.2), (signal.SIGINT, 3.4), (signal.SIGTERM, 3.6)]


@pytest.mark.parametrize("sig, after", KILLS, ids=[f"{s.name}-{a}s" for s, a in KILLS])
def test_a_killed_run_is_fully_recovered(sig, after, scenarios, alertmanager, decoys, tally, tmp_path):
    """A detection experiment (a pod is created, then the probe waits) killed at a random point."""
    run_id = f"kill-{sig.name[3:].lower()}-{str(after).replace('.', '')}"
    experiment = EXPERIMENTS / "privileged-pod-alerted-in-alertmanager.yaml"
    command = [str(BIN / "chaos"), "--log-file", str(tmp_path / "chaos.log"), "run", str(experiment),
               "--journal-path", str(tmp_path / "journal.json"), "--var", "namespace=team-privileged",
               "--var", "within=6", "--var", f"alertmanager_url={alertmanager.url}"]
    process = subprocess.Popen(command, cwd=tmp_path, env=chaos_env(scenarios.kubeconfig, KIRVIS_RUN_ID=run_id),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(after + random.Random(SEED + KILLS.index((sig, after))).uniform(0, 0.3))
    process.send_signal(sig)
    try:
        process.wait(timeout=RUN_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"chaos run did not end within {RUN_LIMIT_S} s of {sig.name}")
    admin = config.new_client_from_config(str(scenarios.kubeconfig))
    tally.runs += 1
    left = objects_of_run(admin, run_id)
    if left and sig != signal.SIGKILL:
        tally.left_after_restore.extend(f"{run_id}: {o}" for o in left)
    cleanup = kirvis(tmp_path, scenarios.kubeconfig, "cleanup", "--run-id", run_id)
    remaining = objects_of_run(admin, run_id)
    tally.left_after_cleanup.extend(f"{run_id}: {o}" for o in remaining)
    tally.decoys_touched = touched_decoys(scenarios.kubeconfig, decoys)

    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert sig == signal.SIGKILL or left == [], f"{sig.name}: the run's own restore left {left}"
    assert remaining == []
    assert tally.decoys_touched == [], tally.decoys_touched


def test_hostile_record_cleanup_touches_no_decoy(scenarios, decoys, tally, tmp_path):
    """`kirvis cleanup --run-id` of the hostile record's run: every entry is refused, every decoy stays."""
    done = kirvis(tmp_path, scenarios.kubeconfig, "cleanup", "--run-id", "hostile01")
    assert "Traceback" not in done.stdout + done.stderr
    tally.decoys_touched = touched_decoys(scenarios.kubeconfig,
                                          {k: v for k, v in decoys.items() if "kirvis-ledger-hostile01" not in k})
    assert tally.decoys_touched == [], tally.decoys_touched
