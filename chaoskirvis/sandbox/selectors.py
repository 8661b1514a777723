"""Label and field selectors, in the syntax and with the semantics of the Kubernetes API.

Label selector text (`labelSelector=`): comma-separated requirements, all of which must hold:
`key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key` (exists),
`!key` (does not exist), `key>N`, `key<N`. `!=` and `notin` also match objects without the key.
Object form (`spec.selector` of workloads): `matchLabels` and `matchExpressions` with the operators
In, NotIn, Exists and DoesNotExist.

Field selector text (`fieldSelector=`): comma-separated `field=value`, `field==value`, `field!=value`;
`\\`, `,` and `=` in values are escaped with a backslash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaoskirvis.sandbox.resources import label_value_errors, qualified_name_errors


class SelectorError(ValueError):
    """A selector that does not parse or names something that cannot be selected on."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # one of: = != in notin exists !exists gt lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case "!exists":
                return not present
            case _:
                if not present or not re.fullmatch(r"-?\d+", value or ""):
                    return False
                bound = int(self.values[0])
                return int(value) > bound if self.operator == "gt" else int(value) < bound


@dataclass(frozen=True)
class LabelSelector:
    """All requirements must hold; no requirements selects everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(requirement.matches(labels or {}) for requirement in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


_OPERATORS = frozenset({"=", "==", "!=", "!", "(", ")", ",", "<", ">"})
_TOKEN = re.compile(r"\s*(==|!=|[=!(),<>]|[^\s=!(),<>]+)")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing whitespace is left
            break
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _LabelSelectorParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.position += 1
        return token

    def expect_identifier(self, what: str) -> str:
        token = self.take()
        if token is None or token in _OPERATORS:
            found = "end of string" if token is None else token
            raise SelectorError(f"unable to parse requirement: found '{found}', expected: {what}")
        return token

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        while self.peek() is not None:
            requirements.append(self.requirement())
            token = self.take()
            if token not in (",", None):
                raise SelectorError(f"found '{token}', expected: ',' or 'end of string'")
        return LabelSelector(tuple(requirements))

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return _validated(Requirement(self.expect_identifier("identifier after '!'"), "!exists"))
        key = self.expect_identifier("identifier")
        operator = self.peek()
        if operator in (",", None):
            return _validated(Requirement(key, "exists"))
        self.take()
        if operator in ("=", "==", "!="):
            value = "" if self.peek() in (",", None) else self.expect_identifier("a value")
            return _validated(Requirement(key, "!=" if operator == "!=" else "=", (value,)))
        if operator in ("in", "notin"):
            return _validated(Requirement(key, operator, self.value_set()))
        if operator in (">", "<"):
            bound = self.expect_identifier("an integer")
            if not re.fullmatch(r"-?\d+", bound):
                raise SelectorError(f"unable to parse requirement: invalid integer value: {bound}")
            return _validated(Requirement(key, "gt" if operator == ">" else "lt", (bound,)))
        raise SelectorError(
            f"unable to parse requirement: found '{operator}', expected: "
            "in, notin, =, ==, !=, gt, lt"
        )

    def value_set(self) -> tuple[str, ...]:
        token = self.take()
        if token != "(":
            raise SelectorError(f"unable to parse requirement: found '{token or 'end of string'}', expected: '('")
        tokens: list[str] = []
        while (token := self.take()) != ")":
            if token is None or (token in _OPERATORS and token != ","):
                raise SelectorError(f"unable to parse requirement: found '{token or 'end of string'}', "
                                    "expected: ',', ')' or identifier")
            tokens.append(token)
        if not tokens:
            return ()
        values, current = [], ""
        for token in tokens:
            if token == ",":
                values.append(current)
                current = ""
            elif current:
                raise SelectorError(f"unable to parse requirement: found '{token}', expected: ',' or ')'")
            else:
                current = token
        return (*values, current)


def _validated(requirement: Requirement) -> Requirement:
    key_errors = qualified_name_errors(requirement.key)
    if key_errors:
        raise SelectorError(f'unable to parse requirement: key: Invalid value: "{requirement.key}": '
                            f"{'; '.join(key_errors)}")
    if requirement.operator in ("in", "notin") and not requirement.values:
        raise SelectorError("unable to parse requirement: values: Required value: "
                            "for 'in', 'notin' operators, values set can't be empty")
    if requirement.operator not in ("gt", "lt"):
        for value in requirement.values:
            errors = label_value_errors(value)
            if errors:
                raise SelectorError(f"unable to parse requirement: values[0][{requirement.key}]: "
                                    f'Invalid value: "{value}": {"; ".join(errors)}')
    return requirement


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a `labelSelector` query value; None or blank selects everything."""
    return _LabelSelectorParser(text or "").parse()


_EXPRESSION_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}


def label_selector_from_object(selector: Mapping[str, Any]) -> LabelSelector:
    """A metav1.LabelSelector (`matchLabels`, `matchExpressions`) as a LabelSelector."""
    requirements = [
        Requirement(str(key), "=", (str(value),)) for key, value in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        operator = _EXPRESSION_OPERATORS.get(expression.get("operator", ""))
        if operator is None:
            raise SelectorError(f"{expression.get('operator')!r} is not a valid label selector operator")
        values = tuple(str(v) for v in expression.get("values") or ())
        requirements.append(Requirement(str(expression.get("key", "")), operator, values))
    return LabelSelector(tuple(requirements))


@dataclass(frozen=True)
class FieldSelector:
    """All terms (field, operator, value) must hold; operator is '=' or '!='."""

    terms: tuple[tuple[str, str, str], ...] = ()

    def matches(self, field_value: Callable[[str], str]) -> bool:
        return all((field_value(field) == value) == (operator == "=") for field, operator, value in self.terms)


def _split_unescaped(text: str) -> list[str]:
    """Split on commas that are not escaped with a backslash, keeping the escapes."""
    terms, current, escaped = [], "", False
    for char in text:
        if char == "," and not escaped:
            terms.append(current)
            current = ""
            continue
        current += char
        escaped = char == "\\" and not escaped
    return [*terms, current]


def _unescape(value: str) -> str:
    result, escaped = "", False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            result += char
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            result += char
    return result


def parse_field_selector(text: str | None, selectable: tuple[str, ...]) -> FieldSelector:
    """Parse a `fieldSelector` query value, accepting only the fields in `selectable`."""
    if not (text or "").strip():
        return FieldSelector()
    terms: list[tuple[str, str, str]] = []
    for term in _split_unescaped(text or ""):
        match = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)(.*)", term)
        if match is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, operator, raw_value = match.groups()
        if field not in selectable:
            raise SelectorError(f"field label not supported: {field}")
        terms.append((field, "!=" if operator == "!=" else "=", _unescape(raw_value)))
    return FieldSelector(tuple(terms))


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """The string value of a dotted field path in an object, as field selectors compare it."""
    value: Any = obj
    for part in field.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
