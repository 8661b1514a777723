"""Blast radius: which namespaces a run may touch."""
from __future__ import annotations

import re

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError

__all__ = ["PROTECTED_NAMESPACES", "check_namespace", "missing_namespace"]

PROTECTED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"  # fullmatch: "$" would let "team-a\n" through


def check_namespace(namespace: str, allow_protected: bool = False) -> str:
    """Return `namespace` if a run may target it; refuse malformed and protected namespaces."""
    if not isinstance(namespace, str) or not re.fullmatch(_DNS_LABEL, namespace):
        raise ActivityFailed(f"invalid namespace {namespace!r}: expected a DNS label such as 'team-a'")
    if namespace in PROTECTED_NAMESPACES and not allow_protected:
        raise ActivityFailed(
            f"namespace {namespace} is protected; pass allow_protected_namespaces: true to target it on purpose"
        )
    return namespace


def missing_namespace(exc: ApiError, namespace: str | None, host: str) -> None:
    """Raise the clear error when `exc` is the API server's answer to a write into a namespace that does not
    exist (the NamespaceLifecycle admission plugin: 404 NotFound, ``namespaces "NAME" not found``), so an
    attempt needs no read of the namespace beforehand."""
    details = exc.answer.body.get("details") or {}
    if exc.status == 404 and namespace and details.get("kind") == "namespaces" and details.get("name") == namespace:
        raise ActivityFailed(
            f"namespace {namespace} does not exist on {host}: create it or target another one"
        ) from None
