"""``evaltool ingest``: write the panel assembled from England's raw files, with its data report.

The written panel is what ``sources:`` gives an analysis, so a config can name it as ``data.panel``
instead (faster reruns; a file to share or inspect).  Every file is written to a temporary name beside
its target and renamed into place, so an interrupted ingest never leaves a half-written panel.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from evaltool.errors import ConfigError, OutputError

if TYPE_CHECKING:
    from evaltool.config.root import Config


def ingest_paths(out: Path) -> dict[str, Path]:
    """The files ``ingest`` writes for panel path ``out``: panel, subgroups, trusts and the data report."""
    suffix = out.suffix.lower()
    stem = out.with_suffix("")
    return {
        "panel": out,
        "subgroups": stem.with_name(f"{stem.name}.subgroups{suffix}"),
        "trusts": stem.with_name(f"{stem.name}.trusts.csv"),
        "report": stem.with_name(f"{stem.name}.report.json"),
    }


def write_ingested(config: Config, out: Path, *, overwrite: bool = False) -> tuple[list[Path], dict[str, Any]]:
    """Assemble ``config.sources`` and write the panel (and subgroups, trusts, report) next to ``out``.

    Raises
    ------
    ConfigError
        If the config has no ``sources:`` block or ``out`` is not .parquet/.csv.
    OutputError
        If a target exists (without ``overwrite``), is one of the inputs, or cannot be written.
    """
    from evaltool.config.paths import input_paths
    from evaltool.data.dfe import assemble_sources

    if config.sources is None:
        raise ConfigError(
            f"{config.where(('sources',))}: `evaltool ingest` assembles the raw DfE/GIAS files named in a sources: "
            "block, and this config has none (it reads data.panel, which is already a panel)."
        )
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"--out '{out}' must end in .parquet or .csv (the format of the panel written).")
    targets = ingest_paths(out.resolve())
    inputs = {p.resolve() for p in input_paths(config)}
    for path in targets.values():
        if path in inputs:
            raise OutputError(f"'{path}' is one of the config's inputs; ingest never replaces an input. Choose another --out.")
        if path.exists() and not overwrite:
            raise OutputError(f"'{path}' already exists; pass --overwrite to replace it, or choose another --out.")
    assembled = assemble_sources(config.sources, config.base_dir, year_range=config.data.year_range)
    frames: dict[str, pd.DataFrame | None] = {
        "panel": assembled.panel, "subgroups": assembled.subgroups, "trusts": assembled.trusts,
    }
    written = []
    for key, frame in frames.items():
        if frame is not None:
            parquet = targets[key].suffix == ".parquet"
            written.append(_write_atomically(targets[key], lambda tmp, f=frame, pq=parquet: _write_frame(f, tmp, pq)))
    text = json.dumps(assembled.report, indent=2, sort_keys=True, default=str) + "\n"
    written.append(_write_atomically(targets["report"], lambda tmp: tmp.write_text(text, encoding="utf-8")))
    return written, assembled.report


def _write_frame(frame: pd.DataFrame, path: Path, parquet: bool) -> None:
    if parquet:
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, lineterminator="\n")


def _write_atomically(target: Path, write) -> Path:
    """Write through ``target``'s temporary sibling and rename it into place."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"Cannot write '{target}': {exc.strerror or exc}. Check the folder exists and is writable.") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
