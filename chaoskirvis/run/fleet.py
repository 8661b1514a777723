"""`kirvis run --context A --context B ...` (or `--all-contexts`): the suite against several clusters.

Each context gets its own `kirvis run` subprocess, with ``KUBERNETES_CONTEXT`` in its environment (the
client and the evidence control read it as for any run) and its journals in ``DIR/<context>/``; at most
``--parallel`` of them run at once. The end is a cluster x experiment matrix (`chaoskirvis.report.fleet`)
read from the journals the subprocesses wrote, and an exit code over all clusters as `kirvis run` gives
over its experiments: 1 on any unexpected weakness, else 2 on any error (an interrupted run, a context
not run, a context whose run failed), else 0.

Why subprocesses, not threads: what a run depends on is the process's. The run id
(`chaoskirvis.ledger.runid`, also in every request's User-Agent), the evidence control's session and the
experiment source it hashes, chaoslib's global controls and Chaos Toolkit's signal handlers and logger are
process-global; the client cache (`chaoskirvis.client.cluster_client`) is keyed by ``KUBERNETES_CONTEXT``
as read from the environment, which is one per process. Two contexts in one process would share all of
these. A subprocess per context shares none, and a context that crashes takes no other with it.

The subprocess gets the parsed command line itself (every option of `kirvis run`, with the journals
folder, log file and report made per context), pickled on its standard input
(`chaoskirvis.run.one_context`). A signal (Ctrl-C, SIGTERM) to the fleet is passed to every running
subprocess (in their own sessions, they do not get the terminal's too), which restores its run as a single
`kirvis run` does; contexts not yet started are not run.
"""
from __future__ import annotations

import argparse
import copy
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import kubeconfig_contexts
from chaoskirvis.report.fleet import Fleet, FleetCell, cluster_of
from chaoskirvis.report.model import ExperimentView, ReportError, load_view
from chaoskirvis.run.suite import UsageError, _journal_paths, find_experiments

__all__ = ["DEFAULT_PARALLEL", "Target", "ContextRun", "fleet_targets", "run_fleet", "fleet_matrix", "fleet_status",
           "matrix_lines"]

DEFAULT_PARALLEL = 4
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Target:
    """A kubeconfig context and the folder its journals go to."""

    context: str
    folder: Path


@dataclass
class ContextRun:
    target: Target
    exit_code: int | None = None  # None: not started (the fleet was stopped first)
    started_ns: int = 0


def fleet_targets(requested: list[str], every: bool, journals: Path) -> list[Target]:
    """The contexts to run (in the order given, or the kubeconfig's), each with its journal folder; raises
    `UsageError` naming any context the kubeconfig does not define, before anything runs."""
    try:
        known = kubeconfig_contexts()
    except ActivityFailed as exc:
        raise UsageError(str(exc)) from None
    chosen = known if every else list(dict.fromkeys(requested))
    unknown = [context for context in chosen if context not in known]
    if unknown:
        raise UsageError(f"no context {', '.join(repr(c) for c in unknown)} in the kubeconfig (its contexts: "
                         f"{', '.join(known) or 'none'})")
    if not chosen:
        raise UsageError("--all-contexts: the kubeconfig defines no context")
    return [Target(context, journals / folder) for context, folder in zip(chosen, _folder_names(chosen))]


def _folder_names(contexts: list[str]) -> list[str]:
    """A folder name per context: the name itself where it is a plain file name, else with every other
    character as '_' (EKS contexts are ARNs with ':' and '/'), and ``-2``... where two would collide."""
    names: list[str] = []
    for context in contexts:
        name = context if _PLAIN_NAME.fullmatch(context) else "_" + re.sub(r"[^A-Za-z0-9._-]", "_", context)
        base, n = name, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def run_fleet(args: argparse.Namespace, progress: Callable[[str], None] = print) -> int:
    """The `kirvis run` handler's fleet branch: check, run every context, print the matrix, write the report."""
    if args.context and args.all_contexts:
        raise UsageError("--context and --all-contexts: choose one")
    if not (args.context or args.all_contexts):
        raise UsageError("--parallel goes with --context or --all-contexts")
    if getattr(args, "cluster_name", None) is not None:
        raise UsageError("--cluster-name names one cluster: a fleet's metrics are labelled by each context's name")
    parallel = DEFAULT_PARALLEL if args.parallel is None else args.parallel
    if parallel < 1:
        raise UsageError(f"--parallel {parallel}: run at least one context at a time")
    experiments = find_experiments(args.paths)
    targets = fleet_targets(args.context, args.all_contexts, args.journals)
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            progress(line)

    say(f"kirvis run: {len(targets)} context(s) x {len(experiments)} experiment(s), {min(parallel, len(targets))} "
        f"at a time, journals in {args.journals}/<context>")
    runs, stopped = _run_contexts(args, targets, parallel, say)
    fleet = fleet_matrix(runs, experiments, stopped)
    for line in matrix_lines(fleet):
        progress(line)
    status = fleet_status(runs, fleet)
    if args.report:
        status = max(status, _write_report(fleet, args, progress))
    return status


