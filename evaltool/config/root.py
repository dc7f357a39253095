"""The root config model: top-level keys, paths relative to the config file, key positions for messages.

:class:`Config` holds ``analyses`` as plain :class:`~evaltool.config.models.AnalysisBase`; the loader
(:func:`evaltool.config.loader.config_model`) subclasses it with one typed model per registered method.
Modules below the pipeline (data, estimators, diagnostics) type against this class, so they never import
the loader (which imports the method registry).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, model_validator

from evaltool.config.models import AnalysisBase, ConfigBase
from evaltool.config.sources import SourcesOptions

Loc = tuple[str | int, ...]

#: ``columns:`` of a config with ``sources:``, by preset: the assembled panel's fixed names (see
#: :func:`evaltool.data.dfe.assemble_sources`); keys the user writes override them.
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "ks4": {
        "school": "urn", "year": "year", "join_year": "join_year", "trust": "trust_id", "local_authority": "la_code",
        "outcomes": ["attainment8"], "subgroup": "subgroup", "subgroup_type": "subgroup_type", "pupil_count": "n_pupils",
    },
    "ks2": {
        "school": "urn", "year": "year", "join_year": "join_year", "trust": "trust_id", "local_authority": "la_code",
        "outcomes": ["rwm_expected"], "subgroup": "subgroup", "subgroup_type": "subgroup_type", "pupil_count": "n_pupils",
    },
    "none": {"school": "urn", "year": "year", "join_year": "join_year", "trust": "trust_id", "local_authority": "la_code"},
}


class Config(ConfigBase):
    """A validated config.  ``analyses`` is typed per registered method."""

    sources: SourcesOptions | None = None
    """England's raw files (DfE performance tables, GIAS membership, links, establishments), assembled into the school panel; instead of data.panel (see docs: From DfE and GIAS files to an evaluation)."""
    analyses: list[AnalysisBase] = Field(min_length=1)
    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _columns_of_the_assembled_panel(cls, data: Any) -> Any:
        """With ``sources:`` the panel's columns have fixed names, so ``columns:`` may be left out or partial."""
        if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
            return data
        preset = data["sources"].get("preset", "ks4")
        defaults = PRESET_DEFAULTS.get(preset if isinstance(preset, str) else "", {})
        columns = data.get("columns")
        if columns is None:
            columns = {}
        if not isinstance(columns, dict):
            return data
        filled = {**defaults, **columns}
        return {**data, "columns": filled}

    @model_validator(mode="after")
    def _one_panel_source(self) -> Config:
        if self.sources is None and self.data.panel is None:
            raise ValueError(
                "no school panel: name the school x year file as data.panel, or England's raw files in a sources: "
                "block (performance_tables, gias_membership ...)"
            )
        if self.sources is not None and self.data.panel is not None:
            raise ValueError(
                "data.panel and sources: both give the school panel; keep one (sources: assembles the panel from "
                "DfE/GIAS files, data.panel reads a panel already assembled, e.g. by `evaltool ingest`)"
            )
        if self.sources is not None and self.data.subgroups is not None:
            raise ValueError(
                "data.subgroups and sources: both give the subgroup panel; with sources: the subgroup rows come from "
                "the performance tables' subgroup columns, so remove data.subgroups"
            )
        return self
    _positions: dict[Loc, tuple[int, int]] = PrivateAttr(default_factory=dict)
    _namer: Callable[[Loc], str] | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The YAML file this config came from (``None`` if built in code)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the config are resolved against."""
        return self._source.parent if self._source is not None else Path.cwd()

    def resolve(self, path: Path) -> Path:
        """Resolve a path from the config relative to the config's folder."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def where(self, loc: Loc) -> str:
        """``"key.path (file.yaml:L:C)"`` for messages about a config key (the argument's name when the config
        was built by the Python API, see :func:`evaltool.config.loader.config_from_dict`)."""
        if self._namer is not None:
            return self._namer(tuple(loc))
        return describe_key(loc, self._source, self._positions)

    def analysis_outcomes(self, analysis: AnalysisBase) -> str:
        """The outcome an analysis uses (its own or the first mapped one)."""
        return analysis.outcome or self.columns.outcomes[0]


def source_name(source: Path | None) -> str:
    """The config file's name for messages (``<config>`` for text without a file)."""
    return source.name if source is not None else "<config>"


def format_loc(loc: Loc) -> str:
    """``('analyses', 0, 'caliper')`` → ``analyses[0].caliper``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe_key(loc: Loc, source: Path | None, positions: dict[Loc, tuple[int, int]]) -> str:
    """Key path with the YAML position of the nearest existing key."""
    probe = tuple(loc)
    while probe and probe not in positions:
        probe = probe[:-1]
    pos = positions.get(probe)
    where = f"{source_name(source)}:{pos[0]}:{pos[1]}" if pos else source_name(source)
    return f"{format_loc(loc)} ({where})"
