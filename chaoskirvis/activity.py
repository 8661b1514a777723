"""Type-checked activity arguments, so that `chaos validate` catches a wrong type, not only a wrong name.

chaoslib validates a Python activity by binding the experiment's arguments to
``inspect.signature(func)``. `typed_activity` gives the function a signature whose ``bind`` also
checks each argument against the function's type hints. Values that still hold a ``${...}``
substitution are checked when the activity runs: ``chaos run --var within=30`` substitutes the
string "30", so numbers and booleans written as text are converted then, and anything else that
does not fit the type is refused with a message naming the argument.

Types are not enough: ``within: 1e12`` is a float, port 70000 an int. Arguments (and technique options)
also have bounds, by name (`ARGUMENT_BOUNDS`, `OPTION_BOUNDS`): checked at validation for literal
values (`chaos validate` answers in one line) and at run time for substituted ones, before anything is
sent. Configuration settings read as numbers (``kirvis_ttl_seconds``, ``kirvis_request_timeout``) go
through `configured_number`, which refuses text, NaN, and values out of bounds in one line.
"""
from __future__ import annotations

import functools
import inspect
import math
import posixpath
import re
import types
import typing
from typing import Any, Callable, NamedTuple, TypeVar
from urllib.parse import urlsplit

from chaoslib.exceptions import ActivityFailed, InvalidActivity

__all__ = ["typed_activity", "Between", "ARGUMENT_BOUNDS", "OPTION_BOUNDS", "configured_number", "is_dns_label",
           "TTL_SECONDS", "REQUEST_TIMEOUT_SECONDS"]

F = TypeVar("F", bound=Callable[..., Any])
_OUT_OF_BAND = {"configuration", "secrets"}


class _TypedSignature(inspect.Signature):
    func: Callable[..., Any]
    func_name: str

    @functools.cached_property
    def hints(self) -> dict[str, Any]:
        """The function's resolved type hints, evaluated on first use rather than at import."""
        return typing.get_type_hints(self.func)

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
            problem = _out_of_bounds(self.func_name, name, value)
            if problem:
                raise InvalidActivity(problem)
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
    signature.func = func
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
            if name == "options" and isinstance(converted, dict):
                converted = {k: _option_from_text(k, v) for k, v in converted.items()}
            problem = _out_of_bounds(func.__name__, name, converted)
            if problem:
                raise ActivityFailed(problem)
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


# --- bounds -------------------------------------------------------------------------------------------------

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"  # compiled on first use


def is_dns_label(value: Any) -> bool:
    """An RFC 1123 label (a namespace, a Service name): the whole string, so ``"team-a\\n"`` is not one."""
    return isinstance(value, str) and re.fullmatch(_DNS_LABEL, value) is not None


class Between(NamedTuple):
    """A number from `low` to `high` (exclusive of `low` when `low_open`); NaN and infinities never fit."""

    low: float
    high: float
    low_open: bool = False
    unit: str = ""

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None  # the type check answers that
        fits = math.isfinite(value) and (value > self.low if self.low_open else value >= self.low) \
            and value <= self.high
        return None if fits else f"must be {self.describe()}, got {value!r}"

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        low = f"more than {_plain(self.low)}" if self.low_open else f"at least {_plain(self.low)}"
        return f"{low} and at most {_plain(self.high)}{unit}"


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _text(check: Callable[[str], bool], what: str) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        if value is None or _is_substitution(value):
            return None
        if not isinstance(value, str) or not check(value):
            return f"must be {what}, got {value!r}"
        return None
    return problem


def _list_of(item: Callable[[Any], str | None], what: str) -> Callable[[Any], str | None]:
    def problem(value: Any) -> str | None:
        if value is None or _is_substitution(value):
            return None
        if not isinstance(value, list) or any(item(v) for v in value if not _is_substitution(v)):
            return f"must be {what}, got {value!r}"
        return None
    return problem


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and value == value.strip()


def _absolute_path(value: str) -> bool:
    return value.startswith("/") and "\0" not in value and "\n" not in value and \
        ".." not in posixpath.normpath(value).split("/")


def _token(value: str) -> bool:
    return bool(value) and not any(c.isspace() for c in value) and len(value) <= 1024


def _sysctl(value: Any) -> str | None:
    ok = isinstance(value, dict) and set(value) == {"name", "value"} and all(isinstance(v, str) for v in value.values())
    return None if ok else "bad"


