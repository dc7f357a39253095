"""Numbers for people: fixed decimals, a real minus sign, thousands separators, ``c`` kept as ``c``."""

from __future__ import annotations

import math
from typing import Any

from evaltool.report.disclosure import SUPPRESSED


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def fmt_num(value: Any, digits: int = 2, *, signed: bool = False) -> str:
    """A number for people: minus sign, fixed decimals; ``c`` stays ``c``; missing is an en dash."""
    if value == SUPPRESSED:
        return SUPPRESSED
    if not is_number(value):
        return "–"
    text = f"{abs(float(value)):,.{digits}f}"
    if float(value) < 0 and float(text.replace(",", "")) != 0:
        return "−" + text
    return ("+" + text) if signed and float(value) > 0 else text


def fmt_count(value: Any) -> str:
    if value == SUPPRESSED:
        return SUPPRESSED
    if not is_number(value):
        return "–"
    return f"{int(value):,}"


def fmt_p(value: Any) -> str:
    if value == SUPPRESSED:
        return SUPPRESSED
    if not is_number(value):
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def fmt_ci(low: Any, high: Any, digits: int = 2) -> str:
    if SUPPRESSED in (low, high):
        return SUPPRESSED
    if not (is_number(low) and is_number(high)):
        return "–"
    return f"{fmt_num(low, digits)} to {fmt_num(high, digits)}"

