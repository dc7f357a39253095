"""Writing a simulation to a folder (CSV/Parquet tables and truth.json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evaltool.data.simulate.constants import _PANEL_ROUNDING
from evaltool.data.simulate.generate import SimulatedData


def _rounded(frame: pd.DataFrame, digits: Mapping[str, int]) -> pd.DataFrame:
    """Return a copy with the given columns rounded (the caller's frame is unchanged)."""
    copy = frame.copy()
    for column, n_digits in digits.items():
        if column in copy.columns:
            copy[column] = copy[column].round(n_digits)
    return copy


def write_simulation(data: SimulatedData, out_dir: Path) -> list[Path]:
    """Write the simulated tables and truth into ``out_dir`` (created if needed).

    Parameters
    ----------
    data
        The output of :func:`simulate`; not modified.
    out_dir
        Folder to write into; existing files of the same names are replaced.

    Returns
    -------
    list of pathlib.Path
        ``school_panel.csv``, ``subgroup_panel.csv``, ``pupils.parquet``,
        ``trusts.csv`` and ``truth.json``, in that order.

    Notes
    -----
    Outcomes, KS2 means and percentages are rounded to 1 dp, as DfE publishes
    them; the truth is written at full precision.  CSVs use Unix line ends
    and an empty cell for missing values (e.g. ``join_year`` of schools that
    never joined).  The same data always give byte-identical files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in
             ("school_panel.csv", "subgroup_panel.csv", "pupils.parquet", "trusts.csv", "truth.json")]
    csv_options: dict[str, Any] = {"index": False, "lineterminator": "\n"}
    _rounded(data.panel, _PANEL_ROUNDING).to_csv(paths[0], **csv_options)
    _rounded(data.subgroups, {"attainment8": 1}).to_csv(paths[1], **csv_options)
    table = pa.Table.from_pandas(_rounded(data.pupils, {"attainment8": 1}), preserve_index=False)
    pq.write_table(table, paths[2], compression="zstd")
    data.trusts.to_csv(paths[3], **csv_options)
    paths[4].write_text(json.dumps(data.truth, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    return paths
