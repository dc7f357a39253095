"""Shared fixtures: a small seeded school panel and a matching config."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def make_panel(seed: int = 1, n_schools: int = 120, effect: float = 2.0) -> pd.DataFrame:
    """A tiny school × year panel (2012–2019) with a known 2×2 effect.

    Schools joining in 2016 (the treated group of the 2×2 with pre 2013–2014
    and post 2017–2018) gain ``effect`` points from 2016; never-joined schools
    are the comparison.  Some schools join in 2018 or joined in 2011.
    """
    rng = np.random.default_rng(seed)
    years = np.arange(2012, 2020)
    urns = rng.choice(np.arange(100000, 150000), n_schools, replace=False)
    kind = rng.choice([0, 2016, 2018, 2011], n_schools, p=[0.5, 0.3, 0.12, 0.08])
    join = np.where(kind == 0, np.nan, kind).astype(float)
    level = rng.normal(46, 4, n_schools) - 2 * (kind != 0)
    school = np.repeat(urns, len(years))
    year = np.tile(years, n_schools)
    j = np.repeat(join, len(years))
    treated = (~np.isnan(j)) & (year >= j)
    y = np.repeat(level, len(years)) + 0.3 * (year - 2012) + effect * treated + rng.normal(0, 1, len(year))
    return pd.DataFrame(
        {
            "urn": school,
            "year": year,
            "att8": np.round(y, 3),
            "fsm": np.round(rng.uniform(5, 50, len(year)), 1),
            "join_year": pd.array(np.where(np.isnan(j), pd.NA, j), dtype="Int64"),
            "in_trust": treated.astype(int),
            "trust": np.where(np.isnan(j), "", "T" + pd.Series(school).astype(str).str[-2:]),
            "la": np.repeat(rng.integers(201, 230, n_schools), len(years)),
        }
    )


CONFIG_TEMPLATE = """\
title: Test evaluation
seed: 7
data:
  panel: panel.csv
columns:
  school: urn
  year: year
  join_year: join_year
  treated: in_trust
  local_authority: la
  outcomes: [att8]
  covariates: [fsm]
analyses:
  - name: main
    method: did_2x2
    pre_years: [2013, 2014]
    post_years: [2017, 2018]
"""


@pytest.fixture
def panel_frame() -> pd.DataFrame:
    return make_panel()


@pytest.fixture
def project(tmp_path: Path, panel_frame: pd.DataFrame) -> Path:
    """A folder with panel.csv and config.yaml; returns the config path."""
    panel_frame.to_csv(tmp_path / "panel.csv", index=False)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG_TEMPLATE)
    return config


def write_config(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path
