"""`kirvis push-metrics`, and the `kirvis run` options that make its results outlive it: metrics pushed to a
Pushgateway (`chaoskirvis.metrics.push`), journals kept in ConfigMaps (`chaoskirvis.run.keep`).

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
    run.add_argument("--keep-journals-in", metavar="NAMESPACE",
                     help="also store each journal, gzip-compressed, in a ConfigMap in this namespace "
                          "(docs/metrics.md)")
    run.add_argument("--keep", type=int, default=None, metavar="N",
                     help="with --keep-journals-in, the newest journals kept per experiment (default: 10)")


def _add_push_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--pushgateway", required=required, metavar="URL",
                        help="push each experiment's verdict to this Prometheus Pushgateway (docs/metrics.md)")
    parser.add_argument("--cluster-name", metavar="NAME",
                        help="the cluster label of the pushed metrics (default: each journal's kubeconfig context)")


def run_options_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the export options of `kirvis run`, found before anything runs."""
    from chaoskirvis.ledger.refs import namespace_problem

    if args.cluster_name is not None and not args.pushgateway:
        return "--cluster-name goes with --pushgateway"
    if args.keep is not None and not args.keep_journals_in:
        return "--keep goes with --keep-journals-in"
    if args.keep is not None and args.keep < 1:
        return f"--keep {args.keep}: keep at least the journal of this run (1)"
    if args.keep_journals_in and namespace_problem(args.keep_journals_in):
        return f"--keep-journals-in: {namespace_problem(args.keep_journals_in)} such as 'chaoskirvis'"
    return gateway_problem(args.pushgateway) if args.pushgateway else None


def export_run(args: argparse.Namespace, journals: list[Path]) -> int:
    """After `kirvis run`: keep the journals in the cluster and push their metrics, as asked; 0, or 2 with
    the causes on stderr."""
    kept = _keep(journals, args.keep_journals_in, args.keep) if args.keep_journals_in else 0
    pushed = _push(journals, args.pushgateway, args.cluster_name, "kirvis run") if args.pushgateway else 0
    return max(kept, pushed)


def _keep(journals: list[Path], namespace: str, keep: int | None) -> int:
    from chaoslib.exceptions import ActivityFailed

    from chaoskirvis.client import kube_api
    from chaoskirvis.run.keep import DEFAULT_KEEP, keep_journals

    try:
        api = kube_api()
    except ActivityFailed as exc:
        print(f"kirvis run: journals not kept in the cluster: {exc}", file=sys.stderr)
        return 2
    report = keep_journals(api, namespace, journals, DEFAULT_KEEP if keep is None else keep)
    print(f"kept {len(report.stored)} journal(s) in ConfigMaps in namespace {namespace}"
          + (f"; removed {len(report.deleted)} older kept journal(s)" if report.deleted else ""))
    for line in [*report.too_big, *report.failed]:
        print(f"kirvis run: journal not kept: {line}", file=sys.stderr)
    return 2 if report.too_big or report.failed else 0


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
