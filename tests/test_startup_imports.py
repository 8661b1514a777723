"""What a blocked experiment's `chaos run` imports (issue 11, start-up): only the modules it uses.

Deterministic, unlike the time `bench/startup.py` measures: the real `chaos` CLI runs the experiment against
the sandbox in a process that lists, at exit, the chaoskirvis modules it imported. A workload technique needs
the workload family of the catalog and no other; guardrail changes (`ledger.changes`), node files and node
techniques are imported only by a run that has them, and the `kubernetes` package only for what only it does
(an exec plugin, exec into a pod).
"""
from __future__ import annotations

import json
import subprocess
import sys

from chaosrun import EXPERIMENTS, chaos_env

# Runs the chaos CLI in this process (as the `chaos` script does) and writes sys.modules at exit.
_LISTING_CHAOS = """
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: json.dump(sorted(sys.modules), open(out, "w")))
sys.argv[0] = "chaos"
from chaostoolkit.__main__ import cli
cli()
"""
NOT_FOR_A_BLOCKED_POD = ["chaoskirvis.ledger.changes", "chaoskirvis.ledger.node_files", "chaoskirvis.nodes",
                         "chaoskirvis.techniques.exposure", "chaoskirvis.techniques.rbac",
                         "chaoskirvis.techniques.identity", "chaoskirvis.techniques.runtime",
                         "chaoskirvis.techniques.guardrails", "chaoskirvis.techniques.nodes", "kubernetes"]


def test_a_blocked_pod_run_imports_only_what_it_uses(sandbox, make_namespace, tmp_path):
    namespace = make_namespace(enforce="baseline")
    listing = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _LISTING_CHAOS, str(listing), "--log-file", str(tmp_path / "chaos.log"), "run",
         str(EXPERIMENTS / "privileged-pod-denied.yaml"), "--journal-path", str(tmp_path / "journal.json"),
         "--var", f"namespace={namespace}"],
        env=chaos_env(sandbox.kubeconfig), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["chaoskirvis"]["verdict"]["label"] == "held"
    imported = set(json.loads(listing.read_text()))
    assert "chaoskirvis.techniques.workload" in imported and "chaoskirvis.ledger.restore" in imported
    unused = [m for m in imported if any(m == n or m.startswith(f"{n}.") for n in NOT_FOR_A_BLOCKED_POD)]
    assert sorted(unused) == []


def _in_fresh_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_lookup_imports_the_families_up_to_the_one_holding_the_id():
    done = _in_fresh_python(
        "import json, sys\n"
        "from chaoskirvis.techniques import lookup\n"
        "def families(): return sorted(m for m in sys.modules if m.startswith('chaoskirvis.techniques.'))\n"
        "seen = [lookup('privileged').family, families(), lookup('nodeport-service').family, families()]\n"
        "print(json.dumps(seen))\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        "workload", ["chaoskirvis.techniques.unit", "chaoskirvis.techniques.workload"],
        "exposure", ["chaoskirvis.techniques.exposure", "chaoskirvis.techniques.unit", "chaoskirvis.techniques.workload"],
    ]


def test_the_catalog_is_every_family_in_order_and_lookup_finds_the_same_units():
    import importlib

    from chaoskirvis.techniques import CATALOG, FAMILIES, lookup

    in_order = [unit for module, name in FAMILIES
                for unit in getattr(importlib.import_module(f"chaoskirvis.techniques.{module}"), name)]
    assert list(CATALOG.values()) == in_order
    assert all(lookup(technique_id) is unit for technique_id, unit in CATALOG.items())


def test_an_id_two_families_define_is_refused():
    done = _in_fresh_python(
        "import chaoskirvis.techniques as t\n"
        "t.FAMILIES = (*t.FAMILIES, ('workload', 'WORKLOAD_TECHNIQUES'))\n"
        "t.CATALOG\n")
    assert done.returncode != 0
    assert "ValueError: technique catalog: " in done.stderr and "privileged" in done.stderr
    assert "defined again by the workload family" in done.stderr
