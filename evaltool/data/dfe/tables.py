"""Read the DfE performance tables (one CSV per exam year) into one school × year frame.

Rules
-----
- **Year of a file**: from its name, ``2018-2019``, ``2018-19``, ``2018_19`` or ``201819`` → the second
  (exam) year 2019; a lone 4-digit year → that year; otherwise the entry's ``year:``.
- **Summary rows** (national / LA totals, an empty URN) are dropped and counted.
- **URNs** must be 6 digits; a URN twice in one file is an error.
- **Overlapping files** (two files for one year): rows of a URN in both must agree on every value, and
  the duplicate copy is dropped and counted; any difference is an error naming both files.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaltool.config.sources import SourcesOptions
from evaltool.data.dfe.markers import parse_numeric
from evaltool.data.dfe.presets import TEXT_COLUMNS, Preset
from evaltool.data.dfe.raw import check_urns, read_raw
from evaltool.errors import DataError

_FULL = re.compile(r"(?<!\d)(\d{4})[-_/](\d{4})(?!\d)")
_SHORT = re.compile(r"(?<!\d)(\d{4})[-_/](\d{2})(?!\d)")
_PERIOD = re.compile(r"(?<!\d)(\d{4})(\d{2})(?!\d)")
_LONE = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


def year_from_name(name: str) -> int | None:
    """The exam year a file name announces (``2018-2019_england_ks4final.csv`` → 2019), or None."""
    for match in _FULL.finditer(name):
        first, second = int(match[1]), int(match[2])
        if second == first + 1:
            return second
    for pattern in (_SHORT, _PERIOD):
        for match in pattern.finditer(name):
            first, second = int(match[1]), int(match[2])
            if second == (first + 1) % 100:
                return first + 1
    lone = {int(m[1]) for m in _LONE.finditer(name)}
    return lone.pop() if len(lone) == 1 else None


@dataclass
class TableFileRead:
    """One table file as found: where it came from, its year and what it held."""

    key: str
    path: Path
    year: int
    encoding: str

    rows: int = 0
    summary_rows: int = 0
    missing_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "path": str(self.path),
            "kind": "performance_table",
            "year": self.year,
            "encoding": self.encoding,
            "rows": self.rows,
            "summary_rows": self.summary_rows,
            "missing_columns": list(self.missing_columns),
        }


@dataclass
class Tables:
    """The performance tables read: wide school × year frame, subgroup frame and what was counted."""

    frame: pd.DataFrame
    subgroups: pd.DataFrame | None
    files: list[TableFileRead]
    markers: pd.DataFrame
    exclusions: list[dict[str, Any]]
    value_columns: list[str]
    rows_read: int


def expand_files(options: SourcesOptions, base_dir: Path) -> list[tuple[str, Path, int, str]]:
    """(key, path, exam year, encoding) of every table file the entries name, globs expanded, sorted."""
    found: list[tuple[str, Path, int, str]] = []
    for index, entry in enumerate(options.performance_tables):
        key = f"sources.performance_tables[{index}]"
        pattern = entry.path if entry.path.is_absolute() else base_dir / entry.path
        if glob.has_magic(str(entry.path)):
            paths = [Path(p) for p in sorted(glob.glob(str(pattern))) if Path(p).is_file()]
            if not paths:
                raise DataError(
                    f"{key} '{entry.path}' matches no file (searched '{pattern}'). Check the pattern; relative paths "
                    "are resolved from the config file's folder."
                )
        else:
            paths = [pattern]
        if entry.year is not None and len(paths) > 1:
            raise DataError(
                f"{key} gives year {entry.year} but its pattern '{entry.path}' matches {len(paths)} files; give one "
                "file per entry with year:, or leave year: out when the file names hold the academic year."
            )
        encoding = entry.encoding or options.encoding
        for number, path in enumerate(paths):
            year = entry.year if entry.year is not None else year_from_name(path.name)
            if year is None:
                raise DataError(
                    f"{key}: cannot tell the exam year of '{path.name}' from its name (expected e.g. "
                    "'2018-2019_england_ks4final.csv'). Rename the file, or write the entry as "
                    f"{{path: '{entry.path}', year: 2019}} for the 2018/19 tables."
                )
            found.append((key if len(paths) == 1 else f"{key}[{number}]", path, int(year), encoding))
    return found


def read_tables(
    options: SourcesOptions, base_dir: Path, preset: Preset, markers: dict[str, str], year_range: tuple[int, int]
) -> Tables:
    """Read, check and stack every performance table (see the module's rules)."""
    subgroup_columns = [c for s in preset.subgroups for c in (s.outcome_column, s.count_column)]
    wanted = set(preset.columns) | set(subgroup_columns)
    urn_column = preset.raw_urn()
    files: list[TableFileRead] = []
    parts: list[pd.DataFrame] = []
    tallies: list[pd.DataFrame] = []
    summary_rows = 0
    rows_read = 0
    for number, (key, path, year, encoding) in enumerate(expand_files(options, base_dir)):
        if not year_range[0] <= year <= year_range[1]:
            raise DataError(
                f"{key} '{path}' is for exam year {year}, outside {year_range[0]}–{year_range[1]} (data.year_range). "
                "Check the file name or its year:, or widen data.year_range."
            )
        raw, used = read_raw(path, key, encoding, usecols=lambda name: name in wanted)
        record = TableFileRead(key=key, path=path, year=year, encoding=used, rows=len(raw))
        if urn_column not in raw.columns:
            raise DataError(
                f"{key} '{path}' has no column '{urn_column}' (the school's URN). Check that it is a "
                f"{preset.name.upper()} performance table, or map its URN column with sources.columns: "
                "{<column>: urn}."
            )
        rows_read += len(raw)
        summary = raw[urn_column].isna()
        record.summary_rows = int(summary.sum())
        summary_rows += record.summary_rows
        urns = check_urns(raw[urn_column], path=path, column=urn_column, key=key, allow_missing=True)
        _refuse_duplicates(urns, path=path, key=key, column=urn_column)
        record.missing_columns = [c for c in [*preset.columns, *subgroup_columns] if c not in raw.columns]
        numeric = [c for c in raw.columns if c in subgroup_columns or preset.columns.get(c) not in TEXT_COLUMNS]
        keep = ~summary.to_numpy()
        # markers of summary rows are not school data: only the school rows are counted
        values, counts = parse_numeric(raw, numeric, markers=markers, path=path, year=year, counted=keep)
        part = values[keep].rename(columns={c: preset.columns.get(c, c) for c in values.columns})
        for raw_name, tidy in preset.columns.items():
            if tidy in TEXT_COLUMNS and raw_name in raw.columns and tidy != "urn":
                part[tidy] = raw.loc[keep, raw_name].astype("str").str.strip()
        part.insert(0, "urn", urns[keep])
        part.insert(1, "year", year)
        part["_file"] = number
        parts.append(part)
        tallies.append(counts)
        files.append(record)
    _refuse_absent_columns(options, preset, files)
    frame = pd.concat(parts, ignore_index=True, sort=False)
    value_columns = [c for c in frame.columns if c not in ("urn", "year", "_file")]
    exclusions = []
    if summary_rows:
        exclusions.append(
            {
                "step": "read tables",
                "reason": "summary row (empty URN: national or local-authority total)",
                "rows": summary_rows,
                "schools": 0,
                "detail": "rows without a URN are totals, not schools",
            }
        )
    frame, overlap = _merge_overlaps(frame, value_columns, files, {t: r for r, t in preset.columns.items()})
    if overlap:
        exclusions.append(overlap)
    frame = frame.drop(columns="_file")
    subgroups = _subgroups(frame, preset)
    panel_columns = ["urn", "year", *[c for c in frame.columns if c in set(preset.columns.values()) - {"urn"}]]
    marker_frame = pd.concat(tallies, ignore_index=True) if tallies else pd.DataFrame()
    return Tables(
        frame=frame[panel_columns],
        subgroups=subgroups,
        files=files,
        markers=marker_frame,
        exclusions=exclusions,
        value_columns=[c for c in panel_columns if c not in ("urn", "year")],
        rows_read=rows_read,
    )


def _refuse_duplicates(urns: pd.Series, *, path: Path, key: str, column: str) -> None:
    duplicated = urns.notna() & urns.duplicated(keep=False)
    if duplicated.any():
        rows = np.flatnonzero(duplicated.to_numpy()) + 1
        first = urns.iloc[rows[0] - 1]
        same = np.flatnonzero((urns == first).fillna(False).to_numpy()) + 1
        raise DataError(
            f"{key} '{path}' has URN {first} in more than one row (data rows {', '.join(map(str, same[:5]))}, column "
            f"'{column}'); {int(urns[duplicated].nunique())} URN(s) are repeated in all. A performance table has one "
            "row per school: remove the repeated rows, or split the file if it holds several years."
        )


def _refuse_absent_columns(options: SourcesOptions, preset: Preset, files: list[TableFileRead]) -> None:
    absent_everywhere = set.intersection(*(set(f.missing_columns) for f in files))
    asked = [raw for raw in options.columns if raw in absent_everywhere]
    if asked:
        raise DataError(
            f"sources.columns names {', '.join(repr(c) for c in asked)}, found in none of the "
            f"{len(files)} performance table(s) (e.g. '{files[0].path}'). Check the spelling (case-sensitive)."
        )
    outcome_raw = [raw for raw, tidy in preset.columns.items() if tidy == preset.outcome]
    if outcome_raw and outcome_raw[0] in absent_everywhere:
        raise DataError(
            f"None of the {len(files)} performance table(s) has the column '{outcome_raw[0]}' of preset "
            f"'{preset.name}' (e.g. '{files[0].path}'). Check that they are {preset.name.upper()} tables, or set "
            "sources.preset to the tables' layout ('ks4', 'ks2', or 'none' with sources.columns)."
        )


def _merge_overlaps(
    frame: pd.DataFrame, value_columns: list[str], files: list[TableFileRead], raw_names: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """Drop identical copies of a school-year found in two files for one year; refuse different ones."""
    twice = frame.duplicated(["urn", "year"], keep=False).to_numpy()
    if not twice.any():
        return frame, None
    copies = frame[twice]
    grouped = copies.groupby(["urn", "year"], sort=False)
    for column in value_columns:
        differing = grouped[column].nunique(dropna=False) > 1
        if differing.any():
            urn, year = differing[differing].index[0]
            rows = copies[(copies["urn"] == urn) & (copies["year"] == year)]
            shown = "; ".join(
                f"'{files[int(f)].path.name}' has {v!r}" for f, v in zip(rows["_file"], rows[column], strict=True)
            )
            raise DataError(
                f"Two performance tables for exam year {year} disagree: URN {urn}, column "
                f"'{raw_names.get(column, column)}' ({column}): {shown} "
                f"({int(differing.sum())} school(s) differ in this column). Keep one file per year (e.g. the final "
                "tables rather than the provisional ones) in sources.performance_tables."
            )
    dropped = frame.duplicated(["urn", "year"], keep="first")
    years = sorted(int(y) for y in frame.loc[dropped, "year"].unique())
    detail = {
        "years": years,
        "files": sorted({files[int(f)].key for f in frame.loc[twice, "_file"].unique()}),
    }
    exclusion = {
        "step": "read tables",
        "reason": "identical copy of a school-year in a second file for the same year",
        "rows": int(dropped.sum()),
        "schools": int(frame.loc[dropped, "urn"].nunique()),
        "detail": detail,
    }
    return frame[~dropped.to_numpy()].reset_index(drop=True), exclusion


def _subgroups(frame: pd.DataFrame, preset: Preset) -> pd.DataFrame | None:
    """The long subgroup frame ``urn, year, subgroup_type, subgroup, n_pupils, <outcome>``.

    Every school-year has a row per subgroup of the preset found in any file; suppressed cells stay as missing
    values (their markers are counted), so no row is dropped here.
    """
    present = [s for s in preset.subgroups if s.outcome_column in frame.columns]
    if not present or preset.outcome is None:
        return None
    parts = []
    for spec in present:
        counts = frame[spec.count_column] if spec.count_column in frame.columns else np.nan
        part = pd.DataFrame(
            {
                "urn": frame["urn"],
                "year": frame["year"],
                "subgroup_type": spec.subgroup_type,
                "subgroup": spec.subgroup,
                "n_pupils": counts,
                preset.outcome: frame[spec.outcome_column],
            }
        )
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
