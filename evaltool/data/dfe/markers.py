"""Missing-value markers of the DfE performance tables: text in numeric columns, kept with its meaning.

Every marker becomes a missing value and is counted by marker, column and year; an empty cell is the
marker ``""`` ("blank").  Any other text in a numeric column is a :class:`~evaltool.errors.DataError`
naming the file, column, data row and value.  Markers are case-sensitive as published (``NA`` is a
marker, ``na`` is not); ``k`` ("rounds to zero") is missing too, as the true value is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from evaltool.data.coerce import ABSURD, as_float
from evaltool.errors import DataError

#: The markers of the DfE performance tables and the GSS symbols, with their meanings.
DFE_MARKERS: dict[str, str] = {
    "SUPP": "suppressed",
    "NE": "no entries",
    "NP": "not published",
    "NEW": "new school",
    "LOWCOV": "low coverage",
    "LOW": "low coverage",
    "DNS": "did not submit",
    "NA": "not applicable",
    "..": "not available",
    "c": "confidential (GSS 'c')",
    "x": "not available (GSS 'x')",
    "z": "not applicable (GSS 'z')",
    "u": "low reliability (GSS 'u')",
    "k": "rounds to zero (GSS 'k')",
}
#: The marker an empty cell is counted under.
BLANK = ""
BLANK_MEANING = "blank (empty cell)"


def marker_table(extra: Mapping[str, str]) -> dict[str, str]:
    """The built-in markers updated with the user's ``sources.markers``."""
    return {**DFE_MARKERS, **dict(extra)}


def parse_numeric(
    raw: pd.DataFrame,
    columns: list[str],
    *,
    markers: Mapping[str, str],
    path: Path,
    year: int,
    header_line: int = 1,
    counted: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn the text columns ``columns`` of one table into floats, markers into NaN.

    Cells are stripped; a trailing ``%`` and thousands separators are removed before reading the number.

    Parameters
    ----------
    raw
        The file as read (every column text).
    columns
        The raw names of the numeric columns to parse.
    markers
        Marker → meaning (:func:`marker_table`).
    path, year
        The file and its exam year (for messages and the counts).
    header_line
        Line number of the header in the file (data row ``i`` is line ``header_line + i``).
    counted
        Optional boolean mask of the rows whose markers are counted (e.g. not the summary rows).

    Returns
    -------
    values
        The parsed columns (float64, same index and raw names).
    counts
        One row per marker, column and year: ``marker, meaning, column, year, count``.

    Raises
    ------
    DataError
        On text that is not a marker, or an infinite or absurdly large number.
    """
    n = len(raw)
    if not columns:
        empty = pd.DataFrame(index=raw.index)
        return empty, pd.DataFrame(columns=["marker", "meaning", "column", "year", "count"])
    # every column at once: one long text column (column-major), so each step is one vectorised call
    text = pd.concat([raw[c].astype("str") for c in columns], ignore_index=True).fillna(BLANK).str.strip()
    is_missing = text.eq(BLANK).to_numpy() | text.isin(list(markers)).to_numpy()
    numeric = text.where(~is_missing)
    numeric = numeric.str.removesuffix("%").str.replace(",", "", regex=False).str.strip()
    values = as_float(pd.to_numeric(numeric, errors="coerce"))
    array = values.to_numpy()
    bad = np.isnan(array) & numeric.notna().to_numpy()
    column_of = np.repeat(np.arange(len(columns)), n)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        column = columns[column_of[first]]
        in_column = pd.Series(bad[column_of == column_of[first]], index=raw.index)
        _refuse_text(text[column_of == column_of[first]].set_axis(raw.index), in_column, column=column, path=path,
                     header_line=header_line, markers=markers)
    absurd = ~np.isnan(array) & (~np.isfinite(array) | (np.abs(array) > ABSURD))
    if absurd.any():
        first = int(np.flatnonzero(absurd)[0])
        row = first % n + 1
        raise DataError(
            f"Column '{columns[column_of[first]]}' of '{path}' has {int(absurd.sum())} infinite or absurdly large "
            f"value(s) (beyond ±{ABSURD:.0e}); the first is {text.iloc[first]!r} in data row {row} (line "
            f"{header_line + row}). Correct the file, or leave the cells empty if the value is missing."
        )
    frame = pd.DataFrame(array.reshape(len(columns), n).T, index=raw.index, columns=columns)
    tally_mask = is_missing & (np.tile(counted, len(columns)) if counted is not None else True)
    if tally_mask.any():
        found = pd.DataFrame({"marker": text.to_numpy()[tally_mask], "column": column_of[tally_mask]})
        tallies = found.groupby(["marker", "column"], sort=True).size().rename("count").reset_index()
        tallies["column"] = np.asarray(columns, dtype=object)[tallies["column"].to_numpy()]
        meanings = {**markers, BLANK: BLANK_MEANING}
        tallies.insert(1, "meaning", tallies["marker"].map(meanings))
        tallies.insert(3, "year", int(year))
    else:
        tallies = pd.DataFrame(columns=["marker", "meaning", "column", "year", "count"])
    return frame, tallies


def _refuse_text(
    text: pd.Series, bad: pd.Series, *, column: str, path: Path, header_line: int, markers: Mapping[str, str]
) -> None:
    positions = np.flatnonzero(bad.to_numpy())
    row = int(positions[0]) + 1
    value = text.iloc[row - 1]
    others = list(dict.fromkeys(text[bad].tolist()))[1:4]
    also = f" (other unknown values: {', '.join(repr(v) for v in others)})" if others else ""
    near = [m for m in markers if m.lower() == str(value).lower()]
    hint = f" Markers are case-sensitive: did you mean {near[0]!r}?" if near else ""
    raise DataError(
        f"Column '{column}' of '{path}' must be numeric or a known marker; found the unknown value {value!r} in "
        f"data row {row} (line {header_line + row}), {len(positions)} such cell{'s' if len(positions) != 1 else ''} "
        f"in all{also}.{hint} If it marks a missing value, declare it in the config as sources.markers: "
        f"{{{value!r}: <meaning>}}; otherwise correct the file. Known markers: {', '.join(repr(m) for m in markers)}."
    )
