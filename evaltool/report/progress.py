"""Effect sizes expressed as months of additional progress (EEF conversion).

The Education Endowment Foundation translates a standardised effect size into
"months of additional progress" with a fixed table.  This module holds that
table and applies it to an estimate and its interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Lower bound of each row of the EEF conversion table, for 1, 2, …, 12 months.
#: Source: Education Endowment Foundation, Teaching and Learning Toolkit, "About the
#: Toolkits: attainment — additional months' progress", table "Months' progress /
#: Effect size" (https://educationendowmentfoundation.org.uk/evidence-summaries/
#: about-the-toolkits/attainment/; also the EEF Toolkit Guide, September 2021, p. 6):
#: 0 months −0.01 to 0.01; 1: 0.02–0.09; 2: 0.10–0.18; 3: 0.19–0.26; 4: 0.27–0.35;
#: 5: 0.36–0.44; 6: 0.45–0.52; 7: 0.53–0.61; 8: 0.62–0.69; 9: 0.70–0.78;
#: 10: 0.79–0.87; 11: 0.88–0.95; 12: 0.96–1.00.  Effect sizes are taken to the
#: nearest two decimal places; negative effect sizes map to the same number of
#: months, negative.
EEF_MONTHS_LOWER_BOUNDS: tuple[float, ...] = (0.02, 0.10, 0.19, 0.27, 0.36, 0.45, 0.53, 0.62, 0.70, 0.79, 0.88, 0.96)

#: The EEF's impact label for each number of months (same source).
EEF_IMPACT_LABELS: tuple[tuple[int, str], ...] = (
    (0, "very low or no impact"),
    (2, "low impact"),
    (5, "moderate impact"),
    (8, "high impact"),
    (12, "very high impact"),
)

EEF_SOURCE = (
    "Education Endowment Foundation, Teaching and Learning Toolkit: conversion of effect sizes to months of "
    "additional progress"
)


def _round_half_up_2dp(value: np.ndarray) -> np.ndarray:
    # The EEF reads effect sizes "to the nearest 2 decimal places"; half-up on the absolute value, with a
    # small tolerance so that binary representations such as 0.095 → 0.0949999… still round up.
    return np.floor(np.abs(value) * 100.0 + 0.5 + 1e-9) / 100.0


def months_of_progress(effect_size: float | np.ndarray | None) -> int | np.ndarray | None:
    """Months of additional progress for a standardised effect size.

    Parameters
    ----------
    effect_size
        Hedges' g (or another standardised mean difference); a scalar or an
        array.  ``None`` or ``nan`` gives ``None`` (scalar) / ``nan`` (array).

    Returns
    -------
    The signed number of months (0–12 in absolute value).

    Notes
    -----
    With ``|g|`` rounded half-up to two decimals, the months are the number of
    table lower bounds ``b_k`` (``k = 1 … 12``) with ``b_k ≤ |g|``, i.e. the row
    of :data:`EEF_MONTHS_LOWER_BOUNDS` that contains ``|g|``; the sign of ``g``
    is applied afterwards.  Effect sizes above 1.00 stay at 12 months, the top
    row of the table.  Reference: EEF Teaching and Learning Toolkit conversion
    table (see :data:`EEF_MONTHS_LOWER_BOUNDS`).
    """
    if effect_size is None:
        return None
    values = np.asarray(effect_size, dtype=float)
    rounded = _round_half_up_2dp(values)
    months = np.searchsorted(np.asarray(EEF_MONTHS_LOWER_BOUNDS), rounded, side="right").astype(float)
    signed = np.where(values < 0, -months, months)
    signed = np.where(np.isfinite(values), signed, np.nan)
    if values.ndim == 0:
        return None if not math.isfinite(float(signed)) else int(signed)
    return signed


def impact_label(months: int | None) -> str:
    """The EEF's words for a number of months ("moderate impact" …), by its absolute value."""
    if months is None:
        return "not available"
    size = abs(int(months))
    for upper, label in EEF_IMPACT_LABELS:
        if size <= upper:
            return label if months >= 0 else f"{label} (negative)"
    return EEF_IMPACT_LABELS[-1][1]


@dataclass(frozen=True)
class MonthsOfProgress:
    """An effect size, its interval, and their months of additional progress."""

    effect_size: float
    months: int
    months_low: int | None
    months_high: int | None

    @classmethod
    def from_effect_size(
        cls, effect_size: float | None, ci_lower: float | None = None, ci_upper: float | None = None
    ) -> MonthsOfProgress | None:
        """Convert an effect size and (optionally) its interval; ``None`` if there is no effect size."""
        if effect_size is None or not math.isfinite(float(effect_size)):
            return None
        return cls(
            effect_size=float(effect_size),
            months=months_of_progress(float(effect_size)),  # type: ignore[arg-type]
            months_low=months_of_progress(ci_lower),  # type: ignore[arg-type]
            months_high=months_of_progress(ci_upper),  # type: ignore[arg-type]
        )

    def describe(self) -> str:
        """E.g. ``"+2 months (−1 to +4)"``: the months and those of the interval's ends."""
        text = f"{format_months(self.months)}"
        if self.months_low is not None and self.months_high is not None:
            text += f" ({_signed(self.months_low)} to {_signed(self.months_high)})"
        return text


def _signed(months: int) -> str:
    return f"+{months}" if months > 0 else (f"−{abs(months)}" if months < 0 else "0")


def format_months(months: int | None) -> str:
    """``+3 months``, ``−1 month``, ``0 months``."""
    if months is None:
        return "not available"
    unit = "month" if abs(months) == 1 else "months"
    sign = "+" if months > 0 else ("−" if months < 0 else "")
    return f"{sign}{abs(months)} {unit}"
