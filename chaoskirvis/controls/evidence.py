"""The evidence control: writes a ``chaoskirvis`` section into the journal, redacts secrets, seals it.

Declare it in an experiment::

    controls:
      - name: kirvis-evidence
        provider: {type: python, module: chaoskirvis.controls.evidence}

or for every experiment in the Chaos Toolkit settings (``~/.chaostoolkit/settings.yaml``)::

    controls:
      kirvis-evidence:
        provider: {type: python, module: chaoskirvis.controls.evidence}

At the end of the run (after the rollbacks) it adds the run id, the experiment's SHA-256, the cluster
and the identity the API server saw, the tool versions, every security outcome with its evidence and
the activity it came from, the ATT&CK ids, the ledger, and the verdict; then it redacts every known
secret value anywhere in the journal and seals it with a digest (`kirvis verify` checks it). Chaos
Toolkit writes the journal file after this control, so what it changes is what lands in the file.
From the start of the run, known secret values are also hidden in the Chaos Toolkit log: from validation
on (`validate_control`, before Chaos Toolkit logs the experiment's title), for the values the experiment
file and the command line's ``--var``/``--var-file`` make known, then from `configure_control` for the
resolved ones. The password of any URL in the experiment or its configuration is a known value too.

The Kubernetes connection comes from the secrets scope ``kubernetes`` when the experiment has one
(else the first scope that holds Kubernetes keys), then the environment: as the activities see it.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chaoslib.types import Activity, Configuration, Experiment, Journal, Run, Secrets, Settings
from logzero import logger

from chaoskirvis.evidence.cluster import ask_ahead, cluster_facts
from chaoskirvis.evidence.digest import seal, to_plain
from chaoskirvis.evidence.journal import activity_runs
from chaoskirvis.evidence.ledger import RESTORE_FUNCTION
from chaoskirvis.evidence.redaction import install_log_redaction, redact, secret_values, url_credentials
from chaoskirvis.evidence.section import ExperimentSource, build_section, collect_outcomes, experiment_source
from chaoskirvis.ledger.actions import restore_run
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state

__all__ = [
    "validate_control", "known_secrets", "configure_control", "before_activity_control", "after_activity_control",
    "after_experiment_control",
    "use_experiment_source",
]

_KUBERNETES_KEYS = ("KUBECONFIG", "KUBERNETES_", "CHAOSTOOLKIT_IN_POD")
EXPECT_KEY = "kirvis_expect"  # configuration: "weakness" marks a negative control


class _Session:
    """What the control learns while one experiment runs."""

    def __init__(self, secrets: set[str], source: ExperimentSource | None = None):
        self.secrets = secrets
        self.source = source
        self.marks: dict[int, tuple[int, int]] = {}
        self.attributed: dict[int, list[dict[str, Any]]] = {}


_session: _Session | None = None
_declared_source: str | None = None


def use_experiment_source(path: str | None) -> None:
    """Tell the control which file the next experiment is loaded from (for runners other than `chaos run`)."""
    global _declared_source
    _declared_source = path


def known_secrets(experiment: Experiment, experiment_vars: Any = None) -> set[str]:
    """The secret values an experiment and its ``(configuration, secrets)`` variables make known before it
    runs, now hidden in the Chaos Toolkit log (so its title, logged first, cannot show one)."""
    config_vars, secret_vars = experiment_vars if isinstance(experiment_vars, tuple) else ({}, {})
    configuration = {**(experiment.get("configuration") or {}), **(config_vars or {})}
    values = secret_values(declared_secrets=experiment.get("secrets"), resolved_secrets=secret_vars,
                           configuration=configuration, environ=os.environ)
    values |= url_credentials(experiment, config_vars, secret_vars)
    install_log_redaction(values)
    return values


def validate_control(control: Any = None) -> None:
    """Chaos Toolkit validates the controls before it logs the title: hide `chaos run`'s known secrets from then."""
    try:
        import click
        from chaoslib import merge_vars

        from chaoskirvis.experiment_file import parse_experiment_file

        context = click.get_current_context(silent=True)
        while context is not None and context.command.name != "run":
            context = context.parent
        source = context.params.get("source") if context is not None else None
        if not isinstance(source, str) or not os.path.isfile(source):
            return
        experiment_vars = merge_vars(context.params.get("var") or {}, list(context.params.get("var_file") or []))
        known_secrets(parse_experiment_file(Path(source)), experiment_vars)
    except Exception as exc:  # configure_control still learns the secrets when the run starts
        logger.debug(f"evidence control: could not read the experiment's secrets at validation: {exc}")


