"""Turn raw columns into typed ones, counting what could not be read.

Published English school data mark missing cells with the GSS symbols
(``c`` suppressed, ``x`` not available, ``z`` not applicable, ``u`` low
reliability; ``k`` rounds to zero).  Those become missing values (``k``
becomes 0) and are counted; any other text in a numeric column is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evaltool.config.models import DEFAULT_YEAR_RANGE
from evaltool.errors import DataError

#: Text that means "no value" in published tables and common exports.
MISSING_MARKERS: dict[str, str] = {
    "c": "suppressed (GSS 'c')",
    "x": "not available (GSS 'x')",
    "z": "not applicable (GSS 'z')",
    "u": "low reliability (GSS 'u')",
    "supp": "suppressed",
    "ne": "no entries",
    "na": "not available",
    "n/a": "not available",
    ".": "missing",
    "..": "missing",
    ":": "not available",
}
ZERO_MARKERS = {"k"}
#: Larger magnitudes are not school data (an Attainment 8 score, a percentage, a cohort size): a unit or export error.
ABSURD = 1e12


@dataclass
class CoercionLog:
    """What coercion found in one file: markers treated as missing, per column."""

    markers: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, column: str, marker: str, count: int) -> None:
        if count:
            self.markers.setdefault(column, {})[marker] = self.markers.get(column, {}).get(marker, 0) + int(count)


def as_float(values: pd.Series) -> pd.Series:
    """Plain float64 with NaN for missing (never pandas' nullable Float64)."""
    if isinstance(values.dtype, np.dtype) and values.dtype == np.float64:
        return values
    return pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index, name=values.name)


def _examples(values: pd.Series, n: int = 3) -> str:
    uniq = list(dict.fromkeys(values.astype(str).tolist()))[:n]
    return ", ".join(repr(v) for v in uniq)


def data_rows(mask: pd.Series, n: int = 3) -> str:
    """'rows 4, 17, 230' (data rows counted from 1 below the header) of the first ``n`` flagged positions."""
    positions = np.flatnonzero(mask.to_numpy()) + 1
    shown = ", ".join(str(p) for p in positions[:n])
    return f"row{'s' if len(positions) != 1 else ''} {shown}{' …' if len(positions) > n else ''}"


def check_finite(values: pd.Series, *, column: str, role: str, where: str, raw: pd.Series | None = None) -> pd.Series:
    """Refuse infinite and absurdly large numbers (|x| > 1e12): they are export errors, not data."""
    array = values.to_numpy(dtype=float)
    bad = ~np.isnan(array) & (~np.isfinite(array) | (np.abs(array) > ABSURD))
    if bad.any():
        flagged = pd.Series(bad, index=values.index)
        shown = raw if raw is not None else values
        raise DataError(
            f"Column '{column}' ({role}) in {where} has {int(bad.sum())} infinite or absurdly large value"
            f"{'s' if bad.sum() != 1 else ''} (beyond ±{ABSURD:.0e}) in data {data_rows(flagged)} (counting from 1 "
            f"below the header), e.g. {_examples(shown[flagged])}. Correct them, or leave the cells empty if the "
            "value is missing."
        )
    return values


def to_numeric(series: pd.Series, *, column: str, role: str, where: str, log: CoercionLog) -> pd.Series:
    """Coerce a column to float, mapping missing markers to NaN.

    Raises
    ------
    DataError
        If any value is text that is not a known missing marker, or infinite / absurdly large.
    """
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return check_finite(as_float(series), column=column, role=role, where=where)
    text = series.astype("string").str.strip()
    lowered = text.str.lower()
    is_marker = lowered.isin(list(MISSING_MARKERS))
    is_zero = lowered.isin(list(ZERO_MARKERS))
    for marker in lowered[is_marker | is_zero].unique():
        log.add(column, str(marker), int((lowered == marker).sum()))
    cleaned = text.mask(is_marker | text.eq(""), pd.NA).mask(is_zero, "0")
    cleaned = cleaned.str.replace(",", "", regex=False)  # thousands separators
    numbers = as_float(pd.to_numeric(cleaned, errors="coerce"))
    bad = numbers.isna() & cleaned.notna()
    if bad.any():
        raise DataError(
            f"Column '{column}' ({role}) in {where} must be numeric; found text in {int(bad.sum())} "
            f"row{'s' if bad.sum() != 1 else ''}, e.g. {_examples(cleaned[bad])}. Fix those cells, or leave them empty "
            f"(or use 'c'/'x'/'z') if the value is missing."
        )
    return check_finite(numbers, column=column, role=role, where=where, raw=cleaned)


