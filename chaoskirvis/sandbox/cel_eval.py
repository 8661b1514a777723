"""CEL for the sandbox's ValidatingAdmissionPolicies, on the `cel` package (PyPI common-expression-language).

The Kubernetes API server compiles policy expressions with cel-go when a policy is written, and rejects
it when one does not parse or names something undeclared; it evaluates them at admission. This module
does both with the Rust-backed `cel` package and words errors as cel-go does:

- compile errors: ``compilation failed: ERROR: <input>:LINE:COLUMN: MESSAGE`` followed by the source line
  and a caret line, each prefixed by `` | `` (cel-go's `Error.ToDisplayString`);
- identifiers that are not declared (``params`` without a paramKind, a typo'd variable) and functions
  that neither cel nor the libraries registered here provide: ``undeclared reference to 'NAME' (in
  container '')``; ``variables.NAME`` of a variable not defined (before): ``undefined field 'NAME'``;
- runtime errors: ``no such key: NAME``, ``no such overload``, ``division by zero``, ...

The `cel` package parses neither Kubernetes' optional field syntax (``object.spec.?x``, ``m[?k]``) nor
provides Kubernetes' own CEL libraries (quantity, url, ip/cidr, regex find, authorizer, ...): expressions
using them are refused at compile time with a message that says it is a sandbox limit. Positions of
undeclared names are located in the source text (the first occurrence), as cel-go's checker reports them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import cel
from cel.stdlib import EXTENSIONS, add_stdlib_to_context

# Functions the `cel` package provides natively (the CEL standard library, timestamp accessors, optionals).
_NATIVE_FUNCTIONS = frozenset({
    "size", "int", "uint", "double", "string", "bytes", "timestamp", "duration", "type", "dyn",
    "contains", "startsWith", "endsWith", "matches",
    "getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate", "getDayOfWeek", "getHours",
    "getMinutes", "getSeconds", "getMilliseconds",
    "of", "none", "ofNonZeroValue", "hasValue", "value", "orValue", "or",
})
# cel-go's extension libraries that Kubernetes also enables, as the `cel` package provides them in Python.
_LIBRARY_FUNCTIONS = frozenset(name.rpartition(".")[2] for library in EXTENSIONS.values() for name in library)
_KNOWN_FUNCTIONS = _NATIVE_FUNCTIONS | _LIBRARY_FUNCTIONS
# Identifiers that are not variables: namespaces of library functions (`math.greatest`) and type names
# (`type(x) == string`); the `cel` package reports both among an expression's variables.
_BUILTIN_IDENTIFIERS = frozenset({"math", "strings", "sets", "base64", "lists", "optional", "bool", "bytes",
                                  "double", "int", "uint", "string", "list", "map", "null_type", "type"})
# Functions of Kubernetes' own CEL libraries that the sandbox does not provide.
_KUBERNETES_ONLY_FUNCTIONS = frozenset({
    "isSorted", "find", "findAll", "url", "isURL", "getScheme", "getHost", "getHostname", "getPort",
    "getEscapedPath", "getQuery", "quantity", "isQuantity", "sign", "isGreaterThan", "isLessThan",
    "compareTo", "asInteger", "asApproximateFloat", "ip", "isIP", "cidr", "isCIDR", "containsIP",
    "containsCIDR", "format", "semver", "isSemver", "check", "allowed", "reason", "errored", "error",
    "serviceAccount", "path", "group", "resource", "subresource", "namespace", "name", "fieldSelector",
    "labelSelector",
})
_MACRO_VARIABLE = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_VARIABLE_FIELD = re.compile(r"(?<![\w.])variables\s*\.\s*([A-Za-z_]\w*)")
_UNSUPPORTED_OPTIONAL = re.compile(r"<input>:(\d+):(\d+): unsupported syntax '(\.\?|\[\?)'")
_PARSE_ERROR_PREFIX = re.compile(r"^Failed to parse expression .*?: (?=ERROR: )", re.DOTALL)
_OPERATOR = re.compile(r"^[_@!-]")


class CelCompileError(ValueError):
    """An expression that does not compile; `detail` is the API server's field error detail."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class CelEvaluationError(Exception):
    """An expression that failed at run time; `message` in cel-go's words, `missing_key` for a missing key."""

    def __init__(self, message: str, missing_key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.missing_key = missing_key


@dataclass(frozen=True)
class Expression:
    """A compiled expression and its source."""

    source: str
    program: cel.Program

    def evaluate(self, context: cel.Context) -> Any:
        try:
            return self.program.execute(context)
        except KeyError as error:
            key = str(error.args[0]) if error.args else ""
            raise CelEvaluationError(f"no such key: {key}", missing_key=key) from None
        except ZeroDivisionError:
            raise CelEvaluationError("division by zero") from None
        except IndexError as error:
            raise CelEvaluationError(_index_error(str(error))) from None
        except TypeError:
            raise CelEvaluationError("no such overload") from None
        except Exception as error:  # the package raises RuntimeError and ValueError with its own hints
            raise CelEvaluationError(_first_sentence(str(error))) from None


def compile_expression(source: str, declared: Collection[str], variable_names: Collection[str] = ()) -> Expression:
    """Compile `source` where the identifiers `declared` exist and `variables.NAME` for `variable_names`.

    Raises CelCompileError with cel-go's wording (or a sandbox-limit message) when it does not compile.
    """
    try:
        program = cel.compile(source)
    except ValueError as error:
        raise CelCompileError(_parse_error_detail(source, str(error))) from None
    macro_variables = set(_MACRO_VARIABLE.findall(source))
    for name in program.variables():
        if name not in declared and name not in macro_variables and name not in _BUILTIN_IDENTIFIERS:
            if name == "authorizer":
                raise CelCompileError(_sandbox_limit(source, name, "the 'authorizer' variable"))
            raise CelCompileError(_undeclared(source, name, call=False))
    for name in program.functions():
        if _OPERATOR.match(name) or name in _KNOWN_FUNCTIONS:
            continue
        if name in _KUBERNETES_ONLY_FUNCTIONS:
            raise CelCompileError(_sandbox_limit(source, name, f"the Kubernetes CEL library function '{name}'"))
        raise CelCompileError(_undeclared(source, name, call=True))
    if "variables" in declared:
        for match in _VARIABLE_FIELD.finditer(source):
            if match.group(1) not in variable_names:
                raise CelCompileError("compilation failed: " + _display(
                    source, match.start(1) - 1, f"undefined field '{match.group(1)}'"))
    return Expression(source, program)


def evaluation_context(variables: Mapping[str, Any]) -> cel.Context:
    """A context with these variables and the library functions Kubernetes enables besides the standard ones."""
    context = cel.Context(dict(variables))
    add_stdlib_to_context(context)
    return context


def _parse_error_detail(source: str, error: str) -> str:
    optional = _UNSUPPORTED_OPTIONAL.search(error)
    if optional:
        line, column, syntax = int(optional.group(1)), int(optional.group(2)), optional.group(3)
        where = f"<input>:{line}:{column}"
        return (f"compilation failed: {where}: the sandbox cannot compile Kubernetes' optional field syntax "
                f"'{syntax}' (e.g. object.spec.?x.orValue(y)): its CEL engine, the Python package "
                "common-expression-language, does not parse it. This is a sandbox limit; the policy is valid on a "
                "real cluster. Write it with has() instead, e.g. has(object.spec.x) ? object.spec.x : y")
    detail = _PARSE_ERROR_PREFIX.sub("", error).replace("\n| ", "\n | ")
    return f"compilation failed: {detail}"


def _undeclared(source: str, name: str, *, call: bool) -> str:
    """cel-go's checker error, at the identifier or, for a function, at its call's opening parenthesis."""
    pattern = rf"\b{re.escape(name)}\s*\(" if call else rf"(?<![\w.]){re.escape(name)}\b"
    match = re.search(pattern, source)
    offset = 0 if match is None else (match.end() - 1 if call else match.start())
    return "compilation failed: " + _display(source, offset, f"undeclared reference to '{name}' (in container '')")


def _sandbox_limit(source: str, name: str, what: str) -> str:
    match = re.search(rf"\b{re.escape(name)}\b", source)
    line, column = _position(source, match.start() if match else 0)
    return (f"compilation failed: <input>:{line}:{column}: {what} is not available in the sandbox: its CEL engine, "
            "the Python package common-expression-language, does not provide it. This is a sandbox limit; the "
            "policy is valid on a real cluster")


def _display(source: str, offset: int, message: str) -> str:
    """cel-go's Error.ToDisplayString: the position, the message, the source line and a caret under it."""
    line, column = _position(source, offset)
    snippet = source.splitlines()[line - 1].replace("\t", " ") if source.splitlines() else ""
    return f"ERROR: <input>:{line}:{column}: {message}\n | {snippet}\n | {'.' * (column - 1)}^"


def _position(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    before = source[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _index_error(message: str) -> str:
    """cel-go says "index '5' out of range in list size '1'"; the package does not tell the size."""
    index = message.rpartition(":")[2].strip()
    return f"index '{index}' out of range in list" if index.lstrip("-").isdigit() else _first_sentence(message)


def _first_sentence(message: str) -> str:
    """The package's message without the hints it appends ("Check that ...")."""
    return message.split(". Check ")[0].split(". CEL does not ")[0].strip()


__all__ = ["CelCompileError", "CelEvaluationError", "Expression", "compile_expression", "evaluation_context"]
