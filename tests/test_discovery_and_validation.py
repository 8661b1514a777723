"""`chaos discover` and `chaos validate` see the extension as users do."""
from __future__ import annotations

import importlib
import json
import subprocess

import yaml

from chaoskirvis import activity_modules
from chaosrun import BIN, EXPERIMENTS, chaos_env


def test_chaos_discover_lists_every_activity_with_its_type(tmp_path):
    done = subprocess.run(
        [str(BIN / "chaos"), "discover", "--no-install", "--discovery-path", str(tmp_path / "d.json"),
         "chaostoolkit-kirvis"], cwd=tmp_path, env=chaos_env(None), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = {a["name"]: a for a in json.loads((tmp_path / "d.json").read_text())["activities"]}
    expected = {
        name: kind for module, kind in activity_modules().items() for name in importlib.import_module(module).__all__
    }
    assert {name: activity["type"] for name, activity in found.items()} == expected
    assert len(expected) >= 20
    assert all(found[name]["doc"] for name in expected)
    assert found["inject_risky_pod"]["doc"].startswith("Try to introduce a pod")
    args = {a["name"]: a for a in found["inject_risky_pod"]["arguments"]}
    assert "default" not in args["namespace"] and args["image"]["default"].startswith("registry.k8s.io/pause")


def validate(tmp_path, experiment: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    return subprocess.run([str(BIN / "chaos"), "validate", str(path)], cwd=tmp_path, env=chaos_env(None),
                          capture_output=True, text=True, timeout=60)


def test_shipped_experiments_validate(tmp_path):
    for path in EXPERIMENTS.glob("*.yaml"):
        done = validate(tmp_path, yaml.safe_load(path.read_text()))
        assert done.returncode == 0, f"{path.name}: {done.stderr}"


def test_misspelled_argument_is_caught_by_validate(tmp_path):
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    arguments = experiment["method"][0]["provider"]["arguments"]
    arguments["imgae"] = "busybox"
    done = validate(tmp_path, experiment)
    assert done.returncode == 1
    assert "argument 'imgae' is not part of the function signature" in done.stderr


def test_misspelled_required_argument_is_caught_by_validate(tmp_path):
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    arguments = experiment["method"][0]["provider"]["arguments"]
    arguments["namespce"] = arguments.pop("namespace")
    done = validate(tmp_path, experiment)
    assert done.returncode == 1
    assert "required argument 'namespace' is missing" in done.stderr


def test_wrong_type_is_caught_by_validate(tmp_path):
    experiment = yaml.safe_load((EXPERIMENTS / "privileged-pod-denied.yaml").read_text())
    experiment["method"][0]["provider"]["arguments"]["allow_protected_namespaces"] = "yes please"
    done = validate(tmp_path, experiment)
    assert done.returncode == 1
    assert "allow_protected_namespaces" in done.stderr
