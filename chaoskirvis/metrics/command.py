"""`kirvis push-metrics` and the `kirvis run` options that export a run's results when it ends.

prometheus_client and the Kubernetes client are imported only when the options ask for them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["add_parser", "add_run_options", "run_options_problem", "export_run", "gateway_problem"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    push = commands.add_parser(
        "push-metrics", help="push the verdicts of journals (an earlier run's) to a Prometheus Pushgateway",
    )
    push.add_argument("journals", nargs="+", type=Path, metavar="JOURNAL")
    _add_push_options(push, required=True)
    push.set_defaults(handler=_push_metrics)


def add_run_options(run: argparse.ArgumentParser) -> None:
    _add_push_options(run, required=False)


def _add_push_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--pushgateway", required=required, metavar="URL",
                        help="push each experiment's verdict to this Prometheus Pushgateway (docs/metrics.md)")
    parser.add_argument("--cluster-name", metavar="NAME",
                        help="the cluster label of the pushed metrics (default: each journal's kubeconfig context)")


def run_options_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the export options of `kirvis run`, found before anything runs."""
    if args.cluster_name is not None and not args.pushgateway:
        return "--cluster-name goes with --pushgateway"
    return gateway_problem(args.pushgateway) if args.pushgateway else None


def export_run(args: argparse.Namespace, journals: list[Path]) -> int:
    """After `kirvis run`: push the journals' metrics if asked; 0, or 2 with the cause on stderr."""
    if not args.pushgateway:
        return 0
    return _push(journals, args.pushgateway, args.cluster_name, "kirvis run")


def gateway_problem(url: str) -> str | None:
    """Why `url` cannot be a Pushgateway's address, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"--pushgateway {url!r}: give the gateway's URL, e.g. http://pushgateway.monitoring:9091"
    return None


def _push_metrics(args: argparse.Namespace) -> int:
    problem = gateway_problem(args.pushgateway)
    if problem:
        print(f"kirvis push-metrics: {problem}", file=sys.stderr)
        return 2
    return _push(args.journals, args.pushgateway, args.cluster_name, "kirvis push-metrics")


def _push(journals: list[Path], gateway: str, cluster: str | None, command: str) -> int:
    from chaoskirvis.metrics.push import PushError, push_views
    from chaoskirvis.report.model import ReportError, load_view

    try:
        pushed = push_views([load_view(path) for path in journals], gateway, cluster)
    except (PushError, ReportError) as exc:
        print(f"{command}: metrics not pushed: {exc}", file=sys.stderr)
        return 2
    for group in pushed:
        print(f"pushed the verdicts of {group.experiments} experiment(s) of cluster {group.cluster} to {gateway} "
              f"({'every verdict as expected' if group.success else 'not every verdict as expected'})")
    return 0