def configure_control(
    experiment: Experiment = None, configuration: Configuration = None, secrets: Secrets = None,
) -> None:
    """Start of a run: hash the experiment file, learn the secret values and hide them in the log."""
    global _session
    experiment = experiment or {}
    values = secret_values(
        declared_secrets=experiment.get("secrets"), resolved_secrets=secrets, configuration=configuration,
        environ=os.environ,
    )
    values |= url_credentials(experiment, configuration, secrets)
    install_log_redaction(values)
    _session = _Session(values, experiment_source(_source_path(), experiment))
    ask_ahead(configuration, _kubernetes_scope(secrets or {}))


def before_activity_control(context: Activity, configuration: Configuration = None, **_: Any) -> None:
    ledger = run_state(current_run_id(configuration))
    _current_session().marks[threading.get_ident()] = (len(ledger.outcomes), len(ledger.detections))


def after_activity_control(
    context: Activity, state: Run = None, configuration: Configuration = None, **_: Any,
) -> None:
    """Attribute the outcomes the run's ledger gained while this activity played to its journal run.

    Activities played in the background at the same time may claim each other's outcomes.
    """
    session = _current_session()
    mark = session.marks.pop(threading.get_ident(), None)
    if mark is None or not isinstance(state, dict):
        return
    ledger = run_state(current_run_id(configuration))
    gained = [*ledger.outcomes[mark[0]:], *ledger.detections[mark[1]:]]
    session.attributed.setdefault(id(state), []).extend(gained)


def after_experiment_control(
    context: Experiment, state: Journal, configuration: Configuration = None, secrets: Secrets = None,
    settings: Settings = None, **_: Any,
) -> None:
    """End of the run: restore what a failed or interrupted run left, add the evidence section, redact it,
    seal it (in place).

    Chaos Toolkit's default rollback strategy plays no rollback when the run *failed* (an error, such as
    an injection that could not be judged): then this control removes what the run created itself, so
    an error never leaves anything in the cluster; for a failed run an explicit strategy (``never``...)
    is respected. An *interrupted* run (Ctrl-C, SIGTERM) is restored whatever the strategy, unless its
    rollbacks already restored it; a further SIGINT or SIGTERM during that restore waits for its end.
    What could not be restored is logged with the `kirvis cleanup --run-id` command that finishes it.
    """
    global _session
    session, _session = _current_session(), None
    try:
        fallback = _restore_skipped_rollbacks(state, settings or {}, configuration or {}, secrets or {})
        _seal_journal(state, context, configuration or {}, secrets or {}, session, fallback)
    except Exception as exc:  # chaoslib would only log this at debug level: make it visible
        logger.error(f"evidence control: could not write the evidence into the journal: {exc}")
        raise


