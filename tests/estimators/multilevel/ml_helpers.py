"""Helpers of the multilevel tests: run a config on simulated files, true pupil effects, coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evaltool.config import load_config
from evaltool.data.simulate import SimulatedData
from evaltool.pipeline import run_analyses

COLUMNS = """
columns:
  school: urn
  year: year
  join_year: join_year
  trust: trust_id
  outcomes: [attainment8]
  covariates: [ks2_prior, fsm_pct]
  subgroup: subgroup
  subgroup_type: subgroup_type
  pupil_count: n_pupils
"""


def run_config(folder: Path, analyses: str, name: str = "config.yaml", extra_data: str = ""):
    """Write a config with the given analyses block next to the simulated files and run it."""
    text = (
        "data:\n  panel: school_panel.csv\n  subgroups: subgroup_panel.csv\n  pupils: pupils.parquet\n"
        + extra_data + COLUMNS + "analyses:\n" + analyses
    )
    path = folder / name
    path.write_text(text)
    return run_analyses(load_config(path))


def pupil_truth(data: SimulatedData, year: int | None = None) -> pd.DataFrame:
    """Each treated pupil's true effect (cohort-joined schools): τ_school-year + subgroup extras.

    ``school_year_effects`` holds each treated school-year's mean effect; τ is that minus the
    school-year's mean extra (extras from ``truth.parameters.effect.subgroup_extras``).  Clipping
    at 0/90 is ignored (it affects a negligible share of pupils).
    """
    truth = data.truth
    scale = truth["parameters"]["effect"]["effect_scale"]
    extras = truth["parameters"]["effect"]["subgroup_extras"]
    pupils = data.pupils.copy()
    pupils["extra"] = scale * (extras["disadvantaged"] * pupils["disadvantaged"]
                               + extras["low_prior"] * (pupils["prior_band"] == "low") + extras["eal"] * pupils["eal"])
    effects = pd.DataFrame(truth["school_year_effects"]["data"], columns=truth["school_year_effects"]["columns"])
    effects["urn"] = effects["urn"].astype(pupils["urn"].dtype)
    treated = pupils.merge(effects, on=["urn", "year"], how="inner")
    treated["tau"] = treated["effect"] - treated.groupby(["urn", "year"])["extra"].transform("mean")
    treated["true_effect"] = treated["tau"] + treated["extra"]
    return treated if year is None else treated.loc[treated["year"] == year]


def covers(estimate: float, se: float, truth: float, k: float = 4.0) -> bool:
    return bool(np.isfinite(se) and abs(estimate - truth) < k * se)
