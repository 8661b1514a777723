"""The run's random draws (port, and optionally the namespace), reproducible from a seed.

As in ChaoSlingr's PortChange, the port is drawn at random from a range and the target can be drawn
among the namespaces that opted in with a label. The same seed draws the same port and namespace
again (for the same range and the same opted-in namespaces).
"""
from __future__ import annotations

import random
import re
import secrets
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaoskirvis.client import ApiError, KubeAPI
from chaoskirvis.targets import PROTECTED_NAMESPACES

__all__ = ["DEFAULT_PORT_RANGE", "draw_target"]

DEFAULT_PORT_RANGE = "10000-65000"
_RANGE = re.compile(r"^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$")


def draw_target(
    api: KubeAPI,
    *,
    namespace: str | None,
    opt_in_label: str | None,
    port: int | None,
    port_range: str,
    seed: int | str | None,
) -> dict[str, Any]:
    """Draw what was not given: returns ``{seed, port_range, port, namespace, candidates}``.

    `seed` may be an int or a string of digits (as ``chaos run --var seed=42`` passes it); None or ""
    draws a fresh seed.
    """
    seed = _parse_seed(seed)
    rng = random.Random(seed)
    low, high = _parse_range(port_range)
    draw: dict[str, Any] = {"seed": seed, "port_range": [low, high]}
    if namespace is None:
        if not opt_in_label:
            raise ActivityFailed("give a namespace, or an opt_in_label to draw one among the namespaces carrying it")
        candidates = _opted_in(api, opt_in_label)
        draw["candidates"] = candidates
        namespace = rng.choice(candidates)
    draw["namespace"] = namespace
    drawn_port = rng.randint(low, high)
    draw["port"] = port if port is not None else drawn_port
    return draw


def _parse_seed(seed: int | str | None) -> int:
    if seed is None or seed == "":
        return secrets.randbits(32)
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    if isinstance(seed, str) and seed.strip().isdigit():
        return int(seed.strip())
    raise ActivityFailed(f"invalid seed {seed!r}: expected a whole number")


def _parse_range(port_range: str) -> tuple[int, int]:
    match = _RANGE.match(str(port_range))
    if not match:
        raise ActivityFailed(f"invalid port range {port_range!r}: expected LOW-HIGH, e.g. {DEFAULT_PORT_RANGE}")
    low, high = int(match.group(1)), int(match.group(2))
    if not 1 <= low <= high <= 65535:
        raise ActivityFailed(f"invalid port range {port_range!r}: ports go from 1 to 65535, LOW <= HIGH")
    return low, high


def _opted_in(api: KubeAPI, label: str) -> list[str]:
    try:
        items = api.get("/api/v1/namespaces", labelSelector=label).get("items", [])
    except ApiError as exc:
        raise ActivityFailed(f"cannot list namespaces labelled {label} ({exc.status} {exc.message})") from None
    names = sorted(item["metadata"]["name"] for item in items
                   if item["metadata"]["name"] not in PROTECTED_NAMESPACES)
    if not names:
        raise ActivityFailed(f"no namespace carries the opt-in label {label}: label one to make it a target")
    return names
