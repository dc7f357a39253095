"""Pydantic models of the YAML config.

The root model is assembled from the method registry (see
:func:`evaltool.config.loader.config_model`): each registered method
contributes its own analysis model, a subclass of :class:`AnalysisBase`
with ``method: Literal["<name>"]``, so the JSON Schema and validation of
method options come from the method's own module.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evaltool.config.inference import InferenceOptions, move_cluster_shorthand
from evaltool.config.sensitivity import SensitivityOptions

#: An academic year in a config (2019 for 2018/19).
Year = Annotated[int, Field(ge=1900, le=2100)]
#: Default of ``data.year_range``: years in the data outside it are errors (England's performance tables begin in
#: the 1990s; 2100 leaves room for planned join years).
DEFAULT_YEAR_RANGE: tuple[int, int] = (1990, 2100)
#: Years relative to joining (event time).
EventTime = Annotated[int, Field(ge=-50, le=50)]

IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")

#: Names the data layer gives the mapped columns internally.  Outcome and
#: covariate columns keep the user's names, so they must not clash with these.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "school",
    "year",
    "join_year",
    "treated",
    "trust",
    "local_authority",
    "subgroup",
    "subgroup_type",
    "pupil_count",
)


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys are errors; values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SourceFile(ConfigModel):
    """One input file.  In YAML either a path string or a mapping."""

    path: Path
    """Path to the file, relative to the config file's folder."""
    format: Literal["csv", "parquet", "stata"] | None = None
    """File format; inferred from the suffix (.csv/.txt, .parquet/.pq, .dta) when omitted."""
    delimiter: str = ","
    """Field delimiter for CSV files (e.g. ',' or ';' or '\\t')."""
    encoding: str = "utf-8"
    """Text encoding for CSV files (e.g. 'utf-8', 'latin-1')."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, (str, Path)):
            return {"path": value}
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"must be a single character such as ',' or ';' (got {value!r})")
        return value

    def resolved_format(self) -> str:
        """The format, from ``format`` or the path's suffix."""
        if self.format is not None:
            return self.format
        suffix = self.path.suffix.lower()
        formats = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".dta": "stata"}
        return formats.get(suffix, "csv")


class DataSources(ConfigModel):
    """The input files and which years to use."""

    panel: SourceFile | None = None
    """School × year file (one row per school and academic year); required unless the top-level sources: block names England's raw DfE/GIAS files instead."""
    subgroups: SourceFile | None = None
    """Optional school × year × pupil-subgroup file (performance-table breakdowns)."""
    pupils: SourceFile | None = None
    """Optional pupil-level file (one row per pupil)."""
    trusts: SourceFile | None = None
    """Optional trust/collaboration attributes file (one row per trust)."""
    exclude_years: list[Year] = Field(default_factory=list)
    """Academic years to leave out of every analysis (e.g. [2020, 2021], when exams were cancelled)."""
    year_range: tuple[Year, Year] = DEFAULT_YEAR_RANGE
    """Plausible academic years [first, last]: a year or join year outside them in any file, or a year of the config outside them, is an error (widen it for older data)."""

    @field_validator("year_range")
    @classmethod
    def _first_before_last(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] > value[1]:
            raise ValueError(f"must be [first, last] with first ≤ last (got {list(value)}); e.g. [1990, 2100]")
        return value


class Columns(ConfigModel):
    """Which column of the input files plays which role."""

    school: str = "urn"
    """School identifier (e.g. the URN)."""
    year: str = "year"
    """Academic year as a number (2019 for 2018/19)."""
    join_year: str | None = "join_year"
    """First academic year a school is in the federation/trust; empty or 0 for schools that never joined."""
    treated: str | None = None
    """Optional 0/1 column, 1 when the school is in the collaboration that year; checked against join_year."""
    trust: str | None = None
    """Optional trust/federation identifier (for clustering and per-trust analyses)."""
    local_authority: str | None = None
    """Optional local authority code (for clustering or exact matching)."""
    outcomes: list[str] = Field(min_length=1)
    """Outcome columns (e.g. [attainment8])."""
    covariates: list[str] = Field(default_factory=list)
    """School-level covariate columns (e.g. KS2 prior attainment, FSM %)."""
    subgroup: str | None = None
    """Subgroup column of the subgroups file (e.g. 'disadvantaged', 'girls')."""
    subgroup_type: str | None = None
    """Optional column of the subgroups file naming the breakdown (e.g. 'disadvantage', 'gender')."""
    pupil_count: str | None = None
    """Column of the subgroups file with the number of pupils in each cell."""

    @model_validator(mode="after")
    def _no_clash(self) -> Columns:
        roles = {
            name: getattr(self, name)
            for name in ("school", "year", "join_year", "treated", "trust", "local_authority")
            if getattr(self, name)
        }
        seen: dict[str, str] = {}
        for role, column in roles.items():
            if column in seen:
                raise ValueError(
                    f"columns.{seen[column]} and columns.{role} both name the column '{column}'; each role needs its "
                    f"own column: correct columns.{seen[column]} or columns.{role}"
                )
            seen[column] = role
        for column in [*self.outcomes, *self.covariates]:
            if column in seen:
                raise ValueError(f"column '{column}' is mapped as '{seen[column]}' and also listed as an outcome/covariate")
            if column in CANONICAL_COLUMNS:
                raise ValueError(
                    f"outcome/covariate column '{column}' has a name evaltool reserves; rename it in the file"
                )
        return self


