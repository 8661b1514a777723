"""Kubernetes' CEL value libraries: quantity, url, ip and cidr (apiserver `pkg/cel/library`).

Kubernetes gives these values opaque CEL types (kubernetes.Quantity, kubernetes.URL, net.IP, net.CIDR). CEL
C++ here cannot carry an opaque value through Python, so each is a one-entry map from its type name to its
canonical text (``{"kubernetes.Quantity": "3/2"}``): equal values are equal maps, as upstream's Equal, and
each function checks the type of what it is given (``no such overload`` otherwise). The difference a policy
author can see: the compiler takes such a value for a map, so a wrong method on it (``quantity('1').getHost()``)
is refused when evaluated rather than when the policy is created, and ``type(quantity('1'))`` is map.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from cel_expr_python import cel

from chaoskirvis.sandbox import quantities

QUANTITY, URL, IP, CIDR = "kubernetes.Quantity", "kubernetes.URL", "net.IP", "net.CIDR"
OPAQUE = cel.Type.Map(cel.Type.STRING, cel.Type.STRING)
_S, _I, _B, _D = cel.Type.STRING, cel.Type.INT, cel.Type.BOOL, cel.Type.DOUBLE

_QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


def _value(obj: Any, kind: str) -> str:
    if isinstance(obj, dict) and len(obj) == 1 and kind in obj:
        return obj[kind]
    raise ValueError("no such overload")


def _kind_of(obj: Any) -> str:
    if isinstance(obj, dict) and len(obj) == 1:
        kind = next(iter(obj))
        if kind in (QUANTITY, URL, IP, CIDR):
            return kind
    raise ValueError("no such overload")


# -- quantity ---------------------------------------------------------------------------------------------------

def _parse_quantity(text: str) -> Fraction:
    """resource.ParseQuantity (see `quantities`), exactly."""
    amount = quantities.value(text) if text == text.strip() else None
    if amount is None:
        raise ValueError(_QUANTITY_ERROR)
    return Fraction(amount)


def _quantity(amount: Fraction) -> dict[str, str]:
    return {QUANTITY: f"{amount.numerator}/{amount.denominator}"}


def _amount(obj: Any) -> Fraction:
    return Fraction(_value(obj, QUANTITY))


def _operand(obj: Any) -> Fraction:
    return Fraction(obj) if isinstance(obj, int) and not isinstance(obj, bool) else _amount(obj)


def _as_integer(obj: Any) -> int:
    amount = _amount(obj)
    if amount.denominator != 1 or not _INT64[0] <= amount.numerator <= _INT64[1]:
        raise ValueError("cannot convert value to integer")
    return amount.numerator


def _compare(a: Any, b: Any) -> int:
    left, right = _amount(a), _amount(b)
    return (left > right) - (left < right)


# -- url --------------------------------------------------------------------------------------------------------

def _parse_url(text: str) -> urllib.parse.SplitResult:
    """Go's url.ParseRequestURI: an absolute URI, or an absolute path."""
    parts = urllib.parse.urlsplit(text)
    if not (parts.scheme and (parts.netloc or parts.path)) and not text.startswith("/") or " " in text:
        raise ValueError(f'URL parse error during conversion from string: parse "{text}": invalid URI for request')
    return parts


def _to_url(text: str) -> dict[str, str]:
    _parse_url(text)
    return {URL: text}


def _url(obj: Any) -> urllib.parse.SplitResult:
    return urllib.parse.urlsplit(_value(obj, URL))


def _hostname(obj: Any) -> str:
    host = _url(obj).netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1:host.find("]")]
    return host.rpartition(":")[0] if ":" in host else host


def _port(obj: Any) -> str:
    host = _url(obj).netloc.rpartition("@")[2]
    tail = host.rpartition("]")[2] if host.startswith("[") else host
    return tail.rpartition(":")[2] if ":" in tail else ""


def _query(obj: Any) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(_url(obj).query, keep_blank_values=True)


# -- ip and cidr ------------------------------------------------------------------------------------------------

def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Kubernetes' ip(): no zone, no IPv4-mapped IPv6 address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"IP Address {text!r} parse error during conversion from string: ParseAddr({text!r}): "
                         "unable to parse IP") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise ValueError("IP address with zone value is not allowed")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        raise ValueError("IPv4-mapped IPv6 address is not allowed")
    return address


