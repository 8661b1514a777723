"""The fleet matrix: one row per cluster, one column per experiment, each cell that run's verdict.

A journal's cluster is what the evidence control recorded (``chaoskirvis.cluster``): the kubeconfig
context's name, else the API server's URL; where one context name stands for two servers (two
kubeconfigs that both call their cluster ``default``), the name carries the server. An experiment is
its file's name (``chaoskirvis.experiment.source``), else the journal's, so the same experiment run
in two clusters is one column. Where several journals of one cluster run the same experiment, the cell
is the latest run's. A journal that records no cluster is shown in an "unknown cluster" row; the matrix
exists only where the journals name at least two clusters, so one cluster's report is unchanged.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from chaoskirvis.report.model import ExperimentView

__all__ = ["FleetCell", "Fleet", "fleet_of", "cluster_of", "experiment_of", "UNKNOWN_CLUSTER"]

UNKNOWN_CLUSTER = "unknown cluster"


@dataclass(frozen=True)
class FleetCell:
    """One experiment's verdict in one cluster: `result` held, weakness or error; `label` as `Verdict.label`."""

    result: str
    label: str
    reason: str
    as_expected: bool
    journal: str | None = None
    run_id: str | None = None

    @classmethod
    def of_view(cls, view: ExperimentView) -> FleetCell:
        verdict = view.verdict
        return cls(verdict.result, verdict.label, verdict.reason, verdict.as_expected, str(view.path), view.run_id)

    @classmethod
    def error(cls, reason: str, journal: str | None = None) -> FleetCell:
        """A cell whose run left no usable journal: an error, never a pass."""
        return cls("error", "error", reason, False, journal)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.result, "label": self.label, "as_expected": self.as_expected, "reason": self.reason,
                "journal": self.journal, "run_id": self.run_id}


@dataclass
class Fleet:
    """Clusters (rows) and experiments (columns) in first-seen order; `cells[cluster][experiment]`."""

    clusters: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)  # experiment -> its title
    servers: dict[str, str | None] = field(default_factory=dict)  # cluster -> its API server, where recorded
    cells: dict[str, dict[str, FleetCell]] = field(default_factory=dict)

    def put(self, cluster: str, experiment: str, cell: FleetCell, title: str | None = None) -> None:
        if cluster not in self.clusters:
            self.clusters.append(cluster)
        if experiment not in self.experiments:
            self.experiments.append(experiment)
        if title and experiment not in self.titles:
            self.titles[experiment] = title
        self.cells.setdefault(cluster, {})[experiment] = cell

    def cell(self, cluster: str, experiment: str) -> FleetCell | None:
        """The cell, or None where the journals hold no run of that experiment in that cluster."""
        return self.cells.get(cluster, {}).get(experiment)

    def counts(self, cluster: str) -> dict[str, int]:
        """How many cells of each label in a cluster's row."""
        counts: dict[str, int] = {}
        for cell in self.cells.get(cluster, {}).values():
            counts[cell.label] = counts.get(cell.label, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: clusters, experiments, and matrix[cluster][experiment] (null: not in the journals)."""
        return {
            "clusters": [{"name": c, "server": self.servers.get(c)} for c in self.clusters],
            "experiments": [{"name": e, "title": self.titles.get(e, e)} for e in self.experiments],
            "matrix": {
                c: {e: (cell.as_dict() if (cell := self.cell(c, e)) else None) for e in self.experiments}
                for c in self.clusters
            },
        }


def cluster_of(view: ExperimentView) -> tuple[str | None, str | None]:
    """The (context, server) the journal's evidence recorded, each None when absent."""
    cluster = view.section.get("cluster")
    if not isinstance(cluster, dict):
        return None, None
    context, server = cluster.get("context"), cluster.get("server")
    return (context if isinstance(context, str) and context else None,
            server if isinstance(server, str) and server else None)


def experiment_of(view: ExperimentView) -> str:
    """The experiment's file name without suffix, from its recorded source, else the journal's name."""
    recorded = view.section.get("experiment")
    source = recorded.get("source") if isinstance(recorded, dict) else None
    if isinstance(source, str) and source.strip():
        return PurePath(source.replace("\\", "/")).stem
    return view.path.stem


def fleet_of(views: list[ExperimentView]) -> Fleet | None:
    """The matrix over journals of several clusters, or None when they name fewer than two."""
    recorded = [cluster_of(view) for view in views]
    servers_of: dict[str, set[str | None]] = {}
    for context, server in recorded:
        if context:
            servers_of.setdefault(context, set()).add(server)

    def name(context: str | None, server: str | None) -> str | None:
        if context:
            return f"{context} ({server or 'no server recorded'})" if len(servers_of[context]) > 1 else context
        return server

    names = [name(*pair) for pair in recorded]
    if len({n for n in names if n}) < 2:
        return None
    fleet = Fleet()
    latest: dict[tuple[str, str], dt.datetime] = {}
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    for view, cluster, (_, server) in zip(views, names, recorded):
        cluster = cluster or UNKNOWN_CLUSTER
        experiment = experiment_of(view)
        started = view.started or floor
        if (cluster, experiment) in latest and latest[(cluster, experiment)] > started:
            continue
        latest[(cluster, experiment)] = started
        fleet.servers.setdefault(cluster, server)
        fleet.put(cluster, experiment, FleetCell.of_view(view), view.title)
    return fleet
