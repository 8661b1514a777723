"""One API client per process and cluster: many activities, one connection pool, one TLS handshake.

What kubectl and client-go do (one transport per rest config, cached by its TLS and auth settings): the
kubeconfig is read once and the connection is reused. An edited kubeconfig is a different configuration,
read again, never the stale one. And the startup: the activities a blocked experiment runs do not import
the `kubernetes` package (0.2 to 0.9 s of pydantic models) when the kubeconfig needs no exec plugin.
"""
from __future__ import annotations

import subprocess
import sys
import threading

import yaml

from chaoskirvis.client import kube_api
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.probes import injections_blocked
from chaoskirvis.workload.actions import inject_risky_pod
from chaoskirvis.workload.probes import risky_pod_admission


def ours(requests, since: int) -> list:
    return [r for r in requests[since:] if (r.user_agent or "").startswith("chaoskirvis/")]


def test_many_activities_share_one_client_and_one_tls_connection(sandbox, make_namespace, run, tmp_path):
    namespace = make_namespace(enforce="baseline")
    kubeconfig = tmp_path / "kubeconfig"  # a file of this test's own: no other test's client shares it
    kubeconfig.write_text(sandbox.kubeconfig.read_text())
    arguments = {**run, "secrets": {"KUBECONFIG": str(kubeconfig)}}
    seen = len(sandbox.sandbox.requests)

    for technique in ("privileged", "host-pid", "host-ipc", "host-network"):
        inject_risky_pod(namespace, [technique], **arguments)
    risky_pod_admission(namespace, ["host-path"], mode="dry-run", **arguments)
    assert injections_blocked(**arguments) is True
    restore_run(**arguments)

    client = kube_api(secrets=arguments["secrets"]).api_client
    assert kube_api(run["configuration"], arguments["secrets"]).api_client is client
    sent = ours(sandbox.sandbox.requests, seen)
    assert len(sent) >= 7  # seven activities, each of one request at least
    assert client.connections_opened() == 1  # one TLS handshake for all of them


def test_an_edited_kubeconfig_is_read_again(sandbox, tmp_path):
    # Two versions of one file that differ only in the user's token: the second must be the one sent.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(sandbox.kubeconfig.read_text())
    secrets = {"KUBECONFIG": str(kubeconfig)}
    first = kube_api(secrets=secrets)
    first.get("/api/v1/namespaces/default")

    config = yaml.safe_load(kubeconfig.read_text())
    config["users"][0]["user"]["token"] = sandbox.sandbox.viewer_token
    kubeconfig.write_text(yaml.safe_dump(config))
    seen = len(sandbox.sandbox.requests)
    second = kube_api(secrets=secrets)
    second.get("/api/v1/namespaces/default")

    assert second.api_client is not first.api_client
    assert [r.user for r in sandbox.sandbox.requests[seen:]] == ["sandbox-viewer"]


def test_threads_share_the_client_and_its_pool(sandbox, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(sandbox.kubeconfig.read_text())
    secrets = {"KUBECONFIG": str(kubeconfig)}
    clients, failures = [], []

    def activity() -> None:
        try:
            api = kube_api(secrets=secrets)
            for _ in range(5):
                api.get("/api/v1/namespaces/default")
            clients.append(api.api_client)
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's error
            failures.append(exc)

    threads = [threading.Thread(target=activity) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len({id(c) for c in clients}) == 1
    assert 1 <= clients[0].connections_opened() <= 8  # at most one per concurrent thread, then reused


def test_a_blocked_experiments_activities_do_not_import_the_kubernetes_package(sandbox, make_namespace, tmp_path):
    # nor cryptography (~15 ms of every `chaos run`'s start-up): only a CSR technique and signing need it
    namespace = make_namespace(enforce="baseline")
    code = (
        "import sys\n"
        "import chaoskirvis.controls.evidence\n"
        "from chaoskirvis.evidence.cluster import cluster_facts\n"
        "from chaoskirvis.ledger.actions import restore_run\n"
        "from chaoskirvis.ledger.probes import injections_blocked\n"
        "from chaoskirvis.workload.actions import inject_risky_pod\n"
        f"outcome = inject_risky_pod({namespace!r}, ['privileged'])\n"
        "assert outcome['outcome'] == 'blocked', outcome\n"
        "assert injections_blocked() is True\n"
        "restore_run()\n"
        "facts = cluster_facts(None, None)\n"
        "assert facts.identity['username'] == 'sandbox-admin', facts.identity\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'cryptography')))\n"
    )
    env = {"KUBECONFIG": str(sandbox.kubeconfig), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"