class OutputOptions(ConfigModel):
    """Where and how results are written."""

    folder: Path = Path("results")
    """Output folder, relative to the config file's folder; `evaltool run --out` overrides it."""
    overwrite: bool = False
    """Replace the output folder if it exists (otherwise an existing folder is an error)."""
    publication: bool = False
    """The output is for publication: small counts are also suppressed in results.csv and results.json (the report always suppresses them)."""
    suppression_threshold: int = Field(default=10, ge=1, le=1000)
    """Counts of pupils or schools below this are shown as 'c' and statistics of groups that small are withheld (default 10: the ONS 10 threshold rule)."""


class HeterogeneityOptions(ConfigModel):
    """Subgroup heterogeneity of an analysis (the ``heterogeneity:`` block of any method).

    For pupil-level multilevel models each ``by`` entry is a pupil column and the subgroup
    effects come from treatment × subgroup interactions; for school-panel methods each entry
    is a subgroup (or subgroup type) of ``data.subgroups`` and the method is rerun on each
    subgroup's school × year panel, with the gap between two subgroups tested by rerunning it
    on the within-school gap (a triple difference).
    """

    by: list[str] = Field(min_length=1)
    """Pupil columns (multilevel) or subgroups / subgroup types of data.subgroups (other methods)."""
    compare: list[tuple[str, str]] = Field(default_factory=list)
    """Pairs [focal, reference] of school-panel subgroups whose gap is tested (triple difference)."""
    reference: dict[str, str] = Field(default_factory=dict)
    """Reference level of a pupil column (default: 0/'no' for yes/no columns, else the most common level)."""
    levels: dict[str, list[str]] = Field(default_factory=dict)
    """Expected codes of a pupil column; any other code is an error that lists them."""
    min_pupils: int = Field(default=10, ge=1, le=100_000)
    """Subgroup cells (school × year) with fewer pupils are left out; a subgroup with fewer pupils in total is skipped."""
    min_schools: int = Field(default=5, ge=1, le=100_000)
    """A subgroup needs at least this many treated and this many comparison schools, else it is skipped."""


class AnalysisBase(ConfigModel):
    """Keys every analysis has, whatever its method."""

    name: str = Field(max_length=64)
    """Short identifier of the analysis, unique in the config (letters, digits, '_' or '-'; at most 64 characters)."""
    method: str
    """Which estimator to run (see the list of methods)."""
    outcome: str | None = None
    """Outcome column to analyse; defaults to the first of columns.outcomes."""
    description: str = ""
    """Free text shown in the report."""
    heterogeneity: HeterogeneityOptions | None = None
    """Optional subgroup analysis (effects by pupil subgroup, Holm/BH-adjusted p-values, forest plot)."""
    inference: InferenceOptions = Field(default_factory=InferenceOptions)
    """How standard errors are computed: cluster level, small-sample correction, few-cluster method (see docs: Inference)."""
    sensitivity: SensitivityOptions = Field(default_factory=SensitivityOptions)
    """Sensitivity analyses (on by default): how strong a violation of the design's assumption would change the answer (see docs: Sensitivity)."""

    @model_validator(mode="before")
    @classmethod
    def _cluster_shorthand(cls, data: Any) -> Any:
        return move_cluster_shorthand(data)

    @property
    def cluster(self) -> str | tuple[str, str]:
        """The requested cluster level(s) (``inference.cluster``)."""
        return self.inference.cluster

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(
                f"must start with a letter and contain only letters, digits, '_' or '-' (got {value!r})"
            )
        return value


class ConfigBase(ConfigModel):
    """Top-level keys; ``analyses`` is added by the loader from the registry."""

    title: str = "Evaluation of inter-school collaboration"
    """Title of the evaluation, shown in the report."""
    seed: int = Field(default=20240601, ge=0, lt=2**63, strict=True)
    """Seed for every random step (bootstrap, tie-breaking, simulation); a non-negative whole number; same seed, same results."""
    data: DataSources = Field(default_factory=DataSources)
    """Input files."""
    columns: Columns
    """Column roles."""
    output: OutputOptions = Field(default_factory=OutputOptions)
    """Output options."""
