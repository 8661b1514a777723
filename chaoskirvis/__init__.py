"""chaoskirvis: security chaos engineering for Kubernetes, as a Chaos Toolkit extension."""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "discover", "activity_modules"]


def activity_modules() -> dict[str, str]:
    """Every activity module of the package and its activity type: ``*.actions`` and ``*.probes``."""
    import pkgutil

    kinds = {"actions": "action", "probes": "probe"}
    modules = {}
    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf in kinds and ".sandbox." not in info.name:
            modules[info.name] = kinds[leaf]
    return dict(sorted(modules.items()))


def discover(discover_system: bool = True):
    """Discover the activities of this extension for `chaos discover`."""
    from chaoslib.discovery.discover import discover_actions, discover_probes, initialize_discovery_result

    discovery = initialize_discovery_result("chaostoolkit-kirvis", __version__, "kubernetes-security")
    for module, kind in activity_modules().items():
        found = discover_actions(module) if kind == "action" else discover_probes(module)
        discovery["activities"].extend(found)
    return discovery
