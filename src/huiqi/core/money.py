"""Exact money: amounts are integer fen (分); conversions go through Decimal, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from huiqi.core.errors import Invalid

FEN_PER_YUAN = 100
FEN_PER_WAN = 1_000_000  # 1 万元 = 10,000 yuan = 1,000,000 fen
FEN_PER_YI = 10_000_000_000  # 1 亿元

_UNITS = {"fen": 1, "yuan": FEN_PER_YUAN, "wan": FEN_PER_WAN, "yi": FEN_PER_YI}


class MoneyError(Invalid):
    """A money value could not be read exactly."""


def to_fen(value: str | int | Decimal, unit: str = "yuan") -> int:
    """Convert an amount in the given unit (fen, yuan, wan, yi) to integer fen, exactly."""
    if unit not in _UNITS:
        raise MoneyError(f"unknown money unit {unit!r}")
    if isinstance(value, float):
        raise MoneyError("money must not be given as float")
    try:
        amount = Decimal(str(value).replace(",", "").strip()) * _UNITS[unit]
    except InvalidOperation:
        raise MoneyError(f"not a number: {value!r}") from None
    if not amount.is_finite():
        raise MoneyError(f"not a finite amount: {value!r}")
    if amount != amount.to_integral_value():
        raise MoneyError(f"{value} {unit} is finer than one fen")
    return int(amount)


def fen_to_decimal(fen: int, unit: str = "yuan") -> Decimal:
    """Express integer fen in another unit as an exact Decimal."""
    return Decimal(fen) / _UNITS[unit]


def format_fen(fen: int | None, unit: str = "yuan") -> str:
    """Human display: 12,345.67 元 or 1,234.5 万元; None shows as a dash."""
    if fen is None:
        return "—"
    if unit == "wan":
        value = (Decimal(fen) / FEN_PER_WAN).normalize()
        text = f"{value:,f}"
        return f"{text} 万元"
    value = (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{value:,} 元"


def format_fen_en(fen: int | None) -> str:
    """English display of an amount in yuan: CNY 12,345.67; None shows as a dash."""
    if fen is None:
        return "—"
    value = (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"CNY {value:,}"
