"""Run experiments (files or folders of them) one after the other in this process, as `chaos run` runs one.

Each experiment gets fresh settings, its own run id (and so its own in-process ledger), the evidence
control (added as a global control unless the experiment or the settings declare it), and its own
journal. Its verdict is stricter than `chaos run`'s exit code: see `chaoskirvis.evidence.verdict`.
"""
from __future__ import annotations

import copy
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslib import merge_vars
from chaoslib.control import controls, get_global_controls, load_global_controls, set_global_controls
from chaoslib.exceptions import ChaosException, InvalidSource
from chaoslib.experiment import ensure_experiment_is_valid, run_experiment
from chaoslib.settings import CHAOSTOOLKIT_CONFIG_PATH, load_settings
from chaoslib.types import Experiment, Schedule, Settings
from chaostoolkit import encoder
from chaostoolkit.check import check_hypothesis_strategy_spelling
from chaostoolkit.runtime import get_python_runtime_info
from chaostoolkit.signals import SignalRecorder

from chaoskirvis.controls.evidence import EXPECT_KEY, known_secrets, use_experiment_source
from chaoskirvis.evidence.redaction import redact
from chaoskirvis.evidence.journal import recorded_outcomes
from chaoskirvis.evidence.section import not_run_journal
from chaoskirvis.evidence.verdict import Verdict, verdict_of
from chaoskirvis.experiment_file import parse_experiment_file
from chaoskirvis.ledger.runid import reset_run_id, validate_run_id

if TYPE_CHECKING:  # cryptography costs ~50 ms to import: only a run that signs needs it
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["SuiteOptions", "ExperimentResult", "UsageError", "find_experiments", "run_suite", "exit_status",
           "EVIDENCE_MODULE"]

EXPERIMENT_SUFFIXES = (".yaml", ".yml", ".json")
EVIDENCE_MODULE = "chaoskirvis.controls.evidence"
DEFAULT_STRATEGY = "default"
# Chaos Toolkit's "default" plays no rollback of a failed run, and an error must not leave anything behind.
DEFAULT_ROLLBACK_STRATEGY = "always"


class UsageError(Exception):
    """The command line names nothing to run, or something that cannot be an experiment."""


@dataclass(frozen=True)
class SuiteOptions:
    """The `chaos run` options that apply to every experiment of the suite."""

    journals: Path
    settings_path: str = CHAOSTOOLKIT_CONFIG_PATH
    variables: dict[str, Any] = field(default_factory=dict)
    var_files: tuple[str, ...] = ()
    rollback_strategy: str | None = None
    hypothesis_strategy: str | None = None
    hypothesis_frequency: float = 1.0
    fail_fast: bool = False
    expect: str | None = None  # "weakness": every experiment of this run is a negative control
    sign_key: Ed25519PrivateKey | None = None  # signs each journal once written (chaoskirvis.evidence.signing)


@dataclass
class ExperimentResult:
    source: Path
    verdict: Verdict
    journal: Path | None = None
    digest: str | None = None
    run_id: str | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stopped_by_signal: bool = False
    signature: str | None = None  # with a sign key: "signed by keyid ...", or why it could not be signed
    restored: bool | None = None  # the journal's ledger: was everything the run changed put back?


