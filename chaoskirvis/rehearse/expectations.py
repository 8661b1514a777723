"""The expectations file (what must hold where) and the comparison with a previous rehearsal's result.

Read strictly: an unknown key, technique id or family is an error, never ignored (a typo would check less).
"""
from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from chaoskirvis.rehearse.matrix import HELD, WEAKNESS, Cell
from chaoskirvis.techniques import CATALOG

__all__ = ["Expectations", "Rule", "ExpectationError", "load_expectations", "broken", "Change", "compare",
           "load_baseline", "RESULT_VERSION"]

RESULT_VERSION = 1
_TOP_KEYS = {"out_of_scope", "expectations"}
_RULE_KEYS = {"namespaces", "hold", "except"}
_FAMILIES = sorted({t.family for t in CATALOG.values()} - {"node"})  # node files are not rehearsed


class ExpectationError(Exception):
    """An expectations or baseline file that cannot be used as written."""


class Rule(NamedTuple):
    namespaces: tuple[str, ...]
    techniques: frozenset[str]


class Expectations(NamedTuple):
    out_of_scope: tuple[str, ...]
    rules: tuple[Rule, ...]

    def in_scope(self, namespace: str) -> bool:
        return not any(fnmatch.fnmatchcase(namespace, p) for p in self.out_of_scope)

    def expected(self, technique: str, namespace: str) -> bool:
        return any(technique in r.techniques and any(fnmatch.fnmatchcase(namespace, p) for p in r.namespaces)
                   for r in self.rules)


def _names(value: Any, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise ExpectationError(f"{where} must be a name or a non-empty list of names, not {value!r}")
    return tuple(values)


def _techniques(names: tuple[str, ...], where: str) -> set[str]:
    chosen: set[str] = set()
    for name in names:
        if name == "all":
            chosen |= {t.id for t in CATALOG.values() if t.family != "node"}
        elif name in _FAMILIES:
            chosen |= {t.id for t in CATALOG.values() if t.family == name}
        elif name in CATALOG:
            chosen.add(name)
        else:
            raise ExpectationError(f"{where}: unknown technique or family {name!r}; families: {', '.join(_FAMILIES)}"
                                   f", all; techniques: {', '.join(sorted(CATALOG))}")
    return chosen


def load_expectations(path: Path) -> Expectations:
    """Read and check the expectations file (see docs/rehearse.md for its format)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ExpectationError(f"cannot read expectations {path}: {error}") from None
    if not isinstance(data, dict):
        raise ExpectationError(f"{path}: expected a mapping with {' and/or '.join(sorted(_TOP_KEYS))}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ExpectationError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(_TOP_KEYS))}")
    out_of_scope = _names(data["out_of_scope"], f"{path}: out_of_scope") if "out_of_scope" in data else ()
    entries = data.get("expectations", [])
    if not isinstance(entries, list):
        raise ExpectationError(f"{path}: expectations must be a list of {{namespaces, hold, except}}")
    rules = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: expectation {number}"
        if not isinstance(entry, dict):
            raise ExpectationError(f"{where} must be a mapping with namespaces, hold and optionally except")
        unknown = sorted(set(entry) - _RULE_KEYS)
        missing = sorted({"namespaces", "hold"} - set(entry))
        if unknown or missing:
            raise ExpectationError(f"{where}: " + "; ".join(
                ([f"unknown key(s) {', '.join(map(str, unknown))}"] if unknown else []) +
                ([f"missing {', '.join(missing)}"] if missing else [])) + f"; known: {', '.join(sorted(_RULE_KEYS))}")
        hold = _techniques(_names(entry["hold"], f"{where} hold"), f"{where} hold")
        allowed = _techniques(_names(entry["except"], f"{where} except"), f"{where} except") if "except" in entry else set()
        rules.append(Rule(_names(entry["namespaces"], f"{where} namespaces"), frozenset(hold - allowed)))
    return Expectations(out_of_scope, tuple(rules))


def broken(cells: list[Cell], expectations: Expectations | None) -> list[Cell]:
    """The weaknesses where the expectations say the technique must hold."""
    if expectations is None:
        return []
    return [c for c in cells if c.verdict == WEAKNESS and expectations.expected(c.technique, c.namespace)]


class Change(NamedTuple):
    technique: str
    namespace: str
    identity: str | None
    before: str | None
    after: str | None

    @property
    def regression(self) -> bool:
        return self.before == HELD and self.after == WEAKNESS


def load_baseline(path: Path) -> dict[tuple[str, str, str | None], str]:
    """(technique, namespace, identity) -> verdict of the JSON result a previous rehearsal wrote."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ExpectationError(f"cannot read baseline {path}: {error}") from None
    if not isinstance(data, dict) or data.get("kind") != "kirvis-rehearse" or data.get("version") != RESULT_VERSION:
        raise ExpectationError(f"{path} is not a kirvis rehearse result (version {RESULT_VERSION}): pass the "
                               "rehearse.json a previous `kirvis rehearse` wrote")
    try:
        return {(c["technique"], c["namespace"], c.get("identity")): c["verdict"] for c in data["cells"]}
    except (KeyError, TypeError) as error:
        raise ExpectationError(f"{path}: malformed cells ({error})") from None


def compare(cells: list[Cell], baseline: dict[tuple[str, str, str | None], str]) -> list[Change]:
    """What changed since the baseline, regressions (held -> weakness) first."""
    now = {(c.technique, c.namespace, c.identity): c.verdict for c in cells}
    changes = [Change(*key, baseline.get(key), now.get(key)) for key in sorted(set(now) | set(baseline),
                                                                                key=lambda k: (k[0], k[1], k[2] or ""))
               if baseline.get(key) != now.get(key)]
    return sorted(changes, key=lambda c: not c.regression)