def _parse_cidr(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    address, slash, bits = text.partition("/")
    if not slash or not bits.isdigit():
        raise ValueError(f"network address parse error during conversion from string: netip.ParsePrefix({text!r}): "
                         "no '/'")
    _parse_ip(address)
    try:
        return ipaddress.ip_interface(text)
    except ValueError as error:
        raise ValueError(f"network address parse error during conversion from string: {error}") from None


def _ip(obj: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(_value(obj, IP))


def _cidr(obj: Any) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(_value(obj, CIDR))


def _succeeds(parse: Callable[[str], Any]) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            parse(text)
        except ValueError:
            return False
        return True
    return check


def _is_global_unicast(obj: Any) -> bool:
    """Go's netip.Addr.IsGlobalUnicast: anything but unspecified, loopback, multicast, link-local, broadcast."""
    address = _ip(obj)
    return not (address.is_unspecified or address.is_loopback or address.is_multicast or address.is_link_local
                or address == ipaddress.ip_address("255.255.255.255"))


def _is_link_local_multicast(obj: Any) -> bool:
    address = _ip(obj)
    network = "224.0.0.0/24" if address.version == 4 else "ff02::/16"
    return address in ipaddress.ip_network(network)


def _contains_ip(cidr: Any, ip: Any) -> bool:
    address = _parse_ip(ip) if isinstance(ip, str) else _ip(ip)
    return address in _cidr(cidr).network


def _contains_cidr(cidr: Any, other: Any) -> bool:
    inner = (_parse_cidr(other) if isinstance(other, str) else _cidr(other)).network
    outer = _cidr(cidr).network
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _is_canonical(text: str) -> bool:
    return str(_parse_ip(text)) == text


def _string(obj: Any) -> str:
    kind = _kind_of(obj)
    if kind not in (IP, CIDR):
        raise ValueError("no such overload")
    return obj[kind]


# -- declarations -----------------------------------------------------------------------------------------------

def _global(name: str, overload: str, result: cel.Type, parameters: list[cel.Type], impl: Any) -> cel.FunctionDecl:
    return cel.FunctionDecl(name, [cel.Overload(overload, result, parameters, impl=impl)])


def _member(name: str, result: cel.Type, impl: Any, *extra: cel.Type) -> cel.FunctionDecl:
    return cel.FunctionDecl(name, [cel.Overload(f"kubernetes_{name}", result, [OPAQUE, *extra], is_member=True,
                                                impl=impl)])


VALUE_FUNCTIONS = [
    _global("quantity", "string_to_quantity", OPAQUE, [_S], lambda text: _quantity(_parse_quantity(text))),
    _global("isQuantity", "is_quantity_string", _B, [_S], _succeeds(_parse_quantity)),
    _member("sign", _I, lambda q: (_amount(q) > 0) - (_amount(q) < 0)),
    _member("isInteger", _B, lambda q: _amount(q).denominator == 1 and _INT64[0] <= _amount(q) <= _INT64[1]),
    _member("asInteger", _I, _as_integer),
    _member("asApproximateFloat", _D, lambda q: float(_amount(q))),
    _member("compareTo", _I, _compare, OPAQUE),
    _member("isGreaterThan", _B, lambda a, b: _compare(a, b) > 0, OPAQUE),
    _member("isLessThan", _B, lambda a, b: _compare(a, b) < 0, OPAQUE),
    cel.FunctionDecl("add", [
        cel.Overload("quantity_add", OPAQUE, [OPAQUE, OPAQUE], is_member=True,
                     impl=lambda a, b: _quantity(_amount(a) + _operand(b))),
        cel.Overload("quantity_add_int", OPAQUE, [OPAQUE, _I], is_member=True,
                     impl=lambda a, b: _quantity(_amount(a) + _operand(b)))]),
    cel.FunctionDecl("sub", [
        cel.Overload("quantity_sub", OPAQUE, [OPAQUE, OPAQUE], is_member=True,
                     impl=lambda a, b: _quantity(_amount(a) - _operand(b))),
        cel.Overload("quantity_sub_int", OPAQUE, [OPAQUE, _I], is_member=True,
                     impl=lambda a, b: _quantity(_amount(a) - _operand(b)))]),
    _global("url", "string_to_url", OPAQUE, [_S], _to_url),
    _global("isURL", "is_url_string", _B, [_S], _succeeds(_parse_url)),
    _member("getScheme", _S, lambda u: _url(u).scheme),
    _member("getHost", _S, lambda u: _url(u).netloc.rpartition("@")[2]),
    _member("getHostname", _S, _hostname),
    _member("getPort", _S, _port),
    _member("getEscapedPath", _S, lambda u: _url(u).path),
    _member("getQuery", cel.Type.Map(_S, cel.Type.List(_S)), _query),
    cel.FunctionDecl("ip", [
        cel.Overload("string_to_ip", OPAQUE, [_S], impl=lambda text: {IP: str(_parse_ip(text))}),
        cel.Overload("cidr_ip", OPAQUE, [OPAQUE], is_member=True, impl=lambda c: {IP: str(_cidr(c).ip)})]),
    _global("isIP", "is_ip", _B, [_S], _succeeds(_parse_ip)),
    _global("ip.isCanonical", "ip_is_canonical", _B, [_S], _is_canonical),
    _member("family", _I, lambda ip: _ip(ip).version),
    _member("isUnspecified", _B, lambda ip: _ip(ip).is_unspecified),
    _member("isLoopback", _B, lambda ip: _ip(ip).is_loopback),
    _member("isLinkLocalMulticast", _B, _is_link_local_multicast),
    _member("isLinkLocalUnicast", _B, lambda ip: _ip(ip).is_link_local and not _ip(ip).is_multicast),
    _member("isGlobalUnicast", _B, _is_global_unicast),
    _global("cidr", "string_to_cidr", OPAQUE, [_S], lambda text: {CIDR: str(_parse_cidr(text))}),
    _global("isCIDR", "is_cidr", _B, [_S], _succeeds(_parse_cidr)),
    cel.FunctionDecl("containsIP", [
        cel.Overload("cidr_contains_ip_string", _B, [OPAQUE, _S], is_member=True, impl=_contains_ip),
        cel.Overload("cidr_contains_ip_ip", _B, [OPAQUE, OPAQUE], is_member=True, impl=_contains_ip)]),
    cel.FunctionDecl("containsCIDR", [
        cel.Overload("cidr_contains_cidr_string", _B, [OPAQUE, _S], is_member=True, impl=_contains_cidr),
        cel.Overload("cidr_contains_cidr", _B, [OPAQUE, OPAQUE], is_member=True, impl=_contains_cidr)]),
    _member("prefixLength", _I, lambda c: _cidr(c).network.prefixlen),
    _member("masked", OPAQUE, lambda c: {CIDR: str(_cidr(c).network)}),
    _global("string", "kubernetes_value_to_string", _S, [OPAQUE], _string),
]

__all__ = ["OPAQUE", "VALUE_FUNCTIONS"]
