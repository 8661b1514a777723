"""The `kirvis` command: run the local sandbox, clean up after runs, show the technique catalog."""
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
    cleanup.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    cleanup.set_defaults(handler=_cleanup)

    catalog = commands.add_parser("catalog", help="list the techniques chaoskirvis can introduce")
    output = catalog.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the catalog as JSON")
    output.add_argument("--markdown", action="store_true", help="print the catalog page (docs/techniques.md)")
    catalog.set_defaults(handler=_catalog)
    return parser


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
    from chaoskirvis.ledger.restore import Selection, find_leftovers, remove
    from chaoskirvis.ledger.runid import validate_run_id

    if not (args.run_id or args.all or args.expired):
        print("kirvis cleanup: choose what to remove: --run-id ID, --expired or --all", file=sys.stderr)
        return 2
    selection = Selection(run_id=validate_run_id(args.run_id) if args.run_id else None, expired_only=args.expired)
    api = kube_api()
    leftovers = find_leftovers(api, selection, args.namespace)
    verb = "would remove" if args.dry_run else "removing"
    if not leftovers.objects and not leftovers.records:
        print("nothing to remove")
    for ref, _ in leftovers.objects:
        print(f"{verb} {ref}")
    for ref, _ in leftovers.records:
        print(f"{verb} record {ref}")
    for ref in leftovers.not_ours:
        print(f"leaving alone {ref}: it does not carry the run's ownership labels")
    report = remove(api, leftovers, dry_run=args.dry_run)
    for failure in report.failed:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if report.failed else 0


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
