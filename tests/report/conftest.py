"""Fixtures: a real evaltool run on simulated data, and hand-made results folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaltool import __version__
from evaltool.config import load_config
from evaltool.data.simulate import SimulationSettings, simulate, write_simulation
from evaltool.pipeline import execute
from evaltool.results import TIDY_COLUMNS, AnalysisResult, EffectEstimate, SampleReport
from evaltool.results.writer import RESULTS_FORMAT

CONFIG = """\
title: Did joining a trust or federation raise Attainment 8?
seed: 7
data:
  panel: data/school_panel.csv
  subgroups: data/subgroup_panel.csv
  exclude_years: [2020, 2021]
columns:
  school: urn
  trust: trust_id
  local_authority: la_code
  outcomes: [attainment8]
  covariates: [ks2_prior, fsm_pct]
  subgroup: subgroup
  subgroup_type: subgroup_type
  pupil_count: n_pupils
analyses:
  - name: did_2x2
    method: did_2x2
    description: Schools joining 2014-2019 against schools that never joined.
    pre_years: [2012, 2013]
    post_years: [2022, 2023]
  - name: did_empty
    method: did_2x2
    pre_years: [2012]
    post_years: [2013]
output:
  folder: out
{extra}
"""


def write_config(folder: Path, extra: str = "") -> Path:
    path = folder / "study.yaml"
    path.write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def simulated(tmp_path_factory) -> tuple[Path, object]:
    """Simulated data (seed 11, 120 schools) written to a folder."""
    folder = tmp_path_factory.mktemp("study")
    data = simulate(SimulationSettings(seed=11, n_schools=120))
    write_simulation(data, folder / "data")
    return folder, data


@pytest.fixture(scope="session")
def sample_run(simulated) -> Path:
    """Output folder of ``evaltool run`` on simulated data: one analysis works, one fails."""
    folder, _ = simulated
    config = load_config(write_config(folder))
    _, out = execute(config, folder / "out")
    return out


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample_data_run(tmp_path_factory) -> Path:
    """Output folder of ``evaltool run configs/federation_impact.yaml`` on the committed sample data."""
    config = load_config(REPO / "configs" / "federation_impact.yaml")
    _, out = execute(config, tmp_path_factory.mktemp("sample") / "federation_impact")
    return out


def write_results_folder(folder: Path, analyses: list[AnalysisResult], data: dict | None = None) -> Path:
    """A results folder as ``evaltool run`` writes it, for hand-made analysis results."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = [a.tidy() for a in analyses if a.estimates]
    tidy = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(TIDY_COLUMNS))
    tidy.to_csv(folder / "results.csv", index=False)
    payload = {
        "format": RESULTS_FORMAT,
        "evaltool_version": __version__,
        "title": "Hand-made results",
        "seed": 1,
        "data": data or {},
        "analyses": [a.to_dict() for a in analyses],
    }
    (folder / "results.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return folder


def subgroup_result(subgroups: pd.DataFrame, *, treated: list[str], comparison: list[str], year: int) -> AnalysisResult:
    """Pupil-weighted difference in mean Attainment 8 by subgroup, joined vs comparison schools, in one year.

    A descriptive comparison (not an estimator under test): it gives subgroup
    rows whose pupil counts come from the simulated data, so small cells occur
    naturally when few schools are compared.
    """
    cells = subgroups.loc[subgroups["year"].eq(year) & subgroups["urn"].astype(str).isin(treated + comparison)].copy()
    cells["group"] = np.where(cells["urn"].astype(str).isin(treated), "treated", "comparison")
    cells["weighted"] = cells["attainment8"] * cells["n_pupils"]
    sums = cells.groupby(["subgroup", "group"])[["weighted", "n_pupils"]].sum()
    means = (sums["weighted"] / sums["n_pupils"]).unstack("group")
    counts = sums["n_pupils"].unstack("group").astype(int)
    sample = SampleReport(n_rows_in=len(cells), n_rows_used=len(cells), n_units_used=len(treated) + len(comparison))
    sample.exclude("missing outcome 'attainment8'", 3, 2, stage="analysis")
    estimates = [
        EffectEstimate.from_normal(
            term="joined",
            estimand="difference",
            estimate=float(means.loc[s, "treated"] - means.loc[s, "comparison"]),
            std_error=1.5,
            n_treated=int(counts.loc[s, "treated"]),
            n_control=int(counts.loc[s, "comparison"]),
            subgroup=s,
            effect_size=float(means.loc[s, "treated"] - means.loc[s, "comparison"]) / 15.0,
            effect_size_ci_lower=float(means.loc[s, "treated"] - means.loc[s, "comparison"] - 2.94) / 15.0,
            effect_size_ci_upper=float(means.loc[s, "treated"] - means.loc[s, "comparison"] + 2.94) / 15.0,
        )
        for s in means.index
    ]
    overall = EffectEstimate.from_normal(
        term="joined",
        estimand="ATT",
        estimate=1.0,
        std_error=0.5,
        n_treated=int(counts["treated"].max()),
        n_control=int(counts["comparison"].max()),
        effect_size=0.07,
        effect_size_ci_lower=0.005,
        effect_size_ci_upper=0.135,
    )
    return AnalysisResult(
        analysis="by_group",
        method="multilevel",
        outcome="attainment8",
        estimates=[overall, *estimates],
        diagnostics={"treated_cohorts": {"2017": len(treated)}, "count_unit": "pupils"},
        sample=sample,
        warnings=[f"only {len(treated)} schools joined; 3 pupils had no prior attainment"],
    )
