"""Guardrail tampering: weaken a control that exists (a Pod Security label, a NetworkPolicy, a policy binding)."""
