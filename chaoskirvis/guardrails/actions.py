"""Actions that weaken a guardrail that exists, and are put back exactly by the run's restore."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoskirvis.activity import typed_activity
from chaoskirvis.injection import attempt_guardrail

__all__ = ["tamper_guardrail"]


@typed_activity
def tamper_guardrail(
    technique: str,
    namespace: str,
    name: str | None = None,
    mode: str = "dry-run",
    options: dict[str, Any] | None = None,
    allow_protected_namespaces: bool = False,
    as_user: str | None = None,
    as_groups: list[str] | None = None,
    as_service_account: str | None = None,
    identity_via: str = "impersonation",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Try to weaken the guardrail the experiment names, as the runner or as an identity.

    `technique` is one of pod-security-privileged, pod-security-label-removed, policy-engine-exemption-label
    (they change `namespace` itself), network-policy-deleted, network-policy-opened (the NetworkPolicy `name`
    in `namespace`), vap-binding-not-denying, vap-binding-deleted (the cluster-scoped
    ValidatingAdmissionPolicyBinding `name`; the run's record, holding its original, is kept in `namespace`),
    webhook-fail-open, webhook-namespace-exclusion (by default excluding `namespace`),
    webhook-configuration-deleted (the cluster-scoped ValidatingWebhookConfiguration `name`, its record in
    `namespace` too).
    The target is read first and must exist; nothing is guessed. Protected namespaces are refused unless
    `allow_protected_namespaces`.

    Sent to the API: a JSON merge patch of the object (only what the technique changes, plus the run's mark
    annotation ``chaoskirvis.io/changed-by-run``, on the resourceVersion read) or a delete (on the uid and
    resourceVersion read), made as `as_user`/`as_groups` or `as_service_account` when given (impersonation,
    or with ``identity_via: token`` a TokenRequest token of that service account). With `mode` ``dry-run``
    (the default) it is a server-side dry run: nothing is stored or recorded. With ``change`` the original
    (the whole object) goes into the run's record in the cluster first, and stays there until the run's
    restore (`chaoskirvis.ledger.actions.restore_run`, or `kirvis cleanup --run-id`) puts it back exactly.

    Returns the outcome: ``blocked`` when an admission control (a ValidatingAdmissionPolicy, a webhook)
    denied it or RBAC refused the identity (`answered_by` names which, with the status and message), or
    ``allowed`` (the change was made; with ``change``, recorded for restore). Raises `ActivityFailed` when
    the attempt itself went wrong: no such object, the object is weakened that way already, the record could
    not be written, RBAC refused the runner, or any other answer.
    """
    return attempt_guardrail(
        technique, namespace=namespace, name=name, mode=mode, options=options,
        allow_protected_namespaces=allow_protected_namespaces, as_user=as_user, as_groups=as_groups,
        as_service_account=as_service_account, identity_via=identity_via, configuration=configuration,
        secrets=secrets,
    )
