"""Which admission requests a webhook is called for: generic/webhook.go's `ShouldCallHook` and its predicates.

In upstream's order: requests on webhook configurations and ValidatingAdmissionPolicies (and their bindings)
are never sent to webhooks (`rules.IsExemptAdmissionConfigurationResource`); then the namespaceSelector
(the namespace's labels; a Namespace's own labels on its create and update; cluster-scoped objects other
than namespaces always pass), the objectSelector (the new or the old object's labels), and the rules
(operations, apiGroups, apiVersions, resources with `pods/exec`, `pods/*`, `*`, `*/*`, scope), as
`vap_matching` applies them for policies; a webhook without rules matches nothing. The sandbox serves each
resource in one version, so matchPolicy Equivalent finds no other version to match and Exact and Equivalent
select alike. Last the matchConditions (webhook/matchconditions/matcher.go): any false skips the webhook;
an error, and none false, refuses the request with 403 Forbidden (`RESOURCE "NAME" is forbidden: expression
'EXPR' resulted in error: ...`) under failurePolicy Fail and skips the webhook under Ignore.
"""

from __future__ import annotations

from chaoskirvis.sandbox import cel_authorizer
from chaoskirvis.sandbox.admission import AdmissionRequest, Denial
from chaoskirvis.sandbox.cel_eval import CelEvaluationError, activation
from chaoskirvis.sandbox.rbac import Authorizer
from chaoskirvis.sandbox.store import Store
from chaoskirvis.sandbox.vap import admission_request, authorizer_variables
from chaoskirvis.sandbox.vap_matching import matches
from chaoskirvis.sandbox.vap_policy import BINDINGS, POLICIES
from chaoskirvis.sandbox.webhooks_config import MUTATING_WEBHOOK_CONFIGURATIONS, VALIDATING_WEBHOOK_CONFIGURATIONS, \
    Webhook

_EXEMPT = (VALIDATING_WEBHOOK_CONFIGURATIONS, MUTATING_WEBHOOK_CONFIGURATIONS, POLICIES, BINDINGS)


def exempt(request: AdmissionRequest) -> bool:
    """IsExemptAdmissionConfigurationResource: admission configuration is never subject to webhooks."""
    return request.resource in _EXEMPT


def should_call(webhook: Webhook, request: AdmissionRequest, store: Store, authorizer: Authorizer) -> bool:
    """Whether `webhook` is called for `request`; raises WebhookDenial when its matchConditions fail closed."""
    if not webhook.match.resource_rules or not matches(webhook.match, request, store):
        return False
    if not webhook.match_conditions:
        return True
    context = activation({"object": request.object, "oldObject": request.old_object,
                          "request": admission_request(request), "namespaceObject": None,
                          **authorizer_variables(request)})
    errors = []
    with cel_authorizer.answered_by(lambda: authorizer):
        for _, condition in webhook.match_conditions:
            try:
                if condition.evaluate(context) is False:
                    return False
            except CelEvaluationError as error:
                errors.append(f"expression '{condition.source}' resulted in error: {error.message}")
    if not errors:
        return True
    if not webhook.fails_closed:
        return False
    detail = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
    subject = f'{request.resource.group_resource} "{request.name}"' if request.name else request.resource.group_resource
    raise WebhookDenial(Denial(403, "Forbidden", f"{subject} is forbidden: {detail}"))


class WebhookDenial(Exception):
    """The request is refused, with this Denial, by (or on account of) a webhook."""

    def __init__(self, denial: Denial) -> None:
        super().__init__(denial.message)
        self.denial = denial


__all__ = ["WebhookDenial", "exempt", "should_call"]
