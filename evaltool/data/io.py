"""Read input files (CSV, Parquet, Stata) into data frames with clear errors."""

from __future__ import annotations

import csv
import difflib
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from evaltool.config.models import SourceFile
from evaltool.errors import DataError


def read_source(
    source: SourceFile, path: Path, key: str, *, usecols: Callable[[str], bool] | None = None
) -> pd.DataFrame:
    """Read one input file.

    Parameters
    ----------
    source
        The config entry (format, delimiter, encoding).
    path
        The resolved path.
    key
        The config key that names the file (used in messages), e.g.
        ``"data.panel"``.
    usecols
        Optional filter of header names (CSV only): columns it rejects are not read, which keeps wide
        extracts such as GIAS's fast.
    """
    if not path.exists():
        near = _nearby_files(path)
        raise DataError(
            f"The file for {key} does not exist: '{path}'. Check {key}.path in the config "
            f"(relative paths are resolved from the config file's folder){near}."
        )
    if path.is_dir():
        raise DataError(f"{key}.path points to a folder, not a file: '{path}'.")
    fmt = source.resolved_format()
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt == "stata":
            frame = pd.read_stata(path, convert_categoricals=True)
        else:
            frame = _read_csv(path, source, key, usecols)
    except DataError:
        raise
    except Exception as exc:  # any parser failure becomes a message naming the file
        raise DataError(
            f"Could not read {key} '{path}' as {fmt}: {exc}. "
            f"Check the file, or set {key}.format to the right format (csv, parquet or stata)."
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{key} '{path}' has no data rows.")
    return frame


#: Byte-order marks and the encoding they announce (read automatically when the config keeps the utf-8 default);
#: UTF-32 first, as its little-endian mark begins with UTF-16's.
BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _encoding(path: Path, source: SourceFile, key: str) -> str:
    """The configured encoding, or the one a byte-order mark announces when the config keeps the default.

    Raises
    ------
    DataError
        When the file looks like UTF-16 without a byte-order mark (NUL bytes in ASCII text), naming the
        ``encoding:`` to set.
    """
    if source.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return source.encoding
    with path.open("rb") as handle:
        head = handle.read(4096)
    announced = next((name for bom, name in BOMS if head.startswith(bom)), None)
    if announced is not None:
        return announced
    if b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        guess = "utf-16-le" if odd > even else "utf-16-be"
        raise DataError(
            f"{key} '{path}' is not utf-8 text: it holds NUL bytes, as UTF-16 text without a byte-order mark does "
            f"(Excel's 'Unicode text'). Set {key}.encoding: '{guess}' in the config, or save the file as CSV UTF-8."
        )
    return source.encoding


def _read_csv(path: Path, source: SourceFile, key: str, usecols: Callable[[str], bool] | None = None) -> pd.DataFrame:
    encoding = _encoding(path, source, key)
    try:
        return _read_csv_as(path, source, key, encoding, usecols)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{key} '{path}' is not valid {encoding} text{_first_undecodable(path, encoding, source.delimiter)} "
            f"(the byte {exc.object[exc.start:exc.start + 1]!r}). Set {key}.encoding to the file's encoding: "
            "'cp1252' for Windows/Excel exports and GIAS downloads, 'latin-1' for older files, 'utf-16' for some "
            "Excel 'Unicode text' saves; or save the file as CSV UTF-8."
        ) from None
    except LookupError:
        raise DataError(
            f"{key}.encoding '{source.encoding}' is not a known text encoding; use e.g. 'utf-8', 'cp1252' or 'latin-1'."
        ) from None


def _first_undecodable(path: Path, encoding: str, delimiter: str) -> str:
    """' in line 7, column 'la'': where the first byte that is not ``encoding`` text is (best effort)."""
    header: list[str] = []
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    text = line.decode(encoding)
                except UnicodeDecodeError:
                    cells = line.split(delimiter.encode("ascii", "replace"))
                    index = next((i for i, cell in enumerate(cells) if not _decodes(cell, encoding)), None)
                    column = header[index] if index is not None and index < len(header) else None
                    return f" in line {number}" + (f", column '{column}'" if column else "")
                if number == 1:
                    header = [cell.strip().strip('"') for cell in text.rstrip("\r\n").split(delimiter)]
    except (OSError, LookupError):
        return ""
    return ""


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _read_csv_as(
    path: Path, source: SourceFile, key: str, encoding: str, usecols: Callable[[str], bool] | None = None
) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        sep=source.delimiter,
        encoding=encoding,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        skipinitialspace=True,
        usecols=(lambda name: usecols(str(name).strip())) if usecols is not None else None,
    )
    if frame.shape[1] == 1 and usecols is None:
        sniffed = _sniff_delimiter(path, encoding)
        if sniffed is not None and sniffed != source.delimiter:
            raise DataError(
                f"{key} '{path}' was read with delimiter {source.delimiter!r} but has only one column "
                f"('{frame.columns[0][:60]}'); it looks delimited by {sniffed!r}. "
                f"Set {key}.delimiter: {sniffed!r} in the config."
            )
    return frame


def _sniff_delimiter(path: Path, encoding: str) -> str | None:
    try:
        with path.open(encoding=encoding, errors="replace") as handle:
            sample = handle.read(20_000)
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except (csv.Error, OSError):
        return None


def _nearby_files(path: Path) -> str:
    folder = path.parent
    if not folder.is_dir():
        return f"; the folder '{folder}' does not exist either"
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.5)
    return f"; did you mean '{folder / close[0]}'?" if close else ""
