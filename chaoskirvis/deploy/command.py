"""`kirvis deploy PATH...`: render (and with --apply, apply) what runs the experiments in the cluster on a schedule.

Exit codes: 0 rendered (and applied); 1 the API refused to apply something; 2 the selection or an option
cannot be deployed (an activity whose permissions are not known, a namespace not fixed, a bad schedule).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

__all__ = ["add_parser", "EXIT_OK", "EXIT_APPLY_FAILED", "EXIT_ERROR"]

EXIT_OK, EXIT_APPLY_FAILED, EXIT_ERROR = 0, 1, 2


def add_parser(commands: argparse._SubParsersAction) -> None:
    from chaoskirvis.deploy.render import DEFAULT_IMAGE, Options

    defaults = Options()
    deploy = commands.add_parser(
        "deploy", help="render (or --apply) a least-privilege CronJob that runs the experiments in the cluster",
        description="Render a Namespace, a ServiceAccount, the RBAC the experiments need (a Role per target "
                    "namespace; a ClusterRole only for cluster-scoped needs), a ConfigMap with the experiments and "
                    "a CronJob running `kirvis cleanup --expired` then `kirvis run` in the pod. Exit 0 ok, 1 the "
                    "API refused to apply, 2 the selection cannot be deployed. See docs/deploy.md.",
    )
    deploy.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="experiment files, or folders of them")
    deploy.add_argument("--namespace", default=defaults.namespace, metavar="NS",
                        help=f"where the ServiceAccount, ConfigMap and CronJob live (default {defaults.namespace})")
    deploy.add_argument("--schedule", default=defaults.schedule, metavar="CRON",
                        help=f"the CronJob's schedule, five cron fields or @daily... (default '{defaults.schedule}')")
    deploy.add_argument("--time-zone", default=defaults.time_zone, metavar="TZ",
                        help=f"the schedule's time zone, an IANA name (default {defaults.time_zone})")
    deploy.add_argument("--image", default=None, metavar="IMG",
                        help="the image with kirvis installed, built from deploy/Dockerfile and pushed where the "
                             f"cluster pulls from (required with --apply; rendered without it: {DEFAULT_IMAGE})")
    deploy.add_argument("--apply", action="store_true",
                        help="apply the manifests to the cluster (KUBECONFIG, as kirvis run), creating or replacing")
    deploy.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the YAML here (default: stdout)")
    deploy.add_argument("--pushgateway", metavar="URL",
                        help="the job's `kirvis run` pushes each verdict to this Prometheus Pushgateway "
                             "(docs/metrics.md); needs --cluster-name")
    deploy.add_argument("--cluster-name", metavar="NAME",
                        help="the cluster label of the pushed metrics (required with --pushgateway: a run in a pod "
                             "records no kubeconfig context to take it from)")
    deploy.add_argument("--keep-journals-in", metavar="NS",
                        help="the job's `kirvis run` keeps each journal in a ConfigMap in NS (a Role there may "
                             "create, list and delete ConfigMaps), e.g. the deployment's own --namespace")
    deploy.add_argument("--keep", type=int, default=None, metavar="N",
                        help="with --keep-journals-in, the newest journals kept per experiment (default: 10)")
    deploy.set_defaults(handler=_deploy)


def _fail(message: str) -> int:
    print(f"kirvis deploy: {message}", file=sys.stderr)
    return EXIT_ERROR


def _known_time_zone(name: str) -> bool:
    """Whether `name` is in the time zone database (the API server checks the CronJob's timeZone the same way);
    without a database on this machine, left to the API server."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    if not available_timezones():
        return True
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _deploy(args: argparse.Namespace) -> int:
    from chaoskirvis.deploy.cron import schedule_problem
    from chaoskirvis.deploy.permissions import DeployError
    from chaoskirvis import __version__
    from chaoskirvis.deploy.render import DEFAULT_IMAGE, Options, load_experiments, render, to_yaml
    from chaoskirvis.ledger.refs import namespace_problem
    from chaoskirvis.targets import PROTECTED_NAMESPACES

    if namespace_problem(args.namespace):
        return _fail(f"invalid --namespace {args.namespace!r}: a namespace is a DNS label such as 'kirvis-system'")
    problem = schedule_problem(args.schedule)
    if problem:
        return _fail(f"invalid --schedule {args.schedule!r}: {problem}")
    if not _known_time_zone(args.time_zone):
        return _fail(f"invalid --time-zone {args.time_zone!r}: an IANA time zone name such as 'Etc/UTC' or "
                     "'Europe/Vilnius'")
    from chaoskirvis.metrics.command import run_options_problem

    if args.pushgateway and not args.cluster_name:
        return _fail("--pushgateway needs --cluster-name NAME: a run in a pod records no kubeconfig context to "
                     "name the cluster by")
    problem = run_options_problem(args)  # the same checks `kirvis run` makes, before the job runs it
    if problem:
        return _fail(problem)
    if args.keep_journals_in in PROTECTED_NAMESPACES:
        return _fail(f"--keep-journals-in {args.keep_journals_in} is a protected namespace: the Role there may list "
                     "and delete every ConfigMap; keep the journals in the deployment's own (--namespace)")
    if args.apply and args.image is None:
        return _fail(f"--apply needs --image REGISTRY/chaostoolkit-kirvis:{__version__}: the default "
                     f"{DEFAULT_IMAGE} names no registry, and the node would run whatever image that short name "
                     "resolves to, with the ServiceAccount's rights")
    image = DEFAULT_IMAGE if args.image is None else args.image
    if not image.strip() or any(c.isspace() for c in image):
        return _fail(f"invalid --image {image!r}")
    options = Options(namespace=args.namespace, schedule=args.schedule, time_zone=args.time_zone, image=image,
                      pushgateway=args.pushgateway, cluster_name=args.cluster_name,
                      keep_journals_in=args.keep_journals_in, keep=args.keep)
    try:
        manifests = render(load_experiments(args.paths), options)
    except DeployError as exc:
        return _fail(str(exc))
    text = to_yaml(manifests)
    if args.output:
        args.output.write_text(text)
    elif not args.apply:
        sys.stdout.write(text)
    if not args.apply:
        return EXIT_OK
    return _apply(manifests)


def _apply(manifests: list[dict]) -> int:
    from chaoskirvis.client import ApiError, kube_api
    from chaoskirvis.deploy.apply import apply_all

    try:
        for line in apply_all(kube_api(), manifests):
            print(line)
    except ApiError as exc:
        print(f"kirvis deploy: could not apply: {exc}", file=sys.stderr)
        return EXIT_APPLY_FAILED
    except ActivityFailed as exc:  # no cluster configuration, unreachable API
        print(f"kirvis deploy: could not apply: {exc}", file=sys.stderr)
        return EXIT_APPLY_FAILED
    return EXIT_OK
