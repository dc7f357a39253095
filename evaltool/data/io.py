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


def _read_csv(path: Path, source: SourceFile, key: str) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        sep=source.delimiter,
        encoding=source.encoding,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        skipinitialspace=True,
    )
    if frame.shape[1] == 1:
        sniffed = _sniff_delimiter(path, source.encoding)
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
