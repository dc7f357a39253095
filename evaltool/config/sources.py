"""Pydantic models of the ``sources:`` block: England's raw DfE and GIAS files.

The block names the published files by kind (performance tables, one per year; the GIAS establishments,
links and academy trust membership extracts) and the rules that turn them into a school × year panel
(:func:`evaltool.data.dfe.assemble_sources`).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from evaltool.config.models import ConfigModel, Year

#: Names the assembled panel gives its own columns; ``sources.columns`` may not map a raw column onto them.
RESERVED_TIDY_NAMES: frozenset[str] = frozenset(
    {
        "source_urn",
        "urns",
        "year",
        "region",
        "phase",
        "establishment_type",
        "join_year",
        "leave_year",
        "trust_id",
        "trust_size",
        "pre_existing",
        "academy",
        "converted_year",
    }
)
_TIDY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CUTOFF = re.compile(r"^(\d{2})-(\d{2})$")


class RawFile(ConfigModel):
    """One raw GIAS file.  In YAML either a path string or a mapping ``{path, encoding}``."""

    path: Path
    """Path to the file, relative to the config file's folder."""
    encoding: str | None = None
    """Text encoding of this file; defaults to sources.encoding (a file that is valid UTF-8 is read as UTF-8)."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, (str, Path)):
            return {"path": value}
        return value


class TableFile(RawFile):
    """One performance-table file or a glob of them.  In YAML a string or ``{path, year, encoding}``."""

    path: Path
    """Path or glob (e.g. 'dfe/ks4/*_england_ks4final.csv'), relative to the config file's folder."""
    year: Year | None = None
    """Exam year of the file (2019 for 2018/19); needed only when the file name does not hold the academic year (then the path must name one file)."""


class SourcesOptions(ConfigModel):
    """England's published files (DfE performance tables and GIAS extracts) and how to assemble them."""

    performance_tables: list[TableFile] = Field(min_length=1)
    """Performance-table files, one per exam year: paths or globs, or {path, year, encoding} entries."""
    preset: Literal["ks4", "ks2", "none"] = "ks4"
    """Column preset of the tables: 'ks4' (england_ks4final), 'ks2' (england_ks2final) or 'none' (map every column in sources.columns)."""
    columns: dict[str, str] = Field(default_factory=dict)
    """Extra or overriding raw → tidy column names, e.g. {ATT8SCR_EBACC: ebacc}; with preset 'none' it must map a column to 'urn'."""
    markers: dict[str, str] = Field(default_factory=dict)
    """Extra missing-value markers of numeric columns and their meanings, e.g. {'-': not available} (case-sensitive)."""
    gias_establishments: RawFile | None = None
    """GIAS edubasealldata extract (phase, type, LA, region, open/close dates); needed for region, phase and academy status."""
    gias_links: RawFile | None = None
    """GIAS links extract (predecessor/successor URNs); without it no URNs are merged across conversions."""
    gias_membership: RawFile | None = None
    """GIAS academy trust membership extract (Group UID, URN, Date Joined Group, Date Left Group); without it no school has a join year."""
    encoding: str = "cp1252"
    """Default text encoding of every raw file (DfE and GIAS CSVs are Windows-1252); a file that is valid UTF-8 is read as UTF-8."""
    join_cutoff: str = "09-01"
    """Start of the academic year as MM-DD: a date on or after it in calendar year Y is in academic year Y/Y+1 (exam year Y+1), a date before it in exam year Y."""
    group_types: list[str] = Field(default_factory=lambda: ["Multi-academy trust"], min_length=1)
    """Membership rows whose Group Type is not listed are left out (counted in the data report)."""
    movers: Literal["exclude", "censor", "first_trust"] = "censor"
    """Schools that left their trust, re-joined or moved trust: 'exclude' them, 'censor' their rows from leaving on, or keep them with their 'first_trust' throughout."""
    conversion: Literal["covariate", "none"] = "covariate"
    """'covariate' adds the time-varying 0/1 column 'academy' and 'converted_year' (from the links and establishment open dates); 'none' leaves them out."""
    gap_years: list[Year] = Field(default_factory=lambda: [2020, 2021])
    """Exam years without published tables (2020 and 2021: exams cancelled): flagged, never interpolated; a baseline across them is counted as a longer baseline, not attrition."""

    @field_validator("columns")
    @classmethod
    def _tidy_names(cls, value: dict[str, str]) -> dict[str, str]:
        for raw, tidy in value.items():
            if not raw.strip():
                raise ValueError("a raw column name is empty; write the column's header as in the file")
            if not _TIDY.match(tidy):
                raise ValueError(
                    f"the tidy name {tidy!r} of column {raw!r} must start with a letter and hold only letters, "
                    "digits and '_'"
                )
            if tidy in RESERVED_TIDY_NAMES:
                raise ValueError(
                    f"column {raw!r} is mapped to {tidy!r}, a name the assembled panel reserves for its own column; "
                    "choose another name"
                )
        return value

    @field_validator("markers")
    @classmethod
    def _marker_text(cls, value: dict[str, str]) -> dict[str, str]:
        for marker, meaning in value.items():
            if not marker.strip():
                raise ValueError("a marker is empty; empty cells are already read as missing ('blank')")
            if marker.strip() != marker:
                raise ValueError(f"marker {marker!r} has leading or trailing spaces (cells are stripped before matching)")
            try:
                float(marker)
            except ValueError:
                pass
            else:
                raise ValueError(f"marker {marker!r} is a number; a marker must be text such as '-' or 'SUPP'")
            if not meaning.strip():
                raise ValueError(f"marker {marker!r} needs a meaning, e.g. 'not available'")
        return value

    @field_validator("join_cutoff")
    @classmethod
    def _month_day(cls, value: str) -> str:
        match = _CUTOFF.match(value)
        if match is None:
            raise ValueError(f"must be a month and day as 'MM-DD', e.g. '09-01' for 1 September (got {value!r})")
        month, day = int(match[1]), int(match[2])
        try:
            date(2001, month, day)  # a non-leap year: 29 February is not a cut-off every year
        except ValueError:
            raise ValueError(f"{value!r} is not a day of every year; use e.g. '09-01' for 1 September") from None
        return value

    @field_validator("group_types")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("holds an empty group type; write them as in the file, e.g. 'Multi-academy trust'")
        return value

    @model_validator(mode="after")
    def _urn_column(self) -> SourcesOptions:
        if self.preset == "none" and "urn" not in self.columns.values():
            raise ValueError(
                "with preset 'none', sources.columns must map the school's URN column to 'urn', e.g. {URN: urn}"
            )
        return self

    def cutoff_month_day(self) -> tuple[int, int]:
        """``join_cutoff`` as (month, day)."""
        month, day = self.join_cutoff.split("-")
        return int(month), int(day)
