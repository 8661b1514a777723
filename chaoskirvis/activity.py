"""Type-checked activity arguments, so that `chaos validate` catches a wrong type, not only a wrong name.

chaoslib validates a Python activity by binding the experiment's arguments to
``inspect.signature(func)``. `typed_activity` gives the function a signature whose ``bind`` also
checks each argument against the function's type hints. Values that still hold a ``${...}``
substitution are checked at run time by the activity itself.
"""
from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Callable, TypeVar

from chaoslib.exceptions import InvalidActivity

__all__ = ["typed_activity"]

F = TypeVar("F", bound=Callable[..., Any])
_OUT_OF_BAND = {"configuration", "secrets"}


class _TypedSignature(inspect.Signature):
    hints: dict[str, Any]
    func_name: str

    def bind(self, *args: Any, **kwargs: Any) -> inspect.BoundArguments:
        bound = super().bind(*args, **kwargs)
        for name, value in bound.arguments.items():
            expected = self.hints.get(name)
            if name in _OUT_OF_BAND or expected is None or _is_substitution(value):
                continue
            if not _matches(value, expected):
                raise InvalidActivity(
                    f"argument {name} of {self.func_name} must be {_describe(expected)}, got {value!r}"
                )
        return bound


def typed_activity(func: F) -> F:
    """Give `func` a signature whose binding checks argument types (see the module docstring)."""
    signature = _TypedSignature.from_callable(func)
    signature.hints = typing.get_type_hints(func)
    signature.func_name = func.__name__
    func.__signature__ = signature
    return func


def _is_substitution(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _matches(value: Any, expected: Any) -> bool:
    if expected is Any:
        return True
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(expected) or (Any,)
        return isinstance(value, list) and all(_matches(v, item) or _is_substitution(v) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, expected) if isinstance(expected, type) else True


def _describe(expected: Any) -> str:
    return getattr(expected, "__name__", None) or str(expected).replace("typing.", "")
