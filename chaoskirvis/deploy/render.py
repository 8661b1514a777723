"""The manifests that run the suite in the cluster: Namespace, ServiceAccount, the RBAC the experiments need (a
Role and RoleBinding in each target namespace, a ClusterRole only for cluster-scoped objects, by name), the
experiments in a ConfigMap, and a CronJob whose pod runs `kirvis cleanup --expired` (init containers, one per
set of namespaces sweeping the same kinds) then `kirvis run`. With `--keep-journals-in NS`, a Role in NS for the
kept journals' ConfigMaps."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaoskirvis import __version__
from chaoskirvis.deploy.permissions import (DeployError, Grant, cleanup_grants, experiment_grants, keep_grants, merge,
                                            swept_kinds)
from chaoskirvis.ledger.kinds import qualified
from chaoskirvis.ledger.refs import CONFIG_MAP, Kind

__all__ = ["Options", "Experiment", "load_experiments", "render", "to_yaml", "DEFAULT_IMAGE", "NAME"]

NAME = "kirvis"  # the ServiceAccount, ConfigMap, CronJob, and RBAC objects
DEFAULT_IMAGE = f"chaostoolkit-kirvis:{__version__}"  # built from deploy/Dockerfile, pushed where the cluster pulls
EXPERIMENTS_DIR = "/etc/kirvis/experiments"
WORK_DIR = "/var/lib/kirvis"
_LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "suite",
           "app.kubernetes.io/managed-by": "kirvis-deploy"}
_RBAC = "rbac.authorization.k8s.io"
_CONFIG_MAP_LIMIT = 1024 * 1024  # the API server refuses a larger ConfigMap
_KEY = re.compile(r"[-._a-zA-Z0-9]+")


@dataclass(frozen=True)
class Options:
    namespace: str = "kirvis-system"
    schedule: str = "0 3 * * *"
    time_zone: str = "Etc/UTC"
    image: str = DEFAULT_IMAGE
    starting_deadline_seconds: int = 600  # a run missed by more (the controller was down) is skipped, not piled up
    active_deadline_seconds: int = 3600  # the whole job, cleanup included
    pushgateway: str | None = None  # kirvis run --pushgateway, with --cluster-name (an in-pod run has no context)
    cluster_name: str | None = None
    keep_journals_in: str | None = None  # kirvis run --keep-journals-in, and --keep
    keep: int | None = None


@dataclass(frozen=True)
class Experiment:
    key: str  # its file name in the ConfigMap and in the pod
    text: str
    document: dict[str, Any]


def load_experiments(paths: list[Path]) -> list[Experiment]:
    """The experiment files named, or found (*.yaml, *.yml, *.json, recursively) in folders named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise DeployError(f"no such experiment file or folder: {path}")
    if not files:
        raise DeployError(f"no experiment file in {', '.join(map(str, paths))}")
    experiments: dict[str, Experiment] = {}
    for file in files:
        text = file.read_text()
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DeployError(f"{file}: not YAML or JSON: {exc}") from None
        if not isinstance(document, dict) or "method" not in document:
            raise DeployError(f"{file}: not a Chaos Toolkit experiment (no method)")
        key = file.name
        if not _KEY.fullmatch(key):
            raise DeployError(f"{file}: a ConfigMap key is letters, digits, '-', '_' and '.': rename the file")
        if key in experiments:
            raise DeployError(f"two experiments named {key}: the ConfigMap holds them by file name; rename one")
        experiments[key] = Experiment(key, text, document)
    return list(experiments.values())


def _metadata(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {}),
                                "labels": dict(_LABELS)}
    return {**metadata, **extra}


def _rules(merged: dict, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
    rules, reasons = [], []
    for (where, group, resource, names), (verbs, why) in merged.items():
        if where == namespace:
            rule = {"apiGroups": [group], "resources": [resource], "resourceNames": list(names), "verbs": list(verbs)}
            rules.append(rule if names else {k: v for k, v in rule.items() if k != "resourceNames"})
            reasons.append(f"{resource}{'.' + group if group else ''}{' ' + ','.join(names) if names else ''} "
                           f"({', '.join(verbs)}): {'; '.join(why)}")
    return rules, "\n".join(reasons)


def rbac(grants: list[Grant], options: Options) -> list[dict[str, Any]]:
    """A Role and RoleBinding in each namespace the grants name; a ClusterRole and ClusterRoleBinding for the
    cluster-scoped objects only (each by name)."""
    merged = merge(grants)
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": options.namespace}]
    name = f"{NAME}-runner-{options.namespace}"  # per deployment: two may target the same namespaces
    objects = []
    for namespace in sorted({where for where, *_ in merged if where is not None}):
        rules, why = _rules(merged, namespace)
        objects += [
            {"apiVersion": f"{_RBAC}/v1", "kind": "Role",
             "metadata": _metadata(name, namespace, annotations={"kirvis.io/why": why}), "rules": rules},
            {"apiVersion": f"{_RBAC}/v1", "kind": "RoleBinding", "metadata": _metadata(name, namespace),
             "roleRef": {"apiGroup": _RBAC, "kind": "Role", "name": name}, "subjects": subject},
        ]
    rules, why = _rules(merged, None)
    if rules:
        objects += [
            {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole",
             "metadata": _metadata(name, annotations={"kirvis.io/why": why}), "rules": rules},
            {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": _metadata(name),
             "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": name}, "subjects": subject},
        ]
    return objects


