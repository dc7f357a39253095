"""Every input file a config names (the output folder must hold none of them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from evaltool.config.models import SourceFile

if TYPE_CHECKING:
    from evaltool.config.root import Config


def input_paths(config: Config) -> list[Path]:
    """The config file and every input file the config names, resolved (the output folder must hold none).

    Every :class:`~evaltool.config.models.SourceFile` anywhere in the config counts: the ``data`` block and
    files named by analyses (``effects_file`` of a meta-analysis).
    """
    paths = [Path(config.source)] if config.source is not None else []
    paths += [config.resolve(source.path) for source in _source_files(config)]
    if config.sources is not None:
        paths += [path for path in _raw_source_paths(config) if path not in paths]
    return paths


def _raw_source_paths(config: Config) -> list[Path]:
    """The raw files ``sources:`` names: globs of performance tables expanded, and the GIAS files."""
    sources = config.sources
    found: list[Path] = []
    for entry in sources.performance_tables:
        pattern = config.resolve(entry.path)
        if any(ch in str(entry.path) for ch in "*?["):
            found += sorted(pattern.parent.glob(pattern.name))
        else:
            found.append(pattern)
    for entry in (sources.gias_establishments, sources.gias_links, sources.gias_membership):
        if entry is not None:
            found.append(config.resolve(entry.path))
    return found


def _source_files(value: Any) -> list[SourceFile]:
    """Every ``SourceFile`` inside a config model, depth first."""
    if isinstance(value, SourceFile):
        return [value]
    if isinstance(value, BaseModel):
        return [found for name in type(value).model_fields for found in _source_files(getattr(value, name))]
    if isinstance(value, (list, tuple)):
        return [found for item in value for found in _source_files(item)]
    if isinstance(value, dict):
        return [found for item in value.values() for found in _source_files(item)]
    return []
