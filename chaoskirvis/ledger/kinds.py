"""The kinds `kirvis cleanup --kind` can name, as PLURAL[.GROUP] (kubectl's resource.group form): those
`find_leftovers` sweeps by the ownership labels (``SWEPT_KINDS``), and ConfigMaps, which it always looks at
(the run records are ConfigMaps: naming only ``configmaps`` sweeps no other kind)."""
from __future__ import annotations

from chaoskirvis.ledger.refs import CONFIG_MAP, SWEPT_KINDS, Kind

__all__ = ["NAMEABLE", "qualified", "kind_named"]

NAMEABLE: tuple[Kind, ...] = (*SWEPT_KINDS, CONFIG_MAP)


def qualified(kind: Kind) -> str:
    """`pods`, `deployments.apps`: the kind's plural, with its API group when it has one."""
    group = kind.api_version.rpartition("/")[0]
    return f"{kind.plural}.{group}" if group else kind.plural


def kind_named(name: str) -> Kind | None:
    """The kind `name` names (`deployments.apps`, or its plural alone, `deployments`), or None."""
    return next((kind for kind in NAMEABLE if name in (qualified(kind), kind.plural)), None)
