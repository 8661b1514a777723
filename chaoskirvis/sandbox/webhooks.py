"""Admission webhooks: the MutatingAdmissionWebhook and ValidatingAdmissionWebhook plugins of kube-apiserver 1.32.

Follows `staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/` (generic/webhook.go, mutating/
dispatcher.go, validating/dispatcher.go, errors/statuserror.go). The configurations are read from the store
as the API server's informers read them (sorted by name, each one's webhooks in order); matching is
`webhooks_matching`, the call and its checks `webhooks_client`, the configurations' defaults and validation
`webhooks_config` (applied here when a configuration is written: webhooks are never called for them).

- Mutating webhooks run one after the other, after the built-in mutating plugins; each sees the object as
  the previous ones left it. A JSONPatch answer is applied to the object, which is defaulted again, and
  the handler validates it again. A webhook with reinvocationPolicy IfNeeded is called once more, after the
  others, when a later webhook changed the object after its call (the built-in plugins, which run before
  the webhooks, are not reinvoked). A patch that does not apply is a 500 InternalError whatever the
  failurePolicy, as upstream.
- Validating webhooks run after ValidatingAdmissionPolicy, all at once (concurrently); when several refuse,
  the first in configuration order answers (upstream takes the first to finish).
- A call that fails (unreachable, timeoutSeconds passed, TLS not verified, a non-2xx answer, a body that is
  not an AdmissionReview, a wrong uid or kind, a patch from a validating webhook): under failurePolicy Fail
  the request is refused with 500 InternalError ``Internal error occurred: failed calling webhook "NAME":
  REASON`` (apierrors.NewInternalError, REASON's text in the one cause); under Ignore the webhook is
  skipped and nothing reaches the client (upstream only adds an audit annotation, and the sandbox keeps no
  audit log).
- A denial (`allowed: false`) is ToStatusErr: the webhook's Status with ``admission webhook "NAME" denied the
  request: MESSAGE`` (its reason when it has no message, ``... denied the request without explanation``
  with neither), its code when at least 400 (else 400), its reason and details.
- Warnings in an answer are sent as Warning headers, also with a refusal.
- A dry-run request (dryRun=All) is refused with 400 BadRequest ``admission webhook "NAME" does not support
  dry run`` when a webhook it matches has sideEffects other than None and NoneOnDryRun, whatever the
  failurePolicy; such webhooks exist only in the store of an upgraded cluster (`Sandbox.store_legacy`),
  since admissionregistration.k8s.io/v1 refuses to create them.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable
from typing import Any

from chaoskirvis.sandbox import defaults, patching
from chaoskirvis.sandbox.admission import ALLOWED, AdmissionRequest, AdmissionResult, Denial
from chaoskirvis.sandbox.rbac import Authorizer
from chaoskirvis.sandbox.resources import ResourceType
from chaoskirvis.sandbox.store import Store, apply_events
from chaoskirvis.sandbox.webhooks_client import Answer, CallError, WebhookCaller, review
from chaoskirvis.sandbox.webhooks_config import MUTATING_WEBHOOK_CONFIGURATIONS, VALIDATING_WEBHOOK_CONFIGURATIONS, \
    Webhook, apply_defaults, compile_configuration, validate
from chaoskirvis.sandbox.webhooks_matching import WebhookDenial, exempt, should_call

_CONFIGURATIONS = (VALIDATING_WEBHOOK_CONFIGURATIONS, MUTATING_WEBHOOK_CONFIGURATIONS)
# What the registry's PrepareForCreate fills in after mutating admission: a webhook never sees it on a create.
_SYSTEM_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp")


class WebhookConfigurations:
    """The stored webhook configurations, compiled: listed once, then kept current from the store's watch
    events, so that a request costs nothing when none changed (as `vap._Informer` does for policies)."""

    def __init__(self) -> None:
        self._store: Store | None = None
        self._subscriptions: list[Any] = []
        self._objects: dict[ResourceType, dict[str, dict[str, Any]]] = {}
        self._hooks: dict[ResourceType, list[Webhook]] = {resource: [] for resource in _CONFIGURATIONS}

    def webhooks(self, resource: ResourceType, store: Store) -> list[Webhook]:
        """The webhooks of the configurations of `resource` (validating or mutating), by configuration name."""
        if self._store is not store:
            self._store = store
            self._subscriptions = [store.subscribe(r) for r in _CONFIGURATIONS]  # before listing: none missed
            self._objects = {r: {obj["metadata"]["name"]: obj for obj in store.list(r)} for r in _CONFIGURATIONS}
            for configured in _CONFIGURATIONS:
                self._compile(configured)
        changed = apply_events(self._subscriptions, self._objects)
        for configured in changed:
            self._compile(configured)
        return self._hooks[resource]

    def _compile(self, resource: ResourceType) -> None:
        mutating = resource == MUTATING_WEBHOOK_CONFIGURATIONS
        self._hooks[resource] = [hook for name in sorted(self._objects[resource])
                                 for hook in compile_configuration(self._objects[resource][name], mutating)]


class _Dispatcher:
    """What both plugins share: the configurations, the caller and the authorizer of matchConditions."""

    def __init__(self, authorizer: Authorizer, caller: WebhookCaller, configurations: WebhookConfigurations) -> None:
        self.authorizer = authorizer
        self.caller = caller
        self.configurations = configurations


class MutatingWebhookAdmission(_Dispatcher):
    """MutatingAdmissionWebhook; also defaults the webhook configurations written (see the module docstring)."""

    name = "MutatingAdmissionWebhook"

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult | Awaitable[AdmissionResult]:
        if request.resource in _CONFIGURATIONS and request.object is not None:
            apply_defaults(request.object, request.resource == MUTATING_WEBHOOK_CONFIGURATIONS)
        if exempt(request):
            return ALLOWED
        hooks = self.configurations.webhooks(MUTATING_WEBHOOK_CONFIGURATIONS, store)
        return self._mutate(request, store, hooks) if hooks else ALLOWED

    async def _mutate(self, request: AdmissionRequest, store: Store, hooks: list[Webhook]) -> AdmissionResult:
        """Each webhook in order, then once more each IfNeeded webhook that a later one changed the object after
        (upstream's reinvocation round, webhooks only)."""
        warnings: list[str] = []
        mutated = False
        stale: dict[str, bool] = {}  # IfNeeded webhooks invoked: whether the object changed since
        for round_hooks in (hooks, None):
            if round_hooks is None:
                round_hooks = [hook for hook in hooks if stale.get(hook.name)]
                stale.clear()
            for hook in round_hooks:
                denial, called, changed = await self._invoke(hook, request, store, warnings)
                if denial is not None:
                    return AdmissionResult(tuple(warnings), denial, mutated or changed)
                mutated = mutated or changed
                if changed:
                    stale = dict.fromkeys(stale, True)
                if called and hook.reinvocation_policy == "IfNeeded":
                    stale.setdefault(hook.name, False)
        return AdmissionResult(tuple(warnings), mutated=mutated)

    async def _invoke(self, hook: Webhook, request: AdmissionRequest, store: Store,
                      warnings: list[str]) -> tuple[Denial | None, bool, bool]:
        """Call one mutating webhook if it matches and apply its patch: (a refusal, whether it was called, whether
        it changed the object)."""
        try:
            if not should_call(hook, request, store, self.authorizer):
                return None, False, False
            refusal = _dry_run_refusal(hook, request)
            if refusal is not None:
                return refusal, False, False
            answer = await _call(self.caller, hook, request, store)
        except WebhookDenial as denial:
            return denial.denial, True, False
        if answer is None:
            return None, True, False
        warnings += answer.warnings
        if not answer.allowed:
            return _rejection(hook.name, answer.result), True, False
        if not answer.patch:
            return None, True, False
        try:
            return None, True, _apply_patch(hook, request, answer.patch)
        except CallError as error:  # an undecodable patch: failurePolicy applies
            refusal = _internal_error(f'failed calling webhook "{hook.name}": {error}') if hook.fails_closed else None
            return refusal, True, False
        except WebhookDenial as denial:
            return denial.denial, True, False


class ValidatingWebhookAdmission(_Dispatcher):
    """ValidatingAdmissionWebhook; also validates the webhook configurations written (422 Invalid)."""

    name = "ValidatingAdmissionWebhook"

    def admit(self, request: AdmissionRequest, store: Store) -> AdmissionResult | Awaitable[AdmissionResult]:
        if request.resource in _CONFIGURATIONS:
            return _validate_configuration(request)
        if exempt(request):
            return ALLOWED
        hooks = self.configurations.webhooks(VALIDATING_WEBHOOK_CONFIGURATIONS, store)
        try:
            called = [hook for hook in hooks if should_call(hook, request, store, self.authorizer)]
        except WebhookDenial as denial:
            return AdmissionResult(denial=denial.denial)
        if not called:
            return ALLOWED
        for hook in called:
            refusal = _dry_run_refusal(hook, request)
            if refusal is not None:
                return AdmissionResult(denial=refusal)
        return self._validate(request, store, called)

    async def _validate(self, request: AdmissionRequest, store: Store, hooks: list[Webhook]) -> AdmissionResult:
        outcomes = await asyncio.gather(*(_call_or_denial(self.caller, hook, request, store) for hook in hooks))
        warnings = [warning for answer in outcomes if isinstance(answer, Answer) for warning in answer.warnings]
        for hook, outcome in zip(hooks, outcomes, strict=True):
            if isinstance(outcome, Denial):
                return AdmissionResult(tuple(warnings), outcome)
            if outcome is not None and not outcome.allowed:
                return AdmissionResult(tuple(warnings), _rejection(hook.name, outcome.result))
        return AdmissionResult(tuple(warnings))


async def _call_or_denial(caller: WebhookCaller, hook: Webhook, request: AdmissionRequest,
                          store: Store) -> Answer | Denial | None:
    try:
        return await _call(caller, hook, request, store)
    except WebhookDenial as denial:
        return denial.denial


async def _call(caller: WebhookCaller, hook: Webhook, request: AdmissionRequest, store: Store) -> Answer | None:
    """The webhook's verified answer; None when the call failed under failurePolicy Ignore; raises WebhookDenial
    (500 InternalError) when it failed under Fail."""
    obj = request.object
    if obj is not None and request.operation == "CREATE" and request.subresource is None:
        obj = {**obj, "metadata": {key: value for key, value in (obj.get("metadata") or {}).items()
                                   if key not in _SYSTEM_METADATA} | {"creationTimestamp": None}}
    try:
        uid, admission_review = review(hook, request, obj, request.old_object)
        return await caller.call(hook, uid, admission_review, store)
    except CallError as error:
        if not hook.fails_closed:
            return None
        raise WebhookDenial(_internal_error(f'failed calling webhook "{hook.name}": {error}')) from error


def _dry_run_refusal(hook: Webhook, request: AdmissionRequest) -> Denial | None:
    """The dispatchers' dry-run check: only webhooks without side effects take part in a dry run."""
    if not request.dry_run:
        return None
    if hook.side_effects is None:
        if hook.fails_closed:
            return _internal_error(f'failed calling webhook "{hook.name}": Webhook SideEffects is nil')
        return None
    if hook.side_effects in ("None", "NoneOnDryRun"):
        return None
    return Denial(400, "BadRequest", f'admission webhook "{hook.name}" does not support dry run', own_details=True)


def _apply_patch(hook: Webhook, request: AdmissionRequest, patch: bytes) -> bool:
    """Apply a JSONPatch answer to request.object in place (then default it again); whether it changed.
    Raises CallError for an undecodable patch (failurePolicy applies), WebhookDenial (500) for one that does
    not apply."""
    try:
        operations = json.loads(patch)
    except ValueError as error:
        raise CallError(f"received undecodable patch in webhook response: {error}") from None
    if not isinstance(operations, list):
        raise CallError("received undecodable patch in webhook response: json: cannot unmarshal object into Go "
                        "value of type jsonpatch.Patch")
    if not operations:
        return False
    obj = request.object
    if obj is None:
        raise WebhookDenial(_internal_error(f'admission webhook "{hook.name}" attempted to modify the object, which '
                                            "is not supported for this operation"))
    try:
        patched = patching.apply_patch(patching.JSON_PATCH, copy.deepcopy(obj), patch)
    except patching.PatchError as error:
        raise WebhookDenial(_internal_error(str(error))) from None
    if not isinstance(patched.get("metadata"), dict):
        raise WebhookDenial(_internal_error(f'admission webhook "{hook.name}" removed the object\'s metadata'))
    system = {key: obj["metadata"][key] for key in _SYSTEM_METADATA if key in (obj.get("metadata") or {})}
    defaults.apply_defaults(request.resource, patched)
    patched["metadata"].update(system)
    if patched == obj:
        return False
    obj.clear()
    obj.update(patched)
    return True


def _rejection(webhook_name: str, result: dict[str, Any] | None) -> Denial:
    """ToStatusErr: the webhook's Status, as a refusal (code >= 400, the message prefixed with who denied)."""
    result = result or {}
    denied_by = f'admission webhook "{webhook_name}" denied the request'
    code = result.get("code") if isinstance(result.get("code"), int) else 0
    message, reason = str(result.get("message") or ""), str(result.get("reason") or "")
    text = f"{denied_by}: {message}" if message else f"{denied_by}: {reason}" if reason else \
        f"{denied_by} without explanation"
    details = result.get("details")
    return Denial(max(code, 400), reason, text, own_details=True, details=details if isinstance(details, dict) else None)


def _internal_error(text: str) -> Denial:
    """apierrors.NewInternalError: 500, the error's text as the one cause."""
    return Denial(500, "InternalError", f"Internal error occurred: {text}", own_details=True,
                  details={"causes": [{"message": text}]})


def _validate_configuration(request: AdmissionRequest) -> AdmissionResult:
    if request.operation == "DELETE" or request.object is None:
        return ALLOWED
    mutating = request.resource == MUTATING_WEBHOOK_CONFIGURATIONS
    causes = validate(request.object, request.old_object if request.operation == "UPDATE" else None, mutating)
    if not causes:
        return ALLOWED
    summary = str(causes[0]) if len(causes) == 1 else "[" + ", ".join(str(c) for c in causes) + "]"
    return AdmissionResult(denial=Denial(422, "Invalid", f'{request.resource.kind} "{request.name}" is invalid: '
                                                         f"{summary}", tuple(causes)))


__all__ = ["MutatingWebhookAdmission", "ValidatingWebhookAdmission", "WebhookConfigurations"]
