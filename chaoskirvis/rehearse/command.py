"""`kirvis rehearse PATH...`: the attack catalog against the organisation's policies, in an in-process sandbox.

Exit codes: 0 every expectation holds and nothing regressed; 1 an expectation is broken or a cell regressed
(held before, a weakness now); 2 an error (a manifest that does not apply, a bad expectations or baseline file,
a technique that could not be attempted): the run could not tell, so it cannot pass.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "EXIT_OK", "EXIT_BROKEN", "EXIT_ERROR"]

EXIT_OK, EXIT_BROKEN, EXIT_ERROR = 0, 1, 2
_OUTPUTS = {"rehearse.json": "render_json", "rehearse.xml": "render_junit", "rehearse.md": "render_markdown",
            "rehearse.html": "render_html"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    rehearse = commands.add_parser(
        "rehearse", help="rehearse the attack catalog against policy manifests in an in-process sandbox (for CI)",
        description="Apply the manifests (Namespaces, ValidatingAdmissionPolicies and bindings, RBAC, "
                    "NetworkPolicies, ServiceAccounts; single-rule Kyverno CEL ClusterPolicies and Gatekeeper CEL "
                    "ConstraintTemplates with their Constraints are translated as those engines generate VAPs) to a "
                    "fresh sandbox and attempt every applicable technique in every namespace. Exit 0 ok, 1 an "
                    "expectation broken or a regression, 2 an error. See docs/rehearse.md.",
    )
    rehearse.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="YAML files or folders (recursive)")
    rehearse.add_argument("--expectations", type=Path, metavar="FILE",
                          help="what must hold where (e.g. kirvis-expectations.yaml); without it only errors fail")
    rehearse.add_argument("--baseline", type=Path, metavar="PREVIOUS.json",
                          help="a previous run's rehearse.json: report what changed; held -> weakness fails")
    rehearse.add_argument("-n", "--namespace", action="append", metavar="GLOB",
                          help="rehearse only these namespaces (repeatable, shell-style patterns)")
    rehearse.add_argument("-t", "--technique", action="append", metavar="ID", help="only these techniques (repeatable)")
    rehearse.add_argument("--output-dir", type=Path, default=Path(".kirvis/rehearse"), metavar="DIR",
                          help="where to write rehearse.json, .xml (JUnit), .md and .html (default .kirvis/rehearse)")
    rehearse.set_defaults(handler=_rehearse)


def _translate(documents: list[tuple[Path, dict[str, Any]]]) -> tuple[list[tuple[Path, dict[str, Any]]], list]:
    """The documents the sandbox can enforce (Kyverno and Gatekeeper CEL policies as VAPs), and the engine documents
    it cannot."""
    from chaoskirvis.rehearse.engines import translate

    return translate(documents)


def _fail(message: str) -> int:
    print(f"kirvis rehearse: {message}", file=sys.stderr)
    return EXIT_ERROR


def _rehearse(args: argparse.Namespace) -> int:
    from chaoskirvis.rehearse import reports
    from chaoskirvis.rehearse.expectations import (ExpectationError, broken, compare, load_baseline,
                                                   load_expectations)
    from chaoskirvis.rehearse.matrix import ManifestError, Skipped, applicable, load_documents, rehearse
    from chaoskirvis.techniques import CATALOG

    unknown = sorted(set(args.technique or []) - set(CATALOG))
    if unknown:
        return _fail(f"unknown technique(s) {', '.join(unknown)}; known: {', '.join(sorted(CATALOG))}")
    offline = set(applicable())
    not_offline = sorted(set(args.technique or []) - offline)
    if not_offline:
        return _fail(f"{', '.join(not_offline)} cannot be rehearsed offline (see docs/rehearse.md)")
    try:
        expectations = load_expectations(args.expectations) if args.expectations else None
        baseline = load_baseline(args.baseline) if args.baseline else None
        documents, skipped = _translate(load_documents(args.paths))
        cells = rehearse(documents, namespaces=args.namespace, techniques=args.technique,
                         exclude=list(expectations.out_of_scope) if expectations else [])
    except (ExpectationError, ManifestError) as error:
        return _fail(str(error))
    result = reports.Result(cells, [Skipped(*s) for s in skipped], broken(cells, expectations),
                            compare(cells, baseline) if baseline is not None else [])
    sys.stdout.write(reports.render_text(result))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, renderer in _OUTPUTS.items():
        (args.output_dir / name).write_text(getattr(reports, renderer)(result))
    print(f"reports in {args.output_dir}/: {', '.join(_OUTPUTS)}")
    if result.errors:
        return EXIT_ERROR
    return EXIT_BROKEN if result.broken or result.regressions else EXIT_OK
