"""Reading England's raw CSVs: encoding choice, URN and day-first date checks shared by the readers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from evaltool.config.models import SourceFile
from evaltool.data.io import BOMS, read_source
from evaltool.errors import DataError

#: A URN: six digits, 100000–999999.
URN_PATTERN = r"[1-9][0-9]{5}"
#: A GIAS date: day-first dd/mm/yyyy, optionally followed by a time of day (as some exports add).
DATE_PATTERN = r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$"


def choose_encoding(path: Path, configured: str) -> str:
    """'utf-8' when the file is valid UTF-8 (or announces an encoding by a byte-order mark), else ``configured``.

    DfE and GIAS downloads are Windows-1252; a file re-saved as UTF-8 is read as such, since Windows-1252
    text with accented letters is practically never valid UTF-8.
    """
    if configured.lower().replace("_", "-") in ("utf-8", "utf8"):
        return "utf-8"
    data = path.read_bytes()
    if any(data.startswith(bom) for bom, _ in BOMS) or b"\x00" in data[:4096]:
        return "utf-8"  # read_source reads the byte-order mark, or names the UTF-16 encoding to set
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return configured
    return "utf-8"


def read_raw(
    path: Path, key: str, encoding: str, *, usecols: Callable[[str], bool] | None = None
) -> tuple[pd.DataFrame, str]:
    """Read one raw CSV as text (every column ``str``, empty cells missing) and the encoding used.

    Raises
    ------
    DataError
        When the file is missing, not text in its encoding, or has no data rows (from
        :func:`evaltool.data.io.read_source`, naming ``key``).
    """
    if path.is_file():
        encoding = choose_encoding(path, encoding)
    frame = read_source(SourceFile(path=path, encoding=encoding), path, key, usecols=usecols)
    return frame, encoding


def require_columns(frame: pd.DataFrame, required: list[str], *, path: Path, key: str, what: str) -> None:
    """Refuse a file that lacks any of ``required``, listing the columns it has."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        have = ", ".join(repr(c) for c in list(frame.columns)[:12])
        raise DataError(
            f"{key} '{path}' has no column {', '.join(repr(c) for c in missing)}, which a {what} must have; its "
            f"columns are {have}{' …' if frame.shape[1] > 12 else ''}. Check that {key} names a {what} as downloaded "
            "(column names are case-sensitive)."
        )


def check_urns(values: pd.Series, *, path: Path, column: str, key: str, allow_missing: bool = False) -> pd.Series:
    """URNs as 6-digit strings; anything else is an error naming the file, column, data row and value."""
    text = values.astype("str").str.strip()
    missing = values.isna() | text.eq("")
    ok = text.str.fullmatch(URN_PATTERN).fillna(False).astype(bool)
    bad = ~ok & ~missing if allow_missing else ~ok
    if bad.any():
        positions = np.flatnonzero(bad.to_numpy())
        row = int(positions[0]) + 1
        found = values.iloc[row - 1]
        shown = "an empty cell" if pd.isna(found) or str(found).strip() == "" else repr(found)
        decimal = str(found).strip().endswith(".0")
        fix = (
            "the column was saved as decimals: re-export it as whole numbers"
            if decimal
            else "correct the cell (a URN is the school's 6-digit Unique Reference Number, 100000–999999)"
        )
        raise DataError(
            f"Column '{column}' of {key} '{path}' must hold 6-digit URNs; found {shown} in data row {row} (line "
            f"{row + 1}), {len(positions)} such row{'s' if len(positions) != 1 else ''} in all. Fix: {fix}."
        )
    return text.where(~missing)


def parse_dates(values: pd.Series, *, path: Path, column: str, key: str) -> pd.Series:
    """Day-first ``dd/mm/yyyy`` dates (GIAS's format) as datetime64; empty cells NaT.

    Raises
    ------
    DataError
        On a value that is not a day-first date (e.g. ``2019-09-01``) or not a calendar date
        (``13/13/2019``), naming the file, column, data row and value.
    """
    text = values.astype("str").str.strip()
    missing = values.isna() | text.eq("")
    parts = text.str.extract(DATE_PATTERN)
    day, month, year = (pd.to_numeric(parts[i], errors="coerce") for i in range(3))
    if len(text):
        dates = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}), errors="coerce")
    else:
        dates = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    bad = dates.isna() & ~missing
    if bad.any():
        positions = np.flatnonzero(bad.to_numpy())
        row = int(positions[0]) + 1
        found = text.iloc[row - 1]
        month_first = bool(((month > 12) & (day <= 12)).any())
        if month_first:
            why = "some dates have a month above 12, as month-first (mm/dd/yyyy) dates do"
        elif pd.isna(parts[0].iloc[row - 1]):
            why = "it is not written dd/mm/yyyy"
        else:
            why = "it is not a calendar date"
        raise DataError(
            f"Column '{column}' of {key} '{path}' must hold day-first dates dd/mm/yyyy (as GIAS exports them, e.g. "
            f"01/09/2016) or be empty; found {found!r} in data row {row} (line {row + 1}): {why}; "
            f"{len(positions)} such row{'s' if len(positions) != 1 else ''} in all. Fix: download the extract again "
            "from GIAS, or convert the column to dd/mm/yyyy (a spreadsheet may have rewritten the dates)."
        )
    return dates.where(~missing)


def exam_year(dates: pd.Series, cutoff: tuple[int, int]) -> pd.Series:
    """The exam year of the academic year containing each date (float, NaN where no date).

    A date on or after the cut-off (month, day) in calendar year ``Y`` is in academic year ``Y/Y+1``, whose
    exams are in summer ``Y+1``; a date before it is in the exam year ``Y``.
    """
    month, day = cutoff
    after = (dates.dt.month * 100 + dates.dt.day) >= (month * 100 + day)
    years = dates.dt.year.astype("float64") + after.astype("float64")
    return years.where(dates.notna())