def find_experiments(paths: list[Path]) -> list[Path]:
    """The experiment files named, and those directly in the folders named (sorted), without duplicates."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix in EXPERIMENT_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"no such experiment file or folder: {path}")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise UsageError(f"no experiment (*.yaml, *.yml, *.json) in {', '.join(map(str, paths))}")
    return unique


def run_suite(
    paths: list[Path], options: SuiteOptions, progress: Callable[[str], None] = print,
) -> list[ExperimentResult]:
    """Run every experiment found under `paths`, one journal each in ``options.journals``.

    Stops early only when a signal (Ctrl-C, SIGTERM) interrupted an experiment.
    """
    experiments = find_experiments(paths)
    missing = [name for name in options.var_files if not Path(name).is_file()]
    if missing:
        raise UsageError(f"no such var file: {', '.join(missing)}")
    try:
        experiment_vars = merge_vars(options.variables, list(options.var_files))
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read the variables: {exc}") from None
    declared = _declared_keys(experiments)
    unknown = sorted(set(options.variables) - set().union(*declared.values()))
    if unknown:
        raise UsageError(
            f"--var {', '.join(unknown)}: no experiment declares such a configuration key, so Chaos Toolkit would "
            "ignore it (check the spelling; declared keys: "
            f"{', '.join(sorted(set().union(*declared.values()))) or 'none'})"
        )
    try:
        options.journals.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write journals to {options.journals}: {exc.strerror or exc}") from None
    if not os.access(options.journals, os.W_OK):
        raise UsageError(f"cannot write journals to {options.journals}: permission denied")
    journal_paths = _journal_paths(experiments, options.journals)
    progress(f"kirvis run: {len(experiments)} experiment(s), journals in {options.journals}")
    results = []
    for index, path in enumerate(experiments, 1):
        label = f"[{index:>{len(str(len(experiments)))}}/{len(experiments)}]"
        run_id = _run_id_of(index, len(experiments))
        ignored = sorted(set(options.variables) - declared.get(path, set()))
        if ignored:
            progress(f"{label} note    {path.name} declares no {', '.join(ignored)}: --var {', '.join(ignored)} "
                     "does not apply to it")
        result = _run_one(path, journal_paths[path], options, experiment_vars, label, progress, run_id)
        results.append(result)
        progress(_end_line(label, result))
        if result.stopped_by_signal:
            progress(f"stopped by a signal: {len(experiments) - index} experiment(s) not run")
            break
    counts = Counter(r.verdict.label for r in results)
    progress(f"{len(results)} experiment(s): " + ", ".join(f"{n} {label}" for label, n in sorted(counts.items())))
    return results


def exit_status(results: list[ExperimentResult]) -> int:
    """1 when any experiment showed an unexpected weakness, else 2 when any ended in error, else 0."""
    if any(r.verdict.result == "weakness" and not r.verdict.as_expected for r in results):
        return 1
    if any(r.verdict.result == "error" for r in results):
        return 2
    return 0


def _declared_keys(experiments: list[Path]) -> dict[Path, set[str]]:
    """The configuration keys each experiment declares (none for a file that cannot be parsed)."""
    declared = {}
    for path in experiments:
        try:
            configuration = parse_experiment_file(path).get("configuration") or {}
        except Exception:  # reported when the experiment itself is loaded
            configuration = {}
        declared[path] = set(configuration) if isinstance(configuration, dict) else set()
    return declared


def _load_experiment(path: Path) -> Experiment:
    """chaoslib's `load_experiment` of a local file (its loader controls around it), parsed by libyaml."""
    with controls(level="loader", context=str(path)) as control:
        if not path.exists():  # removed since it was found: chaoslib's words
            raise InvalidSource(f'Path "{path}" does not exist.')
        parsed = parse_experiment_file(path)
        control.with_state(parsed)
        return parsed


def _run_id_of(index: int, total: int) -> str | None:
    """Each experiment is its own run: a KIRVIS_RUN_ID given for the suite gets a suffix per experiment."""
    given = os.environ.get("KIRVIS_RUN_ID")
    if not given or total == 1:
        return validate_run_id(given) if given else None
    suffix = f"-{index}"
    return validate_run_id(given[:20 - len(suffix)].rstrip("-") + suffix)


def _run_one(
    path: Path, journal_path: Path, options: SuiteOptions, experiment_vars: Any, label: str,
    progress: Callable[[str], None], run_id: str | None,
) -> ExperimentResult:
    settings: Settings = load_settings(options.settings_path) or {}
    reset_run_id(run_id)
    use_experiment_source(str(path))
    experiment = None
    try:
        load_global_controls(settings)
        experiment = _load_experiment(path)
        ensure_experiment_is_valid(experiment)
        if get_python_runtime_info(experiment) is not None:
            raise ChaosException("it declares runtime.python (an isolated environment): run it with `chaos run`")
    except Exception as exc:  # a file that cannot be loaded or validated fails itself, not the suite
        return _not_run(path, journal_path, experiment, str(exc), options)
    title = redact(str(experiment.get("title") or path.stem), known_secrets(experiment, experiment_vars))[0]
    progress(f"{label} start   {path.name}: {title}")
    if options.expect:
        experiment.setdefault("configuration", {})[EXPECT_KEY] = options.expect
    _ensure_evidence_control(experiment)
    strategy, schedule = _strategies(settings, experiment, options)
    recorder = SignalRecorder()
    started = time.monotonic()
    try:
        journal = run_experiment(
            experiment, settings=settings, strategy=strategy, schedule=schedule,
            experiment_vars=copy.deepcopy(experiment_vars),  # chaoslib pops the values it uses
            event_handlers=[recorder],
        )
    except ChaosException as exc:  # its configuration or secrets could not be loaded: nothing ran
        return _not_run(path, journal_path, experiment, str(exc), options)
    finally:
        use_experiment_source(None)
    seconds = time.monotonic() - started
    journal_path.write_text(json.dumps(journal, indent=2, ensure_ascii=False, default=encoder))
    signature = _sign(journal_path, options.sign_key) if options.sign_key is not None else None
    section = journal.get("chaoskirvis") or {}
    outcomes = recorded_outcomes(journal)
    return ExperimentResult(
        path, verdict_of(journal, outcomes), journal=journal_path, digest=(section.get("digest") or {}).get("value"), run_id=section.get("run_id"),
        outcomes=dict(Counter(str(o.get("outcome")) for o in outcomes)), seconds=seconds,
        stopped_by_signal=bool(recorder.received) and journal.get("status") == "interrupted",
        signature=signature, restored=(section.get("ledger") or {}).get("restored"),
    )


