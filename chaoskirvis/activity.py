"""Type-checked activity arguments, so that `chaos validate` catches a wrong type, not only a wrong name.

chaoslib validates a Python activity by binding the experiment's arguments to
``inspect.signature(func)``. `typed_activity` gives the function a signature whose ``bind`` also
checks each argument against the function's type hints. Values that still hold a ``${...}``
substitution are checked when the activity runs: ``chaos run --var within=30`` substitutes the
string "30", so numbers and booleans written as text are converted then, and anything else that
does not fit the type is refused with a message naming the argument.
"""
from __future__ import annotations

import functools
import inspect
import types
import typing
from typing import Any, Callable, TypeVar

from chaoslib.exceptions import ActivityFailed, InvalidActivity

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
        _check_catalog_arguments(self, bound)
        return bound


def _check_catalog_arguments(signature: inspect.Signature, bound: inspect.BoundArguments) -> None:
    """Unknown technique ids and option names are refused at validation: a typo would test something else."""
    name = next((n for n in ("techniques", "technique") if n in signature.parameters), None)
    if name is None:
        return
    from chaoskirvis.techniques import lookup_all
    from chaoskirvis.techniques.unit import unknown_options

    given = bound.arguments.get(name, signature.parameters[name].default)
    ids = [given] if isinstance(given, str) else given
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and not _is_substitution(i) for i in ids):
        return
    try:
        units = lookup_all(ids)
        options = bound.arguments.get("options")
        if isinstance(options, dict) and "options" in signature.parameters:
            unknown_options(units, {k: v for k, v in options.items() if not _is_substitution(k)})
    except ActivityFailed as exc:
        raise InvalidActivity(f"{signature.func_name}: {exc}") from None


def typed_activity(func: F) -> F:
    """Check argument types at validation and convert text to numbers/booleans at run time."""
    signature = _TypedSignature.from_callable(func)
    signature.hints = typing.get_type_hints(func)
    signature.func_name = func.__name__

    @functools.wraps(func)
    def activity(*args: Any, **kwargs: Any) -> Any:
        bound = inspect.Signature.bind(signature, *args, **kwargs)
        for name, value in list(bound.arguments.items()):
            expected = signature.hints.get(name)
            if name in _OUT_OF_BAND or expected is None:
                continue
            converted = _from_text(value, expected) if isinstance(value, str) else value
            if not _matches(converted, expected):
                raise InvalidActivity(
                    f"argument {name} of {func.__name__} must be {_describe(expected)}, got {value!r}"
                )
            bound.arguments[name] = converted
        return func(*bound.args, **bound.kwargs)

    activity.__signature__ = signature
    return activity  # type: ignore[return-value]


_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def _from_text(value: str, expected: Any) -> Any:
    """`value` converted to the first of `expected`'s number/boolean types it reads as, else unchanged."""
    options = typing.get_args(expected) if typing.get_origin(expected) in (typing.Union, types.UnionType) \
        else (expected,)
    if str in options or Any in options:
        return value
    for option in options:
        text = value.strip().lower()
        if option is bool and text in _TRUE | _FALSE:
            return text in _TRUE
        if option in (int, float):
            try:
                return option(value)
            except ValueError:
                continue
    return value


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
