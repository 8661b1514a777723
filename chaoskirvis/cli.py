"""The `kirvis` command: run experiments, report on and verify their journals, run the local sandbox,
clean up after runs, show the technique catalog."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from chaoskirvis import __version__

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except ActivityFailed as exc:
        print(f"kirvis: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kirvis", description="Security chaos engineering for Kubernetes.")
    parser.add_argument("--version", action="version", version=f"chaoskirvis {__version__}")
    commands = parser.add_subparsers(metavar="COMMAND")

    sandbox = commands.add_parser(
        "sandbox", help="run the local Kubernetes API sandbox in the foreground (test and demo infrastructure)",
    )
    sandbox.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    sandbox.add_argument(
        "--kubeconfig", type=Path, default=Path(".kirvis/sandbox.kubeconfig"),
        help="where to write the kubeconfig (default: .kirvis/sandbox.kubeconfig)",
    )
    sandbox.add_argument(
        "--apply", type=Path, nargs="*", default=[], metavar="FILE",
        help="manifests (files or folders of *.yaml) to apply at start, e.g. scenarios/",
    )
    sandbox.set_defaults(handler=_sandbox)

    cleanup = commands.add_parser(
        "cleanup", help="remove what chaoskirvis runs left in the cluster (only objects carrying its marks)",
    )
    which = cleanup.add_mutually_exclusive_group()
    which.add_argument("--run-id", help="only this run")
    which.add_argument("--all", action="store_true", help="every run")
    cleanup.add_argument("--expired", action="store_true", help="only objects whose expiry time has passed")
    cleanup.add_argument(
        "--namespace", "-n", action="append", metavar="NS",
        help="look only in this namespace (repeatable; default: all namespaces)",
    )
    cleanup.add_argument(
        "--cluster-scoped", action="store_true",
        help="with --all or --expired, remove cluster-scoped objects (ClusterRoleBindings) too: with -n, those "
             "of runs whose record is in NS; without, every run's (--run-id always removes its run's own)",
    )
    cleanup.add_argument(
        "--kind", action="append", metavar="PLURAL[.GROUP]",
        help="sweep only this kind by the ownership labels, e.g. pods, deployments.apps (repeatable; default: "
             "every kind a technique can create); the run records, and what they name, are always read",
    )
    cleanup.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    cleanup.set_defaults(handler=_cleanup)

    catalog = commands.add_parser("catalog", help="list the techniques chaoskirvis can introduce")
    output = catalog.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the catalog as JSON")
    output.add_argument("--markdown", action="store_true", help="print the catalog page (docs/techniques.md)")
    catalog.set_defaults(handler=_catalog)
    _add_evidence_commands(commands)
    return parser


_HYPOTHESIS_STRATEGIES = ("default", "before-method-only", "after-method-only", "during-method-only", "continuously")
_ROLLBACK_STRATEGIES = ("default", "always", "never", "deviated")
_REPORT_FORMATS = ("html", "md", "junit", "json")


def _add_evidence_commands(commands: argparse._SubParsersAction) -> None:
    from chaoskirvis.metrics.command import add_parser as add_push_metrics, add_run_options as add_metrics_options

    run = commands.add_parser(
        "run", help="run experiments (files or folders) in one process, one journal each; exit 0 when every "
                    "verdict is as expected, 1 on any weakness, 2 on any error (and no weakness)",
    )
    run.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="experiment files, or folders of them")
    run.add_argument("--journals", type=Path, default=Path("journals"), metavar="DIR",
                     help="where to write one journal per experiment (default: ./journals)")
    run.add_argument("--var", action="append", default=[], metavar="KEY[:TYPE]=VALUE",
                     help="configuration value for every experiment, as `chaos run --var` (repeatable)")
    run.add_argument("--var-file", action="append", default=[], metavar="FILE",
                     help="configuration and secrets file (json/yaml) or .env file, as `chaos run` (repeatable)")
    run.add_argument("--rollback-strategy", choices=_ROLLBACK_STRATEGIES)
    run.add_argument("--hypothesis-strategy", choices=_HYPOTHESIS_STRATEGIES)
    run.add_argument("--hypothesis-frequency", type=float, default=1.0, metavar="SECONDS",
                     help="pace of a during-method or continuous hypothesis (default: 1.0)")
    run.add_argument("--fail-fast", action="store_true",
                     help="with a continuous hypothesis, stop an experiment as soon as it deviates")
    run.add_argument("--expect", choices=("held", "weakness"), default=None,
                     help="the verdict every experiment should give (default: held); 'weakness' marks a negative "
                          "control, e.g. a namespace left without the control on purpose, to show the test can fail")
    run.add_argument("--settings", default=None, metavar="FILE",
                     help="Chaos Toolkit settings file (default: ~/.chaostoolkit/settings.yaml)")
    run.add_argument("--log-file", type=Path, default=None, metavar="FILE",
                     help="the run's debug log (default: DIR/kirvis-run.log)")
    run.add_argument("--verbose", action="store_true", help="show Chaos Toolkit's log on the console too")
    run.add_argument("--report", type=Path, default=None, metavar="FILE",
                     help="write a report of the journals at the end")
    run.add_argument("--report-format", choices=_REPORT_FORMATS,
                     help="format of --report (default: from its extension, else html)")
    run.add_argument("--sign-key", type=Path, default=None, metavar="KEY.pem",
                     help="sign each journal with this Ed25519 private key (PEM, PKCS#8, unencrypted)")
    run.add_argument("--context", action="append", default=[], metavar="NAME",
                     help="run the suite against this kubeconfig context (repeatable: a fleet, one subprocess and "
                          "journal folder DIR/NAME per context, then a cluster x experiment matrix)")
    run.add_argument("--all-contexts", action="store_true", help="run the suite against every kubeconfig context")
    run.add_argument("--parallel", type=int, default=None, metavar="N",
                     help="with --context or --all-contexts, contexts run at once (default: 4)")
    add_metrics_options(run)
    run.set_defaults(handler=_run)

    report = commands.add_parser("report", help="turn journals into an HTML, Markdown, JUnit XML or JSON report")
    report.add_argument("journals", nargs="+", type=Path, metavar="JOURNAL")
    report.add_argument("--format", choices=_REPORT_FORMATS,
                        help="report format (default: from the output's extension, else html)")
    report.add_argument("-o", "--output", type=Path, default=None, metavar="OUT",
                        help="file to write (default: standard output)")
    report.set_defaults(handler=_report)

    verify = commands.add_parser(
        "verify", help="check that journals match the digest the evidence control sealed (and, with --key, "
                       "that one of the keys signed them)",
    )
    verify.add_argument("journals", nargs="+", type=Path, metavar="JOURNAL")
    verify.add_argument("--key", action="append", default=[], type=Path, metavar="PUB.pem",
                        help="Ed25519 public key (PEM): require a signature by it (repeatable: any of them)")
    verify.set_defaults(handler=_verify)

    sign = commands.add_parser("sign", help="sign sealed journals (e.g. from plain `chaos run`) with an Ed25519 key")
    sign.add_argument("journals", nargs="+", type=Path, metavar="JOURNAL")
    sign.add_argument("--key", required=True, type=Path, metavar="KEY.pem",
                      help="Ed25519 private key (PEM, PKCS#8, unencrypted): openssl genpkey -algorithm ed25519")
    sign.set_defaults(handler=_sign)

    from chaoskirvis.rehearse.command import add_parser as add_rehearse
    add_rehearse(commands)
    from chaoskirvis.deploy.command import add_parser as add_deploy
    add_deploy(commands)
    add_push_metrics(commands)


def _sandbox(args: argparse.Namespace) -> int:
    try:
        from chaoskirvis.sandbox.server import run_foreground
    except ImportError as exc:
        print(
            f"kirvis: the sandbox needs the 'sandbox' extra ({exc.name} is missing): "
            "pip install 'chaostoolkit-kirvis[sandbox]'",
            file=sys.stderr,
        )
        return 1
    manifests = []
    for path in args.apply:
        if path.is_dir():
            manifests.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        elif path.is_file():
            manifests.append(path)
        else:
            print(f"kirvis: no such manifest file or folder: {path}", file=sys.stderr)
            return 1
    return run_foreground(args.port, args.kubeconfig, manifests)


def _cleanup(args: argparse.Namespace) -> int:
    from chaoskirvis.client import kube_api
    from chaoskirvis.ledger.kinds import NAMEABLE, kind_named, qualified
    from chaoskirvis.ledger.refs import namespace_problem
    from chaoskirvis.ledger.restore import Selection, find_leftovers, remove
    from chaoskirvis.ledger.runid import validate_run_id

    if not (args.run_id or args.all or args.expired):
        print("kirvis cleanup: choose what to remove: --run-id ID, --expired or --all", file=sys.stderr)
        return 2
    bad = next((ns for ns in args.namespace or [] if namespace_problem(ns)), None)
    if bad is not None:
        print(f"kirvis cleanup: invalid -n {bad!r}: a namespace is a DNS label such as 'team-a'", file=sys.stderr)
        return 2
    if args.cluster_scoped and args.run_id:
        print("kirvis cleanup: --cluster-scoped goes with --all or --expired (--run-id always removes its run's "
              "cluster-scoped objects)", file=sys.stderr)
        return 2
    unknown = [name for name in args.kind or [] if kind_named(name) is None]
    if unknown:
        print(f"kirvis cleanup: unknown --kind {', '.join(map(repr, unknown))}: the kinds swept are "
              f"{', '.join(map(qualified, NAMEABLE))}", file=sys.stderr)
        return 2
    selection = Selection(run_id=validate_run_id(args.run_id) if args.run_id else None, expired_only=args.expired,
                          cluster_scoped=args.cluster_scoped)
    api = kube_api()
    kinds = None if args.kind is None else [kind_named(name) for name in args.kind]
    leftovers = find_leftovers(api, selection, args.namespace, kinds)
    verb = "would remove" if args.dry_run else "removing"
    if not leftovers.objects and not leftovers.records:
        print("nothing to remove")
    for ref, _ in leftovers.objects:
        print(f"{verb} {ref}")
    for change in leftovers.changes:
        print(f"{'would put back' if args.dry_run else 'putting back'} {change.ref} as the run found it")
    for entry in leftovers.node_files:
        print(f"{'would put back' if args.dry_run else 'putting back'} {entry} as the run found it")
    for ref, _ in leftovers.records:
        print(f"{verb} record {ref}")
    for ref in leftovers.not_ours:
        print(f"leaving alone {ref}: it does not carry the run's ownership marks")
    for line in [*leftovers.invalid, *leftovers.kept]:
        print(f"left alone: {line}")
    report = remove(api, leftovers, dry_run=args.dry_run)
    for line in [] if args.dry_run else report.restored:
        print(f"put back: {line}")
    for line in report.unchanged:
        print(f"nothing to put back: {line}")
    for failure in report.failed:
        print(f"failed: {failure}", file=sys.stderr)
    for conflict in report.conflicts:
        print(f"conflict: {conflict['detail']}", file=sys.stderr)
        for version in ("original", "run_wrote", "current"):
            print(f"  {version}: {json.dumps(conflict[version], sort_keys=True)}", file=sys.stderr)
    if report.failed:
        print(f"kirvis cleanup: {len(report.failed)} thing(s) could not be done (above); the records are kept, "
              "so running the same cleanup again finishes it", file=sys.stderr)
    if report.conflicts:
        print(f"kirvis cleanup: {len(report.conflicts)} object(s) changed by someone else since the run changed "
              "them were not put back (above); their record entries are kept for a person to decide",
              file=sys.stderr)
    return 1 if report.failed or report.conflicts else 0


def _catalog(args: argparse.Namespace) -> int:
    from chaoskirvis.techniques import CATALOG

    if args.json:
        print(json.dumps([t.summary() for t in CATALOG.values()], indent=2))
        return 0
    if args.markdown:
        from chaoskirvis.techniques.docs import catalog_markdown

        sys.stdout.write(catalog_markdown())
        return 0
    for technique in CATALOG.values():
        print(f"{technique.id:<22} {', '.join(technique.attack):<26} {technique.title}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from chaoslib import convert_vars
    from chaoslib.settings import CHAOSTOOLKIT_CONFIG_PATH

    from chaoskirvis.run.logs import configure_logging

    malformed = [var for var in args.var if "=" not in var]
    if malformed:
        print(f"kirvis run: invalid --var {malformed[0]!r}: write KEY=VALUE (or KEY:TYPE=VALUE)", file=sys.stderr)
        return 2
    try:
        variables = convert_vars(args.var)
    except ValueError as exc:
        print(f"kirvis run: invalid --var: {exc}", file=sys.stderr)
        return 2
    if args.journals.exists() and not args.journals.is_dir():
        print(f"kirvis run: --journals {args.journals} is a file: name a folder", file=sys.stderr)
        return 2
    if args.report and _report_format_error(args.report_format, args.report):
        print(f"kirvis run: {_report_format_error(args.report_format, args.report)}", file=sys.stderr)
        return 2
    from chaoskirvis.metrics.command import export_run, run_options_problem

    if run_options_problem(args):
        print(f"kirvis run: {run_options_problem(args)}", file=sys.stderr)
        return 2
    sign_key = None
    if args.sign_key:  # before anything runs: a bad key must not cost a suite
        from chaoskirvis.evidence.signing import SigningError, load_private_key

        try:
            sign_key = load_private_key(args.sign_key)
        except SigningError as exc:
            print(f"kirvis run: {exc}", file=sys.stderr)
            return 2
    if args.context or args.all_contexts or args.parallel is not None:
        from chaoskirvis.run.fleet import run_fleet
        from chaoskirvis.run.suite import UsageError

        try:
            return run_fleet(args, progress=lambda line: print(line, flush=True))
        except UsageError as exc:
            print(f"kirvis run: {exc}", file=sys.stderr)
            return 2
    log_file = args.log_file or args.journals / "kirvis-run.log"
    try:
        configure_logging(log_file, verbose=args.verbose)
    except OSError as exc:
        print(f"kirvis run: cannot write the log file {log_file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    from chaoskirvis.run.suite import SuiteOptions, UsageError, exit_status, run_suite  # after logging: see chaoskirvis.run

    options = SuiteOptions(
        journals=args.journals, settings_path=args.settings or CHAOSTOOLKIT_CONFIG_PATH, variables=variables,
        var_files=tuple(args.var_file), rollback_strategy=args.rollback_strategy,
        hypothesis_strategy=args.hypothesis_strategy, hypothesis_frequency=args.hypothesis_frequency,
        fail_fast=args.fail_fast, expect=args.expect, sign_key=sign_key,
    )
    try:
        results = run_suite(args.paths, options, progress=lambda line: print(line, flush=True))
    except UsageError as exc:
        print(f"kirvis run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # between two experiments: each one handles its own interruption
        print("kirvis run: interrupted", file=sys.stderr)
        return 130
    status = exit_status(results)
    journals = [result.journal for result in results if result.journal is not None]
    if journals and export_run(args, journals) != 0:  # the journals are written whatever the gateway says
        status = max(status, 2)
    if args.report and journals:
        fmt = args.report_format or _format_of(args.report)
        if _write_report(journals, fmt, args.report) != 0:
            return max(status, 2)
    return status


def _report_format_error(fmt: str | None, output: Path) -> str | None:
    """Why `output` cannot be written as a report (an extension no format has), or None."""
    from chaoskirvis.report import FORMATS, format_for

    if fmt or format_for(output) or not output.suffix:
        return None
    return (f"cannot write a {output.suffix} report ({output}): the formats are {', '.join(FORMATS)} "
            "(.html, .md, .xml, .json); for a PDF, print the HTML report from a browser")


def _report(args: argparse.Namespace) -> int:
    if args.output and _report_format_error(args.format, args.output):
        print(f"kirvis report: {_report_format_error(args.format, args.output)}", file=sys.stderr)
        return 2
    fmt = args.format or (_format_of(args.output) if args.output else "html")
    if args.output is None:
        from chaoskirvis.report import ReportError, render

        try:
            sys.stdout.write(render(args.journals, fmt))
        except ReportError as exc:
            print(f"kirvis report: {exc}", file=sys.stderr)
            return 1
        return 0
    return _write_report(args.journals, fmt, args.output)


def _write_report(journals: list[Path], fmt: str, output: Path) -> int:
    from chaoskirvis.report import ReportError, write_report

    try:
        written = write_report(journals, fmt, output)
    except (ReportError, OSError) as exc:
        print(f"kirvis report: {exc}", file=sys.stderr)
        return 1
    print(f"{fmt} report of {len(journals)} journal(s): {written.resolve()}")
    return 0


def _format_of(path: Path) -> str:
    from chaoskirvis.report import format_for

    return format_for(path) or "html"


def _verify(args: argparse.Namespace) -> int:
    from chaoskirvis.evidence.digest import verify
    from chaoskirvis.evidence.signing import SigningError, check, keyid_of, load_public_key, signers_of

    try:
        keys = {keyid_of(key): key for key in map(load_public_key, args.key)}
    except SigningError as exc:
        print(f"kirvis verify: {exc}", file=sys.stderr)
        return 2
    status = 0
    for path in args.journals:
        try:
            journal = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            print(f"FAILED {path}: cannot read it as a journal: {exc}")
            status = 1
            continue
        result = check(journal, keys) if keys else verify(journal)
        print(f"{'OK' if result.ok else 'FAILED'} {path}: {result.message}")
        if not keys:
            signers = signers_of(journal)
            print(f"  signed by keyid {', '.join(signers)} (not checked: give --key PUB.pem)" if signers
                  else "  not signed")
        status = status if result.ok else 1
    return status


def _sign(args: argparse.Namespace) -> int:
    from chaoskirvis.evidence.signing import SigningError, load_private_key, sign_file

    try:
        key = load_private_key(args.key)
    except SigningError as exc:
        print(f"kirvis sign: {exc}", file=sys.stderr)
        return 2
    status = 0
    for path in args.journals:
        try:
            keyid = sign_file(path, key)
        except SigningError as exc:
            print(f"FAILED {path}: {exc}")
            status = 1
            continue
        print(f"SIGNED {path}: keyid {keyid}")
    return status