def _run_contexts(
    args: argparse.Namespace, targets: list[Target], parallel: int, say: Callable[[str], None],
) -> tuple[list[ContextRun], bool]:
    runs = [ContextRun(target) for target in targets]
    running: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()
    guard = threading.Lock()

    def forward(signum: int, frame: object) -> None:
        stopping.set()
        with guard:
            children = list(running.values())
        say(f"kirvis run: {signal.Signals(signum).name}: passed to {len(children)} running context(s), "
            "the others are not started")
        for child in children:
            child.send_signal(signum)

    def play(run: ContextRun) -> None:
        with guard:
            if stopping.is_set():
                return
            run.started_ns = time.time_ns()
            child = running[run.target.context] = _start(args, run.target)
        assert child.stdout is not None
        for line in child.stdout:
            say(f"[{run.target.context}] {line.rstrip()}")
        run.exit_code = child.wait()
        with guard:
            running.pop(run.target.context, None)
        say(f"[{run.target.context}] kirvis run exited {run.exit_code}")

    handled = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)} if handled else {}
    try:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="kirvis-fleet") as pool:
            for future in [pool.submit(play, run) for run in runs]:
                future.result()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return runs, stopping.is_set()


def _start(args: argparse.Namespace, target: Target) -> subprocess.Popen:
    """One `kirvis run` of the suite against `target`, its output merged, in its own session: a Ctrl-C at the
    terminal reaches only the fleet, which passes it on, so each context gets the signal once."""
    child = subprocess.Popen(
        [sys.executable, "-m", "chaoskirvis.run.one_context"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, encoding="utf-8", errors="replace", start_new_session=True,
        env={**os.environ, "KUBERNETES_CONTEXT": target.context, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdin is not None
    child.stdin.buffer.write(pickle.dumps(_context_args(args, target)))
    child.stdin.close()
    return child


def _context_args(args: argparse.Namespace, target: Target) -> argparse.Namespace:
    """The command line for one context: the same options, its own journals and log file, no report."""
    single = copy.copy(args)
    single.context, single.all_contexts, single.parallel = [], False, None
    single.journals, single.report, single.report_format = target.folder, None, None
    if args.log_file is not None:
        single.log_file = args.log_file.with_name(f"{args.log_file.stem}-{target.folder.name}{args.log_file.suffix}")
    return single


def fleet_matrix(runs: list[ContextRun], experiments: list[Path], stopped: bool = False) -> Fleet:
    """The matrix from the journals each context's run wrote; a journal missing, older than the run, unreadable
    or recording another context than the one asked for is an error cell, never a pass."""
    fleet = Fleet()
    for run in runs:
        journals = _journal_paths(experiments, run.target.folder)
        for experiment in experiments:
            path = journals[experiment]
            cell, view = _cell(run, path, stopped)
            fleet.put(run.target.context, path.stem, cell, view.title if view else experiment.stem)
            if view is not None and not fleet.servers.get(run.target.context):
                fleet.servers[run.target.context] = cluster_of(view)[1]
    return fleet


def _cell(run: ContextRun, path: Path, stopped: bool) -> tuple[FleetCell, ExperimentView | None]:
    if run.exit_code is None:
        return FleetCell.error("not run: the fleet was stopped by a signal first"), None
    try:  # a journal older than the run's start is an earlier run's (the kernel's coarse mtime lags by a tick at
        # most, and a subprocess takes far longer to start than that before it writes anything)
        fresh = path.stat().st_mtime_ns >= run.started_ns
    except OSError:
        fresh = False
    if not fresh:
        why = "was stopped by a signal" if stopped else f"exited {run.exit_code}"
        return FleetCell.error(f"no journal of this run: kirvis run in this context {why} before writing it"), None
    try:
        view = load_view(path)
    except ReportError as exc:
        return FleetCell.error(str(exc), str(path)), None
    context, _ = cluster_of(view)
    if context is None and view.verdict.result == "error":  # it could not reach a cluster: its own cause says why
        return FleetCell.of_view(view), view
    if context != run.target.context:
        return FleetCell.error(f"the journal records context {context or 'none'}, not {run.target.context} (do the "
                               "experiment's secrets choose a KUBERNETES_CONTEXT or KUBECONFIG of their own?)",
                               str(path)), view
    return FleetCell.of_view(view), view


def fleet_status(runs: list[ContextRun], fleet: Fleet) -> int:
    """1 when any cell is an unexpected weakness, else 2 when any is an error or a context's run failed, else 0."""
    cells = [cell for row in fleet.cells.values() for cell in row.values()]
    if any(cell.result == "weakness" and not cell.as_expected for cell in cells):
        return 1
    if any(cell.result == "error" for cell in cells) or any(run.exit_code != 0 for run in runs):
        return 2
    return 0


def matrix_lines(fleet: Fleet) -> list[str]:
    """The matrix as aligned text, a row per cluster and a column per experiment, then why each error is one."""
    header = ["cluster", *fleet.experiments]
    rows = [[cluster, *((fleet.cell(cluster, e).label if fleet.cell(cluster, e) else "-") for e in fleet.experiments)]
            for cluster in fleet.clusters]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"fleet: {len(fleet.clusters)} cluster(s) x {len(fleet.experiments)} experiment(s)"]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines += [f"error in {cluster}, {experiment}: {cell.reason}" for cluster in fleet.clusters
              for experiment in fleet.experiments
              if (cell := fleet.cell(cluster, experiment)) is not None and cell.result == "error"]
    return lines


def _write_report(fleet: Fleet, args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from chaoskirvis.report import format_for, write_report

    journals = [Path(cell.journal) for row in fleet.cells.values() for cell in row.values() if cell.journal]
    if not journals:
        return 0
    fmt = args.report_format or format_for(args.report) or "html"
    try:
        written = write_report(journals, fmt, args.report)
    except (ReportError, OSError) as exc:
        print(f"kirvis report: {exc}", file=sys.stderr)
        return 2
    progress(f"{fmt} report of {len(journals)} journal(s): {written.resolve()}")
    return 0