def _container(name: str, args: list[str], options: Options) -> dict[str, Any]:
    return {
        "name": name, "image": options.image, "imagePullPolicy": "IfNotPresent", "command": ["kirvis"], "args": args,
        "env": [{"name": "CHAOSTOOLKIT_IN_POD", "value": "true"}, {"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "experiments", "mountPath": EXPERIMENTS_DIR, "readOnly": True},
                         {"name": "work", "mountPath": WORK_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def job_commands(experiments: list[Experiment], sweeps: dict[str, tuple[Kind, ...]],
                 options: Options) -> tuple[list[list[str]], list[str]]:
    """The arguments of `kirvis` in each init container (a cleanup of the namespaces that sweep the same kinds;
    `--kind configmaps` where the run stores nothing: the records only) and in the container (run)."""
    groups: dict[tuple[Kind, ...], list[str]] = {}
    for namespace, kinds in sweeps.items():
        groups.setdefault(kinds, []).append(namespace)
    cleanups = [["cleanup", "--expired", *(arg for namespace in namespaces for arg in ("-n", namespace)),
                 *(arg for kind in kinds or (CONFIG_MAP,) for arg in ("--kind", qualified(kind)))]
                for kinds, namespaces in sorted(groups.items(), key=lambda group: group[1])]
    run = ["run", *(f"{EXPERIMENTS_DIR}/{e.key}" for e in experiments), "--journals", f"{WORK_DIR}/journals"]
    if options.pushgateway:
        run += ["--pushgateway", options.pushgateway, "--cluster-name", str(options.cluster_name)]
    if options.keep_journals_in:
        run += ["--keep-journals-in", options.keep_journals_in,
                *(("--keep", str(options.keep)) if options.keep is not None else ())]
    return cleanups, run


def cron_job(experiments: list[Experiment], sweeps: dict[str, tuple[Kind, ...]], options: Options) -> dict[str, Any]:
    cleanups, run = job_commands(experiments, sweeps, options)
    names = ["cleanup-expired"] if len(cleanups) == 1 else [f"cleanup-expired-{i}" for i in range(1, len(cleanups) + 1)]
    pod = {
        "serviceAccountName": NAME, "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        **({"initContainers": [_container(name, args, options) for name, args in zip(names, cleanups)]}
           if cleanups else {}),  # a selection that only reads (posture) keeps no record to sweep
        "containers": [_container("run", run, options)],
        "volumes": [{"name": "experiments", "configMap": {"name": f"{NAME}-experiments"}},
                    {"name": "work", "emptyDir": {"sizeLimit": "256Mi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    return {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": _metadata(NAME, options.namespace),
        "spec": {
            "schedule": options.schedule, "timeZone": options.time_zone, "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": options.starting_deadline_seconds,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": dict(_LABELS)}, "spec": {
                "backoffLimit": 0, "activeDeadlineSeconds": options.active_deadline_seconds,
                "template": {"metadata": {"labels": dict(_LABELS)}, "spec": pod}}},
        },
    }


def render(experiments: list[Experiment], options: Options) -> list[dict[str, Any]]:
    """Every manifest, in the order they are applied; `DeployError` for what cannot be deployed."""
    grants = [grant for e in experiments for grant in experiment_grants(e.key, e.document)]
    if not grants:
        raise DeployError("the experiments send no request to the cluster: there is nothing to run or grant")
    sweeps = swept_kinds(grants)
    grants += cleanup_grants(sweeps)
    if options.keep_journals_in:
        grants += keep_grants(options.keep_journals_in)
    data = {e.key: e.text for e in experiments}
    if sum(len(text.encode()) for text in data.values()) > _CONFIG_MAP_LIMIT:
        raise DeployError("the experiments exceed a ConfigMap's 1 MiB: deploy fewer per suite")
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": _metadata(options.namespace)}
    namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "restricted"
    return [
        namespace,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(NAME, options.namespace)},
        *rbac(grants, options),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(f"{NAME}-experiments", options.namespace),
         "data": data},
        cron_job(experiments, sweeps, options),
    ]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the experiment files, the reasons) as literal blocks, readable as written."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