def _not_run(path: Path, journal_path: Path, experiment: Any, reason: str, options: SuiteOptions) -> ExperimentResult:
    """An experiment that could not be run still gets a (sealed) journal, so reports show it as an error."""
    journal = not_run_journal(str(path), experiment, reason, options.expect or "held")
    journal_path.write_text(json.dumps(journal, indent=2, ensure_ascii=False, default=encoder))
    signature = _sign(journal_path, options.sign_key) if options.sign_key is not None else None
    return ExperimentResult(path, verdict_of(journal, []), journal=journal_path,
                            digest=journal["chaoskirvis"]["digest"]["value"], signature=signature)


def _ensure_evidence_control(experiment: Experiment) -> None:
    declared = [*experiment.get("controls", []), *get_global_controls()]
    if not any((c.get("provider") or {}).get("module") == EVIDENCE_MODULE for c in declared):
        set_global_controls([
            *get_global_controls(),
            {"name": "kirvis-evidence", "provider": {"type": "python", "module": EVIDENCE_MODULE}},
        ])


def _strategies(settings: Settings, experiment: Experiment, options: SuiteOptions) -> tuple[Any, Schedule]:
    """The hypothesis strategy and schedule, by `chaos run`'s precedence: settings, experiment, command line."""
    runtime = settings.setdefault("runtime", {})
    runtime.setdefault("rollbacks", {}).setdefault("strategy", DEFAULT_ROLLBACK_STRATEGY)
    runtime.setdefault("hypothesis", {}).setdefault("strategy", DEFAULT_STRATEGY)
    declared = experiment.get("runtime")
    if declared:
        runtime["rollbacks"]["strategy"] = declared.get("rollbacks", {}).get("strategy", DEFAULT_ROLLBACK_STRATEGY)
        runtime["hypothesis"]["strategy"] = declared.get("hypothesis", {}).get("strategy", DEFAULT_STRATEGY)
    if options.rollback_strategy:
        runtime["rollbacks"]["strategy"] = options.rollback_strategy
    if options.hypothesis_strategy:
        runtime["hypothesis"]["strategy"] = options.hypothesis_strategy
    strategy = check_hypothesis_strategy_spelling(runtime["hypothesis"]["strategy"])
    return strategy, Schedule(continuous_hypothesis_frequency=options.hypothesis_frequency, fail_fast=options.fail_fast)


def _journal_paths(experiments: list[Path], folder: Path) -> dict[Path, Path]:
    """One journal file per experiment, named after it (``-2``, ``-3``... when two share a name)."""
    taken: Counter[str] = Counter()
    paths = {}
    for experiment in experiments:
        taken[experiment.stem] += 1
        suffix = "" if taken[experiment.stem] == 1 else f"-{taken[experiment.stem]}"
        paths[experiment] = folder / f"{experiment.stem}{suffix}.json"
    return paths


def _sign(journal_path: Path, key: Ed25519PrivateKey) -> str:
    """Sign the journal just written; what its end line says about the signature."""
    from chaoskirvis.evidence.signing import SigningError, sign_file

    try:
        return f"signed by keyid {sign_file(journal_path, key)}"
    except SigningError as exc:
        return f"NOT SIGNED: {exc}"


def _duration(seconds: float) -> str:
    """A run's duration as people read it: milliseconds under a second (most blocked runs take tens)."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _end_line(label: str, result: ExperimentResult) -> str:
    word = result.verdict.label.upper()
    if result.journal is None:
        return f"{label} {word:<8} {result.source.name}: {result.verdict.reason}"
    outcomes = ", ".join(f"{n} {outcome}" for outcome, n in sorted(result.outcomes.items())) or "no security check"
    line = (f"{label} {word:<8} {result.source.name} in {_duration(result.seconds)} "
            f"(run {result.run_id or '?'}): {outcomes}")
    line += f"\n{' ' * len(label)} why      {result.verdict.reason}"
    command = f"kirvis cleanup --run-id {result.run_id}"
    if result.restored is False and result.run_id and command not in result.verdict.reason:
        line += f"\n{' ' * len(label)} left     not everything the run changed was restored: run `{command}`"
    elif result.restored and result.stopped_by_signal:
        line += f"\n{' ' * len(label)} restored everything the interrupted run changed"
    signature = f"  {result.signature}" if result.signature else ""
    return f"{line}\n{' ' * len(label)} journal  {result.journal}  {result.digest or 'not sealed'}{signature}"
