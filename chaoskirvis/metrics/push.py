"""Push each cluster's verdicts to a Pushgateway, one group per cluster (grouping key job + cluster).

The group is replaced as a whole (HTTP PUT, `push_to_gateway`), so an experiment dropped from the suite
leaves no stale series. `kirvis_suite_last_success_timestamp_seconds` is the one value a push must not
lose: a run that did not pass carries the group's previous value over (read back through the
Pushgateway's `/api/v1/metrics` first), so "no successful run for N hours" stays alertable.

The pushed series carry no `job` or `cluster` label of their own: the Pushgateway adds the grouping
key's, and Prometheus keeps them when it scrapes the gateway with ``honor_labels: true``.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from chaoskirvis.evidence.verdict import RESULTS
from chaoskirvis.metrics.series import ExperimentSeries, cluster_of, experiment_series
from chaoskirvis.report.model import ExperimentView

__all__ = ["PushError", "Pushed", "DEFAULT_JOB", "push_views", "registry_for"]

DEFAULT_JOB = "kirvis"
LAST_SUCCESS = "kirvis_suite_last_success_timestamp_seconds"
_TIMEOUT = 10.0


class PushError(Exception):
    """The metrics could not be pushed (unreachable or refusing gateway, no cluster name)."""


@dataclass(frozen=True)
class Pushed:
    cluster: str
    experiments: int
    success: bool


def push_views(
    views: Iterable[ExperimentView], gateway: str, cluster: str | None = None, job: str = DEFAULT_JOB,
) -> list[Pushed]:
    """Push the views' series, grouped by `cluster`, else by each journal's kubeconfig context (a journal that
    records none, such as an experiment that could not be loaded, belongs to the one context the others name)."""
    views = list(views)
    contexts = {cluster_of(view) for view in views} - {None}
    groups: dict[str, list[ExperimentSeries]] = {}
    for view in views:
        name = cluster or cluster_of(view) or (next(iter(contexts)) if len(contexts) == 1 else None)
        if not name:
            raise PushError(f"{view.path} records no kubeconfig context (an in-cluster run?) and the other journals "
                            f"name {len(contexts) or 'no'} context(s): name the cluster with --cluster-name")
        series = experiment_series(view)
        if any(s.experiment == series.experiment for s in groups.get(name, [])):
            raise PushError(f"two journals of experiment {series.experiment!r} for cluster {name!r} "
                            f"({view.path} is the second): push one run at a time")
        groups.setdefault(name, []).append(series)
    pushed = []
    for name, series in groups.items():
        success = all(s.as_expected for s in series)
        last_run = max((s.last_run for s in series if s.last_run is not None), default=time.time())
        previous = _previous_success(gateway, job, name)
        last_success = max(last_run, previous or 0.0) if success else previous
        try:
            push_to_gateway(gateway, job=job, registry=registry_for(series, last_run, last_success),
                            grouping_key={"cluster": name}, timeout=_TIMEOUT)
        except OSError as exc:
            raise PushError(f"cannot push the metrics of cluster {name!r} to the Pushgateway at {gateway}: "
                            f"{_reason(exc)}") from None
        pushed.append(Pushed(name, len(series), success))
    return pushed


def registry_for(
    series: list[ExperimentSeries], last_run: float, last_success: float | None,
) -> CollectorRegistry:
    """One cluster's metrics (names and labels: docs/metrics.md)."""
    registry = CollectorRegistry()
    check_labels = ["experiment", "technique", "namespace"]
    verdict = Gauge("kirvis_experiment_verdict", "1 for the verdict of the experiment's checks of a technique in "
                    "a namespace (held, weakness, error), 0 for the other two", [*check_labels, "verdict"],
                    registry=registry)
    detect = Gauge("kirvis_experiment_time_to_detect_seconds", "Time from the fault's introduction to the alert "
                   "naming it (the slowest, where a detection check recorded one)", check_labels, registry=registry)
    duration = Gauge("kirvis_experiment_duration_seconds", "How long the experiment's run took", ["experiment"],
                     registry=registry)
    ended = Gauge("kirvis_experiment_last_run_timestamp_seconds", "Unix time the experiment's last run ended",
                  ["experiment"], registry=registry)
    passed = Gauge("kirvis_experiment_as_expected", "1 when the experiment gave the verdict it was expected to give "
                   "(held, or a negative control's weakness)", ["experiment"], registry=registry)
    for experiment in series:
        for check in experiment.checks:
            for word in RESULTS:
                verdict.labels(experiment.experiment, check.technique, check.namespace, word).set(
                    1 if check.verdict == word else 0)
            if check.time_to_detect is not None:
                detect.labels(experiment.experiment, check.technique, check.namespace).set(check.time_to_detect)
        if experiment.duration is not None:
            duration.labels(experiment.experiment).set(experiment.duration)
        if experiment.last_run is not None:
            ended.labels(experiment.experiment).set(experiment.last_run)
        passed.labels(experiment.experiment).set(1 if experiment.as_expected else 0)
    Gauge("kirvis_suite_last_run_timestamp_seconds", "Unix time the suite's last run ended",
          registry=registry).set(last_run)
    if last_success is not None:
        Gauge(LAST_SUCCESS, "Unix time a run of the suite last ended with every verdict as expected",
              registry=registry).set(last_success)
    return registry


def _previous_success(gateway: str, job: str, cluster: str) -> float | None:
    """The group's last-success time the gateway holds now, or None (no such group or value)."""
    url = f"{gateway.rstrip('/')}/api/v1/metrics"
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as answer:
            groups = json.load(answer).get("data") or []
    except (OSError, ValueError, AttributeError) as exc:
        raise PushError(f"cannot read the Pushgateway at {gateway} ({url}): {_reason(exc)}") from None
    for group in groups:
        if isinstance(group, dict) and group.get("labels") == {"job": job, "cluster": cluster}:
            for metric in (group.get(LAST_SUCCESS) or {}).get("metrics") or []:
                try:
                    return float(metric["value"])
                except (KeyError, TypeError, ValueError):
                    return None
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc)
