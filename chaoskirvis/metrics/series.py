"""What the exporter says about one journal, read through the report's view of it (no Prometheus here).

Per experiment, technique and namespace: a verdict (held, weakness, error) and, where a detection check
recorded it, the time to detect. Per experiment: its verdict's duration and end time. The verdict of a
(technique, namespace) is the worst its own checks mean for the run (`ExperimentView.check_label`), so an
experiment trying several techniques shows which one got through; a run that is an error as a whole
(interrupted, not restored, not run) is an error for every technique it names, since none of its
answers can be trusted. A negative control's expected weakness is a weakness: the alert on a control
that stopped holding looks for held turning into weakness, which a negative control never is.
"""
from __future__ import annotations

from dataclasses import dataclass

from chaoskirvis.evidence.verdict import RESULTS
from chaoskirvis.report.model import ExperimentView

__all__ = ["CheckSeries", "ExperimentSeries", "experiment_series", "cluster_of"]

# check_label -> the verdict word a series carries ("introduced" and "tagged" judge nothing by themselves).
_VERDICT_OF_LABEL = {"weakness": "weakness", "weakness (expected)": "weakness", "error": "error", "held": "held"}


@dataclass(frozen=True)
class CheckSeries:
    """One experiment's result for one technique in one namespace ('' where the checks named none)."""

    technique: str
    namespace: str
    verdict: str
    time_to_detect: float | None = None  # seconds, the slowest detection of it, where one was recorded


@dataclass(frozen=True)
class ExperimentSeries:
    experiment: str
    verdict: str
    as_expected: bool
    duration: float | None  # seconds, from the journal's start and end
    last_run: float | None  # Unix time the run ended (else started)
    checks: tuple[CheckSeries, ...]


def cluster_of(view: ExperimentView) -> str | None:
    """The kubeconfig context the journal's evidence section recorded, if any."""
    cluster = view.section.get("cluster")
    context = cluster.get("context") if isinstance(cluster, dict) else None
    return context if isinstance(context, str) and context else None


def experiment_series(view: ExperimentView) -> ExperimentSeries:
    """The exporter's values for one journal (see the module's docstring)."""
    run = view.verdict.result
    labels: dict[tuple[str, str], list[str]] = {}
    detect: dict[tuple[str, str], float] = {}
    for outcome in view.outcomes:
        namespace = outcome.get("namespace") if isinstance(outcome.get("namespace"), str) else ""
        techniques = [t for t in outcome.get("techniques") or [] if isinstance(t, str)] or [""]
        seconds = outcome.get("time_to_detect_s")
        for technique in techniques:
            labels.setdefault((technique, namespace), []).append(view.check_label(outcome))
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
                detect[(technique, namespace)] = max(float(seconds), detect.get((technique, namespace), 0.0))
    checks = []
    for key, seen in (labels or {("", ""): []}).items():
        judged = [_VERDICT_OF_LABEL[label] for label in seen if label in _VERDICT_OF_LABEL]
        verdict = "error" if run == "error" else min(judged, key=RESULTS.index) if judged else run
        checks.append(CheckSeries(key[0], key[1], verdict, detect.get(key)))
    last = view.ended or view.started
    return ExperimentSeries(
        experiment=view.path.stem, verdict=run, as_expected=view.verdict.as_expected, duration=view.duration,
        last_run=last.timestamp() if last else None, checks=tuple(checks),
    )
