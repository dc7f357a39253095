"""Read input files (CSV, Parquet, Stata) into data frames with clear errors."""

from __future__ import annotations

import csv
import difflib
from pathlib import Path

import pandas as pd

from evaltool.config.models import SourceFile
from evaltool.errors import DataError


def read_source(source: SourceFile, path: Path, key: str) -> pd.DataFrame:
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
            frame = _read_csv(path, source, key)
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


#: Byte-order marks and the encoding they announce (read automatically when the config keeps the utf-8 default).
BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _encoding(path: Path, source: SourceFile) -> str:
    """The configured encoding, or the one a byte-order mark announces when the config keeps the default."""
    if source.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return source.encoding
    with path.open("rb") as handle:
        head = handle.read(4)
    return next((name for bom, name in BOMS if head.startswith(bom)), source.encoding)


def _read_csv(path: Path, source: SourceFile, key: str) -> pd.DataFrame:
    encoding = _encoding(path, source)
    try:
        return _read_csv_as(path, source, key, encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{key} '{path}' is not valid {encoding} text (it holds the byte {exc.object[exc.start:exc.start + 1]!r}). Set {key}.encoding to the file's encoding: 'cp1252' for Windows/Excel exports and "
            "GIAS downloads, 'latin-1' for older files, 'utf-16' for some Excel 'Unicode text' saves."
        ) from None
    except LookupError:
        raise DataError(
            f"{key}.encoding '{source.encoding}' is not a known text encoding; use e.g. 'utf-8', 'cp1252' or 'latin-1'."
        ) from None


def _read_csv_as(path: Path, source: SourceFile, key: str, encoding: str) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        sep=source.delimiter,
        encoding=encoding,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        skipinitialspace=True,
    )
    if frame.shape[1] == 1:
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