_SECONDS_A_DAY, _SECONDS_AN_HOUR = 86400, 3600
_PORT = Between(1, 65535)
# Configuration settings (see `configured_number`): how long created objects live, how long a request may take.
TTL_SECONDS = Between(0, 30 * _SECONDS_A_DAY, unit="seconds")  # 0: expired at once (for `kirvis cleanup --expired`)
REQUEST_TIMEOUT_SECONDS = Between(0, _SECONDS_AN_HOUR, low_open=True, unit="seconds")

# Bounds of activity arguments, by name; `(function, argument)` overrides the name alone.
ARGUMENT_BOUNDS: dict[Any, Any] = {
    "within": Between(0, _SECONDS_A_DAY, low_open=True, unit="seconds"),
    "poll_interval": Between(0, _SECONDS_AN_HOUR, low_open=True, unit="seconds"),
    "clock_skew_seconds": Between(0, _SECONDS_AN_HOUR, unit="seconds"),
    "ready_timeout": Between(0, _SECONDS_AN_HOUR, low_open=True, unit="seconds"),
    "exec_timeout": Between(0, _SECONDS_AN_HOUR, low_open=True, unit="seconds"),
    "wait_seconds": Between(0, _SECONDS_AN_HOUR, unit="seconds"),
    "port": _PORT,
    ("start_alert_receiver", "port"): Between(0, 65535),  # 0: any free port
    "namespace": _text(is_dns_label, "a DNS label such as 'team-a' (lowercase letters, digits and '-')"),
    "url": _text(_http_url, "an http:// or https:// URL with a host"),
    "ca_file": _text(lambda v: bool(v) and "\0" not in v, "a file path"),
}

# Bounds of technique options (``options: {port: ..., path: ...}``), by option name.
OPTION_BOUNDS: dict[str, Callable[[Any], str | None] | Between] = {
    "port": _PORT,
    "path": _text(_absolute_path, "an absolute path on the node such as '/var/log'"),
    "socket": _text(_absolute_path, "an absolute path on the node such as '/run/containerd/containerd.sock'"),
    "image": _text(lambda v: isinstance(v, str), "an image reference"),
    "role": _text(_token, "a ClusterRole name"),
    "capabilities": _list_of(_text(_token, "x"), "a list of capability names such as ['SYS_ADMIN']"),
    "external_ips": _list_of(_text(_token, "x"), "a list of IP addresses such as ['203.0.113.10']"),
    "sysctls": _list_of(_sysctl, "a list of {name, value} strings such as [{name: kernel.msgmax, value: '65536'}]"),
}
_OPTION_TYPES: dict[str, type] = {"port": int}


def _problem(rule: Any, value: Any) -> str | None:
    if value is None or _is_substitution(value):
        return None
    if isinstance(rule, Between):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"must be a number {rule.describe()}, got {value!r}"
        return rule.problem(value)
    return rule(value)


def _out_of_bounds(func_name: str, name: str, value: Any) -> str | None:
    """One line naming the argument (or option) and its bounds when `value` is outside them, else None."""
    if name == "options" and isinstance(value, dict):
        for key, option in value.items():
            rule = OPTION_BOUNDS.get(key) if isinstance(key, str) else None
            problem = _problem(rule, option) if rule is not None else None
            if problem:
                return f"option {key} of {func_name} {problem}"
        return None
    rule = ARGUMENT_BOUNDS.get((func_name, name), ARGUMENT_BOUNDS.get(name))
    if rule is None or isinstance(value, bool):
        return None
    if isinstance(rule, Between) and not isinstance(value, (int, float)):
        return None  # not a number: the type check answers
    problem = _problem(rule, value)
    return f"argument {name} of {func_name} {problem}" if problem else None


def _option_from_text(key: Any, value: Any) -> Any:
    """An option substituted as text (``port: ${port}`` with ``--var port=8080``) read as its type."""
    wanted = _OPTION_TYPES.get(key) if isinstance(key, str) else None
    if wanted is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return value


def configured_number(value: Any, name: str, default: float, bounds: Between) -> float:
    """A configuration setting read as a number of seconds: `default` when unset, else checked against `bounds`.

    Raises `ActivityFailed` in one line naming the setting for text, NaN, infinities or values out of bounds.
    """
    if value is None or value == "":
        return default
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = value
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise ActivityFailed(f"setting {name} must be a number {bounds.describe()}, got {value!r}")
    problem = bounds.problem(number)
    if problem:
        raise ActivityFailed(f"setting {name} {problem}")
    return number