_ACADEMIC = re.compile(r"^(\d{4})\s*[/-]\s*(\d{2}|\d{4})$")
_DFE_PERIOD = re.compile(r"^(\d{4})(\d{2})$")


def to_year(
    series: pd.Series,
    *,
    column: str,
    role: str,
    where: str,
    allow_missing: bool,
    year_range: tuple[int, int] = DEFAULT_YEAR_RANGE,
) -> pd.Series:
    """Coerce a year column to float years (NaN where missing).

    Accepts 2019, '2019', '2018/19', '2018-19' and the DfE ``time_period``
    code 201819; the academic year 2018/19 is the year 2019 (summer exams).
    Years outside ``year_range`` (``data.year_range``) are errors; 0 stays 0
    (a join year of 0 means never joined).
    """
    if pd.api.types.is_numeric_dtype(series):
        values = as_float(series)
        values = values.where(~_is_dfe_period_number(values), np.floor(values / 100) + 1)
    else:
        text = series.astype("string").str.strip()
        academic = text.str.extract(_ACADEMIC)
        dfe = text.str.extract(_DFE_PERIOD)
        values = as_float(pd.to_numeric(text, errors="coerce"))
        values = values.where(~_is_dfe_period_number(values), np.nan)
        values = values.fillna(as_float(pd.to_numeric(academic[0], errors="coerce")) + 1)
        values = values.fillna(as_float(pd.to_numeric(dfe[0], errors="coerce")) + 1)
        bad = values.isna() & text.notna() & text.ne("")
        if bad.any():
            raise DataError(
                f"Column '{column}' ({role}) in {where} must be a year such as 2019 or '2018/19'"
                f"{' or empty' if allow_missing else ''}; found text in {int(bad.sum())} row"
                f"{'s' if bad.sum() != 1 else ''}, e.g. {_examples(text[bad])}."
            )
    fractional = values.notna() & (values != np.round(values))
    if fractional.any():
        raise DataError(
            f"Column '{column}' ({role}) in {where} must hold whole years; found {int(fractional.sum())} "
            f"non-integer values, e.g. {_examples(series[fractional])}."
        )
    first, last = year_range
    out_of_range = values.notna() & ((values < first) | (values > last)) & (values != 0)
    if out_of_range.any():
        raise DataError(
            f"Column '{column}' ({role}) in {where} has years outside {first}–{last} (data.year_range) in "
            f"{int(out_of_range.sum())} row{'s' if out_of_range.sum() != 1 else ''} (data {data_rows(out_of_range)}, "
            f"counting from 1 below the header), e.g. {_examples(series[out_of_range])}. Years are academic years "
            "such as 2019 for 2018/19; correct those cells (an empty join year means the school never joined), or "
            "widen data.year_range in the config if the data really cover those years."
        )
    return values


def _is_dfe_period_number(values: pd.Series) -> pd.Series:
    # 201819 → 2019 when the last two digits follow the first four.
    start = np.floor(values / 100)
    return (values >= 190001) & (values <= 210099) & ((values % 100) == ((start + 1) % 100))


def to_indicator(series: pd.Series, *, column: str, role: str, where: str) -> pd.Series:
    """Coerce 0/1, true/false, yes/no to float 0.0/1.0 (NaN where empty)."""
    if pd.api.types.is_bool_dtype(series):
        return as_float(series)
    mapping = {"1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0, "true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "y": 1.0, "n": 0.0}
    text = series.astype("string").str.strip().str.lower()
    values = as_float(text.map(mapping, na_action="ignore"))
    bad = values.isna() & text.notna() & text.ne("")
    if bad.any():
        raise DataError(
            f"Column '{column}' ({role}) in {where} must be 0/1 (or yes/no, true/false); found {int(bad.sum())} other "
            f"values, e.g. {_examples(series[bad])}."
        )
    return values


def to_id(series: pd.Series) -> pd.Series:
    """Identifiers as strings; whole-number floats lose their '.0'."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        whole = series.dropna()
        if (whole == np.round(whole)).all():
            return series.astype("Int64").astype("string")
        return series.astype("string")
    out = series.astype("string").str.strip()
    return out.mask(out.eq(""), pd.NA)