def _restore_skipped_rollbacks(
    journal: Journal, settings: Settings, configuration: Configuration, secrets: Secrets,
) -> dict[str, Any] | None:
    """Restore the run when Chaos Toolkit skipped the rollbacks of a failed run by its default strategy, or
    did not restore an interrupted run (any strategy: ``default`` and ``never`` play no rollback then, and
    a signal during the rollbacks cuts them short)."""
    strategy = ((settings.get("runtime") or {}).get("rollbacks") or {}).get("strategy", "default")
    run_id = current_run_id(configuration)
    status = journal.get("status")
    if status == "interrupted":
        if _restored_by_rollbacks(journal):
            return None
    elif status != "failed" or strategy != "default" or journal.get("rollbacks"):
        return None
    if not run_state(run_id).namespaces:
        return None
    why = "was interrupted and was not restored by its rollbacks" if status == "interrupted" else \
        "failed and Chaos Toolkit played no rollback"
    logger.warning(f"[{run_id}] the run {why}: restoring what it created")
    try:
        with _signals_held(run_id):
            return {"by": "evidence control", **restore_run(configuration=configuration, secrets=secrets)}
    except Exception as exc:
        command = f"kirvis cleanup --run-id {run_id}"
        logger.error(f"[{run_id}] restore after the {status} run did not complete: {exc}"
                     + ("" if command in str(exc) else f"; finish it with `{command}`"))
        return {"by": "evidence control", "error": str(exc)}


def _restored_by_rollbacks(journal: Journal) -> bool:
    """Whether a rollback restoring the run (`restore_run`) played to success."""
    return any(played.phase == "rollback" and played.provider_function == RESTORE_FUNCTION
               and played.status == "succeeded" for played in activity_runs(journal))


@contextmanager
def _signals_held(run_id: str):
    """Hold SIGINT and SIGTERM until the restore ends (bounded by its timeouts): the run is ending anyway, they are logged only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def hold(signum: int, frame: Any) -> None:
        logger.warning(f"[{run_id}] {signal.Signals(signum).name} received: the restore finishes first")

    previous = {signum: signal.signal(signum, hold) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _seal_journal(
    journal: Journal, experiment: Experiment, configuration: Configuration, secrets: Secrets, session: _Session,
    fallback_restore: dict[str, Any] | None = None,
) -> None:
    facts = cluster_facts(configuration, _kubernetes_scope(secrets))
    run_id = current_run_id(configuration)
    ledger = run_state(run_id)
    outcomes = collect_outcomes(journal, [*ledger.outcomes, *ledger.detections], session.attributed)
    known = session.secrets | secret_values(credentials=facts.credentials)
    install_log_redaction(known)
    plain = to_plain(journal)
    source = session.source or experiment_source(_source_path(), experiment)
    plain["chaoskirvis"] = build_section(
        journal=journal, experiment=experiment, source=source, facts=facts, state=ledger, outcomes=outcomes,
        expected=str(configuration.get(EXPECT_KEY) or "held"), fallback_restore=fallback_restore,
    )
    if isinstance(plain["chaoskirvis"].get("ledger"), dict):  # what the run's sweeps of expired leftovers did
        plain["chaoskirvis"]["ledger"]["expired_swept"] = to_plain(list(ledger.expired_swept))
    redacted, replacements = redact(plain, known)
    redacted["chaoskirvis"]["redaction"] = {"secret_values_known": len(known), "replacements": replacements}
    digest = seal(redacted)
    journal.clear()
    journal.update(redacted)
    verdict = redacted["chaoskirvis"]["verdict"]
    logger.info(f"[{run_id}] evidence: {verdict['label']}: {verdict['reason']}; journal sealed with {digest}")


def _current_session() -> _Session:
    """The session of the running experiment (an empty one if `configure_control` never ran)."""
    global _session
    if _session is None:
        _session = _Session(set())
    return _session


def _source_path() -> str | None:
    """The experiment file: as declared by a runner, else `chaos run`'s SOURCE argument."""
    if _declared_source:
        return _declared_source
    try:
        import click
    except ImportError:
        return None
    context = click.get_current_context(silent=True)
    while context is not None:
        source = context.params.get("source")
        if context.command.name == "run" and isinstance(source, str):
            return source
        context = context.parent
    return None


def _kubernetes_scope(secrets: Secrets) -> dict[str, Any]:
    if isinstance(secrets.get("kubernetes"), dict):
        return secrets["kubernetes"]
    for scope in secrets.values():
        if isinstance(scope, dict) and any(str(k).startswith(_KUBERNETES_KEYS) for k in scope):
            return scope
    return {}
