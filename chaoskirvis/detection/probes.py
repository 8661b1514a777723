"""Detection probes: did an alert naming this run fire within `within` seconds of its injection?

Each returns ``detected`` or ``missed`` with the matching alert and the time to detect, and records the
outcome in the run's ledger (see `chaoskirvis.ledger.probes.injections_detected`). Only alerts that
mention the run id (object names, labels and the User-Agent carry it) and that began after the run's
injection count. Put them in the method, after the inject action.
"""
from __future__ import annotations

import re
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.client import kube_api
from chaoskirvis.detection.alertmanager import alertmanager_alerts
from chaoskirvis.detection.alerts import Alert
from chaoskirvis.detection.events import event_alerts
from chaoskirvis.detection.falco import falco_alerts
from chaoskirvis.detection.http import auth_headers, public_url
from chaoskirvis.detection.http_query import http_query_alerts
from chaoskirvis.detection.receiver import running_receiver
from chaoskirvis.detection.verdict import judge, records_errors
from chaoskirvis.detection.window import window_of
from chaoskirvis.ledger.runid import current_run_id
from chaoskirvis.ledger.state import run_state
from chaoskirvis.techniques import lookup
from chaoskirvis.techniques.unit import DEFAULT_RULES_FILES

__all__ = ["alert_in_kubernetes_events", "alert_in_falco_logs", "alert_at_receiver", "alert_in_alertmanager",
           "alert_in_http_query"]


