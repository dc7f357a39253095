"""Load every input named in the config into one :class:`StudyData`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from evaltool.data.coerce import CoercionLog, check_finite, to_id, to_numeric, to_year
from evaltool.data.io import read_source
from evaltool.data.panel import ColumnSpec, SchoolPanel, build_panel, check_columns
from evaltool.data.trusts import validate_trusts
from evaltool.errors import DataError
from evaltool.results import SampleReport

if TYPE_CHECKING:
    from evaltool.config.root import Config


@dataclass
class StudyData:
    """All data of one evaluation.

    Attributes
    ----------
    panel
        School × year panel (always present).
    subgroups
        School × year × subgroup panel, with ``join_year``/``trust``/
        ``local_authority`` taken from the school panel; ``None`` if not given.
    pupils
        Pupil-level frame with ``school`` and ``year`` canonical columns (other
        columns as in the file); ``None`` if not given.
    trusts
        Trust attributes as read (validated by the methods that use them).
    files
        Resolved path of each input, by config key (for the manifest).
    """

    panel: SchoolPanel
    subgroups: SchoolPanel | None = None
    pupils: pd.DataFrame | None = None
    trusts: pd.DataFrame | None = None
    files: dict[str, Path] = field(default_factory=dict)
    pupil_report: SampleReport | None = None
    assembly: dict[str, Any] | None = None
    """The data-assembly report of ``sources:`` (files read, URNs merged, markers, exclusions), if used."""
    inline: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Tables an analysis would read from its own file option, given in memory by the Python API instead
    (``effects_file`` of a meta-analysis), by option name."""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"panel": self.panel.summary()}
        if self.subgroups is not None:
            sub = self.subgroups.summary()
            sub["subgroups"] = sorted(self.subgroups.frame["subgroup"].dropna().unique().tolist())
            out["subgroups"] = sub
        if self.pupils is not None:
            out["pupils"] = {
                "n_rows": int(len(self.pupils)),
                "n_schools": int(self.pupils["school"].nunique()),
                "years": sorted(int(y) for y in self.pupils["year"].dropna().unique()),
                "exclusions": [e.__dict__ for e in self.pupil_report.exclusions] if self.pupil_report else [],
            }
        if self.trusts is not None:
            out["trusts"] = {"n_rows": int(len(self.trusts)), "columns": list(self.trusts.columns)}
        if self.assembly is not None:
            out["assembly"] = self.assembly
        return out


#: The Python API's argument that carries each ``data:`` source given in memory (see :func:`load_study`).
FRAME_ARGUMENTS: dict[str, str] = {"panel": "data", "subgroups": "subgroups", "pupils": "pupils", "trusts": "trusts"}


def load_study(config: Config, frames: Mapping[str, pd.DataFrame] | None = None) -> StudyData:
    """Read and validate every data source of ``config``.

    Parameters
    ----------
    config
        The validated config.
    frames
        Data given in memory instead of files (the Python API), by ``data:`` key (``panel``, ``subgroups``,
        ``pupils``, ``trusts``); a key given here is not read from its file, and is checked exactly as a file
        would be (the caller's frame is not changed).  Messages then name the API argument (``data``, ``pupils``…).

    Raises
    ------
    DataError
        Naming the file, column and config key of the first problem found.
    """
    cols = config.columns
    files: dict[str, Path] = {}
    exclude = list(config.data.exclude_years)

    assembled = None
    if config.sources is not None:
        assembled = _assemble(config, files)
        raw, panel_path, where = assembled.panel, None, "the school panel assembled from sources:"
    else:
        raw, panel_path, where = _read(config, "panel", files, frames)
    specs = _base_specs(config)
    panel = build_panel(
        raw,
        specs + [ColumnSpec("outcome", c, f"columns.outcomes[{i}]") for i, c in enumerate(cols.outcomes)]
        + [ColumnSpec("covariate", c, f"columns.covariates[{i}]") for i, c in enumerate(cols.covariates)],
        outcomes=cols.outcomes,
        covariates=cols.covariates,
        where=where,
        path=panel_path,
        exclude_years=exclude,
        locate=lambda key: config.where(_key_loc(key)),
        year_range=config.data.year_range,
    )

    study = StudyData(panel=panel, files=files, assembly=assembled.report if assembled is not None else None)
    if assembled is not None and _has_subgroup_outcome(assembled.subgroups, cols.outcomes) and cols.subgroup:
        study.subgroups = _build_subgroups(config, panel, assembled.subgroups, None, "the subgroup panel assembled from sources:")
    elif config.data.subgroups is not None:
        study.subgroups = _load_subgroups(config, panel, files, frames)
    if config.data.pupils is not None:
        identity = _urn_identity(assembled.panel) if assembled is not None else None
        notes: dict[str, Any] = {}
        study.pupils, study.pupil_report = _load_pupils(config, files, frames, identity=identity, notes=notes)
        if "pupil_urns" in notes and study.assembly is not None:
            study.assembly = {**study.assembly, "pupil_urns": notes["pupil_urns"]}
    if config.data.trusts is not None:
        study.trusts, _, where = _read(config, "trusts", files, frames)
        # Checked now, so `validate` reports a bad trusts file and `run` stops before any analysis.
        validate_trusts(study.trusts, id_column=trust_id_column(config, study.trusts), where=where)
    return study


