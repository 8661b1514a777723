"""resource.Quantity as k8s.io/apimachinery reads and writes it (pkg/api/resource/quantity.go).

The API server decodes every quantity and encodes it again in its canonical form, so what it stores and
answers is not always what was sent: `0.5` is `500m`, `1000m` is `1`, `1000` is `1k`, `1024Mi` is `1Gi`,
`1.5Gi` is `1536Mi`. Resource lists are also rounded up to milli-units first (SetDefaults_ResourceList).
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}  # powers of two
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}  # powers of ten
_DECIMAL_SUFFIX = {exponent: suffix for suffix, exponent in _DECIMAL.items()}
_QUANTITY = re.compile(r"(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
                       r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exponent>[+-]?\d+)|(?P<decimal>[numkMGTPE]?))")
_MILLI = Decimal("0.001")


def parse(value: Any) -> tuple[Decimal, str] | None:
    """The value and format (BinarySI, DecimalSI or DecimalExponent) of a quantity; None if it is not one."""
    match = _QUANTITY.fullmatch(str(value).strip())
    if match is None:
        return None
    try:
        number = Decimal(match["number"])
    except InvalidOperation:
        return None
    if match["binary"]:
        return number * 2 ** _BINARY[match["binary"]], "BinarySI"
    if match["exponent"] is not None:
        return number.scaleb(int(match["exponent"])), "DecimalExponent"
    return number.scaleb(_DECIMAL[match["decimal"] or ""]), "DecimalSI"


def value(quantity: Any) -> Decimal | None:
    parsed = parse(quantity)
    return parsed[0] if parsed else None


def canonical(quantity: Any, *, round_to_milli: bool = False) -> Any:
    """The quantity as the API server writes it back (CanonicalizeBytes); what does not parse is kept."""
    parsed = parse(quantity)
    if parsed is None:
        return quantity
    amount, number_format = parsed
    if round_to_milli:  # Quantity.RoundUp(-3): away from zero
        amount = amount.quantize(_MILLI, rounding=ROUND_CEILING if amount >= 0 else ROUND_FLOOR)
    if number_format == "BinarySI" and (-1024 < amount < 1024 or amount != amount.to_integral_value()):
        number_format = "DecimalSI"  # small or fractional binary amounts are shown in decimal
    if number_format == "BinarySI":
        mantissa, power = int(amount), 0
        while mantissa and mantissa % 1024 == 0 and power < 60:
            mantissa, power = mantissa // 1024, power + 10
        suffix = {bits: name for name, bits in _BINARY.items()}.get(power, "")
        return f"{mantissa}{suffix}"
    mantissa, exponent = _base_1000(amount)
    if number_format == "DecimalExponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    if exponent in _DECIMAL_SUFFIX:
        return f"{mantissa}{_DECIMAL_SUFFIX[exponent]}"
    return f"{mantissa}e{exponent}"


def _base_1000(amount: Decimal) -> tuple[int, int]:
    """AsCanonicalBytes: an integer mantissa without trailing zeros, its exponent lowered to a multiple of 3."""
    if amount == 0:
        return 0, 0
    sign, digits, exponent = amount.normalize().as_tuple()
    mantissa = int("".join(map(str, digits))) * (-1 if sign else 1)
    assert isinstance(exponent, int)
    shift = exponent % 3
    return mantissa * 10 ** shift, exponent - shift
