"""Kubernetes' own CEL libraries (apiserver `pkg/cel/library`) for the sandbox's CEL engine.

Regex (`regex.go`): ``s.find(re)`` is the first match or "", ``s.findAll(re)`` every match and
``s.findAll(re, n)`` at most n (all when n < 0). Lists (`lists.go`): ``isSorted``, ``sum`` (0 for an empty
list), ``min`` and ``max`` (an error for an empty list), ``indexOf`` and ``lastIndexOf`` (-1 when absent).
Quantity, URL, IP and CIDR are in `cel_kubernetes_values`. Errors are raised as ValueError and reach the policy
as the expression's error, with upstream's words.
"""

from __future__ import annotations

import re
from typing import Any

from cel_expr_python import cel

from chaoskirvis.sandbox.cel_kubernetes_values import VALUE_FUNCTIONS

_LIST = cel.Type.List(cel.Type.DYN)


def _pattern(regex: str) -> re.Pattern[str]:
    try:
        return re.compile(regex)
    except re.error as error:
        raise ValueError(f"invalid regular expression: {error}") from None


def _find(text: str, regex: str) -> str:
    match = _pattern(regex).search(text)
    return match.group(0) if match else ""


def _find_all(text: str, regex: str, limit: int = -1) -> list[str]:
    matches = [match.group(0) for match in _pattern(regex).finditer(text)]
    return matches if limit < 0 else matches[:limit]


def _comparable(items: list[Any]) -> list[Any]:
    kinds = {float if isinstance(item, int | float) and not isinstance(item, bool) else type(item)
             for item in items}
    if len(kinds) > 1:
        raise ValueError("no such overload")
    return items


def _is_sorted(items: list[Any]) -> bool:
    items = _comparable(items)
    return all(a <= b for a, b in zip(items, items[1:]))


def _sum(items: list[Any]) -> Any:
    total: Any = 0
    for item in _comparable(items):
        total = total + item
    return total


def _extreme(name: str, pick: Any) -> Any:
    def extreme(items: list[Any]) -> Any:
        if not items:
            raise ValueError(f"{name} called on empty list")
        return pick(_comparable(items))
    return extreme


def _index_of(items: list[Any], element: Any) -> int:
    return next((index for index, item in enumerate(items) if item == element), -1)


def _last_index_of(items: list[Any], element: Any) -> int:
    return next((index for index in range(len(items) - 1, -1, -1) if items[index] == element), -1)


def _member(name: str, overload: str, result: cel.Type, parameters: list[cel.Type], impl: Any) -> cel.FunctionDecl:
    return cel.FunctionDecl(name, [cel.Overload(overload, result, parameters, is_member=True, impl=impl)])


# An extension, loaded after the strings extension so that list indexOf/lastIndexOf join its string overloads.
KUBERNETES_LIBRARY = cel.CelExtension("kubernetes", [
    _member("find", "string_find_string", cel.Type.STRING, [cel.Type.STRING, cel.Type.STRING], _find),
    cel.FunctionDecl("findAll", [
        cel.Overload("string_find_all_string", cel.Type.List(cel.Type.STRING), [cel.Type.STRING, cel.Type.STRING],
                     is_member=True, impl=_find_all),
        cel.Overload("string_find_all_string_int", cel.Type.List(cel.Type.STRING),
                     [cel.Type.STRING, cel.Type.STRING, cel.Type.INT], is_member=True, impl=_find_all),
    ]),
    _member("isSorted", "list_is_sorted", cel.Type.BOOL, [_LIST], _is_sorted),
    _member("sum", "list_sum", cel.Type.DYN, [_LIST], _sum),
    _member("min", "list_min", cel.Type.DYN, [_LIST], _extreme("min", min)),
    _member("max", "list_max", cel.Type.DYN, [_LIST], _extreme("max", max)),
    _member("indexOf", "list_index_of", cel.Type.INT, [_LIST, cel.Type.DYN], _index_of),
    _member("lastIndexOf", "list_last_index_of", cel.Type.INT, [_LIST, cel.Type.DYN], _last_index_of),
    *VALUE_FUNCTIONS,
])

__all__ = ["KUBERNETES_LIBRARY"]