def _read(
    config: Config, name: str, files: dict[str, Path], frames: Mapping[str, pd.DataFrame] | None
) -> tuple[pd.DataFrame, Path | None, str]:
    """The raw rows of ``data.<name>``: the in-memory frame if given, else the file (recorded in ``files``).

    Returns the rows, the file's path (``None`` for a frame) and how messages name the source.
    """
    if frames is not None and name in frames:
        frame = frames[name]
        argument = FRAME_ARGUMENTS[name]
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{argument} must be a pandas DataFrame; got {type(frame).__name__}.")
        if frame.empty:
            raise DataError(f"{argument} has no rows.")
        raw = frame.copy()
        raw.columns = [str(c).strip() for c in raw.columns]
        return raw, None, f"the data frame passed as {argument}"
    key = f"data.{name}"
    source = getattr(config.data, name)
    path = config.resolve(source.path)
    files[key] = path
    return read_source(source, path, key), path, f"{key} '{path.name}'"


def _has_subgroup_outcome(subgroups: pd.DataFrame | None, outcomes: list[str]) -> bool:
    """Whether the assembled subgroup rows hold one of the outcomes (the tables break down Attainment 8 only)."""
    return subgroups is not None and any(c in subgroups.columns for c in outcomes)


def _assemble(config: Config, files: dict[str, Path]):
    """England's raw files of ``sources:`` assembled into the school (and subgroup) panel's rows."""
    from evaltool.data.dfe import assemble_sources  # the raw-file layer is only loaded when a config uses it

    assembled = assemble_sources(config.sources, config.base_dir, year_range=config.data.year_range)
    files.update(assembled.files)
    return assembled


def _check_pupil_numbers(frame: pd.DataFrame, config: Config, where: str) -> None:
    """Outcomes of the pupils file become numbers (markers → missing); numeric covariates hold no inf or absurd values.

    Changes ``frame`` in place (the caller's copy of the file).  Other text columns stay text: pupil
    covariates may be categories.
    """
    cols = config.columns
    log = CoercionLog()
    for column in (c for c in cols.outcomes if c in frame.columns):
        frame[column] = to_numeric(frame[column], column=column, role="outcome", where=where, log=log)
        if frame[column].isna().all():
            raise DataError(
                f"Outcome column '{column}' in {where} has no values at all (every cell is empty or a missing-value "
                "marker). Check that columns.outcomes names the right column and that the file holds its values."
            )
    used = [*cols.covariates, *(c for a in config.analyses for c in getattr(a, "pupil_covariates", ()))]
    for column in dict.fromkeys(c for c in used if c in frame.columns):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            check_finite(values, column=str(column), role="covariate", where=where)


def trust_id_column(config: Config, trusts: pd.DataFrame) -> str:
    """The trusts file's id column: the panel's trust column name if the file has it, else 'trust_id'."""
    name = config.columns.trust
    return name if name and name in trusts.columns else "trust_id"


def _key_loc(key: str) -> tuple:
    """'columns.outcomes[0]' → ('columns', 'outcomes', 0)."""
    loc: list[str | int] = []
    for part in key.replace("]", "").split("."):
        name, _, index = part.partition("[")
        loc.append(name)
        if index:
            loc.append(int(index))
    return tuple(loc)


def _base_specs(config: Config) -> list[ColumnSpec]:
    cols = config.columns
    specs = [ColumnSpec("school", cols.school, "columns.school"), ColumnSpec("year", cols.year, "columns.year")]
    for role in ("join_year", "treated", "trust", "local_authority"):
        column = getattr(cols, role)
        if column:
            specs.append(ColumnSpec(role, column, f"columns.{role}"))
    return specs


def _load_subgroups(
    config: Config, panel: SchoolPanel, files: dict[str, Path], frames: Mapping[str, pd.DataFrame] | None = None
) -> SchoolPanel:
    cols = config.columns
    if not cols.subgroup:
        raise DataError(
            f"data.subgroups is given but columns.subgroup is not set ({config.where(('columns',))}); "
            "name the column of the subgroups file that holds the subgroup (e.g. subgroup: subgroup)."
        )
    raw, path, where = _read(config, "subgroups", files, frames)
    return _build_subgroups(config, panel, raw, path, where)