@typed_activity
@records_errors("kubernetes-events")
def alert_in_kubernetes_events(
    within: float = 60.0,
    reason: str | None = None,
    message: str | None = None,
    namespace: str | None = None,
    technique: str | None = None,
    clock_skew_seconds: float = 0.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """A Kubernetes Event about this run (e.g. a policy engine's PolicyViolation) within `within` seconds.

    `reason` and `message` are regular expressions the event must match; `namespace` narrows the
    search (default: all namespaces). Waits with a watch, so time to detect is measured on arrival.
    The Normal events the scheduler and the kubelet write for every pod they place and start
    (Scheduled, Pulled, Created, Started, ...) name the run's pod but are no alert: they never count.
    """
    window = _window(within, technique, clock_skew_seconds, configuration)
    api = kube_api(configuration, secrets)
    matches = _all(("reason", reason, lambda a: a.details["reason"] or ""),
                   ("message", message, lambda a: a.details["message"] or ""))
    return judge("kubernetes-events", event_alerts(api, window, namespace), window,
                 lambda alert: not _pod_lifecycle_event(alert.raw) and matches(alert), reason=reason, message=message)


_POD_LIFECYCLE_REPORTERS = ("default-scheduler", "kubelet")


def _pod_lifecycle_event(event: dict[str, Any]) -> bool:
    reporter = event.get("reportingComponent") or (event.get("source") or {}).get("component")
    return event.get("type") == "Normal" and reporter in _POD_LIFECYCLE_REPORTERS


@typed_activity
@records_errors("falco")
def alert_in_falco_logs(
    within: float = 60.0,
    rule: str | None = None,
    priority: str | None = None,
    namespace: str = "falco",
    label_selector: str = "app.kubernetes.io/name=falco",
    container: str | None = None,
    technique: str | None = None,
    rules_files: list[str] | None = None,
    enabled_rules: list[str] | None = None,
    clock_skew_seconds: float = 0.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """A Falco alert about this run in the Falco pods' logs (JSON output) within `within` seconds.

    `rule` is a regular expression over the rule name. Without it, and with `technique`, the alert
    must come from one of the rules the technique's catalog unit names (see `kirvis catalog`) that
    this detector can raise: `rules_files` lists the rule files the Falco pods load (default: only
    ``falco_rules.yaml``, as a default install; add ``falco-incubating_rules.yaml``,
    ``falco-sandbox_rules.yaml``, or ``k8s_audit_rules.yaml`` when the k8saudit plugin runs there),
    and `enabled_rules` the rules you enabled that upstream ships ``enabled: false``. When none of
    the technique's rules can fire there, or the unit names none, the check is an error (it raises,
    naming what to load or enable), never a wait ending in ``missed``. Without `rule` and
    `technique`, any rule counts. `priority` is a regular expression over Falco's priority. Logs are
    followed, so alerts count on arrival.
    """
    rule, not_loaded = (rule, []) if rule else _expected_falco_rules(technique, rules_files, enabled_rules)
    window = _window(within, technique, clock_skew_seconds, configuration)
    api = kube_api(configuration, secrets)
    matches = _all(("rule", rule, lambda a: a.name), ("priority", priority, lambda a: a.details["priority"] or ""))
    alerts = falco_alerts(api, window, namespace=namespace, label_selector=label_selector, container=container)
    return judge("falco", alerts, window, matches, rule=rule, priority=priority,
                 **({"rules_not_loaded": not_loaded} if not_loaded else {}))


@typed_activity
@records_errors("webhook")
def alert_at_receiver(
    within: float = 60.0,
    name: str | None = None,
    technique: str | None = None,
    clock_skew_seconds: float = 0.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """An alert about this run posted to the receiver of `start_alert_receiver` within `within` seconds.

    `name` is a regular expression over the alert's name (Falco rule, alertname, title). Only POSTs
    carrying the receiver's bearer token count; the outcome reports the others as ``rejected_posts``
    (source address, time, reason; the first 20) and ``rejected_posts_count``: a forged alert can make
    the check miss, never pass.
    """
    window = _window(within, technique, clock_skew_seconds, configuration)
    receiver = running_receiver()
    outcome = judge("webhook", receiver.alerts_until(window), window, _all(("name", name, lambda a: a.name)),
                    name=name, receiver=receiver.url)
    # The rejections up to the end of the wait; `outcome` is the dict judge recorded in the run's state.
    outcome.update(receiver.rejected_posts(window.run_id))
    return outcome


@typed_activity
@records_errors("alertmanager")
def alert_in_alertmanager(
    url: str,
    within: float = 60.0,
    matchers: list[str] | None = None,
    include_silenced: bool = False,
    include_inhibited: bool = False,
    poll_interval: float = 0.05,
    token_secret: str | None = None,
    ca_file: str | None = None,
    technique: str | None = None,
    clock_skew_seconds: float = 0.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """An alert about this run in Alertmanager (API v2) within `within` seconds.

    `matchers` are Alertmanager matchers (e.g. ``alertname="FalcoAlert"``, ``severity=~"critical|error"``),
    all of which must hold. Silenced and inhibited alerts do not count unless asked. Alertmanager has
    no long-poll, so it is asked every `poll_interval` seconds. `token_secret` names a secret holding a
    bearer token; `ca_file` a CA bundle for HTTPS.
    """
    window = _window(within, technique, clock_skew_seconds, configuration)
    alerts = alertmanager_alerts(url, window, matchers=matchers or [], include_silenced=include_silenced,
                                 include_inhibited=include_inhibited, interval=poll_interval,
                                 headers=auth_headers(secrets, token_secret), ca_file=ca_file)
    return judge("alertmanager", alerts, window, lambda a: True, url=public_url(url), matchers=matchers or [],
                 include_silenced=include_silenced)


@typed_activity
@records_errors("http-query")
def alert_in_http_query(
    url: str,
    within: float = 60.0,
    items_path: str = "$[*]",
    match_regex: str | None = None,
    time_path: str | None = None,
    name_path: str | None = None,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    poll_interval: float = 0.5,
    token_secret: str | None = None,
    ca_file: str | None = None,
    technique: str | None = None,
    clock_skew_seconds: float = 0.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """An item about this run in any HTTP JSON API (Loki, Elasticsearch, a SIEM) within `within` seconds.

    `items_path` is a JSONPath to the list of hits (e.g. ``$.hits.hits[*]``); an item counts when it
    mentions the run id and matches `match_regex`. `time_path` (JSONPath inside an item) gives when it
    began, so older hits are excluded; `name_path` its name. Asked every `poll_interval` seconds.
    """
    window = _window(within, technique, clock_skew_seconds, configuration)
    alerts = http_query_alerts(url, window, method=method, body=body, items_path=items_path,
                               match_regex=match_regex, time_path=time_path, name_path=name_path,
                               interval=poll_interval, headers=auth_headers(secrets, token_secret), ca_file=ca_file)
    return judge("http-query", alerts, window, lambda a: True, url=public_url(url), items_path=items_path,
                 match_regex=match_regex)


def _window(within: float, technique: str | None, clock_skew: float, configuration: Configuration | None):
    return window_of(run_state(current_run_id(configuration)), within, technique, clock_skew)


def _all(*criteria: tuple[str, str | None, Any]):
    compiled = []
    for what, pattern, read in criteria:
        if pattern:
            try:
                compiled.append((re.compile(pattern), read))
            except re.error as exc:
                raise ActivityFailed(f"invalid {what} pattern {pattern!r}: {exc}") from None

    def matches(alert: Alert) -> bool:
        return all(regex.search(read(alert)) for regex, read in compiled)

    return matches


def _expected_falco_rules(technique: str | None, rules_files: list[str] | None,
                          enabled_rules: list[str] | None) -> tuple[str | None, list[str]]:
    """The pattern over the technique's rules this detector can raise, and the names of those it cannot."""
    if not technique:
        return None, []
    unit = lookup(technique)
    files = list(DEFAULT_RULES_FILES if rules_files is None else rules_files)
    can, cannot = unit.detection.loadable(files, enabled_rules or ())
    if not unit.detection.rules:
        raise ActivityFailed(f"technique {technique} names no detector rule that fires for it "
                             f"({unit.detection.note or 'see kirvis catalog'}): pass rule=... naming the rule "
                             "your detector raises for it")
    if not can:
        lacking = "; ".join(f"{r.describe()}: {', '.join(r.missing(files, enabled_rules or ()))}" for r in cannot)
        raise ActivityFailed(
            f"technique {technique}'s rules are not loaded by this detector (rules_files: {', '.join(files) or 'none'}"
            f"{'; enabled_rules: ' + ', '.join(enabled_rules) if enabled_rules else ''}): {lacking}. Name the "
            "files the detector loads in rules_files (and the rules you enabled in enabled_rules), or pass rule=...")
    return "|".join(f"^{re.escape(r.name)}$" for r in can), [r.name for r in cannot]
