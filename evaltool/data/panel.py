"""The validated school × year panel every estimator reads.

Mapped columns are renamed to canonical names (``school``, ``year``,
``join_year``, ``treated``, ``trust``, ``local_authority``); outcome and
covariate columns keep the user's names.  ``join_year`` is a float with
``NaN`` for schools that never joined (0 in the file also means never, as in
R's ``did``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaltool.config.models import DEFAULT_YEAR_RANGE
from evaltool.data.coerce import CoercionLog, data_rows, to_id, to_indicator, to_numeric, to_year
from evaltool.errors import DataError
from evaltool.results import SampleReport

#: Years whose grades were centre- or teacher-assessed in England (not comparable).
ASSESSED_YEARS: dict[int, str] = {
    2020: "exams cancelled; centre-assessed grades",
    2021: "exams cancelled; teacher-assessed grades",
}


@dataclass
class SchoolPanel:
    """School × year (× subgroup) data, validated.

    Attributes
    ----------
    frame
        The data with canonical column names, sorted by school, year
        (and subgroup).
    outcomes, covariates
        Outcome and covariate column names.
    source_columns
        Canonical name → column name in the file (for messages).
    path
        The file it came from.
    report
        Rows excluded while loading, by reason (missing ids, excluded years …).
    missing
        Missing values per column (after exclusions).
    markers
        Missing-value markers found per column (e.g. ``{'attainment8': {'c': 3}}``).
    """

    frame: pd.DataFrame
    outcomes: list[str]
    covariates: list[str]
    source_columns: dict[str, str]
    path: Path | None = None
    report: SampleReport = field(default_factory=SampleReport)
    missing: dict[str, int] = field(default_factory=dict)
    markers: dict[str, dict[str, int]] = field(default_factory=dict)
    keys: tuple[str, ...] = ("school", "year")

    # ---------------------------------------------------------------- views
    @property
    def years(self) -> list[int]:
        return sorted(int(y) for y in self.frame["year"].unique())

    def schools(self) -> pd.DataFrame:
        """One row per school: join year, first/last observed year, trust, LA."""
        grouped = self.frame.groupby("school", sort=True)
        out = grouped.agg(first_year=("year", "min"), last_year=("year", "max"), n_years=("year", "size"))
        for column in ("join_year", "trust", "local_authority"):
            if column in self.frame:
                out[column] = grouped[column].first()
        if "join_year" not in out:
            out["join_year"] = np.nan
        out["ever_joined"] = out["join_year"].notna()
        out["joined_before_data"] = out["join_year"] <= out["first_year"]
        return out

    def summary(self) -> dict[str, Any]:
        """Counts for ``evaltool validate`` and the results: schools, cohorts, missingness."""
        schools = self.schools()
        joined = schools[schools["ever_joined"]]
        in_window = joined[~joined["joined_before_data"]]
        cohorts = in_window["join_year"].astype(int).value_counts().sort_index()
        return {
            "file": self.path.name if self.path else None,
            "n_rows": int(len(self.frame)),
            "n_schools": int(len(schools)),
            "years": self.years,
            "n_years": len(self.years),
            "balanced": bool((schools["n_years"] == len(self.years)).all()),
            "n_schools_unbalanced": int((schools["n_years"] < len(self.years)).sum()),
            "n_never_joined": int((~schools["ever_joined"]).sum()),
            "n_joined": int(schools["ever_joined"].sum()),
            "cohorts": {int(k): int(v) for k, v in cohorts.items()},
            "n_joined_before_data": int(joined["joined_before_data"].sum()),
            "joined_before_data_schools": sorted(joined.index[joined["joined_before_data"]].astype(str).tolist())[:20],
            "n_trusts": int(self.frame["trust"].nunique()) if "trust" in self.frame else None,
            "n_local_authorities": (
                int(self.frame["local_authority"].nunique()) if "local_authority" in self.frame else None
            ),
            "assessed_years_present": {
                int(y): reason for y, reason in ASSESSED_YEARS.items() if y in set(self.years)
            },
            "missing": {k: int(v) for k, v in self.missing.items()},
            "missing_markers": self.markers,
            "exclusions": [e.__dict__ for e in self.report.exclusions],
        }


# ------------------------------------------------------------------ loading
@dataclass(frozen=True)
class ColumnSpec:
    """A mapped column: its role, file name and config key."""

    role: str
    column: str
    key: str
    required: bool = True


def check_columns(frame: pd.DataFrame, specs: list[ColumnSpec], where: str, locate) -> None:
    """Raise one DataError listing every mapped column missing from the file."""
    import difflib

    missing = [s for s in specs if s.required and s.column not in frame.columns]
    if not missing:
        return
    lines = []
    for spec in missing:
        close = difflib.get_close_matches(spec.column, [str(c) for c in frame.columns], n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        lines.append(f"  - '{spec.column}' ({spec.role}), mapped by {locate(spec.key)}{hint}")
    shown = ", ".join(str(c) for c in list(frame.columns)[:25])
    in_memory = where.startswith("the data frame")  # the Python API (see evaltool.data.study.load_study)
    fix = ("Pass the names of its columns in the arguments." if in_memory
           else "Change the column names under 'columns:' in the config to match the file.")
    raise DataError(
        f"{where} is missing {len(missing)} mapped column{'s' if len(missing) != 1 else ''}:\n"
        + "\n".join(lines)
        + f"\nThe {'data frame' if in_memory else 'file'} has columns: {shown}{' …' if frame.shape[1] > 25 else ''}. "
        + fix
    )


def build_panel(
    raw: pd.DataFrame,
    specs: list[ColumnSpec],
    *,
    outcomes: list[str],
    covariates: list[str],
    where: str,
    path: Path | None,
    exclude_years: list[int],
    keys: tuple[str, ...] = ("school", "year"),
    locate=lambda key: key,
    year_range: tuple[int, int] = DEFAULT_YEAR_RANGE,
) -> SchoolPanel:
    """Validate and type a raw frame into a :class:`SchoolPanel`.

    Checks: mapped columns exist; ids present; years numeric; unique keys;
    join year constant within a school; treated indicator consistent with the
    join year.  Rows without a school id or year, and rows in
    ``exclude_years``, are excluded and counted.
    """
    check_columns(raw, specs, where, locate)
    by_role = {s.role: s for s in specs if s.column in raw.columns and s.role not in ("outcome", "covariate")}
    log = CoercionLog()
    report = SampleReport(n_rows_in=len(raw))
    frame = pd.DataFrame(index=raw.index)

    frame["school"] = to_id(raw[by_role["school"].column])
    frame["year"] = to_year(raw[by_role["year"].column], column=by_role["year"].column, role="year", where=where,
                            allow_missing=True, year_range=year_range)
    if "subgroup" in by_role:
        frame["subgroup"] = to_id(raw[by_role["subgroup"].column])
    if "subgroup_type" in by_role:
        frame["subgroup_type"] = to_id(raw[by_role["subgroup_type"].column])
    if "join_year" in by_role:
        join = to_year(raw[by_role["join_year"].column], column=by_role["join_year"].column, role="join year",
                       where=where, allow_missing=True, year_range=year_range)
        frame["join_year"] = join.where(join != 0, np.nan)
    if "treated" in by_role:
        frame["treated"] = to_indicator(raw[by_role["treated"].column], column=by_role["treated"].column, role="treated indicator", where=where)
    for role in ("trust", "local_authority"):
        if role in by_role:
            frame[role] = to_id(raw[by_role[role].column])
    if "pupil_count" in by_role:
        column = by_role["pupil_count"].column
        frame["pupil_count"] = to_numeric(raw[column], column=column, role="pupil count", where=where, log=log)
        _check_counts(frame["pupil_count"], column, where)
    for column in outcomes:
        frame[column] = to_numeric(raw[column], column=column, role="outcome", where=where, log=log)
        if frame[column].isna().all():
            raise DataError(
                f"Outcome column '{column}' in {where} has no values at all (every cell is empty"
                + (f" or a missing-value marker: {', '.join(sorted(log.markers[column]))}" if column in log.markers else "")
                + "). Check that "
                "columns.outcomes names the right column and that the file holds its values."
            )
    for column in covariates:
        if column not in frame:
            frame[column] = to_numeric(raw[column], column=column, role="covariate", where=where, log=log)

    frame = _exclude_rows(frame, frame["school"].isna(), "missing school id", report, where)
    frame = _exclude_rows(frame, frame["year"].isna(), "missing year", report, where)
    frame["year"] = frame["year"].astype("int64")
    if exclude_years:
        frame = _exclude_rows(
            frame,
            frame["year"].isin(exclude_years),
            f"year excluded by data.exclude_years ({', '.join(map(str, sorted(exclude_years)))})",
            report,
            where,
        )
    if frame.empty:
        raise DataError(f"{where} has no rows left after removing rows without a school id/year and excluded years.")

    _check_unique(frame, keys, where, by_role)
    if "join_year" in frame:
        _check_join_year_constant(frame, where, by_role["join_year"].column)
    if "treated" in frame and "join_year" in frame:
        _check_treated_consistent(frame, where, by_role)

    frame = frame.sort_values(list(keys), kind="mergesort").reset_index(drop=True)
    report.n_rows_used = len(frame)
    report.n_units_used = int(frame["school"].nunique())
    # Empty join_year / treated / trust mean "never joined" / "not in a trust", not missing data.
    expected_empty = {"join_year", "treated", "trust"}
    missing = {c: int(frame[c].isna().sum()) for c in frame.columns if c not in expected_empty}
    return SchoolPanel(
        frame=frame,
        outcomes=list(outcomes),
        covariates=list(covariates),
        source_columns={s.role: s.column for s in specs if s.role not in ("outcome", "covariate")},
        path=path,
        report=report,
        missing={k: v for k, v in missing.items() if v},
        markers=log.markers,
        keys=keys,
    )


def _check_counts(counts: pd.Series, column: str, where: str) -> None:
    """Pupil counts are whole numbers ≥ 0."""
    bad = counts.notna() & ((counts < 0) | (counts != np.round(counts)))
    if bad.any():
        raise DataError(
            f"Column '{column}' (pupil count) in {where} must hold whole numbers of pupils, 0 or more; found "
            f"{int(bad.sum())} other value{'s' if bad.sum() != 1 else ''} in data {data_rows(bad)}, e.g. "
            f"{', '.join(map(str, counts[bad].head(3).tolist()))}. Correct those cells or leave them empty."
        )


def _exclude_rows(frame: pd.DataFrame, mask: pd.Series, reason: str, report: SampleReport, where: str) -> pd.DataFrame:
    n = int(mask.sum())
    if n:
        units = frame.loc[mask, "school"].nunique() if "school" in frame else None
        report.exclude(reason, n, units, stage="data", detail=where)
    return frame.loc[~mask]


def _check_unique(frame: pd.DataFrame, keys: tuple[str, ...], where: str, by_role: dict[str, ColumnSpec]) -> None:
    dup = frame.duplicated(list(keys), keep=False)
    if dup.any():
        examples = frame.loc[dup, list(keys)].drop_duplicates().head(3)
        shown = "; ".join(", ".join(f"{by_role[k].column}={row[k]}" for k in keys) for _, row in examples.iterrows())
        names = " × ".join(by_role[k].column for k in keys)
        raise DataError(
            f"{where} has {int(dup.sum())} rows that share a {names} with another row (each "
            f"{names} must appear once), e.g. {shown}. Remove or aggregate the duplicates before running."
        )


def _check_join_year_constant(frame: pd.DataFrame, where: str, column: str) -> None:
    counts = frame.groupby("school")["join_year"].nunique(dropna=False)
    varying = counts[counts > 1]
    if len(varying):
        examples = []
        for school in varying.index[:3]:
            values = sorted({"empty" if pd.isna(v) else str(int(v)) for v in frame.loc[frame["school"] == school, "join_year"]})
            examples.append(f"school {school}: {', '.join(values)}")
        raise DataError(
            f"Column '{column}' (join year) in {where} must be the same in every row of a school; it varies in "
            f"{len(varying)} school{'s' if len(varying) != 1 else ''} ({'; '.join(examples)}). Use the first year the "
            "school was in the collaboration for all its rows (schools that left and re-joined need separate ids)."
        )


def _check_treated_consistent(frame: pd.DataFrame, where: str, by_role: dict[str, ColumnSpec]) -> None:
    implied = (frame["join_year"].notna() & (frame["year"] >= frame["join_year"])).astype(float)
    given = frame["treated"]
    bad = given.notna() & (given != implied)
    if bad.any():
        ex = frame.loc[bad].head(3)
        shown = "; ".join(
            f"school {r.school}, year {r.year}: {by_role['treated'].column}={int(r.treated)} but "
            f"{by_role['join_year'].column}={'empty' if pd.isna(r.join_year) else int(r.join_year)}"
            for r in ex.itertuples()
        )
        raise DataError(
            f"Column '{by_role['treated'].column}' (treated indicator) in {where} disagrees with "
            f"'{by_role['join_year'].column}' in {int(bad.sum())} rows ({shown}). It must be 1 from the join year on "
            "and 0 before (and always 0 for schools that never joined). Correct one of the two columns, or remove "
            "columns.treated from the config to derive it from the join year."
        )
