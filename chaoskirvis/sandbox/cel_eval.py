"""CEL for the sandbox's ValidatingAdmissionPolicies, on `cel-expr-python` (the CEL project's wrapper of CEL C++).

The Kubernetes API server compiles policy expressions with cel-go when a policy is written (parse and type
check: undeclared names, no matching overload, a wrong result type) and rejects the policy with
``compilation failed: ERROR: <input>:LINE:COLUMN: MESSAGE`` and the source line with a caret under it; CEL
C++ checks the same things and words them the same way but for a member call's argument types, reworded here
('dyn.(int)', not '(dyn, int)'); the checks CEL C++ lacks are made here: the fields
of `request` and `namespaceObject`, `variables.NAME`, and cel-go's literal validators (``invalid duration
argument`` for ``duration('2 hours')``, likewise timestamp() and .matches()). At admission the expressions
are evaluated, and runtime errors are reworded as cel-go words them (``no such key: NAME``, ``no such
overload``, ``division by zero``, ``index 'I' out of range in list size 'N'``).

The environment is Kubernetes' (apiserver `pkg/cel/environment/base.go`): optional types (``.?field``,
``[?key]``, ``orValue``, ``hasValue``), the strings extension (version 2, with ``format``), sets, and the
Kubernetes libraries in `cel_kubernetes` (regex ``find``/``findAll``; lists ``isSorted``, ``sum``, ``min``,
``max``, ``indexOf``, ``lastIndexOf``; ``quantity``, ``url``, ``ip`` and ``cidr`` with their members, as
one-entry maps: see `cel_kubernetes_values`), and the authorizer library with the ``authorizer`` and
``authorizer.requestResource`` variables where they are declared (`cel_authorizer`). Each expression is type
checked in an environment that declares the authorizer's types as upstream does, and evaluated by a program
compiled where they are maps (see `cel_authorizer`). Sandbox limits, refused at compile time with a message
saying so: the format library (``format.dns1123Label()``; semver came after 1.32), and cross-type numeric
comparison of literals (``1 < 1.5``), which cel-go allows and CEL C++ does not offer.
The Python wrapper cannot hand an optional value in or out, so a variable whose value is an optional
(``object.metadata.?labels``) is written out in full where it is used.

Chosen by measuring (Python 3.12, on this machine): cel-expr-python 0.1.3 compiles Kubernetes' optional
syntax, type-checks at compile time with cel-go's wording, takes custom functions, and evaluates a
five-container ``all(c, ...)`` in ~15-19 us; common-expression-language 0.10.0 (Rust) ~87 us, no optional
syntax, no type checking; cel-python 0.5.0 ~2200 us, no optional syntax, no checking of undeclared names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_optional, ext_strings

from chaoskirvis.sandbox import cel_authorizer
from chaoskirvis.sandbox.cel_kubernetes import KUBERNETES_LIBRARY

_STATUS = re.compile(r"^[A-Z_]+: ")
_STATUS_SUFFIX = re.compile(r" \[[A-Z_]+\]$")
_UNDECLARED = re.compile(r"ERROR: <input>:(\d+):(\d+): undeclared reference to '(\w+)'")
_QUALIFIED_UNDECLARED = re.compile(
    r"ERROR: <input>:\d+:\d+: undeclared reference to '(\w+(?:\.\w+)+)' \(in container ''\)\n \| [^\n]*\n \| \.*\^")
_NO_OVERLOAD = re.compile(r"(ERROR: <input>:(\d+):(\d+): found no matching overload for '[^']+' applied to ')"
                          r"\((.*)\)'$", re.MULTILINE)
_MISSING_KEY = re.compile(r'^Key not found in map : "?(.*?)"?$')
_INDEX = re.compile(r"^Index error: index=(-?\d+) size=(\d+)$")
_VARIABLE_FIELD = re.compile(r"(?<![\w.])variables\s*\.\s*([A-Za-z_]\w*)")
_TYPED_SELECT = re.compile(r"(?<![\w.])(request|namespaceObject)((?:\s*\.\s*[A-Za-z_]\w*)+)")
_LITERAL_CALL = re.compile(r"(?:(?<![\w.])(?P<function>duration|timestamp)|\.\s*(?P<method>matches))\s*\(\s*"
                           r"(?P<literal>[rR]?(?:'[^'\n]*'|\"[^\"\n]*\"))\s*\)")
_FIELD = re.compile(r"\s*(\.)\s*([A-Za-z_]\w*)")
_STRING_LITERAL = re.compile(r"[rR]?(?:'''.*?'''|" r'""".*?"""' r"""|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""",
                             re.DOTALL)
# The object types Kubernetes declares `request` and `namespaceObject` with (plugin/cel/compile.go
# BuildRequestType, BuildNamespaceType): their fields, None where the type has no fields to check.
_GVK = {"group": None, "version": None, "kind": None}
_GVR = {"group": None, "version": None, "resource": None}
_TYPED_VARIABLES: dict[str, Any] = {
    "request": {"kind": _GVK, "resource": _GVR, "subResource": None, "requestKind": _GVK, "requestResource": _GVR,
                "requestSubResource": None, "name": None, "namespace": None, "operation": None,
                "userInfo": {"username": None, "uid": None, "groups": None, "extra": None}, "dryRun": None,
                "options": None},
    "namespaceObject": {"metadata": None, "spec": {"finalizers": None},
                        "status": {"conditions": None, "phase": None}},
}
_SETS = "extensions:\n  - name: sets\n"


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


Activation = Any  # cel_expr_python's Activation: variables bound for evaluation


def activation(variables: Mapping[str, Any]) -> Activation:
    """Variables bound once for several evaluations: binding them costs most of an evaluation given a dict."""
    return _runtime_environment(frozenset()).Activation(dict(variables))


@dataclass(frozen=True)
class Expression:
    """A compiled expression: its source, its program, its result type (cel-go's name) and the source the program
    was compiled from (the source, with optional-valued variables written out in full: see compile_expression)."""

    source: str
    program: cel.Expression
    result_type: str
    compiled_source: str

    def evaluate(self, bound: Activation) -> Any:
        """The plain Python value of the expression for these variables (`activation`); raises CelEvaluationError."""
        result = self.program.eval(bound)
        try:
            if result.type().name() == "ERROR":
                raise _evaluation_error(str(result.value()))
            return result.plain_value()
        except (RuntimeError, TypeError):  # an optional value, which the Python wrapper cannot hand out
            raise CelEvaluationError(f"the sandbox cannot carry a value of type {self.result_type} out of CEL; "
                                     "this is a sandbox limit") from None


def compile_expression(source: str, declared: Collection[str], variable_names: Collection[str] = (),
                       result_types: tuple[str, ...] = (), optional_variables: Mapping[str, str] | None = None,
                       ) -> Expression:
    """Compile `source` where the identifiers `declared` exist and `variables.NAME` for `variable_names`.

    `result_types` (e.g. "bool"; "string", "null_type") are the types the API server allows for the expression's
    result (dyn passes). Raises CelCompileError with cel-go's wording (or a sandbox-limit message) when it does
    not compile. `optional_variables` are the variables whose value is an optional, by name, with the source to
    compute them: an optional cannot be handed to CEL C++ from Python, so `variables.NAME` is evaluated as that
    source, in parentheses (the same value: CEL has no side effects).
    """
    try:
        checked = _environment(frozenset(declared)).compile(source)
    except RuntimeError as error:
        raise CelCompileError(_compile_error_detail(source, _strip_status(str(error)))) from None
    code = _without_string_literals(source)
    if "variables" in declared:
        for match in _VARIABLE_FIELD.finditer(code):
            if match.group(1) not in variable_names:
                raise CelCompileError("compilation failed: " + _display(
                    source, match.start(1) - 1, f"undefined field '{match.group(1)}'"))
    _check_typed_fields(source, code)
    _check_literal_arguments(source, code)
    returned = _cel_go_type_name(checked.return_type().name())
    if result_types and returned not in (*result_types, "dyn"):
        allowed = result_types[0] if len(result_types) == 1 else f"one of [{' '.join(result_types)}]"
        raise CelCompileError(f"must evaluate to {allowed} but got {returned}")
    runtime = _runtime_environment(frozenset(declared))
    inlined = _inline_optional_variables(source, code, optional_variables or {}) if "variables" in declared else source
    program = _program(runtime, inlined)
    if program is None and inlined != source:  # e.g. has(variables.NAME): evaluated as written (a sandbox limit)
        inlined, program = source, _program(runtime, source)
    if program is None:
        raise CelCompileError("compilation failed: the sandbox type-checked the expression but could not build its "
                              "program. This is a sandbox limit; the policy is valid on a real cluster")
    return Expression(source, program, _cel_go_type_name(program.return_type().name()), inlined)


def _program(environment: Any, source: str) -> cel.Expression | None:
    """The program evaluating `source` in `environment`, None when it does not compile there."""
    try:
        return environment.compile(source)
    except RuntimeError:
        return None


def _inline_optional_variables(source: str, code: str, optional_variables: Mapping[str, str]) -> str:
    """The source with each `variables.NAME` of an optional-valued variable replaced by (ITS SOURCE)."""
    pieces, last = [], 0
    for match in _VARIABLE_FIELD.finditer(code):
        if match.group(1) in optional_variables:
            pieces += [source[last:match.start()], f"({optional_variables[match.group(1)]})"]
            last = match.end()
    return "".join(pieces) + source[last:]


@functools.lru_cache(maxsize=16)
def _environment(declared: frozenset[str]) -> Any:
    """Kubernetes' CEL environment with these variables for type checking: dyn, but the authorizer's with its
    types; built once per set of names."""
    return cel.NewEnv(config=cel.NewEnvConfigFromYaml(_SETS),
                      variables={name: cel_authorizer.VARIABLE_TYPES.get(name, cel.Type.DYN)
                                 for name in sorted(declared)},
                      extensions=[ext_optional.ExtOptional(), ext_strings.ExtStrings(2), KUBERNETES_LIBRARY],
                      functions=cel_authorizer.DECLARATIONS)


@functools.lru_cache(maxsize=16)
def _runtime_environment(declared: frozenset[str]) -> Any:
    """The same environment for evaluation: every variable dyn and the authorizer library's values maps."""
    return cel.NewEnv(config=cel.NewEnvConfigFromYaml(_SETS),
                      variables={name: cel.Type.DYN for name in sorted(declared)},
                      extensions=[ext_optional.ExtOptional(), ext_strings.ExtStrings(2), KUBERNETES_LIBRARY,
                                  cel_authorizer.LIBRARY])


def _without_string_literals(source: str) -> str:
    """The source with every string literal blanked (same length), so that names inside them are not read."""
    return _STRING_LITERAL.sub(lambda match: " " * len(match.group(0)), source)


def _check_literal_arguments(source: str, code: str) -> None:
    """cel-go's literal validators in Kubernetes' environment: a duration(), timestamp() or .matches() whose
    argument is a string literal that does not convert or compile is refused (`invalid duration argument`)."""
    for match in _LITERAL_CALL.finditer(source):
        if code[match.start()] != source[match.start()]:  # inside a string literal
            continue
        function, literal = match.group("function") or match.group("method"), match.group("literal")
        probe = f"''.matches({literal})" if function == "matches" else f"{function}({literal})"
        try:
            invalid = _runtime_environment(frozenset()).compile(probe).eval().type().name() == "ERROR"
        except RuntimeError:
            continue
        if invalid:
            raise CelCompileError("compilation failed: " + _display(
                source, match.start("literal"), f"invalid {function} argument"))


def _check_typed_fields(source: str, code: str) -> None:
    """cel-go's checker refuses a field that `request`'s or `namespaceObject`'s declared type does not have."""
    for match in _TYPED_SELECT.finditer(code):
        fields: Any = _TYPED_VARIABLES[match.group(1)]
        for field in _FIELD.finditer(match.group(2)):
            if not isinstance(fields, dict):
                break
            if field.group(2) not in fields:
                raise CelCompileError("compilation failed: " + _display(
                    source, match.start(2) + field.start(1), f"undefined field '{field.group(2)}'"))
            fields = fields[field.group(2)]


def _compile_error_detail(source: str, message: str) -> str:
    message = _QUALIFIED_UNDECLARED.sub(lambda match: _undeclared_root(source, match), message)
    message = _NO_OVERLOAD.sub(lambda match: _member_signature(source, match), message)
    undeclared = _UNDECLARED.search(message)
    if undeclared and undeclared.group(3) == "format":
        return _sandbox_limit(undeclared, "the Kubernetes CEL format library (format.dns1123Label(), format.named())",
                              "its CEL engine (the Python package cel-expr-python) does not provide it")
    if "found no matching overload for '_" in message and re.search(r"'\((int|uint|double), (int|uint|double)\)'",
                                                                     message):
        message += ("\n(the sandbox's CEL engine does not compare numbers of different types, which the API "
                    "server allows: a sandbox limit)")
    return f"compilation failed: {message}"


def _member_signature(source: str, match: re.Match[str]) -> str:
    """cel-go prints a member call's argument types as 'TARGET.(ARGS)' (checker/format.go formatFunctionInternal);
    CEL C++ prints '(TARGET, ARGS)'. The call is a member call when a '.' comes before its name."""
    line, column = int(match.group(2)), int(match.group(3))
    lines = source.split("\n")
    offset = sum(len(text) + 1 for text in lines[:line - 1]) + column - 1
    before = source[:offset].rstrip()
    if not re.search(r"\.\s*[A-Za-z_]\w*$", before):
        return match.group(0)
    types, depth = [""], 0
    for character in match.group(4):
        depth += {"(": 1, ")": -1}.get(character, 0)
        if character == "," and depth == 0:
            types.append("")
        else:
            types[-1] += character
    target, *arguments = (text.strip() for text in types)
    return f"{match.group(1)}{target}.({', '.join(arguments)})'"


def _undeclared_root(source: str, match: re.Match[str]) -> str:
    """cel-go names the undeclared root of `params.x` at the root; CEL C++ names `params.x` at the last dot."""
    root, *fields = match.group(1).split(".")
    found = re.search(r"(?<![\w.])" + r"\s*\.\s*".join(map(re.escape, [root, *fields])), source)
    return _display(source, found.start() if found else 0, f"undeclared reference to '{root}' (in container '')")


def _sandbox_limit(undeclared: re.Match[str], what: str, why: str) -> str:
    return (f"compilation failed: <input>:{undeclared.group(1)}:{undeclared.group(2)}: {what} is not available in "
            f"the sandbox: {why}. This is a sandbox limit; the policy is valid on a real cluster")


def _evaluation_error(message: str) -> CelEvaluationError:
    """A CEL C++ runtime error in cel-go's words."""
    message = _strip_status(message)
    missing = _MISSING_KEY.match(message)
    if missing:
        return CelEvaluationError(f"no such key: {missing.group(1)}", missing_key=missing.group(1))
    index = _INDEX.match(message)
    if index:
        return CelEvaluationError(f"index '{index.group(1)}' out of range in list size '{index.group(2)}'")
    if message.startswith("No matching overloads found"):
        return CelEvaluationError("no such overload")
    if message == "divide by zero":
        return CelEvaluationError("division by zero")
    if message == "modulus by zero":
        return CelEvaluationError("modulus by zero")
    return CelEvaluationError(message)


def _strip_status(message: str) -> str:
    """Without the absl status code around CEL C++'s message ("INVALID_ARGUMENT: ... [INVALID_ARGUMENT]")."""
    return _STATUS_SUFFIX.sub("", _STATUS.sub("", message.strip()))


def _cel_go_type_name(name: str) -> str:
    """CEL C++'s type name ("LIST<INT>", "optional_type<DYN>") as cel-go prints it ("list(int)"); a declared type's
    name ("kubernetes.authorization.Decision") as it is."""
    return re.sub(r"\b[A-Z_]+\b", lambda word: word.group(0).lower(), name).replace("<", "(").replace(">", ")")


def cel_type_name(value: Any) -> str:
    """cel-go's name of a plain value's type at run time."""
    for python_type, name in ((bool, "bool"), (int, "int"), (float, "double"), (str, "string"), (bytes, "bytes"),
                              (list, "list"), (dict, "map")):
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _display(source: str, offset: int, message: str) -> str:
    """cel-go's Error.ToDisplayString: the position, the message, the source line and a caret under it."""
    before = source[:offset]
    line, column = before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
    snippet = source.splitlines()[line - 1].replace("\t", " ") if source.splitlines() else ""
    return f"ERROR: <input>:{line}:{column}: {message}\n | {snippet}\n | {'.' * (column - 1)}^"


__all__ = ["Activation", "CelCompileError", "CelEvaluationError", "Expression", "activation", "cel_type_name",
           "compile_expression"]