def _build_subgroups(config: Config, panel: SchoolPanel, raw: pd.DataFrame, path: Path | None, where: str) -> SchoolPanel:
    """The subgroup panel from its raw rows (a file's or the assembled tables'), checked like the school panel."""
    cols = config.columns
    outcomes = [c for c in cols.outcomes if c in raw.columns]
    if not outcomes:
        raise DataError(
            f"{where} has none of the outcome columns {cols.outcomes}; the subgroups file must use the same "
            "outcome column names as the panel."
        )
    specs = [
        ColumnSpec("school", cols.school, "columns.school"),
        ColumnSpec("year", cols.year, "columns.year"),
        ColumnSpec("subgroup", cols.subgroup, "columns.subgroup"),
    ]
    if cols.subgroup_type:
        specs.append(ColumnSpec("subgroup_type", cols.subgroup_type, "columns.subgroup_type"))
    if cols.pupil_count:
        specs.append(ColumnSpec("pupil_count", cols.pupil_count, "columns.pupil_count"))
    specs += [ColumnSpec("outcome", c, f"columns.outcomes[{cols.outcomes.index(c)}]") for c in outcomes]
    sub = build_panel(
        raw,
        specs,
        outcomes=outcomes,
        covariates=[],
        where=where,
        path=path,
        exclude_years=list(config.data.exclude_years),
        keys=("school", "year", "subgroup"),
        locate=lambda key: config.where(_key_loc(key)),
        year_range=config.data.year_range,
    )
    # School-level attributes come from the panel, so the two files cannot disagree.
    attributes = panel.schools()[[c for c in ("join_year", "trust", "local_authority") if c in panel.frame]]
    known = sub.frame["school"].isin(attributes.index)
    n_unknown = int((~known).sum())
    if n_unknown:
        sub.report.exclude(
            "school not in the school panel",
            n_unknown,
            int(sub.frame.loc[~known, "school"].nunique()),
            stage="data",
            detail=where,
        )
        sub.frame = sub.frame.loc[known].reset_index(drop=True)
    sub.frame = sub.frame.join(attributes, on="school")
    sub.report.n_rows_used = len(sub.frame)
    return sub


def _urn_identity(panel: pd.DataFrame) -> pd.Series:
    """Every URN of a merged chain → the school identity (its latest URN), from the assembled panel."""
    pairs = panel[["urn", "urns"]].drop_duplicates()
    exploded = pairs.assign(old=pairs["urns"].astype("string").str.split(";")).explode("old")
    exploded = exploded[exploded["old"].notna() & (exploded["old"] != exploded["urn"].astype("string"))]
    return pd.Series(exploded["urn"].astype("string").to_numpy(), index=exploded["old"].astype("string").to_numpy())


def _load_pupils(
    config: Config, files: dict[str, Path], frames: Mapping[str, pd.DataFrame] | None = None, *,
    identity: pd.Series | None = None, notes: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, SampleReport]:
    """The pupils file, checked; with ``identity`` (URN chains merged by ``sources:``), the URN each pupil's
    row carries (the school's URN in that exam year, as in the National Pupil Database) becomes its school's
    identity, counted in ``notes["pupil_urns"]``."""
    cols = config.columns
    raw, _, where = _read(config, "pupils", files, frames)
    check_columns(
        raw,
        [ColumnSpec("school", cols.school, "columns.school"), ColumnSpec("year", cols.year, "columns.year")],
        where,
        lambda key: config.where(_key_loc(key)),
    )
    frame = raw.copy()
    _check_pupil_numbers(frame, config, where)
    frame["school"] = to_id(raw[cols.school])
    remapped = None
    if identity is not None:
        mapped = frame["school"].map(identity)
        hit = mapped.notna()
        remapped = {  # URNs only: a count of pupil rows would not belong in the public assembly report
            "urns": int(frame.loc[hit, "school"].nunique()),
            "rule": "a pupil row's URN that is an earlier URN of a merged chain is read as the school's latest URN",
        }
        frame["school"] = mapped.where(hit, frame["school"]).astype("string")
    frame["year"] = to_year(raw[cols.year], column=cols.year, role="year", where=where, allow_missing=True,
                            year_range=config.data.year_range)
    if cols.school != "school":
        frame = frame.drop(columns=[cols.school])
    if cols.year != "year":
        frame = frame.drop(columns=[cols.year])
    report = SampleReport(n_rows_in=len(frame))
    if remapped is not None and notes is not None:
        notes["pupil_urns"] = remapped
    for reason, mask in (("missing school id", frame["school"].isna()), ("missing year", frame["year"].isna())):
        if mask.any():
            report.exclude(reason, int(mask.sum()), unit="pupils", stage="data", detail=where)
            frame = frame.loc[~mask]
    if config.data.exclude_years:
        mask = frame["year"].isin(config.data.exclude_years)
        if mask.any():
            report.exclude("year excluded by data.exclude_years", int(mask.sum()), unit="pupils", stage="data", detail=where)
            frame = frame.loc[~mask]
    frame["year"] = frame["year"].astype("int64")
    report.n_rows_used = len(frame)
    return frame.reset_index(drop=True), report
