"""Validating- and MutatingWebhookConfigurations as the sandbox reads them: defaults, validation, compiled form.

Follows kubernetes `pkg/apis/admissionregistration/v1/defaults.go` (failurePolicy Fail, matchPolicy
Equivalent, namespaceSelector and objectSelector `{}`, timeoutSeconds 10, a rule's scope `*`, a service's
port 443, and for mutating webhooks reinvocationPolicy Never) and `pkg/apis/admissionregistration/validation/
validation.go` as the v1 API validates a create (field paths and wording): webhook names fully qualified
and unique, sideEffects required and `None` or `NoneOnDryRun` (an update may keep `Unknown` or `Some` when
every old webhook already had side effects: the objects an upgraded cluster still holds), admissionReviewVersions
required with at least one of v1 and v1beta1, clientConfig with exactly one of url (https, a host, no user,
query or fragment) and service (namespace, name, a port in 1..65535, a path starting with '/'),
timeoutSeconds in 1..30, the supported values of failurePolicy, matchPolicy, reinvocationPolicy, the
rules' operations and scope, and matchConditions (at most 64, unique qualified names, CEL that compiles to a
bool with `object`, `oldObject`, `request`, `namespaceObject` and `authorizer` declared).

The defaults are applied by the webhook admission plugins (`webhooks.WebhookConfigurationAdmission`) when a
configuration is written, so the stored object carries them as kube-apiserver's does.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from chaoskirvis.sandbox.cel_eval import CelCompileError, Expression, compile_expression
from chaoskirvis.sandbox.resources import dns_subdomain_errors, find_resource
from chaoskirvis.sandbox.selectors import LabelSelector, label_selector_from_object
from chaoskirvis.sandbox.store import Cause, duplicate, invalid, required, unsupported
from chaoskirvis.sandbox.vap_matching import MatchResources
from chaoskirvis.sandbox.vap_policy import match_condition_errors

_VALIDATING = find_resource("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
_MUTATING = find_resource("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
assert _VALIDATING is not None and _MUTATING is not None
VALIDATING_WEBHOOK_CONFIGURATIONS = _VALIDATING
MUTATING_WEBHOOK_CONFIGURATIONS = _MUTATING

_FAILURE_POLICIES = ("Fail", "Ignore")
_MATCH_POLICIES = ("Equivalent", "Exact")
_REINVOCATION_POLICIES = ("IfNeeded", "Never")
_SIDE_EFFECTS = ("None", "NoneOnDryRun", "Some", "Unknown")
_NO_SIDE_EFFECTS = ("None", "NoneOnDryRun")
REVIEW_VERSIONS = ("v1", "v1beta1")
_OPERATIONS = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
_SCOPES = ("*", "Cluster", "Namespaced")
_MAX_MATCH_CONDITIONS = 64
# What a webhook's matchConditions see (webhook/matchconditions: namespaceObject is declared, and null).
_CONDITION_VARIABLES = frozenset({"object", "oldObject", "request", "namespaceObject", "authorizer",
                                  "authorizer.requestResource"})


@dataclass(frozen=True)
class Webhook:
    """One webhook of a configuration, defaulted and compiled: what the dispatchers read."""

    configuration: str
    name: str
    mutating: bool
    client_config: dict[str, Any]
    ca_bundle: bytes | None  # PEM, decoded from clientConfig.caBundle
    failure_policy: str
    match_policy: str
    side_effects: str | None
    timeout_seconds: int
    review_versions: tuple[str, ...]
    reinvocation_policy: str  # "Never" for validating webhooks
    match: MatchResources  # rules as resourceRules, with the two selectors
    match_conditions: tuple[tuple[str, Expression], ...]

    @property
    def fails_closed(self) -> bool:
        return self.failure_policy != "Ignore"


def apply_defaults(configuration: dict[str, Any], mutating: bool) -> None:
    """SetDefaults_ValidatingWebhook / SetDefaults_MutatingWebhook (and their rules' and services'), in place."""
    for hook in configuration.get("webhooks") or []:
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        for selector in ("namespaceSelector", "objectSelector"):
            if hook.get(selector) is None:
                hook[selector] = {}
        hook.setdefault("timeoutSeconds", 10)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        for rule in hook.get("rules") or []:
            if isinstance(rule, dict) and rule.get("scope") is None:
                rule["scope"] = "*"
        service = (hook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict) and service.get("port") is None:
            service["port"] = 443


def validate(configuration: dict[str, Any], old: dict[str, Any] | None, mutating: bool) -> list[Cause]:
    """Field errors of a webhook configuration written through admissionregistration.k8s.io/v1 (empty: valid).

    `old` is the stored configuration on an update: when all of its webhooks declared no side effects (or it is
    a create), sideEffects must be None or NoneOnDryRun, as `requireNoSideEffects` for v1 decides."""
    require_no_side_effects = old is None or all(
        (hook or {}).get("sideEffects") in _NO_SIDE_EFFECTS for hook in old.get("webhooks") or [])
    causes: list[Cause] = []
    seen: set[str] = set()
    for index, hook in enumerate(configuration.get("webhooks") or []):
        path = f"webhooks[{index}]"
        hook = hook if isinstance(hook, dict) else {}
        name = str(hook.get("name") or "")
        causes += _name_errors(name, f"{path}.name")
        if name and name in seen:
            causes.append(duplicate(f"{path}.name", name))
        seen.add(name)
        causes += _hook_errors(hook, path, mutating, require_no_side_effects)
    return causes


def _name_errors(name: str, path: str) -> list[Cause]:
    """IsFullyQualifiedName: a DNS subdomain of at least three segments."""
    if not name:
        return [required(path)]
    errors = [invalid(path, name, message) for message in dns_subdomain_errors(name)]
    if len(name.split(".")) < 3:
        errors.append(invalid(path, name, "should be a domain with at least three segments separated by dots"))
    return errors


def _hook_errors(hook: dict[str, Any], path: str, mutating: bool, require_no_side_effects: bool) -> list[Cause]:
    causes: list[Cause] = []
    for index, rule in enumerate(hook.get("rules") or []):
        causes += _rule_errors(rule if isinstance(rule, dict) else {}, f"{path}.rules[{index}]")
    for key, supported in (("failurePolicy", _FAILURE_POLICIES), ("matchPolicy", _MATCH_POLICIES),
                           *((("reinvocationPolicy", _REINVOCATION_POLICIES),) if mutating else ())):
        value = hook.get(key)
        if value is not None and value not in supported:
            causes.append(unsupported(f"{path}.{key}", value, supported))
    side_effects = hook.get("sideEffects")
    if side_effects is None:
        causes.append(required(f"{path}.sideEffects", f"must specify one of {', '.join(_NO_SIDE_EFFECTS)}"))
    elif side_effects not in _SIDE_EFFECTS:
        causes.append(unsupported(f"{path}.sideEffects", side_effects, _SIDE_EFFECTS))
    elif require_no_side_effects and side_effects not in _NO_SIDE_EFFECTS:
        causes.append(unsupported(f"{path}.sideEffects", side_effects, _NO_SIDE_EFFECTS))
    timeout = hook.get("timeoutSeconds")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 30):
        causes.append(invalid(f"{path}.timeoutSeconds", timeout, "the timeout value must be between 1 and 30 seconds"))
    causes += _review_version_errors(hook.get("admissionReviewVersions"), f"{path}.admissionReviewVersions")
    causes += _client_config_errors(hook.get("clientConfig"), f"{path}.clientConfig")
    for selector in ("namespaceSelector", "objectSelector"):
        value = hook.get(selector)
        if value is not None and not isinstance(value, dict):
            causes.append(invalid(f"{path}.{selector}", value, "must be a label selector"))
    conditions = hook.get("matchConditions") or []
    if len(conditions) > _MAX_MATCH_CONDITIONS:
        causes.append(Cause(f"{path}.matchConditions", "FieldValueTooMany",
                            f"Too many: {len(conditions)}: must have at most {_MAX_MATCH_CONDITIONS} items"))
    causes += [Cause(f"{path}.{cause.field.removeprefix('spec.')}", cause.reason, cause.message)
               for cause in match_condition_errors(conditions)]
    for index, condition in enumerate(conditions):
        source = str((condition or {}).get("expression") or "").strip()
        if source:
            try:
                compile_expression(source, _CONDITION_VARIABLES, (), ("bool",))
            except CelCompileError as error:
                causes.append(invalid(f"{path}.matchConditions[{index}].expression", source, error.detail))
    return causes


def _rule_errors(rule: dict[str, Any], path: str) -> list[Cause]:
    """ValidateRuleWithOperations: each list required, operations and scope among the supported values."""
    causes = [required(f"{path}.{key}") for key in ("operations", "apiGroups", "apiVersions", "resources")
              if not rule.get(key)]
    for index, operation in enumerate(rule.get("operations") or []):
        if operation not in _OPERATIONS:
            causes.append(unsupported(f"{path}.operations[{index}]", operation, _OPERATIONS))
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        causes.append(unsupported(f"{path}.scope", scope, _SCOPES))
    return causes


def _review_version_errors(versions: Any, path: str) -> list[Cause]:
    if not versions:
        return [required(path, f"must specify one of {', '.join(REVIEW_VERSIONS)}")]
    if not any(version in REVIEW_VERSIONS for version in versions):
        listed = ", ".join(json.dumps(str(version)) for version in versions)  # %#v of a []string
        return [Cause(path, "FieldValueInvalid", f"Invalid value: []string{{{listed}}}: must include at least one of "
                                                 f"{', '.join(REVIEW_VERSIONS)}")]
    return []


def _client_config_errors(client_config: Any, path: str) -> list[Cause]:
    client_config = client_config if isinstance(client_config, dict) else {}
    url, service = client_config.get("url"), client_config.get("service")
    causes: list[Cause] = []
    if (url is None) == (service is None):
        return [required(path, "exactly one of url or service is required")]
    if url is not None:
        causes += _url_errors(str(url), f"{path}.url")
    else:
        causes += _service_errors(service if isinstance(service, dict) else {}, f"{path}.service")
    bundle = client_config.get("caBundle")
    if bundle is not None:
        try:
            base64.b64decode(str(bundle), validate=True)
        except (binascii.Error, ValueError):
            causes.append(invalid(f"{path}.caBundle", "<bytes>", "must be base64-encoded"))
    return causes


def _url_errors(url: str, path: str) -> list[Cause]:
    """ValidateWebhookURL with forceHttps: the API server calls webhooks over https only."""
    parsed = urllib.parse.urlsplit(url)
    causes = []
    if parsed.scheme != "https":
        causes.append(invalid(path, parsed.scheme, "'https' is the only allowed URL scheme"))
    if not parsed.netloc:
        causes.append(invalid(path, parsed.netloc, "host must be specified"))
    if "@" in parsed.netloc:
        causes.append(invalid(path, url, "user information is not permitted in the URL"))
    if parsed.fragment or url.endswith("#"):
        causes.append(invalid(path, parsed.fragment, "fragments are not permitted in the URL"))
    if parsed.query or url.endswith("?"):
        causes.append(invalid(path, parsed.query, "query parameters are not permitted in the URL"))
    return causes


def _service_errors(service: dict[str, Any], path: str) -> list[Cause]:
    """ValidateWebhookService."""
    causes = [required(f"{path}.{key}") for key in ("name", "namespace") if not service.get(key)]
    port = service.get("port")
    if port is not None and (not isinstance(port, int) or not 1 <= port <= 65535):
        causes.append(invalid(f"{path}.port", port, "port is not valid: must be between 1 and 65535, inclusive"))
    service_path = service.get("path")
    if service_path is not None and not str(service_path).startswith("/"):
        causes.append(invalid(f"{path}.path", service_path, "must start with a '/'"))
    return causes


def compile_configuration(configuration: dict[str, Any], mutating: bool) -> list[Webhook]:
    """The webhooks of a stored (valid) configuration, in order, ready to match and call."""
    name = configuration["metadata"]["name"]
    hooks = []
    for hook in configuration.get("webhooks") or []:
        client_config = hook.get("clientConfig") or {}
        bundle = client_config.get("caBundle")
        conditions = tuple((condition["name"], compile_expression(condition["expression"].strip(),
                                                                  _CONDITION_VARIABLES, (), ("bool",)))
                           for condition in hook.get("matchConditions") or [])
        hooks.append(Webhook(
            configuration=name, name=hook["name"], mutating=mutating, client_config=client_config,
            ca_bundle=base64.b64decode(bundle) if bundle else None,
            failure_policy=hook.get("failurePolicy") or "Fail", match_policy=hook.get("matchPolicy") or "Equivalent",
            side_effects=hook.get("sideEffects"), timeout_seconds=int(hook.get("timeoutSeconds") or 10),
            review_versions=tuple(hook.get("admissionReviewVersions") or ()),
            reinvocation_policy=hook.get("reinvocationPolicy") or "Never",
            match=MatchResources(_selector(hook.get("namespaceSelector")), _selector(hook.get("objectSelector")),
                                 tuple(hook.get("rules") or ()), ()),
            match_conditions=conditions,
        ))
    return hooks


def _selector(selector: Any) -> LabelSelector:
    return label_selector_from_object(selector if isinstance(selector, dict) else {})


__all__ = ["MUTATING_WEBHOOK_CONFIGURATIONS", "REVIEW_VERSIONS", "VALIDATING_WEBHOOK_CONFIGURATIONS", "Webhook",
           "apply_defaults", "compile_configuration", "validate"]
