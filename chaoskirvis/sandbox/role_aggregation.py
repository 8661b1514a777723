"""The clusterrole-aggregation controller of kube-controller-manager: a ClusterRole with an `aggregationRule`
gets as `rules` the rules of the ClusterRoles its clusterRoleSelectors select (by name order, itself left
out, each rule once), rewritten whenever those change. Called by `controllers.ClusterStore` on each
ClusterRole write, at once, so a new labelled role is granted by admin, edit or view in the same request.
"""

from __future__ import annotations

from typing import Any

from chaoskirvis.sandbox.rbac import CLUSTER_ROLES
from chaoskirvis.sandbox.selectors import SelectorError, label_selector_from_object
from chaoskirvis.sandbox.store import Store

# Aggregated roles may select one another (view into edit into admin): passes until nothing changes.
_MAX_PASSES = 10


def aggregated_rules(store: Store, role: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules the aggregation rule of `role` selects, as the controller unions them."""
    rules: list[dict[str, Any]] = []
    for selector in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        try:
            labels = label_selector_from_object(selector or {})
        except SelectorError:
            continue
        for selected in store.select(CLUSTER_ROLES, None, labels).items:  # ordered by name
            if selected["metadata"]["name"] == role["metadata"]["name"]:
                continue
            rules.extend(rule for rule in selected.get("rules") or [] if rule not in rules)
    return rules


def aggregate_all(store: Store, names: set[str]) -> None:
    """Bring every aggregating ClusterRole of `names` up to date (none missing: they are skipped)."""
    for _ in range(_MAX_PASSES):
        changed = False
        for name in sorted(names):
            role = store.get(CLUSTER_ROLES, None, name)
            if role is None or not role.get("aggregationRule"):
                continue
            rules = aggregated_rules(store, role)
            if rules != (role.get("rules") or []):
                store.update(CLUSTER_ROLES, dict(role, rules=rules))
                changed = True
        if not changed:
            return
